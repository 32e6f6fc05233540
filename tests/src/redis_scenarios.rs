//! Several instances behind a load balancer, sharing sessions in a real `redis-server`,
//! and what users see while that server is down.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kvixi_core::SESSION_COOKIE;
use reqwest::{Response, StatusCode, header};
use serde_json::Value;

use crate::{Browser, REFUSED_USER, StartApp, StartRedisApp, TestApp, loopback_listener, service};

/// Login through instance A, `/me` through instance B; logout through B, A refuses.
pub async fn two_instances_share_one_redis_session_store(start: StartRedisApp) {
    let Some(redis) = service::redis() else {
        return;
    };
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let mut stops = Vec::new();
    // The one setting: the flow's config names the Redis.
    let app = TestApp::start_configured(
        |kvixi, listener| stops.push(start(kvixi, listener, redis_url.clone())),
        |config| config.redis_url(&redis_url),
        |builder| builder,
    )
    .await;
    let (listener_b, base_b) = loopback_listener();
    stops.push(start(app.kvixi.clone(), listener_b, redis_url.clone()));

    let browser_a = app.browser();
    let callback = browser_a.log_in("alice", None).await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER);
    // The same cookie in a browser that only talks to B.
    let browser_b = Browser::new(base_b);
    let cookie = browser_a.session_cookie().expect("session cookie");
    browser_b.set_session_cookie(&cookie);
    let me = browser_b.get_json("/me").await;
    assert_eq!(me.status(), StatusCode::OK, "B sees the session A created");

    let logout = browser_b.post("/auth/kvixi/logout").await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = browser_a.get_json("/me").await;
    assert_eq!(
        after.status(),
        StatusCode::UNAUTHORIZED,
        "A refuses the session B ended"
    );
    drop(stops);
}

/// In one process, a server on Redis stops (its port closed) and a new server with the
/// same flow starts: the browser's session, kept in Redis, is served by the new one. A
/// restart of real processes is the fleet's `sessions_survive_a_restart_of_every_instance`.
pub async fn redis_sessions_outlive_a_stopped_server_in_the_same_process(start: StartRedisApp) {
    let Some(redis) = service::redis() else {
        return;
    };
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let mut first = None;
    let app = TestApp::start_configured(
        |kvixi, listener| first = Some(start(kvixi, listener, redis_url.clone())),
        |config| config.redis_url(&redis_url),
        |builder| builder,
    )
    .await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    assert_eq!(browser.get_json("/me").await.status(), StatusCode::OK);
    let cookie = browser.session_cookie().expect("session cookie");
    if let Some(stop) = first.take() {
        stop.stop();
    }
    // The first instance is gone: its port refuses new connections before the next
    // one starts (the fleet scenarios do the same with a SIGKILLed process).
    let port = app.base.port().expect("a port");
    let stopped = Instant::now();
    while crate::service::listens(port) {
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "the stopped instance still accepts connections on {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (listener, base) = loopback_listener();
    let _restarted = start(app.kvixi.clone(), listener, redis_url.clone());
    let after_restart = Browser::new(base);
    after_restart.set_session_cookie(&cookie);
    let me = after_restart.get_json("/me").await;
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the session outlived the instance"
    );
}

/// How long the app under an outage test waits for the session store.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// The most any answer may take while Redis is down: the store timeout plus a wide
/// margin (a bound on hanging, not a benchmark).
const OUTAGE_ANSWER_BOUND: Duration = Duration::from_secs(3);

/// How long Redis may take, once restarted, until the app reads sessions again (its
/// client reconnects on its own: fred (axum, Rocket) retries every 100 ms here, actix's
/// pooled store opens a new connection at the next request).
const RECONNECT_BOUND: Duration = Duration::from_secs(20);

/// A `redis-server` that writes every change to its append-only file before
/// acknowledging it, in a directory of its own, so that it can be stopped and started
/// again on the same data and port.
pub struct PersistentRedis {
    child: Option<Child>,
    /// The loopback port it listens on, the same across restarts.
    pub port: u16,
    dir: PathBuf,
}

