//! "Log in with Kvixi" for axum 0.8, in one line.
//!
//! [`KvixiRouterExt::with_kvixi`] mounts the login, callback and logout routes, the
//! [`KvixiLayer`] and an in-memory session store ([`MemoryStore`]) with the right cookie
//! settings.
//! Handlers then take [`KvixiUser`], `Option<KvixiUser>`, [`KvixiToken`] or
//! [`KvixiDevices`] (the user's sessions, for an account page). Every decision
//! of the flow is made by [`kvixi_core`]; this crate only translates.
//!
//! To protect a whole group of routes at once, pass [`require_login()`] to
//! `Router::route_layer`: its handlers need no extractor, the user is in the request
//! extensions (see [`require_login`] for an example with a "verified only" predicate).
//! Before a sensitive page, [`require_recent_login`] asks for a login at most that old.
//!
//! ```no_run
//! use axum::{Json, Router, routing::get};
//! use kvixi_axum::{Kvixi, KvixiRouterExt, KvixiUser};
//!
//! async fn me(user: KvixiUser) -> Json<kvixi_core::KvixiUser> {
//!     Json(user.0)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // KVIXI_APP_ID, KVIXI_APP_SECRET, KVIXI_REDIRECT_URL and KVIXI_COOKIE_KEY.
//! let kvixi = Kvixi::new(kvixi_core::Config::from_env()?)?;
//! let app = Router::new().route("/me", get(me)).with_kvixi(kvixi);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The memory store
//!
//! The default [`MemoryStore`] holds at most [`Config::max_memory_sessions`] sessions
//! (100 000 unless configured), dropping the least recently used past that, and frees
//! expired sessions without a request having to touch them: a flood of anonymous or bot
//! traffic costs bounded memory. To keep a handle on it (its [`len`](MemoryStore::len)
//! for monitoring), build it yourself:
//!
//! ```
//! # use axum::{Router, routing::get};
//! use kvixi_axum::{Kvixi, KvixiRouterExt, MemoryStore};
//!
//! # fn run(config: kvixi_axum::Config) -> Result<(), kvixi_core::Error> {
//! let kvixi = Kvixi::new(config)?;
//! let store = MemoryStore::from_config(kvixi.config());
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hi" }))
//!     .with_kvixi_store(kvixi, store.clone());
//! println!("{} sessions held", store.len());
//! # Ok(())
//! # }
//! ```
//!
//! # The app's own database
//!
//! Without Redis, `KVIXI_DATABASE_URL` (`Config::builder(..).database_url(..)`:
//! `sqlite://PATH`, or `postgres://…` for several instances) makes [`with_kvixi`](KvixiRouterExt::with_kvixi) keep sessions,
//! revocation stamps and spent pending logins in the app's SQLite or Postgres, through one
//! sqlx pool per process that the app's own queries may share (`Kvixi::database`): a
//! restart or a deploy logs nobody out. Feature `database`, on by default.
//!
//! # Several instances: Redis
//!
//! The default memory store lives in one process. Behind a load balancer, give every
//! instance the same `KVIXI_COOKIE_KEY` and `KVIXI_REDIS_URL` (`redis://`, `rediss://`,
//! `redis-sentinel://…` or `redis-cluster://…`; `Config::builder(..).redis_url(..)`):
//! [`with_kvixi`](KvixiRouterExt::with_kvixi) then keeps sessions (tower-sessions' Redis
//! store), revocation stamps and spent pending logins in that Redis, through the flow's one
//! pool ([`Kvixi::redis`]). Nothing else changes:
//!
//! ```no_run
//! # use axum::{Router, routing::get};
//! # use kvixi_axum::{Kvixi, KvixiRouterExt};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = kvixi_core::Config::builder("app-id", "app-secret", "https://app.example/auth/kvixi/callback")
//!     .cookie_key(std::env::var("KVIXI_COOKIE_KEY")?)
//!     .redis_url("redis-sentinel://10.0.0.5:26379?sentinelServiceName=kvixi&node=10.0.0.6:26379")
//!     .build()?;
//! let kvixi = Kvixi::new(config)?; // inside the runtime: it starts the Redis pool
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hi" }))
//!     .with_kvixi(kvixi);
//! # Ok(())
//! # }
//! ```
//!
//! An app with a store of its own passes it to
//! [`with_kvixi_store`](KvixiRouterExt::with_kvixi_store) (`kvixi_core::redis_pool` gives a
//! fred pool with the flow's settings). Such a store may be shared by several instances,
//! so the flow's revocation stamps must be shared too (`KVIXI_REDIS_URL`, or
//! `Kvixi::builder(config).revocations(kvixi_core::RedisRevocations::new(pool))`): a
//! per-process default is refused at startup rather than a "log out everywhere" that
//! reaches one instance.
#![forbid(unsafe_code)]

