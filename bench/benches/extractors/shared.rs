//! The shared-store rows: the authenticated path with sessions on a `redis-server`
//! (issue 22), in a SQLite file and on a Postgres server (issue 28), each started by this
//! run itself (loopback, temporary, stopped when the run ends), through each adapter's
//! one-line setup on `KVIXI_REDIS_URL` or `KVIXI_DATABASE_URL`, against the floor on the
//! same session layer and the same store crate on the flow's own pool (for the databases:
//! tower-sessions-sqlx-store reading the same `kvixi_sessions` row with sqlx); and the
//! Redis keys each logged-in user leaves behind.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use kvixi_bench::redis_server::{Redis, Unavailable};
use kvixi_core::{Database, Kvixi};
use kvixi_e2e::postgres::Postgres;
use kvixi_e2e::topology::TempDir;
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store;
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::clients::Pool;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::provider::Provider;
use crate::table;

/// Where a row's sessions are.
pub enum Backend {
    /// The run's `redis-server` (`KVIXI_REDIS_URL`).
    Redis(Redis),
    /// A SQLite file in a directory of the run's (`KVIXI_DATABASE_URL=sqlite://…`).
    Sqlite(TempDir),
    /// A throwaway Postgres server (`KVIXI_DATABASE_URL=postgres://…`), one database per
    /// framework.
    Postgres(Postgres),
}

impl Backend {
    /// Every backend this machine has: Redis and Postgres when installed (under
    /// `CI=true` their absence fails the run), SQLite always.
    pub fn all() -> Vec<Backend> {
        let mut backends = Vec::new();
        if let Some(redis) = start() {
            backends.push(Backend::Redis(redis));
        }
        backends.push(Backend::Sqlite(TempDir::new("kvixi-bench-sqlite")));
        match Postgres::start() {
            Some(postgres) => backends.push(Backend::Postgres(postgres)),
            None => println!("Postgres rows skipped: postgresql is not installed"),
        }
        backends
    }

    /// The table's path for this backend's rows.
    pub fn path(&self) -> &'static str {
        match self {
            Backend::Redis(_) => table::AUTHENTICATED_REDIS,
            Backend::Sqlite(_) => table::AUTHENTICATED_SQLITE,
            Backend::Postgres(_) => table::AUTHENTICATED_POSTGRES,
        }
    }

    /// A new flow for `framework` whose config names this backend, built on the runtime
    /// that serves the framework's app (the pool's connections are its tasks).
    pub async fn kvixi(&self, provider: &Provider, framework: &str) -> Kvixi {
        let url = match self {
            Backend::Redis(redis) => return provider.kvixi_on_redis(&redis.url()).await,
            Backend::Sqlite(dir) => format!(
                "sqlite://{}",
                dir.path().join(format!("{framework}.db")).display()
            ),
            Backend::Postgres(postgres) => postgres.new_database().await,
        };
        provider.kvixi_on_database(&url).await
    }

    /// The floor's store: the store crate the one-line setup uses, on the flow's pool.
    pub fn floor_store(&self, kvixi: &Kvixi) -> FloorStore {
        match (self, kvixi.database()) {
            (Backend::Redis(_), _) => {
                FloorStore::Redis(RedisStore::new(kvixi.redis().expect("a pool").clone()))
            }
            (_, Some(Database::Sqlite(pool))) => FloorStore::Sqlite(
                SqliteStore::new(pool.clone())
                    .with_table_name("kvixi_sessions")
                    .expect("a table name"),
            ),
            (_, Some(Database::Postgres(pool))) => FloorStore::Postgres(
                PostgresStore::new(pool.clone())
                    .with_schema_name("public")
                    .and_then(|store| store.with_table_name("kvixi_sessions"))
                    .expect("a table name"),
            ),
            (_, None) => panic!("the flow has no database"),
        }
    }

    /// Logs [`USERS`] users in with `log_in`, and on Redis records the keys they left.
    pub fn log_in_users(&self, framework: &'static str, mut log_in: impl FnMut(&str)) {
        match self {
            Backend::Redis(redis) => keys_per_user(redis, framework, log_in),
            _ => (0..USERS).for_each(|i| log_in(&user_name(i))),
        }
    }
}

/// Whether [`QueryCounter`] counts right now (only during [`count_queries`]).
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Statements sqlx ran while counting.
static QUERIES: AtomicU64 = AtomicU64::new(0);
/// Database statements per authenticated request, by benchmark id.
static PER_REQUEST: Mutex<BTreeMap<String, f64>> = Mutex::new(BTreeMap::new());

/// Counts the statements sqlx runs (its `sqlx::query` event, one per statement, on any
/// thread) while [`count_queries`] runs; asks for nothing otherwise, so that the timed
/// rows pay one relaxed load per statement, the floor as much as kvixi.
struct QueryCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for QueryCounter {
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
        QUERIES.fetch_add(1, Ordering::Relaxed);
    }
}

/// Installs the [`QueryCounter`] as the process's subscriber (once, before any row).
pub fn install_query_counter() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(QueryCounter);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        println!("query counts skipped: another tracing subscriber is installed");
    }
}

