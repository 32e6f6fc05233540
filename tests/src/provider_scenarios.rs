//! What a callback costs while Kvixi is slow or down, and what an operator sees of it:
//! the bound on calls to Kvixi, the circuit breaker, logged-in users served all along,
//! and the example's `/metrics`. Each scenario is a function of the framework's
//! [`StartApp`], expanded per framework by [`provider_scenarios!`](crate::provider_scenarios!).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvixi_mock::{Endpoint, Fault};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::{APP_SECRET, Browser, StartApp, TestApp};

/// The bound on calls to Kvixi the busy scenarios configure.
const BOUND: usize = 2;
/// Callbacks sent at once against that bound.
const CALLBACKS: usize = 6;
/// How soon a callback refused for want of a slot must be answered: the time it takes
/// the queue to see that Kvixi stalled (`kvixi_core::STALL_FLOOR`, 100 ms, for a flow
/// whose logins took milliseconds) and the round trip, with room for a busy machine.
const BUSY_ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// Browsers calling back at once in the burst scenario.
const BURST: usize = 300;
/// Browsers whose logins are approved at once while the burst is set up.
const APPROVE_AT_ONCE: usize = 50;
/// How long the emulator takes over each call in the burst scenario, as a real Kvixi
/// across the internet.
const KVIXI_DELAY: Duration = Duration::from_millis(100);
/// How long a logged-in `/me` may take while Kvixi is slow or down.
const ME_WITHIN: Duration = Duration::from_millis(500);

/// What a callback answered, read once.
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    /// The JSON error's `error` code, when the answer is JSON.
    code: Option<String>,
    took: Duration,
}

/// The callback at `url`, asked for JSON (as a script would), timed.
async fn json_callback(browser: &Browser, url: &url::Url) -> Answer {
    let started = Instant::now();
    let response = browser.get_json(url.as_str()).await;
    let took = started.elapsed();
    read_answer(response, took).await
}

async fn read_answer(response: Response, took: Duration) -> Answer {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let code = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|body| body["error"].as_str().map(str::to_owned));
    Answer {
        status,
        retry_after,
        code,
        took,
    }
}

/// `/me` answers 200 within [`ME_WITHIN`].
async fn assert_me_is_quick(browser: &Browser, when: &str) {
    let started = Instant::now();
    let me = browser.get_json("/me").await;
    let took = started.elapsed();
    assert_eq!(me.status(), StatusCode::OK, "/me {when}");
    assert!(took < ME_WITHIN, "/me took {took:?} {when}");
}

