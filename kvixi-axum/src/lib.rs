//! "Log in with Kvixi" for axum 0.8, in one line.
//!
//! [`KvixiRouterExt::with_kvixi`] mounts the login, callback and logout routes, the
//! [`KvixiLayer`] and an in-memory tower-sessions store with the right cookie settings.
//! Handlers then take [`KvixiUser`], `Option<KvixiUser>` or [`KvixiToken`]. Every decision
//! of the flow is made by [`kvixi_core`]; this crate only translates.
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
//! // KVIXI_APP_ID, KVIXI_APP_SECRET and KVIXI_REDIRECT_URL from the environment.
//! let kvixi = Kvixi::new(kvixi_core::Config::from_env()?)?;
//! let app = Router::new().route("/me", get(me)).with_kvixi(kvixi);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Several instances: Redis
//!
//! The default memory store lives in one process. Behind a load balancer, give every
//! instance the same Redis store (crate `tower-sessions-redis-store`):
//!
//! ```no_run
//! # use axum::{Router, routing::get};
//! # use kvixi_axum::{Kvixi, KvixiRouterExt};
//! use tower_sessions_redis_store::{RedisStore, fred::prelude::*};
//!
//! # async fn run(kvixi: Kvixi) -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::new(Config::from_url("redis://127.0.0.1:6379")?, None, None, None, 4)?;
//! pool.init().await?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hi" }))
//!     .with_kvixi_store(kvixi, RedisStore::new(pool));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod extract;
mod layer;
mod response;
mod routes;
mod session;
#[cfg(feature = "testing")]
pub mod testing;

use axum::Router;
pub use extract::{KvixiRejection, KvixiToken, KvixiUser};
pub use kvixi_core::{Config, Kvixi, SESSION_COOKIE};
pub use layer::{KvixiLayer, KvixiService, session_layer};
pub use routes::routes;
use tower_sessions::{MemoryStore, SessionStore};

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
    /// [`KvixiLayer`] and an in-memory session store. Call it after your routes.
    fn with_kvixi(self, kvixi: Kvixi) -> Self;

    /// Like [`with_kvixi`](KvixiRouterExt::with_kvixi), with sessions in `store`
    /// (Redis for several instances).
    fn with_kvixi_store<St: SessionStore + Clone>(self, kvixi: Kvixi, store: St) -> Self;
}

impl<S: Clone + Send + Sync + 'static> KvixiRouterExt for Router<S> {
    fn with_kvixi(self, kvixi: Kvixi) -> Self {
        self.with_kvixi_store(kvixi, MemoryStore::default())
    }

    fn with_kvixi_store<St: SessionStore + Clone>(self, kvixi: Kvixi, store: St) -> Self {
        let sessions = session_layer(kvixi.config(), store);
        self.merge(routes(kvixi.config()))
            .layer(KvixiLayer::new(kvixi))
            .layer(sessions)
    }
}
