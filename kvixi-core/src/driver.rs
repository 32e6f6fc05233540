//! The thin async driver: runs the flow's transitions against a session and Kvixi.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::app_data::IntoAppData;
use crate::client::KvixiClient;
use crate::config::Config;
use crate::devices::{Revocation, SessionHandle};
use crate::error::Error;
use crate::events::EventHooks;
use crate::flow::{self, AuthRecord, PendingLogin, TokenState, UnixTime};
use crate::pages::Pages;
use crate::reply::Reply;
use crate::return_to::ReturnTo;
use crate::revocation::{MemoryRevocations, Revocations};
use crate::secret::AccessToken;
use crate::session::SessionStorage;
use crate::user::KvixiUser;

/// Why the application's `on_login` hook did not admit a user: a refusal of this user
/// ([`LoginRefused::new`], 403) or a failure of the app's own that a later login may not
/// meet ([`LoginRefused::unavailable`], 503).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRefused {
    reason: String,
    unavailable: bool,
}

impl LoginRefused {
    /// Refuses this user, with a reason for the logs (the user sees a generic message):
    /// 403 `login_refused`.
    pub fn new(reason: impl Into<String>) -> Self {
        LoginRefused {
            reason: reason.into(),
            unavailable: false,
        }
    }

    /// The app cannot decide now (its database does not answer): 503
    /// `login_unavailable`, nothing stored, and the browser is asked to log in again in a
    /// moment. Not a judgement of the user: an outage must not read as "not allowed".
    pub fn unavailable(reason: impl Into<String>) -> Self {
        LoginRefused {
            reason: reason.into(),
            unavailable: true,
        }
    }
}

/// What an admitted login brings to the auth record: the app data as JSON (see
/// [`AppData`](crate::AppData)), or why it cannot be stored.
pub type AdmittedLogin = Result<Option<serde_json::Value>, Error>;
/// The future an `on_login` hook becomes: admitted (with the app data) or refused.
pub type LoginHookFuture =
    Pin<Box<dyn Future<Output = Result<AdmittedLogin, LoginRefused>> + Send>>;
type LoginHook = Arc<dyn Fn(KvixiUser, AccessToken) -> LoginHookFuture + Send + Sync>;
/// A flow's clock ([`Kvixi::clock`]): whole seconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// The login flow for one app: configuration, Kvixi client and hooks, shared by all
/// requests (cheap to clone). Adapters call the `handle_*` methods from their routes and
/// [`Kvixi::current_user`] from their extractors.
///
/// ```
/// use kvixi_core::{Config, Kvixi, LoginRefused};
///
/// let config = Config::builder("app-id", "app-secret", "https://app.example/auth/kvixi/callback")
///     .build()?;
/// let kvixi = Kvixi::builder(config)
///     .on_login(|user, _token| async move {
///         if user.verified { Ok(()) } else { Err(LoginRefused::new("unverified account")) }
///     })
///     .build()?;
/// assert_eq!(kvixi.config().callback_path(), "/auth/kvixi/callback");
/// # Ok::<(), kvixi_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Kvixi {
    inner: Arc<Inner>,
}

struct Inner {
    client: KvixiClient,
    on_login: Option<LoginHook>,
    clock: Clock,
    consumed: std::sync::Mutex<flow::ConsumedLogins>,
    events: EventHooks,
    pages: Pages,
    revocations: Arc<dyn Revocations>,
    /// The bound on calls to Kvixi and the circuit breaker.
    provider: crate::provider_guard::ProviderGuard,
    /// The revocations are the per-process default: neither chosen by the app nor in
    /// the config's Redis.
    revocations_per_process: bool,
    #[cfg(feature = "redis")]
    redis: Option<crate::redis::Shared>,
    #[cfg(feature = "database")]
    database: Option<crate::database::Shared>,
    adapter_state: std::sync::Mutex<AdapterState>,
    /// The warnings for answers a store outage made 503.
    store_failure_lines: LogBudget,
}

/// At most one log line a second for one kind of failure, with the count of those left
/// out: a session store that stalls answers thousands of requests a second with 503.
#[derive(Debug)]
struct LogBudget {
    epoch: std::time::Instant,
    /// Milliseconds from `epoch` before which no line is written.
    next: std::sync::atomic::AtomicU64,
    /// Lines left out since the last one written.
    left_out: std::sync::atomic::AtomicU64,
}

