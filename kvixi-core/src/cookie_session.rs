//! The cookie-session engine of the adapters that keep the session themselves (actix-web,
//! Rocket; axum uses tower-sessions' own layer): a session id in a cookie sealed with the
//! app's cookie key, the data in any tower-sessions store, written through at every
//! change. Framework-free: the input is the request's session cookie, the output the
//! `Set-Cookie` to send.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::lock::{Mutex, MutexGuard};
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};

use crate::flow::{self, AUTH_RECORD_KEY};
use crate::record_expiry;

/// The record member of a remembered session: its idle timeout in seconds.
const REMEMBER_KEY: &str = "kvixi.remember";

/// The idle timeout a remembered record keeps, if it is one.
fn remembered(record: &Record) -> Option<Duration> {
    let seconds = record.data.get(REMEMBER_KEY)?.as_i64()?;
    Some(Duration::seconds(seconds))
}
use crate::{
    AppUser, Config, CookieKey, Error, Kvixi, KvixiUser, SESSION_COOKIE, SessionStorage,
    StoreTimeout, UnixTime,
};

/// The `Set-Cookie` an answer carries for the session cookie (the `cookie` crate's type,
/// which Rocket uses as is; its `Display` is the header value).
pub type SessionCookie = cookie::Cookie<'static>;

/// Server-side sessions behind a sealed session-id cookie ([`SESSION_COOKIE`]), shared by
/// every request of an app.
///
/// - The cookie holds only the session id, sealed with [`Config::cookie_key`]
///   (`KVIXI_COOKIE_KEY`); one sealed with a [previous key](Config::previous_cookie_keys)
///   still opens its session and is sealed again with the current key on that answer.
///   A cookie that opens with no key, or names no stored session, is anonymous.
/// - The record is read at most once per request, written through at every change, and
///   stored under a new id at login ([`SessionStorage::rotate_id`]).
/// - It expires after [`Config::idle_timeout`] without a request: a read pushes the
///   expiry back (a store write) when [`flow::renewal_due`] says so. Its cookie is a
///   browser-session cookie (no `Max-Age`), except for a login with "remember me"
///   ([`SessionStorage::remember`]): that session keeps
///   [`Config::remembered_idle_timeout`] (as `kvixi.remember` in its record) and a
///   persistent cookie, sent again with a fresh `Max-Age` at each renewal.
/// - Every store call gets at most [`Config::session_store_timeout`] ([`StoreTimeout`]):
///   a store that fails or is too slow is [`Error::SessionStoreUnavailable`] (503),
///   nobody is logged out and no cookie is sent.
///
/// ```
/// use kvixi_core::{Config, CookieSessions, MemoryStore, SessionStorage};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kvixi_core::Error> {
/// let config = Config::builder("app", "secret", "https://app.example/auth/kvixi/callback").build()?;
/// let sessions = std::sync::Arc::new(CookieSessions::new(MemoryStore::from_config(&config), &config));
///
/// // A request without a session cookie writes a value: a new session, and its cookie.
/// let request = sessions.request(None);
/// request.insert("greeting", "\"hello\"".into()).await?;
/// let cookie = request.take_set_cookie().expect("a new session's cookie");
///
/// // The browser's next request carries it: the same session.
/// let next = sessions.request(Some(cookie.value().to_owned()));
/// assert_eq!(next.get("greeting").await?.as_deref(), Some("\"hello\""));
/// assert!(next.take_set_cookie().is_none(), "nothing to tell the browser");
/// # Ok(())
/// # }
/// ```
pub struct CookieSessions {
    store: Arc<dyn SessionStore>,
    secure: bool,
    key: CookieKey,
    /// Earlier cookie keys: they still open a session cookie, which is then sealed again.
    previous_keys: Vec<CookieKey>,
    /// A session ends after this long without a request ([`Config::idle_timeout`]).
    inactivity: Duration,
    /// The flow's clock: expiries are set and judged on it.
    clock: crate::Clock,
}

impl std::fmt::Debug for CookieSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSessions")
            .field("secure", &self.secure)
            .field("inactivity", &self.inactivity)
            .finish_non_exhaustive()
    }
}

