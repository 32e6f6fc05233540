//! What a callback may cost while Kvixi is slow or down: a bound on calls to Kvixi in
//! flight per process, and a circuit breaker that answers at once while Kvixi is failing.
//!
//! - The bound ([`Config::max_provider_calls`]): a callback that finds every slot taken
//!   waits at most [`SLOT_WAIT`] for one, then is answered 503 `provider_busy`, its
//!   pending login unspent. Never a queue longer than that wait.
//! - The breaker ([`Config::provider_breaker`]): a run of timeouts, transport errors or
//!   5xx answers within a window opens it; while open, callbacks are answered 503
//!   `provider_unavailable` without a call to Kvixi; after the cool-down one probe goes
//!   through, and its first good answer closes it. An answer of Kvixi's (any HTTP 200,
//!   "invalid auth_key" included) is a good answer: a bot with bogus keys cannot open it.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::Config;
use crate::error::Error;
use crate::telemetry as metrics;

/// The longest a callback waits for a free slot before it is answered `provider_busy`.
pub const SLOT_WAIT: Duration = Duration::from_millis(250);

/// `Retry-After` of a `provider_busy` answer, in seconds.
const BUSY_RETRY_AFTER: u64 = 1;

/// The breaker's state, as the pure state machine holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are refused until this instant.
    Open {
        /// When the cool-down ends.
        until: Instant,
    },
    /// The cool-down ended: one probe may go through.
    HalfOpen {
        /// Whether the probe is out.
        probing: bool,
    },
}

impl BreakerState {
    /// The gauge's value: 0 closed, 1 open, 2 half-open.
    fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open { .. } => 1.0,
            BreakerState::HalfOpen { .. } => 2.0,
        }
    }
}

/// The circuit breaker: a pure state machine over the instants it is given.
#[derive(Debug)]
pub struct Breaker {
    state: BreakerState,
    /// The failures of the current run, oldest first (at most `failures` of them).
    run: VecDeque<Instant>,
    failures: usize,
    window: Duration,
    cool_down: Duration,
}

/// What the breaker says of a call about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Make the call; `probe` when it decides whether the breaker closes.
    Go {
        /// This call is the half-open probe.
        probe: bool,
    },
    /// Do not: Kvixi is failing; try again after this long.
    Refuse {
        /// The rest of the cool-down (at least a second).
        retry_after: Duration,
    },
}

impl Breaker {
    /// A closed breaker that opens after `failures` failures within `window` and stays
    /// open for `cool_down`.
    pub fn new(failures: u32, window: Duration, cool_down: Duration) -> Breaker {
        Breaker {
            state: BreakerState::Closed,
            run: VecDeque::new(),
            failures: usize::try_from(failures.max(1)).unwrap_or(usize::MAX),
            window,
            cool_down,
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a call may be made at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            BreakerState::Closed => Admission::Go { probe: false },
            BreakerState::Open { until } if now < until => Admission::Refuse {
                retry_after: (until - now).max(Duration::from_secs(1)),
            },
            BreakerState::Open { .. } | BreakerState::HalfOpen { probing: false } => {
                self.state = BreakerState::HalfOpen { probing: true };
                Admission::Go { probe: true }
            }
            BreakerState::HalfOpen { probing: true } => Admission::Refuse {
                retry_after: Duration::from_secs(1),
            },
        }
    }

    /// A call made at `now` ended: `healthy` when Kvixi answered (any HTTP 200 answer,
    /// errors in the body included), not when it timed out, was unreachable or answered
    /// 5xx.
    pub fn record(&mut self, healthy: bool, probe: bool, now: Instant) {
        if healthy {
            if probe || matches!(self.state, BreakerState::HalfOpen { .. }) {
                self.state = BreakerState::Closed;
            }
            self.run.clear();
            return;
        }
        if probe || matches!(self.state, BreakerState::HalfOpen { .. }) {
            self.open(now);
            return;
        }
        if !matches!(self.state, BreakerState::Closed) {
            // Calls admitted before it opened, failing late: it is open already.
            return;
        }
        while self
            .run
            .front()
            .is_some_and(|first| now.saturating_duration_since(*first) > self.window)
        {
            self.run.pop_front();
        }
        self.run.push_back(now);
        if self.run.len() >= self.failures {
            self.open(now);
        }
    }

