//! Logging a fixture user in from your own tests, through the real flow.
//!
//! Enable the `testing` feature in `[dev-dependencies]`. The login runs against the
//! [`kvixi_mock`] emulator: the same routes, key exchange and session rotation as in
//! production, without a browser or the network.
//!
//! ```
//! use axum::{Router, body::Body, http::Request, routing::get};
//! use kvixi_axum::{Kvixi, KvixiRouterExt, KvixiUser};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let callback = "http://localhost:3000/auth/kvixi/callback";
//! let emulator = kvixi_mock::Emulator::builder()
//!     .app(kvixi_mock::App::new("my-app", "my-secret", callback))
//!     .start("127.0.0.1:0")
//!     .await?;
//! let config = kvixi_core::Config::builder("my-app", "my-secret", callback)
//!     .base_url(emulator.base_url())
//!     .build()?;
//! let kvixi = Kvixi::new(config)?;
//! let app = Router::new()
//!     .route("/hello", get(|user: KvixiUser| async move { format!("hi {}", user.id) }))
//!     .with_kvixi(kvixi.clone());
//!
//! let cookie = kvixi_axum::testing::log_in(&app, &kvixi, &emulator, "alice").await?;
//! let request = Request::get("/hello").header("cookie", cookie).body(Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use kvixi_core::Kvixi;
use kvixi_core::flow::LOGIN_COOKIE;
use tower::ServiceExt;

use crate::{Error, SESSION_COOKIE};

/// Logs `user_name` (a user of the emulator's fixture, such as `"alice"`) in on `app` and
/// returns the `Cookie` header value of the logged-in session.
pub async fn log_in(
    app: &Router,
    kvixi: &Kvixi,
    emulator: &kvixi_mock::Emulator,
    user_name: &str,
) -> Result<HeaderValue, Error> {
    let fail = |step: &'static str, problem: String| Error::TestLogin { step, problem };
    let login = send(app, kvixi.config().login_path(), None).await?;
    expect_redirect("login", login.status())?;
    let cookie =
        cookie_pair(&login, LOGIN_COOKIE).ok_or_else(|| fail("login", "no login cookie".into()))?;

    let auth_key = emulator
        .issue_auth_key(kvixi.config().app_id(), user_name)
        .map_err(|e| fail("emulator", e.to_string()))?;
    let callback = format!("{}?auth_key={auth_key}", kvixi.config().callback_path());
    let callback = send(app, &callback, Some(&cookie)).await?;
    expect_redirect("callback", callback.status())?;
    let rotated = cookie_pair(&callback, SESSION_COOKIE)
        .ok_or_else(|| fail("callback", "no session cookie".into()))?;
    HeaderValue::try_from(rotated).map_err(|e| fail("callback", e.to_string()))
}

async fn send(
    app: &Router,
    uri: &str,
    cookie: Option<&str>,
) -> Result<axum::response::Response, Error> {
    let mut request = Request::get(uri).header(header::ACCEPT, "text/html");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let request = request.body(Body::empty()).map_err(|e| Error::TestLogin {
        step: "request",
        problem: e.to_string(),
    })?;
    app.clone()
        .oneshot(request)
        .await
        .map_err(|never| match never {})
}

fn expect_redirect(step: &'static str, status: StatusCode) -> Result<(), Error> {
    if status == StatusCode::SEE_OTHER {
        Ok(())
    } else {
        Err(Error::TestLogin {
            step,
            problem: format!("expected 303, got {status}"),
        })
    }
}

/// `name=value` of the cookie `name` a response sets.
fn cookie_pair(response: &axum::response::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}
