//! Sessions the app controls (issue 14): revoking a user everywhere, the absolute
//! session lifetime, and the app's own data beside the Kvixi user. Expanded for every
//! framework by [`session_scenarios!`](crate::session_scenarios!) and, on Redis, by
//! [`redis_session_scenarios!`](crate::redis_session_scenarios!).

use std::time::{Duration, Instant};

use kvixi_core::{Kvixi, RedisRevocations};
use reqwest::StatusCode;
use serde_json::Value;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config as RedisConfig, Pool};

use crate::{Browser, StartApp, StartRedisApp, TestApp, loopback_listener, raw_location, service};

/// alice's Kvixi user id in the emulator's fixture.
const ALICE_ID: &str = "1001";

async fn status_of_me(browser: &Browser) -> StatusCode {
    browser.get_json("/me").await.status()
}

/// Logs `user` in on a new browser; the callback must succeed.
async fn logged_in(app: &TestApp, user: &str) -> Browser {
    let browser = app.browser();
    let callback = browser.log_in(user, None).await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER, "{user} logs in");
    assert_eq!(status_of_me(&browser).await, StatusCode::OK, "{user}");
    browser
}

fn add_carol(app: &TestApp) {
    app.emulator
        .add_user(kvixi_mock::User::new("1003", "carol", "carol-password"));
}

/// `kvixi.revoke_user` from an admin task: every browser of the user is anonymous at
/// its next request (pages ask for login), other users are untouched, and the user can
/// log in again at once.
pub async fn revoke_user_logs_the_user_out_of_every_session(start: StartApp) {
    let app = TestApp::start(start).await;
    add_carol(&app);
    // One session of alice's per read path, so that each path's own check decides.
    let laptop = logged_in(&app, "alice").await;
    let phone = logged_in(&app, "alice").await;
    let tablet = logged_in(&app, "alice").await;
    let carol = logged_in(&app, "carol").await;

    app.kvixi.revoke_user(ALICE_ID).await.expect("revoked");
    assert_ended_on_each_read_path(&laptop, &phone, &tablet).await;
    assert_eq!(status_of_me(&carol).await, StatusCode::OK, "carol stays");

    let again = laptop.log_in("alice", None).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        status_of_me(&laptop).await,
        StatusCode::OK,
        "a login after the revocation counts"
    );
    assert_eq!(status_of_me(&phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of_me(&tablet).await, StatusCode::UNAUTHORIZED);
}

/// Each of three sessions whose end is due is read through one path only, first: the
/// JSON `/me` (401), the HTML `/private` (asked to log in, back to `/private`), and the
/// app data `AppUser` at `/me/app` (401). Then each is anonymous on the others too.
async fn assert_ended_on_each_read_path(json: &Browser, html: &Browser, app_user: &Browser) {
    assert_eq!(
        status_of_me(json).await,
        StatusCode::UNAUTHORIZED,
        "JSON /me"
    );
    let page = html.get("/private").await;
    assert_eq!(
        page.status(),
        StatusCode::SEE_OTHER,
        "HTML page: asked to log in"
    );
    assert_eq!(
        raw_location(&page),
        "/auth/kvixi/login?return_to=%2Fprivate"
    );
    assert_eq!(
        app_user.get_json("/me/app").await.status(),
        StatusCode::UNAUTHORIZED,
        "AppUser"
    );
    for browser in [json, html, app_user] {
        assert_eq!(status_of_me(browser).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            browser.get("/private").await.status(),
            StatusCode::SEE_OTHER
        );
    }
}