    /// The probe ended without an answer either way (its request was dropped).
    pub fn abandon(&mut self, probe: bool) {
        if probe && self.state == (BreakerState::HalfOpen { probing: true }) {
            self.state = BreakerState::HalfOpen { probing: false };
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open {
            until: now + self.cool_down,
        };
        self.run.clear();
    }
}

/// The bound and the breaker of one flow.
#[derive(Debug)]
pub(crate) struct ProviderGuard {
    slots: Semaphore,
    max: usize,
    /// Callbacks waiting for a slot right now: at most `max` of them wait, the others
    /// are refused at once (a flood gains nothing from a queue it cannot get through).
    waiting: std::sync::atomic::AtomicUsize,
    breaker: Mutex<Breaker>,
}

/// A slot for the calls of one callback; gives it back when dropped.
pub(crate) struct Slot<'a> {
    guard: &'a ProviderGuard,
    _permit: SemaphorePermit<'a>,
    probe: bool,
    recorded: bool,
}

impl ProviderGuard {
    pub(crate) fn new(config: &Config) -> ProviderGuard {
        let (failures, window, cool_down) = config.provider_breaker();
        let max = config.max_provider_calls();
        ProviderGuard {
            slots: Semaphore::new(max),
            max,
            waiting: std::sync::atomic::AtomicUsize::new(0),
            breaker: Mutex::new(Breaker::new(failures, window, cool_down)),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a callback's calls to Kvixi, or why there is none: the breaker is open
    /// (`provider_unavailable`, at once) or every slot stayed taken for [`SLOT_WAIT`]
    /// (`provider_busy`).
    pub(crate) async fn slot(&self) -> Result<Slot<'_>, Error> {
        let admission = self.breaker().admit(Instant::now());
        let probe = match admission {
            Admission::Go { probe } => probe,
            Admission::Refuse { retry_after } => {
                metrics::provider_refused("breaker");
                return Err(Error::ProviderCircuitOpen {
                    retry_after: retry_after.as_secs().max(1),
                });
            }
        };
        // The probe, too, needs a slot.
        let permit = match self.slots.try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) => self.wait_for_slot().await,
        };
        let Some(permit) = permit else {
            self.breaker().abandon(probe);
            metrics::provider_refused("busy");
            return Err(Error::ProviderBusy {
                retry_after: BUSY_RETRY_AFTER,
            });
        };
        metrics::provider_calls_in_flight(self.max - self.slots.available_permits());
        Ok(Slot {
            guard: self,
            _permit: permit,
            probe,
            recorded: false,
        })
    }
}

impl ProviderGuard {
    /// A slot within [`SLOT_WAIT`], if at most as many callbacks as there are slots are
    /// waiting already; `None` at once otherwise, or when the wait ends empty-handed.
    async fn wait_for_slot(&self) -> Option<SemaphorePermit<'_>> {
        // Counted out on drop, even when the request is dropped while it waits.
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }
        }
        let queued = self
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        if queued >= self.max {
            return None;
        }
        tokio::time::timeout(SLOT_WAIT, self.slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

impl Slot<'_> {
    /// Records how Kvixi answered a call made with this slot.
    pub(crate) fn record(&mut self, outcome: &Result<impl Sized, Error>) {
        let healthy = match outcome {
            Ok(_) => true,
            Err(error) => !counts_against_kvixi(error),
        };
        let mut breaker = self.guard.breaker();
        breaker.record(healthy, self.probe, Instant::now());
        metrics::breaker_state(breaker.state().gauge());
        self.recorded = true;
        // Only the first call of a probing callback is the probe.
        self.probe = false;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.guard.breaker().abandon(self.probe);
        }
        // The permit is given back right after this.
        metrics::provider_calls_in_flight(
            (self.guard.max - self.guard.slots.available_permits()).saturating_sub(1),
        );
    }
}

