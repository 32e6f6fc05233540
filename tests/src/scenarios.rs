//! The behaviour every adapter must show, each scenario a function of the framework's
//! [`StartApp`]. Scenarios assert what a user or a browser would notice.

use std::time::{Duration, Instant};

use kvixi_mock::{Endpoint, Fault};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{APP_SECRET, HTTP_TIMEOUT, REFUSED_USER, StartApp, TestApp, raw_location};

async fn assert_anonymous(browser: &crate::Browser) {
    let me = browser.get_json("/me").await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "nobody is logged in");
}

async fn assert_logged_in_as(browser: &crate::Browser, user_id: &str) {
    let me = browser.get_json("/me").await;
    assert_eq!(me.status(), StatusCode::OK, "someone is logged in");
    let body: Value = me.json().await.expect("JSON");
    assert_eq!(body["id"], user_id);
}

/// Login with `return_to` lands on that page, showing the user.
pub async fn full_login_returns_to_the_requested_page(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    let callback = browser.log_in("alice", Some("/private?tab=2")).await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER);
    assert_eq!(raw_location(&callback), "/private?tab=2");
    let page = browser.get("/private?tab=2").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains("Alice Liddell"), "{html}");
    assert!(!html.contains(APP_SECRET));
}

/// `/me` answers the typed user as JSON.
pub async fn me_is_the_user_as_json(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    let me = browser.get_json("/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    assert!(
        me.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let user: Value = me.json().await.expect("JSON");
    assert_eq!(user["id"], "1001");
    assert_eq!(user["name"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["verified"], true);
    let text = user.to_string();
    assert!(
        !text.contains("token"),
        "the token is not part of the user: {text}"
    );
}

/// `Option<KvixiUser>`: visitors see the login button, users their name.
pub async fn home_page_welcomes_visitors_and_users(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    let home = browser.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(
        home.text()
            .await
            .expect("body")
            .contains("Log in with Kvixi")
    );
    browser.log_in("alice", None).await;
    let home = browser.get("/").await.text().await.expect("body");
    assert!(home.contains("Alice Liddell"), "{home}");
    assert!(home.contains("Log out"));
}

/// API clients get a 401 with a JSON error, never a redirect.
pub async fn anonymous_json_request_gets_401(start: StartApp) {
    let app = TestApp::start(start).await;
    let me = app.browser().get_json("/me").await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let body: Value = me.json().await.expect("JSON error");
    assert_eq!(body["error"], "not_logged_in");
}

/// Browsers are sent to login, which brings them back to the page they wanted: the
/// login started from the redirect's `Location` ends on that page, logged in.
pub async fn anonymous_browser_is_sent_to_login_and_back(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    let page = browser.get("/private?tab=2").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let login = raw_location(&page);
    assert_eq!(login, "/auth/kvixi/login?return_to=%2Fprivate%3Ftab%3D2");

    let callback = browser.approve_login_from(&login, "alice").await;
    let back = browser.visit(callback).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "alice logs in");
    assert_eq!(
        raw_location(&back),
        "/private?tab=2",
        "back to the page first asked for"
    );
    let page = browser.get("/private?tab=2").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains("Alice Liddell"), "{html}");
}

/// A callback URL used once cannot log anyone in again, even with a fresh login.
pub async fn replayed_auth_key_logs_no_one_in(start: StartApp) {
    let app = TestApp::start(start).await;
    let victim = app.browser();
    let callback = victim.approve_login("alice", None).await;
    assert_eq!(
        victim.visit(callback.clone()).await.status(),
        StatusCode::SEE_OTHER
    );

    let attacker = app.browser();
    attacker.approve_login("bob", None).await; // a pending login of its own
    let replay = attacker.visit(callback).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let page = replay.text().await.expect("body");
    assert!(page.contains("Try again"), "{page}");
    assert_anonymous(&attacker).await;
}

/// Login CSRF: a callback in a browser that started no login is refused.
pub async fn callback_without_pending_login_is_refused(start: StartApp) {
    let app = TestApp::start(start).await;
    let key = app
        .emulator
        .issue_auth_key(crate::APP_ID, "alice")
        .expect("key");
    let browser = app.browser();
    let callback = browser
        .get(&format!("/auth/kvixi/callback?auth_key={key}"))
        .await;
    assert_eq!(callback.status(), StatusCode::BAD_REQUEST);
    assert_anonymous(&browser).await;
}

