//! Logging a fixture user in from your own tests, through the real flow.
//!
//! Enable the `testing` feature in `[dev-dependencies]`. The login runs against the
//! [`kvixi_mock`] emulator with Rocket's tracked local client: the same routes, key
//! exchange and session rotation as in production, without a browser or the network.
//!
//! ```
//! use kvixi_rocket::{Kvixi, KvixiFairing, KvixiUser};
//! use rocket::local::asynchronous::Client;
//!
//! #[rocket::get("/hello")]
//! fn hello(user: KvixiUser) -> String {
//!     format!("hi {}", user.id)
//! }
//!
//! # #[rocket::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let callback = "http://localhost:8000/auth/kvixi/callback";
//! let emulator = kvixi_mock::Emulator::builder()
//!     .app(kvixi_mock::App::new("my-app", "my-secret", callback))
//!     .start("127.0.0.1:0")
//!     .await?;
//! let config = kvixi_core::Config::builder("my-app", "my-secret", callback)
//!     .base_url(emulator.base_url())
//!     .build()?;
//! let rocket = rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
//!     .mount("/", rocket::routes![hello])
//!     .attach(KvixiFairing::new(Kvixi::new(config)?));
//! let client = Client::tracked(rocket).await?;
//!
//! kvixi_rocket::testing::log_in(&client, &emulator, "alice").await?;
//! let response = client.get("/hello").dispatch().await;
//! assert_eq!(response.into_string().await.as_deref(), Some("hi 1001"));
//! # Ok(())
//! # }
//! ```

use kvixi_core::SESSION_COOKIE;
use rocket::http::{Accept, Status};
use rocket::local::asynchronous::Client;

use crate::Error;
use crate::fairing::Attached;

/// Logs `user_name` (a user of the emulator's fixture, such as `"alice"`) in on the app
/// of `client`, which must be a tracked client (it keeps the session cookie): its next
/// requests are the user's.
pub async fn log_in(
    client: &Client,
    emulator: &kvixi_mock::Emulator,
    user_name: &str,
) -> Result<(), Error> {
    let fail = |step: &'static str, problem: String| Error::TestLogin { step, problem };
    let attached = client
        .rocket()
        .state::<Attached>()
        .ok_or(Error::NotAttached)?;
    let config = attached.kvixi.config();

    let login = client
        .get(config.login_path())
        .header(Accept::HTML)
        .dispatch()
        .await;
    expect_redirect("login", login.status())?;

    let auth_key = emulator
        .issue_auth_key(config.app_id(), user_name)
        .map_err(|e| fail("emulator", e.to_string()))?;
    let callback = format!("{}?auth_key={auth_key}", config.callback_path());
    let callback = client
        .get(callback.as_str())
        .header(Accept::HTML)
        .dispatch()
        .await;
    expect_redirect("callback", callback.status())?;
    if client.cookies().get(SESSION_COOKIE).is_none() {
        return Err(fail(
            "callback",
            "the client holds no session cookie".into(),
        ));
    }
    Ok(())
}

fn expect_redirect(step: &'static str, status: Status) -> Result<(), Error> {
    if status == Status::SeeOther {
        Ok(())
    } else {
        Err(Error::TestLogin {
            step,
            problem: format!("expected 303, got {status} (is the client tracked?)"),
        })
    }
}
