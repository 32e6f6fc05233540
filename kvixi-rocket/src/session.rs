//! Sessions for Rocket: a session id in a cookie sealed with the app's cookie key (the
//! same `KVIXI_COOKIE_KEY` that seals the login cookie, so instances share one secret),
//! the data in a tower-sessions store, written through at every change.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::lock::{Mutex, MutexGuard};
use kvixi_core::flow::{self, AUTH_RECORD_KEY};
use kvixi_core::{
    Config, CookieKey, Error, Kvixi, SESSION_COOKIE, SessionStorage, UnixTime, async_trait,
};
use rocket::Request;
use rocket::http::{Cookie, CookieJar, SameSite};
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store;

use crate::local::Local;

/// The store and the cookie settings, shared by every request.
pub(crate) struct Sessions {
    store: Arc<dyn SessionStore>,
    secure: bool,
    key: CookieKey,
    /// Earlier cookie keys: they still open a session cookie, which is then sealed again
    /// with `key` ([`Config::previous_cookie_keys`]).
    previous_keys: Vec<CookieKey>,
    /// A session ends after this long without a request ([`Config::idle_timeout`]).
    inactivity: Duration,
}

impl Sessions {
    pub(crate) fn new(store: Arc<dyn SessionStore>, config: &Config) -> Self {
        Sessions {
            store,
            secure: config.cookie_secure(),
            key: config.cookie_key().clone(),
            previous_keys: config.previous_cookie_keys().to_vec(),
            inactivity: idle_timeout(config),
        }
    }

    fn fresh_expiry(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.inactivity
    }

    /// Whether a session expiring at `expiry` is due for its expiry to be pushed back
    /// (a store write), as [`flow::renewal_due`] decides: at most once per 1/24 of the
    /// idle timeout, rounded towards renewing. The session was last saved an idle timeout
    /// before its expiry; whole seconds from the core's clock (no precise clock read, no
    /// calendar date on every request).
    fn due_for_touch(&self, expiry: OffsetDateTime) -> bool {
        let saved = expiry.unix_timestamp() - self.inactivity.whole_seconds();
        let saved = UnixTime(u64::try_from(saved).unwrap_or(0));
        flow::renewal_due(Some(saved), UnixTime::now(), self.inactivity.unsigned_abs())
    }

    /// The session of `request`; its record is read at most once per request.
    pub(crate) fn of<'r>(&'r self, request: &'r Request<'_>) -> RequestSession<'r> {
        RequestSession {
            sessions: self,
            cookies: request.cookies(),
            slot: &Local::of(request).session,
        }
    }
}

/// What this request knows of its record.
#[derive(Default)]
pub(crate) struct Loaded {
    read: bool,
    record: Option<Record>,
}

/// One request's session, seen through the core's [`SessionStorage`].
pub(crate) struct RequestSession<'r> {
    sessions: &'r Sessions,
    cookies: &'r CookieJar<'r>,
    slot: &'r Mutex<Loaded>,
}

/// A store that failed or timed out is unavailable (503: nobody is told logged out); a
/// record that does not encode or decode is a server error (500).
fn store_error(error: session_store::Error) -> Error {
    Error::from(error)
}

/// The configured idle timeout as `time` takes it.
fn idle_timeout(config: &Config) -> Duration {
    Duration::seconds(i64::try_from(config.idle_timeout().as_secs()).unwrap_or(i64::MAX))
}

