//! Sessions the app controls, through the driver against the emulator: revocation, the
//! absolute lifetime and the app's own data.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kvixi_core::{AppData, Config, Error, Kvixi, MemorySession, UnixTime};
use kvixi_mock::{App, Emulator};

const CALLBACK: &str = "http://localhost:3000/auth/kvixi/callback";

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Member {
    local_id: u64,
    roles: Vec<String>,
}

struct Setup {
    emulator: Emulator,
    kvixi: Kvixi,
    clock: Arc<AtomicU64>,
}

async fn setup() -> Setup {
    let emulator = Emulator::builder()
        .app(App::new("app", "secret", CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let config = Config::builder("app", "secret", CALLBACK)
        .base_url(emulator.base_url())
        .max_session_lifetime(Duration::from_secs(7 * 24 * 3600))
        .build()
        .expect("valid config");
    let clock = Arc::new(AtomicU64::new(1_800_000_000));
    let app_clock = clock.clone();
    let kvixi = Kvixi::builder(config)
        .clock(move || UnixTime(app_clock.load(Ordering::SeqCst)))
        .on_login(|user, _token| async move {
            let roles = match user.name.as_deref() {
                // A value far over the limit: the app's bug.
                Some("bob") => vec!["x".repeat(600)],
                _ => vec!["editor".to_owned()],
            };
            Ok(AppData(Member {
                local_id: 42,
                roles,
            }))
        })
        .build()
        .expect("flow builds");
    Setup {
        emulator,
        kvixi,
        clock,
    }
}

async fn log_in(setup: &Setup, session: &MemorySession, user: &str) -> Result<(), Error> {
    let started = setup.kvixi.login(None);
    let key = setup.emulator.issue_auth_key("app", user).expect("a key");
    let query = format!("auth_key={key}");
    setup
        .kvixi
        .callback(session, Some(&query), Some(&started.login_cookie))
        .await
        .map(drop)
}

#[tokio::test]
async fn app_data_comes_back_typed_from_the_same_record() {
    let setup = setup().await;
    let session = MemorySession::default();
    log_in(&setup, &session, "alice").await.expect("logged in");
    let found = setup.kvixi.current_app_user::<Member>(&session).await;
    let found = found.expect("read").expect("logged in");
    assert_eq!(found.user.id, "1001");
    assert_eq!(
        found.data,
        Member {
            local_id: 42,
            roles: vec!["editor".into()]
        }
    );
    let record = setup.kvixi.auth_record(&session).await.unwrap().unwrap();
    let bytes = serde_json::to_string(&record).unwrap().len();
    assert!(bytes <= 1024, "auth record with app data: {bytes} bytes");

    // Another type than the one stored: anonymous, and the record is gone.
    let other = setup.kvixi.current_app_user::<Vec<u8>>(&session).await;
    assert!(other.expect("read").is_none());
    assert!(setup.kvixi.current_user(&session).await.unwrap().is_none());
}

#[tokio::test]
async fn app_data_over_the_limit_fails_the_login_and_stores_nothing() {
    let setup = setup().await;
    let session = MemorySession::default();
    let error = log_in(&setup, &session, "bob").await.unwrap_err();
    assert!(
        matches!(error, Error::AppDataTooLarge { limit: 512, .. }),
        "{error}"
    );
    assert_eq!(error.status(), 500);
    assert!(setup.kvixi.current_user(&session).await.unwrap().is_none());
}

#[tokio::test]
async fn revoking_a_user_ends_their_sessions_and_spares_later_logins() {
    let setup = setup().await;
    let (laptop, phone, other) = (
        MemorySession::default(),
        MemorySession::default(),
        MemorySession::default(),
    );
    log_in(&setup, &laptop, "alice").await.unwrap();
    log_in(&setup, &phone, "alice").await.unwrap();
    setup
        .emulator
        .add_user(kvixi_mock::User::new("1003", "carol", "pw"));
    log_in(&setup, &other, "carol").await.unwrap();

    setup.kvixi.revoke_user("1001").await.expect("revoked");
    for session in [&laptop, &phone] {
        assert!(setup.kvixi.current_user(session).await.unwrap().is_none());
        assert!(setup.kvixi.current_token(session).await.unwrap().is_none());
        assert_eq!(raw_record(session).await, None, "the record is removed");
    }
    assert!(setup.kvixi.current_user(&other).await.unwrap().is_some());

    // Logging in again in the same second is not caught by the revocation.
    log_in(&setup, &laptop, "alice").await.unwrap();
    assert!(setup.kvixi.current_user(&laptop).await.unwrap().is_some());
}

#[tokio::test]
async fn logout_everywhere_revokes_the_sessions_user() {
    let setup = setup().await;
    setup
        .emulator
        .add_user(kvixi_mock::User::new("1003", "carol", "carol-password"));
    let (laptop, phone) = (MemorySession::default(), MemorySession::default());
    let carols = MemorySession::default();
    log_in(&setup, &laptop, "alice").await.unwrap();
    log_in(&setup, &phone, "alice").await.unwrap();
    log_in(&setup, &carols, "carol").await.unwrap();
    setup.kvixi.logout_everywhere(&laptop).await.expect("done");
    assert!(setup.kvixi.current_user(&laptop).await.unwrap().is_none());
    assert!(setup.kvixi.current_user(&phone).await.unwrap().is_none());
    // Only the session's user: carol stays logged in.
    let carol = setup.kvixi.current_user(&carols).await.unwrap();
    assert_eq!(
        carol.map(|user| user.id),
        Some("1003".to_owned()),
        "carol stays logged in"
    );
    // A login after it, in the same second, is not revoked.
    let later = MemorySession::default();
    log_in(&setup, &later, "alice").await.unwrap();
    let alice = setup.kvixi.current_user(&later).await.unwrap();
    assert_eq!(
        alice.map(|user| user.id),
        Some("1001".to_owned()),
        "a login after the revocation, in the same second, counts"
    );
    setup.clock.fetch_add(60, Ordering::SeqCst);
    assert!(setup.kvixi.current_user(&later).await.unwrap().is_some());
}

/// A session whose store goes away between the revocation stamp and the removal of the
/// record: every call but `destroy` reaches the memory session.
struct GoneBeforeDestroy(MemorySession);

#[async_trait::async_trait]
impl kvixi_core::SessionStorage for GoneBeforeDestroy {
    async fn get(&self, key: &str) -> Result<Option<String>, kvixi_core::Error> {
        self.0.get(key).await
    }
    async fn insert(&self, key: &str, json: String) -> Result<(), kvixi_core::Error> {
        self.0.insert(key, json).await
    }
    async fn remove(&self, key: &str) -> Result<(), kvixi_core::Error> {
        self.0.remove(key).await
    }
    async fn rotate_id(&self) -> Result<(), kvixi_core::Error> {
        self.0.rotate_id().await
    }
    async fn destroy(&self) -> Result<(), kvixi_core::Error> {
        Err(kvixi_core::Error::SessionStoreUnavailable {
            problem: "the store went away".to_owned(),
        })
    }
}

#[tokio::test]
async fn logout_everywhere_succeeds_once_the_stamp_is_written_whatever_the_store_does_next() {
    let setup = setup().await;
    let (laptop, phone) = (MemorySession::default(), MemorySession::default());
    log_in(&setup, &laptop, "alice").await.unwrap();
    log_in(&setup, &phone, "alice").await.unwrap();
    let laptop = GoneBeforeDestroy(laptop);
    setup
        .kvixi
        .logout_everywhere(&laptop)
        .await
        .expect("logged out everywhere: the stamp was written");
    assert!(setup.kvixi.current_user(&phone).await.unwrap().is_none());
    assert!(
        setup.kvixi.current_user(&laptop.0).await.unwrap().is_none(),
        "the stamp ends the session whose record stayed"
    );
}

#[tokio::test]
async fn logout_everywhere_tells_the_audit_hook_who_left() {
    let setup = setup().await;
    let left = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = left.clone();
    let kvixi = Kvixi::builder(setup.kvixi.config().clone())
        .on_logout(move |event: kvixi_core::LoggedOut| {
            let seen = seen.clone();
            async move {
                let who = event.user.map(|user| user.id);
                seen.lock().unwrap().push(who);
            }
        })
        .build()
        .expect("flow builds");
    let session = MemorySession::default();
    let started = kvixi.login(None);
    let key = setup
        .emulator
        .issue_auth_key("app", "alice")
        .expect("a key");
    let query = format!("auth_key={key}");
    kvixi
        .callback(&session, Some(&query), Some(&started.login_cookie))
        .await
        .expect("logged in");
    kvixi.logout_everywhere(&session).await.expect("done");
    assert_eq!(*left.lock().unwrap(), vec![Some("1001".to_owned())]);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_active() {
    let setup = setup().await;
    let session = MemorySession::default();
    log_in(&setup, &session, "alice").await.unwrap();
    let week = 7 * 24 * 3600;
    setup.clock.fetch_add(week, Ordering::SeqCst);
    assert!(setup.kvixi.current_user(&session).await.unwrap().is_some());
    setup.clock.fetch_add(1, Ordering::SeqCst);
    assert!(setup.kvixi.current_user(&session).await.unwrap().is_none());
    assert_eq!(raw_record(&session).await, None, "the record is removed");
}

/// The auth record's JSON text in a session.
async fn raw_record(session: &MemorySession) -> Option<String> {
    use kvixi_core::SessionStorage;
    let read = session.get(kvixi_core::flow::AUTH_RECORD_KEY).await;
    read.expect("a memory session never fails")
}

/// The reads an adapter makes on the record it holds agree with the full reads, and
/// hand back to them (`None`) whatever needs a write or a wait: no record is anonymous,
/// an unreadable one, another app type, a revoked user or an expired lifetime is not
/// decided at once.
#[tokio::test]
async fn reads_at_once_agree_with_the_full_reads_or_ask_for_them() {
    use kvixi_core::SessionStorage;

    let setup = setup().await;
    let kvixi = &setup.kvixi;
    let session = MemorySession::default();
    log_in(&setup, &session, "alice").await.expect("logged in");
    let json = session
        .get(kvixi_core::flow::AUTH_RECORD_KEY)
        .await
        .unwrap()
        .expect("the auth record");

    let user = kvixi.current_user(&session).await.unwrap();
    assert_eq!(kvixi.current_user_now(Some(&json)), Some(user));
    let found = kvixi.current_app_user::<Member>(&session).await.unwrap();
    assert_eq!(
        kvixi.current_app_user_now::<Member>(Some(&json)),
        Some(found)
    );
    assert_eq!(kvixi.current_user_now(None), Some(None));
    assert_eq!(kvixi.current_app_user_now::<Member>(None), Some(None));
    assert_eq!(kvixi.current_user_now(Some("{not json")), None);
    assert_eq!(kvixi.current_app_user_now::<Vec<u8>>(Some(&json)), None);

    // Past the absolute lifetime: over, for the full read to remove.
    setup.clock.fetch_add(8 * 24 * 3600, Ordering::SeqCst);
    assert_eq!(kvixi.current_user_now(Some(&json)), None);
    assert_eq!(kvixi.current_app_user_now::<Member>(Some(&json)), None);
    setup.clock.fetch_sub(8 * 24 * 3600, Ordering::SeqCst);

    kvixi.revoke_user("1001").await.expect("revoked");
    assert_eq!(kvixi.current_user_now(Some(&json)), None);
    assert_eq!(kvixi.current_user(&session).await.unwrap(), None);
}
