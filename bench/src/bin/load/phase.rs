//! One phase of load: N browsers at once, each doing its share of a bounded number of
//! logins or `/me` requests, stopping at the deadline whatever is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use url::Url;

use crate::browser::{Browser, Failure};

/// What each browser does, repeatedly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// A full login with a fresh cookie jar; the session stays in the app's store.
    Login,
    /// A full login, then a logout (the store ends as it started).
    LoginLogout,
    /// One login first (not counted), then `GET /me`.
    Me,
}

/// The bounds of a phase.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub work: Work,
    pub browsers: usize,
    /// Operations in all, shared out among the browsers.
    pub total: u64,
    /// The phase stops here even if operations are left.
    pub deadline: Duration,
}

/// What a phase measured.
#[derive(Debug)]
pub struct Outcome {
    pub plan: Plan,
    pub elapsed: Duration,
    /// Latency of every operation that succeeded, sorted.
    pub latencies: Vec<Duration>,
    pub failures: u64,
    /// The first few failures, to say what went wrong.
    pub examples: Vec<String>,
    /// Operations not started because the deadline passed.
    pub not_started: u64,
}

impl Outcome {
    /// Successful operations per second of wall time.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at percentile `p` (nearest rank).
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        Some(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
    }
}

/// Runs `plan` against the app at `app`, logging in as `user_name`.
pub async fn run(
    plan: Plan,
    app: &Url,
    user_name: &'static str,
    expected_id: &'static str,
) -> Outcome {
    let start = Instant::now();
    let stop_at = start + plan.deadline;
    let remaining = Arc::new(AtomicU64::new(plan.total));
    let mut tasks = Vec::with_capacity(plan.browsers);
    for _ in 0..plan.browsers {
        let remaining = remaining.clone();
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            browse(plan.work, app, user_name, expected_id, remaining, stop_at).await
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut examples = Vec::new();
    for task in tasks {
        match task.await {
            Ok((mut done, errors)) => {
                latencies.append(&mut done);
                failures += errors.len() as u64;
                for error in errors {
                    if examples.len() < 5 {
                        examples.push(format!("{}: {}", error.step, error.problem));
                    }
                }
            }
            Err(join) => {
                failures += 1;
                examples.push(format!("a browser task ended: {join}"));
            }
        }
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Outcome {
        plan,
        elapsed,
        latencies,
        failures,
        examples,
        not_started: remaining.load(Ordering::Relaxed),
    }
}

/// Takes one operation from the shared count; `false` when none is left.
fn take(remaining: &AtomicU64) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

async fn browse(
    work: Work,
    app: Url,
    user_name: &'static str,
    expected_id: &'static str,
    remaining: Arc<AtomicU64>,
    stop_at: Instant,
) -> (Vec<Duration>, Vec<Failure>) {
    let (mut done, mut errors) = (Vec::new(), Vec::new());
    let browser = match Browser::new(&app, user_name, expected_id) {
        Ok(browser) => browser,
        Err(error) => return (done, vec![error]),
    };
    if work == Work::Me {
        // Without a session every `/me` would fail: one failure, and this browser stops.
        if let Err(error) = browser.log_in().await {
            return (done, vec![error]);
        }
    }
    while Instant::now() < stop_at && take(&remaining) {
        let outcome = match work {
            Work::Login | Work::LoginLogout => {
                browser.forget_cookies();
                let logged_in = browser.log_in().await;
                if work == Work::LoginLogout && logged_in.is_ok() {
                    browser.log_out().await.map_err(|e| errors.push(e)).ok();
                }
                logged_in
            }
            Work::Me => browser.me().await,
        };
        match outcome {
            Ok(latency) => done.push(latency),
            Err(error) => errors.push(error),
        }
    }
    (done, errors)
}
