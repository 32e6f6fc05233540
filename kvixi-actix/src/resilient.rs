//! `ResilientStore`: the session store as [`session_middleware`](crate::session_middleware)
//! hands it to actix-session, so that a store outage costs a 503 to the requests that need
//! the session and nothing to the others.
//!
//! actix-session loads the session before the handler of every request that carries the
//! session cookie, and answers an opaque 500 when the load fails: public pages included,
//! and after however long the store takes. Behind this wrapper, each store call gets at
//! most the configured timeout, and a failed or timed-out load yields a session holding
//! only the [`STORE_UNAVAILABLE`] marker, so the request goes on. The Kvixi routes and
//! extractors that find the marker answer 503; the marker never reaches the store.
//!
//! What the store saw during a request is kept in its [`StoreReport`], which the
//! middleware reads once the response is ready (to answer 503 in place of an opaque 500,
//! and to send no session cookie). The store is called by actix-session, which hands it
//! no request; the report of the request being served is found in [`CURRENT`], set
//! while [`Reporting`] polls that request, on the worker's thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration as StdDuration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

/// The session entry a failed load yields, holding the store's problem as JSON text.
pub(crate) const STORE_UNAVAILABLE: &str = "kvixi.store_unavailable";

type State = HashMap<String, String>;

/// The problem recorded in a session loaded while the store was unavailable, if it was.
pub(crate) fn store_unavailable(entries: &State) -> Option<String> {
    entries
        .get(STORE_UNAVAILABLE)
        .map(|json| serde_json::from_str::<String>(json).unwrap_or_else(|_| "unknown".to_owned()))
}

/// The session of a request whose load failed: the marker alone.
fn unavailable_state(problem: &str) -> State {
    let json = serde_json::Value::from(problem).to_string();
    HashMap::from([(STORE_UNAVAILABLE.to_owned(), json)])
}

/// What the session store did during one request.
#[derive(Debug, Default)]
pub(crate) struct StoreReport {
    problem: RefCell<Option<String>>,
    expiry_kept: Cell<bool>,
}

impl StoreReport {
    /// The first failure of the store during the request, if any.
    pub(crate) fn problem(&self) -> Option<String> {
        self.problem.borrow().clone()
    }

    /// Whether the store left the session's expiry as it was, asked to push it back
    /// (it did so moments ago): the cookie's `Max-Age` need not be sent again either.
    pub(crate) fn expiry_kept(&self) -> bool {
        self.expiry_kept.get()
    }

    fn record(&self, problem: &str) {
        let mut first = self.problem.borrow_mut();
        if first.is_none() {
            *first = Some(problem.to_owned());
        }
    }
}

thread_local! {
    /// The report of the request [`Reporting`] is polling on this thread.
    static CURRENT: RefCell<Option<Rc<StoreReport>>> = const { RefCell::new(None) };
}

/// Records a failure in the current request's report (none outside [`Reporting`]).
fn report_failure(problem: &str) {
    CURRENT.with(|current| {
        if let Some(report) = current.borrow().as_ref() {
            report.record(problem);
        }
    });
}

/// Records that the store kept the session's expiry as it was, in the current request's
/// report (none outside [`Reporting`]).
#[cfg(feature = "redis")]
pub(crate) fn report_expiry_kept() {
    CURRENT.with(|current| {
        if let Some(report) = current.borrow().as_ref() {
            report.expiry_kept.set(true);
        }
    });
}

/// Whether the store already failed during the current request.
fn failed_in_this_request() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|report| report.problem.borrow().is_some())
    })
}

/// A request's future, polled with its [`StoreReport`] as the current one.
pub(crate) struct Reporting<F> {
    report: Rc<StoreReport>,
    future: F,
}

impl<F> Reporting<F> {
    pub(crate) fn new(report: Rc<StoreReport>, future: F) -> Self {
        Reporting { report, future }
    }
}

impl<F: Future + Unpin> Future for Reporting<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _current = Current::enter(&this.report);
        Pin::new(&mut this.future).poll(cx)
    }
}

/// While alive, `report` is the current one; dropping it (a panic included) restores
/// the previous one, so nested middlewares each see their own.
struct Current(Option<Rc<StoreReport>>);

