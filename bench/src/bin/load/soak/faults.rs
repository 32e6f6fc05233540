//! The faults, on a schedule fixed at the start: a rolling key rotation, a Redis
//! failover and the old primary back as a replica (or, on Postgres, the server stopped
//! at once and started again), one instance SIGKILLed and restarted, Kvixi slow and then
//! failing. Each becomes a window of the run: from the fault's start to its end plus the
//! time the configured timeouts let its effects last, and only for what the fault
//! touches ([`Timings`]): a Kvixi fault excuses callbacks only, a store fault the
//! requests that read or write a session, an instance's restart the requests to that
//! instance.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvixi_e2e::fleet::{Fleet, Keys};
use kvixi_e2e::postgres::Postgres;
use kvixi_e2e::topology::SentinelGroup;
use kvixi_mock::{Endpoint, Fault};

use super::ledger::{Class, Ledger};
use super::traffic::Shared;

/// How long Kvixi holds each call while it is slow (under the 10 s HTTP timeout).
pub const KVIXI_DELAY: Duration = Duration::from_secs(3);
/// How long the breaker stays open once Kvixi fails (kvixi's default).
const BREAKER_OPEN: f64 = 10.0;
/// A busy machine's scheduling: what any window outlasts its cause by.
const SLACK: f64 = 1.0;
/// How long a client's pooled connection to a restarted instance may still fail after
/// the new process serves (the balancer's idle pool).
const RECONNECT: f64 = 1.0;
/// How long the run waits after one fault's window before the next fault begins.
const GAP: f64 = 2.0;

/// One fault.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// Each instance restarted (SIGKILL, then a new process) with the new key as a
    /// previous one, then each again with it as the current one.
    Rotation,
    /// The Redis primary SIGKILLed: Sentinel promotes the replica.
    Failover,
    /// The killed primary started again, empty; Sentinel makes it a replica.
    OldPrimaryBack,
    /// Postgres stopped at once (as a crash or a killed container) and started again on
    /// its data.
    PostgresRestart,
    /// This instance SIGKILLed and started again.
    KillInstance(usize),
    /// Kvixi's exchange and profile read held [`KVIXI_DELAY`] each.
    KvixiSlow,
    /// Kvixi's exchange and profile read answering 500.
    KvixiFailing,
}

impl Step {
    fn describe(self, schedule: &Schedule) -> String {
        match self {
            Step::Rotation => "rolling key rotation (6 restarts)".to_owned(),
            Step::Failover => "Redis primary killed (failover)".to_owned(),
            Step::OldPrimaryBack => "old primary back as a replica".to_owned(),
            Step::PostgresRestart => "Postgres stopped at once and restarted".to_owned(),
            Step::KillInstance(n) => format!("instance {n} SIGKILLed, restarted"),
            Step::KvixiSlow => format!(
                "Kvixi slow ({KVIXI_DELAY:?} a call) for {:.0} s",
                schedule.kvixi_for.as_secs_f64()
            ),
            Step::KvixiFailing => format!(
                "Kvixi answers 500 for {:.0} s",
                schedule.kvixi_for.as_secs_f64()
            ),
        }
    }
}

/// The faults of a run and when each is due (seconds from the start).
pub struct Schedule {
    /// Each fault and when it is due; a fault starts no earlier than [`GAP`] after the
    /// previous one's window.
    pub steps: Vec<(f64, Step)>,
    /// How long each Kvixi fault lasts.
    pub kvixi_for: Duration,
    /// The pause between two restarts of the rotation.
    pub pause: Duration,
}

impl Schedule {
    /// The faults of a run of `total`, at the same fractions of it for any length; with
    /// `failovers` 2, the Redis primary (the promoted replica) fails over again at 75 %
    /// and comes back at 83 % (to tell a high-water mark from a leak).
    /// On Postgres (`postgres`), a restart of the server takes the place of each
    /// failover and there is no old primary to bring back.
    pub fn for_run(total: Duration, failovers: u8, postgres: bool) -> Schedule {
        let t = total.as_secs_f64();
        let kvixi_for = Duration::from_secs_f64((t * 0.05).clamp(3.0, 30.0));
        let store_fault = |at: f64, back: f64| {
            if postgres {
                vec![(at, Step::PostgresRestart)]
            } else {
                vec![(at, Step::Failover), (back, Step::OldPrimaryBack)]
            }
        };
        let mut steps = vec![(t * 0.10, Step::Rotation)];
        steps.extend(store_fault(t * 0.25, t * 0.33));
        steps.extend([
            (t * 0.42, Step::KillInstance(1)),
            (t * 0.55, Step::KvixiSlow),
            (t * 0.55, Step::KvixiFailing),
        ]);
        if failovers > 1 {
            steps.extend(store_fault(t * 0.75, t * 0.83));
        }
        Schedule {
            steps,
            kvixi_for,
            pause: Duration::from_secs_f64((t * 0.005).clamp(0.5, 3.0)),
        }
    }