/// A user with two browsers presses "log out everywhere" in one: both are logged out,
/// another user is not; a GET does not do it.
pub async fn log_out_everywhere_ends_every_browser_of_the_user(start: StartApp) {
    let app = TestApp::start(start).await;
    add_carol(&app);
    let laptop = logged_in(&app, "alice").await;
    let phone = logged_in(&app, "alice").await;
    let carol = logged_in(&app, "carol").await;
    let path = app.kvixi.config().logout_everywhere_path().to_owned();

    let get = laptop.get(&path).await;
    assert_ne!(get.status(), StatusCode::SEE_OTHER, "a GET logs no one out");
    assert_eq!(status_of_me(&phone).await, StatusCode::OK);

    let done = laptop.post(&path).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(raw_location(&done), "/");
    assert_eq!(status_of_me(&laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status_of_me(&phone).await,
        StatusCode::UNAUTHORIZED,
        "the other browser too"
    );
    assert_eq!(status_of_me(&carol).await, StatusCode::OK, "carol stays");
}

/// However active, a session ends at the absolute lifetime after its login (7 days by
/// default): the next page asks for login, a JSON call gets 401. Each browser reads
/// within every idle timeout (a day by default) on the way, so that only the lifetime
/// can end it.
pub async fn absolute_lifetime_reached_asks_for_login(start: StartApp) {
    let app = TestApp::start(start).await;
    // One session per read path, so that each path's own check decides.
    let browser = logged_in(&app, "alice").await;
    let html = logged_in(&app, "alice").await;
    let app_user = logged_in(&app, "alice").await;
    let lifetime = app.kvixi.config().max_session_lifetime();
    let step = app.kvixi.config().idle_timeout() - Duration::from_secs(3600);

    let mut left = lifetime - Duration::from_secs(60);
    while !left.is_zero() {
        let by = left.min(step);
        app.advance_clock(by);
        left -= by;
        assert_eq!(
            status_of_me(&browser).await,
            StatusCode::OK,
            "still within the lifetime"
        );
        assert_eq!(html.get("/private").await.status(), StatusCode::OK);
        assert_eq!(app_user.get_json("/me/app").await.status(), StatusCode::OK);
    }
    app.advance_clock(Duration::from_secs(61));
    assert_ended_on_each_read_path(&browser, &html, &app_user).await;

    let again = browser.log_in("alice", None).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_of_me(&browser).await, StatusCode::OK, "a new login");
}

/// The session cookie a response sets (its whole `Set-Cookie` value).
fn session_set_cookie(response: &reqwest::Response) -> String {
    let prefix = format!("{}=", kvixi_core::SESSION_COOKIE);
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no session cookie set: {:?}", response.headers()))
        .to_owned()
}

/// Remember me (issue 30): a login started with `remember=1` (the sign-in page's box)
/// gets a persistent session cookie (`Max-Age`) and the remembered idle timeout; one
/// without it gets a browser-session cookie and ends after the default idle timeout,
/// on the suite's clock.
pub async fn remember_me_keeps_a_session_the_idle_timeout_would_end(start: StartApp) {
    let app = TestApp::start(start).await;
    let config = app.kvixi.config();
    let remembered_idle = kvixi_core::flow::session_idle_timeout(config, true);
    assert!(
        remembered_idle > config.idle_timeout(),
        "the defaults differ"
    );
    let plain = app.browser();
    let callback = plain
        .approve_login_from("/auth/kvixi/login?return_to=%2Fprivate", "alice")
        .await;
    let landed = plain.visit(callback).await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    let cookie = session_set_cookie(&landed).to_ascii_lowercase();
    assert!(
        !cookie.contains("max-age") && !cookie.contains("expires"),
        "not remembered: a browser-session cookie: {cookie}"
    );

    let remembered = app.browser();
    let callback = remembered
        .approve_login_from("/auth/kvixi/login?return_to=%2Fprivate&remember=1", "alice")
        .await;
    let landed = remembered.visit(callback).await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    assert_eq!(raw_location(&landed), "/private");
    let cookie = session_set_cookie(&landed).to_ascii_lowercase();
    let max_age = format!("max-age={}", remembered_idle.as_secs());
    assert!(
        cookie.contains(&max_age),
        "remembered: kept for the remembered idle timeout ({max_age}): {cookie}"
    );
    assert_eq!(status_of_me(&plain).await, StatusCode::OK);
    assert_eq!(status_of_me(&remembered).await, StatusCode::OK);

    // Past the idle timeout without a request: only the remembered one is still in.
    app.advance_clock(config.idle_timeout() + Duration::from_secs(60));
    assert_eq!(
        status_of_me(&plain).await,
        StatusCode::UNAUTHORIZED,
        "idle for longer than the idle timeout"
    );
    assert_eq!(
        status_of_me(&remembered).await,
        StatusCode::OK,
        "remembered"
    );
    assert_eq!(remembered.get("/private").await.status(), StatusCode::OK);
}

