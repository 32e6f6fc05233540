//! The tables the load run ends with, one column per framework, and the verdicts on the
//! targets of issue 12.

use std::time::Duration;

use crate::SESSIONS;
use crate::anonymous::{LOGIN_START, SwarmOutcome};
use crate::bots::{BOTS, BROWSERS, BotsMeasured, DEFAULT_STARTS, REDIS_SESSIONS, RedisMeasured};
use crate::phase::Outcome;
use crate::wrk;

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
    /// [`BURST`](crate::BURST) browsers logging in at once, Kvixi taking `kvixi_delay`
    /// over each call.
    pub burst: Outcome,
    pub kvixi_delay: Duration,
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
    let rows: [Row; 24] = [
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
        ("failed logins, 1 000 at once*", |m| failed(&m.burst)),
        ("full login p50, 1 000 at once*", |m| {
            ms(m.burst.percentile(50.0))
        }),
        ("full login p99, 1 000 at once*", |m| {
            ms(m.burst.percentile(99.0))
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
    if let Some(first) = results.first() {
        println!(
            "* a fresh app whose Kvixi takes {:?} over every call (the load's own emulator), after a warm-up",
            first.kvixi_delay
        );
    }
    println!(
        "targets: full login p99 < 5 ms at 16 browsers; 0 failed logins at 200 and at 1 000 at once; {SESSIONS} sessions < 50 MiB RSS"
    );
}

/// Prints the bot phase's table, then each acceptance target of issue 12 with its verdict.
pub fn print_bots(results: &[BotsMeasured], starts: u64) {
    type Row = (String, Box<dyn Fn(&BotsMeasured) -> String>);
    let rate = |outcome: &Outcome| format!("{:.0}", outcome.rate());
    let redis = |cell: fn(&RedisMeasured) -> String| {
        move |m: &BotsMeasured| m.redis.as_ref().map_or_else(|_| "-".into(), cell)
    };
    let rows: Vec<Row> = vec![
        (
            format!("full logins/s, {BROWSERS} browsers"),
            Box::new(move |m| rate(&m.logins_alone)),
        ),
        (
            format!("failed logins, {BROWSERS} browsers"),
            Box::new(|m| failed(&m.logins_alone)),
        ),
        (
            format!("full login p99, {BROWSERS} browsers"),
            Box::new(|m| ms(m.logins_alone.percentile(99.0))),
        ),
        (
            format!("full logins/s, {BROWSERS} browsers + {BOTS} bots"),
            Box::new(move |m| rate(&m.logins_with_bots)),
        ),
        (
            format!("failed logins, {BROWSERS} browsers + {BOTS} bots"),
            Box::new(|m| failed(&m.logins_with_bots)),
        ),
        (
            format!("full login p99, {BROWSERS} browsers + {BOTS} bots"),
            Box::new(|m| ms(m.logins_with_bots.percentile(99.0))),
        ),
        (
            format!("login starts/s, {BOTS} bots alone"),
            Box::new(|m| format!("{:.0}", m.bots_alone.rate())),
        ),
        (
            format!("login starts/s, {BOTS} bots + browsers"),
            Box::new(|m| format!("{:.0}", m.bots_with_browsers.rate())),
        ),
        (
            format!("login starts/s, wrk -c{}", wrk::CONNECTIONS),
            Box::new(|m| {
                m.wrk
                    .as_ref()
                    .map_or_else(|_| "-".into(), |w| format!("{:.0}", w.rate))
            }),
        ),
        (
            "failed login starts, bots alone".into(),
            Box::new(|m| swarm_missed(&m.bots_alone)),
        ),
        (
            "failed login starts, bots + browsers".into(),
            Box::new(|m| swarm_failed(&m.bots_with_browsers)),
        ),
        (
            "wrk errors (non-3xx, socket)".into(),
            Box::new(|m| {
                m.wrk
                    .as_ref()
                    .map_or_else(|_| "-".into(), |w| format!("{} / {}", w.errors, w.requests))
            }),
        ),
        (
            "session cookies handed to bots".into(),
            Box::new(|m| {
                let mut count = m.bots_alone.session_cookies + m.bots_with_browsers.session_cookies;
                if let Ok(redis) = &m.redis {
                    count += redis.bots.session_cookies;
                }
                count.to_string()
            }),
        ),
        (
            format!("app RSS before {} starts", count(starts)),
            Box::new(|m| mib(m.rss_before)),
        ),
        (
            format!("app RSS after {} starts", count(starts)),
            Box::new(|m| mib(m.rss_after)),
        ),
        ("app RSS growth".into(), Box::new(|m| kib(rss_growth(m)))),
        (
            "Redis keys before → after starts".into(),
            Box::new(redis(|r| format!("{} → {}", r.keys_before, r.keys_after))),
        ),
        (
            "login starts/s, Redis store".into(),
            Box::new(redis(|r| format!("{:.0}", r.bots.rate()))),
        ),
        (
            "failed login starts, Redis store".into(),
            Box::new(redis(|r| swarm_missed(&r.bots))),
        ),
        (
            format!("failed logins, Redis store ({REDIS_SESSIONS})"),
            Box::new(redis(|r| failed(&r.sessions))),
        ),
    ];

    println!();
    println!(
        "kvixi-rs bots: {BROWSERS} browsers logging in, {BOTS} anonymous bots on GET {LOGIN_START}, {} anonymous login starts per store",
        count(starts)
    );
    print!("{:<44}", "");
    for result in results {
        print!(" {:>12}", result.framework);
    }
    println!();
    for (label, cell) in &rows {
        print!("{label:<44}");
        for result in results {
            print!(" {:>12}", cell(result));
        }
        println!();
    }
    for result in results {
        if let Err(why) = &result.redis {
            println!("{}: no Redis column: {why}", result.framework);
        }
        if let Err(why) = &result.wrk {
            println!("{}: no wrk figure: {why}", result.framework);
        }
    }
    println!("wrk cross-check: {}", wrk::command_line());
    println!();
    for verdict in verdicts(results, starts) {
        println!("{verdict}");
    }
}

/// A small memory figure, to the KiB `VmRSS` counts in.
fn kib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".into(), |b| format!("{} KiB", count(b / 1024)))
}

/// Failed login starts out of those sent (not sent at the deadline or at the stop is not a
/// failure: the bots' count is only a bound).
fn swarm_failed(swarm: &SwarmOutcome) -> String {
    format!("{} / {}", swarm.failures, swarm.answered + swarm.failures)
}

/// Failed or unsent login starts out of those planned, for a swarm that should send them all.
fn swarm_missed(swarm: &SwarmOutcome) -> String {
    format!(
        "{} / {}",
        swarm.failures + swarm.not_started,
        swarm.plan.total
    )
}

/// `1000000` as `1 000 000`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

fn rss_growth(m: &BotsMeasured) -> Option<u64> {
    Some(m.rss_after?.saturating_sub(m.rss_before?))
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// One line per acceptance target of issue 12 that this run can judge.
fn verdicts(results: &[BotsMeasured], starts: u64) -> Vec<String> {
    let mut lines = Vec::new();
    let full = starts >= DEFAULT_STARTS;
    for m in results {
        let name = m.framework;
        match rss_growth(m) {
            Some(growth) if full => lines.push(format!(
                "target RSS growth ≤ 16 MiB per {} anonymous starts, {name}: {} ({})",
                count(DEFAULT_STARTS),
                met(growth <= RSS_GROWTH_LIMIT && m.bots_alone.answered >= DEFAULT_STARTS),
                kib(Some(growth))
            )),
            Some(growth) => lines.push(format!(
                "target RSS growth ≤ 16 MiB per {} anonymous starts, {name}: not judged, only {} starts ({} growth)",
                count(DEFAULT_STARTS),
                count(starts),
                kib(Some(growth))
            )),
            None => lines.push(format!("target RSS growth, {name}: no VmRSS reading")),
        }
        match &m.redis {
            Ok(r) => lines.push(format!(
                "target Redis key count unchanged by {} anonymous starts, {name}: {} ({} → {}, {} starts answered)",
                count(starts),
                met(r.keys_before == r.keys_after && r.bots.answered == r.bots.plan.total),
                r.keys_before,
                r.keys_after,
                count(r.bots.answered)
            )),
            Err(why) => lines.push(format!(
                "target Redis key count unchanged, {name}: not measured ({why})"
            )),
        }
        let failed = m.logins_with_bots.failures + m.logins_with_bots.not_started;
        lines.push(format!(
            "target 0 failed logins for {BROWSERS} browsers while {BOTS} bots run, {name}: {} ({failed} / {})",
            met(failed == 0),
            m.logins_with_bots.plan.total
        ));
    }
    let find = |name: &str| results.iter().find(|m| m.framework == name);
    match (find("axum"), find("actix")) {
        (Some(axum), Some(actix)) => {
            let bots = actix.bots_alone.rate() / axum.bots_alone.rate().max(1e-9);
            let mut line = format!(
                "target actix login start ≥ 0.8 × axum's req/s: {} (bots: {:.0} / {:.0} = {bots:.2}",
                met(bots >= 0.8),
                actix.bots_alone.rate(),
                axum.bots_alone.rate()
            );
            if let (Ok(a), Ok(x)) = (&actix.wrk, &axum.wrk) {
                line.push_str(&format!(
                    "; wrk: {:.0} / {:.0} = {:.2}",
                    a.rate,
                    x.rate,
                    a.rate / x.rate.max(1e-9)
                ));
            }
            line.push(')');
            lines.push(line);
        }
        _ => lines.push(
            "target actix login start ≥ 0.8 × axum's req/s: not judged (needs both in the run)"
                .into(),
        ),
    }
    lines
}

/// The acceptance bound on RSS growth per 1 000 000 anonymous login starts.
const RSS_GROWTH_LIMIT: u64 = 16 * 1024 * 1024;