impl CookieSessions {
    /// Sessions in `store`, each call under [`Config::session_store_timeout`], with the
    /// cookie keys, `Secure` flag and idle timeout of `config`, on the system clock.
    pub fn new<S: SessionStore>(store: S, config: &Config) -> Self {
        Self::with_clock(store, config, std::sync::Arc::new(UnixTime::now))
    }

    /// Sessions in `store` for `kvixi`: its config, as [`new`](Self::new), and its clock
    /// ([`Kvixi::now`]), on which expiries are set and judged. What the adapters use.
    pub fn for_flow<S: SessionStore>(store: S, kvixi: &Kvixi) -> Self {
        Self::with_clock(store, kvixi.config(), kvixi.clock())
    }

    fn with_clock<S: SessionStore>(store: S, config: &Config, clock: crate::Clock) -> Self {
        CookieSessions {
            store: Arc::new(StoreTimeout::from_config(store, config)),
            secure: config.cookie_secure(),
            key: config.cookie_key().clone(),
            previous_keys: config.previous_cookie_keys().to_vec(),
            inactivity: Duration::seconds(
                i64::try_from(config.idle_timeout().as_secs()).unwrap_or(i64::MAX),
            ),
            clock,
        }
    }

    /// Now, on the flow's clock.
    fn now(&self) -> UnixTime {
        (self.clock)()
    }

    /// The session of one request, given the value of its [`SESSION_COOKIE`] (see
    /// [`flow::cookie_value`] to find it in the `Cookie` headers). Nothing is read
    /// before the first use.
    pub fn request(self: &Arc<Self>, cookie: Option<String>) -> RequestSession {
        RequestSession {
            sessions: Arc::clone(self),
            cookie,
            loaded: Mutex::new(Loaded::default()),
            renewed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// When `record` expires if saved now: its remembered idle timeout, or the default.
    fn fresh_expiry(&self, record: &Record) -> OffsetDateTime {
        let idle = remembered(record).unwrap_or(self.inactivity);
        record_expiry::expiring_at(self.now(), idle)
    }

    /// Whether `record` is due for its expiry to be pushed back, as
    /// [`flow::renewal_due`] decides: it was last saved an idle timeout before its expiry.
    /// Whole seconds from the core's clock (no calendar date on every request). Only a
    /// record the default idle timeout finds due is looked at for a remembered one (whose
    /// far expiry reads as due under the default), so other sessions pay nothing more.
    fn due_for_touch(&self, record: &Record, now: UnixTime) -> bool {
        Self::due(record.expiry_date, self.inactivity, now)
            && remembered(record).is_none_or(|idle| Self::due(record.expiry_date, idle, now))
    }

    fn due(expiry: OffsetDateTime, inactivity: Duration, now: UnixTime) -> bool {
        let saved = record_expiry::saved_at(expiry, inactivity);
        flow::renewal_due(Some(saved), now, inactivity.unsigned_abs())
    }

    /// Whether `record` has been idle past its idle timeout at `now` ([`flow::idle_over`]):
    /// the session is over even if its store still holds it.
    fn idle_over(&self, record: &Record, now: UnixTime) -> bool {
        let idle = remembered(record).unwrap_or(self.inactivity);
        record_expiry::idle_over(record.expiry_date, idle, now)
    }

    /// The session cookie pointing at `record`, sealed with the current key: a
    /// browser-session cookie (the store decides when the session ends), or for a
    /// remembered session one that lasts its idle timeout.
    fn cookie_for(&self, record: &Record) -> SessionCookie {
        let sealed = self.key.seal(SESSION_COOKIE, &record.id.to_string());
        let cookie = cookie::Cookie::build((SESSION_COOKIE, sealed))
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .secure(self.secure)
            .path("/");
        match remembered(record) {
            Some(idle) => cookie.max_age(idle).build(),
            None => cookie.expires(cookie::Expiration::Session).build(),
        }
    }

    /// The session id a cookie value names, and whether it needs sealing again.
    fn open(&self, sealed: &str) -> Option<(Id, bool)> {
        let (id, reseal) = match self.key.open(SESSION_COOKIE, sealed) {
            Some(id) => (id, false),
            // Sealed before a key rotation: still this app's, sealed again on the answer.
            None => (
                self.previous_keys
                    .iter()
                    .find_map(|key| key.open(SESSION_COOKIE, sealed))?,
                true,
            ),
        };
        Some((id.parse().ok()?, reseal))
    }
}

/// What one request knows of its session.
#[derive(Default)]
struct Loaded {
    read: bool,
    record: Option<Record>,
    /// The `Set-Cookie` the answer must carry.
    set_cookie: Option<SessionCookie>,
    /// What the store said when it failed during this request.
    unavailable: Option<String>,
    /// "Remember me" asked for a session not yet stored: applied when it is created.
    remember: Option<Duration>,
}

/// One request's session, seen through the core's [`SessionStorage`]; built by
/// [`CookieSessions::request`]. After the flow, [`take_set_cookie`](Self::take_set_cookie)
/// gives what the answer must tell the browser.
pub struct RequestSession {
    sessions: Arc<CookieSessions>,
    cookie: Option<String>,
    loaded: Mutex<Loaded>,
    /// The read pushed the record's expiry back, not yet told to the flow
    /// ([`SessionStorage::renewed`]).
    renewed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for RequestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cookie is a bearer credential: never printed.
        f.debug_struct("RequestSession").finish_non_exhaustive()
    }
}

impl RequestSession {
    /// The session cookie the answer must set (a new or resealed id) or clear (a
    /// removal cookie), if any; taken once.
    pub fn take_set_cookie(&self) -> Option<SessionCookie> {
        self.loaded.try_lock()?.set_cookie.take()
    }

