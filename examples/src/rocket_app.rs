//! The Rocket example app, built only with `kvixi-rocket`'s public API.

use kvixi_core::Kvixi;
use kvixi_rocket::{
    KvixiDevices, KvixiFairing, KvixiToken, KvixiUser, RequireLogin, require_recent_login,
};
use rocket::figment::Figment;
use rocket::http::uri::Origin;
use rocket::http::{ContentType, Status};
use rocket::response::Redirect;
use rocket::response::content::RawHtml;
use rocket::serde::json::Json;
use rocket::{Build, Rocket, State};

pub use crate::pages::own_pages;

/// The pages, with Kvixi login attached (sessions in memory), configured by `figment`
/// (address, port, `secret_key`, log level: see the `rocket` binary).
pub fn rocket(kvixi: Kvixi, figment: Figment) -> Rocket<Build> {
    with_fairing(KvixiFairing::new(kvixi), figment)
}

/// The same app with its sessions in `store` (Redis for several instances; every
/// instance then needs the same `secret_key`).
pub fn rocket_with_store(
    kvixi: Kvixi,
    figment: Figment,
    store: impl kvixi_rocket::SessionStore,
) -> Rocket<Build> {
    with_fairing(KvixiFairing::new(kvixi).store(store), figment)
}

fn with_fairing(fairing: KvixiFairing, figment: Figment) -> Rocket<Build> {
    // The recorder is installed before the flow counts anything.
    crate::setup::metrics();
    rocket::custom(figment)
        .mount(
            "/",
            rocket::routes![
                home,
                sign_in,
                private,
                me,
                me_app,
                fresh,
                account,
                verified,
                delete_page,
                delete_account,
                metrics
            ],
        )
        .attach(fairing)
        // `/account` and everything under it: one fairing for the group, a second one
        // (with a predicate) for the verified-only page.
        .attach(RequireLogin::under("/account"))
        .attach(RequireLogin::under("/account/verified").allow(|user| user.verified))
        // Deleting the account asks for a recent login.
        .attach(require_recent_login(
            "/account/delete",
            crate::pages::DELETE_NEEDS_LOGIN_WITHIN,
        ))
}

#[rocket::get("/")]
fn home(kvixi: &State<Kvixi>, user: Option<KvixiUser>) -> RawHtml<String> {
    RawHtml(crate::pages::home(kvixi.config(), user.as_deref()))
}

/// The app's own sign-in page, with the query it was sent (`return_to`) passed on to
/// the login link.
#[rocket::get("/sign-in")]
fn sign_in(kvixi: &State<Kvixi>, origin: &Origin<'_>) -> RawHtml<String> {
    RawHtml(crate::pages::sign_in(
        kvixi.config(),
        origin.query().map(|query| query.as_str()),
    ))
}

#[rocket::get("/private")]
fn private(kvixi: &State<Kvixi>, user: KvixiUser) -> RawHtml<String> {
    RawHtml(crate::pages::private(kvixi.config(), &user))
}

/// The user the group guard admitted: `KvixiUser` finds it in the request-local cache
/// (no second session read). Without the fairing, this handler would refuse anonymous
/// visitors anyway; with it, a forgotten guard opens nothing.
#[rocket::get("/account")]
async fn account(kvixi: &State<Kvixi>, user: KvixiUser, devices: KvixiDevices) -> RawHtml<String> {
    RawHtml(crate::pages::account(kvixi.config(), &user, &devices))
}

#[rocket::get("/account/verified")]
fn verified(user: KvixiUser) -> RawHtml<String> {
    RawHtml(crate::pages::verified(&user))
}

#[rocket::get("/account/delete")]
fn delete_page(user: KvixiUser) -> RawHtml<String> {
    RawHtml(crate::pages::delete_account(&user))
}

/// Ends every session of the user, on every device. (The example keeps its member row:
/// a real app deletes its own data of the user here too.)
#[rocket::post("/account/delete")]
async fn delete_account(kvixi: &State<Kvixi>, user: KvixiUser) -> Result<Redirect, Status> {
    match kvixi.revoke_user(&user.id).await {
        Ok(()) => Ok(Redirect::to("/")),
        Err(_) => Err(Status::ServiceUnavailable),
    }
}

#[rocket::get("/me")]
fn me(user: KvixiUser) -> Json<kvixi_core::KvixiUser> {
    Json(user.0)
}

/// The profile read from Kvixi now, with the user's token.
#[rocket::get("/me/fresh")]
async fn fresh(
    kvixi: &State<Kvixi>,
    token: KvixiToken,
) -> Result<Json<kvixi_core::KvixiUser>, (Status, &'static str)> {
    kvixi
        .client()
        .user_info(&token.0)
        .await
        .map(Json)
        .map_err(|e| {
            let status = Status::from_code(e.status()).unwrap_or(Status::BadGateway);
            (status, e.user_message())
        })
}

/// The library's metrics in Prometheus text format.
#[rocket::get("/metrics")]
fn metrics() -> (ContentType, String) {
    let text = ContentType::new("text", "plain").with_params(("version", "0.0.4"));
    (text, crate::setup::metrics().render())
}

/// The app's own data for the user, typed, from the same session read as the user.
#[rocket::get("/me/app")]
fn me_app(member: kvixi_rocket::AppUser<crate::member::Member>) -> Json<serde_json::Value> {
    Json(crate::member::as_json(&member.user, &member.data))
}
