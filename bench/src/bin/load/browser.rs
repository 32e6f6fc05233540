//! A simulated browser: its own cookie jar and connections, redirects followed by hand,
//! and nothing sent anywhere but 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{Client, StatusCode, redirect};
use reqwest_cookie_store::CookieStoreMutex;
use url::Url;

/// What a browser navigation sends as `Accept`.
const ACCEPT_HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// No request may take longer than this; the load stops by itself.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a login or a `/me` did not go through.
#[derive(Debug)]
pub struct Failure {
    /// The step that failed.
    pub step: &'static str,
    /// What happened.
    pub problem: String,
}

fn failure(step: &'static str, problem: impl ToString) -> Failure {
    Failure {
        step,
        problem: problem.to_string(),
    }
}

/// One browser of the load, logging in to the app at `app` as `user_name`.
pub struct Browser {
    client: Client,
    jar: Arc<CookieStoreMutex>,
    app: Url,
    user_name: &'static str,
    expected_id: &'static str,
}

/// Refuses any URL that is not plain http on 127.0.0.1.
fn loopback(url: Url, step: &'static str) -> Result<Url, Failure> {
    let local = url.scheme() == "http"
        && url.host_str().is_some_and(|host| {
            host.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
        });
    if local {
        Ok(url)
    } else {
        Err(failure(
            step,
            format!(
                "refusing to leave loopback for {}",
                url.origin().ascii_serialization()
            ),
        ))
    }
}

impl Browser {
    /// A browser with an empty cookie jar.
    pub fn new(
        app: &Url,
        user_name: &'static str,
        expected_id: &'static str,
    ) -> Result<Browser, Failure> {
        let app = loopback(app.clone(), "setup")?;
        let jar = Arc::new(CookieStoreMutex::default());
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .cookie_provider(jar.clone())
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| failure("setup", e))?;
        Ok(Browser {
            client,
            jar,
            app,
            user_name,
            expected_id,
        })
    }

    /// Forgets every cookie, as a new browser profile would (the connections stay open).
    pub fn forget_cookies(&self) {
        self.jar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// GET `url`, expecting `status`; the `Location` it answers, resolved against `url`.
    async fn navigate(&self, step: &'static str, url: Url) -> Result<Url, Failure> {
        let url = loopback(url, step)?;
        let response = self
            .client
            .get(url.clone())
            .header(ACCEPT, ACCEPT_HTML)
            .send()
            .await
            .map_err(|e| failure(step, e))?;
        if response.status() != StatusCode::SEE_OTHER {
            return Err(failure(
                step,
                format!("expected 303, got {}", response.status()),
            ));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| failure(step, "a 303 without Location"))?;
        url.join(location).map_err(|e| failure(step, e))
    }

    /// The whole login: the app's login route, Kvixi's page (the emulator approves at once
    /// for `mock_user`), the app's callback, and the page it sends back to (`/me`).
    /// Returns how long it took.
    pub async fn log_in(&self) -> Result<Duration, Failure> {
        let start = Instant::now();
        let mut login = self
            .app
            .join("/auth/kvixi/login")
            .map_err(|e| failure("login", e))?;
        login.query_pairs_mut().append_pair("return_to", "/me");
        let mut kvixi = self.navigate("login", login).await?;
        kvixi
            .query_pairs_mut()
            .append_pair("mock_user", self.user_name);
        let callback = self.navigate("kvixi", kvixi).await?;
        let back = self.navigate("callback", callback).await?;
        if back.path() != "/me" {
            return Err(failure(
                "callback",
                format!("sent back to {}, not /me", back.path()),
            ));
        }
        self.me_at(back).await?;
        Ok(start.elapsed())
    }

    /// One `GET /me` as a JSON client; how long it took.
    pub async fn me(&self) -> Result<Duration, Failure> {
        let start = Instant::now();
        let url = self.app.join("/me").map_err(|e| failure("me", e))?;
        self.me_at(url).await?;
        Ok(start.elapsed())
    }

    async fn me_at(&self, url: Url) -> Result<(), Failure> {
        let url = loopback(url, "me")?;
        let response = self
            .client
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failure("me", e))?;
        if response.status() != StatusCode::OK {
            return Err(failure(
                "me",
                format!("expected 200, got {}", response.status()),
            ));
        }
        let body = response.bytes().await.map_err(|e| failure("me", e))?;
        let id = format!("\"id\":\"{}\"", self.expected_id);
        if !body.windows(id.len()).any(|window| window == id.as_bytes()) {
            return Err(failure("me", "the body is not the logged-in user"));
        }
        Ok(())
    }

    /// `POST /auth/kvixi/logout`: the session is deleted from the app's store.
    pub async fn log_out(&self) -> Result<(), Failure> {
        let url = loopback(
            self.app
                .join("/auth/kvixi/logout")
                .map_err(|e| failure("logout", e))?,
            "logout",
        )?;
        let response = self
            .client
            .post(url)
            .header(ACCEPT, ACCEPT_HTML)
            .send()
            .await
            .map_err(|e| failure("logout", e))?;
        if response.status() == StatusCode::SEE_OTHER {
            Ok(())
        } else {
            Err(failure(
                "logout",
                format!("expected 303, got {}", response.status()),
            ))
        }
    }
}
