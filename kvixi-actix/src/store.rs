//! `MemoryStore`: server-side sessions in the process's memory, bounded and expiring.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;
use kvixi_core::Config;
use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

/// The entries of one session, as actix-session hands them over (JSON text).
type State = HashMap<String, String>;

/// The bound of [`MemoryStore::default`]: the default of [`Config::max_memory_sessions`].
const DEFAULT_MAX_SESSIONS: u64 = 100_000;

/// Sessions kept in this process's memory: the default store, for one instance.
///
/// - **Bounded.** It holds at most `max_sessions` sessions
///   ([`Config::max_memory_sessions`], 100 000 by default). Past that, the least recently
///   used session (saved, updated or loaded) is dropped, so a flood of new sessions costs
///   bounded memory and pushes out idle sessions, never active ones.
/// - **Expiring.** A session never loads once its time to live has passed, and is freed
///   within about a second of it, whether or not a request ever asks for it again.
/// - **O(1).** Every operation costs the same however many sessions are held.
///
/// The store has no thread of its own: its bookkeeping (freeing expired sessions,
/// applying the bound) runs inside store operations, at the latest 300 ms or 64
/// operations after the previous run. Any traffic on any session therefore frees the
/// expired sessions that nobody touches; an idle server frees nothing, but grows nothing
/// either. Until a run applies it, the bound may be exceeded by a few hundred sessions.
///
/// Session keys are 64 random alphanumerics (about 380 bits). Clones share the
/// sessions: [`with_kvixi`](crate::KvixiAppExt::with_kvixi) makes one per flow for every
/// worker; passed to [`session_middleware`](crate::session_middleware), create one store
/// before `HttpServer::new` and clone it into each worker. Several instances need a
/// shared store instead: a Redis URL in the `Config` ([`RedisStore`](crate::RedisStore)).
///
/// ```
/// use kvixi_actix::{Config, MemoryStore};
///
/// let config = Config::builder("app", "secret", "https://app.example/auth/kvixi/callback")
///     .max_memory_sessions(10_000)
///     .build()?;
/// let store = MemoryStore::from_config(&config);
/// assert!(store.is_empty());
/// # Ok::<(), kvixi_core::Error>(())
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    sessions: Cache<String, Stored>,
}

/// One session: its state, shared so that moka's clones cost nothing, and the time to
/// live the last save, update or `update_ttl` gave it.
#[derive(Clone)]
struct Stored {
    state: Arc<State>,
    ttl: std::time::Duration,
}

impl Stored {
    fn new(state: State, ttl: &Duration) -> Stored {
        Stored {
            state: Arc::new(state),
            ttl: std_duration(ttl),
        }
    }
}

/// A time to live as moka takes it; a negative one has already ended.
fn std_duration(ttl: &Duration) -> std::time::Duration {
    std::time::Duration::try_from(*ttl).unwrap_or_default()
}

impl MemoryStore {
    /// A store holding at most `max_sessions` sessions (at least one).
    pub fn new(max_sessions: u64) -> Self {
        let sessions = Cache::builder()
            .max_capacity(max_sessions.max(1))
            // LRU admits every new session; moka's default, TinyLFU, could refuse a new
            // login when the store is full.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(TimeToLive)
            .build();
        MemoryStore { sessions }
    }

    /// A store holding at most [`Config::max_memory_sessions`] sessions.
    pub fn from_config(config: &Config) -> Self {
        MemoryStore::new(config.max_memory_sessions())
    }

    /// The most sessions this store holds.
    pub fn max_sessions(&self) -> u64 {
        self.sessions
            .policy()
            .max_capacity()
            .unwrap_or(DEFAULT_MAX_SESSIONS)
    }

    /// The number of sessions held. It first runs the store's bookkeeping (frees the
    /// expired sessions, applies the bound), so it is exact but not free: call it to
    /// monitor the store, not on every request.
    pub fn len(&self) -> usize {
        self.sessions.run_pending_tasks();
        usize::try_from(self.sessions.entry_count()).unwrap_or(usize::MAX)
    }

    /// Whether the store holds no session (see [`len`](MemoryStore::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `stored` under a new key: one insert-if-absent, whatever the number held.
    fn insert_new(&self, stored: Stored) -> SessionKey {
        loop {
            let key = generate_session_key();
            let entry = self
                .sessions
                .entry(key.as_ref().to_owned())
                .or_insert_with(|| stored.clone());
            if entry.is_fresh() {
                return key;
            }
        }
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
    // Never the sessions: they hold access tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_sessions", &self.max_sessions())
            .finish_non_exhaustive()
    }
}

impl SessionStore for MemoryStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        // An expired session is never returned, even before the bookkeeping frees it.
        let stored = self.sessions.get(session_key.as_ref());
        Ok(stored.map(|stored| State::clone(&stored.state)))
    }

    async fn save(&self, session_state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        Ok(self.insert_new(Stored::new(session_state, ttl)))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let stored = Stored::new(session_state, ttl);
        // Replaces the session only if it is still live, atomically for this key.
        let replaced = self
            .sessions
            .entry(session_key.as_ref().to_owned())
            .and_compute_with(|live| match live {
                Some(_) => Op::Put(stored.clone()),
                None => Op::Nop,
            });
        match replaced {
            CompResult::ReplacedWith(_) => Ok(session_key),
            // Expired or evicted since it was loaded: never bring a key back, start anew.
            _ => Ok(self.insert_new(stored)),
        }
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        let ttl = std_duration(ttl);
        self.sessions
            .entry(session_key.as_ref().to_owned())
            .and_compute_with(|live| match live {
                Some(entry) => Op::Put(Stored {
                    ttl,
                    ..entry.into_value()
                }),
                None => Op::Nop,
            });
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        self.sessions.invalidate(session_key.as_ref());
        Ok(())
    }
}