impl Current {
    fn enter(report: &Rc<StoreReport>) -> Current {
        Current(CURRENT.with(|current| current.replace(Some(Rc::clone(report)))))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// actix-session's store `S`, each call bounded by a timeout, an outage never failing a
/// request by itself (see the [module docs](self)):
///
/// - `load` that fails or times out: the [`STORE_UNAVAILABLE`] session, and a report;
/// - `save` or `update` of that session: refused before the store, so no marker is
///   written back and no new session replaces the stored one;
/// - `update_ttl` (extending the session's life at each request): best effort, skipped
///   once the store failed in the request, and a failure is only logged;
/// - `delete` once the store failed in the request: refused, the record may be there.
pub struct ResilientStore<S> {
    store: S,
    timeout: StdDuration,
}

impl<S: SessionStore> ResilientStore<S> {
    /// `store` with each call bounded by `timeout`.
    pub(crate) fn new(store: S, timeout: StdDuration) -> Self {
        ResilientStore { store, timeout }
    }

    /// The store's answer, or the problem that stands for its failure or silence; either
    /// way a problem is reported. The timer starts only when the store does not answer
    /// at once, as in `kvixi_core::StoreTimeout`: a memory store (every request of a
    /// logged-in user) pays neither a clock read, a timer nor a metric; a networked one
    /// is timed from its first pending poll, and its time recorded.
    async fn within<T, E: std::fmt::Display>(
        &self,
        operation: &str,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        let mut call = std::pin::pin!(call);
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        let answer = match first {
            Poll::Ready(answer) => Ok(answer),
            Poll::Pending => {
                let started = std::time::Instant::now();
                let answer = actix_web::rt::time::timeout(self.timeout, call).await;
                kvixi_core::telemetry::store_call(started.elapsed());
                answer
            }
        };
        let problem = match answer {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(error)) => format!("the session store failed to {operation}: {error:#}"),
            Err(_elapsed) => format!(
                "the session store did not {operation} within {:?}",
                self.timeout
            ),
        };
        tracing::warn!(%problem, "session store unavailable");
        report_failure(&problem);
        Err(problem)
    }
}

/// Why a write never reached the store.
fn refused(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what} not written: the session store was unavailable in this request")
}

