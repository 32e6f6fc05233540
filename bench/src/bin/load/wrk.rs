//! A cross-check of the bots' login-start rate with `wrk`, when it is installed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use url::Url;

use crate::anonymous::LOGIN_START;

/// How long wrk loads the app.
pub const DURATION: Duration = Duration::from_secs(10);
/// wrk's connections (as many as the bots) and threads.
pub const CONNECTIONS: usize = 32;
const THREADS: usize = 2;
/// wrk stops by itself after [`DURATION`]; past this it is killed.
const HARD_LIMIT: Duration = Duration::from_secs(40);

/// What wrk measured.
#[derive(Debug)]
pub struct WrkOutcome {
    /// `Requests/sec` as wrk prints it.
    pub rate: f64,
    /// Requests wrk completed.
    pub requests: u64,
    /// Answers that were not 2xx or 3xx, plus socket errors.
    pub errors: u64,
}

/// The command line, for the report.
pub fn command_line() -> String {
    format!(
        "wrk -t{THREADS} -c{CONNECTIONS} -d{}s 'http://127.0.0.1:PORT{LOGIN_START}'",
        DURATION.as_secs()
    )
}

/// Runs wrk against the login route of the app at `app`; `Err` says why there is no
/// figure (not installed, failed, unreadable output).
pub fn login_starts(app: &Url) -> Result<WrkOutcome, String> {
    let url = app.join(LOGIN_START).map_err(|e| e.to_string())?;
    if url.host_str() != Some("127.0.0.1") {
        return Err(format!("refusing to load {url}: not 127.0.0.1"));
    }
    let mut child = Command::new("wrk")
        .arg(format!("-t{THREADS}"))
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{}s", DURATION.as_secs()))
        .args(["--timeout", "5s"])
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "wrk is not installed".to_owned(),
            _ => format!("wrk: {e}"),
        })?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > HARD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("wrk did not end within {HARD_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut output)
            .map_err(|e| e.to_string())?;
    }
    if !status.success() {
        return Err(format!("wrk failed ({status})"));
    }
    parse(&output).ok_or_else(|| format!("cannot read wrk's output: {output:?}"))
}

/// The figures in wrk's summary.
fn parse(output: &str) -> Option<WrkOutcome> {
    let mut outcome = WrkOutcome {
        rate: 0.0,
        requests: 0,
        errors: 0,
    };
    let mut found_rate = false;
    for line in output.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            outcome.rate = rate.trim().parse().ok()?;
            found_rate = true;
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            outcome.errors += count.trim().parse::<u64>().ok()?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            outcome.errors += errors
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        } else if line.contains("requests in") {
            outcome.requests = line.split_whitespace().next()?.parse().ok()?;
        }
    }
    found_rate.then_some(outcome)
}
