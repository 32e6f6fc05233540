//! "Your devices" on the app's database (issue 30), the cost counted in SQL statements
//! (sqlx's own `sqlx::query` events): a login adds one index write, and listing a user
//! with 50 sessions is one query. The figures are printed for BENCHMARKS.md.

#![cfg(feature = "database")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kvixi_core::{Config, Kvixi, MemorySession};
use kvixi_mock::{App, Emulator};

const CALLBACK: &str = "http://localhost:3000/auth/kvixi/callback";

static COUNTING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Counts sqlx's statements while [`COUNTING`] is on.
struct StatementCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if metadata.target() == "sqlx::query" {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        metadata.target() == "sqlx::query" && COUNTING.load(Ordering::Relaxed)
    }
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The statements `work` runs.
async fn statements(work: impl Future<Output = ()>) -> u64 {
    STATEMENTS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    work.await;
    COUNTING.store(false, Ordering::Relaxed);
    STATEMENTS.load(Ordering::Relaxed)
}

#[tokio::test]
async fn your_devices_on_sqlite_is_one_write_per_login_and_one_query_per_list() {
    use tracing_subscriber::layer::SubscriberExt;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(StatementCounter))
        .expect("the only subscriber of this test binary");
    let dir = std::env::temp_dir().join(format!("kvixi-devices-sql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let emulator = Emulator::builder()
        .app(App::new("app", "secret", CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let config = Config::builder("app", "secret", CALLBACK)
        .base_url(emulator.base_url())
        .database_url(format!("sqlite://{}", dir.join("app.db").display()))
        .build()
        .expect("valid config");
    let kvixi = Kvixi::new(config).expect("flow builds");
    kvixi
        .database_ready(Duration::from_secs(10))
        .await
        .expect("tables");
    let log_in = async || {
        let started = kvixi.login(None);
        let key = emulator.issue_auth_key("app", "alice").expect("a key");
        let query = format!("auth_key={key}");
        let session = MemorySession::default();
        kvixi
            .callback(&session, Some(&query), Some(&started.login_cookie))
            .await
            .expect("alice logs in");
    };
    for _ in 0..54 {
        log_in().await;
    }
    // The stamp a login starts after, the spent login, and the index: three.
    let login = statements(log_in()).await;
    println!(
        "one login on SQLite: {login} statements (the stamp read, the spent login, the index)"
    );
    assert_eq!(login, 3, "one index write per login");

    let alice = kvixi_mock::fixture::alice().user_id;
    let mut listed = Vec::new();
    let list =
        statements(async { listed = kvixi.sessions_of(&alice).await.expect("listed") }).await;
    println!("sessions_of (50 listed) on SQLite: {list} statement");
    assert_eq!(listed.len(), 50, "the newest 50 of 55");
    assert_eq!(list, 1, "one query");
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        kvixi.sessions_of(&alice).await.expect("listed");
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "sessions_of (50 listed) on SQLite: median {:?}, p99 {:?} over 200",
        times[100], times[198]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
