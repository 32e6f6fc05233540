//! The axum example app, built only with `kvixi-axum`'s public API.

use axum::extract::RawQuery;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use axum::{Extension, Json, Router};
use kvixi_axum::{
    Kvixi, KvixiDevices, KvixiRouterExt, KvixiToken, KvixiUser, require_login, require_recent_login,
};
use tower_sessions::SessionStore;

pub use crate::pages::own_pages;

/// The pages, with Kvixi login mounted on an in-memory session store.
pub fn router(kvixi: Kvixi) -> Router {
    pages().with_kvixi(kvixi)
}

/// The pages, with sessions in `store` (Redis for several instances).
pub fn router_with_store<St: SessionStore + Clone>(kvixi: Kvixi, store: St) -> Router {
    pages().with_kvixi_store(kvixi, store)
}

fn pages() -> Router {
    // The recorder is installed before the flow counts anything.
    crate::setup::metrics();
    // `/account` and everything under it: one guard for the group, a second one (with a
    // predicate) for the verified-only page. The handlers take no Kvixi extractor.
    let verified_only = Router::new()
        .route("/account/verified", get(verified))
        .route_layer(require_login().allow(|user| user.verified));
    // Deleting the account asks for a recent login.
    let recent_only = Router::new()
        .route("/account/delete", get(delete_page).post(delete_account))
        .route_layer(require_recent_login(
            crate::pages::DELETE_NEEDS_LOGIN_WITHIN,
        ));
    let account = Router::new()
        .route("/account", get(account))
        .merge(verified_only)
        .merge(recent_only)
        .route_layer(require_login());
    Router::new()
        .merge(account)
        .route("/sign-in", get(sign_in))
        .route("/", get(home))
        .route("/private", get(private))
        .route("/me", get(me))
        .route("/me/app", get(me_app))
        .route("/me/fresh", get(fresh))
        .route("/metrics", get(metrics))
}

/// The library's metrics in Prometheus text format.
async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::setup::PROMETHEUS_TEXT)],
        crate::setup::metrics().render(),
    )
}

async fn home(Extension(kvixi): Extension<Kvixi>, user: Option<KvixiUser>) -> Html<String> {
    Html(crate::pages::home(kvixi.config(), user.as_deref()))
}

async fn private(Extension(kvixi): Extension<Kvixi>, user: KvixiUser) -> Html<String> {
    Html(crate::pages::private(kvixi.config(), &user))
}

/// The user comes from the group guard, in the request extensions; "your devices" from
/// the session the guard read.
async fn account(
    Extension(kvixi): Extension<Kvixi>,
    Extension(user): Extension<KvixiUser>,
    devices: KvixiDevices,
) -> Html<String> {
    Html(crate::pages::account(kvixi.config(), &user, &devices))
}

async fn verified(Extension(user): Extension<KvixiUser>) -> Html<String> {
    Html(crate::pages::verified(&user))
}

async fn delete_page(Extension(user): Extension<KvixiUser>) -> Html<String> {
    Html(crate::pages::delete_account(&user))
}

/// Ends every session of the user, on every device. (The example keeps its member row:
/// a real app deletes its own data of the user here too.)
async fn delete_account(
    Extension(kvixi): Extension<Kvixi>,
    Extension(user): Extension<KvixiUser>,
) -> Result<Redirect, axum::http::StatusCode> {
    match kvixi.revoke_user(&user.id).await {
        Ok(()) => Ok(Redirect::to("/")),
        Err(_) => Err(axum::http::StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The app's own sign-in page, with the query it was sent (`return_to`) passed on to
/// the login link.
async fn sign_in(Extension(kvixi): Extension<Kvixi>, RawQuery(query): RawQuery) -> Html<String> {
    Html(crate::pages::sign_in(kvixi.config(), query.as_deref()))
}

async fn me(user: KvixiUser) -> Json<kvixi_core::KvixiUser> {
    Json(user.0)
}

/// The profile read from Kvixi now, with the user's token.
async fn fresh(
    Extension(kvixi): Extension<Kvixi>,
    token: KvixiToken,
) -> Result<Json<kvixi_core::KvixiUser>, (axum::http::StatusCode, String)> {
    kvixi
        .client()
        .user_info(&token.0)
        .await
        .map(Json)
        .map_err(|e| {
            let status = axum::http::StatusCode::from_u16(e.status())
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
            (status, e.user_message().to_owned())
        })
}

/// The app's own data for the user, typed, from the same session read as the user.
async fn me_app(member: kvixi_axum::AppUser<crate::member::Member>) -> Json<serde_json::Value> {
    Json(crate::member::as_json(&member.user, &member.data))
}
