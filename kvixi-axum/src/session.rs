//! The core's session interface over `tower_sessions::Session`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kvixi_core::flow::{self, AUTH_RECORD_KEY};
use kvixi_core::record_expiry;
use kvixi_core::{Clock, Config, Error, Kvixi, SessionStorage, UnixTime, async_trait};
use serde_json::Value;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;
use tower_sessions::{Expiry, Session, SessionStore};

/// The head of a stored auth record that carries its renewal stamp: when the session was
/// last renewed (Unix seconds), as the record's first member. tower-sessions pushes a
/// session's expiry back, in the store and in the cookie, only when it saves it, and it
/// saves only a changed session: the stamp is the change that renews a session that is
/// only read. Inside the record, which every read of the login loads anyway, it costs no
/// second session read; the core ignores a member it does not know.
const STAMP: &str = "{\"kvixi.renewed\":";

/// The member after the stamp in the record of a session logged in with "remember me":
/// its idle timeout in seconds, which each renewal keeps.
const REMEMBER: &str = "\"kvixi.remember\":";

/// What the head of a stored auth record says: when the session was last renewed (`None`
/// without a stamp), the idle timeout it remembers (seconds), and the record's members
/// after them.
fn split_stamp(json: &str) -> (Option<UnixTime>, Option<u64>, &str) {
    let stamp = json.strip_prefix(STAMP).and_then(|rest| {
        let (seconds, members) = rest
            .split_once(',')
            .unwrap_or((rest.strip_suffix('}')?, "}"));
        Some((UnixTime(seconds.parse().ok()?), members))
    });
    let Some((stamp, members)) = stamp else {
        return (None, None, json.strip_prefix('{').unwrap_or(json));
    };
    let remembered = members.strip_prefix(REMEMBER).and_then(|rest| {
        let end = rest.find([',', '}'])?;
        let seconds = rest[..end].parse().ok()?;
        let rest = &rest[end..];
        Some((seconds, rest.strip_prefix(',').unwrap_or(rest)))
    });
    match remembered {
        Some((seconds, members)) => (Some(stamp), Some(seconds), members),
        None => (Some(stamp), None, members),
    }
}

/// The auth record `json` (a JSON object) stamped as renewed at `now`, remembering
/// `remember` seconds of idle timeout if any.
fn stamped(json: &str, now: UnixTime, remember: Option<u64>) -> String {
    let (_, _, members) = split_stamp(json);
    let comma = if members.starts_with('}') { "" } else { "," };
    match remember {
        Some(seconds) => format!("{STAMP}{},{REMEMBER}{seconds}{comma}{members}", now.0),
        None => format!("{STAMP}{}{comma}{members}", now.0),
    }
}

/// A `tower_sessions::Session` seen through the core's [`SessionStorage`], borrowed
/// from the request (no reference count to bump on every read). Reading the auth record
/// renews the session when [`flow::renewal_due`] says so.
pub(crate) struct TowerSession<'s> {
    session: &'s Session,
    /// The flow: its [`Config::idle_timeout`], which the renewals keep a session in use
    /// from reaching, and its clock, on which renewals are stamped and idleness judged.
    kvixi: &'s Kvixi,
    /// Seconds of idle timeout a login with "remember me" asked for (0: none), for the
    /// auth record written next.
    remember: AtomicU64,
    /// A read renewed the session, not yet told to the flow ([`SessionStorage::renewed`]).
    renewed: AtomicBool,
}

impl<'s> TowerSession<'s> {
    /// `session` under the idle timeout and clock of `kvixi`.
    pub(crate) fn new(session: &'s Session, kvixi: &'s Kvixi) -> Self {
        TowerSession {
            session,
            kvixi,
            remember: AtomicU64::new(0),
            renewed: AtomicBool::new(false),
        }
    }

    /// The tower-sessions session.
    pub(crate) fn session(&self) -> &'s Session {
        self.session
    }

    /// Writes the auth record `json` stamped as renewed now: tower-sessions saves the
    /// session with a fresh expiry and sends the cookie again.
    /// A remembered session (as the record says, or as the login asks) gets its own
    /// expiry, which makes the cookie persistent with that `Max-Age`.
    async fn write_record(&self, json: &str) -> Result<(), tower_sessions::session::Error> {
        let (_, remembered, _) = split_stamp(json);
        let asked = self.remember.load(Ordering::Relaxed);
        let remember = remembered.or((asked > 0).then_some(asked));
        let record = Value::String(stamped(json, self.kvixi.now(), remember));
        self.session.insert_value(AUTH_RECORD_KEY, record).await?;
        // A stamp equal to the stored one (two renewals in a second, as a 1 s idle
        // timeout needs) is no change to tower-sessions: setting the session's expiry
        // again marks it changed, so that it is saved all the same.
        match remember {
            Some(seconds) => self.session.set_expiry(Some(remembered_expiry(seconds))),
            None => self.session.set_expiry(self.session.expiry()),
        }
        Ok(())
    }
}