/// With Kvixi suddenly holding every exchange, six callbacks against a bound of two:
/// Kvixi never sees more than two at once, the other four are answered 503
/// `provider_busy` with `Retry-After` within a second (their queue stalled), and each of
/// those four browsers logs in by simply loading its callback again once Kvixi has room:
/// its pending login (its cookie) and its auth_key were not spent.
pub async fn callbacks_beyond_the_bound_are_busy_at_once_and_can_try_again(start: StartApp) {
    let app = Arc::new(
        TestApp::start_configured(start, |config| config.max_provider_calls(BOUND), |b| b).await,
    );
    // The app has seen Kvixi answer in milliseconds.
    assert_eq!(
        app.browser().log_in("alice", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let mut approved = Vec::new();
    for _ in 0..CALLBACKS {
        let browser = app.browser();
        let callback = browser.approve_login("alice", None).await;
        approved.push((browser, callback));
    }
    let calls_before = app.emulator.request_count(Endpoint::Authorize);
    app.emulator
        .inject_fault(Endpoint::Authorize, Fault::Delay(Duration::from_secs(3)));

    let callbacks: Vec<_> = approved
        .into_iter()
        .map(|(browser, callback)| {
            tokio::spawn(async move {
                let login_cookie = browser.login_cookie();
                let answer = json_callback(&browser, &callback).await;
                (browser, callback, login_cookie, answer)
            })
        })
        .collect();
    // While they wait (the two that got a slot hold it until the app's timeout).
    let watch_until = Instant::now() + crate::HTTP_TIMEOUT - Duration::from_millis(300);
    while Instant::now() < watch_until {
        let calls = app.emulator.request_count(Endpoint::Authorize) - calls_before;
        assert!(
            calls <= BOUND as u64,
            "Kvixi saw {calls} calls at once, bound {BOUND}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut busy = Vec::new();
    let mut held = 0;
    for callback in callbacks {
        let (browser, url, login_cookie, answer) = callback.await.expect("a callback task");
        match answer.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(answer.code.as_deref(), Some("provider_busy"));
                assert!(
                    answer.retry_after.is_some_and(|s| s >= 1),
                    "Retry-After: {:?}",
                    answer.retry_after
                );
                assert!(
                    answer.took < BUSY_ANSWER_WITHIN,
                    "busy answered after {:?}",
                    answer.took
                );
                busy.push((browser, url, login_cookie));
            }
            // A slot, and Kvixi held the exchange past the app's timeout.
            StatusCode::GATEWAY_TIMEOUT => held += 1,
            other => panic!("a callback answered {other} ({:?})", answer.code),
        }
    }
    assert_eq!(
        (busy.len(), held),
        (CALLBACKS - BOUND, BOUND),
        "{CALLBACKS} callbacks, {BOUND} slots"
    );
    assert_eq!(
        app.emulator.request_count(Endpoint::Authorize) - calls_before,
        BOUND as u64,
        "the busy callbacks never called Kvixi"
    );

    app.emulator.clear_faults();
    for (browser, url, login_cookie) in busy {
        assert!(login_cookie.is_some(), "the login started a pending login");
        assert_eq!(
            browser.login_cookie(),
            login_cookie,
            "a busy answer leaves the browser its pending login"
        );
        let again = browser.visit(url).await;
        assert_eq!(
            again.status(),
            StatusCode::SEE_OTHER,
            "the same callback logs in once Kvixi has room"
        );
        let me = browser.get_json("/me").await;
        assert_eq!(me.status(), StatusCode::OK);
    }
}

/// A burst of honest logins against a healthy Kvixi that takes 100 ms over each call:
/// 300 browsers call back at once, more than the default 64 slots and 64 more waiting,
/// and every one of them waits its turn and lands logged in.
pub async fn a_burst_of_logins_against_a_healthy_kvixi_all_land_logged_in(start: StartApp) {
    let app = TestApp::start(start).await;
    // Approved in groups, so that the burst follows soon after each browser's last
    // request. A browser that waited longer than its pool's idle timeout (see
    // `Browser::new`) opens a fresh connection for its callback.
    let mut approved = Vec::with_capacity(BURST);
    while approved.len() < BURST {
        let group: Vec<_> = (0..APPROVE_AT_ONCE.min(BURST - approved.len()))
            .map(|_| {
                let browser = app.browser();
                tokio::spawn(async move {
                    let callback = browser.approve_login("alice", None).await;
                    (browser, callback)
                })
            })
            .collect();
        for approval in group {
            approved.push(approval.await.expect("an approval task"));
        }
    }
    for endpoint in [Endpoint::Authorize, Endpoint::UserInfo] {
        app.emulator
            .inject_fault(endpoint, Fault::Delay(KVIXI_DELAY));
    }
    let callbacks: Vec<_> = approved
        .into_iter()
        .map(|(browser, callback)| {
            tokio::spawn(async move {
                let answer = json_callback(&browser, &callback).await;
                (browser, answer)
            })
        })
        .collect();
    let mut failed = std::collections::BTreeMap::<String, usize>::new();
    let mut browsers = Vec::with_capacity(BURST);
    for callback in callbacks {
        let (browser, answer) = callback.await.expect("a callback task");
        if answer.status == StatusCode::SEE_OTHER {
            browsers.push(browser);
        } else {
            let what = format!("{} {}", answer.status, answer.code.unwrap_or_default());
            *failed.entry(what).or_default() += 1;
        }
    }
    assert!(
        failed.is_empty(),
        "of {BURST} callbacks, these failed: {failed:?}"
    );
    app.emulator.clear_faults();
    for browser in browsers {
        assert_eq!(browser.get_json("/me").await.status(), StatusCode::OK);
    }
}

/// Kvixi answering 500: three failures open the breaker; the next callbacks are answered
/// 503 `provider_unavailable` with `Retry-After` at once, without a call to Kvixi; once
/// Kvixi is back and the cool-down over, a login works.
pub async fn a_failing_kvixi_opens_the_breaker_until_it_heals(start: StartApp) {
    let cool_down = Duration::from_millis(1500);
    let app = TestApp::start_configured(
        start,
        |config| config.provider_breaker(3, Duration::from_secs(10), cool_down),
        |b| b,
    )
    .await;
    let mut approved = Vec::new();
    for _ in 0..5 {
        let browser = app.browser();
        let callback = browser.approve_login("alice", None).await;
        approved.push((browser, callback));
    }
    app.emulator
        .inject_fault(Endpoint::Authorize, Fault::Status(500));
    let mut approved = approved.into_iter();
    for (browser, callback) in approved.by_ref().take(3) {
        let answer = json_callback(&browser, &callback).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
        assert_eq!(answer.code.as_deref(), Some("provider_status"));
    }
    let calls = app.emulator.request_count(Endpoint::Authorize);

    let (browser, callback) = approved.next().expect("a fourth login");
    let answer = json_callback(&browser, &callback).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.code.as_deref(), Some("provider_unavailable"));
    assert!(
        answer.retry_after.is_some_and(|s| (1..=2).contains(&s)),
        "Retry-After: {:?}",
        answer.retry_after
    );
    assert!(
        answer.took < Duration::from_millis(500),
        "the open breaker answered after {:?}",
        answer.took
    );
    // A browser gets the page, with the way to try again.
    let (browser, callback) = approved.next().expect("a fifth login");
    let page = browser.visit(callback).await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers().contains_key(reqwest::header::RETRY_AFTER));
    assert!(page.text().await.expect("body").contains("Try again"));
    assert_eq!(
        app.emulator.request_count(Endpoint::Authorize),
        calls,
        "with the breaker open, a callback costs no call to Kvixi"
    );

    app.emulator.clear_faults();
    tokio::time::sleep(cool_down + Duration::from_millis(200)).await;
    let browser = app.browser();
    assert_eq!(
        browser.log_in("alice", None).await.status(),
        StatusCode::SEE_OTHER,
        "Kvixi is back and the cool-down over"
    );
    assert_eq!(browser.get_json("/me").await.status(), StatusCode::OK);
}

