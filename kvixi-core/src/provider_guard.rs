//! What a callback may cost while Kvixi is slow or down: a bound on calls to Kvixi in
//! flight per process, a queue bounded by the wait it would cause, and a circuit breaker
//! that answers at once while Kvixi is failing.
//!
//! - The bound ([`Config::max_provider_calls`]): at most that many callbacks call Kvixi
//!   at once. One that finds every slot taken joins the queue when its expected wait
//!   ([`SlotQueue::expected_wait`]: the rounds of slots ahead of it times the moving
//!   average of how long a callback holds a slot) is within
//!   [`Config::provider_queue_wait`], and is answered 503 `provider_busy` at once
//!   otherwise, its pending login unspent. A burst against a healthy Kvixi drains in
//!   milliseconds and waits; a queue behind a Kvixi that holds its calls never drains
//!   and is refused.
//! - A stalled Kvixi is seen before any call times out: when no slot has changed hands
//!   for four average holds while all are taken, and either a whole round of callbacks
//!   joined the line meanwhile (a flood) or [`STALL_FLOOR`] passed, the queue is stalled
//!   ([`SlotQueue::stalled`]); its waiters are answered `provider_busy` and new callbacks
//!   are refused at once until a slot is given back. A waiter is also answered
//!   `provider_busy` when its wait reaches the budget.
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

/// `Retry-After` of a `provider_busy` answer, in seconds.
const BUSY_RETRY_AFTER: u64 = 1;

/// How long a callback is assumed to hold a slot before any has been timed: two calls
/// to a Kvixi across the internet.
pub const ASSUMED_HOLD: Duration = Duration::from_millis(200);

/// A queue whose slots have not changed hands for this many average holds is stalled…
const STALL_HOLDS: u32 = 4;

/// …and never sooner than this: a busy machine's pause is not a stalled Kvixi.
pub const STALL_FLOOR: Duration = Duration::from_millis(25);

/// The weight of the newest hold in the moving average (1/8, as TCP's smoothed RTT).
const HOLD_WEIGHT: u32 = 8;

/// What the queue for slots has seen: the pure state behind its decisions, fed the
/// instants it is given.
#[derive(Debug, Clone)]
pub struct SlotQueue {
    slots: usize,
    budget: Duration,
    /// The moving average of how long a callback that called Kvixi held its slot.
    mean_hold: Option<Duration>,
    /// When a slot was last taken or given back.
    moved_at: Option<Instant>,
    /// Callbacks waiting for a slot.
    waiting: usize,
    /// Callbacks that joined the line since a slot last changed hands.
    joined_since_move: usize,
}

impl SlotQueue {
    /// An empty queue for `slots` slots, whose callbacks may wait `budget`.
    pub fn new(slots: usize, budget: Duration) -> SlotQueue {
        SlotQueue {
            slots: slots.max(1),
            budget,
            mean_hold: None,
            moved_at: None,
            waiting: 0,
            joined_since_move: 0,
        }
    }

    /// The moving average of a callback's hold on its slot ([`ASSUMED_HOLD`] before the
    /// first).
    pub fn mean_hold(&self) -> Duration {
        self.mean_hold.unwrap_or(ASSUMED_HOLD)
    }

    /// Callbacks waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// How long the slots may go without changing hands before the queue is stalled.
    pub fn stall_after(&self) -> Duration {
        self.mean_hold()
            .saturating_mul(STALL_HOLDS)
            .max(STALL_FLOOR)
    }

    /// When the queue will be stalled if no slot changes hands before.
    pub fn stall_at(&self) -> Option<Instant> {
        self.moved_at.map(|at| at + self.stall_after())
    }

    /// Whether every slot is taken (`free` is 0) and none changed hands for
    /// [`stall_after`](Self::stall_after), or for four average holds while a whole
    /// round of callbacks joined the line: Kvixi holds its calls far longer than it used
    /// to, and nothing in the queue can expect a slot soon.
    pub fn stalled(&self, free: usize, now: Instant) -> bool {
        let Some(moved_at) = self.moved_at else {
            return false;
        };
        let still = now.saturating_duration_since(moved_at);
        // A whole round of callbacks joined while nothing moved for four average holds:
        // a flood, seen before the floor (an app that pauses takes no callbacks either).
        let flooded = self.joined_since_move >= self.slots
            && still > self.mean_hold().saturating_mul(STALL_HOLDS);
        free == 0 && (still > self.stall_after() || flooded)
    }

