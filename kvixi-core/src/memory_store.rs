//! `MemoryStore`: tower-sessions records in this process's memory, bounded and expiring.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use time::OffsetDateTime;
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store;

use crate::Config;

/// The bound of [`MemoryStore::default`]: the default of [`Config::max_memory_sessions`].
const DEFAULT_MAX_SESSIONS: u64 = 100_000;

/// Session records in this process's memory: the default store of `kvixi-axum` and
/// `kvixi-rocket`, for one instance (several instances need a shared store, such as
/// `tower-sessions-redis-store`).
///
/// - **Bounded.** It holds at most `max_sessions` records
///   ([`Config::max_memory_sessions`], 100 000 by default). Past that, the least recently
///   used session (created, saved or loaded) is dropped, so a flood of new sessions costs
///   bounded memory and pushes out idle sessions, never active ones.
/// - **Expiring.** A record never loads after its `expiry_date`, and is freed within
///   about a second of it, whether or not a request ever asks for it again.
/// - **O(1).** Every operation costs the same however many sessions are held.
///
/// The store has no thread of its own: its bookkeeping (freeing expired records,
/// applying the bound) runs inside store operations, at the latest 300 ms or 64
/// operations after the previous run. Any traffic on any session therefore frees the
/// expired records that nobody touches; an idle server frees nothing, but grows nothing
/// either. Until a run applies it, the bound may be exceeded by a few hundred records.
///
/// Clones share the records: hand one store to the app and keep a clone to watch
/// [`len`](MemoryStore::len).
///
/// ```
/// use kvixi_core::{Config, MemoryStore};
///
/// let config = Config::builder("app", "secret", "https://app.example/auth/kvixi/callback")
///     .max_memory_sessions(10_000)
///     .build()?;
/// let store = MemoryStore::from_config(&config);
/// assert!(store.is_empty());
/// # Ok::<(), kvixi_core::Error>(())
/// ```
///
/// It is a moka cache with LRU eviction rather than `tower-sessions-moka-store`'s
/// `MokaStore`: that one builds moka's default TinyLFU cache, whose admission policy may
/// refuse a new session when the cache is full (a fresh login lost without an error), and
/// offers no way to choose another policy.
#[derive(Clone)]
pub struct MemoryStore {
    records: Cache<Id, Record>,
}

impl MemoryStore {
    /// A store holding at most `max_sessions` sessions (at least one).
    pub fn new(max_sessions: u64) -> Self {
        let records = Cache::builder()
            .max_capacity(max_sessions.max(1))
            // LRU admits every new record; TinyLFU could reject a new login when full.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(UntilExpiryDate)
            .build();
        MemoryStore { records }
    }

    /// A store holding at most [`Config::max_memory_sessions`] sessions.
    pub fn from_config(config: &Config) -> Self {
        MemoryStore::new(config.max_memory_sessions())
    }

    /// The most sessions this store holds.
    pub fn max_sessions(&self) -> u64 {
        self.records
            .policy()
            .max_capacity()
            .unwrap_or(DEFAULT_MAX_SESSIONS)
    }

    /// The number of sessions held. It first runs the store's bookkeeping (frees the
    /// expired records, applies the bound), so it is exact but not free: call it to
    /// monitor the store, not on every request.
    pub fn len(&self) -> usize {
        self.records.run_pending_tasks();
        usize::try_from(self.records.entry_count()).unwrap_or(usize::MAX)
    }

    /// Whether the store holds no session (see [`len`](MemoryStore::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryStore {
    /// A store holding at most 100 000 sessions, the default of
    /// [`Config::max_memory_sessions`].
    fn default() -> Self {
        MemoryStore::new(DEFAULT_MAX_SESSIONS)
    }
}

impl fmt::Debug for MemoryStore {
    // Never the records: they hold access tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_sessions", &self.max_sessions())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Inserting only if absent, in one step: a colliding id never replaces a session.
        loop {
            let entry = self
                .records
                .entry(record.id)
                .or_insert_with(|| record.clone());
            if entry.is_fresh() {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.records.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        // An expired record is never returned, even before the bookkeeping frees it.
        Ok(self.records.get(session_id))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.records.invalidate(session_id);
        Ok(())
    }
}

/// Each record lives until its own `expiry_date`, recomputed whenever it is saved.
struct UntilExpiryDate;

impl UntilExpiryDate {
    /// The time left until `record` expires; zero once it has.
    fn time_left(record: &Record) -> Duration {
        Duration::try_from(record.expiry_date - OffsetDateTime::now_utc()).unwrap_or_default()
    }
}

impl moka::Expiry<Id, Record> for UntilExpiryDate {
    fn expire_after_create(&self, _: &Id, record: &Record, _: Instant) -> Option<Duration> {
        Some(Self::time_left(record))
    }

