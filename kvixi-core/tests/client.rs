//! The Kvixi client and the flow driver against the real emulator on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kvixi_core::{
    AccessToken, AuthKey, Config, Error, Kvixi, KvixiClient, LoginRefused, MemorySession,
    SessionStorage, UnixTime,
};
use kvixi_mock::{App, Emulator, Endpoint, Fault};

const APP_ID: &str = "test-app";
const SECRET: &str = "s3cr3t-app-secret-value";
const CALLBACK: &str = "http://localhost:3000/auth/kvixi/callback";

async fn emulator() -> Emulator {
    Emulator::builder()
        .app(App::new(APP_ID, SECRET, CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("emulator starts")
}

fn config_for(mock: &Emulator, secret: &str) -> Config {
    Config::builder(APP_ID, secret, CALLBACK)
        .base_url(mock.base_url())
        .http_timeout(Duration::from_millis(800))
        .build()
        .expect("valid config")
}

fn client(mock: &Emulator) -> KvixiClient {
    KvixiClient::new(config_for(mock, SECRET)).expect("client builds")
}

fn key(mock: &Emulator, user: &str) -> AuthKey {
    AuthKey::new(mock.issue_auth_key(APP_ID, user).expect("key issued"))
}

/// Asserts that neither `Display` nor `Debug` of `error` leaks any of `secrets`.
fn assert_no_secret(error: &Error, secrets: &[&str]) {
    let shown = format!("{error} {error:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "{shown:?} leaks {secret:?}");
    }
}

#[tokio::test]
async fn happy_path_exchanges_the_key_and_reads_the_profile() {
    let mock = emulator().await;
    let client = client(&mock);
    let token = client.authorize(&key(&mock, "alice")).await.unwrap();
    let user = client.user_info(&token).await.unwrap();
    assert_eq!(user.id, "1001");
    assert_eq!(user.name.as_deref(), Some("alice"));
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert!(user.verified);
    let bob_token = client.authorize(&key(&mock, "bob")).await.unwrap();
    let bob = client.user_info(&bob_token).await.unwrap();
    assert_eq!(bob.name.as_deref(), Some("bob"));
    assert_eq!(bob.email, None, "bob's empty fields are None");
}

#[tokio::test]
async fn reused_auth_key_is_refused() {
    let mock = emulator().await;
    let client = client(&mock);
    let auth_key = key(&mock, "alice");
    client.authorize(&auth_key).await.unwrap();
    let err = client.authorize(&auth_key).await.unwrap_err();
    assert!(matches!(err, Error::AuthKeyRejected { .. }), "{err:?}");
    assert_eq!(err.status(), 400);
    assert_no_secret(&err, &[SECRET, auth_key.secret()]);
}

#[tokio::test]
async fn wrong_secret_is_a_configuration_error() {
    let mock = emulator().await;
    let client = KvixiClient::new(config_for(&mock, "wrong-secret-value")).unwrap();
    let auth_key = key(&mock, "alice");
    let err = client.authorize(&auth_key).await.unwrap_err();
    assert!(
        matches!(err, Error::AppCredentialsRejected { .. }),
        "{err:?}"
    );
    assert_no_secret(&err, &["wrong-secret-value", auth_key.secret()]);
}

#[tokio::test]
async fn unknown_app_is_a_configuration_error() {
    let mock = emulator().await;
    let config = Config::builder("no-such-app", SECRET, CALLBACK)
        .base_url(mock.base_url())
        .build()
        .unwrap();
    let err = KvixiClient::new(config)
        .unwrap()
        .authorize(&key(&mock, "alice"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AppCredentialsRejected { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn token_expires_when_the_emulator_clock_moves_past_an_hour() {
    let mock = emulator().await;
    let client = client(&mock);
    let token = client.authorize(&key(&mock, "alice")).await.unwrap();
    client.user_info(&token).await.unwrap();
    mock.advance_clock(Duration::from_secs(3601));
    let err = client.user_info(&token).await.unwrap_err();
    assert!(matches!(err, Error::TokenExpired), "{err:?}");
    assert_no_secret(&err, &[token.secret()]);
}

#[tokio::test]
async fn provider_failures_are_distinct_and_within_the_timeout() {
    let mock = emulator().await;
    let client = client(&mock);
    let timeout = client.config().http_timeout();
    let cases: [(Fault, &str); 5] = [
        (Fault::Status(500), "provider_status"),
        (Fault::MalformedJson, "provider_malformed"),
        (
            Fault::OversizedBody(10 * 1024 * 1024),
            "provider_body_too_large",
        ),
        (Fault::Delay(Duration::from_secs(5)), "provider_timeout"),
        (
            Fault::Body(r#"{"error":true,"message":"Please try again later"}"#.into()),
            "provider_error",
        ),
    ];
    for (fault, code) in cases {
        mock.inject_fault(Endpoint::Authorize, fault.clone());
        let auth_key = key(&mock, "alice");
        let started = Instant::now();
        let err = client.authorize(&auth_key).await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(err.code(), code, "{fault:?} gave {err:?}");
        assert!(err.status() >= 502, "{err:?}");
        assert!(
            elapsed < timeout + Duration::from_millis(500),
            "{fault:?} took {elapsed:?}"
        );
        assert_no_secret(&err, &[SECRET, auth_key.secret()]);
        mock.clear_faults();
    }
}

#[tokio::test]
async fn profile_without_user_id_is_malformed() {
    let mock = emulator().await;
    let client = client(&mock);
    let token = client.authorize(&key(&mock, "alice")).await.unwrap();
    for body in ["[]", r#"{"user_info":{"user_name":"x"}}"#] {
        mock.inject_fault(Endpoint::UserInfo, Fault::Body(body.into()));
        let err = client.user_info(&token).await.unwrap_err();
        assert!(
            matches!(err, Error::ProviderMalformed { .. }),
            "{body}: {err:?}"
        );
        assert_no_secret(&err, &[token.secret(), SECRET]);
    }
}

#[tokio::test]
async fn provider_echoing_the_secret_is_redacted() {
    let mock = emulator().await;
    let client = client(&mock);
    let auth_key = key(&mock, "alice");
    let echo = format!(
        r#"{{"error":true,"message":"bad secret {SECRET} for key {}"}}"#,
        auth_key.secret()
    );
    mock.inject_fault(Endpoint::Authorize, Fault::Body(echo));
    let err = client.authorize(&auth_key).await.unwrap_err();
    assert!(err.to_string().contains("[REDACTED]"), "{err}");
    assert_no_secret(&err, &[SECRET, auth_key.secret()]);
}

#[tokio::test]
async fn unreachable_provider_is_503_without_the_url() {
    // Bind then drop a listener: its port now refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::builder(APP_ID, SECRET, CALLBACK)
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let auth_key = AuthKey::new("some-auth-key-value");
    let err = KvixiClient::new(config)
        .unwrap()
        .authorize(&auth_key)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ProviderUnreachable { .. }), "{err:?}");
    assert_eq!(err.status(), 503);
    assert_no_secret(&err, &[SECRET, auth_key.secret(), "app_secret="]);
}

/// A flow whose clock the test moves.
fn driver(mock: &Emulator, clock: Arc<AtomicU64>) -> kvixi_core::KvixiBuilder {
    Kvixi::builder(config_for(mock, SECRET)).clock(move || UnixTime(clock.load(Ordering::SeqCst)))
}

async fn log_in(
    kvixi: &Kvixi,
    mock: &Emulator,
    session: &MemorySession,
) -> Result<kvixi_core::LoggedIn, Error> {
    let started = kvixi.login(Some("return_to=%2Fprivate"));
    let auth_key = mock.issue_auth_key(APP_ID, "alice").expect("key issued");
    kvixi
        .callback(
            session,
            Some(&format!("auth_key={auth_key}")),
            Some(&started.login_cookie),
        )
        .await
}

#[tokio::test]
async fn driver_logs_in_rotates_the_session_and_logs_out() {
    let mock = emulator().await;
    let kvixi = driver(&mock, Arc::new(AtomicU64::new(1_000_000)))
        .build()
        .unwrap();
    let session = MemorySession::default();
    session.insert("cart", "[1,2]".into()).await.unwrap();
    let before = session.id();
    let logged_in = log_in(&kvixi, &mock, &session).await.unwrap();
    assert_eq!(logged_in.return_to.as_str(), "/private");
    assert_ne!(session.id(), before, "session id rotated at login");
    assert_eq!(
        session.get("cart").await.unwrap().as_deref(),
        Some("[1,2]"),
        "app data survives the login"
    );
    assert!(kvixi.current_token(&session).await.unwrap().is_some());
    kvixi.logout(&session).await.unwrap();
    assert_eq!(kvixi.current_user(&session).await.unwrap(), None);
    assert_eq!(session.get("cart").await.unwrap(), None);
}

#[tokio::test]
async fn replayed_callback_logs_no_one_in() {
    let mock = emulator().await;
    let kvixi = driver(&mock, Arc::new(AtomicU64::new(1_000_000)))
        .build()
        .unwrap();
    let session = MemorySession::default();
    let cookie = kvixi.login(None).login_cookie;
    let auth_key = mock.issue_auth_key(APP_ID, "alice").unwrap();
    let query = format!("auth_key={auth_key}");
    kvixi
        .callback(&session, Some(&query), Some(&cookie))
        .await
        .unwrap();
    kvixi.logout(&session).await.unwrap();
    let exchanges = mock.request_count(kvixi_mock::Endpoint::Authorize);
    let err = kvixi
        .callback(&session, Some(&query), Some(&cookie))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoPendingLogin), "{err:?}");
    assert_eq!(
        mock.request_count(kvixi_mock::Endpoint::Authorize),
        exchanges,
        "a replayed login cookie buys no second call to Kvixi"
    );
    let err = kvixi
        .callback(&session, Some(&query), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoPendingLogin), "{err:?}");
    // Even with a fresh pending login, Kvixi refuses the used key.
    let fresh = kvixi.login(None).login_cookie;
    let err = kvixi
        .callback(&session, Some(&query), Some(&fresh))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthKeyRejected { .. }), "{err:?}");
    assert_eq!(kvixi.current_user(&session).await.unwrap(), None);
}

