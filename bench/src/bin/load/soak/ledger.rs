//! What the soak counts: every answer per second, every 5xx with its time (to be held
//! against the fault windows at the end), and the verdicts the browsers, bots and hostile
//! requests reach, each with its first examples.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many examples of each kind the report lists.
const EXAMPLES: usize = 8;

/// A kind of outcome the verdict counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A browser (or an open-loop reader) found logged out while it should have been
    /// logged in.
    Lost,
    /// A 200 (or a session) for someone who should be anonymous.
    Breach,
    /// An honest browser's login refused with a 4xx, or an answer no scenario expects.
    Unexpected,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Lost, Kind::Breach, Kind::Unexpected];

    fn index(self) -> usize {
        self as usize
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lost => "lost sessions",
            Kind::Breach => "breaches",
            Kind::Unexpected => "unexpected answers",
        }
    }
}

/// What a request touches, which decides the faults that may excuse its 5xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// The login start: seals a cookie, touches neither Kvixi nor the session store.
    Start,
    /// The callback: Kvixi's exchange and profile read, the spent logins and the session.
    Callback,
    /// Everything else: reads or writes a session (the pages, `/me`, the logouts).
    Session,
}

impl Class {
    /// Every class, in the report's order.
    pub const ALL: [Class; 3] = [Class::Start, Class::Callback, Class::Session];

    /// The class of a request described as `GET /auth/kvixi/callback` (by its path).
    pub fn of(what: &str) -> Class {
        if what.contains("/auth/kvixi/callback") {
            Class::Callback
        } else if what.contains("/auth/kvixi/login") {
            Class::Start
        } else {
            Class::Session
        }
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Class::Start => "login start",
            Class::Callback => "callback",
            Class::Session => "session reads and writes",
        }
    }
}

/// One answer of 500 or more (or no answer: the balancer's 502/504).
#[derive(Clone, Debug)]
pub struct ServerError {
    /// Seconds since the start, when the request was sent.
    pub sent: f64,
    /// Seconds since the start, when it ended.
    pub ended: f64,
    /// The status (502 for a connection lost mid-request, 504 for a timeout).
    pub status: u16,
    /// What the request touches.
    pub class: Class,
    /// The instance that answered (or did not); `None` when none accepted a connection.
    pub instance: Option<usize>,
    /// `GET /me on instance 2`, for examples.
    pub what: String,
}

/// An instance found not serving, or skipped by the balancer: judged against that
/// instance's restart windows at the end.
#[derive(Clone, Debug)]
pub struct Outage {
    /// Seconds since the start.
    pub at: f64,
    /// Which instance.
    pub instance: usize,
    /// What was seen: `connection refused`, `process gone`, `rerouted GET /me`.
    pub what: String,
}

/// One open-loop read's latency, from the moment it was due: 12 bytes, so that a
/// 10-minute run at thousands of reads a second keeps every one.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Seconds since the start, when it was due.
    pub due: f32,
    /// How long its answer took, in seconds (from when it was due, so a late send counts).
    pub took: f32,
    /// What it touches.
    pub class: Class,
    /// The instance that answered.
    pub instance: Option<u8>,
}

/// Counts per second of the run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Second {
    /// Answers from the instances (any status).
    pub requests: u64,
    /// Of which 500 or more, or no answer.
    pub server_errors: u64,
}

/// Everything the soak counts; shared by every task.
pub struct Ledger {
    start: Instant,
    seconds: Mutex<Vec<Second>>,
    server_errors: Mutex<Vec<ServerError>>,
    outages: Mutex<Vec<Outage>>,
    latencies: Mutex<Vec<Latency>>,
    counts: [AtomicU64; 3],
    examples: [Mutex<Vec<String>>; 3],
    /// Browsers' completed logins.
    pub logins: AtomicU64,
    /// Browsers' logins that a fault refused (5xx), retried later.
    pub logins_refused: AtomicU64,
    /// Logouts and "log out everywhere" that answered 303.
    pub logouts: AtomicU64,
    /// Of which "log out everywhere".
    pub everywhere: AtomicU64,
    /// A browser's reads answered as its user.
    pub reads: AtomicU64,
    /// Logged-out answers a revocation explains.
    pub expected_logouts: AtomicU64,
    /// Bots' requests.
    pub bot_requests: AtomicU64,
    /// Hostile requests sent.
    pub hostile_requests: AtomicU64,
    /// Requests the balancer sent to another instance because one refused the connection.
    pub rerouted: AtomicU64,
}