impl RequestSession<'_> {
    /// The record, read from the store at the first call of the request.
    async fn loaded(&self) -> Result<MutexGuard<'_, Loaded>, Error> {
        let mut loaded = self.slot.lock().await;
        if !loaded.read {
            loaded.record = self.read().await?;
            loaded.read = true;
        }
        Ok(loaded)
    }

    /// The logged-in user: decided by the core on the loaded record itself (nothing
    /// copied out of it) when it can tell at once, else by its full read, which also
    /// removes a record whose session is over.
    pub(crate) async fn current_user(
        &self,
        kvixi: &Kvixi,
    ) -> Result<Option<kvixi_core::KvixiUser>, Error> {
        match self.at_once(|json| kvixi.current_user_now(json)).await? {
            Some(user) => Ok(user),
            // Boxed: the full read is rare, and its state would otherwise make every
            // guard's future (moved and allocated on each request) the bigger.
            None => Box::pin(kvixi.current_user(self)).await,
        }
    }

    /// [`current_user`](RequestSession::current_user) with the app's data, typed.
    pub(crate) async fn current_app_user<T: DeserializeOwned>(
        &self,
        kvixi: &Kvixi,
    ) -> Result<Option<kvixi_core::AppUser<T>>, Error> {
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
        Ok(
            match loaded
                .record
                .as_ref()
                .map(|record| record.data.get(AUTH_RECORD_KEY))
            {
                None | Some(None) => decide(None),
                Some(Some(Value::String(json))) => decide(Some(json)),
                // Written by something else than the flow: the core's full read decides.
                Some(Some(_)) => None,
            },
        )
    }

    async fn read(&self) -> Result<Option<Record>, Error> {
        // A cookie that does not decrypt or parse is someone else's: anonymous.
        let sessions = self.sessions;
        let Some(cookie) = self.cookies.get(SESSION_COOKIE) else {
            return Ok(None);
        };
        let mut reseal = false;
        let opened = sessions
            .key
            .open(SESSION_COOKIE, cookie.value())
            .or_else(|| {
                // Sealed before a key rotation: still this app's, sealed again below.
                reseal = true;
                sessions
                    .previous_keys
                    .iter()
                    .find_map(|key| key.open(SESSION_COOKIE, cookie.value()))
            });
        let Some(id) = opened.and_then(|id| id.parse::<Id>().ok()) else {
            return Ok(None);
        };
        let store = &self.sessions.store;
        let Some(mut record) = store.load(&id).await.map_err(store_error)? else {
            return Ok(None);
        };
        if self.sessions.due_for_touch(record.expiry_date) {
            record.expiry_date = self.sessions.fresh_expiry();
            store.save(&record).await.map_err(store_error)?;
        }
        if reseal {
            self.set_cookie(&record.id);
        }
        Ok(Some(record))
    }

    async fn save(&self, record: &mut Record) -> Result<(), Error> {
        record.expiry_date = self.sessions.fresh_expiry();
        self.sessions.store.save(record).await.map_err(store_error)
    }

    /// Stores `record` under a new id and points the cookie at it.
    async fn create(&self, record: &mut Record) -> Result<(), Error> {
        record.id = Id::default();
        record.expiry_date = self.sessions.fresh_expiry();
        self.sessions
            .store
            .create(record)
            .await
            .map_err(store_error)?;
        self.set_cookie(&record.id);
        Ok(())
    }

    /// Points the session cookie at `id`, sealed with the current cookie key.
    fn set_cookie(&self, id: &Id) {
        let sealed = self.sessions.key.seal(SESSION_COOKIE, &id.to_string());
        let cookie = Cookie::build((SESSION_COOKIE, sealed))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.sessions.secure)
            .path("/")
            .expires(None::<OffsetDateTime>); // ends with the browser; the store decides
        self.cookies.add(cookie);
    }
}

