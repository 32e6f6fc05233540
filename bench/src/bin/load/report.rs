//! The table the load run ends with, one column per framework.

use std::time::Duration;

use crate::SESSIONS;
use crate::phase::Outcome;

/// Everything measured against one framework's example.
pub struct Measured {
    pub framework: &'static str,
    pub logins_16: Outcome,
    pub logins_1: Outcome,
    pub logins_200: Outcome,
    pub me_16: Outcome,
    pub me_1: Outcome,
    pub me_200: Outcome,
    /// Logged-in sessions in the store when `rss_after` was read.
    pub sessions: usize,
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
    pub app_cpu_per_login: Option<Duration>,
    pub own_cpu_per_login: Option<Duration>,
    pub app_cpu_per_me: Option<Duration>,
    pub own_cpu_per_me: Option<Duration>,
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".into(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}

fn us(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".into(),
        |d| format!("{:.0} µs", d.as_secs_f64() * 1e6),
    )
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "-".into(),
        |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    )
}

/// Failed operations out of those planned (not started at the deadline counts as failed).
fn failed(outcome: &Outcome) -> String {
    format!(
        "{} / {}",
        outcome.failures + outcome.not_started,
        outcome.plan.total
    )
}

/// Prints the table.
pub fn print(results: &[Measured]) {
    type Row = (&'static str, fn(&Measured) -> String);
    let rows: [Row; 21] = [
        ("full logins/s, 16 browsers", |m| {
            format!("{:.0}", m.logins_16.rate())
        }),
        ("full login p50, 16 browsers", |m| {
            ms(m.logins_16.percentile(50.0))
        }),
        ("full login p99, 16 browsers", |m| {
            ms(m.logins_16.percentile(99.0))
        }),
        ("full login p50, 1 browser", |m| {
            ms(m.logins_1.percentile(50.0))
        }),
        ("full login p99, 1 browser", |m| {
            ms(m.logins_1.percentile(99.0))
        }),
        ("failed logins, 200 browsers", |m| failed(&m.logins_200)),
        ("full login p99, 200 browsers", |m| {
            ms(m.logins_200.percentile(99.0))
        }),
        ("/me req/s, 16 browsers", |m| {
            format!("{:.0}", m.me_16.rate())
        }),
        ("/me p50, 16 browsers", |m| ms(m.me_16.percentile(50.0))),
        ("/me p99, 16 browsers", |m| ms(m.me_16.percentile(99.0))),
        ("/me p50, 1 browser", |m| ms(m.me_1.percentile(50.0))),
        ("/me p99, 1 browser", |m| ms(m.me_1.percentile(99.0))),
        ("failed /me, 200 browsers", |m| failed(&m.me_200)),
        ("app CPU per full login", |m| us(m.app_cpu_per_login)),
        ("browsers' CPU per full login", |m| us(m.own_cpu_per_login)),
        ("app CPU per /me", |m| us(m.app_cpu_per_me)),
        ("browsers' CPU per /me", |m| us(m.own_cpu_per_me)),
        ("app RSS, idle after warm-up", |m| mib(m.rss_before)),
        ("app RSS, logged-in sessions", |m| mib(m.rss_after)),
        ("app RSS growth", |m| match (m.rss_before, m.rss_after) {
            (Some(before), Some(after)) => mib(Some(after.saturating_sub(before))),
            _ => "-".into(),
        }),
        ("growth per session", |m| {
            match (m.rss_before, m.rss_after) {
                (Some(before), Some(after)) if m.sessions > 0 => format!(
                    "{:.0} B",
                    after.saturating_sub(before) as f64 / m.sessions as f64
                ),
                _ => "-".into(),
            }
        }),
    ];

    println!();
    println!(
        "kvixi-rs load over loopback HTTP: example app + embedded emulator in a child process, reqwest browsers"
    );
    print!("{:<30}", "");
    for result in results {
        print!(" {:>12}", result.framework);
    }
    println!();
    for (label, cell) in rows {
        print!("{label:<30}");
        for result in results {
            print!(" {:>12}", cell(result));
        }
        println!();
    }
    print!("{:<30}", "sessions held at the RSS read");
    for result in results {
        print!(" {:>12}", result.sessions);
    }
    println!();
    println!(
        "targets: full login p99 < 5 ms at 16 browsers; 0 failed logins at 200; {SESSIONS} sessions < 50 MiB RSS"
    );
}