#[tokio::test]
async fn callback_after_ten_minutes_is_refused_without_a_call_to_kvixi() {
    let mock = emulator().await;
    let now = Arc::new(AtomicU64::new(1_000_000));
    let kvixi = driver(&mock, now.clone()).build().unwrap();
    let session = MemorySession::default();
    let cookie = kvixi.login(None).login_cookie;
    now.fetch_add(601, Ordering::SeqCst);
    let auth_key = mock.issue_auth_key(APP_ID, "alice").unwrap();
    let query = format!("auth_key={auth_key}");
    let exchanges = mock.request_count(kvixi_mock::Endpoint::Authorize);
    for _ in 0..2 {
        let err = kvixi
            .callback(&session, Some(&query), Some(&cookie))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PendingLoginExpired { .. }), "{err:?}");
    }
    assert_eq!(
        mock.request_count(kvixi_mock::Endpoint::Authorize),
        exchanges
    );
    // Another first character (whatever it was): no longer what the key sealed.
    let first = if cookie.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{first}{}", &cookie[1..]);
    let err = kvixi
        .callback(&session, Some(&query), Some(&tampered))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoPendingLogin), "{err:?}");
}

#[tokio::test]
async fn on_login_refusal_stores_nothing() {
    let mock = emulator().await;
    let kvixi = driver(&mock, Arc::new(AtomicU64::new(1_000_000)))
        .on_login(|user, _token| async move {
            if user.name.as_deref() == Some("alice") {
                Err(LoginRefused::new("alice is banned here"))
            } else {
                Ok(())
            }
        })
        .build()
        .unwrap();
    let session = MemorySession::default();
    let before = session.id();
    let err = log_in(&kvixi, &mock, &session).await.unwrap_err();
    assert!(matches!(err, Error::LoginRefused { .. }), "{err:?}");
    assert_eq!(err.status(), 403);
    assert_eq!(session.id(), before, "no rotation for a refused login");
    assert_eq!(kvixi.current_user(&session).await.unwrap(), None);
}

