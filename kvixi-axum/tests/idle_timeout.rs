//! The configured idle timeout is what the session layer expires sessions after, on the
//! server (the cookie ends with the browser unless the login was remembered). A login in
//! use is renewed by its reads.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use kvixi_axum::{
    Config, Kvixi, KvixiRouterExt, KvixiUser, MemoryStore, SESSION_COOKIE, session_layer,
};
use tower::ServiceExt;
use tower_sessions::session::Id;
use tower_sessions::{Session, SessionStore};

/// Answers whether the session had been seen before, and counts the visit (a write: for
/// the app's own session data, tower-sessions pushes the expiry back only when it saves a
/// changed session).
async fn touch(session: Session) -> &'static str {
    let visits = session
        .get::<u32>("visits")
        .await
        .expect("read")
        .unwrap_or(0);
    session.insert("visits", visits + 1).await.expect("stored");
    if visits > 0 { "seen" } else { "new" }
}

/// A router whose sessions expire after `idle` (the default when `None`).
fn app(idle: Option<Duration>) -> Router {
    let mut config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback");
    if let Some(idle) = idle {
        config = config.idle_timeout(idle);
    }
    let config = config.build().expect("valid config");
    Router::new()
        .route("/", get(touch))
        .layer(session_layer(&config, MemoryStore::from_config(&config)))
}

/// `GET /` with `cookie` (`name=value`): what the handler answered, and the session's
/// `Set-Cookie`.
async fn visit(app: &Router, cookie: Option<&str>) -> (String, Option<String>) {
    let (_, set_cookie, body) = get_json(app, "/", cookie, SESSION_COOKIE).await;
    (body, set_cookie)
}

#[tokio::test]
async fn sessions_expire_after_the_configured_idle_timeout() {
    // The cookie ends with the browser (only a login with "remember me" gets a
    // `Max-Age`): the server keeps the idle timeout.
    for idle in [None, Some(Duration::from_secs(90))] {
        let (_, cookie) = visit(&app(idle), None).await;
        let cookie = cookie.expect("a session cookie");
        assert!(
            !cookie.contains("Max-Age") && !cookie.contains("Expires"),
            "a browser-session cookie: {cookie}"
        );
    }

    // On the server, with a 1 s timeout: each visit within it keeps the session alive
    // (the third comes more than 1 s after the first), a pause longer than it ends it.
    let app = app(Some(Duration::from_secs(1)));
    let (answer, set_cookie) = visit(&app, None).await;
    assert_eq!(answer, "new");
    let set_cookie = set_cookie.expect("a session cookie");
    let cookie = set_cookie.split(';').next().expect("name=value");
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (answer, _) = visit(&app, Some(cookie)).await;
        assert_eq!(answer, "seen", "used within the idle timeout: alive");
    }
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (answer, _) = visit(&app, Some(cookie)).await;
    assert_eq!(answer, "new", "idle for longer than the timeout: ended");
}

/// The logged-in user's id: a read, nothing written.
async fn me(user: KvixiUser) -> String {
    user.id.clone()
}

/// Whoever is there: a read, nothing written.
async fn maybe(user: Option<KvixiUser>) -> String {
    user.map_or_else(|| "anonymous".to_owned(), |user| user.id.clone())
}

/// A router with Kvixi mounted, its sessions in the returned store expiring after
/// `idle`, logging in against `emulator`.
fn kvixi_app(emulator: &kvixi_mock::Emulator, idle: Duration) -> (Router, Kvixi, MemoryStore) {
    let config = Config::builder("app", "secret", CALLBACK)
        .base_url(emulator.base_url())
        .idle_timeout(idle)
        .build()
        .expect("valid config");
    let store = MemoryStore::from_config(&config);
    let kvixi = Kvixi::new(config).expect("flow builds");
    let app = Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .with_kvixi_store(kvixi.clone(), store.clone());
    (app, kvixi, store)
}

const CALLBACK: &str = "http://localhost/auth/kvixi/callback";

