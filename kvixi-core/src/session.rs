//! The small session interface each adapter implements for its framework's session.

use async_trait::async_trait;

use crate::error::Error;

/// What the login flow needs from a server-side session.
///
/// Values are JSON text, kept as one string: reading the current user then costs one
/// string copy and one parse, instead of cloning a JSON tree (tower-sessions' stores
/// clone what they hold on every load) and converting it. Implementations map their
/// store's failures to [`Error::Session`].
#[async_trait]
pub trait SessionStorage: Send + Sync {
    /// Reads a value's JSON text; `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<String>, Error>;
    /// Writes a value's JSON text, replacing any previous value.
    async fn insert(&self, key: &str, json: String) -> Result<(), Error>;
    /// Removes a value; removing an absent key is not an error.
    async fn remove(&self, key: &str) -> Result<(), Error>;
    /// Gives the session a new id, keeping its data (defence against session fixation).
    async fn rotate_id(&self) -> Result<(), Error>;
    /// Ends the session: its server-side data is deleted and its cookie cleared.
    async fn destroy(&self) -> Result<(), Error>;
    /// Keeps this session for `idle` without a request, instead of the idle timeout, in a
    /// persistent cookie (`Max-Age`): a login with "remember me"
    /// ([`flow::session_idle_timeout`](crate::flow::session_idle_timeout)). The flow calls
    /// it at such a login, after [`rotate_id`](SessionStorage::rotate_id) and before it
    /// writes the auth record, whose write stores the choice; the session keeps it until
    /// it ends. The default does nothing: the session keeps the idle timeout and its
    /// usual cookie.
    fn remember(&self, idle: std::time::Duration) {
        let _ = idle;
    }
    /// Whether reading the auth record in this request pushed the session's expiry back
    /// (a renewal), told once: the flow then moves the session's `last_seen` in "your
    /// devices". The default says never (`last_seen` stays the login time).
    fn renewed(&self) -> bool {
        false
    }
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
    values: std::collections::HashMap<String, String>,
    remembered: Option<std::time::Duration>,
}

impl MemorySession {
    /// The session's id: it changes at each rotation and each destroy.
    pub fn id(&self) -> u64 {
        self.lock().id
    }

    /// How long the session is kept without a request when it was remembered
    /// ([`SessionStorage::remember`]); `None` for the idle timeout.
    pub fn remembered(&self) -> Option<std::time::Duration> {
        self.lock().remembered
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
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self.lock().values.get(key).cloned())
    }
    async fn insert(&self, key: &str, json: String) -> Result<(), Error> {
        self.lock().values.insert(key.to_owned(), json);
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
        state.remembered = None;
        state.id += 1;
        Ok(())
    }
    fn remember(&self, idle: std::time::Duration) {
        self.lock().remembered = Some(idle);
    }
}