/// What `on_login` returned (the e2e app's `Member`) comes back typed through the
/// adapter's `AppUser<Member>`, next to the Kvixi user.
pub async fn app_data_round_trips_typed(start: StartApp) {
    let app = TestApp::start(start).await;
    let anonymous = app.browser().get_json("/me/app").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Two users with different data (carol is not verified), logged in one after the
    // other and read in turn: each gets their own.
    add_carol(&app);
    let alice = logged_in(&app, "alice").await;
    let carol = logged_in(&app, "carol").await;
    let alice_data = serde_json::json!({
        "user_id": ALICE_ID,
        "local_id": 11001,
        "roles": ["member", "verified"],
        "logins": 1,
    });
    let carol_data = serde_json::json!({
        "user_id": "1003",
        "local_id": 11003,
        "roles": ["member"],
        "logins": 1,
    });
    for (browser, expected) in [
        (&alice, &alice_data),
        (&carol, &carol_data),
        (&alice, &alice_data),
    ] {
        let answer = browser.get_json("/me/app").await;
        assert_eq!(answer.status(), StatusCode::OK);
        let mut body: Value = answer.json().await.expect("JSON");
        // When the member was made: set by the app at login, a Unix time.
        let first_seen = body
            .as_object_mut()
            .and_then(|member| member.remove("first_seen"));
        assert!(
            first_seen.as_ref().is_some_and(Value::is_u64),
            "first_seen: {first_seen:?}"
        );
        assert_eq!(&body, expected, "each user reads their own app data");
    }
}

/// alice's sessions as "your devices" lists them to `browser`: `(handle, current)` each,
/// newest first, after checking the shape of every entry.
async fn devices(browser: &Browser) -> Vec<(String, bool, String)> {
    let list = browser.get_json("/auth/kvixi/sessions").await;
    assert_eq!(list.status(), StatusCode::OK, "the list");
    let list: Value = list.json().await.expect("JSON");
    let sessions = list["sessions"].as_array().expect("a list");
    let mut newest = u64::MAX;
    sessions
        .iter()
        .map(|session| {
            let logged_in_at = session["logged_in_at"].as_u64().expect("logged_in_at");
            assert!(logged_in_at <= newest, "newest first: {list}");
            newest = logged_in_at;
            assert!(
                session["last_seen"].as_u64().expect("last_seen") >= logged_in_at,
                "{session}"
            );
            (
                session["handle"].as_str().expect("handle").to_owned(),
                session["current"].as_bool().expect("current"),
                session["browser"].as_str().expect("browser").to_owned(),
            )
        })
        .collect()
}

