//! Several instances behind a load balancer, sharing sessions in a real `redis-server`.

use reqwest::StatusCode;

use crate::{Browser, StartRedisApp, TestApp, loopback_listener, service};

/// Login through instance A, `/me` through instance B; logout through B, A refuses.
pub async fn two_instances_share_one_redis_session_store(start: StartRedisApp) {
    let Some(redis) = service::redis() else {
        return;
    };
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let mut stops = Vec::new();
    let app = TestApp::start_with(|kvixi, listener| {
        stops.push(start(kvixi, listener, redis_url.clone()));
    })
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

/// An instance stops and another starts: the logged-in browser stays logged in.
pub async fn redis_sessions_survive_an_app_restart(start: StartRedisApp) {
    let Some(redis) = service::redis() else {
        return;
    };
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let mut first = None;
    let app = TestApp::start_with(|kvixi, listener| {
        first = Some(start(kvixi, listener, redis_url.clone()));
    })
    .await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    assert_eq!(browser.get_json("/me").await.status(), StatusCode::OK);
    let cookie = browser.session_cookie().expect("session cookie");
    if let Some(stop) = first.take() {
        stop.stop();
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