#[tokio::test]
async fn remember_me_asked_at_the_login_start_keeps_the_session_longer() {
    let mock = emulator().await;
    let kvixi = driver(&mock, Arc::new(AtomicU64::new(1_000_000)))
        .build()
        .unwrap();
    for (query, remembered) in [
        ("return_to=%2Fprivate", None),
        (
            "return_to=%2Fprivate&remember=1",
            // 30 days asked, bounded by the 7-day lifetime.
            Some(Duration::from_secs(7 * 24 * 3600)),
        ),
    ] {
        let session = MemorySession::default();
        let started = kvixi.login(Some(query));
        let auth_key = mock.issue_auth_key(APP_ID, "alice").expect("key issued");
        let query = format!("auth_key={auth_key}");
        kvixi
            .callback(&session, Some(&query), Some(&started.login_cookie))
            .await
            .unwrap();
        assert_eq!(session.remembered(), remembered);
        let record = kvixi.auth_record(&session).await.unwrap().unwrap();
        assert_eq!(record.remembered, remembered.is_some());
    }
}

#[tokio::test]
async fn on_login_that_cannot_decide_is_a_503_not_a_refusal() {
    // The examples' hook when their database is down: an outage, not "not allowed".
    let mock = emulator().await;
    let kvixi = driver(&mock, Arc::new(AtomicU64::new(1_000_000)))
        .on_login(|_user, _token| async move {
            Err::<(), _>(LoginRefused::unavailable(
                "the members table does not answer",
            ))
        })
        .build()
        .unwrap();
    let session = MemorySession::default();
    let before = session.id();
    let err = log_in(&kvixi, &mock, &session).await.unwrap_err();
    assert!(matches!(err, Error::LoginUnavailable { .. }), "{err:?}");
    assert_eq!((err.status(), err.code()), (503, "login_unavailable"));
    assert!(!err.user_message().contains("not allowed"));
    assert_eq!(
        session.id(),
        before,
        "nothing written for a login not admitted"
    );
    assert_eq!(kvixi.current_user(&session).await.unwrap(), None);
}

