//! `StoreTimeout`: a tower-sessions store that answers within a deadline, and what a
//! store failure means for the flow.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store;

use crate::{Config, Error};

/// A tower-sessions store whose every call gives up after a deadline
/// ([`Config::session_store_timeout`], 2 s by default) with a store error, which the
/// adapters answer as [`Error::SessionStoreUnavailable`] (503).
///
/// Why: while Redis is down, a client such as fred (`tower-sessions-redis-store`) with a
/// reconnect policy queues each command until the connection is back, without a
/// deadline of its own, so a request would wait for the outage to end. `kvixi-axum`'s
/// `with_kvixi_store` and `kvixi-rocket`'s `KvixiFairing::store` wrap the store they are
/// given in this; wrap a store yourself only where you mount tower-sessions by hand.
///
/// A store that stops answering is also not waited on by everyone: once calls have been
/// waiting and the store has answered none of them (nor any other call) for
/// [`StoreTimeout::stall_after`] (an eighth of the timeout, at least 100 ms: 250 ms by
/// default), each further call that would wait is answered the same store error at once,
/// and so are the calls that were waiting, until the store answers again (a new call
/// when none waits is let through to probe). A Redis failover thus holds a few hundred
/// milliseconds of requests per instance, each for at most that long, not the whole
/// timeout's worth; a burst against a store that
/// answers, however large, is never refused, because its answers keep coming. Each call
/// refused so is counted in `kvixi_session_store_shed_total`, and the first of a stall is
/// logged.
///
/// A call that timed out may still reach the store later: fred queues commands while it
/// reconnects and sends them once Redis is back, even those whose caller gave up (a
/// logout answered 503 would then log out later), unless its own command timeout
/// dropped them first. So give fred's `Pool::new` a reconnect policy (without one it
/// never reconnects), such as `ReconnectPolicy::new_constant(0, 100)`, and a
/// `PerformanceConfig` whose `default_command_timeout` is a little below this timeout
/// (say `config.session_store_timeout() * 4 / 5`).
///
/// ```
/// use std::time::Duration;
/// use kvixi_core::{MemoryStore, StoreTimeout};
///
/// let store = StoreTimeout::new(MemoryStore::default(), Duration::from_millis(500));
/// assert_eq!(store.timeout(), Duration::from_millis(500));
/// ```
#[derive(Clone, Debug)]
pub struct StoreTimeout<S> {
    store: S,
    timeout: Duration,
    stall: Arc<Stall>,
}

/// What the clones of one [`StoreTimeout`] know about the store's answers.
#[derive(Debug)]
struct Stall {
    /// The instant the times below count from.
    epoch: Instant,
    /// How long the store may answer nothing while calls wait before calls are shed.
    after: Duration,
    /// Calls waiting on the store now.
    waiting: AtomicUsize,
    /// Nanoseconds from `epoch` to the store's last answer, or to the moment a call began
    /// to wait while none did, whichever is later.
    progress: AtomicU64,
    /// Calls are being shed (for logging the start and end of a stall once).
    shedding: AtomicBool,
    /// Wakes the waiting calls when a stall is seen: they are given up at once too, so
    /// a stall holds no request (nor its connection and buffers) for the whole timeout.
    released: tokio::sync::Notify,
}

impl Stall {
    fn new(timeout: Duration) -> Stall {
        Stall {
            epoch: Instant::now(),
            after: (timeout / 8).max(Duration::from_millis(100)).min(timeout),
            waiting: AtomicUsize::new(0),
            progress: AtomicU64::new(0),
            shedding: AtomicBool::new(false),
            released: tokio::sync::Notify::new(),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// A call that must wait, at `at`: a guard that counts it while it waits, or `None`
    /// when the store has answered nothing for `after` while calls wait (shed it).
    fn wait(&self, at: Instant) -> Option<Waiting<'_>> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) == 0 {
            // Nobody was waiting: the silence before this call is not the store's.
            self.progress.fetch_max(self.nanos(at), Ordering::AcqRel);
        } else if self.stalled(at) {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Waiting(self))
    }

