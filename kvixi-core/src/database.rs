//! The app's own database as the shared state: `KVIXI_DATABASE_URL`
//! ([`ConfigBuilder::database_url`](crate::ConfigBuilder::database_url)).
//!
//! With it, [`KvixiBuilder::build`](crate::KvixiBuilder::build) opens one sqlx pool per
//! process ([`Kvixi::database`](crate::Kvixi::database), feature `database`) and keeps
//! there what Redis would keep: the adapters' sessions (tower-sessions-sqlx-store, table
//! `kvixi_sessions`), the revocation stamps ([`DatabaseRevocations`], table
//! `kvixi_revocations`) and the spent pending logins (table `kvixi_spent_logins`). The
//! tables are created at startup (and, should the database be away then, before the
//! first request that needs them); a task the flow owns deletes expired rows every
//! minute and stops when the last clone of the flow is dropped.

use std::fmt;

use crate::error::Error;

/// The URL forms accepted, for the error that names them.
const URL_FORMS: &str = "sqlite://PATH (the file is created if missing) or \
postgres://user:password@host:port/database (also postgresql://)";

/// Which database a [`DatabaseUrl`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    /// A SQLite file: one instance (or several processes on one machine).
    Sqlite,
    /// A Postgres server: any number of instances.
    Postgres,
}

impl DatabaseKind {
    /// `sqlite` or `postgres`, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
    }
}

/// A database URL, validated. It may carry a password: its `Debug` shows only the kind.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    /// `url` when it names a SQLite file or a Postgres server in a form sqlx reads; the
    /// error names `setting` and never repeats the URL (it may hold a password).
    pub(crate) fn parse(url: &str, setting: &'static str) -> Result<DatabaseUrl, Error> {
        let url = url.trim();
        let invalid = |problem: String| Error::Config { setting, problem };
        let kind = match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => DatabaseKind::Sqlite,
            Some("postgres" | "postgresql") => DatabaseKind::Postgres,
            _ => {
                return Err(invalid(format!(
                    "is not a database URL this library keeps sessions in; use {URL_FORMS}"
                )));
            }
        };
        if kind == DatabaseKind::Sqlite && !url.starts_with("sqlite://") {
            return Err(invalid(format!("names no SQLite file; use {URL_FORMS}")));
        }
        check_with_sqlx(url, kind).map_err(|problem| {
            let problem = crate::secret::redact_url(&problem, url);
            invalid(format!(
                "is not a valid {} URL ({problem}); use {URL_FORMS}",
                kind.name()
            ))
        })?;
        Ok(DatabaseUrl {
            url: url.to_owned(),
            kind,
        })
    }

    /// The URL itself, password included: for the database client only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// Which database the URL names.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({}, [REDACTED])", self.kind.name())
    }
}

#[cfg(feature = "database")]
fn check_with_sqlx(url: &str, kind: DatabaseKind) -> Result<(), String> {
    use std::str::FromStr;
    match kind {
        DatabaseKind::Sqlite => sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .map(drop)
            .map_err(|error| error.to_string()),
        DatabaseKind::Postgres => sqlx::postgres::PgConnectOptions::from_str(url)
            .map(drop)
            .map_err(|error| error.to_string()),
    }
}

#[cfg(not(feature = "database"))]
fn check_with_sqlx(_url: &str, _kind: DatabaseKind) -> Result<(), String> {
    Err(
        "this build of kvixi-core has no database support: enable its `database` feature \
         (the adapters enable it by default)"
            .to_owned(),
    )
}

#[cfg(feature = "database")]
pub(crate) use connected::Shared;
#[cfg(feature = "database")]
pub use connected::{Database, DatabaseRevocations, DatabaseStore};

