//! The end-to-end harness: a real app on loopback, the Kvixi emulator, and a cookie-jar
//! browser. Every scenario in [`mod@scenarios`] runs against every adapter; a test file per
//! framework expands them with [`scenarios!`], so a failure names both.
#![forbid(unsafe_code)]

#[doc(hidden)]
pub use guard_scenarios::*;
#[doc(hidden)]
pub use provider_scenarios::*;
#[doc(hidden)]
pub use redis_scenarios::*;
#[doc(hidden)]
pub use scenarios::*;

pub mod apps;
pub mod fleet;
pub mod guard_scenarios;
pub mod postgres;
pub mod provider_scenarios;
pub mod redis_scenarios;
pub mod scenarios;
pub mod service;
pub mod session_scenarios;
pub mod topology;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kvixi_core::{Config, Kvixi, LoginRefused, SESSION_COOKIE, UnixTime};
use kvixi_mock::Emulator;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Response, StatusCode, header};
use url::Url;

/// App id registered with the emulator for the app under test.
pub const APP_ID: &str = "e2e-app";
/// Its secret: no answer or log may contain it.
pub const APP_SECRET: &str = "e2e-app-secret-4f1c9a";
/// The fixture user the app's `on_login` hook refuses.
pub const REFUSED_USER: &str = "bob";
/// The HTTP timeout the app under test uses towards Kvixi.
pub const HTTP_TIMEOUT: Duration = Duration::from_millis(1500);

/// Starts a framework's example app on `listener`, in the background, serving `kvixi`.
pub type StartApp = fn(Kvixi, std::net::TcpListener);

/// Starts a framework's example app with its sessions in the Redis at `redis_url`;
/// the returned [`Stop`] ends that instance.
pub type StartRedisApp = fn(Kvixi, std::net::TcpListener, String) -> Stop;

/// Where the suite's apps keep their sessions, revocations and spent logins: the
/// configured store of every [`TestApp`] this test process starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuiteStore {
    /// The flow's memory store (no database URL): the default.
    Memory,
    /// A SQLite file of the app's own, in a temporary directory.
    Sqlite,
    /// A database of the app's own on the process's throwaway Postgres server.
    Postgres,
    /// A `redis-server` of the app's own, named by the one setting (`Config::redis_url`,
    /// `KVIXI_REDIS_URL`): sessions, revocation stamps and spent logins in Redis.
    Redis,
}

static SUITE_STORE: OnceLock<SuiteStore> = OnceLock::new();

/// Makes every [`TestApp`] of this test process keep its state in `store` (called by
/// the test binaries that run the scenario lists on a database; one store a process).
pub fn use_store(store: SuiteStore) {
    let chosen = *SUITE_STORE.get_or_init(|| store);
    assert_eq!(chosen, store, "one suite store per test process");
}

/// The store [`use_store`] chose, [`SuiteStore::Memory`] by default.
pub fn suite_store() -> SuiteStore {
    SUITE_STORE.get().copied().unwrap_or(SuiteStore::Memory)
}

/// A database of its own for one app instance of the suite's store, and what keeps it
/// alive; `None` for the memory store (or, outside CI, when Postgres is missing: then
/// the test runs on memory and says so).
pub async fn suite_database() -> Option<(String, Option<topology::TempDir>)> {
    match suite_store() {
        SuiteStore::Memory | SuiteStore::Redis => None,
        SuiteStore::Sqlite => {
            let dir = topology::TempDir::new("kvixi-sqlite");
            let url = format!("sqlite://{}", dir.path().join("kvixi.db").display());
            Some((url, Some(dir)))
        }
        SuiteStore::Postgres => {
            let Some(server) = postgres::Postgres::shared() else {
                eprintln!("SKIPPED the database: Postgres is missing; this test runs on memory");
                return None;
            };
            Some((server.new_database().await, None))
        }
    }
}

/// Ends a running app instance (as a process exit would).
pub struct Stop(Option<Box<dyn FnOnce() + Send>>);

impl Stop {
    /// A stop that runs `stop` once, when called or dropped.
    pub fn new(stop: impl FnOnce() + Send + 'static) -> Stop {
        Stop(Some(Box::new(stop)))
    }