    fn expire_after_update(
        &self,
        _: &Id,
        record: &Record,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(Self::time_left(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with `value` under "k", expiring in `lifetime` (negative: already expired).
    fn record(value: &str, lifetime: time::Duration) -> Record {
        Record {
            id: Id::default(),
            data: [("k".to_owned(), serde_json::Value::from(value))].into(),
            expiry_date: OffsetDateTime::now_utc() + lifetime,
        }
    }

    async fn created(store: &MemoryStore, value: &str) -> Record {
        let mut record = record(value, time::Duration::hours(1));
        store.create(&mut record).await.expect("created");
        record
    }

    async fn loads(store: &MemoryStore, record: &Record) -> bool {
        store.load(&record.id).await.expect("load").is_some()
    }

    #[tokio::test]
    async fn a_created_session_loads_until_deleted() {
        let store = MemoryStore::default();
        let mut record = created(&store, "1").await;
        assert_eq!(store.load(&record.id).await.unwrap(), Some(record.clone()));

        record.data.insert("k".to_owned(), "2".into());
        store.save(&record).await.unwrap();
        assert_eq!(store.load(&record.id).await.unwrap(), Some(record.clone()));

        store.delete(&record.id).await.unwrap();
        assert_eq!(store.load(&record.id).await.unwrap(), None);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn create_never_replaces_a_held_session() {
        let store = MemoryStore::default();
        let held = created(&store, "held").await;
        let mut colliding = record("new", time::Duration::hours(1));
        colliding.id = held.id;
        store.create(&mut colliding).await.unwrap();

        assert_ne!(colliding.id, held.id, "the new session got another id");
        assert_eq!(store.load(&held.id).await.unwrap(), Some(held));
        assert_eq!(store.load(&colliding.id).await.unwrap(), Some(colliding));
    }

    #[tokio::test]
    async fn a_full_store_keeps_the_recently_used_and_evicts_the_least_recently_used() {
        let store = MemoryStore::new(3);
        let oldest = created(&store, "oldest").await;
        let idle = created(&store, "idle").await;
        let recent = created(&store, "recent").await;
        store.records.run_pending_tasks();
        // Reading the oldest makes `idle` the least recently used.
        assert!(loads(&store, &oldest).await);
        store.records.run_pending_tasks();

        let newest = created(&store, "newest").await;
        assert_eq!(store.len(), 3, "never more than the bound");
        assert!(
            !loads(&store, &idle).await,
            "the least recently used is evicted"
        );
        for kept in [&oldest, &recent, &newest] {
            assert!(loads(&store, kept).await, "{:?} is kept", kept.data);
        }
    }

    #[tokio::test]
    async fn a_new_login_is_admitted_into_a_full_store_of_busy_sessions() {
        // TinyLFU would refuse `newcomer`: it was never read, the held ones often.
        let store = MemoryStore::new(2);
        let busy = [created(&store, "a").await, created(&store, "b").await];
        store.records.run_pending_tasks();
        for _ in 0..5 {
            for record in &busy {
                assert!(loads(&store, record).await);
            }
        }
        store.records.run_pending_tasks();

        let newcomer = created(&store, "newcomer").await;
        store.records.run_pending_tasks();
        assert!(
            loads(&store, &newcomer).await,
            "a fresh login is never lost"
        );
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn an_expired_session_is_freed_without_being_loaded() {
        let store = MemoryStore::default();
        let mut short = record("short", time::Duration::milliseconds(200));
        store.create(&mut short).await.unwrap();
        let long = created(&store, "long").await;
        store.records.run_pending_tasks();
        assert_eq!(store.records.entry_count(), 2);

        tokio::time::sleep(Duration::from_millis(1200)).await;
        // Traffic on another session runs the bookkeeping, which frees `short`.
        assert!(loads(&store, &long).await);
        assert_eq!(store.records.entry_count(), 1, "freed by other traffic");
        assert!(!loads(&store, &short).await);
    }

    #[tokio::test]
    async fn a_session_saved_past_its_expiry_no_longer_loads() {
        let store = MemoryStore::default();
        let mut record = created(&store, "1").await;
        record.expiry_date = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        store.save(&record).await.unwrap();
        assert!(!loads(&store, &record).await);
    }

    #[tokio::test]
    async fn debug_shows_no_session() {
        let store = MemoryStore::default();
        created(&store, "token").await;
        let debug = format!("{store:?}");
        assert!(!debug.contains("token"), "{debug}");
    }

    #[tokio::test]
    async fn the_bound_comes_from_the_config() {
        let config = Config::builder("app", "secret", "https://app.example/auth/kvixi/callback")
            .max_memory_sessions(4)
            .build()
            .expect("valid config");
        let store = MemoryStore::from_config(&config);
        assert_eq!(store.max_sessions(), 4);
        for n in 0..10 {
            created(&store, &n.to_string()).await;
        }
        assert_eq!(store.len(), 4);
        assert_eq!(MemoryStore::default().max_sessions(), 100_000);
    }
}
