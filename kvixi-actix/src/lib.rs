//! "Log in with Kvixi" for actix-web 4, in one line.
//!
//! [`App::with_kvixi`](KvixiAppExt::with_kvixi) wraps the app in actix-session with the
//! cookie and the store the flow needs and mounts the login, callback and logout routes
//! with the flow in the app data. Handlers then take [`KvixiUser`], `Option<KvixiUser>`
//! or [`KvixiToken`]. Every decision of the flow is made by [`kvixi_core`]; this crate
//! only translates.
//!
//! To protect a whole scope at once, wrap it in [`RequireLogin`]: its handlers need no
//! extractor, the user is in the request extensions (`web::ReqData<KvixiUser>`).
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use kvixi_actix::{Kvixi, KvixiAppExt, KvixiUser};
//!
//! async fn me(user: KvixiUser) -> web::Json<kvixi_core::KvixiUser> {
//!     web::Json(user.0)
//! }
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // KVIXI_APP_ID, KVIXI_APP_SECRET, KVIXI_REDIRECT_URL and KVIXI_COOKIE_KEY
//! // (and KVIXI_REDIS_URL for several instances).
//! let kvixi = Kvixi::new(kvixi_core::Config::from_env()?)?;
//! HttpServer::new(move || {
//!     App::new()
//!         .with_kvixi(kvixi.clone())
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
//! access token stays on the server. Without a Redis URL in the
//! [`Config`], they are kept in one [`MemoryStore`] of the process (bounded, expiring),
//! shared by every worker. The cookie is sealed with a key derived from the app's cookie
//! key (`KVIXI_COOKIE_KEY`); a cookie sealed with one of its previous keys
//! (`KVIXI_PREVIOUS_COOKIE_KEYS`) still opens its session and is sealed again.
//!
//! # Several instances: Redis
//!
//! Behind a load balancer, give every instance the same `KVIXI_COOKIE_KEY` and the same
//! `KVIXI_REDIS_URL` (`Config::builder(..).redis_url(..)`): nothing else changes. The
//! sessions go to that Redis ([`RedisStore`], one `GET` per logged-in request), through
//! the flow's one connection pool ([`Kvixi::redis`]), which also keeps the revocation
//! stamps, so that a revocation on one instance reaches the others.
//!
//! actix-session's store errors are `anyhow` errors, and with `RUST_BACKTRACE=1` each one
//! captures a backtrace when it is made: every request that fails while Redis is away
//! would walk its stack. Deploy with `RUST_LIB_BACKTRACE=0` beside `RUST_BACKTRACE=1`:
//! panics keep their backtraces, store errors capture none.
//!
//! # A store of your own
//!
//! [`App::with_kvixi_store`](KvixiAppExt::with_kvixi_store) takes any actix-session
//! [`SessionStore`]. A store other than [`MemoryStore`] may be shared by several
//! instances: unless the revocations are shared too (`KVIXI_REDIS_URL`, or
//! `Kvixi::builder(..).revocations(..)`), the app fails to start with an error naming
//! the fix.
//!
//! ```no_run
//! # async fn run(kvixi: kvixi_actix::Kvixi) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_web::{App, HttpServer};
//! use kvixi_actix::KvixiAppExt;
//!
//! // Built once, outside `HttpServer::new`, and cloned into each worker.
//! let store = kvixi_actix::MemoryStore::new(1_000);
//! HttpServer::new(move || App::new().with_kvixi_store(kvixi.clone(), store.clone()))
//!     .bind("0.0.0.0:3000")?
//!     .run()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`session_middleware`] and [`configure`] are the same pieces without that check.
#![forbid(unsafe_code)]

mod app;
mod app_user;
mod error;
mod extract;
mod middleware;
#[cfg(feature = "redis")]
mod redis;
mod require;
mod resilient;
mod response;
mod rotation;
mod routes;
mod session;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use actix_session::storage::SessionStore;
pub use app::KvixiAppExt;
pub use app_user::AppUser;
pub use error::Error;
pub use extract::{KvixiToken, KvixiUser};
pub use kvixi_core::AppData;
pub use kvixi_core::{Config, Kvixi, SESSION_COOKIE};
pub use middleware::{
    KvixiSessionMiddleware, KvixiSessionService, session_key, session_middleware,
};
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use require::{RequireLogin, RequireLoginService};
pub use routes::configure;
pub use store::MemoryStore;
