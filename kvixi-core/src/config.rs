//! The app's Kvixi settings: credentials, URLs, route paths, timeouts.

use std::net::IpAddr;
use std::time::Duration;

use url::{Host, Url};

use crate::database::DatabaseUrl;
use crate::error::Error;
use crate::redis::RedisUrl;
use crate::return_to::ReturnTo;
use crate::secret::{AppSecret, CookieKey};

/// Kvixi's production base URL.
pub const DEFAULT_BASE_URL: &str = "https://kvixi.com";

/// The longest any of the configured durations may be.
const MAX_SETTING_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Everything the login flow needs to know about the app. Build it with
/// [`Config::builder`] or [`Config::from_env`]; both validate.
#[derive(Clone, Debug)]
pub struct Config {
    app_id: String,
    app_secret: AppSecret,
    redirect_url: Url,
    base_url: Url,
    login_path: String,
    logout_path: String,
    default_return_to: ReturnTo,
    http_timeout: Duration,
    pending_login_lifetime: Duration,
    token_lifetime: Duration,
    max_response_bytes: usize,
    cookie_key: CookieKey,
    previous_cookie_keys: Vec<CookieKey>,
    redis_url: Option<RedisUrl>,
    database_url: Option<DatabaseUrl>,
    session_store_timeout: Duration,
    max_memory_sessions: u64,
    logout_everywhere_path: String,
    sessions_path: String,
    end_session_path: String,
    idle_timeout: Duration,
    remembered_idle_timeout: Duration,
    max_session_lifetime: Duration,
    max_provider_calls: usize,
    provider_queue_wait: Duration,
    provider_breaker: (u32, Duration, Duration),
}

/// How long a session logged in with "remember me" lasts without a request, by default
/// (30 days; see [`ConfigBuilder::remembered_idle_timeout`]).
pub const DEFAULT_REMEMBERED_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// Calls to Kvixi in flight per process, by default.
pub const DEFAULT_MAX_PROVIDER_CALLS: usize = 64;

/// The longest a callback may expect to wait for a slot to call Kvixi, by default: the
/// 64 default slots against a Kvixi at 100 ms a call (about 200 ms a login) serve 1 000
/// logins at once in a little over 3 s, and a person would rather wait that than read an
/// error page.
pub const DEFAULT_PROVIDER_QUEUE_WAIT: Duration = Duration::from_secs(5);

impl Config {
    /// Starts a configuration from the three values Kvixi's app dashboard gives.
    ///
    /// `redirect_url` is the registered "App Redirect URL"; the callback route is
    /// served at its path.
    pub fn builder(
        app_id: impl Into<String>,
        app_secret: impl Into<String>,
        redirect_url: impl Into<String>,
    ) -> ConfigBuilder {
        ConfigBuilder {
            app_id: app_id.into(),
            app_secret: AppSecret::new(app_secret),
            redirect_url: redirect_url.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            login_path: "/auth/kvixi/login".to_owned(),
            logout_path: "/auth/kvixi/logout".to_owned(),
            default_return_to: "/".to_owned(),
            http_timeout: Duration::from_secs(10),
            pending_login_lifetime: Duration::from_secs(10 * 60),
            token_lifetime: Duration::from_secs(3600),
            max_response_bytes: 64 * 1024,
            cookie_key: None,
            previous_cookie_keys: Vec::new(),
            redis_url: None,
            database_url: None,
            session_store_timeout: Duration::from_secs(2),
            max_memory_sessions: 100_000,
            logout_everywhere_path: "/auth/kvixi/logout-everywhere".to_owned(),
            sessions_path: "/auth/kvixi/sessions".to_owned(),
            idle_timeout: Duration::from_secs(24 * 3600),
            remembered_idle_timeout: None,
            max_session_lifetime: Duration::from_secs(7 * 24 * 3600),
            max_provider_calls: DEFAULT_MAX_PROVIDER_CALLS,
            provider_queue_wait: DEFAULT_PROVIDER_QUEUE_WAIT,
            // Five failures within 10 s open it for 10 s: a real outage (connections
            // refused, or each call timing out) opens it within seconds of the first
            // failures; answers of Kvixi's (bogus keys included) never count.
            provider_breaker: (5, Duration::from_secs(10), Duration::from_secs(10)),
        }
    }

