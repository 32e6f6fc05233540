//! Logging a user in from your own tests.
//!
//! Enable the `testing` feature in `[dev-dependencies]`. Two helpers:
//!
//! - [`log_in_as`]: any [`KvixiUser`](kvixi_core::KvixiUser) you build (say
//!   `KvixiUser::test("alice")`), with no emulator, no port and no network: an
//!   `actix_web::test` request carries the user to the callback route in-process, which
//!   writes the same auth record a real login writes, in your app's session store. For
//!   testing your handlers.
//! - [`log_in`]: a fixture user of the [`kvixi_mock`] emulator through the real flow (login,
//!   key exchange, profile read, session rotation). For testing the login itself.
//!
//! ```
//! use actix_web::{App, test, web};
//! use kvixi_actix::{Kvixi, KvixiAppExt, KvixiUser};
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = kvixi_core::Config::builder("my-app", "my-secret", "http://localhost:3000/auth/kvixi/callback")
//!     .build()?;
//! let kvixi = Kvixi::new(config)?;
//! let app = test::init_service(
//!     App::new()
//!         .with_kvixi(kvixi.clone())
//!         .route("/hello", web::get().to(|user: KvixiUser| async move { format!("hi {}", user.id) })),
//! )
//! .await;
//!
//! let user = kvixi_core::KvixiUser::test("alice");
//! let cookie = kvixi_actix::testing::log_in_as(&app, &kvixi, user).await?;
//! let request = test::TestRequest::get().uri("/hello").cookie(cookie).to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! Through the emulator:
//!
//! ```
//! use actix_web::{App, test, web};
//! use kvixi_actix::{Kvixi, KvixiAppExt, KvixiUser};
//!
//! # #[actix_web::main]
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
//! let app = test::init_service(
//!     App::new()
//!         .with_kvixi(kvixi.clone())
//!         .route("/hello", web::get().to(|user: KvixiUser| async move { format!("hi {}", user.id) })),
//! )
//! .await;
//!
//! let cookie = kvixi_actix::testing::log_in(&app, &kvixi, &emulator, "alice").await?;
//! let request = test::TestRequest::get().uri("/hello").cookie(cookie).to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```

use actix_http::Request;
use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::test::{TestRequest, try_call_service};
use kvixi_core::Kvixi;
use kvixi_core::flow::LOGIN_COOKIE;

use crate::{Error, SESSION_COOKIE};

/// Logs `user` in on `app` (an `actix_web::test::init_service` service with
/// [`with_kvixi`](crate::KvixiAppExt::with_kvixi) or
/// [`with_kvixi_store`](crate::KvixiAppExt::with_kvixi_store)) without Kvixi, and returns the logged-in session's cookie, for `TestRequest::cookie`.
/// The session lands in the store the app's middleware uses.
pub async fn log_in_as<S, B>(
    app: &S,
    kvixi: &Kvixi,
    user: kvixi_core::KvixiUser,
) -> Result<Cookie<'static>, Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let request = TestRequest::get()
        .uri(kvixi.config().callback_path())
        .to_request();
    actix_web::HttpMessage::extensions_mut(&request).insert(kvixi_core::testing::TestLogin(user));
    let response = try_call_service(app, request)
        .await
        .map_err(|e| failed("test login", e.to_string()))?;
    if response.status() != StatusCode::SEE_OTHER {
        return Err(failed(
            "test login",
            format!("expected 303, got {}", response.status()),
        ));
    }
    response
        .response()
        .cookies()
        .find(|cookie| cookie.name() == SESSION_COOKIE)
        .map(Cookie::into_owned)
        .ok_or_else(|| failed("test login", format!("no {SESSION_COOKIE} cookie was set")))
}

/// Logs `user_name` (a user of the emulator's fixture, such as `"alice"`) in on `app` (an
/// `actix_web::test::init_service` service) and returns the logged-in session's cookie,
/// for `TestRequest::cookie`.
pub async fn log_in<S, B>(
    app: &S,
    kvixi: &Kvixi,
    emulator: &kvixi_mock::Emulator,
    user_name: &str,
) -> Result<Cookie<'static>, Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let paths = kvixi.config();
    let started = navigate(app, "login", paths.login_path(), None, LOGIN_COOKIE).await?;

    let auth_key = emulator
        .issue_auth_key(paths.app_id(), user_name)
        .map_err(|e| failed("emulator", e.to_string()))?;
    let callback = format!("{}?auth_key={auth_key}", paths.callback_path());
    navigate(app, "callback", &callback, Some(started), SESSION_COOKIE).await
}

/// One browser navigation that must answer 303 and set the cookie `expected`; returns it.
async fn navigate<S, B>(
    app: &S,
    step: &'static str,
    uri: &str,
    cookie: Option<Cookie<'static>>,
    expected: &str,
) -> Result<Cookie<'static>, Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let mut request = TestRequest::get()
        .uri(uri)
        .insert_header((header::ACCEPT, "text/html"));
    if let Some(cookie) = cookie {
        request = request.cookie(cookie);
    }
    let response = try_call_service(app, request.to_request())
        .await
        .map_err(|e| failed(step, e.to_string()))?;
    if response.status() != StatusCode::SEE_OTHER {
        return Err(failed(
            step,
            format!("expected 303, got {}", response.status()),
        ));
    }
    response
        .response()
        .cookies()
        .find(|cookie| cookie.name() == expected)
        .map(Cookie::into_owned)
        .ok_or_else(|| failed(step, format!("no {expected} cookie was set")))
}

fn failed(step: &'static str, problem: String) -> Error {
    Error::TestLogin { step, problem }
}