/// A store that failed or timed out is unavailable (503: nobody is told logged out); a
/// value that does not serialize is a misuse (500).
fn store_error(error: tower_sessions::session::Error) -> Error {
    match error {
        tower_sessions::session::Error::Store(store) => Error::from(store),
        tower_sessions::session::Error::SerdeJson(json) => Error::Session(json.to_string()),
    }
}

#[async_trait]
impl SessionStorage for TowerSession<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let value = self.session.get_value(key).await.map_err(store_error)?;
        let json = value.map(|value| match value {
            Value::String(json) => json,
            // Written by something else than the flow: the core decides what it is worth.
            other => other.to_string(),
        });
        // Every read of a login passes here; an anonymous session is left alone. A
        // failed renewal is logged and the read stands: the next read tries again.
        if let (AUTH_RECORD_KEY, Some(record)) = (key, &json) {
            let (renewed, remembered, _) = split_stamp(record);
            let idle = remembered.map_or(self.kvixi.config().idle_timeout(), Duration::from_secs);
            if flow::renewal_due(renewed, self.kvixi.now(), idle) {
                match self.write_record(record).await {
                    Ok(()) => self.renewed.store(true, Ordering::Relaxed),
                    Err(error) => tracing::warn!(%error, "kvixi session renewal not written"),
                }
            }
        }
        Ok(json)
    }
    async fn insert(&self, key: &str, json: String) -> Result<(), Error> {
        let written = match key {
            // Writing the record saves the session: a renewal already.
            AUTH_RECORD_KEY => self.write_record(&json).await,
            _ => self
                .session
                .insert_value(key, Value::String(json))
                .await
                .map(drop),
        };
        written.map_err(store_error)
    }
    async fn remove(&self, key: &str) -> Result<(), Error> {
        self.session.remove_value(key).await.map_err(store_error)?;
        Ok(())
    }
    async fn rotate_id(&self) -> Result<(), Error> {
        self.session.cycle_id().await.map_err(store_error)
    }
    async fn destroy(&self) -> Result<(), Error> {
        self.session.flush().await.map_err(store_error)
    }
    fn renewed(&self) -> bool {
        self.renewed.swap(false, Ordering::Relaxed)
    }
    fn remember(&self, idle: Duration) {
        self.remember
            .store(idle.as_secs().max(1), Ordering::Relaxed);
    }
}

/// The tower-sessions store the [`session_layer`](crate::session_layer) runs on: `store`,
/// with each record it saves expiring an idle timeout after the save. A session's cookie
/// has no `Max-Age` (it ends with the browser), so tower-sessions would give its record
/// two weeks; this keeps [`Config::idle_timeout`] on the server, or the remembered idle
/// timeout of a login with "remember me" (as its auth record says). A record loaded
/// after that long without a save is over ([`flow::idle_over`]), even if the store kept
/// it: it is deleted and the session starts empty. Expiries are set and judged on the
/// flow's clock ([`for_flow`](Self::for_flow), which `with_kvixi_store` uses), or on the
/// system clock ([`new`](Self::new)).
#[derive(Clone)]
pub struct IdleExpiry<S> {
    store: S,
    idle: time::Duration,
    clock: Clock,
}

