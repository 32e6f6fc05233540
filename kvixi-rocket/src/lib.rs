//! "Log in with Kvixi" for Rocket 0.5, in one line.
//!
//! ```no_run
//! # use kvixi_rocket::{Kvixi, KvixiFairing};
//! # fn app() -> Result<(), Box<dyn std::error::Error>> {
//! # let kvixi = Kvixi::new(kvixi_core::Config::from_env()?)?;
//! let app = rocket::build().attach(KvixiFairing::new(kvixi));
//! # Ok(())
//! # }
//! ```
//!
//! [`KvixiFairing`] mounts the login, callback and logout routes at the configured paths,
//! registers the catcher that answers refused guards, and keeps sessions in an in-memory
//! store. Handlers then take the request guards [`KvixiUser`], `Option<KvixiUser>`,
//! [`KvixiToken`] or [`KvixiDevices`] (the user's sessions, for an account page), and `&State<Kvixi>` for the flow itself. Every decision of the flow is
//! made by [`kvixi_core`]; this crate only translates.
//!
//! To protect every route under a base path at once, attach [`RequireLogin`]: a request
//! fairing (Rocket's way to act before every route; a request guard covers only the
//! handlers that name it) that refuses before routing and leaves the user for
//! [`KvixiUser`] in the request-local cache. Before a sensitive page,
//! [`require_recent_login`] asks for a login at most that old.
//!
//! ```no_run
//! use kvixi_rocket::{Kvixi, KvixiFairing, KvixiUser};
//! use rocket::serde::json::Json;
//!
//! #[rocket::get("/me")]
//! fn me(user: KvixiUser) -> Json<kvixi_core::KvixiUser> {
//!     Json(user.0)
//! }
//!
//! #[rocket::launch]
//! fn app() -> _ {
//!     // KVIXI_APP_ID, KVIXI_APP_SECRET, KVIXI_REDIRECT_URL and KVIXI_COOKIE_KEY.
//!     let config = kvixi_core::Config::from_env().expect("Kvixi is configured");
//!     let kvixi = Kvixi::new(config).expect("valid Kvixi config");
//!     rocket::build()
//!         .mount("/", rocket::routes![me])
//!         .attach(KvixiFairing::new(kvixi))
//! }
//! ```
//!
//! # Sessions
//!
//! Rocket has no server-side session, so the cookie [`SESSION_COOKIE`] holds only a session
//! id, encrypted and authenticated with the app's cookie key (`KVIXI_COOKIE_KEY`,
//! [`Config`]'s `cookie_key`, the same key that seals the login cookie): set it in
//! production, or every restart logs everybody out. The data lives in a [`tower_sessions_core::SessionStore`] and expires
//! after [`Config::idle_timeout`] without a request (24 h by default). The cookie is `HttpOnly`, `SameSite=Lax` (Rocket's
//! default, Strict, would lose the session on the redirect back from Kvixi), `Secure` when
//! the redirect URL is https, `Path=/`. A cookie that does not decrypt, or names no stored
//! session, is anonymous.
//!
//! # The app's own database
//!
//! Without Redis, `KVIXI_DATABASE_URL` (`Config::builder(..).database_url(..)`:
//! `sqlite://PATH`, or `postgres://…` for several instances) makes [`KvixiFairing::new`] keep sessions,
//! revocation stamps and spent pending logins in the app's SQLite or Postgres, through one
//! sqlx pool per process that the app's own queries may share (`Kvixi::database`): a
//! restart or a deploy logs nobody out. Feature `database`, on by default.
//!
//! # Several instances: Redis
//!
//! The default memory store lives in one process. Behind a load balancer, give every
//! instance the same `KVIXI_COOKIE_KEY` and `KVIXI_REDIS_URL` (`redis://`, `rediss://`,
//! `redis-sentinel://…` or `redis-cluster://…`; `Config::builder(..).redis_url(..)`):
//! [`KvixiFairing::new`] then keeps sessions (tower-sessions' Redis store), revocation
//! stamps and spent pending logins in that Redis, through the flow's one pool
//! ([`Kvixi::redis`]). Nothing else changes:
//!
//! ```no_run
//! # use kvixi_rocket::{Kvixi, KvixiFairing};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = kvixi_core::Config::builder("app-id", "app-secret", "https://app.example/auth/kvixi/callback")
//!     .cookie_key(std::env::var("KVIXI_COOKIE_KEY")?)
//!     .redis_url("redis://10.0.0.5:6379")
//!     .build()?;
//! let kvixi = Kvixi::new(config)?; // inside the runtime: it starts the Redis pool
//! let app = rocket::build().attach(KvixiFairing::new(kvixi));
//! # Ok(())
//! # }
//! ```
//!
//! An app with a store of its own passes it to [`KvixiFairing::store`]; the flow's
//! revocation stamps must then be shared too, or the rocket refuses to ignite.
//!
//! # Anonymous requests and your own catchers
//!
//! A guard cannot answer a redirect by itself. When [`KvixiUser`] or [`KvixiToken`] finds
//! nobody logged in, it leaves the reply the core decided in the request's local cache (a
//! 303 to the login route that comes back to this page for a browser, a 401 JSON error for
//! a client that prefers JSON) and fails with status 401; the 401 catcher the fairing
//! registers at `/` answers that reply. So:
//!
//! - do not register a 401 catcher at `/` yourself: Rocket refuses to launch with two;
//! - a 401 catcher of yours under a longer base (say `/api`) wins for those paths; start
//!   it with [`KvixiResponse::refusal`] to keep the login redirect, as below;
//! - a 401 raised by your own guards reaches the same catcher and, with no Kvixi reply
//!   cached, gets a plain 401.
//!
//! ```
//! use kvixi_rocket::KvixiResponse;
//! use rocket::Request;
//!
//! #[rocket::catch(401)]
//! fn api_unauthorized(request: &Request<'_>) -> Result<KvixiResponse, &'static str> {
//!     KvixiResponse::refusal(request).ok_or("please authenticate")
//! }
//! # let _ = rocket::build().register("/api", rocket::catchers![api_unauthorized]);
//! ```
//!
//! # Logs: keep Rocket's request log off
//!
//! Rocket 0.5 logs every request line with its query string, and the callback's
//! `auth_key` is a credential. Set Rocket's `log_level` to `critical` or `off`
//! (`ROCKET_LOG_LEVEL`) and rely on this crate's `tracing` logs, which never print it. If a
//! `log`-to-`tracing` bridge is installed first (tracing-subscriber's `tracing-log` feature,
//! on by default), Rocket's own logger is not, its `log_level` filters nothing and its
//! records reach your subscriber under the target `rocket`: turn that target off there
//! (`EnvFilter` directive `rocket=off`), as the `rocket` example of `kvixi-examples` does.
#![forbid(unsafe_code)]