    /// What the store said if it failed or timed out during this request: the request
    /// needed its session and must be answered 503, whatever a handler made of it.
    pub fn store_unavailable(&self) -> Option<Error> {
        let loaded = self.loaded.try_lock()?;
        let problem = loaded.unavailable.clone()?;
        Some(Error::SessionStoreUnavailable { problem })
    }

    /// The logged-in user: decided on the loaded record itself when the core can tell
    /// at once ([`Kvixi::current_user_now`]), else by its full read, which also removes
    /// a record whose session is over.
    pub async fn current_user(&self, kvixi: &Kvixi) -> Result<Option<KvixiUser>, Error> {
        match self.at_once(|json| kvixi.current_user_now(json)).await? {
            Some(user) => Ok(user),
            // Boxed: the full read is rare, and its state would otherwise make every
            // caller's future the bigger.
            None => Box::pin(kvixi.current_user(self)).await,
        }
    }

    /// [`current_user`](Self::current_user) with the app's data, typed.
    pub async fn current_app_user<T: DeserializeOwned>(
        &self,
        kvixi: &Kvixi,
    ) -> Result<Option<AppUser<T>>, Error> {
        match self
            .at_once(|json| kvixi.current_app_user_now(json))
            .await?
        {
            Some(found) => Ok(found),
            None => Box::pin(kvixi.current_app_user(self)).await,
        }
    }

    /// What `decide` makes of the auth record's JSON as loaded (`None`: no record), or
    /// `None` when it cannot tell at once.
    async fn at_once<R>(
        &self,
        decide: impl FnOnce(Option<&str>) -> Option<R>,
    ) -> Result<Option<R>, Error> {
        let loaded = self.loaded().await?;
        // A renewal is told to the flow by its full read (for "your devices").
        if self.renewed.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        let value = loaded
            .record
            .as_ref()
            .and_then(|record| record.data.get(AUTH_RECORD_KEY));
        Ok(match value {
            None => decide(None),
            Some(Value::String(json)) => decide(Some(json)),
            // Written by something else than the flow: the core's full read decides.
            Some(_) => None,
        })
    }

    /// The record, read from the store at the first call of the request.
    async fn loaded(&self) -> Result<MutexGuard<'_, Loaded>, Error> {
        let mut loaded = self.loaded.lock().await;
        if !loaded.read {
            let record = self.read(&mut loaded).await;
            loaded.record = self.store_call(&mut loaded, record)?;
            loaded.read = true;
        }
        Ok(loaded)
    }