/// A login left waiting more than ten minutes cannot be completed.
pub async fn callback_after_pending_login_expired_is_refused(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    let callback = browser.approve_login("alice", None).await;
    app.advance_clock(Duration::from_secs(601));
    assert_eq!(
        browser.visit(callback).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_anonymous(&browser).await;
}

/// No open redirect: every off-site `return_to` lands on `/`.
pub async fn hostile_return_to_falls_back_to_home(start: StartApp) {
    let app = TestApp::start(start).await;
    for hostile in [
        "//evil.example",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\r\nSet-Cookie: x=y",
        "/.//evil.example",
    ] {
        let browser = app.browser();
        let callback = browser.log_in("alice", Some(hostile)).await;
        assert_eq!(callback.status(), StatusCode::SEE_OTHER, "{hostile:?}");
        assert_eq!(raw_location(&callback), "/", "{hostile:?}");
    }
}

/// Missing, empty, huge and non-UTF-8 auth_keys are the browser's fault: 4xx, nobody
/// logged in, never a 500.
pub async fn unusable_auth_keys_are_refused(start: StartApp) {
    let app = TestApp::start(start).await;
    let huge = format!("auth_key={}", "k".repeat(100_000));
    for query in ["", "auth_key=", huge.as_str(), "auth_key=%FF%FE%80"] {
        let browser = app.browser();
        browser.approve_login("alice", None).await;
        let status = browser
            .raw_get(&format!("/auth/kvixi/callback?{query}"))
            .await;
        assert!(
            status.is_client_error(),
            "{}… gave {status}",
            &query[..query.len().min(20)]
        );
        assert_anonymous(&browser).await;
    }
}

/// The person clicks Deny on Kvixi.
pub async fn access_denied_logs_no_one_in(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    browser.approve_login("alice", None).await;
    let callback = browser
        .get("/auth/kvixi/callback?error=access_denied")
        .await;
    assert_eq!(callback.status(), StatusCode::FORBIDDEN);
    assert_anonymous(&browser).await;
}

/// Kvixi down, broken or slow: 502/504 pages within the timeout, nobody logged in.
pub async fn provider_failures_answer_gateway_errors(start: StartApp) {
    let app = TestApp::start(start).await;
    let cases = [
        (
            Endpoint::Authorize,
            Fault::Status(500),
            StatusCode::BAD_GATEWAY,
        ),
        (
            Endpoint::Authorize,
            Fault::MalformedJson,
            StatusCode::BAD_GATEWAY,
        ),
        (
            Endpoint::UserInfo,
            Fault::Body(r#"{"user_info":{"user_name":"x"}}"#.into()),
            StatusCode::BAD_GATEWAY,
        ),
        (
            Endpoint::Authorize,
            Fault::Delay(HTTP_TIMEOUT * 3),
            StatusCode::GATEWAY_TIMEOUT,
        ),
    ];
    for (endpoint, fault, expected) in cases {
        let browser = app.browser();
        let callback = browser.approve_login("alice", None).await;
        app.emulator.inject_fault(endpoint, fault.clone());
        let started = Instant::now();
        let answer = browser.visit(callback).await;
        let elapsed = started.elapsed();
        app.emulator.clear_faults();
        assert_eq!(answer.status(), expected, "{fault:?}");
        assert!(elapsed < HTTP_TIMEOUT * 2, "{fault:?} took {elapsed:?}");
        let page = answer.text().await.expect("body");
        assert!(page.contains("Try again"), "{page}");
        assert_anonymous(&browser).await;
    }
}

/// The app's `on_login` hook refuses bob: 403 and no session.
pub async fn on_login_refusal_is_403_and_stores_nothing(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    let callback = browser.log_in(REFUSED_USER, None).await;
    assert_eq!(callback.status(), StatusCode::FORBIDDEN);
    assert_anonymous(&browser).await;
}

/// No session fixation: the id changes at login, and the old id is worth nothing, whether
/// the browser held a session of its own or one an attacker planted.
pub async fn session_id_rotates_at_login(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    let before = browser
        .session_cookie()
        .expect("a session cookie after the first login");
    let callback = browser.approve_login("alice", None).await;
    // Starting a login leaves the session alone.
    assert_logged_in_as(&browser, "1001").await;
    browser.visit(callback).await;
    let after = browser
        .session_cookie()
        .expect("a session cookie after login");
    assert_ne!(before, after, "the session id changed at login");
    assert_logged_in_as(&browser, "1001").await;

    let fixated = app.browser();
    fixated.set_session_cookie(&before);
    assert_anonymous(&fixated).await;

    let planted = app.browser();
    planted.set_session_cookie("planted-by-an-attacker-0000000000");
    planted.log_in("alice", None).await;
    let now = planted.session_cookie().expect("a session cookie");
    assert_ne!(now, "planted-by-an-attacker-0000000000");
    assert_logged_in_as(&planted, "1001").await;
}

/// Logout is a POST that ends the session; a GET logs nobody out.
pub async fn logout_needs_post_and_ends_the_session(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    let cookie = browser.session_cookie().expect("cookie");
    let get = browser.get("/auth/kvixi/logout").await;
    assert!(
        get.status().is_client_error(),
        "GET logout gave {}",
        get.status()
    );
    assert_logged_in_as(&browser, "1001").await;

    let logout = browser.post("/auth/kvixi/logout").await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(raw_location(&logout), "/");
    assert_anonymous(&browser).await;

    let old = app.browser();
    old.set_session_cookie(&cookie);
    assert_anonymous(&old).await;
}

/// After the token's hour, `KvixiToken` asks for a new login; the user stays logged in,
/// and the login it asks for brings a fresh token back to the page.
pub async fn expired_token_asks_for_login_but_keeps_the_user(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    let fresh = browser.get_json("/me/fresh").await;
    assert_eq!(
        fresh.status(),
        StatusCode::OK,
        "the token reads the profile"
    );
    app.advance_clock(Duration::from_secs(3600));
    assert_eq!(
        browser.get_json("/me/fresh").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let page = browser.get("/me/fresh").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let login = raw_location(&page);
    assert_eq!(login, "/auth/kvixi/login?return_to=%2Fme%2Ffresh");
    assert_logged_in_as(&browser, "1001").await;

    let callback = browser.approve_login_from(&login, "alice").await;
    let back = browser.visit(callback).await;
    assert_eq!(raw_location(&back), "/me/fresh");
    assert_eq!(
        browser.get_json("/me/fresh").await.status(),
        StatusCode::OK,
        "the new login brought a fresh token"
    );
}

/// A session cookie nobody issued, or a real one tampered with, is anonymous, not an
/// error.
pub async fn forged_session_cookie_is_anonymous(start: StartApp) {
    let app = TestApp::start(start).await;
    let victim = app.browser();
    victim.log_in("alice", None).await;
    let real = victim.session_cookie().expect("a session cookie");
    let mut chars: Vec<char> = real.chars().collect();
    for at in [0, chars.len() / 2, chars.len() - 1] {
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    }
    let tampered: String = chars.into_iter().collect();
    let browser = app.browser();
    browser.set_session_cookie(&tampered);
    assert_anonymous(&browser).await;
    for forged in ["forged", "AAAAAAAAAAAAAAAAAAAAAA", "%00%ff", "a.b.c"] {
        let browser = app.browser();
        browser.set_session_cookie(forged);
        assert_anonymous(&browser).await;
        let home = browser.get("/").await;
        assert_eq!(home.status(), StatusCode::OK, "{forged}");
    }
}

/// A third fixture user the app admits, for scenarios with several people.
fn add_carol(app: &TestApp) {
    let mut carol = kvixi_mock::User::new("1003", "carol", "carol-password");
    carol.user_firstname = "Carol".into();
    app.emulator.add_user(carol);
}

/// Many browsers logging in at once each end up as their own user.
pub async fn concurrent_logins_never_mix_users(start: StartApp) {
    let app = std::sync::Arc::new(TestApp::start(start).await);
    add_carol(&app);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let (user, id) = if i % 2 == 0 {
                ("alice", "1001")
            } else {
                ("carol", "1003")
            };
            let browser = app.browser();
            let callback = browser.log_in(user, None).await;
            assert_eq!(callback.status(), StatusCode::SEE_OTHER, "{user} #{i}");
            assert_logged_in_as(&browser, id).await;
        }));
    }
    for task in tasks {
        task.await.expect("a login task panicked");
    }
}