    /// The wait of a callback that asks for a slot at `now`, when `free` slots are free,
    /// behind every callback already waiting: `None` when the queue is stalled.
    pub fn expected_wait(&self, free: usize, now: Instant) -> Option<Duration> {
        if self.stalled(free, now) {
            return None;
        }
        // Slots are handed out in order: this callback needs `rank` slots given back,
        // which come `slots` per average hold.
        let rank = (self.waiting + 1).saturating_sub(free);
        let rounds = rank.div_ceil(self.slots);
        Some(
            self.mean_hold()
                .saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX)),
        )
    }

    /// Whether a callback asking at `now` may wait for a slot: its expected wait is
    /// within the budget.
    pub fn admits(&self, free: usize, now: Instant) -> bool {
        self.expected_wait(free, now)
            .is_some_and(|wait| wait <= self.budget)
    }

    /// Whether a callback waiting since `since` gives up at `now`: its budget is spent,
    /// or the queue stalled while it waited.
    pub fn gives_up(&self, since: Instant, free: usize, now: Instant) -> bool {
        now.saturating_duration_since(since) >= self.budget || self.stalled(free, now)
    }

    /// A callback joined the queue.
    pub fn join(&mut self) {
        self.waiting += 1;
        self.joined_since_move += 1;
    }

    /// A waiting callback left the queue (with a slot or without).
    pub fn leave(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// A slot was taken at `now`.
    pub fn took(&mut self, now: Instant) {
        self.moved_at = Some(now);
        self.joined_since_move = 0;
    }

    /// A slot was given back at `now`, after `held` if its callback called Kvixi (a
    /// callback that stopped before calling, such as a replayed login, says nothing of
    /// Kvixi's speed).
    pub fn gave_back(&mut self, held: Option<Duration>, now: Instant) {
        self.moved_at = Some(now);
        self.joined_since_move = 0;
        if let Some(held) = held {
            self.mean_hold = Some(match self.mean_hold {
                None => held,
                Some(mean) => (mean.saturating_mul(HOLD_WEIGHT - 1) + held) / HOLD_WEIGHT,
            });
        }
    }
}

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

/// The bound, the queue and the breaker of one flow.
#[derive(Debug)]
pub(crate) struct ProviderGuard {
    slots: Semaphore,
    max: usize,
    queue: Mutex<SlotQueue>,
    breaker: Mutex<Breaker>,
}

/// A slot for the calls of one callback; gives it back when dropped.
pub(crate) struct Slot<'a> {
    guard: &'a ProviderGuard,
    _permit: SemaphorePermit<'a>,
    taken: Instant,
    probe: bool,
    recorded: bool,
    /// A call to Kvixi was made and answered with this slot.
    called: bool,
}

/// The shortest a waiter sleeps before it looks at the queue again.
const RECHECK: Duration = Duration::from_millis(10);

