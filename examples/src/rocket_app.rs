//! The Rocket example app, built only with `kvixi-rocket`'s public API.

use kvixi_core::Kvixi;
use kvixi_rocket::{KvixiFairing, KvixiToken, KvixiUser};
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::response::content::RawHtml;
use rocket::serde::json::Json;
use rocket::{Build, Rocket, State};

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
    rocket::custom(figment)
        .mount("/", rocket::routes![home, private, me, fresh])
        .attach(fairing)
}

#[rocket::get("/")]
fn home(kvixi: &State<Kvixi>, user: Option<KvixiUser>) -> RawHtml<String> {
    RawHtml(crate::pages::home(kvixi.config(), user.as_deref()))
}

#[rocket::get("/private")]
fn private(kvixi: &State<Kvixi>, user: KvixiUser) -> RawHtml<String> {
    RawHtml(crate::pages::private(kvixi.config(), &user))
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