    /// The schedule, a line a fault.
    pub fn describe(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|(at, step)| format!("{at:6.1}s  {}", step.describe(self)))
            .collect()
    }
}

/// How long each fault's effects may outlast it, from the instances' configuration:
/// printed at the start of the run.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// `session_store_timeout`: a store call waits no longer.
    pub store_timeout: f64,
    /// `http_timeout`: a call to Kvixi waits no longer.
    pub kvixi_timeout: f64,
}

impl Timings {
    /// The instances' timings: kvixi's defaults, as the soak sets no other.
    pub fn of_instances() -> Timings {
        let config = kvixi_core::Config::builder("soak", "soak", "http://127.0.0.1/cb")
            .build()
            .ok();
        let seconds = |get: fn(&kvixi_core::Config) -> Duration, default: f64| {
            config.as_ref().map_or(default, |c| get(c).as_secs_f64())
        };
        Timings {
            store_timeout: seconds(kvixi_core::Config::session_store_timeout, 2.0),
            kvixi_timeout: seconds(kvixi_core::Config::http_timeout, 10.0),
        }
    }

    /// The windows' rules, a line each.
    pub fn describe(&self) -> Vec<String> {
        vec![
            format!(
                "a store fault excuses callbacks and session reads and writes until the store serves again + the store timeout {:.1} s + {SLACK:.0} s",
                self.store_timeout
            ),
            format!(
                "Kvixi slow excuses callbacks until it is lifted + its delay {:.0} s + {SLACK:.0} s; Kvixi failing, until lifted + the breaker's {BREAKER_OPEN:.0} s + {SLACK:.0} s (HTTP timeout {:.0} s)",
                KVIXI_DELAY.as_secs_f64(),
                self.kvixi_timeout
            ),
            format!(
                "an instance's restart excuses requests to that instance only, until the new process serves + {:.0} s",
                RECONNECT + SLACK
            ),
        ]
    }
}

/// A fault as it happened.
#[derive(Clone, Debug)]
pub struct Window {
    /// What it was.
    pub name: String,
    /// Seconds from the start of the run when it began.
    pub start: f64,
    /// When it was lifted (or, for a kill, when the replacement served).
    pub lifted: f64,
    /// When its effects may have lasted until: 5xx up to here are the fault's.
    pub end: f64,
    /// The requests it may fail.
    pub classes: Vec<Class>,
    /// The one instance it touches (a restart), or `None` for all.
    pub instance: Option<usize>,
}

impl Window {
    /// Whether a request sent at `sent` and ended at `ended` overlaps the window.
    pub fn covers(&self, sent: f64, ended: f64) -> bool {
        ended >= self.start && sent <= self.end
    }

    /// Whether the window excuses a 5xx of `class` from `instance` (`None`: no
    /// instance accepted the connection) sent at `sent` and ended at `ended`.
    pub fn excuses(&self, sent: f64, ended: f64, class: Class, instance: Option<usize>) -> bool {
        self.covers(sent, ended)
            && self.classes.contains(&class)
            && (self.instance.is_none() || instance.is_none() || self.instance == instance)
    }

    /// Whether `instance` may be down at `at` by this window.
    pub fn excuses_outage(&self, at: f64, instance: usize) -> bool {
        self.instance == Some(instance) && at >= self.start && at <= self.end
    }
}

/// The window of one instance's restart: requests to it only.
fn restart_window(name: String, instance: usize, start: f64, lifted: f64) -> Window {
    Window {
        name,
        start,
        lifted,
        end: lifted + RECONNECT + SLACK,
        classes: Class::ALL.to_vec(),
        instance: Some(instance),
    }
}

/// The window of a Kvixi fault: callbacks only, for `outlasts` after it is lifted.
fn kvixi_window(name: &str, start: f64, lifted: f64, outlasts: f64) -> Window {
    Window {
        name: name.to_owned(),
        start,
        lifted,
        end: lifted + outlasts + SLACK,
        classes: vec![Class::Callback],
        instance: None,
    }
}

/// What runs right after a failover (a deliberate break).
pub type AfterFailover = Box<dyn Fn(&SentinelGroup) + Send + Sync>;

/// Where the instances keep their state.
pub enum Store {
    /// A Redis primary, its replica and three sentinels (`KVIXI_REDIS_URL`).
    Sentinel(SentinelGroup),
    /// One Postgres server (`KVIXI_DATABASE_URL`).
    Postgres(Postgres),
}

/// What the faults act on.
pub struct Targets {
    /// The instances.
    pub fleet: Fleet,
    /// Their store.
    pub store: Store,
    /// The cookie key they start with, and the one the rotation brings in.
    pub keys: (String, String),
    /// The instances' process ids, for the sampler.
    pub pids: Arc<Mutex<Vec<Option<u32>>>>,
    /// How long the faults' effects may last.
    pub timings: Timings,
    /// Run right after a failover completes (`KVIXI_SOAK_BREAK=flush-promoted`: the
    /// promoted replica emptied, to show the ledger counts the lost sessions).
    pub after_failover: Option<AfterFailover>,
}

