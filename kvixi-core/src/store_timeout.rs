//! `StoreTimeout`: a tower-sessions store that answers within a deadline, and what a
//! store failure means for the flow.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

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
}

impl<S> StoreTimeout<S> {
    /// `store`, each of whose calls gets at most `timeout` to answer.
    pub fn new(store: S, timeout: Duration) -> Self {
        StoreTimeout { store, timeout }
    }

    /// `store` with the deadline of [`Config::session_store_timeout`].
    pub fn from_config(store: S, config: &Config) -> Self {
        StoreTimeout::new(store, config.session_store_timeout())
    }

    /// How long each call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
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
        let mut call = std::pin::pin!(call);
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        if let Poll::Ready(answer) = first {
            return answer;
        }
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(self.timeout, call).await;
        crate::telemetry::store_call(started.elapsed());
        match answer {
            Ok(answer) => answer,
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
