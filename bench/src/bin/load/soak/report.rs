//! The soak's report: a table per fault, the totals, every instance's memory and file
//! descriptors, and the verdict; printed and written as Markdown beside the SVG time line.

use std::fmt::Write as _;
use std::path::Path;

use super::faults::Window;
use super::ledger::{Class, Kind, Latency, Ledger, Outage, ServerError};

/// The most an instance's memory at the end may exceed its first minute's.
const RSS_DRIFT: f64 = 0.10;
/// The most of a run any class of request may spend excused, in a run long enough for
/// the faults' fixed costs (a breaker's open time) to be a small part of it.
const EXCUSED_SHARE: f64 = 0.25;
/// The open-loop `/me` p99 outside the windows, at the calibrated rate.
const P99_TARGET: f64 = 0.020;
/// Runs at least this long are judged on the two figures above too.
const LONG_RUN: f64 = 300.0;
/// How many of an instance's last log lines a dead instance is shown with.
const LOG_TAIL: usize = 6;
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
    /// Every instance process's log, the current instances' last (in their order).
    pub logs: Vec<std::path::PathBuf>,
    /// The open-loop reads' rate.
    pub open_loop: OpenLoop,
}

/// The open-loop reads of a run.
pub struct OpenLoop {
    /// What the calibration found the fleet serves beside the browsers, reads/s.
    pub capacity: f64,
    /// The rate they were sent at, reads/s.
    pub rate: f64,
    /// Reads not sent because too many were in flight.
    pub dropped: usize,
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
    /// The window a 5xx is counted in: of those that excuse it, the one begun last.
    pub fn window_of(&self, error: &ServerError) -> Option<&Window> {
        self.windows
            .iter()
            .filter(|w| w.excuses(error.sent, error.ended, error.class, error.instance))
            .max_by(|a, b| a.start.total_cmp(&b.start))
    }

    /// The 5xx no window excuses (by time, by what the request touches, by instance).
    pub fn outside(&self) -> Vec<ServerError> {
        self.ledger
            .server_errors()
            .into_iter()
            .filter(|e| self.window_of(e).is_none())
            .collect()
    }

    /// The instances found not serving, or skipped, outside their restarts.
    pub fn dead(&self) -> Vec<Outage> {
        self.ledger
            .outages()
            .into_iter()
            .filter(|o| {
                !self
                    .windows
                    .iter()
                    .any(|w| w.excuses_outage(o.at, o.instance))
            })
            .collect()
    }

    /// The last lines of the current log of `instance`.
    pub fn log_tail(&self, instance: usize) -> Vec<String> {
        let Some(log) = self
            .logs
            .len()
            .checked_sub(3 - instance.min(2))
            .and_then(|at| self.logs.get(at))
        else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL);
        lines[from..].iter().map(|l| (*l).to_owned()).collect()
    }

    /// The share of the run (in instance-seconds) during which a 5xx of `class` was
    /// excused.
    pub fn excused_share(&self, class: Class) -> f64 {
        let steps = (self.seconds * 10.0).ceil().max(1.0) as usize;
        let mut excused = 0usize;
        for step in 0..steps {
            let at = step as f64 / 10.0;
            for instance in 0..3 {
                if self.windows.iter().any(|w| {
                    w.classes.contains(&class)
                        && w.covers(at, at)
                        && w.instance.is_none_or(|i| i == instance)
                }) {
                    excused += 1;
                }
            }
        }
        excused as f64 / (steps * 3) as f64
    }

    /// The open-loop latencies of `class` outside every window that excuses it.
    pub fn latencies_outside(&self, class: Class) -> Vec<Latency> {
        self.ledger
            .latencies()
            .into_iter()
            .filter(|l| {
                l.class == class
                    && !self.windows.iter().any(|w| {
                        let due = f64::from(l.due);
                        w.excuses(
                            due,
                            due + f64::from(l.took),
                            class,
                            l.instance.map(usize::from),
                        )
                    })
            })
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
    let dead = run.dead();
    let _ = writeln!(
        text,
        "| instances not serving (or skipped) outside their restarts | {} |",
        dead.len()
    );
    if !dead.is_empty() {
        failed.push(format!(
            "{} times an instance was not serving outside its restart",
            dead.len()
        ));
    }
    let _ = writeln!(
        text,
        "| open-loop reads not sent, too many in flight (each a 599 above) | {} |",
        run.open_loop.dropped
    );
    let long = run.seconds >= LONG_RUN;

    text.push_str("\n| class of request | share of the run excused | 5xx | of which excused | open-loop reads outside windows | p50 | p99 | max |\n");
    text.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for class in Class::ALL {
        let share = run.excused_share(class);
        if long && share > EXCUSED_SHARE {
            failed.push(format!(
                "{} excused {:.0} % of the run (at most {:.0} %)",
                class.name(),
                share * 100.0,
                EXCUSED_SHARE * 100.0
            ));
        }
        let of_class: Vec<&ServerError> = errors.iter().filter(|e| e.class == class).collect();
        let excused = of_class
            .iter()
            .filter(|e| run.window_of(e).is_some())
            .count();
        let mut took: Vec<f64> = run
            .latencies_outside(class)
            .iter()
            .map(|l| f64::from(l.took))
            .collect();
        took.sort_by(f64::total_cmp);
        let quantile = |q: f64| -> String {
            if took.is_empty() {
                return "–".to_owned();
            }
            let at = ((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1;
            format!("{:.1} ms", took[at] * 1000.0)
        };
        if class == Class::Session && !took.is_empty() {
            let p99 = took[((took.len() as f64 * 0.99).ceil() as usize).clamp(1, took.len()) - 1];
            if long && p99 > P99_TARGET {
                failed.push(format!(
                    "open-loop p99 {:.1} ms outside the windows (target {:.0} ms)",
                    p99 * 1000.0,
                    P99_TARGET * 1000.0
                ));
            }
        }
        let _ = writeln!(
            text,
            "| {} | {:.1} % | {} | {excused} | {} | {} | {} | {} |",
            class.name(),
            share * 100.0,
            of_class.len(),
            took.len(),
            quantile(0.5),
            quantile(0.99),
            took.last()
                .map_or("–".to_owned(), |t| format!("{:.1} ms", t * 1000.0)),
        );
    }
    let _ = writeln!(
        text,
        "\nOpen-loop reads (`/me` and `/account` of {} sessions that never log out): the calibration found the fleet serving {:.0} reads/s beside the browsers; sent at {:.0}/s, each timed from when it was due. {}",
        super::open_loop::READERS,
        run.open_loop.capacity,
        run.open_loop.rate,
        if long {
            format!(
                "Judged (a run of {LONG_RUN:.0} s or more): each class excused at most {:.0} % of the run, p99 outside the windows at most {:.0} ms.",
                EXCUSED_SHARE * 100.0,
                P99_TARGET * 1000.0
            )
        } else {
            format!(
                "A run under {LONG_RUN:.0} s is not judged on the excused share or p99: a fault's fixed costs (the breaker's {:.0} s) fill most of a short run.",
                10.0
            )
        }
    );

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
    for outage in dead.iter().take(4) {
        examples.push(format!(
            "instance {} not serving at {:.2}s outside its restarts: {}; its last log lines: {}",
            outage.instance,
            outage.at,
            outage.what,
            run.log_tail(outage.instance).join(" ⏎ ")
        ));
    }
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
            "PASS: no session lost, no breach, no 5xx outside a fault window, every instance serving, no panic, memory flat"
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