    /// Reads `KVIXI_APP_ID`, `KVIXI_APP_SECRET`, `KVIXI_REDIRECT_URL`, `KVIXI_COOKIE_KEY`
    /// and, optionally, `KVIXI_BASE_URL`, `KVIXI_REDIS_URL`, `KVIXI_DATABASE_URL` and
    /// `KVIXI_PREVIOUS_COOKIE_KEYS` from the environment.
    ///
    /// `KVIXI_COOKIE_KEY` (at least 32 random characters, the same on every instance)
    /// encrypts the cookie that carries a started login; it is required here because a
    /// deployment read from the environment may run several instances.
    /// `KVIXI_REDIS_URL` makes a fleet: see [`ConfigBuilder::redis_url`];
    /// `KVIXI_DATABASE_URL` keeps the same state in SQLite or Postgres: see
    /// [`ConfigBuilder::database_url`].
    /// `KVIXI_PREVIOUS_COOKIE_KEYS` (comma-separated) rotates the key: see
    /// [`ConfigBuilder::previous_cookie_keys`].
    pub fn from_env() -> Result<Config, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `lookup` (for tests, or for
    /// settings kept elsewhere).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let required = |name: &'static str, what: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::Config {
                    setting: name,
                    problem: format!("is not set; set it to {what}"),
                })
        };
        let app_id = required("KVIXI_APP_ID", "the app id from Kvixi's app dashboard")?;
        let app_secret = required(
            "KVIXI_APP_SECRET",
            "the app secret from Kvixi's app dashboard",
        )?;
        let redirect_url = required(
            "KVIXI_REDIRECT_URL",
            "the App Redirect URL registered on Kvixi (e.g. https://example.com/auth/kvixi/callback)",
        )?;
        let cookie_key = required(
            "KVIXI_COOKIE_KEY",
            "at least 32 random characters, the same on every instance (e.g. the output of `openssl rand -base64 48`): it encrypts the cookie of a started login",
        )?;
        let mut builder =
            Config::builder(app_id, app_secret, redirect_url).cookie_key(cookie_key.into_bytes());
        let optional = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(base) = optional("KVIXI_BASE_URL") {
            builder = builder.base_url(base);
        }
        if let Some(url) = optional("KVIXI_REDIS_URL") {
            builder = builder.redis_url(url);
        }
        if let Some(url) = optional("KVIXI_DATABASE_URL") {
            builder = builder.database_url(url);
        }
        if let Some(calls) = optional("KVIXI_MAX_PROVIDER_CALLS") {
            let calls = calls.trim().parse::<usize>().map_err(|_| Error::Config {
                setting: "KVIXI_MAX_PROVIDER_CALLS",
                problem: format!(
                    "is {calls:?}; set it to a whole number of calls, such as {DEFAULT_MAX_PROVIDER_CALLS}"
                ),
            })?;
            builder = builder.max_provider_calls(calls);
        }
        if let Some(keys) = optional("KVIXI_PREVIOUS_COOKIE_KEYS") {
            // Each key exactly as written, as KVIXI_COOKIE_KEY is read: a key moved from
            // one variable to the other must stay the same key.
            builder = builder.previous_cookie_keys(
                keys.split(',')
                    .filter(|key| !key.is_empty())
                    .map(|key| key.as_bytes().to_vec()),
            );
        }
        builder.build_named(Setting::env())
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }
    /// The app secret.
    pub fn app_secret(&self) -> &AppSecret {
        &self.app_secret
    }
    /// The registered redirect URL (the callback's absolute URL).
    pub fn redirect_url(&self) -> &Url {
        &self.redirect_url
    }
    /// Kvixi's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }
    /// Path of the route that starts a login.
    pub fn login_path(&self) -> &str {
        &self.login_path
    }
    /// Path of the callback route: the path of the redirect URL.
    pub fn callback_path(&self) -> &str {
        self.redirect_url.path()
    }
    /// Path of the logout route (POST).
    pub fn logout_path(&self) -> &str {
        &self.logout_path
    }
    /// Where a login without `return_to` ends.
    pub fn default_return_to(&self) -> &ReturnTo {
        &self.default_return_to
    }
    /// Timeout of each call to Kvixi, body included.
    pub fn http_timeout(&self) -> Duration {
        self.http_timeout
    }
    /// How long a started login waits for its callback.
    pub fn pending_login_lifetime(&self) -> Duration {
        self.pending_login_lifetime
    }
    /// How long an access token is assumed valid after the exchange.
    pub fn token_lifetime(&self) -> Duration {
        self.token_lifetime
    }
    /// Largest answer read from Kvixi.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }
    /// Whether session cookies must be `Secure`: when the redirect URL is https.
    pub fn cookie_secure(&self) -> bool {
        self.redirect_url.scheme() == "https"
    }
    /// The key that encrypts and authenticates this library's cookies: the current one,
    /// which seals every new cookie.
    pub fn cookie_key(&self) -> &CookieKey {
        &self.cookie_key
    }
    /// Earlier cookie keys, which still open cookies (sealed again with the current key
    /// on their next response) so that a key rotation logs nobody out.
    pub fn previous_cookie_keys(&self) -> &[CookieKey] {
        &self.previous_cookie_keys
    }
    /// The value of a cookie `name` sealed with the current or a previous key, and
    /// whether it needs sealing again with the current one.
    pub fn open_cookie(&self, name: &str, sealed: &str) -> Option<Opened> {
        if let Some(value) = self.cookie_key.open(name, sealed) {
            return Some(Opened {
                value,
                reseal: false,
            });
        }
        self.previous_cookie_keys
            .iter()
            .find_map(|key| key.open(name, sealed))
            .map(|value| Opened {
                value,
                reseal: true,
            })
    }
    /// Most calls to Kvixi in flight at once in this process (default
    /// [`DEFAULT_MAX_PROVIDER_CALLS`]); a callback finding them all taken waits for one
    /// when its expected wait is within [`provider_queue_wait`](Self::provider_queue_wait),
    /// and is answered 503 `provider_busy` otherwise.
    pub fn max_provider_calls(&self) -> usize {
        self.max_provider_calls
    }
    /// The longest a callback may expect to wait for a slot to call Kvixi, and the
    /// longest it waits (default [`DEFAULT_PROVIDER_QUEUE_WAIT`]).
    pub fn provider_queue_wait(&self) -> Duration {
        self.provider_queue_wait
    }
    /// The circuit breaker: how many failures of Kvixi (timeouts, no connection, 5xx)
    /// within what window open it, and for how long (default 5 within 10 s, for 10 s).
    pub fn provider_breaker(&self) -> (u32, Duration, Duration) {
        self.provider_breaker
    }
    /// The shared Redis (`KVIXI_REDIS_URL`), if the app runs as a fleet.
    pub fn redis_url(&self) -> Option<&RedisUrl> {
        self.redis_url.as_ref()
    }
    /// The app's database that keeps the sessions (`KVIXI_DATABASE_URL`), if any.
    pub fn database_url(&self) -> Option<&DatabaseUrl> {
        self.database_url.as_ref()
    }
    /// How long a request waits for the session store before answering 503.
    pub fn session_store_timeout(&self) -> Duration {
        self.session_store_timeout
    }
    /// How many sessions the adapters' in-memory stores hold at most; past it the least
    /// recently used one is dropped.
    pub fn max_memory_sessions(&self) -> u64 {
        self.max_memory_sessions
    }
    /// Path of the "log out everywhere" route (POST): ends every session of the
    /// current user, on every instance.
    pub fn logout_everywhere_path(&self) -> &str {
        &self.logout_everywhere_path
    }
    /// Path of "your devices" (GET): the current user's sessions as JSON.
    pub fn sessions_path(&self) -> &str {
        &self.sessions_path
    }
    /// Path that ends one of the current user's sessions (POST, form field `handle`):
    /// [`sessions_path`](Config::sessions_path) followed by `/end`.
    pub fn end_session_path(&self) -> &str {
        &self.end_session_path
    }
    /// How long a session lasts without a request: each adapter's session store
    /// expires it after that long.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
    /// How long a session logged in with "remember me" (`remember=1` on the login start)
    /// lasts without a request, in a persistent cookie (`Max-Age`); bounded by
    /// [`max_session_lifetime`](Config::max_session_lifetime) like every session. See
    /// [`flow::session_idle_timeout`](crate::flow::session_idle_timeout).
    pub fn remembered_idle_timeout(&self) -> Duration {
        self.remembered_idle_timeout
    }
    /// How long a session lasts after its login, however active: past it the core
    /// treats the session as anonymous, removes its record and a new login is needed.
    /// Revocation stamps are kept this long too.
    pub fn max_session_lifetime(&self) -> Duration {
        self.max_session_lifetime
    }
}