impl PersistentRedis {
    /// Starts it on a free port and an empty directory; `None` (a skip, or a failure
    /// under `CI=true`) when `redis-server` is not installed.
    pub fn start() -> Option<PersistentRedis> {
        if !service::available(REDIS_SERVER, "redis-server") {
            return None;
        }
        let port = service::free_port();
        let dir =
            std::env::temp_dir().join(format!("kvixi-e2e-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for Redis's data");
        let mut redis = PersistentRedis {
            child: None,
            port,
            dir,
        };
        redis.start_again();
        Some(redis)
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its directory and port (loading what it wrote), and waits
    /// until it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "Redis is already running");
        let dir = self.dir.to_str().expect("a UTF-8 temporary directory");
        let port = self.port.to_string();
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir", dir])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {REDIS_SERVER}: {e}"));
        self.child = Some(child);
        service::wait_for_port(self.port, Duration::from_secs(20));
    }

    /// Stops the server as an operator or a crash-free shutdown would: SIGTERM, then
    /// waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let terminated = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("`kill` runs");
        assert!(terminated.success(), "SIGTERM reached redis-server");
        let status = child.wait().expect("redis-server exits");
        assert!(status.success(), "redis-server shut down cleanly: {status}");
    }
}

impl Drop for PersistentRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// Awaits `request`, and how long it took.
async fn timed(request: impl Future<Output = Response>) -> (Response, Duration) {
    let started = Instant::now();
    let response = request.await;
    (response, started.elapsed())
}

/// Whether `response` sets (or clears) the session cookie.
fn sets_session_cookie(response: &Response) -> bool {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|value| {
            value
                .as_bytes()
                .starts_with(format!("{SESSION_COOKIE}=").as_bytes())
        })
}

/// What `/me` says of the browser's user.
async fn me(browser: &Browser) -> Value {
    let me = browser.get_json("/me").await;
    assert_eq!(me.status(), StatusCode::OK, "logged in");
    me.json().await.expect("the user as JSON")
}

/// An answer given while Redis is down: `status`, within the bound, and without the
/// session cookie.
fn assert_outage_answer(what: &str, response: &Response, took: Duration, status: StatusCode) {
    assert_eq!(response.status(), status, "{what} during the outage");
    assert!(
        took < OUTAGE_ANSWER_BOUND,
        "{what} took {took:?} (store timeout {STORE_TIMEOUT:?})"
    );
    assert!(
        !sets_session_cookie(response),
        "{what} touches no session cookie"
    );
}

/// Redis stops while two users browse: what needs the session answers 503 within the
/// store timeout (JSON for API calls, a page for browsers), what does not is served,
/// nobody is logged out and no session is written. Redis starts again on the same
/// data: the same cookies work, without a new login. The app is the suite's, like every
/// other scenario's: its `on_login` (bob refused, alice's data) and its clock are seen at work.
pub async fn redis_outage_answers_503_and_logs_no_one_out(start: StartRedisApp) {
    let Some(mut redis) = PersistentRedis::start() else {
        return;
    };
    let redis_url = redis.url();
    let mut instance = None;
    // The suite's app (its hooks and clock), waiting at most STORE_TIMEOUT for Redis.
    let app = TestApp::start_configured(
        |kvixi, listener| instance = Some(start(kvixi, listener, redis_url.clone())),
        |config| {
            config
                .redis_url(&redis_url)
                .session_store_timeout(STORE_TIMEOUT)
        },
        |builder| builder,
    )
    .await;
    store_outage_answers_503_and_logs_no_one_out(&app, &mut redis).await;
    drop(instance);
}