    /// Lets the instance run until the test ends.
    pub fn detach(mut self) {
        self.0 = None;
    }

    /// Ends the instance now.
    pub fn stop(mut self) {
        if let Some(stop) = self.0.take() {
            stop();
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop();
        }
    }
}

/// A non-blocking listener on a free loopback port, and its base URL.
pub fn loopback_listener() -> (std::net::TcpListener, Url) {
    // A backlog of 1024 (std binds with 128): a burst of a few hundred connections at
    // once (issue 31's 300 callbacks) waits in it instead of being dropped on a busy
    // machine.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a TCP socket");
    let address: std::net::SocketAddr = "127.0.0.1:0".parse().expect("a loopback address");
    // As std's `bind` does on Unix.
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    socket.bind(&address.into()).expect("a free port");
    socket.listen(1024).expect("listening");
    let listener = std::net::TcpListener::from(socket);
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let port = listener.local_addr().expect("bound").port();
    let base = Url::parse(&format!("http://127.0.0.1:{port}/")).expect("valid URL");
    (listener, base)
}

/// A running app under test with its own emulator and clock.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub base: Url,
    /// The emulator the app talks to.
    pub emulator: Emulator,
    /// The app's flow (its config names the routes).
    pub kvixi: Kvixi,
    clock: Arc<AtomicU64>,
    /// The app's SQLite file, when the suite's store is SQLite.
    _database_dir: Option<topology::TempDir>,
    /// The app's Redis, when the suite's store is Redis.
    _redis: Option<service::Service>,
}

impl TestApp {
    /// Starts the emulator, then the app through `start`, wired to each other.
    pub async fn start(start: StartApp) -> TestApp {
        Self::start_with(start).await
    }

    /// Like [`TestApp::start`] with any way of starting the app.
    pub async fn start_with(start: impl FnOnce(Kvixi, std::net::TcpListener)) -> TestApp {
        Self::start_customized(start, |builder| builder).await
    }

    /// Like [`TestApp::start_with`], with the flow's builder passed through `customize`
    /// (hooks, pages) after the suite's own settings.
    pub async fn start_customized(
        start: impl FnOnce(Kvixi, std::net::TcpListener),
        customize: impl FnOnce(kvixi_core::KvixiBuilder) -> kvixi_core::KvixiBuilder,
    ) -> TestApp {
        Self::start_configured(start, |config| config, customize).await
    }

    /// Like [`TestApp::start_customized`], with the suite's config passed through
    /// `configure` first (a Redis URL, a store timeout).
    pub async fn start_configured(
        start: impl FnOnce(Kvixi, std::net::TcpListener),
        configure: impl FnOnce(kvixi_core::ConfigBuilder) -> kvixi_core::ConfigBuilder,
        customize: impl FnOnce(kvixi_core::KvixiBuilder) -> kvixi_core::KvixiBuilder,
    ) -> TestApp {
        let emulator = Emulator::builder()
            .start("127.0.0.1:0")
            .await
            .expect("the emulator starts on loopback");
        let (listener, base) = loopback_listener();
        let redirect_url = base.join("/auth/kvixi/callback").expect("valid URL");
        emulator.register_app(kvixi_mock::App::new(
            APP_ID,
            APP_SECRET,
            redirect_url.as_str(),
        ));
        let clock = Arc::new(AtomicU64::new(UnixTime::now().0));
        let mut builder = Config::builder(APP_ID, APP_SECRET, redirect_url.as_str())
            .base_url(emulator.base_url())
            .http_timeout(HTTP_TIMEOUT);
        let database = suite_database().await;
        let database_dir = match database {
            Some((url, dir)) => {
                builder = builder.database_url(url);
                dir
            }
            None => None,
        };
        // Each app its own server: the scenarios of one process run at once, and a
        // revocation of alice in one must not reach another's alice.
        let redis = match suite_store() {
            SuiteStore::Redis => service::redis(),
            _ => None,
        };
        if let Some(redis) = &redis {
            builder = builder.redis_url(format!("redis://127.0.0.1:{}", redis.port));
        }
        let config = configure(builder).build().expect("valid config");
        let app_clock = clock.clone();
        let kvixi = customize(
            Kvixi::builder(config)
                .clock(move || UnixTime(app_clock.load(Ordering::SeqCst)))
                .on_login(|user, _token| async move {
                    if user.name.as_deref() == Some(REFUSED_USER) {
                        Err(LoginRefused::new("the e2e app refuses bob"))
                    } else {
                        // The app's own data, read back typed at `/me/app`.
                        let member = kvixi_examples::member::Member::for_user(&user);
                        Ok(kvixi_core::AppData(member))
                    }
                }),
        )
        .build()
        .expect("flow builds");
        if kvixi.config().database_url().is_some() {
            assert_eq!(
                kvixi.session_store().kind(),
                "database",
                "the suite's store"
            );
        }
        if redis.is_some() {
            assert_eq!(kvixi.session_store().kind(), "redis", "the suite's store");
        }
        start(kvixi.clone(), listener);
        TestApp {
            base,
            emulator,
            kvixi,
            clock,
            _database_dir: database_dir,
            _redis: redis,
        }
    }