/// Runs `requests` (which serves `n` authenticated requests) with the counter on, and
/// records the statements per request under `id`.
pub fn count_queries(id: &str, n: u64, requests: impl FnOnce(u64)) {
    QUERIES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    requests(n);
    COUNTING.store(false, Ordering::Relaxed);
    let per_request = QUERIES.load(Ordering::Relaxed) as f64 / n as f64;
    PER_REQUEST
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.to_owned(), per_request);
}

/// The statements per request [`count_queries`] measured for `id`.
pub fn queries_per_request(id: &str) -> Option<f64> {
    PER_REQUEST
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(id)
        .copied()
}

/// Requests of each counted run.
pub const COUNTED_REQUESTS: u64 = 1000;

/// The boxed future every tower-sessions store method returns.
type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = session_store::Result<T>> + Send + 'a>>;

/// The floor's store, whichever the backend: each method hands back the chosen store's
/// own future (no second box), as the core's `ConfiguredStore` does.
#[derive(Clone, Debug)]
pub enum FloorStore {
    /// tower-sessions-redis-store.
    Redis(RedisStore<Pool>),
    /// tower-sessions-sqlx-store on SQLite.
    Sqlite(SqliteStore),
    /// tower-sessions-sqlx-store on Postgres.
    Postgres(PostgresStore),
}

macro_rules! each {
    ($store:expr, $inner:ident => $call:expr) => {
        match $store {
            FloorStore::Redis($inner) => $call,
            FloorStore::Sqlite($inner) => $call,
            FloorStore::Postgres($inner) => $call,
        }
    };
}

impl SessionStore for FloorStore {
    fn create<'s, 'r, 'f>(&'s self, record: &'r mut Record) -> StoreFuture<'f, ()>
    where
        's: 'f,
        'r: 'f,
        Self: 'f,
    {
        each!(self, store => store.create(record))
    }

    fn save<'s, 'r, 'f>(&'s self, record: &'r Record) -> StoreFuture<'f, ()>
    where
        's: 'f,
        'r: 'f,
        Self: 'f,
    {
        each!(self, store => store.save(record))
    }

    fn load<'s, 'i, 'f>(&'s self, id: &'i Id) -> StoreFuture<'f, Option<Record>>
    where
        's: 'f,
        'i: 'f,
        Self: 'f,
    {
        each!(self, store => store.load(id))
    }

    fn delete<'s, 'i, 'f>(&'s self, id: &'i Id) -> StoreFuture<'f, ()>
    where
        's: 'f,
        'i: 'f,
        Self: 'f,
    {
        each!(self, store => store.delete(id))
    }
}

/// Distinct users each framework logs in through the whole flow before the keys are
/// counted.
pub const USERS: usize = 100;

/// Rounds of the shared-store rows' interleaved comparison: a request there waits for
/// a server to wake up and answer, which varies more than in-process work.
pub const ROUNDS: usize = 101;

/// Redis keys per logged-in user, by framework.
static KEYS_PER_USER: Mutex<BTreeMap<&'static str, f64>> = Mutex::new(BTreeMap::new());

/// The run's `redis-server`, or `None` (with a printed line) when it is not installed.
///
/// # Panics
///
/// When it is installed and does not start, and under `CI=true` when it is missing: a
/// CI run must not pass without its Redis rows.
pub fn start() -> Option<Redis> {
    match Redis::start() {
        Ok(redis) => Some(redis),
        Err(Unavailable::NotInstalled) if std::env::var("CI").as_deref() != Ok("true") => {
            println!("Redis rows skipped: redis-server is not installed");
            None
        }
        Err(why) => panic!("the Redis rows need redis-server: {why}"),
    }
}

/// The frameworks whose logins [`keys_per_user`] counts, each with users of its own: a
/// user's first login makes the per-user keys (the devices index), later ones do not.
const FRAMEWORKS: [&str; 3] = ["axum", "actix", "rocket"];

/// Adds the users [`keys_per_user`] logs in to the emulator: [`USERS`] per framework.
pub fn add_users(provider: &Provider) {
    for i in 0..USERS * FRAMEWORKS.len() {
        provider.add_user(&user_id(i), &user_name(i));
    }
}

fn user_name(i: usize) -> String {
    format!("bench-user-{i}")
}

fn user_id(i: usize) -> String {
    format!("{}", 50_000 + i)
}

/// Logs [`USERS`] distinct users in with `log_in` (each through the login route, the
/// emulator and the callback, as a browser of its own) and records how many keys the
/// Redis gained, per user, for `framework`.
pub fn keys_per_user(redis: &Redis, framework: &'static str, mut log_in: impl FnMut(&str)) {
    let before = redis.key_count().expect("DBSIZE before the logins");
    let first = FRAMEWORKS.iter().position(|f| *f == framework).unwrap_or(0) * USERS;
    for i in first..first + USERS {
        log_in(&user_name(i));
    }
    let after = redis.key_count().expect("DBSIZE after the logins");
    let per_user = after.saturating_sub(before) as f64 / USERS as f64;
    KEYS_PER_USER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(framework, per_user);
}

/// The Redis keys per logged-in user measured for `framework`.
pub fn keys_per_user_of(framework: &str) -> Option<f64> {
    KEYS_PER_USER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(framework)
        .copied()
}
