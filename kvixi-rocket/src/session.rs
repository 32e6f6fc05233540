//! Sessions for Rocket: kvixi-core's cookie-session engine ([`CookieSessions`]), its
//! session cookie read from Rocket's jar and written back to it.

use std::sync::Arc;

use kvixi_core::{CookieSessions, RequestSession, SESSION_COOKIE};
use rocket::Request;
use rocket::http::CookieJar;

use crate::local::Local;

/// One request's session, as the core's engine keeps it. Once the guard or route that
/// holds it is done, the session cookie the flow decided on (a new id, a cookie sealed
/// again after a key rotation, a logout's removal) goes to Rocket's jar, which writes
/// the header (and which local clients track).
pub(crate) struct Session<'r> {
    session: &'r RequestSession,
    cookies: &'r CookieJar<'r>,
}

/// The session of `request`, built at its first use: its record is read at most once
/// per request.
pub(crate) fn of<'r>(sessions: &Arc<CookieSessions>, request: &'r Request<'_>) -> Session<'r> {
    let cookies = request.cookies();
    let session = Local::of(request).session.get_or_init(|| {
        sessions.request(
            cookies
                .get(SESSION_COOKIE)
                .map(|cookie| cookie.value().to_owned()),
        )
    });
    Session { session, cookies }
}

impl std::ops::Deref for Session<'_> {
    type Target = RequestSession;
    fn deref(&self) -> &RequestSession {
        self.session
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        match self.session.take_set_cookie() {
            // A logout's removal: Rocket's `remove` sends it when the browser has the cookie.
            Some(cookie) if cookie.value().is_empty() => self.cookies.remove(cookie),
            Some(cookie) => self.cookies.add(cookie),
            None => {}
        }
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
