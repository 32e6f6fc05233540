//! `RedisRevocations`: revocation stamps shared by every instance through Redis
//! (feature `redis`), with a short per-process cache in front.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::{KeysInterface, Pool};
use fred::types::Expiration;

use crate::error::Error;
use crate::flow::UnixTime;
use crate::revocation::{Revocations, StampCache};

/// Revocation stamps in Redis (one key per revoked user, `kvixi:revoked:{user_id}`,
/// expiring after the absolute session lifetime), for several instances behind a load
/// balancer. It works with any session store, in any adapter: give every instance's
/// [`Kvixi`](crate::Kvixi) one, on the same Redis.
///
/// Each instance caches what it read for [`DEFAULT_REVOCATION_CACHE`](crate::DEFAULT_REVOCATION_CACHE) (1 s; see
/// [`cache_for`](RedisRevocations::cache_for)), so that a logged-in request costs no
/// Redis round trip most of the time. A revocation therefore ends the user's sessions
/// at once on the instance that made it, and within the cache time on the others.
/// Redis failing or not answering within the timeout (2 s by default) is
/// [`Error::SessionStoreUnavailable`]: 503, nobody is told logged out or in.
///
/// ```no_run
/// use fred::prelude::*;
/// use kvixi_core::{Config, Kvixi, RedisRevocations};
///
/// # async fn run(config: kvixi_core::Config) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::new(fred::prelude::Config::from_url("redis://127.0.0.1:6379")?, None, None, None, 2)?;
/// pool.init().await?;
/// let kvixi = Kvixi::builder(config)
///     .revocations(RedisRevocations::new(pool))
///     .build()?;
/// # Ok(())
/// # }
/// ```
pub struct RedisRevocations {
    pool: Pool,
    prefix: String,
    timeout: Duration,
    cache: StampCache,
}

impl fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocations")
            .field("prefix", &self.prefix)
            .field("cache_for", &self.cache.cache_for)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisRevocations {
    /// Stamps in the Redis behind `pool` (initialized: `pool.init()`).
    pub fn new(pool: Pool) -> Self {
        RedisRevocations {
            pool,
            prefix: "kvixi:revoked:".to_owned(),
            timeout: Duration::from_secs(2),
            cache: StampCache::default(),
        }
    }

    /// How long a stamp read from Redis is trusted by this instance (default 1 s): the
    /// longest a revocation made elsewhere takes to reach it. `Duration::ZERO` reads
    /// Redis at every logged-in request.
    #[must_use]
    pub fn cache_for(mut self, cache_for: Duration) -> Self {
        self.cache.cache_for = cache_for;
        self
    }

    /// How long a Redis call may take before the request is answered 503 (default 2 s;
    /// use the session store timeout).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The prefix of the keys (default `kvixi:revoked:`), for apps sharing one Redis.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, user_id: &str) -> String {
        format!("{}{user_id}", self.prefix)
    }

    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, fred::error::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Error::SessionStoreUnavailable {
                problem: format!("revocations: {error}"),
            }),
            Err(_) => Err(Error::SessionStoreUnavailable {
                problem: format!(
                    "revocations: Redis did not answer within {:?}",
                    self.timeout
                ),
            }),
        }
    }
}

#[async_trait]
impl Revocations for RedisRevocations {
    async fn revoked_at(&self, user_id: &str) -> Result<Option<UnixTime>, Error> {
        if let Some(stamp) = self.cache.get(user_id) {
            return Ok(stamp);
        }
        self.latest_revocation(user_id).await
    }

    fn revoked_at_now(&self, user_id: &str) -> Option<Option<UnixTime>> {
        self.cache.get(user_id)
    }

    async fn latest_revocation(&self, user_id: &str) -> Result<Option<UnixTime>, Error> {
        let stamp: Option<u64> = self.call(self.pool.get(self.key(user_id))).await?;
        let stamp = stamp.map(UnixTime);
        self.cache.put(user_id, stamp);
        Ok(stamp)
    }

    async fn revoke(&self, user_id: &str, at: UnixTime, keep: Duration) -> Result<(), Error> {
        let key = self.key(user_id);
        let current: Option<u64> = self.call(self.pool.get(key.as_str())).await?;
        let stamp = crate::flow::revocation_stamp(at, current.map(UnixTime)).0;
        let seconds = i64::try_from(keep.as_secs().max(1)).unwrap_or(i64::MAX);
        let value = i64::try_from(stamp).unwrap_or(i64::MAX);
        let expire = Some(Expiration::EX(seconds));
        self.call(self.pool.set::<(), _, _>(key, value, expire, None, false))
            .await?;
        // This instance knows at once; the others within their cache time.
        self.cache.put(user_id, Some(UnixTime(stamp)));
        Ok(())
    }
}