impl Targets {
    /// Runs `schedule`, returning the windows as they happened.
    pub async fn drive(&mut self, schedule: &Schedule, shared: &Shared) -> Vec<Window> {
        let ledger: &Ledger = &shared.ledger;
        let mut windows: Vec<Window> = Vec::new();
        for &(due, step) in &schedule.steps {
            let after = match (step, windows.last()) {
                (Step::KvixiFailing, Some(previous)) => previous.lifted,
                (_, Some(previous)) => previous.end + GAP,
                (_, None) => 0.0,
            };
            let begin = due.max(after);
            tokio::time::sleep_until(ledger.at(begin).into()).await;
            let name = step.describe(schedule);
            eprintln!("soak: {:6.1}s {name} ...", ledger.now());
            for window in self.act(step, &name, schedule, shared).await {
                eprintln!(
                    "soak: {:6.1}s {} lifted (window {:.1}–{:.1}s)",
                    ledger.now(),
                    window.name,
                    window.start,
                    window.end
                );
                windows.push(window);
            }
        }
        windows
    }

    /// Does `step`; returns its windows (a rotation has one per restart).
    async fn act(
        &mut self,
        step: Step,
        name: &str,
        schedule: &Schedule,
        shared: &Shared,
    ) -> Vec<Window> {
        let ledger = &shared.ledger;
        let timings = self.timings;
        let start = ledger.now();
        let store_fault = |lifted: f64| Window {
            name: name.to_owned(),
            start,
            lifted,
            end: lifted + timings.store_timeout + SLACK,
            classes: vec![Class::Callback, Class::Session],
            instance: None,
        };
        match step {
            Step::Rotation => {
                let (old, new) = (self.keys.0.clone(), self.keys.1.clone());
                let mut windows = Vec::new();
                for keys in [
                    Keys::with_previous(&old, &new),
                    Keys::with_previous(&new, &old),
                ] {
                    for index in 0..3 {
                        let started = ledger.now();
                        self.restart(index, keys.clone(), shared).await;
                        let lifted = ledger.now();
                        windows.push(restart_window(
                            format!("{name}: instance {index} restarted"),
                            index,
                            started,
                            lifted,
                        ));
                        tokio::time::sleep(schedule.pause).await;
                    }
                }
                windows
            }
            Step::Failover => {
                let Store::Sentinel(redis) = &mut self.store else {
                    return Vec::new();
                };
                let before = redis.current_primary();
                tokio::task::block_in_place(|| redis.kill_current_primary());
                let started = std::time::Instant::now();
                while started.elapsed() < Duration::from_secs(60) {
                    let now = tokio::task::block_in_place(|| redis.current_primary());
                    if now.is_some() && now != before {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if let Some(hook) = self.after_failover.as_ref() {
                    hook(redis);
                }
                vec![store_fault(ledger.now())]
            }
            Step::OldPrimaryBack => {
                if let Store::Sentinel(redis) = &mut self.store {
                    tokio::task::block_in_place(|| redis.restart_old_primary());
                }
                vec![store_fault(ledger.now())]
            }
            Step::PostgresRestart => {
                if let Store::Postgres(postgres) = &mut self.store {
                    tokio::task::block_in_place(|| {
                        postgres.stop();
                        postgres.start_again();
                    });
                }
                vec![store_fault(ledger.now())]
            }
            Step::KillInstance(index) => {
                let keys = self.fleet.keys(index).clone();
                self.restart(index, keys, shared).await;
                vec![restart_window(name.to_owned(), index, start, ledger.now())]
            }
            Step::KvixiSlow => {
                self.kvixi(Some(Fault::Delay(KVIXI_DELAY)));
                tokio::time::sleep(schedule.kvixi_for).await;
                self.kvixi(None);
                let lifted = ledger.now();
                vec![kvixi_window(name, start, lifted, KVIXI_DELAY.as_secs_f64())]
            }
            Step::KvixiFailing => {
                self.kvixi(Some(Fault::Status(500)));
                tokio::time::sleep(schedule.kvixi_for).await;
                self.kvixi(None);
                let lifted = ledger.now();
                vec![kvixi_window(name, start, lifted, BREAKER_OPEN)]
            }
        }
    }

    /// Kvixi's two server-side endpoints faulted with `fault`, or healthy again.
    fn kvixi(&self, fault: Option<Fault>) {
        for endpoint in [Endpoint::Authorize, Endpoint::UserInfo] {
            match &fault {
                Some(fault) => self.fleet.emulator.inject_fault(endpoint, fault.clone()),
                None => self.fleet.emulator.clear_fault(endpoint),
            }
        }
    }

    async fn restart(&mut self, index: usize, keys: Keys, shared: &Shared) {
        self.fleet.restart(index, keys).await;
        *self
            .pids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = self.fleet.pids();
        *shared
            .bases
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = self.fleet.bases();
    }
}
