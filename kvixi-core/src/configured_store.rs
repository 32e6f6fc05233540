//! `ConfiguredStore`: the session store the config names, one decision for every adapter.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store;

use crate::MemoryStore;

/// The session store a flow's config names, as the adapters' one-line setups use it:
/// the app's database with `KVIXI_DATABASE_URL` (feature `database`), the shared Redis
/// with `KVIXI_REDIS_URL` (feature `redis`), else this process's bounded
/// [`MemoryStore`]. Every clone shares the same sessions. Get it from
/// [`Kvixi::session_store`](crate::Kvixi::session_store), for a setup by hand.
#[derive(Clone)]
pub struct ConfiguredStore(pub(crate) Backend);

#[derive(Clone)]
pub(crate) enum Backend {
    Memory(MemoryStore),
    #[cfg(feature = "redis")]
    Redis(tower_sessions_redis_store::RedisStore<fred::clients::Pool>),
    #[cfg(feature = "database")]
    Database(crate::DatabaseStore),
}

impl ConfiguredStore {
    /// Whether the sessions live in this process only (the memory store): then nothing
    /// but this process can see them, and a restart ends them.
    pub fn is_per_process(&self) -> bool {
        matches!(self.0, Backend::Memory(_))
    }

    /// Where the sessions are: `memory`, `redis` or `database`.
    pub fn kind(&self) -> &'static str {
        match &self.0 {
            Backend::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            Backend::Redis(_) => "redis",
            #[cfg(feature = "database")]
            Backend::Database(_) => "database",
        }
    }
}

impl fmt::Debug for ConfiguredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConfiguredStore")
            .field(&self.kind())
            .finish()
    }
}

/// Forwards a call to whichever store the config named.
macro_rules! each {
    ($store:expr, $inner:ident => $call:expr) => {
        match &$store.0 {
            Backend::Memory($inner) => $call,
            #[cfg(feature = "redis")]
            Backend::Redis($inner) => $call,
            #[cfg(feature = "database")]
            Backend::Database($inner) => $call,
        }
    };
}

/// The boxed future every tower-sessions store method returns.
type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = session_store::Result<T>> + Send + 'a>>;

// Written out rather than through `#[async_trait]`: each method hands back the chosen
// store's own boxed future, so the session read of every request costs no second box.
impl SessionStore for ConfiguredStore {
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