/// Two browsers race the same callback URL: at most one of them is logged in.
pub async fn racing_callbacks_with_one_auth_key_log_in_at_most_one(start: StartApp) {
    let app = TestApp::start(start).await;
    let first = app.browser();
    let second = app.browser();
    let callback = first.approve_login("alice", None).await;
    second.approve_login("alice", None).await;
    let (a, b) = tokio::join!(first.visit(callback.clone()), second.visit(callback));
    let logged_in = [a.status(), b.status()]
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert!(logged_in <= 1, "{} and {}", a.status(), b.status());
    let mut sessions = 0;
    for browser in [&first, &second] {
        if browser.get_json("/me").await.status() == StatusCode::OK {
            sessions += 1;
        }
    }
    assert_eq!(sessions, logged_in, "only the winner holds a session");
}

/// Kvixi refuses connections: 503, nobody logged in.
pub async fn unreachable_provider_answers_503(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    let callback = browser.approve_login("alice", None).await;
    app.emulator.shutdown().await;
    let answer = browser.visit(callback).await;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.text().await.expect("body").contains("Try again"));
    assert_anonymous(&browser).await;
}

/// A 100 MB answer is cut off at the cap: 502 without reading it all.
pub async fn huge_provider_answer_is_refused_quickly(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    let callback = browser.approve_login("alice", None).await;
    app.emulator
        .inject_fault(Endpoint::Authorize, Fault::OversizedBody(100 * 1024 * 1024));
    let started = Instant::now();
    let answer = browser.visit(callback).await;
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    assert!(
        started.elapsed() < HTTP_TIMEOUT,
        "took {:?}",
        started.elapsed()
    );
    assert_anonymous(&browser).await;
}

