//! "Log in with Kvixi" for actix-web 4, in one line.
//!
//! [`session_middleware`] wraps the app in actix-session with the cookie the flow needs
//! and [`configure`] mounts the login, callback and logout routes with the flow in the
//! app data. Handlers then take [`KvixiUser`], `Option<KvixiUser>` or [`KvixiToken`].
//! Every decision of the flow is made by [`kvixi_core`]; this crate only translates.
//!
//! To protect a whole scope at once, wrap it in [`RequireLogin`]: its handlers need no
//! extractor, the user is in the request extensions (`web::ReqData<KvixiUser>`).
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use kvixi_actix::{Kvixi, KvixiUser, MemoryStore};
//!
//! async fn me(user: KvixiUser) -> web::Json<kvixi_core::KvixiUser> {
//!     web::Json(user.0)
//! }
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // KVIXI_APP_ID, KVIXI_APP_SECRET, KVIXI_REDIRECT_URL and KVIXI_COOKIE_KEY.
//! let kvixi = Kvixi::new(kvixi_core::Config::from_env()?)?;
//! let (store, key) = (MemoryStore::default(), kvixi_actix::session_key(kvixi.config()));
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(kvixi_actix::session_middleware(kvixi.config(), store.clone(), key.clone()))
//!         .configure(kvixi_actix::configure(kvixi.clone()))
//!         .route("/me", web::get().to(me))
//! })
//! .bind("127.0.0.1:3000")?
//! .run()
//! .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Sessions
//!
//! Sessions are server-side: the cookie carries only an encrypted session key, the
//! access token stays on the server. [`MemoryStore`] keeps them in one process. The
//! cookie [`Key`](actix_web::cookie::Key) that encrypts the session key is best derived
//! from the app's cookie key with [`session_key`], once, outside `HttpServer::new`.
//!
//! # Several instances: Redis
//!
//! Behind a load balancer, give every instance the same `KVIXI_COOKIE_KEY` and the same
//! Redis, with this crate's `redis` feature:
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn run(kvixi: kvixi_actix::Kvixi) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_web::{App, HttpServer};
//!
//! let key = kvixi_actix::session_key(kvixi.config());
//! let store = kvixi_actix::redis_store("redis://127.0.0.1:6379").await?;
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(kvixi_actix::session_middleware(kvixi.config(), store.clone(), key.clone()))
//!         .configure(kvixi_actix::configure(kvixi.clone()))
//! })
//! .bind("0.0.0.0:3000")?
//! .run()
//! .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Revocations (`Kvixi::revoke_user`, the log-out-everywhere route) live in the flow, per
//! process by default: give every instance's flow the same shared store too, with
//! `Kvixi::builder(config).revocations(kvixi_core::RedisRevocations::new(pool))` (feature
//! `redis` of kvixi-core), or a revocation made on one instance is unknown to the others.
#![forbid(unsafe_code)]

mod app_user;
mod error;
mod extract;
mod middleware;
#[cfg(feature = "redis")]
mod redis;
mod require;
mod resilient;
mod response;
mod routes;
mod session;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "redis")]
pub use actix_session::storage::RedisSessionStore;
pub use actix_session::storage::SessionStore;
pub use app_user::AppUser;
pub use error::Error;
pub use extract::{KvixiToken, KvixiUser};
pub use kvixi_core::AppData;
pub use kvixi_core::{Config, Kvixi, SESSION_COOKIE};
pub use middleware::{
    KvixiSessionMiddleware, KvixiSessionService, session_key, session_middleware,
};
#[cfg(feature = "redis")]
pub use redis::redis_store;
pub use require::{RequireLogin, RequireLoginService};
pub use routes::configure;
pub use store::MemoryStore;