#[tokio::test]
async fn expired_token_keeps_the_user_logged_in() {
    let mock = emulator().await;
    let now = Arc::new(AtomicU64::new(1_000_000));
    let kvixi = driver(&mock, now.clone()).build().unwrap();
    let session = MemorySession::default();
    log_in(&kvixi, &mock, &session).await.unwrap();
    // Kvixi expires the token earlier than we assumed (the platform checks one minute).
    mock.advance_clock(Duration::from_secs(61 * 60));
    let err = kvixi.refresh_user(&session).await.unwrap_err();
    assert!(matches!(err, Error::TokenExpired), "{err:?}");
    assert_eq!(
        kvixi.current_token(&session).await.unwrap(),
        None,
        "token dropped"
    );
    assert!(
        kvixi.current_user(&session).await.unwrap().is_some(),
        "still logged in"
    );

    // And our own assumed lifetime expires the token without asking Kvixi.
    let session = MemorySession::default();
    log_in(&kvixi, &mock, &session).await.unwrap();
    let token: Option<AccessToken> = kvixi.current_token(&session).await.unwrap();
    assert!(token.is_some());
    now.fetch_add(3600, Ordering::SeqCst);
    assert_eq!(kvixi.current_token(&session).await.unwrap(), None);
    assert!(kvixi.current_user(&session).await.unwrap().is_some());
}

#[tokio::test]
async fn tampered_session_value_counts_as_anonymous() {
    let mock = emulator().await;
    let kvixi = driver(&mock, Arc::new(AtomicU64::new(1))).build().unwrap();
    let session = MemorySession::default();
    session
        .insert(
            kvixi_core::flow::AUTH_RECORD_KEY,
            r#"{"user": "forged"}"#.into(),
        )
        .await
        .unwrap();
    assert_eq!(kvixi.current_user(&session).await.unwrap(), None);
    assert_eq!(
        session
            .get(kvixi_core::flow::AUTH_RECORD_KEY)
            .await
            .unwrap(),
        None
    );
}

/// A session that, as kvixi-axum's does, keeps "remember me" with each write of the auth
/// record: a write that no `remember` call preceded makes an ordinary session again.
#[derive(Default)]
struct RememberedPerWrite {
    inner: MemorySession,
    asked: std::sync::Mutex<Option<Duration>>,
    remembered: std::sync::Mutex<Option<Duration>>,
}

#[kvixi_core::async_trait]
impl SessionStorage for RememberedPerWrite {
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        self.inner.get(key).await
    }
    async fn insert(&self, key: &str, json: String) -> Result<(), Error> {
        if key == kvixi_core::flow::AUTH_RECORD_KEY {
            let asked = self.asked.lock().unwrap().take();
            *self.remembered.lock().unwrap() = asked;
        }
        self.inner.insert(key, json).await
    }
    async fn remove(&self, key: &str) -> Result<(), Error> {
        self.inner.remove(key).await
    }
    async fn rotate_id(&self) -> Result<(), Error> {
        self.inner.rotate_id().await
    }
    async fn destroy(&self) -> Result<(), Error> {
        self.inner.destroy().await
    }
    fn remember(&self, idle: Duration) {
        *self.asked.lock().unwrap() = Some(idle);
    }
}

/// Reading the profile again rewrites the auth record: a remembered login stays
/// remembered, for an adapter that keeps the choice with each write (kvixi-axum).
#[tokio::test]
async fn a_remembered_login_stays_remembered_when_the_profile_is_read_again() {
    let mock = emulator().await;
    let kvixi = driver(&mock, Arc::new(AtomicU64::new(1_000_000)))
        .build()
        .unwrap();
    let session = RememberedPerWrite::default();
    let started = kvixi.login(Some("return_to=%2Fprivate&remember=1"));
    let auth_key = mock.issue_auth_key(APP_ID, "alice").expect("key issued");
    kvixi
        .callback(
            &session,
            Some(&format!("auth_key={auth_key}")),
            Some(&started.login_cookie),
        )
        .await
        .unwrap();
    let remembered = *session.remembered.lock().unwrap();
    assert!(remembered.is_some(), "the login asked for remember me");
    kvixi.refresh_user(&session).await.unwrap();
    assert_eq!(*session.remembered.lock().unwrap(), remembered);
}