/// "Your devices" (issue 30): three browsers of alice and one of bob. alice's list
/// shows exactly her three, the asking one marked current, each named by its browser
/// family only, with no handle a cookie could be made from. Ending the second from the
/// first logs the second out (and out of the list) while the third and bob stay logged
/// in; a handle of bob's, or anything that is not a handle, is a 404 to alice and bob
/// stays in; an API client gets JSON; nobody logged in gets 401.
pub async fn your_devices_lists_and_ends_one_session(start: StartApp) {
    let app = TestApp::start(start).await;
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let first = Browser::with_user_agent(app.base.clone(), Some(firefox));
    assert_eq!(
        first.log_in("alice", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let second = logged_in(&app, "alice").await;
    let third = logged_in(&app, "alice").await;
    let bob_app = app.browser();
    // bob is refused by the suite's app; carol is the other user here.
    add_carol(&app);
    assert_eq!(
        bob_app.log_in("carol", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let carol = bob_app;

    let listed = devices(&first).await;
    assert_eq!(listed.len(), 3, "alice's three sessions: {listed:?}");
    let current: Vec<_> = listed.iter().filter(|(_, current, _)| *current).collect();
    assert_eq!(current.len(), 1, "one current: {listed:?}");
    assert_eq!(
        current[0].2, "Firefox on Linux",
        "the family, not the header"
    );
    let cookies: Vec<String> = [&first, &second, &third]
        .iter()
        .filter_map(|browser| browser.session_cookie())
        .collect();
    for (handle, _, _) in &listed {
        assert_eq!(handle.len(), 32, "an opaque handle: {handle}");
        for cookie in &cookies {
            assert!(
                !cookie.contains(handle.as_str()),
                "the handle is not in a cookie"
            );
        }
        let forged = Browser::new(app.base.clone());
        forged.set_session_cookie(handle);
        assert_eq!(
            status_of_me(&forged).await,
            StatusCode::UNAUTHORIZED,
            "a handle opens nothing"
        );
    }
    // The example's account page: each session with its own "Log out this device".
    let page = first.get("/account").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("body");
    assert_eq!(page.matches("Log out this device").count(), 3, "{page}");
    for (handle, _, _) in &listed {
        assert!(
            page.contains(&format!("value=\"{handle}\"")),
            "{handle} on the page"
        );
    }
    // The page marks the device it was asked from, and only that one.
    let marked: Vec<&str> = page
        .split("<li class=\"device\">")
        .filter(|row| row.contains("(this device)"))
        .collect();
    assert_eq!(marked.len(), 1, "one device marked as this one: {page}");
    let own = &current[0].0;
    assert!(
        marked[0].contains(&format!("value=\"{own}\"")),
        "the marked device is the one asking ({own}): {page}"
    );
    let second_handle = devices(&second)
        .await
        .into_iter()
        .find(|(_, current, _)| *current)
        .expect("the second's own")
        .0;
    let carol_handle = devices(&carol).await.remove(0).0;

    // Another user's handle, or no handle at all: a 404 that says nothing more.
    for form in [
        format!("handle={carol_handle}"),
        "handle=not-a-handle".to_owned(),
        String::new(),
    ] {
        let refused = first
            .post_form("/auth/kvixi/sessions/end", &form, true)
            .await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{form}");
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["error"], "unknown_session");
    }
    assert_eq!(status_of_me(&carol).await, StatusCode::OK, "carol stays");

    let ended = first
        .post_form(
            "/auth/kvixi/sessions/end",
            &format!("handle={second_handle}&return_to=%2Faccount"),
            false,
        )
        .await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert_eq!(raw_location(&ended), "/account");
    assert_eq!(
        status_of_me(&second).await,
        StatusCode::UNAUTHORIZED,
        "the second is out"
    );
    assert_eq!(
        status_of_me(&first).await,
        StatusCode::OK,
        "the first stays"
    );
    assert_eq!(
        status_of_me(&third).await,
        StatusCode::OK,
        "the third stays"
    );
    assert_eq!(status_of_me(&carol).await, StatusCode::OK, "carol stays");
    let left: Vec<_> = devices(&first)
        .await
        .into_iter()
        .map(|(h, _, _)| h)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        !left.contains(&second_handle),
        "the ended one is not listed"
    );
    // Ended once: a second try is a 404.
    let again = first
        .post_form(
            "/auth/kvixi/sessions/end",
            &format!("handle={second_handle}"),
            true,
        )
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // An API client ending its own session: JSON, and it is logged out.
    let third_handle = devices(&third)
        .await
        .into_iter()
        .find(|(_, current, _)| *current)
        .expect("the third's own")
        .0;
    let own = third
        .post_form(
            "/auth/kvixi/sessions/end",
            &format!("handle={third_handle}"),
            true,
        )
        .await;
    assert_eq!(own.status(), StatusCode::OK);
    let body: Value = own.json().await.expect("JSON");
    assert_eq!(body["ended"], third_handle.as_str());
    assert_eq!(status_of_me(&third).await, StatusCode::UNAUTHORIZED);

    let anonymous = app.browser();
    let list = anonymous.get_json("/auth/kvixi/sessions").await;
    assert_eq!(list.status(), StatusCode::UNAUTHORIZED);
    let end = anonymous
        .post_form(
            "/auth/kvixi/sessions/end",
            &format!("handle={carol_handle}"),
            true,
        )
        .await;
    assert_eq!(end.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(status_of_me(&carol).await, StatusCode::OK, "carol stays");
}

/// "Your devices" keeps `last_seen` at the renewals of a session in use; a session not
/// read since its login keeps its login time: a 12 s idle timeout renews a
/// session read two seconds after its login (renewals come every sixth of it); the
/// flow's clock, moved 5 s on, dates that renewal.
pub async fn your_devices_last_seen_follows_the_renewals(start: StartApp) {
    let app = TestApp::start_configured(
        start,
        |config| config.idle_timeout(Duration::from_secs(12)),
        |builder| builder,
    )
    .await;
    let busy = logged_in(&app, "alice").await;
    let idle = logged_in(&app, "alice").await;
    let seen = |list: &Value, current: bool| {
        let session = list["sessions"]
            .as_array()
            .expect("a list")
            .iter()
            .find(|s| s["current"] == current)
            .expect("the session")
            .clone();
        (
            session["logged_in_at"].as_u64().expect("logged_in_at"),
            session["last_seen"].as_u64().expect("last_seen"),
        )
    };
    let before: Value = busy
        .get_json("/auth/kvixi/sessions")
        .await
        .json()
        .await
        .expect("JSON");
    let (logged_in_at, last_seen) = seen(&before, true);
    assert_eq!(last_seen, logged_in_at, "seen at its login");

    tokio::time::sleep(Duration::from_millis(2_300)).await;
    app.advance_clock(Duration::from_secs(5));
    assert_eq!(
        status_of_me(&busy).await,
        StatusCode::OK,
        "a read that renews"
    );
    let after: Value = busy
        .get_json("/auth/kvixi/sessions")
        .await
        .json()
        .await
        .expect("JSON");
    let (_, busy_seen) = seen(&after, true);
    assert_eq!(busy_seen, logged_in_at + 5, "seen at the renewal: {after}");
    let (idle_login, idle_seen) = seen(&after, false);
    assert_eq!(
        idle_seen, idle_login,
        "the other was not read since: {after}"
    );
    assert_eq!(status_of_me(&idle).await, StatusCode::OK);
}

/// A fred pool on the Redis at `url`, of one instance's own.
async fn redis_pool(url: &str) -> Pool {
    let pool = Pool::new(
        RedisConfig::from_url(url).expect("redis URL"),
        None,
        None,
        None,
        1,
    )
    .expect("redis pool");
    pool.init().await.expect("redis connects");
    pool
}

/// How long a revocation may take to reach another instance: its stamp cache (1 s by
/// default) and half a second.
const ACROSS_INSTANCES: Duration =
    Duration::from_millis(kvixi_core::DEFAULT_REVOCATION_CACHE.as_millis() as u64 + 500);

/// Two servers in one process, each with its own flow, its own Redis client and its own
/// revocation cache, sharing sessions and revocation stamps only through Redis: revoking
/// alice on A logs her out on A at once and on B within B's cache time plus 0.5 s;
/// carol on B stays logged in. (The same across separate processes, as a deployment
/// runs them: the fleet's `three_instances_one_redis`.)
pub async fn revocation_reaches_a_second_flow_on_the_same_redis_in_one_process(
    start: StartRedisApp,
) {
    let Some(redis) = service::redis() else {
        return;
    };
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let (pool_a, pool_b) = (redis_pool(&redis_url).await, redis_pool(&redis_url).await);
    let mut stops = Vec::new();
    let app = TestApp::start_customized(
        |kvixi, listener| stops.push(start(kvixi, listener, redis_url.clone())),
        |builder| builder.revocations(RedisRevocations::new(pool_a)),
    )
    .await;
    let kvixi_b = Kvixi::builder(app.kvixi.config().clone())
        .revocations(RedisRevocations::new(pool_b))
        .build()
        .expect("flow builds");
    let (listener_b, base_b) = loopback_listener();
    stops.push(start(kvixi_b, listener_b, redis_url.clone()));

    let on_a = logged_in(&app, "alice").await;
    // Another session of alice's, opened through A and used only on B from then on.
    let opened = logged_in(&app, "alice").await;
    let on_b = Browser::new(base_b.clone());
    on_b.set_session_cookie(&opened.session_cookie().expect("session cookie"));
    assert_eq!(status_of_me(&on_b).await, StatusCode::OK, "B shares it");
    // Another user, logged in through A and browsing on B: not affected.
    app.emulator
        .add_user(kvixi_mock::User::new("1003", "carol", "carol-password"));
    let carol_on_a = logged_in(&app, "carol").await;
    let carol = Browser::new(base_b);
    carol.set_session_cookie(&carol_on_a.session_cookie().expect("session cookie"));
    assert_eq!(status_of_me(&carol).await, StatusCode::OK, "carol on B");

    app.kvixi.revoke_user(ALICE_ID).await.expect("revoked on A");
    assert_eq!(
        status_of_me(&on_a).await,
        StatusCode::UNAUTHORIZED,
        "at once on A"
    );
    // B may still trust the "not revoked" it cached before: for about a second.
    let deadline = Instant::now() + ACROSS_INSTANCES;
    let mut took = None;
    let revoked_at = Instant::now();
    while Instant::now() < deadline {
        if status_of_me(&on_b).await == StatusCode::UNAUTHORIZED {
            took = Some(revoked_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = took.unwrap_or_else(|| {
        panic!("B still serves alice {ACROSS_INSTANCES:?} after the revocation (its cache time + 0.5 s)")
    });
    eprintln!("the revocation reached instance B in {took:?}");
    assert_eq!(
        status_of_me(&carol).await,
        StatusCode::OK,
        "only alice is revoked: carol stays logged in on B"
    );
    drop(stops);
}

/// Expands the session scenarios into one `#[tokio::test]` each for `start`, a
/// [`StartApp`].
#[macro_export]
macro_rules! session_scenarios {
    ($start:path) => {
        $crate::session_scenarios!(@each $start;
            revoke_user_logs_the_user_out_of_every_session,
            log_out_everywhere_ends_every_browser_of_the_user,
            absolute_lifetime_reached_asks_for_login,
            app_data_round_trips_typed,
            remember_me_keeps_a_session_the_idle_timeout_would_end,
            your_devices_lists_and_ends_one_session,
            your_devices_last_seen_follows_the_renewals,
        );
    };
    (@each $start:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::session_scenarios::$name($start).await
            }
        )*
    };
}

/// Expands the Redis session scenarios for all three frameworks, one module each.
#[macro_export]
macro_rules! redis_session_scenarios {
    () => {
        mod sessions {
            mod axum {
                $crate::session_scenarios!(@each $crate::apps::axum_redis;
                    revocation_reaches_a_second_flow_on_the_same_redis_in_one_process);
            }
            mod actix {
                $crate::session_scenarios!(@each $crate::apps::actix_redis;
                    revocation_reaches_a_second_flow_on_the_same_redis_in_one_process);
            }
            mod rocket {
                $crate::session_scenarios!(@each $crate::apps::rocket_redis;
                    revocation_reaches_a_second_flow_on_the_same_redis_in_one_process);
            }
        }
    };
}