/// Many callbacks with made-up keys against a healthy Kvixi: each is Kvixi's answer
/// (400 `auth_key_rejected`), none opens the breaker, and a real login still works.
pub async fn bogus_keys_never_open_the_breaker(start: StartApp) {
    let app = TestApp::start_configured(
        start,
        |config| config.provider_breaker(3, Duration::from_secs(10), Duration::from_secs(30)),
        |b| b,
    )
    .await;
    let calls_before = app.emulator.request_count(Endpoint::Authorize);
    for n in 0..20 {
        // A bot: a free login cookie, and a key of its own making.
        let bot = app.browser();
        assert_eq!(
            bot.get("/auth/kvixi/login").await.status(),
            StatusCode::SEE_OTHER
        );
        let answer = bot
            .get_json(&format!("/auth/kvixi/callback?auth_key=bogus-{n}"))
            .await;
        let answer = read_answer(answer, Duration::ZERO).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "bogus-{n}");
        assert_eq!(
            answer.code.as_deref(),
            Some("auth_key_rejected"),
            "bogus-{n}"
        );
    }
    assert_eq!(
        app.emulator.request_count(Endpoint::Authorize) - calls_before,
        20,
        "each bogus key was Kvixi's to refuse"
    );
    let browser = app.browser();
    assert_eq!(
        browser.log_in("alice", None).await.status(),
        StatusCode::SEE_OTHER,
        "the breaker stayed closed"
    );
}