mod app_user;
mod extract;
mod layer;
mod require;
mod response;
mod routes;
mod session;
#[cfg(feature = "testing")]
pub mod testing;

pub use app_user::AppUser;
use axum::Router;
pub use extract::{KvixiDevices, KvixiRejection, KvixiToken, KvixiUser};
pub use kvixi_core::AppData;
pub use kvixi_core::{Config, Kvixi, MemoryStore, SESSION_COOKIE};
pub use layer::{KvixiFuture, KvixiLayer, KvixiService, session_layer};
pub use require::{RequireLogin, RequireLoginLayer, require_login, require_recent_login};
pub use routes::routes;
pub use session::IdleExpiry;
use tower_sessions::SessionStore;

/// What can go wrong in this adapter (flow errors are [`kvixi_core::Error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An extractor ran on a route outside the layers it needs.
    #[error("{0} is missing: add `.with_kvixi(kvixi)` after the routes that use Kvixi extractors")]
    LayerMissing(&'static str),
    /// The test login did not go through (see the `testing` module).
    #[error("test login failed at {step}: {problem}")]
    TestLogin {
        /// The step of the flow that failed.
        step: &'static str,
        /// What happened.
        problem: String,
    },
}

/// One-line mounting of Kvixi login on an axum [`Router`].
pub trait KvixiRouterExt {
    /// Mounts the three routes and wraps the router (routes added so far) in the
    /// [`KvixiLayer`] and the session store the config names
    /// ([`Kvixi::session_store`]): the app's database of [`Config::database_url`]
    /// (`KVIXI_DATABASE_URL`), the shared Redis of [`Config::redis_url`]
    /// (`KVIXI_REDIS_URL`), or a [`MemoryStore`] sized by [`Config::max_memory_sessions`].
    /// Call it after your routes.
    fn with_kvixi(self, kvixi: Kvixi) -> Self;

    /// Like [`with_kvixi`](KvixiRouterExt::with_kvixi), with sessions in `store`
    /// (Redis for several instances). Each call to `store` gets at most
    /// [`Config::session_store_timeout`] ([`kvixi_core::StoreTimeout`]): a store that
    /// fails or does not answer in time makes the requests that need the session answer
    /// 503, and leaves the others alone.
    ///
    /// # Panics
    ///
    /// At startup, when `store` may be shared by several instances (anything but an
    /// in-memory store) while the flow keeps revocation stamps in this process: see
    /// [`Kvixi::check_own_store`] for the fix.
    fn with_kvixi_store<St: SessionStore + Clone>(self, kvixi: Kvixi, store: St) -> Self;
}

impl<S: Clone + Send + Sync + 'static> KvixiRouterExt for Router<S> {
    fn with_kvixi(self, kvixi: Kvixi) -> Self {
        let store = kvixi.session_store();
        self.with_kvixi_store(kvixi, store)
    }

    fn with_kvixi_store<St: SessionStore + Clone>(self, kvixi: Kvixi, store: St) -> Self {
        // A misconfigured fleet fails at startup, as axum's own router checks do.
        if let Err(error) = kvixi.check_store::<St>() {
            panic!("kvixi: {error}");
        }
        let store = kvixi_core::StoreTimeout::from_config(store, kvixi.config());
        let sessions = layer::flow_session_layer(&kvixi, store);
        self.merge(routes(kvixi.config()))
            .layer(KvixiLayer::new(kvixi))
            .layer(sessions)
    }
}