/// A failed second login leaves the first one in place, and its callback is spent.
pub async fn failed_login_leaves_the_session_as_it_was(start: StartApp) {
    let app = TestApp::start(start).await;
    add_carol(&app);
    let browser = app.browser();
    browser.log_in("alice", None).await;
    let callback = browser.approve_login("carol", None).await;
    app.emulator
        .inject_fault(Endpoint::UserInfo, Fault::Status(500));
    assert_eq!(
        browser.visit(callback.clone()).await.status(),
        StatusCode::BAD_GATEWAY
    );
    app.emulator.clear_faults();
    assert_logged_in_as(&browser, "1001").await;
    assert_eq!(
        browser.visit(callback).await.status(),
        StatusCode::BAD_REQUEST,
        "the pending login was consumed by the failed callback"
    );
    assert_logged_in_as(&browser, "1001").await;
}

/// While Kvixi hangs on one login, logged-in users are served at once.
pub async fn others_are_served_while_kvixi_hangs(start: StartApp) {
    let app = std::sync::Arc::new(TestApp::start(start).await);
    let regular = app.browser();
    regular.log_in("alice", None).await;
    let waiting = app.browser();
    let callback = waiting.approve_login("alice", None).await;
    app.emulator
        .inject_fault(Endpoint::Authorize, Fault::Delay(HTTP_TIMEOUT * 3));
    let hanging = tokio::spawn(async move { waiting.visit(callback).await.status() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        let started = Instant::now();
        assert_logged_in_as(&regular, "1001").await;
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "/me took {:?} while Kvixi hangs",
            started.elapsed()
        );
    }
    assert_eq!(
        hanging.await.expect("the hanging login"),
        StatusCode::GATEWAY_TIMEOUT
    );
}

