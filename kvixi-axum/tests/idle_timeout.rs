//! The configured idle timeout is what the session layer expires sessions after.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::get;
use kvixi_axum::{Config, MemoryStore, SESSION_COOKIE, session_layer};
use tower::ServiceExt;
use tower_sessions::Session;

async fn touch(session: Session) -> &'static str {
    session.insert("seen", true).await.expect("stored");
    "ok"
}

/// The `Set-Cookie` of the session a first request creates, with `idle` configured.
async fn session_cookie(idle: Option<Duration>) -> String {
    let mut config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback");
    if let Some(idle) = idle {
        config = config.idle_timeout(idle);
    }
    let config = config.build().expect("valid config");
    let app = Router::new()
        .route("/", get(touch))
        .layer(session_layer(&config, MemoryStore::from_config(&config)));
    let response = app
        .oneshot(Request::get("/").body(Body::empty()).expect("request"))
        .await
        .expect("answered");
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{SESSION_COOKIE}=")))
        .expect("a session cookie")
        .to_owned()
}

#[tokio::test]
async fn sessions_expire_after_the_configured_idle_timeout() {
    let default = session_cookie(None).await;
    assert!(
        default.split("; ").any(|a| a == "Max-Age=86400"),
        "24 h by default: {default}"
    );
    let short = session_cookie(Some(Duration::from_secs(90))).await;
    assert!(short.split("; ").any(|a| a == "Max-Age=90"), "{short}");
}