async fn emulator() -> kvixi_mock::Emulator {
    kvixi_mock::Emulator::builder()
        .app(kvixi_mock::App::new("app", "secret", CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("emulator starts")
}

/// `GET uri` as a JSON client with `cookie`: the status, the `Set-Cookie` of the cookie
/// named `name`, and the body.
async fn get_json(
    app: &Router,
    uri: &str,
    cookie: Option<&str>,
    name: &str,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(uri).header(header::ACCEPT, "application/json");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("answered");
    let set_cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_owned);
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .expect("body");
    (
        status,
        set_cookie,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Logs alice in through the real flow; the session cookie's `Set-Cookie`.
async fn log_in(app: &Router, kvixi: &Kvixi, emulator: &kvixi_mock::Emulator) -> String {
    let (_, login, _) = get_json(app, kvixi.config().login_path(), None, "kvixi_login").await;
    let login = login.expect("a login cookie");
    let login = login.split(';').next().expect("name=value");
    let auth_key = emulator.issue_auth_key("app", "alice").expect("auth key");
    let callback = format!("{}?auth_key={auth_key}", kvixi.config().callback_path());
    let (status, session, _) = get_json(app, &callback, Some(login), SESSION_COOKIE).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "logged in");
    session.expect("a session cookie")
}

#[tokio::test]
async fn a_logged_in_user_who_only_reads_stays_logged_in_until_idle() {
    let emulator = emulator().await;
    let idle = Duration::from_secs(2);
    let (app, kvixi, _) = kvixi_app(&emulator, idle);
    let set_cookie = log_in(&app, &kvixi, &emulator).await;
    let cookie = set_cookie.split(';').next().expect("name=value");

    // Reads only, every half second for twice the idle timeout: still logged in, and
    // each read renews the session (a 2 s timeout renews at every read), cookie too.
    let mut cookies_sent = Vec::new();
    for visit in 1..=8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, renewed, _) = get_json(&app, "/me", Some(cookie), SESSION_COOKIE).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "read {visit}, {} ms after the login: a user in use stays logged in",
            visit * 500
        );
        cookies_sent.push(renewed);
    }
    for renewed in cookies_sent {
        // Saved again: the cookie is sent again, still a browser-session cookie.
        let renewed = renewed.expect("the renewal sends the cookie again");
        assert!(!renewed.contains("Max-Age"), "{renewed}");
    }

    // A pause longer than the idle timeout: the session is over on the server.
    tokio::time::sleep(idle + Duration::from_millis(1000)).await;
    let (status, _, _) = get_json(&app, "/me", Some(cookie), SESSION_COOKIE).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "idle too long: logged out"
    );
}

#[tokio::test]
async fn reads_renew_a_day_long_session_rarely_and_never_create_one() {
    let emulator = emulator().await;
    let (app, kvixi, store) = kvixi_app(&emulator, Duration::from_secs(24 * 3600));

    // An anonymous visitor reading whoever is there gets no session.
    let (status, set_cookie, _) = get_json(&app, "/maybe", None, SESSION_COOKIE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(set_cookie, None, "no session for an anonymous visitor");

    // Right after the login (which renewed it), reads write nothing: no store write,
    // no cookie, until 1/24 of the idle timeout has passed.
    let set_cookie = log_in(&app, &kvixi, &emulator).await;
    let cookie = set_cookie.split(';').next().expect("name=value");
    let mut user_id = String::new();
    for uri in ["/me", "/maybe", "/me"] {
        let (status, set_cookie, body) = get_json(&app, uri, Some(cookie), SESSION_COOKIE).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(set_cookie, None, "{uri}: not saved at every request");
        user_id = body;
    }

    let id = cookie
        .trim_start_matches(&format!("{SESSION_COOKIE}="))
        .parse::<Id>()
        .expect("a session id");
    let record = store.load(&id).await.expect("store").expect("a session");
    // The renewal stamp rides in the auth record, which every read loads anyway.
    let auth = record.data.get(kvixi_core::flow::AUTH_RECORD_KEY);
    let auth = auth.and_then(|auth| auth.as_str()).unwrap_or_default();
    assert!(
        auth.starts_with(r#"{"kvixi.renewed":"#),
        "{:?}",
        record.data
    );
    assert_eq!(record.data.len(), 1, "no second key: {:?}", record.data);

    // Logged out everywhere: the login's record goes, and its renewal stamp with it.
    kvixi.revoke_user(&user_id).await.expect("revoked");
    let (status, _, _) = get_json(&app, "/me", Some(cookie), SESSION_COOKIE).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let record = store.load(&id).await.expect("store");
    let keys = record.map(|record| record.data.into_keys().collect::<Vec<_>>());
    assert!(
        keys.iter().flatten().all(|key| !key.starts_with("kvixi.")),
        "nothing of the login left: {keys:?}"
    );
}