/// Each session lives for the time to live of its last save, update or `update_ttl`.
struct TimeToLive;

impl moka::Expiry<String, Stored> for TimeToLive {
    fn expire_after_create(
        &self,
        _: &String,
        stored: &Stored,
        _: Instant,
    ) -> Option<std::time::Duration> {
        Some(stored.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        stored: &Stored,
        _: Instant,
        _: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        Some(stored.ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(value: &str) -> State {
        HashMap::from([("k".to_owned(), value.to_owned())])
    }

    async fn saved(store: &MemoryStore, value: &str) -> SessionKey {
        store.save(state(value), &Duration::hours(1)).await.unwrap()
    }

    async fn loads(store: &MemoryStore, key: &SessionKey) -> bool {
        store.load(key).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn a_saved_session_loads_until_deleted() {
        let store = MemoryStore::default();
        let key = saved(&store, "1").await;
        assert!(key.as_ref().len() >= 43, "at least 256 bits of key");
        assert_eq!(store.load(&key).await.unwrap(), Some(state("1")));
        let key = store
            .update(key, state("2"), &Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(state("2")));
        assert_eq!(store.len(), 1);
        store.delete(&key).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn an_expired_session_does_not_load() {
        let store = MemoryStore::default();
        for ttl in [Duration::ZERO, Duration::seconds(-1)] {
            let key = store.save(state("1"), &ttl).await.unwrap();
            assert_eq!(store.load(&key).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn an_expired_session_is_freed_without_being_loaded() {
        let store = MemoryStore::default();
        let short = store
            .save(state("short"), &Duration::milliseconds(200))
            .await
            .unwrap();
        let long = saved(&store, "long").await;
        store.sessions.run_pending_tasks();
        assert_eq!(store.sessions.entry_count(), 2);

        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        // Traffic on another session runs the bookkeeping, which frees `short`.
        assert!(loads(&store, &long).await);
        assert_eq!(store.sessions.entry_count(), 1, "freed by other traffic");
        assert!(!loads(&store, &short).await);
    }

    #[tokio::test]
    async fn a_full_store_keeps_the_recently_used_and_evicts_the_least_recently_used() {
        let store = MemoryStore::new(3);
        let oldest = saved(&store, "oldest").await;
        let idle = saved(&store, "idle").await;
        let recent = saved(&store, "recent").await;
        store.sessions.run_pending_tasks();
        // Reading the oldest makes `idle` the least recently used.
        assert!(loads(&store, &oldest).await);
        store.sessions.run_pending_tasks();

        let newest = saved(&store, "newest").await;
        assert_eq!(store.len(), 3, "never more than the bound");
        assert!(
            !loads(&store, &idle).await,
            "the least recently used is evicted"
        );
        for kept in [&oldest, &recent, &newest] {
            assert!(loads(&store, kept).await);
        }
    }

    #[tokio::test]
    async fn a_new_login_is_admitted_into_a_full_store_of_busy_sessions() {
        // TinyLFU would refuse `newcomer`: it was never read, the held ones often.
        let store = MemoryStore::new(2);
        let busy = [saved(&store, "a").await, saved(&store, "b").await];
        store.sessions.run_pending_tasks();
        for _ in 0..5 {
            for key in &busy {
                assert!(loads(&store, key).await);
            }
        }
        store.sessions.run_pending_tasks();

        let newcomer = saved(&store, "newcomer").await;
        store.sessions.run_pending_tasks();
        assert!(
            loads(&store, &newcomer).await,
            "a fresh login is never lost"
        );
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn an_expired_session_is_not_revived_by_an_update() {
        let store = MemoryStore::default();
        let old = store.save(state("1"), &Duration::ZERO).await.unwrap();
        let old_text = old.as_ref().to_owned();
        let new = store
            .update(old, state("2"), &Duration::hours(1))
            .await
            .unwrap();
        assert_ne!(new.as_ref(), old_text);
        assert_eq!(store.load(&new).await.unwrap(), Some(state("2")));
        let old = SessionKey::try_from(old_text).unwrap();
        assert_eq!(store.load(&old).await.unwrap(), None);
    }

    #[tokio::test]
    async fn keys_are_unique_and_unguessable() {
        let store = MemoryStore::default();
        let a = store.save(State::new(), &Duration::hours(1)).await.unwrap();
        let b = store.save(State::new(), &Duration::hours(1)).await.unwrap();
        assert_ne!(a, b);
        let forged = SessionKey::try_from("forged".to_owned()).unwrap();
        assert_eq!(store.load(&forged).await.unwrap(), None);
    }

    #[tokio::test]
    async fn update_ttl_extends_a_session() {
        let store = MemoryStore::default();
        let key = store
            .save(state("1"), &Duration::milliseconds(100))
            .await
            .unwrap();
        store.update_ttl(&key, &Duration::hours(1)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(store.load(&key).await.unwrap(), Some(state("1")));
    }

    #[tokio::test]
    async fn update_ttl_ends_a_session() {
        let store = MemoryStore::default();
        let key = saved(&store, "1").await;
        store.update_ttl(&key, &Duration::ZERO).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None);
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
            saved(&store, &n.to_string()).await;
        }
        assert_eq!(store.len(), 4);
        assert_eq!(MemoryStore::default().max_sessions(), 100_000);
    }

    #[test]
    fn debug_shows_no_session() {
        let store = MemoryStore::default();
        store.sessions.insert(
            "key".to_owned(),
            Stored::new(state("token"), &Duration::hours(1)),
        );
        let debug = format!("{store:?}");
        assert!(!debug.contains("token"), "{debug}");
    }
}
