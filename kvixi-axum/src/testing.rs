//! Logging a user in from your own tests.
//!
//! Enable the `testing` feature in `[dev-dependencies]`. Two helpers:
//!
//! - [`log_in_as`]: any [`KvixiUser`](kvixi_core::KvixiUser) you build (say
//!   `KvixiUser::test("alice")`), with no emulator, no port and no network: the request
//!   goes through your router in-process, and the callback route writes the same auth
//!   record a real login writes, in your app's session store. For testing your handlers.
//! - [`log_in`]: a fixture user of the [`kvixi_mock`] emulator through the real flow (login,
//!   key exchange, profile read, session rotation). For testing the login itself.
//!
//! ```
//! use axum::{Router, body::Body, http::Request, routing::get};
//! use kvixi_axum::{Kvixi, KvixiRouterExt, KvixiUser};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = kvixi_core::Config::builder("my-app", "my-secret", "http://localhost:3000/auth/kvixi/callback")
//!     .build()?;
//! let kvixi = Kvixi::new(config)?;
//! let app = Router::new()
//!     .route("/hello", get(|user: KvixiUser| async move { format!("hi {}", user.id) }))
//!     .with_kvixi(kvixi.clone());
//!
//! let user = kvixi_core::KvixiUser::test("alice");
//! let cookie = kvixi_axum::testing::log_in_as(&app, &kvixi, user).await?;
//! let request = Request::get("/hello").header("cookie", cookie).body(Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! Through the emulator:
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

/// Logs `user` in on `app` without Kvixi and returns the `Cookie` header value of the
/// logged-in session. `app` is your router with Kvixi mounted (`with_kvixi` or
/// `with_kvixi_store`): the session lands in its own store.
pub async fn log_in_as(
    app: &Router,
    kvixi: &Kvixi,
    user: kvixi_core::KvixiUser,
) -> Result<HeaderValue, Error> {
    let fail = |problem: String| Error::TestLogin {
        step: "test login",
        problem,
    };
    let mut request = Request::get(kvixi.config().callback_path())
        .body(Body::empty())
        .map_err(|e| fail(e.to_string()))?;
    request
        .extensions_mut()
        .insert(kvixi_core::testing::TestLogin(user));
    let response = app
        .clone()
        .oneshot(request)
        .await
        .map_err(|never| match never {})?;
    expect_redirect("test login", response.status())?;
    let cookie = cookie_pair(&response, SESSION_COOKIE)
        .ok_or_else(|| fail("no session cookie (is the router's session layer there?)".into()))?;
    HeaderValue::try_from(cookie).map_err(|e| fail(e.to_string()))
}

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