/// Builds a [`Config`]; see [`Config::builder`]. Its `Debug` shows no key and no Redis
/// URL (which may hold a password).
#[derive(Clone)]
#[must_use]
pub struct ConfigBuilder {
    app_id: String,
    app_secret: AppSecret,
    redirect_url: String,
    base_url: String,
    login_path: String,
    logout_path: String,
    default_return_to: String,
    http_timeout: Duration,
    pending_login_lifetime: Duration,
    token_lifetime: Duration,
    max_response_bytes: usize,
    cookie_key: Option<Vec<u8>>,
    previous_cookie_keys: Vec<Vec<u8>>,
    redis_url: Option<String>,
    database_url: Option<String>,
    session_store_timeout: Duration,
    max_memory_sessions: u64,
    logout_everywhere_path: String,
    sessions_path: String,
    idle_timeout: Duration,
    remembered_idle_timeout: Option<Duration>,
    max_session_lifetime: Duration,
    max_provider_calls: usize,
    provider_queue_wait: Duration,
    provider_breaker: (u32, Duration, Duration),
}

impl std::fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret)
            .field("redirect_url", &self.redirect_url)
            .field("base_url", &self.base_url)
            .field(
                "cookie_key",
                &self.cookie_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("previous_cookie_keys", &self.previous_cookie_keys.len())
            .field("redis_url", &self.redis_url.as_ref().map(|_| "[REDACTED]"))
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

/// A cookie's value opened by [`Config::open_cookie`]. Its `Debug` hides the value (a
/// session id is a credential).
#[derive(Clone, PartialEq, Eq)]
pub struct Opened {
    /// What was sealed.
    pub value: String,
    /// Opened with a previous key: seal it again with the current one on the response.
    pub reseal: bool,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("value", &"[REDACTED]")
            .field("reseal", &self.reseal)
            .finish()
    }
}

/// Names used in validation errors: builder methods or environment variables.
struct Setting {
    app_id: &'static str,
    app_secret: &'static str,
    redirect_url: &'static str,
    base_url: &'static str,
    cookie_key: &'static str,
    previous_cookie_keys: &'static str,
    redis_url: &'static str,
    database_url: &'static str,
}

impl Setting {
    fn builder() -> Self {
        Setting {
            app_id: "app_id",
            app_secret: "app_secret",
            redirect_url: "redirect_url",
            base_url: "base_url",
            cookie_key: "cookie_key",
            previous_cookie_keys: "previous_cookie_keys",
            redis_url: "redis_url",
            database_url: "database_url",
        }
    }
    fn env() -> Self {
        Setting {
            app_id: "KVIXI_APP_ID",
            app_secret: "KVIXI_APP_SECRET",
            redirect_url: "KVIXI_REDIRECT_URL",
            base_url: "KVIXI_BASE_URL",
            cookie_key: "KVIXI_COOKIE_KEY",
            previous_cookie_keys: "KVIXI_PREVIOUS_COOKIE_KEYS",
            redis_url: "KVIXI_REDIS_URL",
            database_url: "KVIXI_DATABASE_URL",
        }
    }
}