impl Ledger {
    /// An empty ledger whose clock starts now.
    pub fn new() -> Ledger {
        Ledger {
            start: Instant::now(),
            seconds: Mutex::new(Vec::new()),
            server_errors: Mutex::new(Vec::new()),
            outages: Mutex::new(Vec::new()),
            latencies: Mutex::new(Vec::new()),
            counts: Default::default(),
            examples: Default::default(),
            logins: AtomicU64::new(0),
            logins_refused: AtomicU64::new(0),
            logouts: AtomicU64::new(0),
            everywhere: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            expected_logouts: AtomicU64::new(0),
            bot_requests: AtomicU64::new(0),
            hostile_requests: AtomicU64::new(0),
            rerouted: AtomicU64::new(0),
        }
    }

    /// Seconds since the start at `at`.
    pub fn offset(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64()
    }

    /// Seconds since the start, now.
    pub fn now(&self) -> f64 {
        self.offset(Instant::now())
    }

    /// The instant `seconds` after the start.
    pub fn at(&self, seconds: f64) -> Instant {
        self.start + Duration::from_secs_f64(seconds.max(0.0))
    }

    /// Records an answer (or the lack of one, as `status` 502/504) of a request sent at
    /// `sent`.
    pub fn answer(
        &self,
        sent: Instant,
        status: u16,
        class: Class,
        instance: Option<usize>,
        what: impl FnOnce() -> String,
    ) {
        let ended = self.now();
        let second = ended as usize;
        {
            let mut seconds = lock(&self.seconds);
            if seconds.len() <= second {
                seconds.resize(second + 1, Second::default());
            }
            seconds[second].requests += 1;
            if status >= 500 {
                seconds[second].server_errors += 1;
            }
        }
        if status >= 500 {
            lock(&self.server_errors).push(ServerError {
                sent: self.offset(sent),
                ended,
                status,
                class,
                instance,
                what: what(),
            });
        }
    }

    /// Records that `instance` was not serving (or was skipped) now.
    pub fn outage(&self, instance: usize, what: impl FnOnce() -> String) {
        let at = self.now();
        lock(&self.outages).push(Outage {
            at,
            instance,
            what: what(),
        });
    }

    /// Every outage seen so far.
    pub fn outages(&self) -> Vec<Outage> {
        lock(&self.outages).clone()
    }

    /// Records an open-loop read's latency.
    pub fn latency(&self, latency: Latency) {
        lock(&self.latencies).push(latency);
    }

    /// Every open-loop latency so far.
    pub fn latencies(&self) -> Vec<Latency> {
        lock(&self.latencies).clone()
    }

    /// Counts one `kind` with its description.
    pub fn record(&self, kind: Kind, what: impl FnOnce() -> String) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
        let mut examples = lock(&self.examples[kind.index()]);
        if examples.len() < EXAMPLES {
            examples.push(format!("{:7.2}s {}", self.now(), what()));
        }
    }

    /// How many of `kind`.
    pub fn count(&self, kind: Kind) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// The first examples of `kind`.
    pub fn examples(&self, kind: Kind) -> Vec<String> {
        lock(&self.examples[kind.index()]).clone()
    }

    /// Every kind with its count.
    pub fn verdicts(&self) -> Vec<(Kind, u64)> {
        Kind::ALL.iter().map(|&k| (k, self.count(k))).collect()
    }

    /// The per-second counts so far.
    pub fn seconds(&self) -> Vec<Second> {
        lock(&self.seconds).clone()
    }

    /// Every 5xx so far.
    pub fn server_errors(&self) -> Vec<ServerError> {
        lock(&self.server_errors).clone()
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `counter`'s value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A poisoned lock still holds good counts: a panicking task is reported by its own
/// join handle.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