    /// Whether calls wait and the store has answered none for `after`, at `at`: if so the
    /// caller sheds its call (counted, and logged at the start of a stall).
    fn stalled(&self, at: Instant) -> bool {
        let silent = self
            .nanos(at)
            .saturating_sub(self.progress.load(Ordering::Acquire));
        if silent <= u64::try_from(self.after.as_nanos()).unwrap_or(u64::MAX) {
            return false;
        }
        if !self.shedding.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                silent_ms = silent / 1_000_000,
                waiting = self.waiting.load(Ordering::Relaxed),
                "the session store answers nothing: further calls are answered 503 at once until it does"
            );
        }
        crate::telemetry::store_call_shed();
        self.released.notify_waiters();
        true
    }

    /// The store answered (a value or an error of its own) at `at`.
    fn answered(&self, at: Instant) {
        self.progress.fetch_max(self.nanos(at), Ordering::AcqRel);
        if self.shedding.load(Ordering::Relaxed) && self.shedding.swap(false, Ordering::AcqRel) {
            tracing::info!("the session store answers again: calls wait on it again");
        }
    }
}

/// One call waiting on the store; counted until it ends, however it ends (a request
/// dropped mid-call included).
struct Waiting<'a>(&'a Stall);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S> StoreTimeout<S> {
    /// `store`, each of whose calls gets at most `timeout` to answer.
    pub fn new(store: S, timeout: Duration) -> Self {
        StoreTimeout {
            store,
            timeout,
            stall: Arc::new(Stall::new(timeout)),
        }
    }

    /// `store` with the deadline of [`Config::session_store_timeout`].
    pub fn from_config(store: S, config: &Config) -> Self {
        StoreTimeout::new(store, config.session_store_timeout())
    }

    /// How long each call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How long the store may answer nothing while calls wait on it before further calls
    /// are answered at once with a store error: an eighth of [`timeout`](Self::timeout),
    /// at least 100 ms (and at most the timeout).
    pub fn stall_after(&self) -> Duration {
        self.stall.after
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.store
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.store
    }

    /// `call`, or a store error once `timeout` has passed. The timer starts only when
    /// the store does not answer at once: a store in memory (every load of a logged-in
    /// request) pays neither a clock read nor a timer; a networked one is then awaited
    /// under `tokio::time::timeout`, from its first pending poll, which is the call
    /// itself.
    async fn within<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = session_store::Result<T>>,
    ) -> session_store::Result<T> {
        let shed = || {
            Err(session_store::Error::Backend(format!(
                "the session store has answered nothing for over {:?} while calls wait on it; {operation} not waited on",
                self.stall.after
            )))
        };
        // Calls already wait on the store (never so for a store in memory): in a stall,
        // this one is not even sent.
        if self.stall.waiting.load(Ordering::Relaxed) > 0 && self.stall.stalled(Instant::now()) {
            return shed();
        }
        let mut call = std::pin::pin!(call);
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        if let Poll::Ready(answer) = first {
            return answer;
        }
        // Registered before this call counts as waiting: a stall seen from then on
        // releases it.
        let released = self.stall.released.notified();
        let started = Instant::now();
        let Some(_waiting) = self.stall.wait(started) else {
            return shed();
        };
        let answer = tokio::select! {
            biased;
            answer = tokio::time::timeout(self.timeout, call) => answer,
            () = released => return shed(),
        };
        let ended = Instant::now();
        crate::telemetry::store_call(ended.saturating_duration_since(started));
        match answer {
            Ok(answer) => {
                self.stall.answered(ended);
                answer
            }
            Err(_elapsed) => Err(session_store::Error::Backend(format!(
                "the session store did not answer {operation} within {:?}",
                self.timeout
            ))),
        }
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for StoreTimeout<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.within("create", self.store.create(record)).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.within("save", self.store.save(record)).await
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        self.within("load", self.store.load(session_id)).await
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.within("delete", self.store.delete(session_id)).await
    }
}