/// [`redis_outage_answers_503_and_logs_no_one_out`] on Postgres (`KVIXI_DATABASE_URL`):
/// the server stops at once (as a crash or a killed container), then starts again on
/// the same data.
pub async fn database_outage_answers_503_and_logs_no_one_out(start: StartApp) {
    let Some(mut postgres) = crate::postgres::Postgres::start() else {
        return;
    };
    let url = postgres.new_database().await;
    let app = TestApp::start_configured(
        start,
        |config| {
            config
                .database_url(&url)
                .session_store_timeout(STORE_TIMEOUT)
        },
        |builder| builder,
    )
    .await;
    store_outage_answers_503_and_logs_no_one_out(&app, &mut postgres).await;
}

/// A shared store's server that a scenario stops and starts again on the same data.
pub trait Restartable {
    /// What it is, for messages.
    fn name(&self) -> &'static str;
    /// Stops the server.
    fn stop(&mut self);
    /// Starts it again on the same data and port.
    fn start_again(&mut self);
}

impl Restartable for PersistentRedis {
    fn name(&self) -> &'static str {
        "Redis"
    }
    fn stop(&mut self) {
        PersistentRedis::stop(self);
    }
    fn start_again(&mut self) {
        PersistentRedis::start_again(self);
    }
}

impl Restartable for crate::postgres::Postgres {
    fn name(&self) -> &'static str {
        "Postgres"
    }
    fn stop(&mut self) {
        crate::postgres::Postgres::stop(self);
    }
    fn start_again(&mut self) {
        crate::postgres::Postgres::start_again(self);
    }
}