impl<S: std::fmt::Debug> std::fmt::Debug for IdleExpiry<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleExpiry")
            .field("store", &self.store)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl<S> IdleExpiry<S> {
    /// `store`, its records expiring after `config`'s idle timeout without a save, on
    /// the system clock.
    pub fn new(store: S, config: &Config) -> Self {
        Self::with_clock(store, config, Arc::new(UnixTime::now))
    }

    /// `store` for `kvixi`: its idle timeout, as [`new`](Self::new), and its clock
    /// ([`Kvixi::now`]), on which the auth record's renewal stamp is written.
    pub fn for_flow(store: S, kvixi: &Kvixi) -> Self {
        Self::with_clock(store, kvixi.config(), kvixi.clock())
    }

    fn with_clock(store: S, config: &Config, clock: Clock) -> Self {
        let seconds = i64::try_from(config.idle_timeout().as_secs()).unwrap_or(i64::MAX);
        IdleExpiry {
            store,
            idle: time::Duration::seconds(seconds),
            clock,
        }
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.store
    }

    /// The idle timeout of `record`: its own if it is remembered.
    fn idle_of(&self, record: &Record) -> time::Duration {
        let remembered = match record.data.get(AUTH_RECORD_KEY) {
            Some(Value::String(json)) => split_stamp(json).1,
            _ => None,
        };
        remembered.map_or(self.idle, |seconds| {
            time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
        })
    }

    /// `record` expiring an idle timeout from now.
    fn expiring(&self, record: &mut Record) {
        record.expiry_date = record_expiry::expiring_at((self.clock)(), self.idle_of(record));
    }

    /// Whether `record` was last saved longer than its idle timeout ago on the clock.
    fn idle_over(&self, record: &Record) -> bool {
        record_expiry::idle_over(record.expiry_date, self.idle_of(record), (self.clock)())
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for IdleExpiry<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.expiring(record);
        self.store.create(record).await
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut record = record.clone();
        self.expiring(&mut record);
        self.store.save(&record).await
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(record) = self.store.load(id).await? else {
            return Ok(None);
        };
        if self.idle_over(&record) {
            // Idle too long on the clock, though the store kept it: over, as the store
            // would have ended it.
            tracing::info!("kvixi session over: idle past its idle timeout");
            self.store.delete(id).await?;
            return Ok(None);
        }
        Ok(Some(record))
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.delete(id).await
    }
}

/// The tower-sessions expiry of a session remembered for `seconds` without a request.
pub(crate) fn remembered_expiry(seconds: u64) -> Expiry {
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    Expiry::OnInactivity(time::Duration::seconds(seconds))
}