    /// Moves the app's clock (not the emulator's) forward.
    pub fn advance_clock(&self, by: Duration) {
        self.clock.fetch_add(by.as_secs(), Ordering::SeqCst);
    }

    /// A new browser with an empty cookie jar.
    pub fn browser(&self) -> Browser {
        Browser::new(self.base.clone())
    }
}

/// A cookie-jar HTTP client that follows no redirect by itself, so each step is seen.
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
    base: Url,
}

impl Browser {
    /// A browser for the app at `base`.
    pub fn new(base: Url) -> Browser {
        Browser::with_user_agent(base, None)
    }

    /// A browser for the app at `base` that sends `user_agent` (none by default).
    pub fn with_user_agent(base: Url, user_agent: Option<&str>) -> Browser {
        // reqwest is built without a default TLS provider; it needs one even for http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let jar = Arc::new(Jar::default());
        let mut client = reqwest::Client::builder();
        if let Some(agent) = user_agent {
            client = client.user_agent(agent);
        }
        let client = client
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            // A browser sends a request again when a kept-alive connection turns out closed;
            // reqwest does not. Dropping idle connections well before the servers' keep-alive
            // (5 s on actix and Rocket) keeps a slow machine from sending on one the server
            // is closing at that moment (CI: IncompleteMessage in the burst scenario).
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("client builds");
        Browser { client, jar, base }
    }

