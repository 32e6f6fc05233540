//! A faithful emulator of the Kvixi developers API 1.1 ("log in with Kvixi") that runs on
//! loopback, for tests, examples and offline development.
//!
//! ```
//! use kvixi_mock::{App, Emulator, fixture};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #   let _ = rustls::crypto::ring::default_provider().install_default();
//!     let mock = Emulator::builder()
//!         .app(App::new("my-app", "my-secret", "http://127.0.0.1:3000/auth/kvixi/callback"))
//!         .start("127.0.0.1:0")
//!         .await?;
//!     let http = reqwest::Client::builder()
//!         .redirect(reqwest::redirect::Policy::none())
//!         .build()?;
//!
//!     // Step 1: alice approves the app (`mock_user` skips the login page).
//!     let approval = http
//!         .get(format!("{}&mock_user={}", mock.oauth_url("my-app"), fixture::ALICE))
//!         .send()
//!         .await?;
//!     assert_eq!(approval.status(), 303);
//!     let callback = url::Url::parse(approval.headers()["location"].to_str()?)?;
//!     let (_, auth_key) = callback
//!         .query_pairs()
//!         .find(|(name, _)| name == "auth_key")
//!         .ok_or("no auth_key")?;
//!
//!     // Step 2: the app exchanges the auth_key for an access token.
//!     let answer: serde_json::Value = http
//!         .get(format!("{}/api/authorize", mock.base_url()))
//!         .query(&[("app_id", "my-app"), ("app_secret", "my-secret"), ("auth_key", &auth_key)])
//!         .send()
//!         .await?
//!         .json()
//!         .await?;
//!     let access_token = answer["access_token"].as_str().ok_or("no access_token")?;
//!
//!     // Step 3: the app reads alice's profile.
//!     let profile: serde_json::Value = http
//!         .get(format!("{}/api/get_user_info", mock.base_url()))
//!         .query(&[("access_token", access_token)])
//!         .send()
//!         .await?
//!         .json()
//!         .await?;
//!     assert_eq!(profile["user_info"]["user_id"], fixture::ALICE_USER_ID);
//!
//!     mock.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! # What it emulates
//!
//! - `GET /api/oauth?app_id=X`: an HTML login-and-consent page (404 without `app_id`, 400 for
//!   an unknown app). Submitting it redirects (303) to the app's redirect URL with
//!   `auth_key=...`, or `error=access_denied` when the person refuses; wrong credentials show the
//!   form again with HTTP 401. `&mock_user=NAME` approves as that user at once.
//! - `GET /api/authorize?app_id&app_secret&auth_key`: `{"access_token": "..."}`. auth_keys are
//!   single-use and expire after [`AUTH_KEY_LIFETIME`]; while a user's token is valid, a new
//!   exchange answers the same token.
//! - `GET /api/get_user_info?access_token`: `{"user_info": {...}}` with the fourteen profile
//!   fields plus `profile_picture` and `profile_cover`.
//! - Errors as the platform answers them: HTTP 200 with `{"error": true, "message": "..."}`;
//!   [`EmulatorBuilder::strict`] answers 400/401 instead.
//!
//! Development endpoints: `GET /_mock/state` ([`StateSnapshot`]) and the generated pictures
//! `GET /_mock/avatar/{name}.svg` and `GET /_mock/cover/{name}.svg`.
//!
//! Tests drive time with [`Emulator::advance_clock`] and failures with
//! [`Emulator::inject_fault`]. Requests are logged with `tracing` (method, path, status,
//! latency), never with their query string or body, which carry secrets.

#![forbid(unsafe_code)]

mod api_error;
mod builder;
mod clock;
mod emulator;
mod error;
mod fault;
pub mod fixture;
mod registry;
mod server;

pub use builder::{DEFAULT_TOKEN_LIFETIME, EmulatorBuilder};
pub use emulator::Emulator;
pub use error::Error;
pub use fault::{Endpoint, Fault};
pub use fixture::{App, Fixture, User, UserInfo};
pub use registry::{AUTH_KEY_LIFETIME, StateSnapshot};
