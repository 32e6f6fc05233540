//! `MemoryStore`: server-side sessions in the process's memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;

/// The entries of one session, as actix-session hands them over (JSON text).
type State = HashMap<String, String>;

/// Sessions kept in this process's memory: the default store, for one instance.
///
/// Session keys are 64 random alphanumerics (about 380 bits). A session is gone once
/// its time to live has passed; expired sessions are dropped when read and whenever a
/// new session is saved. Clones share the sessions: create one store before
/// `HttpServer::new` and clone it into each worker. Several instances need a shared
/// store instead (`RedisSessionStore`, feature `redis`).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    sessions: Arc<Mutex<HashMap<String, Stored>>>,
}

#[derive(Debug)]
struct Stored {
    state: State,
    /// `None`: a time to live too long to represent, that is, never.
    expires: Option<Instant>,
}

impl Stored {
    fn new(state: State, ttl: &Duration) -> Stored {
        Stored {
            state,
            expires: deadline(ttl),
        }
    }

    fn is_live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }
}

/// When a time to live that starts now ends; a negative one has already ended.
fn deadline(ttl: &Duration) -> Option<Instant> {
    let ttl = std::time::Duration::try_from(*ttl).unwrap_or_default();
    Instant::now().checked_add(ttl)
}

impl MemoryStore {
    /// The number of sessions held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Stored>> {
        // Every change below is a single map operation: a poisoned map is still whole.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert_new(&self, state: State, ttl: &Duration) -> SessionKey {
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, stored| stored.is_live(now));
        let key = loop {
            let key = generate_session_key();
            if !sessions.contains_key(key.as_ref()) {
                break key;
            }
        };
        sessions.insert(key.as_ref().to_owned(), Stored::new(state, ttl));
        key
    }
}

impl SessionStore for MemoryStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let mut sessions = self.lock();
        let key = session_key.as_ref();
        match sessions.get(key) {
            Some(stored) if stored.is_live(Instant::now()) => Ok(Some(stored.state.clone())),
            Some(_) => {
                sessions.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn save(&self, session_state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        Ok(self.insert_new(session_state, ttl))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        {
            let mut sessions = self.lock();
            if let Some(stored) = sessions.get_mut(session_key.as_ref())
                && stored.is_live(Instant::now())
            {
                *stored = Stored::new(session_state, ttl);
                return Ok(session_key);
            }
        }
        // Expired since it was loaded: never bring a key back, start a new session.
        Ok(self.insert_new(session_state, ttl))
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        if let Some(stored) = self.lock().get_mut(session_key.as_ref()) {
            stored.expires = deadline(ttl);
        }
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        self.lock().remove(session_key.as_ref());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(value: &str) -> State {
        HashMap::from([("k".to_owned(), value.to_owned())])
    }

    #[tokio::test]
    async fn a_saved_session_loads_until_deleted() {
        let store = MemoryStore::default();
        let key = store.save(state("1"), &Duration::hours(1)).await.unwrap();
        assert!(key.as_ref().len() >= 43, "at least 256 bits of key");
        assert_eq!(store.load(&key).await.unwrap(), Some(state("1")));
        let key = store
            .update(key, state("2"), &Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(state("2")));
        store.delete(&key).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_sessions_do_not_load_and_are_dropped() {
        let store = MemoryStore::default();
        let key = store.save(state("1"), &Duration::ZERO).await.unwrap();
        assert_eq!(store.len(), 1);
        assert_eq!(store.load(&key).await.unwrap(), None);
        assert!(store.is_empty(), "dropped when read");

        store
            .save(state("1"), &Duration::seconds(-1))
            .await
            .unwrap();
        store.save(state("2"), &Duration::hours(1)).await.unwrap();
        assert_eq!(store.len(), 1, "dropped when another session is saved");
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
        let key = store.save(state("1"), &Duration::ZERO).await.unwrap();
        store.update_ttl(&key, &Duration::hours(1)).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(state("1")));
    }
}
