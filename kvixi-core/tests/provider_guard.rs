//! While Kvixi is slow or down, a callback costs bounded resources: the bound on calls
//! in flight and the circuit breaker, through the driver against the emulator.

use std::time::{Duration, Instant};

use kvixi_core::{Config, Error, Kvixi, MemorySession, STALL_FLOOR};
use kvixi_mock::{App, Emulator, Endpoint, Fault};

const CALLBACK: &str = "http://localhost:3000/auth/kvixi/callback";

async fn setup(
    configure: impl FnOnce(kvixi_core::ConfigBuilder) -> kvixi_core::ConfigBuilder,
) -> (Emulator, Kvixi) {
    let emulator = Emulator::builder()
        .app(App::new("app", "secret", CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let config =
        configure(Config::builder("app", "secret", CALLBACK).base_url(emulator.base_url()))
            .build()
            .expect("valid config");
    (emulator, Kvixi::new(config).expect("flow builds"))
}

/// A callback with a fresh pending login and `auth_key`: its outcome and the pending
/// login's cookie (to try again with).
async fn callback(kvixi: &Kvixi, auth_key: &str) -> (Result<(), Error>, String, MemorySession) {
    let started = kvixi.login(None);
    let session = MemorySession::default();
    let query = format!("auth_key={auth_key}");
    let outcome = kvixi
        .callback(&session, Some(&query), Some(&started.login_cookie))
        .await
        .map(drop);
    (outcome, started.login_cookie, session)
}

/// A login of alice's through `kvixi`, start to end.
async fn log_in(emulator: &Emulator, kvixi: &Kvixi) -> Result<(), Error> {
    let key = emulator.issue_auth_key("app", "alice").expect("a key");
    callback(kvixi, &key).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_behind_a_stalled_kvixi_are_busy_at_once_and_keep_their_login() {
    let (emulator, kvixi) = setup(|config| config.max_provider_calls(2)).await;
    // The flow has timed a login: Kvixi answers in milliseconds.
    log_in(&emulator, &kvixi).await.expect("a login");
    emulator.inject_fault(Endpoint::Authorize, Fault::Delay(Duration::from_secs(2)));
    let mut calls = Vec::new();
    for n in 0..6 {
        let kvixi = kvixi.clone();
        calls.push(tokio::spawn(async move {
            let started = Instant::now();
            let (outcome, cookie, _) = callback(&kvixi, &format!("bogus-key-{n}")).await;
            (outcome, cookie, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        emulator.request_count(Endpoint::Authorize),
        3,
        "Kvixi sees at most the bound at once (after the first login's call)"
    );
    let mut busy = Vec::new();
    for call in calls {
        let (outcome, cookie, took) = call.await.expect("the task ends");
        match outcome {
            Err(Error::ProviderBusy { retry_after }) => {
                // Waiting, they see no slot change hands for STALL_FLOOR: Kvixi stalled.
                assert!(
                    took < STALL_FLOOR + Duration::from_millis(300),
                    "busy after {took:?}"
                );
                assert_eq!(retry_after, 1);
                busy.push(cookie);
            }
            // The two that got a slot: Kvixi refused their bogus keys, after the delay.
            Err(Error::AuthKeyRejected { .. }) => assert!(took >= Duration::from_secs(2)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(busy.len(), 4, "6 callbacks, 2 slots");
    assert_eq!(emulator.request_count(Endpoint::Authorize), 3);

    // The busy callbacks' pending logins were not spent: each finishes now.
    emulator.clear_faults();
    for cookie in busy {
        let key = emulator.issue_auth_key("app", "alice").expect("a key");
        let query = format!("auth_key={key}");
        let session = MemorySession::default();
        kvixi
            .callback(&session, Some(&query), Some(&cookie))
            .await
            .expect("the same login cookie logs in once Kvixi has room");
    }
}

/// 300 logins at once against a Kvixi answering every call after 100 ms, 64 slots: each
/// waits its turn (about 0.5 s for the last) and logs in; Kvixi never sees more than 64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_logins_against_a_healthy_kvixi_waits_in_line_and_all_log_in() {
    const LOGINS: usize = 300;
    let (emulator, kvixi) = setup(|config| config).await;
    let delay = Fault::Delay(Duration::from_millis(100));
    emulator.inject_fault(Endpoint::Authorize, delay.clone());
    emulator.inject_fault(Endpoint::UserInfo, delay);
    let logins: Vec<_> = (0..LOGINS)
        .map(|_| {
            let kvixi = kvixi.clone();
            let key = emulator.issue_auth_key("app", "alice").expect("a key");
            tokio::spawn(async move { callback(&kvixi, &key).await.0 })
        })
        .collect();
    let mut failed = Vec::new();
    for login in logins {
        if let Err(error) = login.await.expect("the task ends") {
            failed.push(error.code());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {LOGINS} failed: {failed:?}",
        failed.len()
    );
    assert_eq!(emulator.request_count(Endpoint::Authorize), LOGINS as u64);
}

#[tokio::test]
async fn a_failing_kvixi_opens_the_breaker_and_its_recovery_closes_it() {
    let cool_down = Duration::from_millis(1500);
    let (emulator, kvixi) =
        setup(|config| config.provider_breaker(3, Duration::from_secs(10), cool_down)).await;
    emulator.inject_fault(Endpoint::Authorize, Fault::Status(500));
    for _ in 0..3 {
        let (outcome, _, _) = callback(&kvixi, "some-key").await;
        assert!(
            matches!(outcome, Err(Error::ProviderStatus { status: 500 })),
            "{outcome:?}"
        );
    }
    assert_eq!(emulator.request_count(Endpoint::Authorize), 3);

    // Open: answered at once, no call to Kvixi, the pending login unspent.
    let started = Instant::now();
    let (outcome, cookie, _) = callback(&kvixi, "some-key").await;
    assert!(started.elapsed() < Duration::from_millis(100));
    match outcome {
        Err(error @ Error::ProviderCircuitOpen { .. }) => {
            assert_eq!(error.status(), 503);
            assert_eq!(error.code(), "provider_unavailable");
            assert!(error.retry_after().is_some_and(|s| (1..=2).contains(&s)));
        }
        other => panic!("expected the breaker's refusal, got {other:?}"),
    }
    assert_eq!(
        emulator.request_count(Endpoint::Authorize),
        3,
        "with the breaker open, a callback costs no call to Kvixi"
    );

    // Kvixi heals; after the cool-down the probe goes through and closes it.
    emulator.clear_faults();
    tokio::time::sleep(cool_down + Duration::from_millis(100)).await;
    let key = emulator.issue_auth_key("app", "alice").expect("a key");
    let query = format!("auth_key={key}");
    kvixi
        .callback(&MemorySession::default(), Some(&query), Some(&cookie))
        .await
        .expect("the refused login's cookie works once Kvixi is back");
    let (outcome, _, _) = callback(&kvixi, "bogus").await;
    assert!(
        matches!(outcome, Err(Error::AuthKeyRejected { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn bogus_keys_against_a_healthy_kvixi_never_open_the_breaker() {
    let (emulator, kvixi) = setup(|config| {
        config.provider_breaker(3, Duration::from_secs(10), Duration::from_secs(30))
    })
    .await;
    for n in 0..30 {
        let (outcome, _, _) = callback(&kvixi, &format!("bogus-{n}")).await;
        assert!(
            matches!(outcome, Err(Error::AuthKeyRejected { .. })),
            "callback {n}: {outcome:?}"
        );
    }
    assert_eq!(emulator.request_count(Endpoint::Authorize), 30);
}