    /// Resolves a path (or absolute URL) against the app.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("valid URL")
    }

    /// A navigation: `Accept: text/html`.
    pub async fn get(&self, path: &str) -> Response {
        self.send(self.client.get(self.url(path)).header(header::ACCEPT, HTML))
            .await
    }

    /// An API call: `Accept: application/json`.
    pub async fn get_json(&self, path: &str) -> Response {
        self.send(
            self.client
                .get(self.url(path))
                .header(header::ACCEPT, "application/json"),
        )
        .await
    }

    /// A form POST, as a browser submits it.
    pub async fn post(&self, path: &str) -> Response {
        self.send(
            self.client
                .post(self.url(path))
                .header(header::ACCEPT, HTML)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(""),
        )
        .await
    }

    /// A form POST of `form` (urlencoded), as a browser submits it; `json` asks for a
    /// JSON answer as an API client does.
    pub async fn post_form(&self, path: &str, form: &str, json: bool) -> Response {
        let accept = if json { "application/json" } else { HTML };
        self.send(
            self.client
                .post(self.url(path))
                .header(header::ACCEPT, accept)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.to_owned()),
        )
        .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        request.send().await.expect("the app answers")
    }

    /// The session cookie's value, if the jar has one.
    pub fn session_cookie(&self) -> Option<String> {
        jar_cookie(&self.jar, &self.base, SESSION_COOKIE)
    }

    /// The login cookie's value (the pending login), if the jar has one for the callback.
    pub fn login_cookie(&self) -> Option<String> {
        jar_cookie(
            &self.jar,
            &self.url("/auth/kvixi/callback"),
            kvixi_core::flow::LOGIN_COOKIE,
        )
    }

    /// Puts a login cookie in the jar, as a copy stolen from another browser would be.
    pub fn set_login_cookie(&self, value: &str) {
        self.jar.add_cookie_str(
            &format!(
                "{}={value}; Path=/auth/kvixi/callback",
                kvixi_core::flow::LOGIN_COOKIE
            ),
            &self.base,
        );
    }

    /// Puts a session cookie in the jar, as a forger would.
    pub fn set_session_cookie(&self, value: &str) {
        self.jar
            .add_cookie_str(&format!("{SESSION_COOKIE}={value}; Path=/"), &self.base);
    }

    /// Starts a login and lets the emulator approve it as `user`: returns the callback
    /// URL the emulator redirects to, not yet visited.
    pub async fn approve_login(&self, user: &str, return_to: Option<&str>) -> Url {
        let login = match return_to {
            Some(path) => format!(
                "/auth/kvixi/login?return_to={}",
                url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
            ),
            None => "/auth/kvixi/login".to_owned(),
        };
        self.approve_login_from(&login, user).await
    }

    /// Like [`Browser::approve_login`], starting from the login link `login` as a page
    /// gave it (the login route with its query).
    pub async fn approve_login_from(&self, login: &str, user: &str) -> Url {
        let to_kvixi = self.get(login).await;
        assert_eq!(
            to_kvixi.status(),
            StatusCode::SEE_OTHER,
            "login redirects to Kvixi"
        );
        let mut kvixi_page = location(&to_kvixi, &self.base);
        assert_eq!(kvixi_page.path(), "/api/oauth");
        kvixi_page.query_pairs_mut().append_pair("mock_user", user);
        let approved = self
            .client
            .get(kvixi_page)
            .send()
            .await
            .expect("the emulator answers");
        assert_eq!(
            approved.status(),
            StatusCode::SEE_OTHER,
            "the emulator approves"
        );
        location(&approved, &self.base)
    }

    /// A navigation sent over a raw socket, for request lines larger than the HTTP
    /// client accepts (browsers send URLs up to megabytes). Returns the status.
    pub async fn raw_get(&self, path_and_query: &str) -> StatusCode {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = format!(
            "{}:{}",
            self.base.host_str().unwrap_or("127.0.0.1"),
            self.base.port().unwrap_or(80)
        );
        let cookie = self
            .jar
            .cookies(&self.base)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nAccept: {HTML}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        let mut stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect");
        // The server may answer and close before reading it all; that is fine.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut head = [0u8; 64];
        let mut read = 0;
        while read < 12 {
            match stream.read(&mut head[read..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        let line = String::from_utf8_lossy(&head[..read]);
        let code = line.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok());
        StatusCode::from_u16(code.unwrap_or_else(|| panic!("no HTTP status in {line:?}")))
            .expect("valid status")
    }

    /// Visits a URL as is (the callback, say).
    pub async fn visit(&self, url: Url) -> Response {
        self.send(self.client.get(url).header(header::ACCEPT, HTML))
            .await
    }

    /// The whole login as `user`; returns the callback's answer.
    pub async fn log_in(&self, user: &str, return_to: Option<&str>) -> Response {
        let callback = self.approve_login(user, return_to).await;
        self.visit(callback).await
    }
}

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The value of the cookie `name` that `jar` would send to `url`, if it has one.
pub fn jar_cookie(jar: &Jar, url: &Url, name: &str) -> Option<String> {
    let header = jar.cookies(url)?;
    header
        .to_str()
        .ok()?
        .split("; ")
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The `Location` of a redirect, resolved against `base`.
pub fn location(response: &Response, base: &Url) -> Url {
    let value = response
        .headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("{} has no Location", response.status()))
        .to_str()
        .expect("ASCII Location");
    base.join(value).expect("valid Location")
}

/// The `Location` header as sent (relative or absolute).
pub fn raw_location(response: &Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Expands the Redis scenarios into one `#[tokio::test]` each for `start`, a
/// [`StartRedisApp`].
#[macro_export]
macro_rules! redis_scenarios {
    ($start:path) => {
        $crate::scenarios!(@each $start;
            two_instances_share_one_redis_session_store,
            redis_sessions_outlive_a_stopped_server_in_the_same_process,
            redis_outage_answers_503_and_logs_no_one_out,
        );
    };
}

/// Expands the scenario lists that a session store decides (the main list and the
/// session list: revocation, lifetime, app data) for every framework, one module each,
/// with every app keeping its state in `store` (a [`SuiteStore`]).
#[macro_export]
macro_rules! store_scenarios {
    ($store:expr) => {
        mod axum {
            $crate::store_scenarios!(@framework $store, $crate::apps::axum);
        }
        mod actix {
            $crate::store_scenarios!(@framework $store, $crate::apps::actix);
        }
        mod rocket {
            $crate::store_scenarios!(@framework $store, $crate::apps::rocket);
        }
    };
    (@framework $store:expr, $start:path) => {
        $crate::store_scenarios!(@main $store, $start;
            full_login_returns_to_the_requested_page,
            me_is_the_user_as_json,
            anonymous_json_request_gets_401,
            replayed_auth_key_logs_no_one_in,
            callback_without_pending_login_is_refused,
            callback_after_pending_login_expired_is_refused,
            on_login_refusal_is_403_and_stores_nothing,
            session_id_rotates_at_login,
            logout_needs_post_and_ends_the_session,
            expired_token_asks_for_login_but_keeps_the_user,
            forged_session_cookie_is_anonymous,
            concurrent_logins_never_mix_users,
            racing_callbacks_with_one_auth_key_log_in_at_most_one,
            failed_login_leaves_the_session_as_it_was,
            flow_answers_are_private_and_the_cookie_locked_down,
            replayed_login_cookie_buys_no_second_exchange,
            racing_callbacks_with_one_login_cookie_make_one_exchange,
            recent_login_guard_sends_an_old_login_through_login_again,
        );
        $crate::store_scenarios!(@sessions $store, $start;
            revoke_user_logs_the_user_out_of_every_session,
            log_out_everywhere_ends_every_browser_of_the_user,
            absolute_lifetime_reached_asks_for_login,
            app_data_round_trips_typed,
            remember_me_keeps_a_session_the_idle_timeout_would_end,
            your_devices_lists_and_ends_one_session,
            your_devices_last_seen_follows_the_renewals,
        );
    };
    (@main $store:expr, $start:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::use_store($store);
                $crate::$name($start).await
            }
        )*
    };
    (@sessions $store:expr, $start:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::use_store($store);
                $crate::session_scenarios::$name($start).await
            }
        )*
    };
}