#[async_trait]
impl SessionStorage for RequestSession<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let loaded = self.loaded().await?;
        Ok(loaded
            .record
            .as_ref()
            .and_then(|record| record.data.get(key))
            .map(|value| match value {
                Value::String(json) => json.clone(),
                // Written by something else than the flow: the core decides what it is worth.
                other => other.to_string(),
            }))
    }

    async fn insert(&self, key: &str, json: String) -> Result<(), Error> {
        let value = Value::String(json);
        let mut loaded = self.loaded().await?;
        match &mut loaded.record {
            Some(record) => {
                record.data.insert(key.to_owned(), value);
                self.save(record).await
            }
            None => {
                let mut record = Record {
                    id: Id::default(),
                    data: HashMap::from([(key.to_owned(), value)]),
                    expiry_date: self.sessions.fresh_expiry(),
                };
                self.create(&mut record).await?;
                loaded.record = Some(record);
                Ok(())
            }
        }
    }

    async fn remove(&self, key: &str) -> Result<(), Error> {
        let mut loaded = self.loaded().await?;
        match &mut loaded.record {
            Some(record) => match record.data.remove(key) {
                Some(_) => self.save(record).await,
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    async fn rotate_id(&self) -> Result<(), Error> {
        let mut loaded = self.loaded().await?;
        if let Some(record) = &mut loaded.record {
            let old = record.id;
            self.create(record).await?;
            self.sessions
                .store
                .delete(&old)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    async fn destroy(&self) -> Result<(), Error> {
        let mut loaded = self.loaded().await?;
        if let Some(record) = loaded.record.take() {
            self.sessions
                .store
                .delete(&record.id)
                .await
                .map_err(store_error)?;
        }
        self.cookies.remove(Cookie::build(SESSION_COOKIE).path("/"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rocket::http::{Accept, ContentType, Cookie, Status};
    use rocket::local::asynchronous::Client;
    use tower_sessions_core::SessionStore;
    use tower_sessions_core::session::{Id, Record};
    use tower_sessions_core::session_store;
    use tower_sessions_memory_store::MemoryStore;

    use crate::SESSION_COOKIE;
    use crate::fairing::Attached;
    use crate::test_app::{bare, client, client_with};

    /// Sessions whose idle timeout is `seconds`.
    fn sessions(seconds: u64) -> super::Sessions {
        let config = kvixi_core::Config::builder("app", "secret", "http://localhost/cb")
            .idle_timeout(std::time::Duration::from_secs(seconds))
            .build()
            .expect("valid config");
        super::Sessions::new(std::sync::Arc::new(MemoryStore::default()), &config)
    }

    #[test]
    fn a_session_in_use_is_touched_in_time_and_a_fresh_one_is_left_alone() {
        let now = time::OffsetDateTime::now_utc();
        let millis = time::Duration::milliseconds;
        // A 5 s idle timeout: a session last touched 0.3 s ago or more is due (with
        // whole seconds rounded the wrong way it would idle out while in use).
        let short = sessions(5);
        for left in [4_700, 4_500, 1_000, 100] {
            assert!(short.due_for_touch(now + millis(left)), "{left} ms left");
        }
        // The default 24 h: touched at most about once an hour, not at every request.
        let day = sessions(24 * 3600);
        assert!(!day.due_for_touch(now + time::Duration::hours(24) - time::Duration::minutes(10)));
        assert!(day.due_for_touch(now + time::Duration::hours(22)));
    }
    use crate::testing::log_in;

    /// The `Set-Cookie` header of the session cookie in `response`.
    fn set_cookie(response: &rocket::local::asynchronous::LocalResponse<'_>) -> String {
        response
            .headers()
            .get("Set-Cookie")
            .find(|header| header.starts_with(&format!("{SESSION_COOKIE}=")))
            .expect("a session cookie")
            .to_owned()
    }

    /// Starts a login on `client` and calls back with a key for alice: the callback's
    /// `Set-Cookie` headers.
    async fn callback_cookies(client: &Client, emulator: &kvixi_mock::Emulator) -> Vec<String> {
        let login = client.get("/auth/kvixi/login").dispatch().await;
        assert_eq!(login.status(), Status::SeeOther);
        assert!(
            login
                .headers()
                .get("Set-Cookie")
                .all(|header| !header.starts_with(&format!("{SESSION_COOKIE}="))),
            "starting a login creates no session"
        );
        let app_id = attached(client).kvixi.config().app_id().to_owned();
        let key = emulator.issue_auth_key(&app_id, "alice").expect("key");
        let callback = client
            .get(format!("/auth/kvixi/callback?auth_key={key}"))
            .dispatch()
            .await;
        assert_eq!(callback.status(), Status::SeeOther);
        callback
            .headers()
            .get("Set-Cookie")
            .map(str::to_owned)
            .collect()
    }

    fn attached(client: &Client) -> &Attached {
        client.rocket().state::<Attached>().expect("attached")
    }

    #[rocket::async_test]
    async fn session_cookie_is_lax_http_only_and_holds_no_data() {
        let (emulator, client) = client().await;
        let cookies = callback_cookies(&client, &emulator).await;
        let header = cookies
            .iter()
            .find(|header| header.starts_with(&format!("{SESSION_COOKIE}=")))
            .expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(header.contains(attribute), "{header}");
        }
        assert!(!header.contains("Secure"), "http redirect URL: {header}");
        assert!(
            !header.contains("Expires"),
            "a browser-session cookie: {header}"
        );
        assert!(!header.contains("alice"), "{header}");
    }

    /// The session id the client's cookie names.
    fn session_id(client: &Client) -> Id {
        let cookie = client
            .cookies()
            .get(SESSION_COOKIE)
            .expect("cookie")
            .clone();
        let key = attached(client).kvixi.config().cookie_key();
        key.open(SESSION_COOKIE, cookie.value())
            .expect("sealed with the app's cookie key")
            .parse()
            .expect("a session id")
    }

    /// A tracked client whose sessions are in `store`, sealing with `key` and opening
    /// with `previous` too.
    async fn keyed_client(
        emulator: &kvixi_mock::Emulator,
        store: &MemoryStore,
        key: &str,
        previous: &[&str],
    ) -> Client {
        let config =
            kvixi_core::Config::builder("unit-app", "unit-secret", crate::test_app::CALLBACK)
                .base_url(emulator.base_url())
                .cookie_key(key)
                .previous_cookie_keys(previous.iter().copied())
                .build()
                .expect("valid config");
        let kvixi = kvixi_core::Kvixi::builder(config)
            .revocations(kvixi_core::MemoryRevocations::default())
            .build()
            .expect("flow builds");
        let fairing = crate::KvixiFairing::new(kvixi).store(store.clone());
        Client::tracked(bare().attach(fairing))
            .await
            .expect("the rocket ignites")
    }

    #[rocket::async_test]
    async fn a_key_rotation_keeps_the_session_and_seals_its_cookie_again() {
        const OLD: &str = "the-old-cookie-key-of-at-least-32-bytes!!";
        const NEW: &str = "the-new-cookie-key-of-at-least-32-bytes!!";
        let (emulator, _) = crate::test_app::emulator().await;
        let store = MemoryStore::default();
        let before = keyed_client(&emulator, &store, OLD, &[]).await;
        callback_cookies(&before, &emulator).await;
        let old_cookie = before
            .cookies()
            .get(SESSION_COOKIE)
            .expect("cookie")
            .clone();

        // The instance now seals with the new key and keeps the old one.
        let after = keyed_client(&emulator, &store, NEW, &[OLD]).await;
        let me = after.get("/me").cookie(old_cookie.clone()).dispatch().await;
        assert_eq!(
            me.status(),
            Status::Ok,
            "still logged in after the rotation"
        );
        let resealed = set_cookie(&me);
        let value = resealed
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, value)| value.to_owned())
            .expect("a cookie value");
        assert_ne!(value, old_cookie.value(), "sealed again");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(resealed.contains(attribute), "{resealed}");
        }
        // Once the old key is dropped, the resealed cookie still works; the old one not.
        let later = keyed_client(&emulator, &store, NEW, &[]).await;
        let me = later
            .get("/me")
            .cookie(Cookie::new(SESSION_COOKIE, value))
            .dispatch()
            .await;
        assert_eq!(
            me.status(),
            Status::Ok,
            "the resealed cookie opens with the new key"
        );
        let me = later
            .get("/me")
            .header(Accept::JSON)
            .cookie(old_cookie)
            .dispatch()
            .await;
        assert_eq!(me.status(), Status::Unauthorized, "the old key is gone");
    }

    #[rocket::async_test]
    async fn https_redirect_url_makes_the_session_cookie_secure() {
        const HTTPS: &str = "https://app.example/auth/kvixi/callback";
        let emulator = kvixi_mock::Emulator::builder()
            .app(kvixi_mock::App::new("app", "secret", HTTPS))
            .start("127.0.0.1:0")
            .await
            .expect("the emulator starts");
        let config = kvixi_core::Config::builder("app", "secret", HTTPS)
            .base_url(emulator.base_url())
            .build()
            .expect("valid config");
        let kvixi = kvixi_core::Kvixi::new(config).expect("flow builds");
        let client = Client::tracked(bare().attach(crate::KvixiFairing::new(kvixi)))
            .await
            .expect("the rocket ignites");
        let cookies = callback_cookies(&client, &emulator).await;
        let header = cookies
            .iter()
            .find(|header| header.starts_with(&format!("{SESSION_COOKIE}=")))
            .expect("a session cookie");
        assert!(header.contains("; Secure"), "{header}");
        assert!(header.contains("SameSite=Lax"), "{header}");
    }

    #[rocket::async_test]
    async fn login_rotates_the_id_and_deletes_the_old_record() {
        let store = MemoryStore::default();
        let (emulator, client) = client_with(store.clone()).await;
        log_in(&client, &emulator, "alice")
            .await
            .expect("logged in");
        let before = session_id(&client);
        assert!(store.load(&before).await.expect("load").is_some());

        log_in(&client, &emulator, "alice")
            .await
            .expect("logged in again");
        let after = session_id(&client);
        assert_ne!(before, after);
        assert!(store.load(&before).await.expect("load").is_none());
        let record = store.load(&after).await.expect("load").expect("a record");
        assert!(record.data.contains_key(kvixi_core::flow::AUTH_RECORD_KEY));
    }

    #[rocket::async_test]
    async fn tampered_cookie_is_anonymous() {
        let (_emulator, client) = client().await;
        for value in ["forged", "AAAAAAAAAAAAAAAAAAAAAA", ""] {
            let response = client
                .get("/maybe")
                .cookie(Cookie::new(SESSION_COOKIE, value))
                .dispatch()
                .await;
            assert_eq!(response.status(), Status::Ok);
            assert_eq!(response.into_string().await.as_deref(), Some("anonymous"));
        }
    }

    /// A store that refuses every call, as a Redis client without a connection does.
    #[derive(Clone, Debug)]
    struct Down;

    #[rocket::async_trait]
    impl SessionStore for Down {
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

    #[rocket::async_test]
    async fn a_store_that_is_down_answers_503_never_a_login() {
        let (_emulator, client) = client_with(Down).await;
        let key = attached(&client).kvixi.config().cookie_key();
        let session = Cookie::new(
            SESSION_COOKIE,
            key.seal(SESSION_COOKIE, &Id::default().to_string()),
        );

        let api = client.get("/me").header(Accept::JSON);
        let api = api.cookie(session.clone()).dispatch().await;
        assert_eq!(api.status(), Status::ServiceUnavailable);
        assert!(api.headers().get("Set-Cookie").next().is_none());
        let body: serde_json::Value =
            serde_json::from_str(&api.into_string().await.unwrap_or_default()).expect("JSON");
        assert_eq!(body["error"], "session_store_unavailable");

        let page = client.get("/me").header(Accept::HTML);
        let page = page.cookie(session.clone()).dispatch().await;
        assert_eq!(
            page.status(),
            Status::ServiceUnavailable,
            "not a login redirect"
        );
        assert_eq!(page.content_type(), Some(ContentType::HTML));

        let logout = client
            .post("/auth/kvixi/logout")
            .cookie(session)
            .dispatch()
            .await;
        assert_eq!(
            logout.status(),
            Status::ServiceUnavailable,
            "no false success"
        );
        assert!(
            logout.headers().get("Set-Cookie").next().is_none(),
            "the cookie is not cleared"
        );
    }

    #[rocket::async_test]
    async fn logout_deletes_the_record_and_clears_the_cookie() {
        let store = MemoryStore::default();
        let (emulator, client) = client_with(store.clone()).await;
        log_in(&client, &emulator, "alice")
            .await
            .expect("logged in");
        let session = client
            .cookies()
            .get(SESSION_COOKIE)
            .expect("cookie")
            .clone();
        let id = session_id(&client);

        let logout = client.post("/auth/kvixi/logout").dispatch().await;
        assert_eq!(logout.status(), Status::SeeOther);
        assert!(set_cookie(&logout).contains("Max-Age=0"));
        assert!(client.cookies().get(SESSION_COOKIE).is_none());
        assert!(store.load(&id).await.expect("load").is_none());

        // The jar no longer holds a session cookie, so this one is what the app sees.
        let old = client.get("/maybe").cookie(session).dispatch().await;
        assert_eq!(old.into_string().await.as_deref(), Some("anonymous"));
    }
}