/// Whether `error` (from a call to Kvixi) says Kvixi is failing: a timeout, no
/// connection, or a 5xx. Its answers in the body (a refused key, a refused app, a
/// malformed or oversized body) are answers: Kvixi is up.
pub(crate) fn counts_against_kvixi(error: &Error) -> bool {
    match error {
        Error::ProviderTimeout { .. } | Error::ProviderUnreachable { .. } => true,
        Error::ProviderStatus { status } => *status >= 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn breaker() -> Breaker {
        Breaker::new(3, 10 * SECOND, 5 * SECOND)
    }

    #[test]
    fn a_run_of_failures_within_the_window_opens_it_for_the_cool_down() {
        let start = Instant::now();
        let mut breaker = breaker();
        for n in 0..2 {
            assert_eq!(breaker.admit(start), Admission::Go { probe: false });
            breaker.record(false, false, start + n * SECOND);
        }
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "two failures: still closed"
        );
        breaker.record(false, false, start + 2 * SECOND);
        let opened = start + 2 * SECOND;
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until: opened + 5 * SECOND
            }
        );
        assert_eq!(
            breaker.admit(opened + SECOND),
            Admission::Refuse {
                retry_after: 4 * SECOND
            }
        );
        // After the cool-down, one probe; a second caller is refused meanwhile.
        let later = opened + 5 * SECOND;
        assert_eq!(breaker.admit(later), Admission::Go { probe: true });
        assert!(matches!(breaker.admit(later), Admission::Refuse { .. }));
        // The probe's good answer closes it.
        breaker.record(true, true, later);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.admit(later), Admission::Go { probe: false });
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_an_abandoned_one_lets_another_probe() {
        let start = Instant::now();
        let mut breaker = Breaker::new(1, 10 * SECOND, 5 * SECOND);
        breaker.record(false, false, start);
        let after = start + 6 * SECOND;
        assert_eq!(breaker.admit(after), Admission::Go { probe: true });
        breaker.abandon(true);
        assert_eq!(breaker.admit(after), Admission::Go { probe: true });
        breaker.record(false, true, after);
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    }

    #[test]
    fn failures_spread_wider_than_the_window_or_broken_by_answers_never_open_it() {
        let start = Instant::now();
        let mut breaker = breaker();
        for n in 0..10 {
            breaker.record(false, false, start + n * 6 * SECOND);
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "one failure per 6 s");
        // Bots with bogus keys: Kvixi answers each (healthy), between real failures.
        let mut breaker = breaker_with_answers_between();
        assert_eq!(breaker.admit(start), Admission::Go { probe: false });
        breaker.record(true, false, start);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    fn breaker_with_answers_between() -> Breaker {
        let start = Instant::now();
        let mut breaker = breaker();
        for n in 0..100 {
            breaker.record(n % 3 != 0, false, start + n * Duration::from_millis(10));
        }
        breaker
    }

    #[test]
    fn only_timeouts_transport_errors_and_5xx_count_against_kvixi() {
        assert!(counts_against_kvixi(&Error::ProviderTimeout {
            after: SECOND
        }));
        assert!(counts_against_kvixi(&Error::ProviderUnreachable {
            problem: "refused".into()
        }));
        assert!(counts_against_kvixi(&Error::ProviderStatus { status: 503 }));
        assert!(!counts_against_kvixi(&Error::ProviderStatus {
            status: 404
        }));
        assert!(!counts_against_kvixi(&Error::AuthKeyRejected {
            provider_message: "invalid auth_key".into()
        }));
        assert!(!counts_against_kvixi(&Error::ProviderMalformed {
            problem: "not JSON".into()
        }));
    }
}