/// A logged-in user's `/me` answers at once while Kvixi holds every exchange and other
/// browsers wait on their callbacks (more of them than the bound), then while Kvixi is
/// down altogether.
pub async fn logged_in_users_are_served_while_kvixi_is_slow_or_down(start: StartApp) {
    let app = Arc::new(
        TestApp::start_configured(start, |config| config.max_provider_calls(BOUND), |b| b).await,
    );
    let regular = app.browser();
    assert_eq!(
        regular.log_in("alice", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let mut approved = Vec::new();
    for _ in 0..CALLBACKS {
        let browser = app.browser();
        let callback = browser.approve_login("alice", None).await;
        approved.push((browser, callback));
    }
    let (down_browser, down_callback) = approved.pop().expect("a login for the outage");

    // Slow: every exchange held for 5 s.
    app.emulator
        .inject_fault(Endpoint::Authorize, Fault::Delay(Duration::from_secs(5)));
    let waiting: Vec<_> = approved
        .into_iter()
        .map(|(browser, callback)| {
            tokio::spawn(async move { browser.visit(callback).await.status() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..10 {
        assert_me_is_quick(&regular, "while Kvixi is slow").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for waiting in waiting {
        let status = waiting.await.expect("a waiting callback");
        assert!(
            [StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT].contains(&status),
            "a callback answered {status}"
        );
    }

    // Down: the emulator stops (its held requests may take a while to end).
    let emulator = app.emulator.clone();
    let stopping = tokio::spawn(async move { emulator.shutdown().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let failing = tokio::spawn(async move { down_browser.visit(down_callback).await.status() });
    for _ in 0..5 {
        assert_me_is_quick(&regular, "while Kvixi is down").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = failing.await.expect("the callback during the outage");
    assert!(status.is_server_error(), "a callback answered {status}");
    stopping.await.expect("the emulator stops");
    assert_me_is_quick(&regular, "after the outage").await;
}

/// The metrics `/metrics` shows of one run: each sample's value by its name and labels
/// as rendered (`kvixi_logins_total`, `kvixi_login_failures_total{code="…"}`).
fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Scrapes the app's `/metrics` as Prometheus would.
async fn scrape(browser: &Browser) -> std::collections::HashMap<String, f64> {
    let response = browser.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK, "/metrics");
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "text/plain; version=0.0.4");
    let text = response.text().await.expect("the metrics");
    assert!(!text.contains(APP_SECRET));
    samples(&text)
}

/// On the example's `/metrics`, one login, one failed login (a made-up key) and one
/// logout each move their counter by exactly one. The recorder is the process's: run
/// this where no other test logs anyone in at the same time.
pub async fn metrics_count_one_login_one_failure_and_one_logout(start: StartApp) {
    let app = TestApp::start(start).await;
    let prometheus = app.browser();
    let before = scrape(&prometheus).await;

    let user = app.browser();
    assert_eq!(
        user.log_in("alice", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let bot = app.browser();
    bot.get("/auth/kvixi/login").await;
    assert_eq!(
        bot.get("/auth/kvixi/callback?auth_key=made-up")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        user.post("/auth/kvixi/logout").await.status(),
        StatusCode::SEE_OTHER
    );

    let after = scrape(&prometheus).await;
    let value = |samples: &std::collections::HashMap<String, f64>, series: &str| {
        samples.get(series).copied().unwrap_or(0.0)
    };
    for (series, by) in [
        ("kvixi_logins_total", 1.0),
        (
            r#"kvixi_login_failures_total{code="auth_key_rejected"}"#,
            1.0,
        ),
        ("kvixi_logouts_total", 1.0),
        ("kvixi_login_starts_total", 2.0),
        (
            r#"kvixi_provider_request_duration_seconds_count{endpoint="authorize"}"#,
            2.0,
        ),
    ] {
        let (from, to) = (value(&before, series), value(&after, series));
        assert_eq!(to - from, by, "{series}: {from} then {to}");
    }
}

/// Expands the scenarios of Kvixi slow or down into one `#[tokio::test]` each for the
/// framework `start` serves. (The metrics scenario needs a test binary of its own:
/// `tests/tests/metrics.rs`.)
#[macro_export]
macro_rules! provider_scenarios {
    ($start:path) => {
        $crate::scenarios!(@each $start;
            callbacks_beyond_the_bound_are_busy_at_once_and_can_try_again,
            a_burst_of_logins_against_a_healthy_kvixi_all_land_logged_in,
            a_failing_kvixi_opens_the_breaker_until_it_heals,
            bogus_keys_never_open_the_breaker,
            logged_in_users_are_served_while_kvixi_is_slow_or_down,
        );
    };
}
