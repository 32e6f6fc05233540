//! The soak's report: a table per fault, the totals, every instance's memory and file
//! descriptors, and the verdict; printed and written as Markdown beside the SVG time line.

use std::fmt::Write as _;
use std::path::Path;

use super::faults::Window;
use super::ledger::{Kind, Ledger, ServerError};

/// The most an instance's memory at the end may exceed its first minute's.
const RSS_DRIFT: f64 = 0.10;
const MIB: f64 = 1024.0 * 1024.0;

/// Every instance's figures at one second of the run.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Seconds from the start.
    pub at: f64,
    /// Each instance's process id.
    pub pids: Vec<Option<u32>>,
    /// Each instance's resident memory, in bytes.
    pub rss: Vec<Option<u64>>,
    /// The anonymous part of it (heap and stacks, not the binary's pages), in bytes.
    pub anon: Vec<Option<u64>>,
    /// Each instance's open file descriptors.
    pub fds: Vec<Option<u64>>,
}

/// A finished run.
pub struct Run<'a> {
    /// The framework's name.
    pub framework: &'static str,
    /// Where the instances keep their state: `Sentinel` or `one Postgres`.
    pub store: &'static str,
    /// The report's file names, without extension (`soak-axum`, `soak-axum-postgres`).
    pub stem: String,
    /// How long the traffic ran, in seconds.
    pub seconds: f64,
    /// The faults as they happened.
    pub windows: Vec<Window>,
    /// The counts.
    pub ledger: &'a Ledger,
    /// One per second.
    pub samples: Vec<Sample>,
    /// Log lines of the instances that report a panic.
    pub panics: Vec<String>,
}

/// One instance's memory over the run: its last process from its first minute to the end.
pub struct Memory {
    /// The last process's id.
    pub pid: Option<u32>,
    /// Seconds from the start when that process was first sampled.
    pub since: f64,
    /// Its resident memory one minute after that (none in a shorter run).
    pub minute_one: Option<u64>,
    /// 30 s after the last fault's window (or its minute one, if later): the fleet
    /// settled, every fault's high-water mark reached.
    pub settled: Option<u64>,
    /// At the end.
    pub end: Option<u64>,
    /// The anonymous part of the memory at its minute one and at the end: what a leak
    /// grows, apart from the binary's pages that a code path run for the first time
    /// (a fault's) brings in.
    pub anon: (Option<u64>, Option<u64>),
    /// Its most open file descriptors, and at the end.
    pub fds: (u64, u64),
}

impl Run<'_> {
    /// The window a 5xx is counted in: of those it overlaps, the one begun last.
    pub fn window_of(&self, error: &ServerError) -> Option<&Window> {
        self.windows
            .iter()
            .filter(|w| w.covers(error.sent, error.ended))
            .max_by(|a, b| a.start.total_cmp(&b.start))
    }

    /// The 5xx outside every window.
    pub fn outside(&self) -> Vec<ServerError> {
        self.ledger
            .server_errors()
            .into_iter()
            .filter(|e| !self.windows.iter().any(|w| w.covers(e.sent, e.ended)))
            .collect()
    }

    /// Each instance's memory figures.
    pub fn memory(&self) -> Vec<Memory> {
        let instances = self.samples.first().map_or(0, |s| s.pids.len());
        (0..instances)
            .map(|i| {
                let pid = self.samples.last().and_then(|s| s.pids[i]);
                let own: Vec<&Sample> = self.samples.iter().filter(|s| s.pids[i] == pid).collect();
                let since = own.first().map_or(0.0, |s| s.at);
                let minute_one_sample = own.iter().find(|s| s.at >= since + 60.0);
                let minute_one = minute_one_sample.and_then(|s| s.rss[i]);
                let last_fault = self.windows.iter().map(|w| w.end).fold(0.0, f64::max);
                let settled = own
                    .iter()
                    .find(|s| s.at >= (last_fault + 30.0).max(since + 60.0))
                    .and_then(|s| s.rss[i]);
                let end = own.iter().rev().find_map(|s| s.rss[i]);
                let mut fds = own.iter().filter_map(|s| s.fds[i]);
                let most = fds.clone().max().unwrap_or(0);
                let last = fds.next_back().unwrap_or(0);
                Memory {
                    pid,
                    since,
                    minute_one,
                    settled,
                    end,
                    anon: (
                        minute_one_sample.and_then(|s| s.anon[i]),
                        own.iter().rev().find_map(|s| s.anon[i]),
                    ),
                    fds: (most, last),
                }
            })
            .collect()
    }
}

/// Prints the report, writes it and the SVG to `out`; whether the run passed.
pub fn print(run: &Run<'_>, out: &Path) -> Result<bool, String> {
    let (markdown, passed) = markdown(run);
    println!("{markdown}");
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let md = out.join(format!("{}.md", run.stem));
    let svg = out.join(format!("{}.svg", run.stem));
    std::fs::write(&md, &markdown).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    std::fs::write(&svg, super::svg::timeline(run))
        .map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
    eprintln!("soak: wrote {} and {}", md.display(), svg.display());
    Ok(passed)
}