    /// `result` of a store call, a failure remembered for [`Self::store_unavailable`].
    fn store_call<T>(
        &self,
        loaded: &mut Loaded,
        result: Result<T, tower_sessions_core::session_store::Error>,
    ) -> Result<T, Error> {
        result.map_err(|error| {
            let error = Error::from(error);
            if let Error::SessionStoreUnavailable { problem } = &error {
                loaded.unavailable = Some(problem.clone());
            }
            error
        })
    }

    async fn read(
        &self,
        loaded: &mut Loaded,
    ) -> Result<Option<Record>, tower_sessions_core::session_store::Error> {
        let sessions = &self.sessions;
        // A cookie that does not open or parse is someone else's: anonymous.
        let Some((id, reseal)) = self.cookie.as_deref().and_then(|c| sessions.open(c)) else {
            return Ok(None);
        };
        let Some(mut record) = sessions.store.load(&id).await? else {
            return Ok(None);
        };
        let now = sessions.now();
        if sessions.idle_over(&record, now) {
            // Idle too long on the flow's clock, though the store kept it: over.
            tracing::info!("kvixi session over: idle past its idle timeout");
            sessions.store.delete(&id).await?;
            return Ok(None);
        }
        let touched = sessions.due_for_touch(&record, now);
        if touched {
            record.expiry_date = sessions.fresh_expiry(&record);
            sessions.store.save(&record).await?;
            self.renewed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // A remembered session's cookie slides with its expiry.
        if reseal || (touched && remembered(&record).is_some()) {
            loaded.set_cookie = Some(sessions.cookie_for(&record));
        }
        Ok(Some(record))
    }

    /// Writes `record` through with a fresh expiry.
    async fn save(&self, loaded: &mut Loaded) -> Result<(), Error> {
        let sessions = &self.sessions;
        let saved = match &mut loaded.record {
            Some(record) => {
                record.expiry_date = sessions.fresh_expiry(record);
                sessions.store.save(record).await
            }
            None => Ok(()),
        };
        self.store_call(loaded, saved)
    }

    /// Stores `record` under a new id and points the cookie at it.
    async fn create(&self, loaded: &mut Loaded, mut record: Record) -> Result<(), Error> {
        let sessions = &self.sessions;
        record.id = Id::default();
        if let Some(idle) = loaded.remember.take() {
            let seconds = idle.whole_seconds();
            record
                .data
                .insert(REMEMBER_KEY.to_owned(), Value::from(seconds));
        }
        record.expiry_date = sessions.fresh_expiry(&record);
        let created = sessions.store.create(&mut record).await;
        self.store_call(loaded, created)?;
        loaded.set_cookie = Some(sessions.cookie_for(&record));
        loaded.record = Some(record);
        Ok(())
    }
}

#[async_trait::async_trait]
impl SessionStorage for RequestSession {
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let loaded = self.loaded().await?;
        Ok(loaded
            .record
            .as_ref()
            .and_then(|record| record.data.get(key))
            .map(|value| match value {
                Value::String(json) => json.clone(),
                // Written by something else than the flow: the core decides its worth.
                other => other.to_string(),
            }))
    }

    async fn insert(&self, key: &str, json: String) -> Result<(), Error> {
        let value = Value::String(json);
        let mut loaded = self.loaded().await?;
        match &mut loaded.record {
            Some(record) => {
                record.data.insert(key.to_owned(), value);
                self.save(&mut loaded).await
            }
            None => {
                let record = Record {
                    id: Id::default(),
                    data: HashMap::from([(key.to_owned(), value)]),
                    expiry_date: OffsetDateTime::now_utc(),
                };
                self.create(&mut loaded, record).await
            }
        }
    }

    async fn remove(&self, key: &str) -> Result<(), Error> {
        let mut loaded = self.loaded().await?;
        let removed = loaded
            .record
            .as_mut()
            .and_then(|record| record.data.remove(key));
        match removed {
            Some(_) => self.save(&mut loaded).await,
            None => Ok(()),
        }
    }