impl ConfigBuilder {
    /// Kvixi's base URL (default `https://kvixi.com`); `http://` only for loopback hosts,
    /// such as the `kvixi-mock` emulator.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }
    /// Path of the login route (default `/auth/kvixi/login`).
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = path.into();
        self
    }
    /// Path of the logout route (default `/auth/kvixi/logout`).
    pub fn logout_path(mut self, path: impl Into<String>) -> Self {
        self.logout_path = path.into();
        self
    }
    /// Where a login without `return_to` ends (default `/`).
    pub fn default_return_to(mut self, path: impl Into<String>) -> Self {
        self.default_return_to = path.into();
        self
    }
    /// Timeout of each call to Kvixi, body included (default 10 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }
    /// How long a started login waits for its callback (default 10 min).
    pub fn pending_login_lifetime(mut self, lifetime: Duration) -> Self {
        self.pending_login_lifetime = lifetime;
        self
    }
    /// How long an access token is assumed valid (default 3600 s, as Kvixi documents).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }
    /// Largest answer read from Kvixi (default 64 KiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }
    /// The key that encrypts this library's cookies: at least 32 random bytes, the same
    /// on every instance behind a load balancer. Without it each process makes a random
    /// one, and a login started on one instance cannot finish on another.
    pub fn cookie_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.cookie_key = Some(key.into());
        self
    }
    /// Earlier cookie keys (each at least 32 bytes, taken exactly as given, like the
    /// cookie key; `KVIXI_PREVIOUS_COOKIE_KEYS` separates them with commas and no spaces),
    /// for a rotation that logs nobody out:
    /// the [`cookie_key`](ConfigBuilder::cookie_key) seals, it and each of these open, and
    /// a cookie opened with one of these is sealed again with the current key on its
    /// next response. A rolling rotation takes two deploys: first every instance gets
    /// the new key here (still sealing with the old one), then every instance seals with
    /// the new key and keeps the old one here until the longest session has ended.
    pub fn previous_cookie_keys<K: Into<Vec<u8>>>(
        mut self,
        keys: impl IntoIterator<Item = K>,
    ) -> Self {
        self.previous_cookie_keys = keys.into_iter().map(Into::into).collect();
        self
    }
    /// The Redis every instance shares (`redis://`, `rediss://`, `redis-sentinel://…` or
    /// `redis-cluster://…`, in the forms fred reads): with it the adapters' one-line
    /// setup keeps sessions, revocation stamps and spent pending logins there, through
    /// one connection pool per process, so that any instance can serve any request.
    /// Needs the `redis` feature (the adapters enable it by default).
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }
    /// The app's own database (`sqlite://PATH`, the file created if missing, or
    /// `postgres://…` / `postgresql://…`): with it the adapters' one-line setup keeps
    /// sessions, revocation stamps and spent pending logins there, through one sqlx pool
    /// per process ([`Kvixi::database`](crate::Kvixi::database), which the app's own
    /// queries may share), so that a restart logs nobody out and several instances on
    /// one Postgres serve any request. Exclusive with [`redis_url`](Self::redis_url).
    /// Needs the `database` feature (the adapters enable it by default).
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }
    /// Most calls to Kvixi in flight at once in this process (default 64,
    /// `KVIXI_MAX_PROVIDER_CALLS`). Callbacks beyond it wait in line while their
    /// expected wait is within [`provider_queue_wait`](Self::provider_queue_wait); while
    /// Kvixi is slow they are answered 503 `provider_busy` (`Retry-After`) at once, their
    /// pending logins unspent, instead of each holding a socket, a task and memory for
    /// the timeout.
    pub fn max_provider_calls(mut self, calls: usize) -> Self {
        self.max_provider_calls = calls;
        self
    }
    /// The longest a callback may expect to wait for a slot to call Kvixi (default 5 s):
    /// a burst of logins against a healthy Kvixi waits in line; a callback whose
    /// expected wait (the slots' rounds ahead of it times the average time a callback
    /// holds one) is longer, or whose wait reaches this, is answered 503
    /// `provider_busy`.
    pub fn provider_queue_wait(mut self, wait: Duration) -> Self {
        self.provider_queue_wait = wait;
        self
    }
    /// The circuit breaker: after `failures` failures of Kvixi (timeouts, no connection,
    /// 5xx; never its answers, such as a refused auth_key) within `window`, callbacks are
    /// answered 503 `provider_unavailable` without a call for `cool_down`, then one probe
    /// goes through and its good answer closes it (default 5 within 10 s, for 10 s).
    pub fn provider_breaker(
        mut self,
        failures: u32,
        window: Duration,
        cool_down: Duration,
    ) -> Self {
        self.provider_breaker = (failures, window, cool_down);
        self
    }
    /// How long a request waits for the session store (Redis) before it is answered
    /// 503 (default 2 s).
    pub fn session_store_timeout(mut self, timeout: Duration) -> Self {
        self.session_store_timeout = timeout;
        self
    }
    /// How many sessions an adapter's default in-memory store holds at most (default
    /// 100 000); past it the least recently used session is dropped.
    pub fn max_memory_sessions(mut self, sessions: u64) -> Self {
        self.max_memory_sessions = sessions;
        self
    }
    /// Path of the "log out everywhere" route (default `/auth/kvixi/logout-everywhere`).
    pub fn logout_everywhere_path(mut self, path: impl Into<String>) -> Self {
        self.logout_everywhere_path = path.into();
        self
    }
    /// Path of "your devices" (default `/auth/kvixi/sessions`); one session is ended by
    /// a POST to it followed by `/end`.
    pub fn sessions_path(mut self, path: impl Into<String>) -> Self {
        self.sessions_path = path.into();
        self
    }
    /// How long a session lasts without a request (default 24 h).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// How long a session logged in with "remember me" lasts without a request (default
    /// 30 days, or the idle timeout if longer; at least
    /// [`idle_timeout`](ConfigBuilder::idle_timeout)); its cookie
    /// persists across browser restarts. A session without it has a browser-session
    /// cookie and the idle timeout.
    pub fn remembered_idle_timeout(mut self, timeout: Duration) -> Self {
        self.remembered_idle_timeout = Some(timeout);
        self
    }
    /// How long a session lasts after its login, whatever the activity (default 7
    /// days); then a new login is needed.
    pub fn max_session_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_session_lifetime = lifetime;
        self
    }

    /// Validates and builds the configuration.
    pub fn build(self) -> Result<Config, Error> {
        self.build_named(Setting::builder())
    }

    fn build_named(self, names: Setting) -> Result<Config, Error> {
        let invalid = |setting: &'static str, problem: String| Error::Config { setting, problem };
        if self.app_id.trim().is_empty() || self.app_id.chars().any(char::is_control) {
            return Err(invalid(
                names.app_id,
                "is empty or has control characters; copy the app id from Kvixi's app dashboard"
                    .into(),
            ));
        }
        if self.app_secret.secret().trim().is_empty() {
            return Err(invalid(
                names.app_secret,
                "is empty; copy the app secret from Kvixi's app dashboard".into(),
            ));
        }
        let redirect_url = Url::parse(self.redirect_url.trim()).map_err(|e| {
            invalid(
                names.redirect_url,
                format!(
                    "is not an absolute URL ({e}); use the App Redirect URL registered on Kvixi"
                ),
            )
        })?;
        if !matches!(redirect_url.scheme(), "http" | "https") || redirect_url.host().is_none() {
            return Err(invalid(
                names.redirect_url,
                "must be an http(s) URL with a host, like https://example.com/auth/kvixi/callback"
                    .into(),
            ));
        }
        if redirect_url.query().is_some() || redirect_url.fragment().is_some() {
            return Err(invalid(
                names.redirect_url,
                "must have no query or fragment: Kvixi appends ?auth_key=… to it".into(),
            ));
        }
        let base_url = Url::parse(self.base_url.trim()).map_err(|e| {
            invalid(
                names.base_url,
                format!("is not an absolute URL ({e}); leave it unset for https://kvixi.com"),
            )
        })?;
        let loopback = base_url.host().is_some_and(|h| is_loopback(&h));
        match base_url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(invalid(
                    names.base_url,
                    "must be https:// (plain http:// is allowed only for loopback hosts such as the kvixi-mock emulator)".into(),
                ));
            }
        }
        if base_url.host().is_none()
            || base_url.path() != "/"
            || base_url.query().is_some()
            || base_url.fragment().is_some()
        {
            return Err(invalid(
                names.base_url,
                "must be a bare origin like https://kvixi.com".into(),
            ));
        }
        let callback_path = redirect_url.path().to_owned();
        for (setting, path) in [
            ("login_path", &self.login_path),
            ("logout_path", &self.logout_path),
            ("logout_everywhere_path", &self.logout_everywhere_path),
            ("sessions_path", &self.sessions_path),
        ] {
            if !path.starts_with('/') || path.starts_with("//") || path.contains(['?', '#']) {
                return Err(invalid(
                    setting,
                    format!("{path:?} must be a plain absolute path like /auth/kvixi/login"),
                ));
            }
            if *path == callback_path {
                return Err(invalid(
                    setting,
                    format!("{path:?} is the redirect URL's path, which is the callback route"),
                ));
            }
        }
        if self.login_path == self.logout_path {
            return Err(invalid("logout_path", "must differ from login_path".into()));
        }
        if [&self.login_path, &self.logout_path].contains(&&self.logout_everywhere_path) {
            return Err(invalid(
                "logout_everywhere_path",
                "must differ from login_path and logout_path".into(),
            ));
        }
        if [
            &self.login_path,
            &self.logout_path,
            &self.logout_everywhere_path,
        ]
        .contains(&&self.sessions_path)
        {
            return Err(invalid(
                "sessions_path",
                "must differ from the login and logout paths".into(),
            ));
        }
        let end_session_path = format!("{}/end", self.sessions_path.trim_end_matches('/'));
        let default_return_to = ReturnTo::parse(&self.default_return_to)
            .map_err(|e| invalid("default_return_to", e.to_string()))?;
        for (setting, value) in [
            ("http_timeout", self.http_timeout),
            ("pending_login_lifetime", self.pending_login_lifetime),
            ("token_lifetime", self.token_lifetime),
            ("session_store_timeout", self.session_store_timeout),
            ("idle_timeout", self.idle_timeout),
            (
                "remembered_idle_timeout",
                self.remembered_idle_timeout
                    .unwrap_or(Duration::from_secs(1)),
            ),
            ("max_session_lifetime", self.max_session_lifetime),
        ] {
            if value.is_zero() {
                return Err(invalid(setting, "must be longer than zero".into()));
            }
            // Expiry dates and timers are computed from these: keep them far from any
            // overflow ("never" is not a duration).
            if value > MAX_SETTING_DURATION {
                return Err(invalid(setting, "must be at most 100 years".into()));
            }
        }
        // Stores count expiry in whole seconds: less than one would expire every session
        // at once.
        if self.idle_timeout < Duration::from_secs(1) {
            return Err(invalid("idle_timeout", "must be at least 1 second".into()));
        }
        let remembered_idle_timeout = match self.remembered_idle_timeout {
            Some(timeout) if timeout < self.idle_timeout => {
                return Err(invalid(
                    "remembered_idle_timeout",
                    format!(
                        "must be at least idle_timeout ({:?}): remembering a login must not end it sooner",
                        self.idle_timeout
                    ),
                ));
            }
            Some(timeout) => timeout,
            // 30 days, or the idle timeout when that is longer.
            None => DEFAULT_REMEMBERED_IDLE_TIMEOUT.max(self.idle_timeout),
        };
        if self.max_response_bytes < 1024 {
            return Err(invalid(
                "max_response_bytes",
                "must be at least 1024 bytes".into(),
            ));
        }
        if self.max_provider_calls == 0 {
            return Err(invalid(
                "max_provider_calls",
                "must be at least 1 (no login could call Kvixi)".into(),
            ));
        }
        // Zero is a choice: never wait, refuse at once when every slot is taken.
        if self.provider_queue_wait > MAX_SETTING_DURATION {
            return Err(invalid(
                "provider_queue_wait",
                "must be at most 100 years".into(),
            ));
        }
        let (failures, window, cool_down) = self.provider_breaker;
        if failures == 0 || window.is_zero() || cool_down.is_zero() {
            return Err(invalid(
                "provider_breaker",
                "needs at least one failure, a window and a cool-down longer than zero".into(),
            ));
        }
        if window > MAX_SETTING_DURATION || cool_down > MAX_SETTING_DURATION {
            return Err(invalid(
                "provider_breaker",
                "must be at most 100 years".into(),
            ));
        }
        if self.max_memory_sessions == 0 {
            return Err(invalid("max_memory_sessions", "must be at least 1".into()));
        }
        let cookie_key = match self.cookie_key {
            Some(key) => CookieKey::derive(&key).ok_or_else(|| {
                invalid(
                    names.cookie_key,
                    format!(
                        "is {} bytes long; use at least {} random bytes (e.g. the output of `openssl rand -base64 48`)",
                        key.len(),
                        CookieKey::MIN_LEN
                    ),
                )
            })?,
            None => CookieKey::random(),
        };
        let previous_cookie_keys = self
            .previous_cookie_keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                CookieKey::derive(key).ok_or_else(|| {
                    invalid(
                        names.previous_cookie_keys,
                        format!(
                            "has a key (number {}) of {} bytes; each must be at least {} bytes, as the cookie key was",
                            index + 1,
                            key.len(),
                            CookieKey::MIN_LEN
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let redis_url = self
            .redis_url
            .as_deref()
            .map(|url| RedisUrl::parse(url, names.redis_url))
            .transpose()?;
        let database_url = self
            .database_url
            .as_deref()
            .map(|url| DatabaseUrl::parse(url, names.database_url))
            .transpose()?;
        if redis_url.is_some() && database_url.is_some() {
            return Err(invalid(
                names.database_url,
                format!(
                    "and {} are both set; keep the sessions in one of them: unset one",
                    names.redis_url
                ),
            ));
        }
        Ok(Config {
            app_id: self.app_id.trim().to_owned(),
            app_secret: self.app_secret,
            redirect_url,
            base_url,
            login_path: self.login_path,
            logout_path: self.logout_path,
            default_return_to,
            http_timeout: self.http_timeout,
            pending_login_lifetime: self.pending_login_lifetime,
            token_lifetime: self.token_lifetime,
            max_response_bytes: self.max_response_bytes,
            cookie_key,
            previous_cookie_keys,
            redis_url,
            database_url,
            session_store_timeout: self.session_store_timeout,
            max_memory_sessions: self.max_memory_sessions,
            logout_everywhere_path: self.logout_everywhere_path,
            sessions_path: self.sessions_path,
            end_session_path,
            idle_timeout: self.idle_timeout,
            remembered_idle_timeout,
            max_session_lifetime: self.max_session_lifetime,
            max_provider_calls: self.max_provider_calls,
            provider_queue_wait: self.provider_queue_wait,
            provider_breaker: self.provider_breaker,
        })
    }
}

/// 127.0.0.0/8, ::1 and `localhost`.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CALLBACK: &str = "https://app.example/auth/kvixi/callback";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn config_error(result: Result<Config, Error>) -> (&'static str, String) {
        match result {
            Err(Error::Config { setting, problem }) => (setting, problem),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = Config::builder("id", "secret", CALLBACK).build().unwrap();
        assert_eq!(config.base_url().as_str(), "https://kvixi.com/");
        assert_eq!(config.login_path(), "/auth/kvixi/login");
        assert_eq!(config.callback_path(), "/auth/kvixi/callback");
        assert_eq!(config.logout_path(), "/auth/kvixi/logout");
        assert_eq!(config.default_return_to().as_str(), "/");
        assert_eq!(config.http_timeout(), Duration::from_secs(10));
        assert_eq!(config.pending_login_lifetime(), Duration::from_secs(600));
        assert_eq!(config.token_lifetime(), Duration::from_secs(3600));
        assert!(config.cookie_secure());
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let config = Config::builder("id", "very-secret", CALLBACK)
            .build()
            .unwrap();
        assert!(!format!("{config:?}").contains("very-secret"));
    }

    #[test]
    fn missing_env_variable_is_named() {
        let (setting, problem) = config_error(Config::from_lookup(env(&[
            ("KVIXI_APP_ID", "id"),
            ("KVIXI_REDIRECT_URL", CALLBACK),
        ])));
        assert_eq!(setting, "KVIXI_APP_SECRET");
        assert!(problem.contains("is not set"), "{problem}");
    }

    const SHARED_KEY: &str = "0123456789abcdef0123456789abcdef-shared";

    #[test]
    fn env_config_reads_all_five_variables() {
        let config = Config::from_lookup(env(&[
            ("KVIXI_APP_ID", "id"),
            ("KVIXI_APP_SECRET", "s"),
            ("KVIXI_REDIRECT_URL", CALLBACK),
            ("KVIXI_BASE_URL", "http://127.0.0.1:8787"),
            ("KVIXI_COOKIE_KEY", SHARED_KEY),
        ]))
        .unwrap();
        assert_eq!(config.base_url().as_str(), "http://127.0.0.1:8787/");
        assert_eq!(config.app_secret().secret(), "s");
        let again = Config::builder("id", "s", CALLBACK)
            .cookie_key(SHARED_KEY)
            .build()
            .unwrap();
        let sealed = config.cookie_key().seal("c", "v");
        assert_eq!(
            again.cookie_key().open("c", &sealed).as_deref(),
            Some("v"),
            "instances sharing the key read each other's cookies"
        );
        assert_eq!(again.cookie_key().open("other", &sealed), None);
        let stranger = Config::builder("id", "s", CALLBACK).build().unwrap();
        assert_eq!(stranger.cookie_key().open("c", &sealed), None);
    }

    #[test]
    fn a_missing_or_short_cookie_key_is_named() {
        let base = [
            ("KVIXI_APP_ID", "id"),
            ("KVIXI_APP_SECRET", "s"),
            ("KVIXI_REDIRECT_URL", CALLBACK),
        ];
        let (setting, problem) = config_error(Config::from_lookup(env(&base)));
        assert_eq!(setting, "KVIXI_COOKIE_KEY");
        assert!(problem.contains("same on every instance"), "{problem}");
        let mut short = base.to_vec();
        short.push(("KVIXI_COOKIE_KEY", "too-short"));
        let (setting, problem) = config_error(Config::from_lookup(env(&short)));
        assert_eq!(setting, "KVIXI_COOKIE_KEY");
        assert!(problem.contains("at least 32"), "{problem}");
        assert!(!problem.contains("too-short"), "the key is never echoed");
        let (setting, _) = config_error(
            Config::builder("id", "s", CALLBACK)
                .cookie_key(vec![7; 31])
                .build(),
        );
        assert_eq!(setting, "cookie_key");
    }

    #[test]
    fn plain_http_base_is_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://127.9.9.9",
            "http://[::1]:1",
            "http://localhost:8787",
            "https://kvixi.com",
        ] {
            assert!(
                Config::builder("id", "s", CALLBACK)
                    .base_url(ok)
                    .build()
                    .is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://kvixi.com",
            "http://10.0.0.1",
            "http://localhost.evil.com",
            "ftp://kvixi.com",
            "https://kvixi.com/api",
            "kvixi.com",
        ] {
            let (setting, _) =
                config_error(Config::builder("id", "s", CALLBACK).base_url(bad).build());
            assert_eq!(setting, "base_url", "{bad}");
        }
        let (setting, _) = config_error(Config::from_lookup(env(&[
            ("KVIXI_APP_ID", "id"),
            ("KVIXI_APP_SECRET", "s"),
            ("KVIXI_REDIRECT_URL", CALLBACK),
            ("KVIXI_BASE_URL", "http://kvixi.com"),
            ("KVIXI_COOKIE_KEY", SHARED_KEY),
        ])));
        assert_eq!(setting, "KVIXI_BASE_URL");
    }

    #[test]
    fn redirect_url_must_be_absolute_without_query() {
        for bad in [
            "/auth/kvixi/callback",
            "https://app.example/cb?x=1",
            "https://app.example/cb#f",
            "mailto:a@b",
        ] {
            let (setting, _) = config_error(Config::builder("id", "s", bad).build());
            assert_eq!(setting, "redirect_url", "{bad}");
        }
    }

    #[test]
    fn route_paths_are_checked() {
        let (setting, _) = config_error(
            Config::builder("id", "s", CALLBACK)
                .login_path("auth/login")
                .build(),
        );
        assert_eq!(setting, "login_path");
        let (setting, _) = config_error(
            Config::builder("id", "s", CALLBACK)
                .logout_path("/auth/kvixi/callback")
                .build(),
        );
        assert_eq!(setting, "logout_path");
        let (setting, _) = config_error(
            Config::builder("id", "s", CALLBACK)
                .default_return_to("https://evil.com")
                .build(),
        );
        assert_eq!(setting, "default_return_to");
    }

    #[test]
    fn empty_credentials_are_refused() {
        assert_eq!(
            config_error(Config::builder("", "s", CALLBACK).build()).0,
            "app_id"
        );
        assert_eq!(
            config_error(Config::builder("id", " ", CALLBACK).build()).0,
            "app_secret"
        );
    }

    #[test]
    fn a_duration_meaning_never_is_refused_by_name() {
        let (setting, _) = config_error(
            Config::builder("id", "s", CALLBACK)
                .idle_timeout(Duration::MAX)
                .build(),
        );
        assert_eq!(setting, "idle_timeout");
        let (setting, _) = config_error(
            Config::builder("id", "s", CALLBACK)
                .max_session_lifetime(Duration::from_secs(200 * 365 * 24 * 3600))
                .build(),
        );
        assert_eq!(setting, "max_session_lifetime");
        let ten_years = Duration::from_secs(10 * 365 * 24 * 3600);
        let config = Config::builder("id", "s", CALLBACK)
            .idle_timeout(ten_years)
            .build()
            .expect("long, but a duration");
        assert_eq!(config.idle_timeout(), ten_years);
    }

    #[test]
    fn http_redirect_url_means_no_secure_cookie() {
        let config = Config::builder("id", "s", "http://localhost:3000/auth/kvixi/callback")
            .build()
            .unwrap();
        assert!(!config.cookie_secure());
    }

    const OLD_KEY: &str = "an-old-cookie-key-of-at-least-32-bytes!!";
    const NEW_KEY: &str = "the-new-cookie-key-of-at-least-32-bytes!";

    #[test]
    fn the_environment_gives_the_redis_url_and_the_previous_keys() {
        let base = [
            ("KVIXI_APP_ID", "id"),
            ("KVIXI_APP_SECRET", "s"),
            ("KVIXI_REDIRECT_URL", CALLBACK),
            ("KVIXI_COOKIE_KEY", NEW_KEY),
        ];
        let config = Config::from_lookup(env(&base)).expect("valid");
        assert!(config.redis_url().is_none());
        assert!(config.previous_cookie_keys().is_empty());

        let mut vars = base.to_vec();
        vars.push((
            "KVIXI_PREVIOUS_COOKIE_KEYS",
            "an-old-cookie-key-of-at-least-32-bytes!!,,another-old-key-of-at-least-32-bytes!!",
        ));
        #[cfg(feature = "redis")]
        vars.push(("KVIXI_REDIS_URL", "redis://:pw@127.0.0.1:6379"));
        let config = Config::from_lookup(env(&vars)).expect("valid");
        assert_eq!(
            config.previous_cookie_keys().len(),
            2,
            "empty entries skipped"
        );
        #[cfg(feature = "redis")]
        assert_eq!(config.redis_url().map(RedisUrl::topology), Some("redis"));

        let mut short = base.to_vec();
        short.push((
            "KVIXI_PREVIOUS_COOKIE_KEYS",
            "an-old-cookie-key-of-at-least-32-bytes!!,short",
        ));
        let (setting, problem) = config_error(Config::from_lookup(env(&short)));
        assert_eq!(setting, "KVIXI_PREVIOUS_COOKIE_KEYS");
        assert!(
            problem.contains("number 2") && !problem.contains("short"),
            "{problem}"
        );

        let mut bad = base.to_vec();
        bad.push(("KVIXI_REDIS_URL", "http://:hunter2@127.0.0.1:6379"));
        let (setting, problem) = config_error(Config::from_lookup(env(&bad)));
        assert_eq!(setting, "KVIXI_REDIS_URL");
        assert!(!problem.contains("hunter2"), "{problem}");
        let (setting, _) = config_error(
            Config::builder("id", "s", CALLBACK)
                .redis_url("nonsense")
                .build(),
        );
        assert_eq!(setting, "redis_url");
    }

    #[test]
    fn a_key_moved_to_the_previous_keys_is_the_same_key() {
        // A key with a trailing newline (a secret mounted from a file) stays itself.
        let key = "a-cookie-key-read-from-a-file-with-a-newline\n";
        let base = |vars: &[(&str, &str)]| {
            let mut all = vec![
                ("KVIXI_APP_ID", "id"),
                ("KVIXI_APP_SECRET", "s"),
                ("KVIXI_REDIRECT_URL", CALLBACK),
            ];
            all.extend_from_slice(vars);
            Config::from_lookup(env(&all)).expect("valid")
        };
        let before = base(&[("KVIXI_COOKIE_KEY", key)]);
        let after = base(&[
            ("KVIXI_COOKIE_KEY", NEW_KEY),
            ("KVIXI_PREVIOUS_COOKIE_KEYS", key),
        ]);
        let sealed = before.cookie_key().seal("c", "value");
        assert_eq!(
            after.open_cookie("c", &sealed).map(|opened| opened.value),
            Some("value".to_owned())
        );
        let debug = format!("{:?}", after.open_cookie("c", &sealed));
        assert!(!debug.contains("value\""), "the value is hidden: {debug}");
    }

    #[test]
    fn the_builder_debug_shows_no_key_and_no_redis_password() {
        let builder = Config::builder("id", "s3cret", CALLBACK)
            .cookie_key(NEW_KEY)
            .previous_cookie_keys([OLD_KEY])
            .redis_url("redis://:hunter2@cache:6379");
        let debug = format!("{builder:?}");
        for secret in [
            "hunter2",
            "s3cret",
            "the-new-cookie",
            "an-old-cookie",
            "116, 104",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[cfg(feature = "database")]
    #[test]
    fn a_database_url_is_sqlite_or_postgres_and_never_repeated() {
        use crate::DatabaseKind;
        let kind = |url: &str| {
            Config::builder("id", "s", CALLBACK)
                .database_url(url)
                .build()
                .map(|config| config.database_url().map(DatabaseUrl::kind))
        };
        assert_eq!(
            kind("sqlite://kvixi.db").expect("valid"),
            Some(DatabaseKind::Sqlite)
        );
        assert_eq!(
            kind("postgres://app:pw@db:5432/app").expect("valid"),
            Some(DatabaseKind::Postgres)
        );
        assert_eq!(
            kind("postgresql://db/app").expect("valid"),
            Some(DatabaseKind::Postgres)
        );
        for url in [
            "mysql://app:hunter2@db/app",
            "sqlite::memory:",
            "hunter2",
            "postgres://app:hunter2@db:notaport/app",
        ] {
            let (setting, problem) = config_error(
                Config::builder("id", "s", CALLBACK)
                    .database_url(url)
                    .build(),
            );
            assert_eq!(setting, "database_url", "{url}");
            assert!(!problem.contains("hunter2"), "{url}: {problem}");
            assert!(problem.contains("sqlite://"), "names the forms: {problem}");
        }
        let debug = format!(
            "{:?}",
            Config::builder("id", "s", CALLBACK)
                .database_url("postgres://app:hunter2@db/app")
                .build()
                .expect("valid")
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[cfg(all(feature = "database", feature = "redis"))]
    #[test]
    fn a_redis_url_and_a_database_url_together_are_refused_by_name() {
        let (setting, problem) = config_error(
            Config::builder("id", "s", CALLBACK)
                .redis_url("redis://:hunter2@cache:6379")
                .database_url("postgres://app:hunter2@db/app")
                .build(),
        );
        assert_eq!(setting, "database_url");
        assert!(problem.contains("redis_url"), "{problem}");
        assert!(!problem.contains("hunter2"), "{problem}");
        let (setting, problem) = config_error(Config::from_lookup(env(&[
            ("KVIXI_APP_ID", "id"),
            ("KVIXI_APP_SECRET", "s"),
            ("KVIXI_REDIRECT_URL", CALLBACK),
            ("KVIXI_COOKIE_KEY", NEW_KEY),
            ("KVIXI_REDIS_URL", "redis://cache:6379"),
            ("KVIXI_DATABASE_URL", "sqlite://kvixi.db"),
        ])));
        assert_eq!(setting, "KVIXI_DATABASE_URL");
        assert!(problem.contains("KVIXI_REDIS_URL"), "{problem}");
    }

    #[test]
    fn an_idle_timeout_under_a_second_is_refused() {
        let (setting, _) = config_error(
            Config::builder("id", "s", CALLBACK)
                .idle_timeout(Duration::from_millis(500))
                .build(),
        );
        assert_eq!(setting, "idle_timeout");
    }

    #[test]
    fn a_cookie_sealed_with_a_previous_key_opens_and_asks_to_be_sealed_again() {
        let old = Config::builder("id", "s", CALLBACK)
            .cookie_key(OLD_KEY)
            .build()
            .unwrap();
        let sealed_old = old.cookie_key().seal("c", "value");
        // Deploy 1: still sealing with the old key, the new one known.
        let learning = Config::builder("id", "s", CALLBACK)
            .cookie_key(OLD_KEY)
            .previous_cookie_keys([NEW_KEY])
            .build()
            .unwrap();
        // Deploy 2: sealing with the new key, the old one kept.
        let rotated = Config::builder("id", "s", CALLBACK)
            .cookie_key(NEW_KEY)
            .previous_cookie_keys([OLD_KEY])
            .build()
            .unwrap();
        let sealed_new = rotated.cookie_key().seal("c", "value");
        let opened = |config: &Config, sealed: &str| config.open_cookie("c", sealed);
        let fresh = Some(Opened {
            value: "value".into(),
            reseal: false,
        });
        let stale = Some(Opened {
            value: "value".into(),
            reseal: true,
        });
        assert_eq!(opened(&learning, &sealed_old), fresh);
        assert_eq!(opened(&learning, &sealed_new), stale);
        assert_eq!(opened(&rotated, &sealed_old), stale);
        assert_eq!(opened(&rotated, &sealed_new), fresh);
        assert_eq!(
            opened(&old, &sealed_new),
            None,
            "an unknown key opens nothing"
        );
        // One character changed (always: a different one at a fixed place).
        let mut tampered = sealed_old.into_bytes();
        tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("base64");
        assert_eq!(opened(&rotated, &tampered), None);
        assert_eq!(rotated.open_cookie("other-name", &sealed_new), None);
    }
}
