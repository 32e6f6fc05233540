//! Load that does not wait for the fleet, and a watch on every instance.
//!
//! - Readers: a few sessions logged in at the start and never logged out, whose reads
//!   of `/me` and `/account` are sent at a fixed rate (`--rate`, or half of what a short
//!   calibration finds the fleet serves beside the browsers), each on time whether or not
//!   the earlier ones have answered. Each read's latency counts from when it was due, so
//!   a fleet that falls behind shows it; a reader found logged out is a lost session.
//! - Liveness: every second, each instance's process and a `GET /` to it; one not
//!   serving is recorded, and judged at the end against its restart windows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode, header};

use super::ledger::{Class, Kind, Latency};
use super::traffic::{Browser, JSON, Shared, User, client, join};

/// Sessions the open-loop reads use, one user each.
pub const READERS: usize = 4;
/// How long the calibration drives the fleet as hard as it goes.
const CALIBRATION: Duration = Duration::from_secs(2);
/// Concurrent requests of the calibration.
const CALIBRATION_CONCURRENCY: usize = 16;
/// Open-loop reads in flight at least allowed; the bound is a store timeout and two
/// seconds of the rate (a store fault holds every read that long). One more is not sent:
/// it is counted as a 5xx of its own (599) at the time it was due, judged against the
/// windows like any other, rather than piling up without bound.
const MIN_IN_FLIGHT: usize = 2048;
/// How long a liveness probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The readers' sessions: a user and the cookie header that carries the session.
#[derive(Clone)]
pub struct Readers {
    sessions: Vec<(Arc<User>, String)>,
}

impl Readers {
    /// Logs `READERS` users in (users numbered from `first`), retrying a refused login.
    pub async fn log_in(shared: &Shared, first: usize) -> Result<Readers, String> {
        let mut sessions = Vec::new();
        for n in 0..READERS {
            let user = Arc::new(User::new(first + n));
            let mut browser = Browser::new(1000 + n, user.clone());
            let mut tries = 0;
            let cookie = loop {
                if let Some(cookie) = browser.log_in_for_reader(shared).await {
                    break cookie;
                }
                tries += 1;
                if tries > 20 {
                    return Err(format!("reader {} could not log in", user.name));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            sessions.push((user, cookie));
        }
        Ok(Readers { sessions })
    }

    /// The users to register at the emulator before the readers log in.
    pub fn users(first: usize) -> Vec<User> {
        (0..READERS).map(|n| User::new(first + n)).collect()
    }
}

/// Reads as fast as `CALIBRATION_CONCURRENCY` closed-loop clients get answers, for
/// `CALIBRATION`: what the fleet serves beside the rest of the traffic, per second.
pub async fn calibrate(shared: &Arc<Shared>, readers: &Readers) -> f64 {
    let client = client(None);
    let done = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + CALIBRATION;
    let mut tasks = Vec::new();
    for n in 0..CALIBRATION_CONCURRENCY {
        let (shared, client, done) = (shared.clone(), client.clone(), done.clone());
        let (_, cookie) = readers.sessions[n % readers.sessions.len()].clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let answer = shared
                    .send_uncounted(|base| {
                        client
                            .get(join(base, "/me"))
                            .header(header::ACCEPT, JSON)
                            .header(header::COOKIE, &cookie)
                    })
                    .await;
                if answer.is_some_and(|status| status == StatusCode::OK) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / CALIBRATION.as_secs_f64()
}

/// Sends `rate` reads a second, alternately `/me` (JSON) and `/account` (HTML), round
/// the readers, until the soak stops; each judged and its latency recorded.
pub async fn drive(
    shared: Arc<Shared>,
    readers: Readers,
    rate: f64,
    store_timeout: f64,
    dropped: Arc<AtomicUsize>,
) {
    let client = client(None);
    let most = MIN_IN_FLIGHT.max((rate * (store_timeout + 2.0)) as usize);
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0usize;
    while !shared.stopped() {
        let due = tick.tick().await.into_std();
        n += 1;
        if in_flight.load(Ordering::Relaxed) >= most {
            dropped.fetch_add(1, Ordering::Relaxed);
            shared.ledger.answer(due, 599, Class::Session, None, || {
                format!("reader read not sent: {most} in flight already")
            });
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (user, cookie) = readers.sessions[n % readers.sessions.len()].clone();
        let page = if n % 4 == 0 {
            ("/account", "text/html")
        } else {
            ("/me", JSON)
        };
        let (shared, client, in_flight) = (shared.clone(), client.clone(), in_flight.clone());
        tokio::spawn(async move {
            read(&shared, &client, &user, &cookie, page, due).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One open-loop read, judged: the reader's own page, or a lost session.
async fn read(
    shared: &Shared,
    client: &Client,
    user: &User,
    cookie: &str,
    (path, accept): (&str, &str),
    due: Instant,
) {
    let ledger = &shared.ledger;
    let what = format!("reader GET {path}");
    let answer = shared
        .send(&what, |base| {
            client
                .get(join(base, path))
                .header(header::ACCEPT, accept)
                .header(header::COOKIE, cookie)
        })
        .await;
    let Some(answer) = answer else {
        return;
    };
    let status = answer.status();
    let instance = answer.instance;
    if status == StatusCode::OK {
        let Some(body) = answer.body(ledger, &what).await else {
            return;
        };
        ledger.latency(Latency {
            due: ledger.offset(due) as f32,
            took: due.elapsed().as_secs_f32(),
            class: Class::of(&what),
            instance: u8::try_from(instance).ok(),
        });
        if !body.contains(&user.name) && !body.contains(&user.id) {
            ledger.record(Kind::Breach, || {
                format!(
                    "reader {}: {what} on instance {instance} answered 200 without the user",
                    user.name
                )
            });
        }
    } else if status.is_server_error() {
        // Counted by `send`; judged against the windows at the end.
    } else {
        // A reader never logs out and is never revoked: any other answer lost it.
        ledger.record(Kind::Lost, || {
            format!(
                "reader {}: {what} on instance {instance} answered {status}",
                user.name
            )
        });
    }
}

/// Every second until the soak stops: each instance's process is alive and answers a
/// `GET /`; what is not is recorded as an outage of that instance.
pub async fn watch(shared: Arc<Shared>, pids: Arc<Mutex<Vec<Option<u32>>>>) {
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROBE_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_else(|_| Client::new());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !shared.stopped() {
        tick.tick().await;
        let bases = shared.bases();
        let pids = pids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (instance, base) in bases.iter().enumerate() {
            if let Some(state) = pids.get(instance).copied().flatten().and_then(gone) {
                shared
                    .ledger
                    .outage(instance, || format!("process not running ({state})"));
                continue;
            }
            match client.get(join(base, "/")).send().await {
                Ok(response) if !response.status().is_server_error() => {}
                Ok(response) => {
                    let status = response.status();
                    shared
                        .ledger
                        .outage(instance, || format!("GET / answered {status}"));
                }
                Err(error) => shared
                    .ledger
                    .outage(instance, || format!("GET / not answered: {error}")),
            }
        }
    }
}

/// Why process `pid` is not running (`None` while it runs): it is gone, or a zombie.
fn gone(pid: u32) -> Option<String> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Some("no such process".to_owned());
    };
    // `pid (comm) state …`: the state follows the last parenthesis.
    let state = stat.rsplit(')').next()?.split_whitespace().next()?;
    (state == "Z" || state == "X").then(|| format!("state {state}"))
}