/// What a tower-sessions store failure means for the flow: a backend that failed or
/// timed out (Redis down, unreachable, too slow) is [`Error::SessionStoreUnavailable`]
/// (503: nobody can be told logged in or out until it is back); a record that does not
/// encode or decode is this server's fault, [`Error::Session`] (500).
impl From<session_store::Error> for Error {
    fn from(error: session_store::Error) -> Self {
        match error {
            session_store::Error::Backend(problem) => Error::SessionStoreUnavailable { problem },
            unusable @ (session_store::Error::Encode(_) | session_store::Error::Decode(_)) => {
                Error::Session(unusable.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use time::OffsetDateTime;

    use super::*;
    use crate::MemoryStore;

    /// A store that never answers, as fred does while it waits for Redis to come back;
    /// counts the calls it got.
    #[derive(Clone, Debug, Default)]
    struct Hanging {
        calls: Arc<AtomicUsize>,
    }

    impl Hanging {
        async fn hang<T>(&self) -> session_store::Result<T> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::future::pending().await
        }
    }

    #[async_trait]
    impl SessionStore for Hanging {
        async fn create(&self, _: &mut Record) -> session_store::Result<()> {
            self.hang().await
        }
        async fn save(&self, _: &Record) -> session_store::Result<()> {
            self.hang().await
        }
        async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
            self.hang().await
        }
        async fn delete(&self, _: &Id) -> session_store::Result<()> {
            self.hang().await
        }
    }

    /// A store that refuses every call at once, as a client with no connection does.
    #[derive(Clone, Debug)]
    struct Refusing;

    #[async_trait]
    impl SessionStore for Refusing {
        async fn save(&self, _: &Record) -> session_store::Result<()> {
            Err(session_store::Error::Backend("Connection refused".into()))
        }
        async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
            Err(session_store::Error::Backend("Connection refused".into()))
        }
        async fn delete(&self, _: &Id) -> session_store::Result<()> {
            Err(session_store::Error::Backend("Connection refused".into()))
        }
    }

    const DEADLINE: Duration = Duration::from_millis(50);

    fn record() -> Record {
        Record {
            id: Id::default(),
            data: [("k".to_owned(), serde_json::Value::from("v"))].into(),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn a_store_that_never_answers_is_unavailable_once_the_deadline_passes() {
        let hanging = Hanging::default();
        let store = StoreTimeout::new(hanging.clone(), DEADLINE);
        let mut record = record();
        let started = Instant::now();
        let failures = [
            store.load(&record.id).await.map(drop).unwrap_err(),
            store.save(&record).await.unwrap_err(),
            store.create(&mut record).await.unwrap_err(),
            store.delete(&record.id).await.unwrap_err(),
        ];
        let elapsed = started.elapsed();

        assert_eq!(
            hanging.calls.load(Ordering::SeqCst),
            4,
            "each call reached it"
        );
        assert!(elapsed >= DEADLINE * 4, "each call waited: {elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(2),
            "none waited on: {elapsed:?}"
        );
        for failure in failures {
            let error = Error::from(failure);
            assert!(
                matches!(&error, Error::SessionStoreUnavailable { problem } if problem.contains("within 50ms")),
                "{error:?}"
            );
            assert_eq!(error.status(), 503);
            assert_eq!(error.code(), "session_store_unavailable");
        }
    }

    #[tokio::test]
    async fn a_failing_store_is_unavailable_at_once() {
        let store = StoreTimeout::new(Refusing, Duration::from_secs(30));
        let started = Instant::now();
        let error = Error::from(store.load(&Id::default()).await.unwrap_err());
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            matches!(&error, Error::SessionStoreUnavailable { problem } if problem == "Connection refused"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_store_that_answers_in_time_is_passed_through() {
        let memory = MemoryStore::default();
        let store = StoreTimeout::new(memory.clone(), DEADLINE);
        let mut record = record();
        store.create(&mut record).await.unwrap();
        assert_eq!(store.load(&record.id).await.unwrap(), Some(record.clone()));
        assert_eq!(
            memory.load(&record.id).await.unwrap(),
            Some(record.clone()),
            "written to the wrapped store"
        );
        store.delete(&record.id).await.unwrap();
        assert_eq!(store.load(&record.id).await.unwrap(), None);
    }

    /// A store that answers after `delay`, as a networked one does.
    #[derive(Clone, Debug)]
    struct Slow {
        store: MemoryStore,
        delay: Duration,
    }

    #[async_trait]
    impl SessionStore for Slow {
        async fn save(&self, record: &Record) -> session_store::Result<()> {
            tokio::time::sleep(self.delay).await;
            self.store.save(record).await
        }
        async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
            tokio::time::sleep(self.delay).await;
            self.store.load(id).await
        }
        async fn delete(&self, id: &Id) -> session_store::Result<()> {
            tokio::time::sleep(self.delay).await;
            self.store.delete(id).await
        }
    }

    #[tokio::test]
    async fn a_store_that_waits_but_answers_in_time_is_passed_through() {
        let memory = MemoryStore::default();
        let slow = Slow {
            store: memory.clone(),
            delay: DEADLINE / 5,
        };
        let store = StoreTimeout::new(slow, DEADLINE);
        let record = record();
        store.save(&record).await.expect("saved in time");
        let started = Instant::now();
        assert_eq!(store.load(&record.id).await.unwrap(), Some(record.clone()));
        assert!(started.elapsed() >= DEADLINE / 5, "it did wait");
        store.delete(&record.id).await.expect("deleted in time");
        assert_eq!(memory.load(&record.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_store_that_answers_nothing_is_not_waited_on_by_every_call() {
        let hanging = Hanging::default();
        let store = StoreTimeout::new(hanging.clone(), Duration::from_millis(800));
        assert_eq!(store.stall_after(), Duration::from_millis(100));
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.load(&Id::default()).await }
        });
        // Within the grace, a second call still waits (a store may take a moment).
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = tokio::spawn({
            let store = store.clone();
            async move { store.load(&Id::default()).await }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(hanging.calls.load(Ordering::SeqCst), 2);

        // Silent for longer than stall_after while two calls wait: shed at once, unsent.
        let started = Instant::now();
        let shed = Error::from(store.load(&Id::default()).await.unwrap_err());
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "not waited on"
        );
        assert!(
            matches!(&shed, Error::SessionStoreUnavailable { problem } if problem.contains("answered nothing")),
            "{shed:?}"
        );
        assert_eq!(
            hanging.calls.load(Ordering::SeqCst),
            2,
            "the shed call was not sent"
        );

        // The calls that were waiting are given up with it, long before the deadline;
        // then a new call probes the store again.
        let released = Instant::now();
        let first = Error::from(waiting.await.unwrap().unwrap_err());
        assert!(
            matches!(&first, Error::SessionStoreUnavailable { problem } if problem.contains("answered nothing")),
            "{first:?}"
        );
        assert!(second.await.unwrap().is_err());
        assert!(
            released.elapsed() < Duration::from_millis(100),
            "the waiting calls were released, not kept to the deadline"
        );
        let started = Instant::now();
        assert!(store.load(&Id::default()).await.is_err());
        assert!(
            started.elapsed() >= Duration::from_millis(800),
            "it waited again"
        );
        assert_eq!(hanging.calls.load(Ordering::SeqCst), 3);
    }

    /// A store that answers one call at a time, each after `each`: a queue.
    #[derive(Clone, Debug)]
    struct OneAtATime {
        store: MemoryStore,
        line: Arc<tokio::sync::Mutex<()>>,
        each: Duration,
    }

    #[async_trait]
    impl SessionStore for OneAtATime {
        async fn save(&self, record: &Record) -> session_store::Result<()> {
            let _turn = self.line.lock().await;
            tokio::time::sleep(self.each).await;
            self.store.save(record).await
        }
        async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
            let _turn = self.line.lock().await;
            tokio::time::sleep(self.each).await;
            self.store.load(id).await
        }
        async fn delete(&self, id: &Id) -> session_store::Result<()> {
            let _turn = self.line.lock().await;
            tokio::time::sleep(self.each).await;
            self.store.delete(id).await
        }
    }

    #[tokio::test]
    async fn a_burst_against_a_store_that_answers_is_never_shed() {
        // 150 calls, one every 3 ms, against a store answering one every 6 ms: the line
        // grows for 450 ms and the last call waits ~450 ms, far past stall_after
        // (250 ms) with calls waiting all along, but answers keep coming.
        let store = StoreTimeout::new(
            OneAtATime {
                store: MemoryStore::default(),
                line: Arc::default(),
                each: Duration::from_millis(6),
            },
            Duration::from_secs(2),
        );
        assert_eq!(store.stall_after(), Duration::from_millis(250));
        let record = record();
        store.save(&record).await.unwrap();
        let started = Instant::now();
        let mut calls = Vec::new();
        for _ in 0..150 {
            let store = store.clone();
            let id = record.id;
            calls.push(tokio::spawn(async move { store.load(&id).await }));
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        for call in calls {
            assert_eq!(call.await.unwrap().expect("not shed"), Some(record.clone()));
        }
        assert!(
            started.elapsed() > Duration::from_millis(800),
            "they did queue"
        );
    }

    #[test]
    fn a_record_that_does_not_decode_is_a_server_error_not_an_outage() {
        let error = Error::from(session_store::Error::Decode("garbage".into()));
        assert!(matches!(error, Error::Session(_)), "{error:?}");
        assert_eq!(error.status(), 500);
    }

    #[test]
    fn the_deadline_comes_from_the_config() {
        let config = Config::builder("app", "secret", "https://app.example/auth/kvixi/callback")
            .session_store_timeout(Duration::from_millis(750))
            .build()
            .expect("valid config");
        let store = StoreTimeout::from_config(MemoryStore::default(), &config);
        assert_eq!(store.timeout(), Duration::from_millis(750));
    }
}