/// The outage scenario on `app`, whose sessions are in `server`'s store.
async fn store_outage_answers_503_and_logs_no_one_out(app: &TestApp, redis: &mut dyn Restartable) {
    // A second user the suite's on_login admits (it refuses bob).
    app.emulator
        .add_user(kvixi_mock::User::new("1003", "carol", "carol-password"));
    let alice = app.browser();
    let carol = app.browser();
    for (browser, user) in [(&alice, "alice"), (&carol, "carol")] {
        let callback = browser.log_in(user, None).await;
        assert_eq!(callback.status(), StatusCode::SEE_OTHER, "{user} logs in");
    }
    let users = [me(&alice).await, me(&carol).await];
    assert_ne!(users[0]["id"], users[1]["id"]);
    // The suite's hooks are in effect: its on_login refuses bob and gave alice her data.
    let bob = app.browser().log_in(REFUSED_USER, None).await;
    assert_eq!(bob.status(), StatusCode::FORBIDDEN, "the suite's on_login");
    let alice_data = app_data(&alice).await;
    assert_eq!(
        alice_data["local_id"], 11001,
        "on_login's data: {alice_data}"
    );
    let cookies = [alice.session_cookie(), carol.session_cookie()];

    redis.stop();
    let mut slowest = Duration::ZERO;
    for (browser, user) in [(&alice, "alice"), (&carol, "carol")] {
        let (api, took) = timed(browser.get_json("/me")).await;
        assert_outage_answer(
            &format!("{user}'s /me"),
            &api,
            took,
            StatusCode::SERVICE_UNAVAILABLE,
        );
        slowest = slowest.max(took);
        let body: Value = api.json().await.expect("a JSON error");
        assert_eq!(body["error"], "session_store_unavailable", "{body}");

        let (page, took) = timed(browser.get("/private")).await;
        let what = format!("{user}'s /private");
        assert_outage_answer(&what, &page, took, StatusCode::SERVICE_UNAVAILABLE);
        slowest = slowest.max(took);
        let html = page.headers().get(header::CONTENT_TYPE).cloned();
        assert!(
            html.is_some_and(|value| value.as_bytes().starts_with(b"text/html")),
            "{what} is a page"
        );

        // The guarded group: its guard cannot read the session either, so 503 (a page
        // for a browser, JSON for an API client), never the anonymous answer.
        let (page, took) = timed(browser.get("/account")).await;
        let what = format!("{user}'s /account");
        assert_outage_answer(&what, &page, took, StatusCode::SERVICE_UNAVAILABLE);
        slowest = slowest.max(took);
        let (api, took) = timed(browser.get_json("/account/verified")).await;
        let what = format!("{user}'s /account/verified (JSON)");
        assert_outage_answer(&what, &api, took, StatusCode::SERVICE_UNAVAILABLE);
        slowest = slowest.max(took);
        let body: Value = api.json().await.expect("a JSON error");
        assert_eq!(body["error"], "session_store_unavailable", "{what}: {body}");

        // The home page reads the optional user: 503, never a login redirect nor the
        // visitor's page (on Rocket the fairing answers the 503 its `Option` guard swallowed).
        let (home, took) = timed(browser.get("/")).await;
        assert_eq!(
            home.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{user}'s home"
        );
        assert!(took < OUTAGE_ANSWER_BOUND, "{user}'s home took {took:?}");
        assert!(!sets_session_cookie(&home), "{user}'s home");

        // Starting a login needs no session: served, the session cookie left alone.
        let (login, took) = timed(browser.get("/auth/kvixi/login")).await;
        assert_outage_answer(
            &format!("{user}'s login start"),
            &login,
            took,
            StatusCode::SEE_OTHER,
        );
        slowest = slowest.max(took);
    }

    // Logging out cannot delete the record: no false success.
    let (logout, took) = timed(alice.post("/auth/kvixi/logout")).await;
    assert_outage_answer(
        "alice's logout",
        &logout,
        took,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    slowest = slowest.max(took);

    // A login finished during the outage cannot store its session: 503, not a half login.
    let newcomer = app.browser();
    let callback = newcomer.approve_login("alice", None).await;
    let (callback, took) = timed(newcomer.visit(callback)).await;
    assert_outage_answer(
        "a new login's callback",
        &callback,
        took,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    assert_eq!(newcomer.session_cookie(), None, "no session was created");

    for (browser, cookie) in [(&alice, &cookies[0]), (&carol, &cookies[1])] {
        assert_eq!(
            &browser.session_cookie(),
            cookie,
            "the browser kept its cookie"
        );
    }
    eprintln!(
        "slowest answer while {} was down: {slowest:?} (store timeout {STORE_TIMEOUT:?})",
        redis.name()
    );

    redis.start_again();
    let back = Instant::now();
    loop {
        let response = alice.get_json("/me").await;
        if response.status() == StatusCode::OK {
            break;
        }
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "while the app reconnects, still unavailable, never logged out"
        );
        assert!(
            back.elapsed() < RECONNECT_BOUND,
            "the app reads sessions again within {RECONNECT_BOUND:?} of Redis's restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "sessions readable again {:?} after {} restarted",
        back.elapsed(),
        redis.name()
    );
    for (browser, user) in [(&alice, &users[0]), (&carol, &users[1])] {
        assert_eq!(
            &me(browser).await,
            user,
            "the same user, without a new login"
        );
        assert_eq!(browser.get("/private").await.status(), StatusCode::OK);
        assert_eq!(browser.get("/account").await.status(), StatusCode::OK);
    }
    assert_eq!(app_data(&alice).await, alice_data, "on_login's data kept");
    // The suite's clock drives this app too: past the absolute lifetime, both are over.
    let lifetime = app.kvixi.config().max_session_lifetime();
    app.advance_clock(lifetime + Duration::from_secs(1));
    for (browser, user) in [(&alice, "alice"), (&carol, "carol")] {
        assert_eq!(
            browser.get_json("/me").await.status(),
            StatusCode::UNAUTHORIZED,
            "{user} past the lifetime on the suite's clock"
        );
    }
}

/// What `/me/app` says of the browser's user: the data the suite's `on_login` returned.
async fn app_data(browser: &Browser) -> Value {
    let answer = browser.get_json("/me/app").await;
    assert_eq!(answer.status(), StatusCode::OK, "/me/app");
    answer.json().await.expect("the app data as JSON")
}