#[cfg(feature = "database")]
mod connected {
    use std::str::FromStr;
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    };
    use tokio::sync::OnceCell;
    use tower_sessions_core::SessionStore;
    use tower_sessions_core::session::{Id, Record};
    use tower_sessions_core::session_store::{self, ExpiredDeletion};
    use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

    use super::{DatabaseKind, DatabaseUrl};
    use crate::config::Config;
    use crate::devices::{
        EndedSession, IndexedSession, Revocation, SessionHandle, UserRevocations,
    };
    use crate::error::Error;
    use crate::flow::UnixTime;
    use crate::revocation::{Revocations, StampCache};

    /// `body` with `pool` bound to the database's pool, whichever its kind: the SQL is
    /// written once, with `$n` placeholders, which SQLite reads too.
    macro_rules! on_pool {
        ($database:expr, $pool:ident => $body:expr) => {
            match $database {
                Database::Sqlite($pool) => $body,
                Database::Postgres($pool) => $body,
            }
        };
    }

    /// `call` on whichever store crate holds the sessions.
    macro_rules! each_store {
        ($sessions:expr, $store:ident => $call:expr) => {
            match $sessions {
                Sessions::Sqlite($store) => $call,
                Sessions::Postgres($store) => $call,
            }
        };
    }

    /// The sessions' table (in Postgres, in the `public` schema).
    const SESSIONS_TABLE: &str = "kvixi_sessions";

    /// Connections of a SQLite pool. SQLite writes one at a time whatever the pool (the
    /// others wait for the lock, up to the busy timeout); readers never wait in WAL mode.
    /// A few connections let reads go on beside the one write.
    const SQLITE_CONNECTIONS: u32 = 4;

    /// Connections of a Postgres pool per process: a busy instance's one query per
    /// request, without taking a large share of the server's `max_connections` (100 by
    /// default) from the app and the other instances.
    const POSTGRES_CONNECTIONS: u32 = 8;

    /// "Your devices": one row per indexed login (`ended = 0`) or ended session
    /// (`ended = 1`), both kinds until `expires_at`. The same text for both databases.
    const USER_SESSIONS_TABLE: &str = "create table if not exists kvixi_user_sessions (
        handle text primary key not null,
        user_id text not null,
        logged_in_at bigint not null,
        last_seen bigint not null,
        browser text not null,
        expires_at bigint not null,
        ended integer not null)";

    /// A user's rows are found without a scan.
    const USER_SESSIONS_INDEX: &str = "create index if not exists kvixi_user_sessions_user \
        on kvixi_user_sessions (user_id, ended, logged_in_at)";

    /// How often expired sessions, stamps and spent logins are deleted.
    const CLEANUP_EVERY: Duration = Duration::from_secs(60);

    /// One key for `pg_advisory_xact_lock` while creating the tables, so that instances
    /// starting together do not race on `CREATE TABLE IF NOT EXISTS` (which Postgres does
    /// not make safe under concurrency).
    const MIGRATION_LOCK: i64 = 0x6b76_6978_6900;

    /// The process's pool on the app's database: one of the two kinds. The app's own
    /// queries may share it ([`Kvixi::database`](crate::Kvixi::database)).
    #[derive(Clone, Debug)]
    pub enum Database {
        /// A SQLite file, in WAL mode with a busy timeout.
        Sqlite(SqlitePool),
        /// A Postgres server.
        Postgres(PgPool),
    }

    impl Database {
        /// The SQLite pool, if the database is SQLite.
        pub fn sqlite(&self) -> Option<&SqlitePool> {
            match self {
                Database::Sqlite(pool) => Some(pool),
                Database::Postgres(_) => None,
            }
        }

        /// The Postgres pool, if the database is Postgres.
        pub fn postgres(&self) -> Option<&PgPool> {
            match self {
                Database::Postgres(pool) => Some(pool),
                Database::Sqlite(_) => None,
            }
        }

        /// Which kind it is.
        pub fn kind(&self) -> DatabaseKind {
            match self {
                Database::Sqlite(_) => DatabaseKind::Sqlite,
                Database::Postgres(_) => DatabaseKind::Postgres,
            }
        }
    }

    /// The process's connection to the app's database, and the readiness of its tables.
    #[derive(Clone)]
    pub(crate) struct Shared {
        pub(crate) database: Database,
        /// tower-sessions-sqlx-store's store on `database`, table `kvixi_sessions`.
        sessions: Sessions,
        tables: Arc<OnceCell<()>>,
        timeout: Duration,
        /// Stops the cleanup task when the last clone of the flow is dropped.
        _cleanup: Arc<AbortOnDrop>,
    }

    struct AbortOnDrop(tokio::task::JoinHandle<()>);

    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    impl Shared {
        /// A pool for `config`'s database URL, connecting on first use, and the task
        /// that creates the tables and then cleans them. Needs a tokio runtime.
        pub(crate) fn connect(config: &Config) -> Result<Option<Shared>, Error> {
            let Some(url) = config.database_url() else {
                return Ok(None);
            };
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(Error::Config {
                    setting: "database_url",
                    problem: "is set, and the database connection needs a tokio runtime: \
                              build the Kvixi flow inside the app's async main"
                        .into(),
                });
            }
            let database = pool(url, config)?;
            tracing::info!(
                database = url.kind().name(),
                "kvixi: shared state in the database"
            );
            let sessions = sessions_on(&database)?;
            let tables = Arc::new(OnceCell::new());
            let task = tokio::spawn(maintain(database.clone(), sessions.clone(), tables.clone()));
            Ok(Some(Shared {
                database,
                sessions,
                tables,
                timeout: config.session_store_timeout(),
                _cleanup: Arc::new(AbortOnDrop(task)),
            }))
        }

        /// Waits until the tables exist, at most `limit`.
        pub(crate) async fn ready(&self, limit: Duration) -> Result<(), Error> {
            match tokio::time::timeout(limit, ensure_tables(&self.database, &self.tables)).await {
                Ok(result) => result.map_err(|error| unavailable(&error)),
                Err(_) => Err(Error::SessionStoreUnavailable {
                    problem: format!("the database did not answer within {limit:?}"),
                }),
            }
        }

        /// The sessions' store on this database.
        pub(crate) fn store(&self) -> DatabaseStore {
            DatabaseStore {
                shared: self.clone(),
                sessions: self.sessions.clone(),
            }
        }

        /// The revocation stamps on this database.
        pub(crate) fn revocations(&self) -> DatabaseRevocations {
            DatabaseRevocations {
                shared: self.clone(),
                cache: StampCache::default(),
            }
        }

        /// Runs `call` once the tables exist, within the store timeout.
        async fn call<T>(
            &self,
            call: impl Future<Output = Result<T, sqlx::Error>>,
        ) -> Result<T, Error> {
            let work = async {
                ensure_tables(&self.database, &self.tables).await?;
                call.await
            };
            match tokio::time::timeout(self.timeout, work).await {
                Ok(result) => result.map_err(|error| unavailable(&error)),
                Err(_) => Err(Error::SessionStoreUnavailable {
                    problem: format!("the database did not answer within {:?}", self.timeout),
                }),
            }
        }

        /// Marks the pending login `id` spent for every instance on this database: one
        /// insert that does nothing when the id is there. `false` when some instance
        /// spent it already.
        pub(crate) async fn spend_login(&self, id: &str, expires: UnixTime) -> Result<bool, Error> {
            let expires = to_i64(expires.0);
            let inserted = on_pool!(&self.database, pool => self
                .call(
                    sqlx::query(
                        "insert into kvixi_spent_logins (id, expires_at) values ($1, $2) \
                         on conflict (id) do nothing",
                    )
                    .bind(id)
                    .bind(expires)
                    .execute(pool),
                )
                .await?
                .rows_affected());
            Ok(inserted == 1)
        }
    }

    /// The sessions' store crate on `database`, table [`SESSIONS_TABLE`] (in Postgres's
    /// `public` schema). Its name checks cannot fail for our constant names; should they,
    /// the flow does not build, rather than a request panicking.
    fn sessions_on(database: &Database) -> Result<Sessions, Error> {
        let named = match database {
            Database::Sqlite(pool) => SqliteStore::new(pool.clone())
                .with_table_name(SESSIONS_TABLE)
                .map(Sessions::Sqlite),
            Database::Postgres(pool) => PostgresStore::new(pool.clone())
                .with_schema_name("public")
                .and_then(|store| store.with_table_name(SESSIONS_TABLE))
                .map(Sessions::Postgres),
        };
        named.map_err(|problem| Error::Config {
            setting: "database_url",
            problem: format!("gives no usable sessions table: {problem}"),
        })
    }

    fn to_i64(seconds: u64) -> i64 {
        i64::try_from(seconds).unwrap_or(i64::MAX)
    }

    /// The pool `url` names, shaped for its kind; it connects on first use.
    fn pool(url: &DatabaseUrl, config: &Config) -> Result<Database, Error> {
        let setting = "database_url";
        let invalid = |error: sqlx::Error| Error::Config {
            setting,
            problem: format!("is not a valid {} URL ({error})", url.kind().name())
                .replace(url.expose(), "[REDACTED]"),
        };
        // A request waits for a connection no longer than for the store itself.
        let acquire = config.session_store_timeout();
        Ok(match url.kind() {
            DatabaseKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose()).map_err(invalid)?;
                create_private(options.get_filename())?;
                let options = options
                    .create_if_missing(true)
                    // Readers never wait for the writer, and a commit is one append.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    // A write waits for the one before it instead of failing with
                    // "database is locked"; longer than any request waits anyway.
                    .busy_timeout(acquire.max(Duration::from_secs(5)))
                    .foreign_keys(true);
                Database::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(SQLITE_CONNECTIONS)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            DatabaseKind::Postgres => {
                let options = PgConnectOptions::from_str(url.expose()).map_err(invalid)?;
                Database::Postgres(
                    PgPoolOptions::new()
                        .max_connections(POSTGRES_CONNECTIONS)
                        .acquire_timeout(acquire)
                        // No ping before each use (a second round trip per request): a
                        // connection the server dropped (a restart) fails its one query,
                        // a 503, and is closed; the next one is new.
                        .test_before_acquire(false)
                        .connect_lazy_with(options),
                )
            }
        })
    }

    /// Creates the SQLite file at `path` when missing, readable and writable by this
    /// user only: it holds sessions, and so access tokens. (SQLite gives its `-wal` and
    /// `-shm` files the database file's permissions.) A file that exists is left as it
    /// is. An error names the setting: a directory that does not exist shows at startup,
    /// not as 503s at the first login.
    fn create_private(path: &std::path::Path) -> Result<(), Error> {
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" || path.exists() {
            return Ok(());
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(Error::Config {
                setting: "database_url",
                problem: format!(
                    "names the SQLite file {}, which cannot be created: {error}",
                    path.display()
                ),
            }),
        }
    }

    /// A database failure as the 503 every adapter answers (nobody logged in or out).
    fn unavailable(error: &sqlx::Error) -> Error {
        Error::SessionStoreUnavailable {
            problem: format!("database: {error}"),
        }
    }

    /// Creates the tables once per process; a failure (the database away) is tried
    /// again by the next caller.
    async fn ensure_tables(database: &Database, tables: &OnceCell<()>) -> Result<(), sqlx::Error> {
        if tables.initialized() {
            return Ok(());
        }
        tables
            .get_or_try_init(|| async {
                create_tables(database).await?;
                tracing::info!(database = database.kind().name(), "kvixi: tables ready");
                Ok(())
            })
            .await
            .map(drop)
    }

    async fn create_tables(database: &Database) -> Result<(), sqlx::Error> {
        match database {
            Database::Sqlite(pool) => {
                // One transaction, so that a half-made schema is never seen; SQLite's
                // single writer makes it safe for processes starting together.
                let mut tx = pool.begin().await?;
                for statement in [
                    "create table if not exists kvixi_sessions (
                        id text primary key not null,
                        data blob not null,
                        expiry_date integer not null)",
                    "create table if not exists kvixi_revocations (
                        user_id text primary key not null,
                        revoked_at integer not null,
                        expires_at integer not null)",
                    "create table if not exists kvixi_spent_logins (
                        id text primary key not null,
                        expires_at integer not null)",
                    USER_SESSIONS_TABLE,
                    USER_SESSIONS_INDEX,
                ] {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("select pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
                for statement in [
                    // The columns tower-sessions-sqlx-store's PostgresStore reads.
                    "create table if not exists public.kvixi_sessions (
                        id text primary key not null,
                        data bytea not null,
                        expiry_date timestamptz not null)",
                    "create table if not exists kvixi_revocations (
                        user_id text primary key not null,
                        revoked_at bigint not null,
                        expires_at bigint not null)",
                    "create table if not exists kvixi_spent_logins (
                        id text primary key not null,
                        expires_at bigint not null)",
                    USER_SESSIONS_TABLE,
                    USER_SESSIONS_INDEX,
                ] {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
        }
    }

    /// Creates the tables, then deletes expired rows every [`CLEANUP_EVERY`]. A failed
    /// round (the database away) is logged and tried at the next.
    async fn maintain(database: Database, sessions: Sessions, tables: Arc<OnceCell<()>>) {
        let mut every = tokio::time::interval(CLEANUP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let round = async {
                ensure_tables(&database, &tables).await?;
                delete_expired(&database, &sessions).await
            };
            if let Err(error) = round.await {
                tracing::warn!(%error, "kvixi: cleaning the database's expired rows failed; trying again in a minute");
            }
        }
    }

    async fn delete_expired(database: &Database, sessions: &Sessions) -> Result<(), sqlx::Error> {
        let now = to_i64(UnixTime::now().0);
        match (sessions, database) {
            (Sessions::Sqlite(store), _) => store.delete_expired().await.map_err(store_error)?,
            // Not the store crate's `delete_expired`: it compares `expiry_date` with
            // `now() at time zone 'utc'`, a time without a zone that Postgres reads in the
            // server's own zone, so a server west of UTC would delete live sessions.
            (Sessions::Postgres(_), Database::Postgres(pool)) => {
                sqlx::query("delete from public.kvixi_sessions where expiry_date < now()")
                    .execute(pool)
                    .await
                    .map(drop)?;
            }
            (Sessions::Postgres(_), Database::Sqlite(_)) => {}
        }
        // The newest listed sessions of each user, past MAX_LISTED_SESSIONS: not listed.
        let beyond = format!(
            "delete from kvixi_user_sessions where handle in (select handle from \
             (select handle, row_number() over (partition by user_id order by logged_in_at desc) \
             as newest from kvixi_user_sessions where ended = 0) as ranked where newest > {})",
            crate::devices::MAX_LISTED_SESSIONS
        );
        on_pool!(database, pool => sqlx::query(&beyond).execute(pool).await.map(drop))?;
        for table in [
            "kvixi_revocations",
            "kvixi_spent_logins",
            "kvixi_user_sessions",
        ] {
            let delete = format!("delete from {table} where expires_at < $1");
            on_pool!(database, pool => sqlx::query(&delete).bind(now).execute(pool).await.map(drop))?;
        }
        Ok(())
    }

    fn store_error(error: session_store::Error) -> sqlx::Error {
        sqlx::Error::Protocol(error.to_string())
    }

    #[derive(Clone, Debug)]
    enum Sessions {
        Sqlite(SqliteStore),
        Postgres(PostgresStore),
    }

    /// The session store on the app's database (`KVIXI_DATABASE_URL`):
    /// tower-sessions-sqlx-store's `SqliteStore` or `PostgresStore` on the flow's pool,
    /// table `kvixi_sessions`, its calls waiting until the tables exist. The adapters'
    /// one-line setups use it; [`Kvixi::session_store`](crate::Kvixi::session_store)
    /// gives it for a setup by hand.
    #[derive(Clone)]
    pub struct DatabaseStore {
        shared: Shared,
        sessions: Sessions,
    }

    impl fmt::Debug for DatabaseStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("DatabaseStore")
                .field("kind", &self.shared.database.kind())
                .finish_non_exhaustive()
        }
    }

    use std::fmt;

    /// The boxed future every tower-sessions store method returns.
    type StoreFuture<'a, T> =
        std::pin::Pin<Box<dyn Future<Output = session_store::Result<T>> + Send + 'a>>;

    impl DatabaseStore {
        /// `call`'s own future once the tables exist (every request after the first),
        /// else that future behind the wait for them.
        fn when_ready<'f, T: Send + 'f>(&'f self, call: StoreFuture<'f, T>) -> StoreFuture<'f, T> {
            if self.shared.tables.initialized() {
                return call;
            }
            Box::pin(async move {
                ensure_tables(&self.shared.database, &self.shared.tables)
                    .await
                    .map_err(|error| session_store::Error::Backend(format!("database: {error}")))?;
                call.await
            })
        }
    }

    // Written out rather than through `#[async_trait]`: once the tables exist, each
    // method hands back the sqlx store's own boxed future (no second box per request).
    impl SessionStore for DatabaseStore {
        fn create<'s, 'r, 'f>(&'s self, record: &'r mut Record) -> StoreFuture<'f, ()>
        where
            's: 'f,
            'r: 'f,
            Self: 'f,
        {
            self.when_ready(each_store!(&self.sessions, store => store.create(record)))
        }

        fn save<'s, 'r, 'f>(&'s self, record: &'r Record) -> StoreFuture<'f, ()>
        where
            's: 'f,
            'r: 'f,
            Self: 'f,
        {
            self.when_ready(each_store!(&self.sessions, store => store.save(record)))
        }

        fn load<'s, 'i, 'f>(&'s self, id: &'i Id) -> StoreFuture<'f, Option<Record>>
        where
            's: 'f,
            'i: 'f,
            Self: 'f,
        {
            self.when_ready(each_store!(&self.sessions, store => store.load(id)))
        }

        fn delete<'s, 'i, 'f>(&'s self, id: &'i Id) -> StoreFuture<'f, ()>
        where
            's: 'f,
            'i: 'f,
            Self: 'f,
        {
            self.when_ready(each_store!(&self.sessions, store => store.delete(id)))
        }
    }

    /// Revocation stamps in the app's database (table `kvixi_revocations`, one row per
    /// revoked user, deleted after the absolute session lifetime), for every instance on
    /// that database, with the same short per-process cache as
    /// [`RedisRevocations`](crate::RedisRevocations): a revocation ends the user's
    /// sessions at once on the instance that made it, and within
    /// [`DEFAULT_REVOCATION_CACHE`](crate::DEFAULT_REVOCATION_CACHE) on the others.
    /// The flow uses it by itself with `KVIXI_DATABASE_URL`.
    pub struct DatabaseRevocations {
        shared: Shared,
        cache: StampCache,
    }

    impl fmt::Debug for DatabaseRevocations {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("DatabaseRevocations")
                .field("kind", &self.shared.database.kind())
                .finish_non_exhaustive()
        }
    }

    impl DatabaseRevocations {
        /// The user's stamp and ended sessions: one query.
        async fn read(&self, user_id: &str) -> Result<Revocation, Error> {
            let rows: Vec<(Option<i64>, Option<String>)> = on_pool!(&self.shared.database, pool => self
                .shared
                .call(
                    sqlx::query_as(
                        "select revoked_at, cast(null as text) from kvixi_revocations \
                         where user_id = $1 union all \
                         select cast(null as bigint), handle from kvixi_user_sessions \
                         where user_id = $1 and ended = 1",
                    )
                    .bind(user_id)
                    .fetch_all(pool),
                )
                .await?);
            let mut revocation = Revocation::default();
            let mut ended = Vec::new();
            for (stamp, handle) in rows {
                if let Some(stamp) = stamp {
                    revocation.stamp = Some(UnixTime(u64::try_from(stamp).unwrap_or(0)));
                }
                ended.extend(handle.as_deref().and_then(SessionHandle::parse));
            }
            if !ended.is_empty() {
                revocation.ended = Some(ended.into());
            }
            Ok(revocation)
        }

        /// Raises the user's stamp to `stamp` (the later of the two stays), kept until
        /// `expires`.
        async fn raise(&self, user_id: &str, stamp: UnixTime, expires: i64) -> Result<(), Error> {
            on_pool!(&self.shared.database, pool => self
                .shared
                .call(
                    sqlx::query(
                        "insert into kvixi_revocations (user_id, revoked_at, expires_at) \
                         values ($1, $2, $3) on conflict (user_id) do update set \
                         revoked_at = case when excluded.revoked_at > kvixi_revocations.revoked_at \
                         then excluded.revoked_at else kvixi_revocations.revoked_at end, \
                         expires_at = case when excluded.expires_at > kvixi_revocations.expires_at \
                         then excluded.expires_at else kvixi_revocations.expires_at end",
                    )
                    .bind(user_id)
                    .bind(to_i64(stamp.0))
                    .bind(expires)
                    .execute(pool),
                )
                .await
                .map(drop))
        }
    }

    #[async_trait]
    impl Revocations for DatabaseRevocations {
        async fn revoked_at(&self, user_id: &str) -> Result<Revocation, Error> {
            if let Some(revocation) = self.cache.get(user_id) {
                return Ok(revocation);
            }
            let revocation = self.read(user_id).await?;
            self.cache.put(user_id, revocation.clone());
            Ok(revocation)
        }

        fn revoked_at_now(&self, user_id: &str) -> Option<Revocation> {
            self.cache.get(user_id)
        }

        async fn latest_revocation(&self, user_id: &str) -> Result<Option<UnixTime>, Error> {
            let revocation = self.read(user_id).await?;
            let stamp = revocation.stamp;
            self.cache.put(user_id, revocation);
            Ok(stamp)
        }

        async fn revoke(&self, user_id: &str, at: UnixTime, keep: Duration) -> Result<(), Error> {
            let mut state = UserRevocations::stamp_only(self.read(user_id).await?.stamp);
            state.revoke(at);
            let stamp = state.stamp.unwrap_or(at);
            self.raise(user_id, stamp, to_i64(at.0.saturating_add(keep.as_secs())))
                .await?;
            // This instance knows at once; the others within their cache time. The
            // ended sessions all began before the stamp: it covers them.
            self.cache.put(user_id, Revocation::stamp(Some(stamp)));
            Ok(())
        }

        async fn index_login(
            &self,
            user_id: &str,
            session: &IndexedSession,
            _keep: Duration,
        ) -> Result<(), Error> {
            on_pool!(&self.shared.database, pool => self
                .shared
                .call(
                    sqlx::query(
                        "insert into kvixi_user_sessions (handle, user_id, logged_in_at, \
                         last_seen, browser, expires_at, ended) values ($1, $2, $3, $4, $5, $6, 0)",
                    )
                    .bind(session.handle.to_string())
                    .bind(user_id)
                    .bind(to_i64(session.logged_in_at.0))
                    .bind(to_i64(session.last_seen.0))
                    .bind(session.browser.as_str())
                    .bind(to_i64(session.expires_at.0))
                    .execute(pool),
                )
                .await
                .map(drop))
        }

        async fn indexed_sessions(
            &self,
            user_id: &str,
        ) -> Result<(Vec<IndexedSession>, Option<Revocation>), Error> {
            // The stamp beside each row: one query. (Ended rows are not listed; with no
            // row, no stamp is needed.)
            let rows: Vec<(String, i64, i64, String, i64, Option<i64>)> = on_pool!(&self.shared.database, pool => self
                .shared
                .call(
                    sqlx::query_as(
                        "select handle, logged_in_at, last_seen, browser, expires_at, \
                         (select revoked_at from kvixi_revocations where user_id = $1) \
                         from kvixi_user_sessions where user_id = $1 and ended = 0 \
                         order by logged_in_at desc limit $2",
                    )
                    .bind(user_id)
                    .bind(crate::devices::MAX_LISTED_SESSIONS as i64)
                    .fetch_all(pool),
                )
                .await?);
            let time = |seconds: i64| UnixTime(u64::try_from(seconds).unwrap_or(0));
            let stamp = rows.first().and_then(|row| row.5).map(time);
            let sessions = rows
                .into_iter()
                .filter_map(
                    |(handle, logged_in_at, last_seen, browser, expires_at, _)| {
                        Some(IndexedSession {
                            handle: SessionHandle::parse(&handle)?,
                            logged_in_at: time(logged_in_at),
                            last_seen: time(last_seen),
                            browser,
                            expires_at: time(expires_at),
                        })
                    },
                )
                .collect();
            Ok((sessions, Some(Revocation::stamp(stamp))))
        }

        async fn seen(
            &self,
            user_id: &str,
            handle: SessionHandle,
            at: UnixTime,
            expires_at: UnixTime,
        ) -> Result<(), Error> {
            on_pool!(&self.shared.database, pool => self
                .shared
                .call(
                    sqlx::query(
                        "update kvixi_user_sessions set last_seen = $3, expires_at = $4 \
                         where handle = $1 and user_id = $2 and ended = 0",
                    )
                    .bind(handle.to_string())
                    .bind(user_id)
                    .bind(to_i64(at.0))
                    .bind(to_i64(expires_at.0))
                    .execute(pool),
                )
                .await
                .map(drop))
        }

        async fn end_indexed(
            &self,
            user_id: &str,
            handle: SessionHandle,
            now: UnixTime,
            keep: Duration,
        ) -> Result<bool, Error> {
            // Ended where it is listed, kept until its absolute lifetime.
            let ended: Option<(i64,)> = on_pool!(&self.shared.database, pool => self
                .shared
                .call(
                    sqlx::query_as(
                        "update kvixi_user_sessions set ended = 1, \
                         expires_at = logged_in_at + $3 \
                         where handle = $1 and user_id = $2 and ended = 0 \
                         returning logged_in_at",
                    )
                    .bind(handle.to_string())
                    .bind(user_id)
                    .bind(to_i64(keep.as_secs()))
                    .fetch_optional(pool),
                )
                .await?);
            if ended.is_none() {
                return Ok(false);
            }
            // Past MAX_ENDED_SESSIONS, the oldest are folded into the stamp.
            let rows: Vec<(String, i64, i64)> = on_pool!(&self.shared.database, pool => self
                .shared
                .call(
                    sqlx::query_as(
                        "select handle, logged_in_at, expires_at from kvixi_user_sessions \
                         where user_id = $1 and ended = 1 and expires_at > $2",
                    )
                    .bind(user_id)
                    .bind(to_i64(now.0))
                    .fetch_all(pool),
                )
                .await?);
            if rows.len() > crate::devices::MAX_ENDED_SESSIONS {
                let time = |seconds: i64| UnixTime(u64::try_from(seconds).unwrap_or(0));
                let mut state = UserRevocations::stamp_only(self.read(user_id).await?.stamp);
                for (handle, logged_in_at, until) in rows {
                    if let Some(handle) = SessionHandle::parse(&handle) {
                        let session = EndedSession {
                            handle,
                            logged_in_at: time(logged_in_at),
                            until: time(until),
                        };
                        state.end(session, now);
                    }
                }
                if let Some(stamp) = state.stamp {
                    self.raise(user_id, stamp, to_i64(now.0.saturating_add(keep.as_secs())))
                        .await?;
                    // What the stamp covers needs no row of its own.
                    on_pool!(&self.shared.database, pool => self
                        .shared
                        .call(
                            sqlx::query(
                                "delete from kvixi_user_sessions where user_id = $1 \
                                 and ended = 1 and logged_in_at <= $2",
                            )
                            .bind(user_id)
                            .bind(to_i64(stamp.0))
                            .execute(pool),
                        )
                        .await
                        .map(drop))?;
                }
            }
            self.cache.put(user_id, self.read(user_id).await?);
            Ok(true)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn the_cleanup_task_stops_with_the_last_clone_of_the_flow() {
            let dir = std::env::temp_dir().join(format!("kvixi-cleanup-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a directory");
            let config = Config::builder("id", "s", "http://localhost/cb")
                .database_url(format!("sqlite://{}", dir.join("t.db").display()))
                .build()
                .expect("valid");
            let shared = Shared::connect(&config)
                .expect("connects")
                .expect("a database");
            let task = shared._cleanup.0.abort_handle();
            let clone = shared.clone();
            drop(shared);
            tokio::task::yield_now().await;
            assert!(!task.is_finished(), "a clone of the flow still runs it");
            drop(clone);
            for _ in 0..100 {
                if task.is_finished() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert!(task.is_finished(), "the last clone stops it");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