/// Expands every scenario into one `#[tokio::test]` for the framework `start` serves.
#[macro_export]
macro_rules! scenarios {
    ($start:path) => {
        $crate::scenarios!(@each $start;
            full_login_returns_to_the_requested_page,
            me_is_the_user_as_json,
            home_page_welcomes_visitors_and_users,
            anonymous_json_request_gets_401,
            anonymous_browser_is_sent_to_login_and_back,
            replayed_auth_key_logs_no_one_in,
            callback_without_pending_login_is_refused,
            callback_after_pending_login_expired_is_refused,
            hostile_return_to_falls_back_to_home,
            unusable_auth_keys_are_refused,
            access_denied_logs_no_one_in,
            provider_failures_answer_gateway_errors,
            on_login_refusal_is_403_and_stores_nothing,
            session_id_rotates_at_login,
            logout_needs_post_and_ends_the_session,
            expired_token_asks_for_login_but_keeps_the_user,
            forged_session_cookie_is_anonymous,
            concurrent_logins_never_mix_users,
            racing_callbacks_with_one_auth_key_log_in_at_most_one,
            unreachable_provider_answers_503,
            huge_provider_answer_is_refused_quickly,
            failed_login_leaves_the_session_as_it_was,
            others_are_served_while_kvixi_hangs,
            flow_answers_are_private_and_the_cookie_locked_down,
            replayed_login_cookie_buys_no_second_exchange,
            racing_callbacks_with_one_login_cookie_make_one_exchange,
            forged_login_cookie_is_no_pending_login,
        );
    };
    (@each $start:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::$name($start).await
            }
        )*
    };
}
