//! "Log in with Kvixi" for actix-web 4, in one line.
//!
//! [`App::with_kvixi`](KvixiAppExt::with_kvixi) mounts the login, callback and logout
//! routes, puts the flow in the app data and wraps the app in the session middleware,
//! with the store and the cookie key the flow's [`Config`] names. Handlers then take
//! [`KvixiUser`], `Option<KvixiUser>`, [`KvixiToken`] or [`KvixiDevices`] (the user's
//! sessions, for an account page). Every decision of the flow is
//! made by [`kvixi_core`], sessions included; this crate only translates.
//!
//! To protect a whole scope at once, wrap it in [`RequireLogin`]: its handlers need no
//! extractor, the user is in the request extensions (`web::ReqData<KvixiUser>`).
//! Before a sensitive page, [`require_recent_login`] asks for a login at most that old.
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
//! Sessions are server-side, kept by kvixi-core's cookie-session engine
//! ([`kvixi_core::CookieSessions`], the same as Rocket's): the cookie [`SESSION_COOKIE`]
//! holds only a session id, sealed with the app's cookie key (`KVIXI_COOKIE_KEY`,
//! [`Config`]'s `cookie_key`, the same key that seals the login cookie); the data, the
//! access token included, stays in a tower-sessions [`SessionStore`]. Without a Redis URL
//! in the [`Config`], that is one [`MemoryStore`] of the process (bounded, expiring),
//! shared by every worker. A session ends after [`Config::idle_timeout`] without a request
//! (24 h by default); reading a page pushes its expiry back, with a store write at most
//! once per 1/24 of the idle timeout. The cookie is `HttpOnly`, `SameSite=Lax` (Strict
//! would lose the session on the way back from Kvixi), `Secure` when the redirect URL is
//! https, `Path=/`. A cookie that does not open, or names no stored session, is anonymous.
//!
//! A cookie sealed with one of the previous keys (`KVIXI_PREVIOUS_COOKIE_KEYS`) still
//! opens its session, and the answer seals it again with the current key: nobody is
//! logged out by a key rotation. The cookie is read from the request's `Cookie` headers
//! as they came, whatever other middlewares do with them.
//!
//! While the store is down or too slow ([`Config::session_store_timeout`], 2 s by
//! default), requests that need the session are answered 503 by the core (JSON for API
//! clients, a page for browsers; `Option<KvixiUser>` included, so nobody is shown logged
//! out), logout does not claim success, no session cookie is sent, and pages that do not
//! read the session are served as usual.
//!
//! # Your own session data: actix-session beside ours
//!
//! Kvixi's session holds Kvixi's data only (and what `on_login` returns, see
//! [`AppUser`]). An app that keeps its own data in actix-session keeps doing so, beside
//! ours, on its own cookie (actix-session's default name, `id`): two lines.
//!
//! ```
//! use actix_session::{Session, SessionMiddleware, storage::CookieSessionStore};
//! use actix_web::{App, cookie::Key, test, web};
//! use kvixi_actix::{Kvixi, KvixiAppExt, KvixiUser};
//!
//! async fn add_to_cart(user: KvixiUser, cart: Session) -> actix_web::Result<String> {
//!     cart.insert("items", [1, 2])?;
//!     Ok(format!("{}'s cart", user.id))
//! }
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let config = kvixi_core::Config::builder("my-app", "my-secret", "http://localhost:3000/auth/kvixi/callback").build()?;
//! # let kvixi = Kvixi::new(config)?;
//! # let key = Key::generate();
//! let app = App::new()
//!     .with_kvixi(kvixi.clone())
//!     .wrap(SessionMiddleware::new(CookieSessionStore::default(), key.clone()))
//!     .route("/cart", web::post().to(add_to_cart));
//! # let app = test::init_service(app).await;
//! # Ok(())
//! # }
//! ```
//!
//! # The app's own database
//!
//! Without Redis, `KVIXI_DATABASE_URL` (`Config::builder(..).database_url(..)`:
//! `sqlite://PATH`, or `postgres://…` for several instances) makes [`with_kvixi`](KvixiAppExt::with_kvixi) keep sessions,
//! revocation stamps and spent pending logins in the app's SQLite or Postgres, through one
//! sqlx pool per process that the app's own queries may share (`Kvixi::database`): a
//! restart or a deploy logs nobody out. Feature `database`, on by default.
//!
//! # Several instances: Redis
//!
//! Behind a load balancer, give every instance the same `KVIXI_COOKIE_KEY` and the same
//! `KVIXI_REDIS_URL` (`Config::builder(..).redis_url(..)`): nothing else changes. The
//! sessions go to that Redis (tower-sessions' Redis store, one `GET` per logged-in
//! request), through the flow's one connection pool ([`Kvixi::redis`]), which also keeps
//! the revocation stamps, so that a revocation on one instance reaches the others.
//!
//! # A store of your own
//!
//! [`App::with_kvixi_store`](KvixiAppExt::with_kvixi_store) takes any tower-sessions
//! [`SessionStore`], as axum's and Rocket's adapters do: [`MemoryStore`],
//! `tower_sessions_redis_store::RedisStore` on a fred pool of your own, a database store.
//! A store other than [`MemoryStore`] may be shared by several instances: unless the
//! revocations are shared too (`KVIXI_REDIS_URL`, or `Kvixi::builder(..).revocations(..)`),
//! the app fails to start with an error naming the fix.
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
#![forbid(unsafe_code)]

mod app;
mod app_user;
mod error;
mod extract;
mod require;
mod response;
mod routes;
mod session;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::KvixiAppExt;
pub use app_user::AppUser;
pub use error::Error;
pub use extract::{KvixiDevices, KvixiToken, KvixiUser};
pub use kvixi_core::AppData;
pub use kvixi_core::{Config, Kvixi, MemoryStore, SESSION_COOKIE};
pub use require::{RequireLogin, RequireLoginService, require_recent_login};
/// The session store interface (from `tower-sessions-core`) that
/// [`with_kvixi_store`](KvixiAppExt::with_kvixi_store) takes.
pub use tower_sessions_core::SessionStore;
