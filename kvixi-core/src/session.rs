//! The small session interface each adapter implements for its framework's session.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::Error;

/// What the login flow needs from a server-side session.
///
/// Values are JSON: tower-sessions stores them as such, and string-based stores
/// (actix-session) serialize them. Implementations map their store's failures to
/// [`Error::Session`].
#[async_trait]
pub trait SessionStorage: Send + Sync {
    /// Reads a value; `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Value>, Error>;
    /// Writes a value, replacing any previous one.
    async fn insert(&self, key: &str, value: Value) -> Result<(), Error>;
    /// Removes a value; removing an absent key is not an error.
    async fn remove(&self, key: &str) -> Result<(), Error>;
    /// Gives the session a new id, keeping its data (defence against session fixation).
    async fn rotate_id(&self) -> Result<(), Error>;
    /// Ends the session: its server-side data is deleted and its cookie cleared.
    async fn destroy(&self) -> Result<(), Error>;
}

/// A single in-memory session, for tests, examples and command-line tools.
///
/// Web adapters use their framework's session instead.
#[derive(Debug, Default)]
pub struct MemorySession {
    state: std::sync::Mutex<MemorySessionState>,
}

#[derive(Debug, Default)]
struct MemorySessionState {
    id: u64,
    values: std::collections::HashMap<String, Value>,
}

impl MemorySession {
    /// The session's id: it changes at each rotation and each destroy.
    pub fn id(&self) -> u64 {
        self.lock().id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemorySessionState> {
        // A panic while holding this lock cannot leave the map half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStorage for MemorySession {
    async fn get(&self, key: &str) -> Result<Option<Value>, Error> {
        Ok(self.lock().values.get(key).cloned())
    }
    async fn insert(&self, key: &str, value: Value) -> Result<(), Error> {
        self.lock().values.insert(key.to_owned(), value);
        Ok(())
    }
    async fn remove(&self, key: &str) -> Result<(), Error> {
        self.lock().values.remove(key);
        Ok(())
    }
    async fn rotate_id(&self) -> Result<(), Error> {
        self.lock().id += 1;
        Ok(())
    }
    async fn destroy(&self) -> Result<(), Error> {
        let mut state = self.lock();
        state.values.clear();
        state.id += 1;
        Ok(())
    }
}
