//! The thin async driver: runs the flow's transitions against a session and Kvixi.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::client::KvixiClient;
use crate::config::Config;
use crate::error::Error;
use crate::flow::{self, AuthRecord, PendingLogin, TokenState, UnixTime};
use crate::reply::Reply;
use crate::return_to::ReturnTo;
use crate::secret::AccessToken;
use crate::session::SessionStorage;
use crate::user::KvixiUser;

/// Why the application's `on_login` hook refused a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRefused {
    reason: String,
}

impl LoginRefused {
    /// Refuses with a reason for the logs (the user sees a generic message).
    pub fn new(reason: impl Into<String>) -> Self {
        LoginRefused {
            reason: reason.into(),
        }
    }
}

/// The future an `on_login` hook returns.
pub type LoginHookFuture = Pin<Box<dyn Future<Output = Result<(), LoginRefused>> + Send>>;
type LoginHook = Arc<dyn Fn(KvixiUser, AccessToken) -> LoginHookFuture + Send + Sync>;
type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

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
}

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
}

impl KvixiBuilder {
    /// Runs `hook` after Kvixi confirmed the user and before the session is written;
    /// returning `Err` refuses the login (403, nothing stored). Use it to upsert the user
    /// in the app's database or to admit only some users.
    pub fn on_login<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(KvixiUser, AccessToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), LoginRefused>> + Send + 'static,
    {
        self.on_login = Some(Arc::new(move |user, token| Box::pin(hook(user, token))));
        self
    }

    /// Replaces the system clock (for tests that move time without sleeping).
    pub fn clock(mut self, clock: impl Fn() -> UnixTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the flow and its HTTP client.
    pub fn build(self) -> Result<Kvixi, Error> {
        Ok(Kvixi {
            inner: Arc::new(Inner {
                client: KvixiClient::new(self.config)?,
                on_login: self.on_login,
                clock: self.clock,
                consumed: std::sync::Mutex::new(flow::ConsumedLogins::new(MAX_CONSUMED_LOGINS)),
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
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.inner.client.config()
    }

    /// The Kvixi API client, for calls of the app's own with a [`AccessToken`].
    pub fn client(&self) -> &KvixiClient {
        &self.inner.client
    }

    fn now(&self) -> UnixTime {
        (self.inner.clock)()
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
    /// cleared whatever the outcome.
    pub async fn handle_callback(
        &self,
        session: &dyn SessionStorage,
        query: Option<&str>,
        login_cookie: Option<&str>,
        prefers_json: bool,
    ) -> Reply {
        let reply = match self.callback(session, query, login_cookie).await {
            Ok(logged_in) => Reply::see_other(logged_in.return_to.as_str()),
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

    /// What an extractor answers when a user is required and there is none.
    pub fn anonymous_reply(&self, prefers_json: bool, path_and_query: &str) -> Reply {
        match flow::anonymous_reply(self.config(), prefers_json, path_and_query) {
            flow::AnonymousReply::RedirectToLogin(location) => Reply::see_other(location),
            flow::AnonymousReply::Unauthorized => Reply::not_logged_in_json(),
        }
    }

    /// The error page or JSON for `error`, logged at the level it deserves.
    pub fn failure(&self, error: &Error, prefers_json: bool) -> Reply {
        if error.is_provider_failure() || error.status() >= 500 {
            tracing::warn!(error = %error, code = error.code(), "kvixi login failed");
        } else {
            tracing::info!(error = %error, code = error.code(), "kvixi login refused");
        }
        Reply::error(self.config(), error, prefers_json)
    }

    /// Starts a login: Kvixi's login page and the sealed pending login for the
    /// browser's login cookie. No session is read or written.
    pub fn login(&self, query: Option<&str>) -> LoginStarted {
        let start = flow::start_login(self.config(), query, random_id(), self.now());
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
        let now = self.now();
        // One callback per pending login: a replayed copy of the cookie finds it used.
        let pending = login_cookie
            .and_then(|sealed| flow::open_pending_login(self.config(), sealed))
            .filter(|pending| self.consume(pending, now));
        let login_id = pending.as_ref().map(|p| p.id.clone()).unwrap_or_default();
        let span = tracing::info_span!("kvixi.callback", login_id = %login_id);
        async {
            let accepted = flow::accept_callback(self.config(), pending, query, now)?;
            let client = &self.inner.client;
            let token = client.authorize(&accepted.auth_key).await?;
            let user = client.user_info(&token).await?;
            if let Some(hook) = &self.inner.on_login {
                hook(user.clone(), token.clone())
                    .await
                    .map_err(|refused| Error::LoginRefused {
                        reason: refused.reason,
                    })?;
            }
            let record = flow::finish_login(self.config(), user.clone(), token, self.now());
            session.rotate_id().await?;
            write(session, flow::AUTH_RECORD_KEY, &record).await?;
            tracing::info!(user_id = %user.id, "kvixi login succeeded");
            Ok(LoggedIn {
                user,
                return_to: accepted.pending.return_to,
            })
        }
        .instrument(span)
        .await
    }

    fn consume(&self, pending: &PendingLogin, now: UnixTime) -> bool {
        let mut consumed = self
            .inner
            .consumed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        consumed.consume(self.config(), pending, now)
    }

    /// Ends the session.
    pub async fn logout(&self, session: &dyn SessionStorage) -> Result<(), Error> {
        session.destroy().await?;
        tracing::info!("kvixi logout");
        Ok(())
    }

    /// The stored auth record, if someone is logged in. A record that does not parse
    /// (tampered, or from an incompatible version) is removed and counts as anonymous.
    pub async fn auth_record(
        &self,
        session: &dyn SessionStorage,
    ) -> Result<Option<AuthRecord>, Error> {
        read(session, flow::AUTH_RECORD_KEY).await
    }

    /// The logged-in user, if any: one session read, no network call.
    pub async fn current_user(
        &self,
        session: &dyn SessionStorage,
    ) -> Result<Option<KvixiUser>, Error> {
        /// The auth record without its token: reading the user needs nothing else.
        #[derive(serde::Deserialize)]
        struct UserOnly {
            user: KvixiUser,
        }
        let record: Option<UserOnly> = read(session, flow::AUTH_RECORD_KEY).await?;
        Ok(record.map(|record| record.user))
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
                write(session, flow::AUTH_RECORD_KEY, &updated).await?;
                Ok(user)
            }
            Err(Error::TokenExpired) => {
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