impl<S: SessionStore> SessionStore for ResilientStore<S> {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        // A record that does not deserialize is no outage: actix-session starts afresh.
        let answer = self
            .within("load", async {
                match self.store.load(session_key).await {
                    Err(LoadError::Deserialization(error)) => {
                        Ok(Err(LoadError::Deserialization(error)))
                    }
                    Err(LoadError::Other(error)) => Err(error),
                    Ok(state) => Ok(Ok(state)),
                }
            })
            .await;
        match answer {
            Ok(loaded) => loaded,
            Err(problem) => Ok(Some(unavailable_state(&problem))),
        }
    }

    async fn save(&self, session_state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        if session_state.contains_key(STORE_UNAVAILABLE) || failed_in_this_request() {
            return Err(SaveError::Other(refused("a new session")));
        }
        let answer = self
            .within("save", async {
                match self.store.save(session_state, ttl).await {
                    Err(SaveError::Serialization(error)) => {
                        Ok(Err(SaveError::Serialization(error)))
                    }
                    Err(SaveError::Other(error)) => Err(error),
                    Ok(key) => Ok(Ok(key)),
                }
            })
            .await;
        answer.unwrap_or_else(|problem| Err(SaveError::Other(anyhow::anyhow!(problem))))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        if session_state.contains_key(STORE_UNAVAILABLE) || failed_in_this_request() {
            return Err(UpdateError::Other(refused("the session")));
        }
        let answer = self
            .within("update", async {
                match self.store.update(session_key, session_state, ttl).await {
                    Err(UpdateError::Serialization(error)) => {
                        Ok(Err(UpdateError::Serialization(error)))
                    }
                    Err(UpdateError::Other(error)) => Err(error),
                    Ok(key) => Ok(Ok(key)),
                }
            })
            .await;
        answer.unwrap_or_else(|problem| Err(UpdateError::Other(anyhow::anyhow!(problem))))
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        // Extending the session's life is worth no error and no second wait.
        if !failed_in_this_request() {
            let _ = self
                .within("extend", self.store.update_ttl(session_key, ttl))
                .await;
        }
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        if failed_in_this_request() {
            return Err(refused("the session's end"));
        }
        self.within("delete", self.store.delete(session_key))
            .await
            .map_err(|problem| anyhow::anyhow!(problem))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;
    use std::time::Instant;

    use super::*;
    use crate::MemoryStore;

    const DEADLINE: StdDuration = StdDuration::from_millis(50);
    const TTL: Duration = Duration::hours(1);

    /// How the test store behaves.
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub(crate) enum Mode {
        #[default]
        Up,
        /// Fails every call at once, as a client without a connection does.
        Refusing,
        /// Never answers, as a client waiting for Redis to come back does.
        Hanging,
    }

    /// A memory store that can refuse or hang, counting the calls that reached it;
    /// clones share everything.
    #[derive(Clone, Default)]
    pub(crate) struct Flaky {
        pub(crate) memory: MemoryStore,
        mode: Rc<Cell<Mode>>,
        calls: Rc<Cell<usize>>,
    }

    impl Flaky {
        pub(crate) fn set(&self, mode: Mode) {
            self.mode.set(mode);
        }

        /// How many calls reached the store.
        pub(crate) fn calls(&self) -> usize {
            self.calls.get()
        }

        async fn reach(&self) -> anyhow::Result<()> {
            self.calls.set(self.calls.get() + 1);
            match self.mode.get() {
                Mode::Up => Ok(()),
                Mode::Refusing => Err(anyhow::anyhow!("Connection refused")),
                Mode::Hanging => std::future::pending().await,
            }
        }
    }

    impl SessionStore for Flaky {
        async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
            self.reach().await.map_err(LoadError::Other)?;
            self.memory.load(key).await
        }
        async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
            self.reach().await.map_err(SaveError::Other)?;
            self.memory.save(state, ttl).await
        }
        async fn update(
            &self,
            key: SessionKey,
            state: State,
            ttl: &Duration,
        ) -> Result<SessionKey, UpdateError> {
            self.reach().await.map_err(UpdateError::Other)?;
            self.memory.update(key, state, ttl).await
        }
        async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
            self.reach().await?;
            self.memory.update_ttl(key, ttl).await
        }
        async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
            self.reach().await?;
            self.memory.delete(key).await
        }
    }

    fn logged_in() -> State {
        HashMap::from([("kvixi.auth".to_owned(), r#"{"user":1}"#.to_owned())])
    }

    /// A store holding one session, and that session's key.
    async fn store_with_a_session() -> (ResilientStore<Flaky>, SessionKey) {
        let store = ResilientStore::new(Flaky::default(), DEADLINE);
        let key = store.save(logged_in(), &TTL).await.expect("saved");
        (store, key)
    }

    /// Runs `call` as the request [`Reporting`] serves: the report it leaves.
    async fn in_a_request<T>(call: impl AsyncFnOnce() -> T) -> (T, Rc<StoreReport>) {
        let report = Rc::new(StoreReport::default());
        let output = Reporting::new(Rc::clone(&report), Box::pin(call())).await;
        (output, report)
    }

    #[actix_web::test]
    async fn a_store_that_does_not_answer_loads_the_marker_within_the_timeout() {
        let (store, key) = store_with_a_session().await;
        store.store.set(Mode::Hanging);
        let started = Instant::now();
        let (loaded, report) = in_a_request(async || store.load(&key).await).await;
        let elapsed = started.elapsed();

        let loaded = loaded
            .expect("an outage is no load error")
            .expect("a state");
        let problem = store_unavailable(&loaded).expect("the marker");
        assert!(problem.contains("within 50ms"), "{problem}");
        assert_eq!(loaded.len(), 1, "nothing but the marker");
        assert_eq!(report.problem(), Some(problem));
        assert!(elapsed < StdDuration::from_secs(1), "{elapsed:?}");
    }

    #[actix_web::test]
    async fn a_failing_store_loads_the_marker_at_once() {
        let (store, key) = store_with_a_session().await;
        store.store.set(Mode::Refusing);
        let (loaded, report) = in_a_request(async || store.load(&key).await).await;
        let problem = store_unavailable(&loaded.unwrap().unwrap()).expect("the marker");
        assert!(problem.contains("Connection refused"), "{problem}");
        assert!(report.problem().is_some());
    }

    #[actix_web::test]
    async fn the_marker_is_never_written_back_nor_saved_as_a_new_session() {
        let (store, key) = store_with_a_session().await;
        store.store.set(Mode::Refusing);
        let (loaded, _) = in_a_request(async || store.load(&key).await).await;
        let mut marked = loaded.unwrap().unwrap();
        marked.insert("cart".to_owned(), "[1]".to_owned());

        // The store is back before the response: still nothing reaches it.
        store.store.set(Mode::Up);
        let reached = store.store.calls();
        let key_copy = SessionKey::try_from(key.as_ref().to_owned()).unwrap();
        assert!(store.update(key_copy, marked.clone(), &TTL).await.is_err());
        assert!(store.save(marked, &TTL).await.is_err());
        assert_eq!(store.store.calls(), reached, "no call reached the store");

        let kept = store
            .load(&key)
            .await
            .unwrap()
            .expect("the session is kept");
        assert_eq!(kept, logged_in(), "as it was before the outage");
    }

    #[actix_web::test]
    async fn after_a_failure_the_request_neither_extends_nor_deletes_the_session() {
        let (store, key) = store_with_a_session().await;
        store.store.set(Mode::Hanging);
        let started = Instant::now();
        let ((ttl, delete), report) = in_a_request(async || {
            let _ = store.load(&key).await;
            (store.update_ttl(&key, &TTL).await, store.delete(&key).await)
        })
        .await;
        assert!(ttl.is_ok(), "a TTL extension never fails the response");
        assert!(
            delete.is_err(),
            "a session that may be stored is not called ended"
        );
        assert_eq!(store.store.calls(), 2, "the save, then the load alone");
        assert!(report.problem().is_some());
        assert!(
            started.elapsed() < DEADLINE * 4,
            "one wait, not one per call: {:?}",
            started.elapsed()
        );
    }

    #[actix_web::test]
    async fn a_failed_ttl_extension_is_no_error() {
        let (store, key) = store_with_a_session().await;
        store.store.set(Mode::Refusing);
        let (ttl, report) = in_a_request(async || store.update_ttl(&key, &TTL).await).await;
        assert!(ttl.is_ok());
        assert!(report.problem().is_some(), "but it is reported");
    }

    #[actix_web::test]
    async fn writes_that_fail_are_errors_and_reported() {
        let (store, key) = store_with_a_session().await;
        store.store.set(Mode::Refusing);
        let (answers, report) = in_a_request(async || {
            let saved = store.save(logged_in(), &TTL).await.map(drop).is_err();
            let key = SessionKey::try_from(key.as_ref().to_owned()).unwrap();
            let updated = store.update(key, logged_in(), &TTL).await.is_err();
            (saved, updated)
        })
        .await;
        assert_eq!(answers, (true, true));
        assert!(report.problem().unwrap().contains("failed to save"));
    }

    #[actix_web::test]
    async fn a_store_that_answers_is_passed_through_and_reports_nothing() {
        let (store, key) = store_with_a_session().await;
        let (loaded, report) = in_a_request(async || store.load(&key).await).await;
        assert_eq!(loaded.unwrap(), Some(logged_in()));
        assert_eq!(report.problem(), None);
    }

    #[actix_web::test]
    async fn outside_a_request_nothing_is_reported_and_nothing_is_current_after_one() {
        let (store, key) = store_with_a_session().await;
        store.store.set(Mode::Refusing);
        let (_, report) = in_a_request(async || store.load(&key).await).await;
        assert!(report.problem().is_some());
        assert!(
            !failed_in_this_request(),
            "the report ends with its request"
        );
        assert!(store.update_ttl(&key, &TTL).await.is_ok());
    }
}