/// `812 (503: 800, 502: 12)`.
fn by_status(errors: &[&ServerError]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for error in errors {
        *counts.entry(error.status).or_insert(0usize) += 1;
    }
    if counts.is_empty() {
        return "0".to_owned();
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    format!("{} ({})", errors.len(), parts.join(", "))
}

fn markdown(run: &Run<'_>) -> (String, bool) {
    let ledger = run.ledger;
    let errors = ledger.server_errors();
    let outside = run.outside();
    let seconds = ledger.seconds();
    let requests: u64 = seconds.iter().map(|s| s.requests).sum();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "#### Soak, {}: {:.0} s, 3 instances on {}, 32 browsers, 32 bots, hostile requests\n",
        run.framework, run.seconds, run.store
    );
    text.push_str("| fault | window (s) | 5xx inside | last 5xx after its start |\n");
    text.push_str("|---|---|---:|---:|\n");
    for window in &run.windows {
        let inside: Vec<&ServerError> = errors
            .iter()
            .filter(|e| run.window_of(e).is_some_and(|w| std::ptr::eq(w, window)))
            .collect();
        for status in inside
            .iter()
            .map(|e| e.status)
            .collect::<std::collections::BTreeSet<_>>()
        {
            if let Some(first) = inside.iter().find(|e| e.status == status) {
                eprintln!(
                    "soak: {}: first {status}: sent {:.2}s: {}",
                    window.name, first.sent, first.what
                );
            }
        }
        let last = inside
            .iter()
            .map(|e| e.ended)
            .fold(None, |most: Option<f64>, t| {
                Some(most.map_or(t, |m| m.max(t)))
            });
        let _ = writeln!(
            text,
            "| {} | {:.1}–{:.1} (lifted {:.1}) | {} | {} |",
            window.name,
            window.start,
            window.end,
            window.lifted,
            by_status(&inside),
            last.map_or("none".to_owned(), |t| format!("{:.1} s", t - window.start)),
        );
    }
    let count = |counter| Ledger::get(counter);
    let _ = writeln!(
        text,
        "\n{requests} answers ({:.0}/s): {} logins ({} refused by a fault and retried), {} reads as the right user, \
         {} logouts ({} everywhere), {} logouts a revocation explains, {} bot and {} hostile requests, \
         {} requests sent on to another instance because one refused the connection.\n",
        requests as f64 / run.seconds.max(1.0),
        count(&ledger.logins),
        count(&ledger.logins_refused),
        count(&ledger.reads),
        count(&ledger.logouts),
        count(&ledger.everywhere),
        count(&ledger.expected_logouts),
        count(&ledger.bot_requests),
        count(&ledger.hostile_requests),
        count(&ledger.rerouted),
    );

    let mut failed: Vec<String> = Vec::new();
    text.push_str("| count | value |\n|---|---:|\n");
    let _ = writeln!(
        text,
        "| 5xx inside fault windows | {} |",
        errors.len() - outside.len()
    );
    let _ = writeln!(text, "| 5xx outside fault windows | {} |", outside.len());
    if !outside.is_empty() {
        failed.push(format!("{} 5xx outside the fault windows", outside.len()));
    }
    for (kind, n) in ledger.verdicts() {
        let _ = writeln!(text, "| {} | {n} |", kind.name());
        if n > 0 {
            failed.push(format!("{n} {}", kind.name()));
        }
    }
    let _ = writeln!(
        text,
        "| panics in the instances' logs | {} |",
        run.panics.len()
    );
    if !run.panics.is_empty() {
        failed.push(format!("{} panics", run.panics.len()));
    }

    text.push_str("\n| instance | process since (s) | RSS at its minute one | 30 s after the last fault | at the end | change from minute one | from after the faults | anonymous: minute one → end | open fds (most, end) |\n");
    text.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (i, memory) in run.memory().iter().enumerate() {
        let mib =
            |b: Option<u64>| b.map_or("–".to_owned(), |b| format!("{:.1} MiB", b as f64 / MIB));
        let change = match (memory.minute_one, memory.end) {
            (Some(one), Some(end)) if one > 0 => {
                let change = end as f64 / one as f64 - 1.0;
                if change > RSS_DRIFT {
                    failed.push(format!(
                        "instance {i}'s memory {:+.1} % from its minute one",
                        change * 100.0
                    ));
                }
                format!("{:+.1} %", change * 100.0)
            }
            _ => "– (under a minute)".to_owned(),
        };
        let since_faults = match (memory.settled, memory.end) {
            (Some(settled), Some(end)) if settled > 0 => {
                format!("{:+.1} %", (end as f64 / settled as f64 - 1.0) * 100.0)
            }
            _ => "–".to_owned(),
        };
        let anon = match memory.anon {
            (Some(_), Some(_)) => format!("{} → {}", mib(memory.anon.0), mib(memory.anon.1)),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            text,
            "| {i} (pid {}) | {:.0} | {} | {} | {} | {change} | {since_faults} | {anon} | {}, {} |",
            memory.pid.map_or("–".to_owned(), |p| p.to_string()),
            memory.since,
            mib(memory.minute_one),
            mib(memory.settled),
            mib(memory.end),
            memory.fds.0,
            memory.fds.1,
        );
    }

    let mut examples = Vec::new();
    for error in outside.iter().take(8) {
        examples.push(format!(
            "5xx outside the windows: sent {:.2}s, ended {:.2}s: {}",
            error.sent, error.ended, error.what
        ));
    }
    for kind in [Kind::Lost, Kind::Breach, Kind::Unexpected] {
        for example in ledger.examples(kind) {
            examples.push(format!("{}: {example}", kind.name()));
        }
    }
    examples.extend(run.panics.iter().take(8).cloned());
    if !examples.is_empty() {
        text.push_str("\nFirst examples:\n\n");
        for example in examples {
            let _ = writeln!(text, "- {example}");
        }
    }
    let _ = writeln!(
        text,
        "\nVerdict: {}",
        if failed.is_empty() {
            "PASS: no session lost, no breach, no 5xx outside a fault window, no panic, memory flat"
                .to_owned()
        } else {
            format!("FAIL: {}", failed.join("; "))
        }
    );
    let _ = writeln!(
        text,
        "\n![soak {}: requests/s, 5xx/s, RSS and open fds per instance, fault windows shaded]({}.svg)",
        run.framework, run.stem
    );
    let passed = failed.is_empty();
    (text, passed)
}