/// The idle timeout a session's loaded auth record remembers, if it is one, read without
/// waiting (the session is loaded once it has been changed).
pub(crate) fn remembered_now(session: &Session) -> Option<u64> {
    use futures_util::FutureExt;
    let value = session.get_value(AUTH_RECORD_KEY).now_or_never()?.ok()??;
    let Value::String(json) = value else {
        return None;
    };
    split_stamp(&json).1
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::routing::get;
    use kvixi_core::{Config, Kvixi, SESSION_COOKIE, UnixTime, async_trait};
    use tower::ServiceExt;
    use tower_sessions::session::{Id, Record};
    use tower_sessions::{SessionStore, session_store};

    #[test]
    fn the_renewal_stamp_rides_in_the_auth_record_and_is_replaced_not_repeated() {
        use kvixi_core::UnixTime;
        let record = r#"{"user":{"id":"1"},"obtained_at":5}"#;
        assert_eq!(super::split_stamp(record), (None, None, &record[1..]));
        let once = super::stamped(record, UnixTime(100), None);
        assert_eq!(
            once,
            r#"{"kvixi.renewed":100,"user":{"id":"1"},"obtained_at":5}"#
        );
        let twice = super::stamped(&once, UnixTime(200), None);
        assert_eq!(
            super::split_stamp(&twice),
            (Some(UnixTime(200)), None, &record[1..])
        );
        let value: serde_json::Value = serde_json::from_str(&twice).expect("still JSON");
        assert_eq!(value["user"]["id"], "1");
        assert_eq!(
            super::stamped("{}", UnixTime(1), None),
            r#"{"kvixi.renewed":1}"#
        );
        // A remembered session's idle timeout rides after the stamp, kept by renewals.
        let remembered = super::stamped(&twice, UnixTime(300), Some(2_592_000));
        assert_eq!(
            remembered,
            r#"{"kvixi.renewed":300,"kvixi.remember":2592000,"user":{"id":"1"},"obtained_at":5}"#
        );
        assert_eq!(
            super::split_stamp(&remembered),
            (Some(UnixTime(300)), Some(2_592_000), &record[1..])
        );
        let again = super::stamped(&remembered, UnixTime(400), Some(2_592_000));
        assert_eq!(super::split_stamp(&again).2, &record[1..], "not repeated");
        let value: serde_json::Value = serde_json::from_str(&again).expect("still JSON");
        assert_eq!(value["user"]["id"], "1");
        let empty = super::stamped("{}", UnixTime(1), Some(60));
        assert_eq!(empty, r#"{"kvixi.renewed":1,"kvixi.remember":60}"#);
        assert_eq!(
            super::split_stamp(&empty),
            (Some(UnixTime(1)), Some(60), "}")
        );
    }

    use super::*;
    use crate::{KvixiRouterExt, KvixiUser};

    const TIMEOUT: Duration = Duration::from_millis(100);

    /// Calls made to [`Hanging`] stores, by every test of this module.
    static HANGING_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A store that never answers, as fred does while it waits for Redis to come back.
    #[derive(Clone, Debug)]
    struct Hanging;

    impl Hanging {
        async fn hang<T>(&self) -> session_store::Result<T> {
            HANGING_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::pending().await
        }
    }

    #[async_trait]
    impl SessionStore for Hanging {
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

    async fn me(user: KvixiUser) -> String {
        user.id.clone()
    }

    async fn maybe(user: Option<KvixiUser>) -> String {
        user.map_or_else(|| "anonymous".to_owned(), |user| user.id.clone())
    }

    /// Pages over a store that hangs, with the store timeout at [`TIMEOUT`].
    fn app() -> Router {
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .session_store_timeout(TIMEOUT)
            .build()
            .expect("valid config");
        Router::new()
            .route("/me", get(me))
            .route("/maybe", get(maybe))
            .route("/public", get(|| async { "public" }))
            .with_kvixi_store(
                Kvixi::builder(config)
                    .revocations(kvixi_core::MemoryRevocations::default())
                    .build()
                    .expect("flow builds"),
                Hanging,
            )
    }

    /// A request with a session cookie (any id: the store never answers) accepting `accept`.
    fn request(uri: &str, accept: &str) -> Request<Body> {
        Request::get(uri)
            .header(header::ACCEPT, accept)
            .header(
                header::COOKIE,
                format!("{SESSION_COOKIE}={}", Id::default()),
            )
            .body(Body::empty())
            .expect("request")
    }

    /// The `Set-Cookie` of the session cookie in `response`, if any.
    fn session_cookie(response: &axum::response::Response) -> Option<String> {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(SESSION_COOKIE))
            .map(str::to_owned)
    }

    /// The app's own writes keep a login from idling out, as reads do: each save pushes
    /// the record's expiry back, which the idle decision reads (on the flow's clock,
    /// moved here by hours); past it the session is over though the store kept it.
    #[tokio::test]
    async fn the_apps_own_writes_keep_a_login_from_idling_out() {
        use std::sync::atomic::AtomicU64;
        use tower_sessions::Session;

        use crate::{KvixiRouterExt, KvixiUser};
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .build()
            .expect("valid config");
        let clock = Arc::new(AtomicU64::new(UnixTime::now().0));
        let read = Arc::clone(&clock);
        let kvixi = Kvixi::builder(config)
            .clock(move || UnixTime(read.load(Ordering::SeqCst)))
            .build()
            .expect("flow builds");
        let at = clock.load(Ordering::SeqCst);
        let record = format!(
            r#"{{"user":{{"id":"7"}},"obtained_at":{at},"token_expires_at":{at},"logged_in_at":{at}}}"#
        );
        let flow = kvixi.clone();
        let log_in = move |session: Session| {
            let (kvixi, record) = (flow.clone(), record.clone());
            async move {
                let stored = TowerSession::new(&session, &kvixi);
                stored.insert(AUTH_RECORD_KEY, record).await.unwrap();
            }
        };
        let note = async |session: Session| session.insert("note", 1).await.unwrap();
        let me = async |user: Option<KvixiUser>| match user {
            Some(_) => StatusCode::OK,
            None => StatusCode::UNAUTHORIZED,
        };
        let app = Router::new()
            .route("/login", get(log_in))
            .route("/note", get(note))
            .route("/me", get(me))
            .with_kvixi_store(kvixi, kvixi_core::MemoryStore::default());
        let get = |uri: &str, cookie: Option<&str>| {
            let mut request = Request::get(uri);
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            request.body(Body::empty()).expect("request")
        };
        let log_in = async || {
            let logged_in = app.clone().oneshot(get("/login", None)).await.unwrap();
            let cookie = session_cookie(&logged_in).expect("a session cookie");
            cookie.split(';').next().unwrap().to_owned()
        };
        let hours = |n: u64| clock.fetch_add(n * 3600, Ordering::SeqCst);
        let status = async |pair: &str, uri: &str| {
            app.clone()
                .oneshot(get(uri, Some(pair)))
                .await
                .unwrap()
                .status()
        };

        let pair = log_in().await;
        hours(20);
        assert_eq!(status(&pair, "/note").await, StatusCode::OK);
        hours(20);
        assert_eq!(
            status(&pair, "/me").await,
            StatusCode::OK,
            "written 20 h ago"
        );
        hours(25);
        assert_eq!(
            status(&pair, "/me").await,
            StatusCode::UNAUTHORIZED,
            "25 h idle"
        );

        // A write after the idle timeout starts an empty session: the login stays over.
        let pair = log_in().await;
        hours(25);
        assert_eq!(status(&pair, "/note").await, StatusCode::OK);
        assert_eq!(
            status(&pair, "/me").await,
            StatusCode::UNAUTHORIZED,
            "not revived"
        );
    }

    #[tokio::test]
    async fn a_remembered_session_the_app_changes_keeps_its_persistent_cookie() {
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .build()
            .expect("valid config");
        let kvixi = Kvixi::builder(config.clone()).build().expect("flow builds");
        let record = r#"{"user":{"id":"7"},"obtained_at":1}"#;
        // A login with remember me, as the flow writes it; and one without.
        let flow = kvixi.clone();
        let log_in = move |remember: bool| {
            let kvixi = flow.clone();
            async move |session: Session| {
                let stored = TowerSession::new(&session, &kvixi);
                if remember {
                    stored.remember(Duration::from_secs(3600));
                }
                stored.insert(AUTH_RECORD_KEY, record.into()).await.unwrap();
            }
        };
        // The app's own write into the session, on a later request.
        let note = async |session: Session| session.insert("note", 1).await.unwrap();
        let app = Router::new()
            .route("/remembered", get(log_in(true)))
            .route("/plain", get(log_in(false)))
            .route("/note", get(note))
            .with_kvixi_store(kvixi, kvixi_core::MemoryStore::default());
        for (login, persistent) in [("/remembered", true), ("/plain", false)] {
            let get = |uri: &str, cookie: Option<&str>| {
                let mut request = Request::get(uri);
                if let Some(cookie) = cookie {
                    request = request.header(header::COOKIE, cookie);
                }
                request.body(Body::empty()).expect("request")
            };
            let logged_in = app.clone().oneshot(get(login, None)).await.unwrap();
            let cookie = session_cookie(&logged_in).expect("a session cookie");
            assert_eq!(
                cookie.contains("Max-Age=3600"),
                persistent,
                "{login}: {cookie}"
            );
            let pair = cookie.split(';').next().unwrap().to_owned();
            let noted = app
                .clone()
                .oneshot(get("/note", Some(&pair)))
                .await
                .unwrap();
            let cookie = session_cookie(&noted).expect("the changed session's cookie");
            assert_eq!(
                cookie.contains("Max-Age=3600"),
                persistent,
                "{login}, then the app's own write: {cookie}"
            );
        }
    }

    #[test]
    fn store_failures_are_unavailable_and_bad_values_server_errors() {
        let down = tower_sessions::session::Error::Store(session_store::Error::Backend(
            "Connection refused".into(),
        ));
        assert_eq!(store_error(down).code(), "session_store_unavailable");
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let misuse = store_error(tower_sessions::session::Error::SerdeJson(json));
        assert!(matches!(misuse, Error::Session(_)), "{misuse:?}");
    }

    #[tokio::test]
    async fn a_store_that_hangs_answers_503_in_time_never_a_login() {
        let _alone = ALONE.lock().await;
        for (uri, accept) in [
            ("/me", "application/json"),
            ("/me", "text/html"),
            ("/maybe", "text/html"),
        ] {
            let started = Instant::now();
            let response = app()
                .oneshot(request(uri, accept))
                .await
                .expect("infallible");
            let took = started.elapsed();
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{uri} {accept}: not a login redirect, not anonymous"
            );
            assert!(took >= TIMEOUT && took < TIMEOUT * 10, "{uri}: {took:?}");
            assert!(
                response.headers().get(header::SET_COOKIE).is_none(),
                "{uri}: the session cookie is left alone"
            );
        }
    }

    #[tokio::test]
    async fn a_page_without_the_session_is_served_while_the_store_hangs() {
        // Served without waiting for the store's timeout, and with no store call at all
        // (counted across this module's tests: none may call it meanwhile on this path,
        // so compare under a lock of the counter's own).
        let _alone = ALONE.lock().await;
        let calls = HANGING_CALLS.load(std::sync::atomic::Ordering::SeqCst);
        let response = app()
            .oneshot(request("/public", "text/html"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            HANGING_CALLS.load(std::sync::atomic::Ordering::SeqCst),
            calls,
            "no store call at all"
        );
        assert!(response.headers().get(header::SET_COOKIE).is_none());
    }

    /// Held by the tests that count store calls or make them, one at a time.
    static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
}