    async fn rotate_id(&self) -> Result<(), Error> {
        let mut loaded = self.loaded().await?;
        if let Some(record) = loaded.record.take() {
            let old = record.id;
            let kept = record.clone();
            if let Err(error) = self.create(&mut loaded, record).await {
                loaded.record = Some(kept);
                return Err(error);
            }
            let deleted = self.sessions.store.delete(&old).await;
            self.store_call(&mut loaded, deleted)?;
        }
        Ok(())
    }

    async fn destroy(&self) -> Result<(), Error> {
        let mut loaded = self.loaded().await?;
        if let Some(record) = loaded.record.take() {
            let deleted = self.sessions.store.delete(&record.id).await;
            if let Err(error) = self.store_call(&mut loaded, deleted) {
                loaded.record = Some(record);
                return Err(error);
            }
        }
        let removal = cookie::Cookie::build(SESSION_COOKIE).path("/").removal();
        loaded.set_cookie = Some(removal.build());
        Ok(())
    }
    fn renewed(&self) -> bool {
        self.renewed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }
    fn remember(&self, idle: std::time::Duration) {
        // The flow calls it between its own awaited calls: nothing else holds the lock.
        let Some(mut loaded) = self.loaded.try_lock() else {
            tracing::error!("kvixi session busy: remember me not applied");
            return;
        };
        let idle = Duration::try_from(idle).unwrap_or(Duration::MAX);
        match &mut loaded.record {
            // Written with the auth record that follows, which also sends the cookie.
            Some(record) => {
                let seconds = Value::from(idle.whole_seconds());
                record.data.insert(REMEMBER_KEY.to_owned(), seconds);
                loaded.set_cookie = Some(self.sessions.cookie_for(record));
            }
            None => loaded.remember = Some(idle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    /// Sessions whose idle timeout is `seconds`.
    fn sessions(seconds: u64) -> CookieSessions {
        let config = Config::builder("app", "secret", "http://localhost/cb")
            .idle_timeout(std::time::Duration::from_secs(seconds))
            .build()
            .expect("valid config");
        CookieSessions::new(MemoryStore::default(), &config)
    }

    #[test]
    fn a_session_in_use_is_touched_in_time_and_a_fresh_one_is_left_alone() {
        let now = OffsetDateTime::now_utc();
        let millis = Duration::milliseconds;
        // A 5 s idle timeout: a session last touched 0.3 s ago or more is due (with
        // whole seconds rounded the wrong way it would idle out while in use).
        let short = sessions(5);
        for left in [4_700, 4_500, 1_000, 100] {
            let due = CookieSessions::due(now + millis(left), short.inactivity, UnixTime::now());
            assert!(due, "{left} ms left");
        }
        // The default 24 h: touched at most about once an hour, not at every request.
        let day = sessions(24 * 3600);
        let day = |expiry| CookieSessions::due(expiry, day.inactivity, UnixTime::now());
        assert!(!day(now + Duration::hours(24) - Duration::minutes(10)));
        assert!(day(now + Duration::hours(22)));
    }

    /// A session idle past its timeout on the flow's clock is over at its next read,
    /// whatever the store still holds (a store that keeps expired records, or the test
    /// suite's clock): anonymous, and its record deleted. One read now and then keeps it.
    #[tokio::test]
    async fn a_session_idle_past_its_timeout_on_the_flows_clock_is_over() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let config = Config::builder("app", "secret", "http://localhost/cb")
            .build()
            .expect("valid config");
        let clock = Arc::new(AtomicU64::new(UnixTime::now().0));
        let read_clock = Arc::clone(&clock);
        let store = MemoryStore::default();
        let sessions = Arc::new(CookieSessions::with_clock(
            store.clone(),
            &config,
            Arc::new(move || UnixTime(read_clock.load(Ordering::SeqCst))),
        ));
        let hours = |n: u64| clock.fetch_add(n * 3600, Ordering::SeqCst);
        let log_in = async || {
            let request = sessions.request(None);
            request.insert(AUTH_RECORD_KEY, "{}".into()).await.unwrap();
            request
                .take_set_cookie()
                .expect("a new session's cookie")
                .value()
                .to_owned()
        };
        let read = async |cookie: &str| {
            let request = sessions.request(Some(cookie.to_owned()));
            request.get(AUTH_RECORD_KEY).await.unwrap()
        };
        let (idle, used) = (log_in().await, log_in().await);
        // 23 h, 46 h, 69 h: the used one is read each time, and renewed.
        for _ in 0..3 {
            hours(23);
            assert!(read(&used).await.is_some(), "read within the idle timeout");
        }
        assert!(read(&idle).await.is_none(), "69 h without a request");
        let id = sessions.open(&idle).expect("our cookie").0;
        assert!(
            store.load(&id).await.unwrap().is_none(),
            "its record deleted"
        );
        hours(25);
        assert!(read(&used).await.is_none(), "25 h without a request");
    }

    #[tokio::test]
    async fn a_remembered_session_gets_a_persistent_cookie_and_its_own_idle_timeout() {
        let sessions = Arc::new(sessions(3600));
        let month = std::time::Duration::from_secs(30 * 86_400);
        // Not remembered: a browser-session cookie, the store's expiry an hour away.
        let plain = sessions.request(None);
        plain.insert(AUTH_RECORD_KEY, "{}".into()).await.unwrap();
        let cookie = plain.take_set_cookie().expect("a new session's cookie");
        assert_eq!(cookie.max_age(), None);
        assert_eq!(cookie.expires(), Some(cookie::Expiration::Session));

        // A login with remember me, as the flow does it: rotate, remember, write.
        let login = sessions.request(Some(cookie.value().to_owned()));
        login.rotate_id().await.unwrap();
        login.remember(month);
        login
            .insert(AUTH_RECORD_KEY, "{\"a\":1}".into())
            .await
            .unwrap();
        let remembered = login
            .take_set_cookie()
            .expect("the rotated session's cookie");
        assert_eq!(remembered.max_age(), Some(Duration::days(30)));
        let (id, _) = sessions.open(remembered.value()).unwrap();
        let record = sessions.store.load(&id).await.unwrap().unwrap();
        assert!(record.expiry_date > OffsetDateTime::now_utc() + Duration::days(29));

        // Its next read: the same session, and no touch of a fresh 30-day expiry.
        let next = sessions.request(Some(remembered.value().to_owned()));
        let read = next.get(AUTH_RECORD_KEY).await.unwrap();
        assert_eq!(read.as_deref(), Some("{\"a\":1}"));
        assert!(
            next.take_set_cookie().is_none(),
            "not touched at every read"
        );

        // Remembered from a session that had no record yet: applied when it is created.
        let fresh = sessions.request(None);
        fresh.remember(month);
        fresh.insert(AUTH_RECORD_KEY, "{}".into()).await.unwrap();
        let cookie = fresh.take_set_cookie().expect("a new session's cookie");
        assert_eq!(cookie.max_age(), Some(Duration::days(30)));
    }

    #[tokio::test]
    async fn a_rotated_key_opens_the_session_and_seals_its_cookie_again() {
        const OLD: &str = "the-old-cookie-key-of-at-least-32-bytes!!";
        const NEW: &str = "the-new-cookie-key-of-at-least-32-bytes!!";
        let store = MemoryStore::default();
        let keyed = |key: &str, previous: &[&str]| {
            let config = Config::builder("app", "secret", "http://localhost/cb")
                .cookie_key(key)
                .previous_cookie_keys(previous.iter().copied())
                .build()
                .expect("valid config");
            Arc::new(CookieSessions::new(store.clone(), &config))
        };
        let before = keyed(OLD, &[]).request(None);
        before.insert("k", "1".into()).await.expect("stored");
        let old = before.take_set_cookie().expect("a cookie");

        let after = keyed(NEW, &[OLD]).request(Some(old.value().to_owned()));
        assert_eq!(after.get("k").await.expect("read").as_deref(), Some("1"));
        let resealed = after.take_set_cookie().expect("sealed again");
        assert_ne!(resealed.value(), old.value());

        let later = keyed(NEW, &[]);
        let with_new = later.request(Some(resealed.value().to_owned()));
        assert_eq!(with_new.get("k").await.expect("read").as_deref(), Some("1"));
        let with_old = later.request(Some(old.value().to_owned()));
        assert_eq!(with_old.get("k").await.expect("read"), None, "key dropped");
    }
}
