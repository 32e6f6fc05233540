//! Framework-agnostic core of kvixi-rs: "Log in with Kvixi" for Rust web apps.
//!
//! This crate holds every decision of the login flow; the `kvixi-axum`, `kvixi-actix`
//! and `kvixi-rocket` adapters only translate between their framework and [`Kvixi`].
//!
//! - [`Config`]: app credentials, URLs, route paths and timeouts, validated.
//! - [`KvixiClient`]: the key exchange and profile read, deciding failure by the body
//!   (Kvixi answers errors with HTTP 200), capped, timed out, secrets never in errors.
//! - [`KvixiUser`]: the typed profile.
//! - [`flow`]: the login flow as pure transitions (pending login against login CSRF,
//!   `return_to` sanitizing, token expiry), and [`Kvixi`], the async driver that runs them
//!   over a [`SessionStorage`].
//! - [`guard`]: what a route-group guard decides (anonymous, allowed, or 403 for a user
//!   the app's predicate refuses), for every adapter's one-line group guard.
//! - The app's own pages: [`KvixiBuilder::page_renderer`] ([`ErrorPage`] in, [`Page`]
//!   out) and [`KvixiBuilder::sign_in_page`]; statuses and headers stay the core's.
//! - Audit events: [`KvixiBuilder::on_logout`], [`KvixiBuilder::on_login_failed`] and
//!   [`KvixiBuilder::on_login_refused`] ([`LoggedOut`], [`FailedLogin`],
//!   [`RefusedLogin`]), once per outcome, their errors and panics logged and contained;
//!   and one `tracing` event at `info` per outcome with the stable fields `kvixi.event`
//!   (`login`, `login_failed`, `login_refused`, `logout`), `kvixi.user_id` and
//!   `kvixi.code`.
//!
//! # Example
//!
//! A whole login against the bundled emulator, with an in-memory session standing in
//! for a browser's:
//!
//! ```
//! use kvixi_core::{Config, Kvixi, MemorySession};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let callback = "http://localhost:3000/auth/kvixi/callback";
//! let kvixi_emulator = kvixi_mock::Emulator::builder()
//!     .app(kvixi_mock::App::new("demo-app", "demo-secret", callback))
//!     .start("127.0.0.1:0")
//!     .await?;
//!
//! let config = Config::builder("demo-app", "demo-secret", callback)
//!     .base_url(kvixi_emulator.base_url())
//!     .build()?;
//! let kvixi = Kvixi::new(config)?;
//! let session = MemorySession::default();
//!
//! // GET /auth/kvixi/login?return_to=/private: where to send the browser, and the
//! // pending login it carries in an encrypted cookie (nothing stored on the server).
//! let started = kvixi.login(Some("return_to=/private"));
//! assert!(started.location.ends_with("/api/oauth?app_id=demo-app"));
//!
//! // The person logs in on Kvixi, which redirects back with a single-use auth_key.
//! let auth_key = kvixi_emulator.issue_auth_key("demo-app", "alice")?;
//!
//! // GET /auth/kvixi/callback?auth_key=..., with the browser's login cookie.
//! let query = format!("auth_key={auth_key}");
//! let logged_in = kvixi
//!     .callback(&session, Some(&query), Some(&started.login_cookie))
//!     .await?;
//! assert_eq!(logged_in.user.name.as_deref(), Some("alice"));
//! assert_eq!(logged_in.return_to.as_str(), "/private");
//!
//! // Any later request: one session read, no network call.
//! let user = kvixi.current_user(&session).await?;
//! assert_eq!(user.map(|u| u.id), Some(logged_in.user.id));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod app_data;
mod client;
mod config;
#[cfg(feature = "tower-sessions-store")]
mod configured_store;
#[cfg(feature = "tower-sessions-store")]
mod cookie_session;
mod database;
pub mod devices;
mod driver;
mod error;
mod events;
pub mod flow;
pub mod guard;
#[cfg(feature = "tower-sessions-store")]
mod memory_store;
mod pages;
mod provider_guard;
#[cfg(feature = "tower-sessions-store")]
pub mod record_expiry;
mod redis;
#[cfg(feature = "redis")]
mod redis_revocations;
mod reply;
mod return_to;
mod revocation;
mod secret;
mod session;
#[cfg(feature = "tower-sessions-store")]
mod store_timeout;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod user;

pub use app_data::{AppData, AppUser, IntoAppData, MAX_APP_DATA_BYTES};
pub use client::KvixiClient;
pub use config::{
    Config, ConfigBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_PROVIDER_CALLS,
    DEFAULT_PROVIDER_QUEUE_WAIT, DEFAULT_REMEMBERED_IDLE_TIMEOUT, Opened,
};
#[cfg(feature = "tower-sessions-store")]
pub use configured_store::ConfiguredStore;
#[cfg(feature = "tower-sessions-store")]
pub use cookie_session::{CookieSessions, RequestSession, SessionCookie};
#[cfg(feature = "database")]
pub use database::{Database, DatabaseRevocations, DatabaseStore};
pub use database::{DatabaseKind, DatabaseUrl};
pub use driver::{
    AdmittedLogin, Clock, Kvixi, KvixiBuilder, LoggedIn, LoginHookFuture, LoginRefused,
    LoginStarted,
};
pub use error::Error;
pub use events::{FailedLogin, HookOutput, LoggedOut, RefusedLogin};
pub use flow::{AuthRecord, PendingLogin, UnixTime};
#[cfg(feature = "tower-sessions-store")]
pub use memory_store::MemoryStore;
pub use pages::{ErrorPage, Page};
pub use provider_guard::{ASSUMED_HOLD, Admission, Breaker, BreakerState, STALL_FLOOR, SlotQueue};
pub use redis::RedisUrl;
#[cfg(feature = "redis")]
pub use redis::redis_pool;
#[cfg(feature = "redis")]
pub use redis_revocations::RedisRevocations;
pub use reply::Reply;
pub use return_to::{MAX_RETURN_TO_LEN, NotSameSitePath, ReturnTo};
pub use revocation::{
    DEFAULT_MEMORY_REVOCATIONS, DEFAULT_REVOCATION_CACHE, MemoryRevocations, Revocations,
};
pub use secret::{AccessToken, AppSecret, AuthKey, CookieKey};
pub use session::{MemorySession, SessionStorage};
#[cfg(feature = "tower-sessions-store")]
pub use store_timeout::StoreTimeout;
pub use user::{KvixiUser, ProfileDate, UserInfoProblem};

/// Name of the session cookie every adapter sets: only a session id travels in it.
pub const SESSION_COOKIE: &str = "kvixi_session";

/// Re-exported so adapters implement [`SessionStorage`] with the same macro.
pub use async_trait::async_trait;
