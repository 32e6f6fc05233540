//! A small app on Rocket's local client, logged in against the emulator, for unit tests.

use kvixi_core::{Config, Kvixi};
use kvixi_mock::{App, Emulator};
use rocket::local::asynchronous::Client;
use rocket::serde::json::Json;
use rocket::{Build, Rocket};

use crate::{KvixiFairing, KvixiToken, KvixiUser, SessionStore};

pub(crate) const CALLBACK: &str = "http://localhost:8000/auth/kvixi/callback";

#[rocket::get("/me")]
fn me(user: KvixiUser) -> Json<kvixi_core::KvixiUser> {
    Json(user.0)
}

#[rocket::get("/maybe")]
fn maybe(user: Option<KvixiUser>) -> String {
    user.map_or_else(|| "anonymous".to_owned(), |user| user.id.clone())
}

#[rocket::get("/token")]
fn token(_token: KvixiToken) -> &'static str {
    "token"
}

/// The test routes, without the fairing.
pub(crate) fn bare() -> Rocket<Build> {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("secret_key", vec![7u8; 64]));
    rocket::custom(figment).mount("/", rocket::routes![me, maybe, token])
}

/// The emulator and a config pointing at it.
pub(crate) async fn emulator() -> (Emulator, Config) {
    let emulator = Emulator::builder()
        .app(App::new("unit-app", "unit-secret", CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let config = Config::builder("unit-app", "unit-secret", CALLBACK)
        .base_url(emulator.base_url())
        .build()
        .expect("valid config");
    (emulator, config)
}

/// A tracked client of the test routes with the fairing attached, sessions in its
/// default store.
pub(crate) async fn client() -> (Emulator, Client) {
    let (emulator, config) = emulator().await;
    let kvixi = Kvixi::new(config).expect("flow builds");
    (emulator, tracked(KvixiFairing::new(kvixi)).await)
}

/// Like [`client`], with sessions in `store`.
pub(crate) async fn client_with(store: impl SessionStore) -> (Emulator, Client) {
    let (emulator, config) = emulator().await;
    // The test stores live in this process, as their revocations do.
    let kvixi = Kvixi::builder(config)
        .revocations(kvixi_core::MemoryRevocations::default())
        .build()
        .expect("flow builds");
    (
        emulator,
        tracked(KvixiFairing::new(kvixi).store(store)).await,
    )
}

/// A tracked client of the test routes with `fairing` attached.
async fn tracked(fairing: KvixiFairing) -> Client {
    Client::tracked(bare().attach(fairing))
        .await
        .expect("the rocket ignites")
}
