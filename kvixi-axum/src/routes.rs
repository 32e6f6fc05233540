//! The login, callback and logout routes.

use axum::Router;
use axum::extract::Extension;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use kvixi_core::{Config, Kvixi};
use tower_sessions::Session;

use crate::response::{into_response, login_cookie, wants_json};
use crate::session::TowerSession;

/// The login, callback, logout and "your devices" routes at the configured paths. They need [`crate::KvixiLayer`] and a
/// tower-sessions `SessionManagerLayer` around them; [`crate::KvixiRouterExt::with_kvixi`]
/// adds all of it at once.
pub fn routes<S: Clone + Send + Sync + 'static>(config: &Config) -> Router<S> {
    Router::new()
        .route(config.login_path(), get(login))
        .route(config.callback_path(), get(callback))
        .route(config.logout_path(), post(logout))
        .route(config.logout_everywhere_path(), post(logout_everywhere))
        .route(config.sessions_path(), get(sessions))
        .route(config.end_session_path(), post(end_session))
}

async fn login(Extension(kvixi): Extension<Kvixi>, uri: Uri) -> Response {
    // The pending login travels in its own cookie: no session is touched here.
    into_response(kvixi.handle_login(uri.query()))
}

async fn callback(
    Extension(kvixi): Extension<Kvixi>,
    session: Session,
    uri: Uri,
    headers: HeaderMap,
    #[cfg(feature = "testing")] test_login: Option<Extension<kvixi_core::testing::TestLogin>>,
) -> Response {
    let session = TowerSession::new(&session, &kvixi);
    // Only an in-process test request carries this extension (see `testing::log_in_as`).
    #[cfg(feature = "testing")]
    if let Some(Extension(kvixi_core::testing::TestLogin(user))) = test_login {
        return into_response(kvixi.handle_test_login(&session, user).await);
    }
    let login_cookie = login_cookie(&headers);
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    let json = wants_json(&headers);
    let reply = kvixi
        .handle_callback(&session, uri.query(), login_cookie, user_agent, json)
        .await;
    into_response(reply)
}

async fn logout(
    Extension(kvixi): Extension<Kvixi>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let session = TowerSession::new(&session, &kvixi);
    into_response(kvixi.handle_logout(&session, wants_json(&headers)).await)
}

async fn logout_everywhere(
    Extension(kvixi): Extension<Kvixi>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let session = TowerSession::new(&session, &kvixi);
    into_response(
        kvixi
            .handle_logout_everywhere(&session, wants_json(&headers))
            .await,
    )
}

async fn sessions(
    Extension(kvixi): Extension<Kvixi>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let session = TowerSession::new(&session, &kvixi);
    into_response(kvixi.handle_sessions(&session, wants_json(&headers)).await)
}

async fn end_session(
    Extension(kvixi): Extension<Kvixi>,
    session: Session,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let json = wants_json(&headers);
    let Ok(form) =
        axum::body::to_bytes(body, kvixi_core::devices::MAX_END_SESSION_FORM_BYTES).await
    else {
        return into_response(kvixi_core::Reply::plain(413, "The form is too large."));
    };
    let session = TowerSession::new(&session, &kvixi);
    let form = String::from_utf8_lossy(&form);
    into_response(kvixi.handle_end_session(&session, &form, json).await)
}