/// Flow answers are never cached nor leak the callback URL; starting a login gives the
/// browser only a short-lived login cookie scoped to the callback (no session); the
/// session cookie is out of scripts' reach and survives the redirect back from Kvixi.
pub async fn flow_answers_are_private_and_the_cookie_locked_down(start: StartApp) {
    let app = TestApp::start(start).await;
    let browser = app.browser();
    let login = browser.get("/auth/kvixi/login").await;
    let header = |name: &str| {
        login
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("referrer-policy"), "no-referrer");
    let set = set_cookies(&login);
    assert!(
        !set.iter()
            .any(|c| c.starts_with(&format!("{}=", kvixi_core::SESSION_COOKIE))),
        "an anonymous login start owns no session: {set:?}"
    );
    let pending = set
        .iter()
        .find(|c| c.starts_with(&format!("{}=", kvixi_core::flow::LOGIN_COOKIE)))
        .expect("the login sets the login cookie")
        .to_ascii_lowercase();
    for attribute in [
        "httponly",
        "samesite=lax",
        "path=/auth/kvixi/callback",
        "max-age=600",
    ] {
        assert!(pending.split("; ").any(|a| a == attribute), "{pending}");
    }
    assert!(
        !pending.contains("secure"),
        "plain-http redirect URL: {pending}"
    );

    let callback = browser
        .visit(browser.approve_login("alice", None).await)
        .await;
    let header = |name: &str| {
        callback
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    // The answer that carries the new session cookie: no cache may keep it.
    assert_eq!(header("cache-control"), "no-store", "the callback's answer");
    assert_eq!(
        header("referrer-policy"),
        "no-referrer",
        "the callback's answer"
    );
    let set = set_cookies(&callback);
    let session = set
        .iter()
        .find(|c| c.starts_with(&format!("{}=", kvixi_core::SESSION_COOKIE)))
        .expect("the callback sets the session cookie")
        .to_ascii_lowercase();
    assert!(session.contains("httponly"), "{session}");
    assert!(session.contains("samesite=lax"), "{session}");
    assert!(session.contains("path=/"), "{session}");
    assert!(
        !session.contains("secure"),
        "plain-http redirect URL: {session}"
    );
    assert_eq!(browser.login_cookie(), None, "the login cookie is cleared");
}

/// Every `Set-Cookie` header of a response.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// A copy of a used login cookie (stolen, or replayed by a script) buys no second call to
/// Kvixi and logs no one in, even with a fresh auth_key.
pub async fn replayed_login_cookie_buys_no_second_exchange(start: StartApp) {
    let app = TestApp::start(start).await;
    let victim = app.browser();
    let callback = victim.approve_login("alice", None).await;
    let copy = victim.login_cookie().expect("a pending login in the jar");
    assert_eq!(victim.visit(callback).await.status(), StatusCode::SEE_OTHER);

    let attacker = app.browser();
    attacker.set_login_cookie(&copy);
    let key = app
        .emulator
        .issue_auth_key(crate::APP_ID, "bob")
        .expect("key");
    let exchanges = app.emulator.request_count(Endpoint::Authorize);
    let replay = attacker
        .get(&format!("/auth/kvixi/callback?auth_key={key}"))
        .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.emulator.request_count(Endpoint::Authorize),
        exchanges,
        "no call to Kvixi for a used pending login"
    );
    assert_anonymous(&attacker).await;
    assert_eq!(attacker.login_cookie(), None, "cleared by the refusal too");
}

/// Two tabs race one callback with one login cookie: one call to Kvixi, one login.
pub async fn racing_callbacks_with_one_login_cookie_make_one_exchange(start: StartApp) {
    let app = TestApp::start(start).await;
    let first = app.browser();
    let second = app.browser();
    let callback = first.approve_login("alice", None).await;
    second.set_login_cookie(&first.login_cookie().expect("a pending login"));
    let exchanges = app.emulator.request_count(Endpoint::Authorize);
    let (a, b) = tokio::join!(first.visit(callback.clone()), second.visit(callback));
    let statuses = [a.status(), b.status()];
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::BAD_REQUEST), "{statuses:?}");
    assert_eq!(
        app.emulator.request_count(Endpoint::Authorize),
        exchanges + 1
    );
}

/// A forged or tampered login cookie is no pending login: 400, no call to Kvixi.
pub async fn forged_login_cookie_is_no_pending_login(start: StartApp) {
    let app = TestApp::start(start).await;
    let real = app.browser();
    real.approve_login("alice", None).await;
    let mut tampered = real.login_cookie().expect("a pending login").into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let exchanges = app.emulator.request_count(Endpoint::Authorize);
    for forged in [tampered.as_str(), "forged", "%00%ff", ""] {
        let browser = app.browser();
        browser.set_login_cookie(forged);
        let key = app
            .emulator
            .issue_auth_key(crate::APP_ID, "alice")
            .expect("key");
        let answer = browser
            .get(&format!("/auth/kvixi/callback?auth_key={key}"))
            .await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{forged:?}");
        assert_anonymous(&browser).await;
    }
    assert_eq!(app.emulator.request_count(Endpoint::Authorize), exchanges);
}