impl LogBudget {
    fn new() -> Self {
        LogBudget {
            epoch: std::time::Instant::now(),
            next: std::sync::atomic::AtomicU64::new(0),
            left_out: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether a line may be written at `at`: `Some(n)` with the `n` lines left out since
    /// the last one, `None` to leave this one out.
    fn take(&self, at: std::time::Instant) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let now =
            u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        let next = self.next.load(Ordering::Acquire);
        let turn = now >= next
            && self
                .next
                .compare_exchange(
                    next,
                    now.saturating_add(1000),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
        if turn {
            Some(self.left_out.swap(0, Ordering::AcqRel))
        } else {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Values adapters keep once per flow (a memory session store that every worker shares).
type AdapterState =
    std::collections::HashMap<std::any::TypeId, Box<dyn std::any::Any + Send + Sync>>;

/// Most pending-login ids remembered as used (about 100 bytes each).
const MAX_CONSUMED_LOGINS: usize = 65_536;

impl fmt::Debug for Kvixi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kvixi")
            .field("config", self.config())
            .field("on_login", &self.inner.on_login.is_some())
            .finish_non_exhaustive()
    }
}

/// A started login: where to send the browser, and its login cookie.
#[derive(Clone, Debug)]
pub struct LoginStarted {
    /// Kvixi's login page for this app (the 303's `Location`).
    pub location: String,
    /// The sealed pending login: the value of the [`flow::LOGIN_COOKIE`], which the
    /// browser brings back to the callback.
    pub login_cookie: String,
}

/// A successful login, as the callback produced it.
#[derive(Clone, Debug)]
pub struct LoggedIn {
    /// Who logged in.
    pub user: KvixiUser,
    /// Where the browser goes now.
    pub return_to: ReturnTo,
}

/// Builds a [`Kvixi`]; see [`Kvixi::builder`].
#[must_use]
pub struct KvixiBuilder {
    config: Config,
    on_login: Option<LoginHook>,
    clock: Clock,
    /// Set in `events.rs`.
    pub(crate) events: EventHooks,
    /// Set in `pages.rs`.
    pub(crate) pages: Pages,
    /// Set in `revocation.rs`; `None` until the app chooses (then the default follows
    /// the config: Redis with a Redis URL, this process's memory without).
    pub(crate) revocations: Option<Arc<dyn Revocations>>,
}

impl KvixiBuilder {
    /// Runs `hook` after Kvixi confirmed the user and before the session is written;
    /// returning `Err` refuses the login (403, nothing stored). Use it to upsert the user
    /// in the app's database or to admit only some users.
    ///
    /// `Ok(())` stores nothing of the app's; `Ok(AppData(value))` stores `value` (a local
    /// user id, roles: at most [`MAX_APP_DATA_BYTES`](crate::MAX_APP_DATA_BYTES) of
    /// JSON) in the auth record, which the adapters' `AppUser<T>` extractors give back
    /// typed, without a second session read. A larger value fails the login with
    /// [`Error::AppDataTooLarge`] (500) and nothing is stored.
    pub fn on_login<F, Fut, D>(mut self, hook: F) -> Self
    where
        F: Fn(KvixiUser, AccessToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<D, LoginRefused>> + Send + 'static,
        D: IntoAppData,
    {
        self.on_login = Some(Arc::new(move |user, token| {
            let admitted = hook(user, token);
            Box::pin(async move { admitted.await.map(IntoAppData::into_app_data) })
        }));
        self
    }

    /// Replaces the system clock (for tests that move time without sleeping).
    pub fn clock(mut self, clock: impl Fn() -> UnixTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the flow and its HTTP client.
    ///
    /// With a Redis URL in the config ([`ConfigBuilder::redis_url`](crate::ConfigBuilder::redis_url),
    /// `KVIXI_REDIS_URL`) it also starts the process's Redis connection pool (so it must
    /// run inside a tokio runtime), and unless [`revocations`](KvixiBuilder::revocations)
    /// chose otherwise, revocation stamps and spent pending logins go to that Redis.
    /// Starting while Redis is down is fine: requests that need it answer 503 until it
    /// is back ([`Kvixi::redis_ready`] waits for it, for a startup check).
    pub fn build(self) -> Result<Kvixi, Error> {
        self.pages.validate()?;
        #[cfg(feature = "redis")]
        let redis = crate::redis::Shared::connect(&self.config)?;
        #[cfg(not(feature = "redis"))]
        if self.config.redis_url().is_some() {
            // `Config` refuses a Redis URL without the feature; a hand-made one cannot
            // get here.
            return Err(Error::Config {
                setting: "redis_url",
                problem: "needs the `redis` feature of kvixi-core".into(),
            });
        }
        #[cfg(feature = "redis")]
        let shared_stamps = redis.as_ref().map(|shared| {
            let stamps = crate::RedisRevocations::new(shared.pool.clone())
                .timeout(self.config.session_store_timeout());
            Arc::new(stamps) as Arc<dyn Revocations>
        });
        #[cfg(not(feature = "redis"))]
        let shared_stamps: Option<Arc<dyn Revocations>> = None;
        #[cfg(feature = "database")]
        let database = crate::database::Shared::connect(&self.config)?;
        #[cfg(feature = "database")]
        let shared_stamps = shared_stamps.or_else(|| {
            database
                .as_ref()
                .map(|shared| Arc::new(shared.revocations()) as Arc<dyn Revocations>)
        });
        let revocations_per_process = self.revocations.is_none() && shared_stamps.is_none();
        let revocations = self
            .revocations
            .or(shared_stamps)
            .unwrap_or_else(|| Arc::new(MemoryRevocations::default()));
        let provider = crate::provider_guard::ProviderGuard::new(&self.config);
        Ok(Kvixi {
            inner: Arc::new(Inner {
                provider,
                client: KvixiClient::new(self.config)?,
                on_login: self.on_login,
                clock: self.clock,
                consumed: std::sync::Mutex::new(flow::ConsumedLogins::new(MAX_CONSUMED_LOGINS)),
                events: self.events,
                pages: self.pages,
                revocations,
                revocations_per_process,
                #[cfg(feature = "redis")]
                redis,
                #[cfg(feature = "database")]
                database,
                adapter_state: std::sync::Mutex::default(),
                store_failure_lines: LogBudget::new(),
            }),
        })
    }
}

impl Kvixi {
    /// A flow with no hooks.
    pub fn new(config: Config) -> Result<Kvixi, Error> {
        Kvixi::builder(config).build()
    }

    /// Starts building a flow with hooks.
    pub fn builder(config: Config) -> KvixiBuilder {
        KvixiBuilder {
            config,
            on_login: None,
            clock: Arc::new(UnixTime::now),
            events: EventHooks::default(),
            pages: Pages::default(),
            revocations: None,
        }
    }

    /// The process's pool on the shared Redis (`KVIXI_REDIS_URL`), for the adapters'
    /// session stores: `None` when the config names no Redis.
    #[cfg(feature = "redis")]
    pub fn redis(&self) -> Option<&fred::clients::Pool> {
        self.inner.redis.as_ref().map(|shared| &shared.pool)
    }

    /// The process's pool on the app's database (`KVIXI_DATABASE_URL`), where the
    /// sessions, revocation stamps and spent logins are: the app's own queries may share
    /// it. `None` when the config names no database.
    #[cfg(feature = "database")]
    pub fn database(&self) -> Option<&crate::Database> {
        self.inner.database.as_ref().map(|shared| &shared.database)
    }

    /// Waits at most `limit` until the app's database answers and kvixi's tables exist:
    /// a startup check, like [`Kvixi::redis_ready`]. `Ok` at once without a database URL.
    pub async fn database_ready(&self, limit: std::time::Duration) -> Result<(), Error> {
        #[cfg(feature = "database")]
        if let Some(shared) = &self.inner.database {
            return shared.ready(limit).await;
        }
        let _ = limit;
        Ok(())
    }

    /// The session store the config names (the database, the shared Redis, or this
    /// process's memory store sized by [`Config::max_memory_sessions`]): the one the
    /// adapters' one-line setups use. Every call gives the same store.
    #[cfg(feature = "tower-sessions-store")]
    pub fn session_store(&self) -> crate::ConfiguredStore {
        use crate::configured_store::{Backend, ConfiguredStore};
        self.adapter_state(|| {
            #[cfg(feature = "database")]
            if let Some(shared) = &self.inner.database {
                return ConfiguredStore(Backend::Database(shared.store()));
            }
            #[cfg(feature = "redis")]
            if let Some(shared) = &self.inner.redis {
                return ConfiguredStore(Backend::Redis(
                    tower_sessions_redis_store::RedisStore::new(shared.pool.clone()),
                ));
            }
            ConfiguredStore(Backend::Memory(crate::MemoryStore::from_config(
                self.config(),
            )))
        })
    }

    /// [`check_own_store`](Kvixi::check_own_store) for a store of type `St`: kvixi's
    /// [`MemoryStore`](crate::MemoryStore) is per process, and so is a
    /// [`ConfiguredStore`](crate::ConfiguredStore) as far as this check goes (its
    /// revocations follow the same config); any other store may be shared.
    #[cfg(feature = "tower-sessions-store")]
    pub fn check_store<St: 'static>(&self) -> Result<(), Error> {
        use std::any::TypeId;
        let per_process = TypeId::of::<St>() == TypeId::of::<crate::MemoryStore>()
            || TypeId::of::<St>() == TypeId::of::<crate::ConfiguredStore>();
        self.check_own_store(std::any::type_name::<St>(), per_process)
    }

    /// Waits at most `limit` until the shared Redis answers: a startup check for apps
    /// that would rather not serve before it does. `Ok` at once without a Redis URL.
    pub async fn redis_ready(&self, limit: std::time::Duration) -> Result<(), Error> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.inner.redis {
            return shared.ready(limit).await;
        }
        let _ = limit;
        Ok(())
    }

    /// Whether the app may serve sessions from its own `store` (named by its type, for
    /// the error) with this flow. A store that is not `per_process` (an adapter's memory
    /// store) may be shared by several instances, and then the revocation stamps must be
    /// shared too, or "log out everywhere" would silently log out one instance only: the
    /// error names the fix. Revocations chosen with
    /// [`KvixiBuilder::revocations`] (a shared store, or [`MemoryRevocations`] for a store
    /// that really is per process) or kept in the config's Redis pass.
    pub fn check_own_store(&self, store: &str, per_process: bool) -> Result<(), Error> {
        if per_process || !self.inner.revocations_per_process {
            return Ok(());
        }
        Err(Error::Config {
            setting: "revocations",
            problem: format!(
                "are kept in this process while the sessions are in the app's own store \
                 ({store}), which several instances may share: a \"log out everywhere\" \
                 would reach one instance only. Set KVIXI_REDIS_URL \
                 (Config::builder(..).redis_url(..)) and let the adapter's one-line setup \
                 keep sessions and revocations there, or give Kvixi::builder(..) \
                 .revocations(RedisRevocations::new(pool)) on the store's Redis \
                 (.revocations(MemoryRevocations::default()) if that store is per process)"
            ),
        })
    }

    /// The value of type `T` kept once for this flow (every clone of it shares it),
    /// made by `init` on first use: for an adapter's state that every worker must share,
    /// such as its default in-memory session store.
    pub fn adapter_state<T: Clone + Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> T {
        let mut state = self
            .inner
            .adapter_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(value) = state
            .get(&std::any::TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
        {
            return value.clone();
        }
        let value = init();
        state.insert(std::any::TypeId::of::<T>(), Box::new(value.clone()));
        value
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.inner.client.config()
    }

    /// The Kvixi API client, for calls of the app's own with a [`AccessToken`].
    pub fn client(&self) -> &KvixiClient {
        &self.inner.client
    }

    /// The flow's clock: the system's, unless the builder's
    /// [`clock`](KvixiBuilder::clock) replaced it. Every time the flow decides on (token
    /// expiry, lifetimes, idle timeouts, renewals) is read from it.
    pub fn now(&self) -> UnixTime {
        (self.inner.clock)()
    }

    /// The flow's clock itself ([`now`](Kvixi::now) is a call of it), for session
    /// layers that set and judge expiries on it: kvixi-core's
    /// [`CookieSessions::for_flow`](crate::CookieSessions::for_flow), kvixi-axum's store
    /// wrapper.
    pub fn clock(&self) -> Clock {
        Arc::clone(&self.inner.clock)
    }

    pub(crate) fn revocations(&self) -> &dyn Revocations {
        &*self.inner.revocations
    }

    /// The record a login writes: begun strictly after the user's latest revocation.
    async fn login_record(
        &self,
        user: KvixiUser,
        token: AccessToken,
        app_data: Option<serde_json::Value>,
    ) -> Result<AuthRecord, Error> {
        let revoked_at = self.revocations().latest_revocation(&user.id).await?;
        let now = self.now();
        let mut record = flow::finish_login(self.config(), user, token, now);
        record.logged_in_at = flow::login_time(now, revoked_at);
        record.app_data = app_data;
        record.handle = Some(SessionHandle::random());
        Ok(record)
    }

    /// The auth record read as `R`, if it still counts: a session past its absolute
    /// lifetime, or begun before its user's revocation, is removed and anonymous.
    pub(crate) async fn live_record<R: DeserializeOwned + LiveRecord>(
        &self,
        session: &dyn SessionStorage,
    ) -> Result<Option<R>, Error> {
        let Some(record) = read::<R>(session, flow::AUTH_RECORD_KEY).await? else {
            return Ok(None);
        };
        let live = self.still_counts(session, &record).await?;
        Ok(live.then_some(record))
    }

    /// Whether a session whose record is `record` still counts; when it does not, its
    /// record is removed.
    pub(crate) async fn still_counts(
        &self,
        session: &dyn SessionStorage,
        record: &impl LiveRecord,
    ) -> Result<bool, Error> {
        let user_id = record.user_id();
        // Without waiting when the store knows at once (memory, a fresh cache entry).
        let revocation = match self.revocations().revoked_at_now(user_id) {
            Some(revocation) => revocation,
            None => self.revocations().revoked_at(user_id).await?,
        };
        match self.check(record, &revocation) {
            flow::SessionCheck::Live => {
                // A renewal of the session's expiry is when "your devices" sees it.
                if let Some(handle) = record.handle() {
                    if session.renewed() {
                        let started = record.started();
                        self.index_seen(user_id, handle, started, record.remembered())
                            .await;
                    }
                }
                Ok(true)
            }
            ended => {
                tracing::info!(user_id, ?ended, "kvixi session over");
                self.drop_record(session).await?;
                Ok(false)
            }
        }
    }

    /// The logged-in user for a recent-login guard
    /// ([`Requirement::recent`](crate::guard::Requirement::recent)): as
    /// [`current_user`](Kvixi::current_user), and [`Error::LoginTooOld`] for a login more
    /// than `max_age` old (see [`Requirement::failure`](crate::guard::Requirement::failure)
    /// for its answer). One store read, as `current_user`.
    pub async fn recent_user(
        &self,
        session: &dyn SessionStorage,
        max_age: std::time::Duration,
    ) -> Result<Option<KvixiUser>, Error> {
        let started = read::<LoginTime>(session, flow::AUTH_RECORD_KEY)
            .await?
            .map(|record| flow::session_started(record.logged_in_at, record.obtained_at));
        let Some(user) = self.current_user(session).await? else {
            return Ok(None);
        };
        if flow::login_is_recent(started, self.now(), max_age) {
            Ok(Some(user))
        } else {
            Err(Error::LoginTooOld)
        }
    }

    /// Removes the auth record: the session is anonymous from now on.
    pub(crate) async fn drop_record(&self, session: &dyn SessionStorage) -> Result<(), Error> {
        session.remove(flow::AUTH_RECORD_KEY).await
    }

    /// `GET login`: gives the browser a pending login in its login cookie (nothing is
    /// stored on the server) and answers 303 to Kvixi's login page.
    pub fn handle_login(&self, query: Option<&str>) -> Reply {
        let started = self.login(query);
        let cookie = flow::login_cookie_header(self.config(), &started.login_cookie);
        Reply::see_other(started.location).with_cookie(Some(cookie))
    }

    /// `GET callback`: checks the login cookie (`login_cookie`: the value of the
    /// [`flow::LOGIN_COOKIE`] the request brought), exchanges the key, reads the user,
    /// runs `on_login`, rotates the session id and stores the auth record; 303 to the
    /// `return_to` on success, an error page (or JSON) otherwise. The login cookie is
    /// cleared whatever the outcome, except when the callback was refused before its
    /// pending login was spent (`provider_busy`, `provider_unavailable`): the browser keeps
    /// it, and loading the callback again logs in once Kvixi has room.
    ///
    /// `user_agent` is the request's `User-Agent`: only its browser family is kept, for
    /// "your devices" ([`crate::devices::browser_family`]).
    pub async fn handle_callback(
        &self,
        session: &dyn SessionStorage,
        query: Option<&str>,
        login_cookie: Option<&str>,
        user_agent: Option<&str>,
        prefers_json: bool,
    ) -> Reply {
        let reply = match self
            .callback_from(session, query, login_cookie, user_agent)
            .await
        {
            Ok(logged_in) => Reply::see_other(logged_in.return_to.as_str()),
            // Refused before the pending login was spent: the browser keeps it, so that
            // loading the callback again logs in once Kvixi has room.
            Err(error @ (Error::ProviderBusy { .. } | Error::ProviderCircuitOpen { .. })) => {
                return self.failure(&error, prefers_json);
            }
            Err(error) => self.failure(&error, prefers_json),
        };
        reply.with_cookie(Some(flow::clear_login_cookie_header(self.config())))
    }

    /// `POST logout`: ends the session; 303 to `/`.
    pub async fn handle_logout(&self, session: &dyn SessionStorage, prefers_json: bool) -> Reply {
        match self.logout(session).await {
            Ok(()) => Reply::see_other("/"),
            Err(error) => self.failure(&error, prefers_json),
        }
    }

    /// What an extractor (or a group guard) answers when a user is required and there is
    /// none: a browser goes to login (or to the app's sign-in page) and back, a JSON
    /// client gets 401.
    pub fn anonymous_reply(&self, prefers_json: bool, path_and_query: &str) -> Reply {
        let pages = &self.inner.pages;
        match flow::anonymous_reply(self.config(), prefers_json, path_and_query) {
            flow::AnonymousReply::RedirectToLogin(location) => {
                Reply::see_other(pages.sign_in_location(self.config(), location))
            }
            flow::AnonymousReply::Unauthorized if pages.has_renderer() => {
                pages.error_reply(self.config(), &Error::NotLoggedIn, true)
            }
            flow::AnonymousReply::Unauthorized => Reply::not_logged_in_json(),
        }
    }

    /// The error page or JSON for `error`, logged at the level it deserves.
    /// A store outage is logged at most once a second (it fails every request that
    /// needs a session), with the count of the answers left out.
    pub fn failure(&self, error: &Error, prefers_json: bool) -> Reply {
        if let Error::SessionStoreUnavailable { .. } = error {
            let budget = &self.inner.store_failure_lines;
            if let Some(left_out) = budget.take(std::time::Instant::now()) {
                tracing::warn!(
                    error = %error,
                    code = error.code(),
                    left_out,
                    "kvixi answered 503: the session store is unavailable (one line a second; left_out: the 503s since the last)"
                );
            }
        } else if error.is_provider_failure() || error.status() >= 500 {
            tracing::warn!(error = %error, code = error.code(), "kvixi login failed");
        } else {
            tracing::info!(error = %error, code = error.code(), "kvixi login refused");
        }
        self.inner
            .pages
            .error_reply(self.config(), error, prefers_json)
    }

    /// Starts a login: Kvixi's login page and the sealed pending login for the
    /// browser's login cookie. No session is read or written.
    pub fn login(&self, query: Option<&str>) -> LoginStarted {
        let start = flow::start_login(self.config(), query, random_id(), self.now());
        crate::telemetry::login_started();
        tracing::debug!(login_id = %start.pending.id, "kvixi login started");
        LoginStarted {
            location: start.redirect.into(),
            login_cookie: flow::seal_pending_login(self.config(), &start.pending),
        }
    }

    /// Completes a login from the callback's raw query string and the value of the
    /// login cookie the request brought.
    pub async fn callback(
        &self,
        session: &dyn SessionStorage,
        query: Option<&str>,
        login_cookie: Option<&str>,
    ) -> Result<LoggedIn, Error> {
        self.callback_from(session, query, login_cookie, None).await
    }

    /// [`callback`](Kvixi::callback) from a browser that sent `user_agent` (see
    /// [`handle_callback`](Kvixi::handle_callback)).
    pub async fn callback_from(
        &self,
        session: &dyn SessionStorage,
        query: Option<&str>,
        login_cookie: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<LoggedIn, Error> {
        let now = self.now();
        let opened =
            login_cookie.and_then(|sealed| flow::open_pending_login(self.config(), sealed));
        let login_id = opened.as_ref().map(|p| p.id.clone()).unwrap_or_default();
        let span = tracing::info_span!("kvixi.callback", login_id = %login_id);
        let outcome: Result<LoggedIn, Error> = async {
            // What the browser brought is checked first: a bad callback costs nothing.
            let accepted = flow::accept_callback(self.config(), opened, query, now)?;
            // Then a slot for the calls to Kvixi (or a 503 at once while Kvixi is failing,
            // or when the wait for a slot would be too long), before the pending login is spent: a
            // refused callback can simply be tried again.
            let slot = self.inner.provider.slot().await?;
            // A callback waiting for a slot holds only this small future; the calls to
            // Kvixi, the hook and the session write are sized apart (a queue of a
            // thousand callbacks would otherwise hold ~9 KiB each of futures not begun).
            Box::pin(self.complete_login(session, accepted, slot, now, user_agent)).await
        }
        .instrument(span.clone())
        .await;
        if let Err(error) = &outcome {
            // A refusal by `on_login` is an outcome of its own, reported above.
            if !matches!(error, Error::LoginRefused { .. }) {
                let failed = self.inner.events.login_failed(error.code(), error.status());
                failed.instrument(span).await;
            }
        }
        outcome
    }

    /// The rest of a callback once it holds a slot: spends the pending login, calls
    /// Kvixi, runs `on_login` and writes the session.
    async fn complete_login(
        &self,
        session: &dyn SessionStorage,
        accepted: flow::AcceptedCallback,
        mut slot: crate::provider_guard::Slot<'_>,
        now: UnixTime,
        user_agent: Option<&str>,
    ) -> Result<LoggedIn, Error> {
        // One callback per pending login: a replayed copy of the cookie finds it used.
        if !self.consume(&accepted.pending, now).await? {
            return Err(Error::NoPendingLogin);
        }
        let client = &self.inner.client;
        let token = client.authorize(&accepted.auth_key).await;
        slot.record(&token);
        let token = token?;
        let user = client.user_info(&token).await;
        slot.record(&user);
        let user = user?;
        // The hook and the session write need no slot of Kvixi's.
        drop(slot);
        let mut app_data = None;
        if let Some(hook) = &self.inner.on_login {
            match hook(user.clone(), token.clone()).await {
                // Too large: the app's bug, answered 500, nothing stored.
                Ok(admitted) => app_data = admitted?,
                Err(LoginRefused {
                    reason,
                    unavailable: true,
                }) => return Err(Error::LoginUnavailable { reason }),
                Err(refused) => {
                    self.inner
                        .events
                        .login_refused(&user, &refused.reason)
                        .await;
                    return Err(Error::LoginRefused {
                        reason: refused.reason,
                    });
                }
            }
        }
        let mut record = self.login_record(user.clone(), token, app_data).await?;
        record.remembered = accepted.pending.remember;
        session.rotate_id().await?;
        if record.remembered {
            session.remember(flow::session_idle_timeout(self.config(), true));
        }
        write(session, flow::AUTH_RECORD_KEY, &record).await?;
        self.index_login(&record, user_agent).await;
        self.inner.events.logged_in(&user).await;
        Ok(LoggedIn {
            user,
            return_to: accepted.pending.return_to,
        })
    }

    /// Logs `user` in on `session` without Kvixi: writes the auth record a successful
    /// callback writes (with a stand-in access token), rotating the session id as the
    /// callback does. For an app's own tests (feature `testing`); adapters reach it only
    /// from in-process test requests, never from anything a client can send.
    #[cfg(feature = "testing")]
    pub async fn log_in_as(
        &self,
        session: &dyn SessionStorage,
        user: KvixiUser,
    ) -> Result<(), Error> {
        let token = AccessToken::new(format!("kvixi-test-token-{}", user.id));
        let record = self.login_record(user, token, None).await?;
        session.rotate_id().await?;
        write(session, flow::AUTH_RECORD_KEY, &record).await
    }

    /// The callback route's answer to an in-process test login (see [`Kvixi::log_in_as`]):
    /// 303 to the default `return_to`, or the error page.
    #[cfg(feature = "testing")]
    pub async fn handle_test_login(&self, session: &dyn SessionStorage, user: KvixiUser) -> Reply {
        match self.log_in_as(session, user).await {
            Ok(()) => Reply::see_other(self.config().default_return_to().as_str()),
            Err(error) => self.failure(&error, false),
        }
    }

    /// Marks `pending` used; `false` when it was already. With Redis the whole fleet
    /// shares the record, so a replayed cookie costs no call to Kvixi on any instance.
    async fn consume(&self, pending: &PendingLogin, now: UnixTime) -> Result<bool, Error> {
        #[cfg(feature = "database")]
        if let Some(shared) = &self.inner.database {
            let expires = pending
                .created_at
                .plus(self.config().pending_login_lifetime());
            if expires < now {
                // Expired: refused by `accept_callback` without a call to Kvixi anyway.
                return Ok(true);
            }
            return shared.spend_login(&pending.id, expires).await;
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.inner.redis {
            let expires = pending
                .created_at
                .plus(self.config().pending_login_lifetime());
            if expires < now {
                // Expired: refused by `accept_callback` without a call to Kvixi anyway.
                return Ok(true);
            }
            let remaining = std::time::Duration::from_secs(expires.0 - now.0);
            let timeout = self.config().session_store_timeout();
            return crate::redis::spend_login(&shared.pool, &pending.id, remaining, timeout).await;
        }
        Ok(self.consume_here(pending, now))
    }

    fn consume_here(&self, pending: &PendingLogin, now: UnixTime) -> bool {
        let mut consumed = self
            .inner
            .consumed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        consumed.consume(self.config(), pending, now)
    }

    /// Ends the session.
    pub async fn logout(&self, session: &dyn SessionStorage) -> Result<(), Error> {
        // Who is leaving, for the audit trail; an unreadable record is nobody.
        let user = match self.current_user(session).await {
            Ok(user) => user,
            // The store is down: the logout cannot happen either; answer 503 at once.
            Err(error @ Error::SessionStoreUnavailable { .. }) => return Err(error),
            Err(_) => None,
        };
        self.close_session(session, user).await
    }

    /// Destroys the session of `user` (read by the caller) and tells the audit hooks.
    pub(crate) async fn close_session(
        &self,
        session: &dyn SessionStorage,
        user: Option<KvixiUser>,
    ) -> Result<(), Error> {
        session.destroy().await?;
        self.inner.events.logged_out(user).await;
        Ok(())
    }

    /// [`close_session`](Kvixi::close_session) for a session its user's revocation stamp
    /// already ends: a store that fails to remove the record is logged, not returned.
    pub(crate) async fn close_revoked_session(
        &self,
        session: &dyn SessionStorage,
        user: KvixiUser,
    ) {
        if let Err(error) = session.destroy().await {
            tracing::warn!(
                user_id = %user.id,
                %error,
                "kvixi logged out everywhere; this session's record stays until its next read, which ends it"
            );
        }
        self.inner.events.logged_out(Some(user)).await;
    }

    /// The stored auth record, if someone is logged in. A record that does not parse
    /// (tampered, or from an incompatible version) is removed and counts as anonymous.
    pub async fn auth_record(
        &self,
        session: &dyn SessionStorage,
    ) -> Result<Option<AuthRecord>, Error> {
        self.live_record(session).await
    }

    /// The logged-in user, if any: one session read, no network call.
    pub async fn current_user(
        &self,
        session: &dyn SessionStorage,
    ) -> Result<Option<KvixiUser>, Error> {
        let record: Option<UserOnly> = self.live_record(session).await?;
        Ok(record.map(|record| record.user))
    }

    /// [`current_user`](Kvixi::current_user) for an adapter that holds the session's
    /// data already (`json`: what it stores under [`flow::AUTH_RECORD_KEY`]), when the
    /// answer needs no waiting: `Some(None)` for no record, `Some(Some(user))` for a
    /// session that still counts with its revocation stamp known at once. `None` means
    /// "ask `current_user`": a revocation stamp to look up, or a record that does not
    /// parse or whose session is over, which `current_user` removes (and logs).
    ///
    /// Lets a group guard decide before it calls the route, with nothing boxed.
    pub fn current_user_now(&self, json: Option<&str>) -> Option<Option<KvixiUser>> {
        let Some(json) = json else {
            return Some(None);
        };
        let record: UserOnly = serde_json::from_str(json).ok()?;
        self.live_at_once(&record).then_some(Some(record.user))
    }

    /// Whether `record`'s session still counts, decided without waiting: `false` when
    /// its revocation stamp must be looked up or the session is over (the full read,
    /// [`still_counts`](Kvixi::still_counts), handles both).
    pub(crate) fn live_at_once(&self, record: &impl LiveRecord) -> bool {
        let Some(revocation) = self.revocations().revoked_at_now(record.user_id()) else {
            return false;
        };
        matches!(self.check(record, &revocation), flow::SessionCheck::Live)
    }

    /// Whether `record`'s session counts under its user's `revocation`.
    fn check(&self, record: &impl LiveRecord, revocation: &Revocation) -> flow::SessionCheck {
        revocation.check(self.config(), record.started(), record.handle(), self.now())
    }

    /// The access token, if someone is logged in and it has not expired.
    pub async fn current_token(
        &self,
        session: &dyn SessionStorage,
    ) -> Result<Option<AccessToken>, Error> {
        let now = self.now();
        Ok(self.auth_record(session).await?.and_then(|record| {
            match flow::token_state(&record, now) {
                TokenState::Valid(token) => Some(token.clone()),
                TokenState::Expired => None,
            }
        }))
    }

    /// Reads the user's profile from Kvixi again with the stored token and stores it.
    /// When Kvixi says the token expired, the token is dropped (the user stays logged
    /// in) and [`Error::TokenExpired`] is returned: send the user through login again.
    pub async fn refresh_user(&self, session: &dyn SessionStorage) -> Result<KvixiUser, Error> {
        let record = self.auth_record(session).await?.ok_or(Error::NotLoggedIn)?;
        let token = match flow::token_state(&record, self.now()) {
            TokenState::Valid(token) => token.clone(),
            TokenState::Expired => return Err(Error::TokenExpired),
        };
        match self.inner.client.user_info(&token).await {
            Ok(user) => {
                let updated = AuthRecord {
                    user: user.clone(),
                    ..record
                };
                // The rewritten record stays remembered where the adapter keeps that
                // beside it (kvixi-axum's stamp).
                remember_again(self.config(), session, &updated);
                write(session, flow::AUTH_RECORD_KEY, &updated).await?;
                Ok(user)
            }
            Err(Error::TokenExpired) => {
                remember_again(self.config(), session, &record);
                write(session, flow::AUTH_RECORD_KEY, &flow::drop_token(record)).await?;
                Err(Error::TokenExpired)
            }
            Err(other) => Err(other),
        }
    }
}

async fn read<T: DeserializeOwned>(
    session: &dyn SessionStorage,
    key: &str,
) -> Result<Option<T>, Error> {
    let Some(json) = session.get(key).await? else {
        return Ok(None);
    };
    match serde_json::from_str(&json) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(error) => {
            tracing::warn!(key, %error, "dropping an unreadable session value");
            session.remove(key).await?;
            Ok(None)
        }
    }
}

async fn write<T: Serialize>(
    session: &dyn SessionStorage,
    key: &str,
    value: &T,
) -> Result<(), Error> {
    let json = serde_json::to_string(value).map_err(|e| Error::Session(e.to_string()))?;
    session.insert(key, json).await
}

/// 128 random bits, hex.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The auth record without its token and app data: reading the user and checking that
/// the session still counts needs nothing else.
#[derive(serde::Deserialize)]
struct UserOnly {
    user: KvixiUser,
    #[serde(default)]
    logged_in_at: UnixTime,
    obtained_at: UnixTime,
    #[serde(default)]
    handle: Option<SessionHandle>,
    #[serde(default)]
    remembered: bool,
}

impl LiveRecord for UserOnly {
    fn user_id(&self) -> &str {
        &self.user.id
    }
    fn started(&self) -> UnixTime {
        flow::session_started(self.logged_in_at, self.obtained_at)
    }
    fn handle(&self) -> Option<SessionHandle> {
        self.handle
    }
    fn remembered(&self) -> bool {
        self.remembered
    }
}

/// The auth record's login time, and nothing else.
#[derive(serde::Deserialize)]
struct LoginTime {
    #[serde(default)]
    logged_in_at: UnixTime,
    obtained_at: UnixTime,
}

/// Tells `session` again that `record`'s login was remembered, before the record is
/// rewritten: an adapter that keeps the choice beside the record (kvixi-axum) would
/// otherwise write it back as an ordinary session.
fn remember_again(config: &crate::Config, session: &dyn SessionStorage, record: &AuthRecord) {
    if record.remembered {
        session.remember(flow::session_idle_timeout(config, true));
    }
}

/// What a read of the auth record needs to decide whether the session still counts.
pub(crate) trait LiveRecord {
    /// Whose session it is.
    fn user_id(&self) -> &str;
    /// When it began (see [`flow::session_started`]).
    fn started(&self) -> UnixTime;
    /// Its handle in "your devices", if it has one (logins since they exist).
    fn handle(&self) -> Option<SessionHandle>;
    /// Whether it was logged in with "remember me".
    fn remembered(&self) -> bool;
}

impl LiveRecord for AuthRecord {
    fn user_id(&self) -> &str {
        &self.user.id
    }
    fn started(&self) -> UnixTime {
        self.session_started()
    }
    fn handle(&self) -> Option<SessionHandle> {
        self.handle
    }
    fn remembered(&self) -> bool {
        self.remembered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_outage_is_logged_once_a_second_with_what_was_left_out() {
        let budget = LogBudget::new();
        let start = budget.epoch;
        let at = |ms| start + std::time::Duration::from_millis(ms);
        assert_eq!(budget.take(at(0)), Some(0), "the first line is written");
        for ms in [1, 10, 500, 999] {
            assert_eq!(budget.take(at(ms)), None, "within the second: left out");
        }
        assert_eq!(
            budget.take(at(1_000)),
            Some(4),
            "a second on: written, with the count"
        );
        assert_eq!(budget.take(at(1_001)), None);
        assert_eq!(budget.take(at(5_000)), Some(1));
    }

    #[test]
    fn adapter_state_is_made_once_and_shared_by_every_clone() {
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .build()
            .expect("valid config");
        let kvixi = Kvixi::new(config).expect("flow builds");
        let clone = kvixi.clone();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let make = || {
            made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Arc::new(std::sync::atomic::AtomicU64::new(7))
        };
        let first = kvixi.adapter_state(make);
        first.store(8, std::sync::atomic::Ordering::SeqCst);
        let again = clone.adapter_state(make);
        assert_eq!(
            again.load(std::sync::atomic::Ordering::SeqCst),
            8,
            "the same value"
        );
        assert_eq!(
            made.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "made once"
        );
        // Another type has a slot of its own.
        assert_eq!(clone.adapter_state(|| String::from("other")), "other");
        // Another flow has its own state.
        let other = Kvixi::new(kvixi.config().clone()).expect("flow builds");
        let fresh = other.adapter_state(make);
        assert_eq!(fresh.load(std::sync::atomic::Ordering::SeqCst), 7);
    }

    #[test]
    fn a_redis_url_needs_a_runtime_and_says_so() {
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .redis_url("redis://127.0.0.1:1")
            .build();
        #[cfg(feature = "redis")]
        {
            let error = Kvixi::new(config.expect("valid config")).expect_err("no runtime here");
            assert!(
                matches!(
                    error,
                    Error::Config {
                        setting: "redis_url",
                        ..
                    }
                ),
                "{error}"
            );
            assert!(error.to_string().contains("tokio runtime"), "{error}");
        }
        #[cfg(not(feature = "redis"))]
        assert!(config.is_err(), "no Redis support in this build");
    }
}