mod app_user;
mod fairing;
mod guard;
mod local;
mod require;
mod response;
mod routes;
mod session;
#[cfg(test)]
mod test_app;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use app_user::AppUser;
pub use fairing::KvixiFairing;
pub use guard::{KvixiDevices, KvixiToken, KvixiUser};
pub use kvixi_core::AppData;
pub use kvixi_core::{Config, Kvixi, SESSION_COOKIE};
pub use require::{RequireLogin, require_recent_login};
pub use response::KvixiResponse;
/// The session store interface (from `tower-sessions-core`) that [`KvixiFairing::store`] takes.
pub use tower_sessions_core::SessionStore;

/// What can go wrong in this adapter (flow errors are [`kvixi_core::Error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A guard or route ran in a rocket without the fairing.
    #[error("the Kvixi fairing is not attached: add `.attach(KvixiFairing::new(kvixi))`")]
    NotAttached,
    /// A guard needed a logged-in user (with a valid token, for [`KvixiToken`]).
    #[error("nobody is logged in with Kvixi, or the Kvixi access token has expired")]
    NotLoggedIn,
    /// The flow failed (the session store, typically).
    #[error(transparent)]
    Flow(#[from] kvixi_core::Error),
    /// A configured path cannot be a Rocket route.
    #[error("{setting} {path:?} cannot be a Rocket route: use a plain path like /auth/kvixi/login")]
    RoutePath {
        /// The configuration setting.
        setting: &'static str,
        /// Its value.
        path: String,
    },
    /// The test login did not go through (see the `testing` module).
    #[error("test login failed at {step}: {problem}")]
    TestLogin {
        /// The step of the flow that failed.
        step: &'static str,
        /// What happened.
        problem: String,
    },
}
