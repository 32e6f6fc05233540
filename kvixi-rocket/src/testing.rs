//! Logging a user in from your own tests.
//!
//! Enable the `testing` feature in `[dev-dependencies]`. Two helpers, both on a tracked
//! `rocket::local::asynchronous::Client` (it keeps the session cookie):
//!
//! - [`log_in_as`]: any [`KvixiUser`](kvixi_core::KvixiUser) you build (say
//!   `KvixiUser::test("alice")`), with no emulator, no port and no network: a local
//!   request carries the user to the callback route in its request-local cache (which no
//!   client can fill), and the route writes the same auth record a real login writes, in
//!   the fairing's session store. For testing your handlers.
//! - [`log_in`]: a fixture user of the [`kvixi_mock`] emulator through the real flow (login,
//!   key exchange, profile read, session rotation). For testing the login itself.
//!
//! ```
//! use kvixi_rocket::{Kvixi, KvixiFairing, KvixiUser};
//! use rocket::local::asynchronous::Client;
//!
//! #[rocket::get("/hello")]
//! fn hello(user: KvixiUser) -> String {
//!     format!("hi {}", user.id)
//! }
//!
//! # #[rocket::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = kvixi_core::Config::builder("my-app", "my-secret", "http://localhost:8000/auth/kvixi/callback")
//!     .build()?;
//! let rocket = rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
//!     .mount("/", rocket::routes![hello])
//!     .attach(KvixiFairing::new(Kvixi::new(config)?));
//! let client = Client::tracked(rocket).await?;
//!
//! kvixi_rocket::testing::log_in_as(&client, kvixi_core::KvixiUser::test("alice")).await?;
//! let response = client.get("/hello").dispatch().await;
//! assert_eq!(response.into_string().await.as_deref(), Some("hi test-alice"));
//! # Ok(())
//! # }
//! ```
//!
//! Through the emulator:
//!
//! ```
//! use kvixi_rocket::{Kvixi, KvixiFairing, KvixiUser};
//! use rocket::local::asynchronous::Client;
//!
//! #[rocket::get("/hello")]
//! fn hello(user: KvixiUser) -> String {
//!     format!("hi {}", user.id)
//! }
//!
//! # #[rocket::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let callback = "http://localhost:8000/auth/kvixi/callback";
//! let emulator = kvixi_mock::Emulator::builder()
//!     .app(kvixi_mock::App::new("my-app", "my-secret", callback))
//!     .start("127.0.0.1:0")
//!     .await?;
//! let config = kvixi_core::Config::builder("my-app", "my-secret", callback)
//!     .base_url(emulator.base_url())
//!     .build()?;
//! let rocket = rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
//!     .mount("/", rocket::routes![hello])
//!     .attach(KvixiFairing::new(Kvixi::new(config)?));
//! let client = Client::tracked(rocket).await?;
//!
//! kvixi_rocket::testing::log_in(&client, &emulator, "alice").await?;
//! let response = client.get("/hello").dispatch().await;
//! assert_eq!(response.into_string().await.as_deref(), Some("hi 1001"));
//! # Ok(())
//! # }
//! ```

use kvixi_core::SESSION_COOKIE;
use rocket::http::{Accept, Status};
use rocket::local::asynchronous::Client;

use crate::Error;
use crate::fairing::Attached;

/// What an in-process test request asks the callback route for: filled only by
/// [`log_in_as`], through the request-local cache of a local request.
struct RequestedLogin(std::sync::Mutex<Option<kvixi_core::KvixiUser>>);

/// The user a local test request asks the callback route to log in, if any (taken once).
pub(crate) fn requested_login(request: &rocket::Request<'_>) -> Option<kvixi_core::KvixiUser> {
    let slot = request.local_cache(|| RequestedLogin(std::sync::Mutex::new(None)));
    slot.0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Logs `user` in on the app of `client` without Kvixi; `client` must be a tracked client
/// (it keeps the session cookie): its next requests are the user's. The session lands in
/// the fairing's store (its default one or the one the app passed in).
pub async fn log_in_as(client: &Client, user: kvixi_core::KvixiUser) -> Result<(), Error> {
    let attached = client
        .rocket()
        .state::<Attached>()
        .ok_or(Error::NotAttached)?;
    let mut request = client.get(attached.kvixi.config().callback_path().to_owned());
    request
        .inner_mut()
        .local_cache(|| RequestedLogin(std::sync::Mutex::new(Some(user))));
    let response = request.dispatch().await;
    expect_redirect("test login", response.status())?;
    if client.cookies().get(SESSION_COOKIE).is_none() {
        return Err(Error::TestLogin {
            step: "test login",
            problem: "the client holds no session cookie".into(),
        });
    }
    Ok(())
}

/// Logs `user_name` (a user of the emulator's fixture, such as `"alice"`) in on the app
/// of `client`, which must be a tracked client (it keeps the session cookie): its next
/// requests are the user's.
pub async fn log_in(
    client: &Client,
    emulator: &kvixi_mock::Emulator,
    user_name: &str,
) -> Result<(), Error> {
    let fail = |step: &'static str, problem: String| Error::TestLogin { step, problem };
    let attached = client
        .rocket()
        .state::<Attached>()
        .ok_or(Error::NotAttached)?;
    let config = attached.kvixi.config();

    let login = client
        .get(config.login_path())
        .header(Accept::HTML)
        .dispatch()
        .await;
    expect_redirect("login", login.status())?;

    let auth_key = emulator
        .issue_auth_key(config.app_id(), user_name)
        .map_err(|e| fail("emulator", e.to_string()))?;
    let callback = format!("{}?auth_key={auth_key}", config.callback_path());
    let callback = client
        .get(callback.as_str())
        .header(Accept::HTML)
        .dispatch()
        .await;
    expect_redirect("callback", callback.status())?;
    if client.cookies().get(SESSION_COOKIE).is_none() {
        return Err(fail(
            "callback",
            "the client holds no session cookie".into(),
        ));
    }
    Ok(())
}

fn expect_redirect(step: &'static str, status: Status) -> Result<(), Error> {
    if status == Status::SeeOther {
        Ok(())
    } else {
        Err(Error::TestLogin {
            step,
            problem: format!("expected 303, got {status} (is the client tracked?)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use rocket::http::Status;
    use tower_sessions_memory_store::MemoryStore;

    use crate::test_app::{client, client_with};

    #[rocket::async_test]
    async fn log_in_as_needs_no_emulator_with_the_default_store_or_the_apps_own() {
        let (_emulator, default_store) = client().await;
        super::log_in_as(&default_store, kvixi_core::KvixiUser::test("carol"))
            .await
            .expect("logged in without Kvixi");
        let me = default_store.get("/maybe").dispatch().await;
        assert_eq!(me.into_string().await.as_deref(), Some("test-carol"));

        let store = MemoryStore::default();
        let (_emulator, own_store) = client_with(store.clone()).await;
        super::log_in_as(&own_store, kvixi_core::KvixiUser::test("dan"))
            .await
            .expect("logged in without Kvixi");
        let me = own_store.get("/maybe").dispatch().await;
        assert_eq!(me.into_string().await.as_deref(), Some("test-dan"));
    }

    #[rocket::async_test]
    async fn a_plain_callback_is_no_test_login() {
        let (_emulator, client) = client().await;
        let callback = client.get("/auth/kvixi/callback").dispatch().await;
        assert_eq!(callback.status(), Status::BadRequest);
        let me = client.get("/maybe").dispatch().await;
        assert_eq!(me.into_string().await.as_deref(), Some("anonymous"));
    }
}
