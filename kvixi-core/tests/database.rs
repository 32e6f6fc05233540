//! The shared state in the app's own database (feature `database`), on SQLite files the
//! tests make: two flows on one file act as two processes of one machine would, and a
//! flow built again on the same file is a restarted app.
#![cfg(feature = "database")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kvixi_core::{Config, Error, Kvixi, MemorySession};
use kvixi_mock::{App, Emulator, Endpoint};
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};

const CALLBACK: &str = "http://localhost:3000/auth/kvixi/callback";

/// A directory of the test's own, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "kvixi-core-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Dir(path)
    }

    fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.0.join("app.db").display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn emulator() -> Emulator {
    Emulator::builder()
        .app(App::new("app", "secret", CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts")
}

async fn instance(emulator: &Emulator, url: &str) -> Kvixi {
    let config = Config::builder("app", "secret", CALLBACK)
        .base_url(emulator.base_url())
        .cookie_key("the-fleet-shares-this-cookie-key-of-32+")
        .database_url(url)
        .build()
        .expect("valid config");
    let kvixi = Kvixi::new(config).expect("flow builds");
    kvixi
        .database_ready(Duration::from_secs(10))
        .await
        .expect("the database answers");
    kvixi
}

#[tokio::test]
async fn two_flows_on_one_sqlite_file_share_spent_logins_and_revocations() {
    let dir = Dir::new("shared");
    let emulator = emulator().await;
    let a = instance(&emulator, &dir.sqlite_url()).await;
    let b = instance(&emulator, &dir.sqlite_url()).await;
    let file = std::fs::metadata(dir.0.join("app.db")).expect("the file was created");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&file.permissions()) & 0o777,
        0o600,
        "the sessions' file is its owner's only"
    );
    assert_eq!(a.session_store().kind(), "database");

    let started = a.login(None);
    let key = emulator.issue_auth_key("app", "alice").expect("a key");
    let on_a = MemorySession::default();
    a.callback(
        &on_a,
        Some(&format!("auth_key={key}")),
        Some(&started.login_cookie),
    )
    .await
    .expect("alice logs in on A");
    let exchanges = emulator.request_count(Endpoint::Authorize);

    // The login cookie replayed on B with a fresh key: refused before any call to Kvixi.
    let fresh = emulator.issue_auth_key("app", "alice").expect("a key");
    let replayed = b
        .callback(
            &MemorySession::default(),
            Some(&format!("auth_key={fresh}")),
            Some(&started.login_cookie),
        )
        .await;
    assert!(
        matches!(replayed, Err(Error::NoPendingLogin)),
        "{replayed:?}"
    );
    assert_eq!(
        emulator.request_count(Endpoint::Authorize),
        exchanges,
        "a spent login costs Kvixi no call on the other flow"
    );

    // Revoked on B: A learns within its cache time.
    b.revoke_user(&kvixi_mock::fixture::alice().user_id)
        .await
        .expect("revoked");
    let deadline = Instant::now() + Duration::from_secs(3);
    while a.current_user(&on_a).await.expect("read").is_some() {
        assert!(Instant::now() < deadline, "A learns of B's revocation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sessions_on_sqlite_outlive_the_flow_that_wrote_them() {
    let dir = Dir::new("restart");
    let emulator = emulator().await;
    let id = Id::default();
    {
        let first = instance(&emulator, &dir.sqlite_url()).await;
        let mut record = Record {
            id,
            data: [("kvixi.test".to_owned(), serde_json::json!("kept"))].into(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        first
            .session_store()
            .create(&mut record)
            .await
            .expect("saved");
        assert_eq!(record.id, id, "a fresh id is kept");
    }
    let again = instance(&emulator, &dir.sqlite_url()).await;
    let loaded = again.session_store().load(&id).await.expect("loaded");
    assert_eq!(
        loaded.and_then(|record| record.data.get("kvixi.test").cloned()),
        Some(serde_json::json!("kept")),
        "the restarted app reads the session"
    );
}

#[test]
fn a_sqlite_file_in_a_missing_directory_is_refused_at_startup() {
    let config = Config::builder("app", "secret", CALLBACK)
        .database_url("sqlite:///nonexistent-kvixi-dir/app.db")
        .build()
        .expect("valid config");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let built = runtime.block_on(async { Kvixi::new(config) });
    match built {
        Err(Error::Config { setting, problem }) => {
            assert_eq!(setting, "database_url");
            assert!(
                problem.contains("/nonexistent-kvixi-dir/app.db"),
                "{problem}"
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_database_away_is_an_outage_not_a_spent_login() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port");
    let emulator = emulator().await;
    let config = Config::builder("app", "secret", CALLBACK)
        .base_url(emulator.base_url())
        .session_store_timeout(Duration::from_millis(300))
        .database_url(format!("postgres://app:hunter2@127.0.0.1:{port}/app"))
        .build()
        .expect("valid config");
    let kvixi = Kvixi::new(config).expect("starts while the database is away");
    let started = kvixi.login(None);
    let key = emulator.issue_auth_key("app", "alice").expect("a key");
    let began = Instant::now();
    let outcome = kvixi
        .callback(
            &MemorySession::default(),
            Some(&format!("auth_key={key}")),
            Some(&started.login_cookie),
        )
        .await;
    match outcome {
        Err(Error::SessionStoreUnavailable { problem }) => {
            assert!(!problem.contains("hunter2"), "{problem}");
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(emulator.request_count(Endpoint::Authorize), 0);
    let ready = kvixi.database_ready(Duration::from_millis(300)).await;
    assert!(
        matches!(ready, Err(Error::SessionStoreUnavailable { .. })),
        "{ready:?}"
    );
}

#[tokio::test]
async fn expired_rows_are_deleted_when_the_app_starts() {
    let dir = Dir::new("cleanup");
    let emulator = emulator().await;
    let first = instance(&emulator, &dir.sqlite_url()).await;
    let mut expired = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
    };
    first.session_store().save(&expired).await.expect("saved");
    let pool = first
        .database()
        .and_then(kvixi_core::Database::sqlite)
        .expect("a SQLite pool")
        .clone();
    for statement in [
        "insert into kvixi_spent_logins (id, expires_at) values ('old', 1)",
        "insert into kvixi_spent_logins (id, expires_at) values ('new', 99999999999)",
        "insert into kvixi_revocations (user_id, revoked_at, expires_at) values ('9', 1, 2)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect("inserted");
    }
    drop(first);

    // A new process on the same file cleans at startup.
    let again = instance(&emulator, &dir.sqlite_url()).await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect("counted")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = (
            count("select count(*) from kvixi_sessions").await,
            count("select count(*) from kvixi_spent_logins").await,
            count("select count(*) from kvixi_revocations").await,
        );
        if left == (0, 1, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expired rows left (sessions, spent logins, stamps): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    expired.id = Id::default();
    drop((again, expired));
}