impl ProviderGuard {
    pub(crate) fn new(config: &Config) -> ProviderGuard {
        let (failures, window, cool_down) = config.provider_breaker();
        let max = config.max_provider_calls();
        ProviderGuard {
            slots: Semaphore::new(max),
            max,
            queue: Mutex::new(SlotQueue::new(max, config.provider_queue_wait())),
            breaker: Mutex::new(Breaker::new(failures, window, cool_down)),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, SlotQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a callback's calls to Kvixi, or why there is none: the breaker is open
    /// (`provider_unavailable`, at once) or the wait for a slot would be, or became, too
    /// long (`provider_busy`).
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
        let taken = Instant::now();
        self.queue().took(taken);
        metrics::provider_calls_in_flight(self.max - self.slots.available_permits());
        Ok(Slot {
            guard: self,
            _permit: permit,
            taken,
            probe,
            recorded: false,
            called: false,
        })
    }

    /// A slot once one is given back, if the queue admits this callback and it neither
    /// runs out of budget nor sees the queue stall while it waits; `None` otherwise.
    async fn wait_for_slot(&self) -> Option<SemaphorePermit<'_>> {
        // Counted out on drop, even when the request is dropped while it waits.
        struct Waiting<'a>(&'a ProviderGuard);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                let mut queue = self.0.queue();
                queue.leave();
                metrics::provider_callbacks_waiting(queue.waiting());
            }
        }
        let since = Instant::now();
        {
            let mut queue = self.queue();
            if !queue.admits(self.slots.available_permits(), since) {
                return None;
            }
            queue.join();
            metrics::provider_callbacks_waiting(queue.waiting());
        }
        let _waiting = Waiting(self);
        let deadline = since + self.queue().budget;
        // One acquire for the whole wait: it keeps this callback's place in line.
        let mut acquire = std::pin::pin!(self.slots.acquire());
        loop {
            let now = Instant::now();
            let stall_at = self.queue().stall_at().unwrap_or(deadline);
            let wake = deadline.min(stall_at.max(now + RECHECK));
            if let Ok(permit) = tokio::time::timeout_at(wake.into(), acquire.as_mut()).await {
                return permit.ok();
            }
            let now = Instant::now();
            if self
                .queue()
                .gives_up(since, self.slots.available_permits(), now)
            {
                return None;
            }
        }
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
        self.called = true;
        // Only the first call of a probing callback is the probe.
        self.probe = false;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.guard.breaker().abandon(self.probe);
        }
        let now = Instant::now();
        let held = self
            .called
            .then(|| now.saturating_duration_since(self.taken));
        self.guard.queue().gave_back(held, now);
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

    const MS: Duration = Duration::from_millis(1);
    const SLOTS: usize = 64;
    const BUDGET: Duration = Duration::from_secs(2);

    /// A queue whose callbacks have held their slot `mean` each, every slot taken at
    /// `at`, with `waiting` callbacks in line.
    fn queue(mean: Duration, at: Instant, waiting: usize) -> SlotQueue {
        let mut queue = SlotQueue::new(SLOTS, BUDGET);
        queue.gave_back(Some(mean), at);
        queue.took(at);
        for _ in 0..waiting {
            queue.join();
        }
        queue
    }

    #[test]
    fn a_burst_against_a_fast_kvixi_waits_in_line_however_long_the_line() {
        let now = Instant::now();
        // A local Kvixi: 3 ms a callback; a thousand already in line.
        let fast = queue(3 * MS, now, 1000);
        assert_eq!(
            fast.expected_wait(0, now),
            Some(16 * 3 * MS),
            "16 rounds of 64"
        );
        assert!(fast.admits(0, now));
        // Kvixi across the internet: 200 ms a callback, 64 slots serve 320 a second.
        let real = queue(200 * MS, now, 600);
        assert_eq!(real.expected_wait(0, now), Some(10 * 200 * MS));
        assert!(real.admits(0, now), "a 2 s wait is within the budget");
        // A free slot is no wait at all.
        assert_eq!(
            queue(200 * MS, now, 0).expected_wait(1, now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn the_line_is_as_long_as_the_budget_allows_not_a_fixed_count() {
        let now = Instant::now();
        let mut line = queue(100 * MS, now, 0);
        while line.admits(0, now) {
            line.join();
        }
        // 2 s of 100 ms rounds of 64 slots.
        assert_eq!(line.waiting(), 20 * SLOTS);
        let mut slower = queue(500 * MS, now, 0);
        while slower.admits(0, now) {
            slower.join();
        }
        assert_eq!(slower.waiting(), 4 * SLOTS);
    }

    #[test]
    fn a_slow_kvixi_is_refused_at_once() {
        let now = Instant::now();
        // Its average says so: one round is already past the budget.
        let slow = queue(3 * SECOND, now, 0);
        assert!(!slow.admits(0, now), "the first in line would wait 3 s");
        // Or it stalled since the average was taken: nothing changed hands for four
        // average holds (at least STALL_FLOOR) with every slot taken.
        let fast = queue(3 * MS, now, 0);
        assert!(fast.admits(0, now + STALL_FLOOR / 2));
        let later = now + STALL_FLOOR + MS;
        assert!(fast.stalled(0, later));
        assert_eq!(fast.expected_wait(0, later), None);
        assert!(!fast.admits(0, later));
        // A real Kvixi's average (200 ms) is not stalled by a pause of a few holds.
        let real = queue(200 * MS, now, 0);
        assert!(!real.stalled(0, now + 700 * MS));
        assert!(real.stalled(0, now + 801 * MS));
        // Free slots are never stalled.
        assert!(!fast.stalled(1, later));
    }

    #[test]
    fn a_round_of_callbacks_joining_while_nothing_moves_is_a_stall_before_the_floor() {
        let now = Instant::now();
        // Kvixi answered in 3 ms; nothing has moved for 13 ms (over four holds).
        let mut line = queue(3 * MS, now, SLOTS - 1);
        let still = now + 13 * MS;
        assert!(
            !line.stalled(0, still),
            "fewer than a round joined: the floor decides"
        );
        line.join();
        assert!(
            line.stalled(0, still),
            "a whole round joined and nothing moved"
        );
        assert!(!line.stalled(0, now + 11 * MS), "not yet four holds");
        // A slot changing hands starts the count again.
        line.took(still);
        assert!(!line.stalled(0, still + 13 * MS));
        // A burst against a Kvixi at 200 ms a login: a thousand join within a hold.
        let burst = queue(200 * MS, now, 1000);
        assert!(!burst.stalled(0, now + 500 * MS));
    }

    #[test]
    fn waiters_give_up_when_kvixi_slows_while_they_wait_or_their_budget_is_spent() {
        let now = Instant::now();
        let line = queue(3 * MS, now, 10);
        let joined = now;
        assert!(
            !line.gives_up(joined, 0, now + STALL_FLOOR / 2),
            "still moving"
        );
        // Nothing changed hands since: Kvixi stalled, the line is answered busy.
        assert!(line.gives_up(joined, 0, now + STALL_FLOOR + MS));
        // Slots change hands, but too slowly for this waiter's budget.
        let mut moving = queue(3 * MS, now, 10);
        moving.took(now + BUDGET - MS);
        assert!(!moving.gives_up(joined, 0, now + BUDGET - MS));
        assert!(moving.gives_up(joined, 0, now + BUDGET));
    }

    #[test]
    fn a_recovered_kvixi_admits_again() {
        let start = Instant::now();
        let mut queue = queue(3 * MS, start, 0);
        // A stall, then calls held 10 s end with Kvixi's timeout.
        let stalled = start + SECOND;
        assert!(!queue.admits(0, stalled));
        let mut now = start + 10 * SECOND;
        for _ in 0..SLOTS {
            queue.gave_back(Some(10 * SECOND), now);
        }
        assert!(!queue.admits(0, now), "a 10 s average is past the budget");
        // Kvixi heals: callbacks that find a free slot go straight in and are timed.
        let mut fast_callbacks = 0;
        while !queue.admits(0, now) {
            now += 3 * MS;
            queue.took(now);
            queue.gave_back(Some(3 * MS), now);
            fast_callbacks += 1;
        }
        assert!(
            fast_callbacks <= 20,
            "{fast_callbacks} fast callbacks to forget a 10 s average"
        );
        assert!(queue.admits(0, now));
    }

    #[test]
    fn a_callback_that_never_called_kvixi_says_nothing_of_its_speed() {
        let now = Instant::now();
        let mut queue = queue(200 * MS, now, 0);
        for _ in 0..100 {
            queue.gave_back(None, now);
        }
        assert_eq!(
            queue.mean_hold(),
            200 * MS,
            "replayed logins hold a slot for nothing"
        );
        assert_eq!(SlotQueue::new(SLOTS, BUDGET).mean_hold(), ASSUMED_HOLD);
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
