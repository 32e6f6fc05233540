//! The configured idle timeout is what the session layer expires sessions after: in the
//! cookie the browser keeps, and on the server.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::get;
use kvixi_axum::{Config, MemoryStore, SESSION_COOKIE, session_layer};
use tower::ServiceExt;
use tower_sessions::Session;

/// Answers whether the session had been seen before, and counts the visit (a write:
/// tower-sessions saves, and so pushes the expiry back, only a changed session).
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
    let mut request = Request::get("/");
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
        .find(|value| value.starts_with(&format!("{SESSION_COOKIE}=")))
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), 64)
        .await
        .expect("body");
    (String::from_utf8_lossy(&body).into_owned(), set_cookie)
}

#[tokio::test]
async fn sessions_expire_after_the_configured_idle_timeout() {
    let (_, default) = visit(&app(None), None).await;
    let default = default.expect("a session cookie");
    assert!(
        default.split("; ").any(|a| a == "Max-Age=86400"),
        "24 h by default: {default}"
    );
    let (_, short) = visit(&app(Some(Duration::from_secs(90))), None).await;
    let short = short.expect("a session cookie");
    assert!(short.split("; ").any(|a| a == "Max-Age=90"), "{short}");

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
