//! `RedisRevocations`: revocation stamps shared by every instance through Redis
//! (feature `redis`), with a short per-process cache in front.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use std::collections::HashMap;

use fred::interfaces::LuaInterface as _;
use fred::prelude::{HashesInterface, KeysInterface, Pool};

use crate::devices::{
    EndedSession, IndexedSession, MAX_LISTED_SESSIONS, Revocation, SessionHandle, UserRevocations,
};
use crate::error::Error;
use crate::flow::UnixTime;
use crate::revocation::{Revocations, StampCache};

/// Revocation stamps in Redis (one key per revoked user, `kvixi:revoked:{user_id}`,
/// expiring after the absolute session lifetime), for several instances behind a load
/// balancer. The same key carries the sessions the user ended one by one, and a hash
/// beside it (`kvixi:revoked:{user_id}:devices`) the index of "your devices"
/// ([`crate::devices`]). It works with any session store, in any adapter: give every instance's
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

/// Replaces the user's state `KEYS[1]` by `ARGV[2]` (kept `ARGV[3]` seconds) only if it
/// still reads `ARGV[1]` (`''` for none): 1, or 0 when another instance changed it first.
const COMPARE_AND_SET: &str = r"
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
";

/// Adds `ARGV[2]` (JSON) under handle `ARGV[1]` to the index `KEYS[1]`; past `ARGV[4]`
/// entries drops the expired ones (at `ARGV[3]`) and then the oldest logins; keeps the
/// key at least `ARGV[5]` seconds. One write, one round trip.
const INDEX_LOGIN: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local most = tonumber(ARGV[4])
if redis.call('HLEN', KEYS[1]) > most then
  local all = redis.call('HGETALL', KEYS[1])
  local live = {}
  for i = 1, #all, 2 do
    local entry = cjson.decode(all[i + 1])
    if entry.expires_at <= tonumber(ARGV[3]) then
      redis.call('HDEL', KEYS[1], all[i])
    else
      table.insert(live, {all[i], entry.logged_in_at})
    end
  end
  if #live > most then
    table.sort(live, function(a, b) return a[2] > b[2] end)
    for i = most + 1, #live do redis.call('HDEL', KEYS[1], live[i][1]) end
  end
end
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
return 1
";

/// Sets `last_seen` `ARGV[2]` and `expires_at` `ARGV[3]` of the entry `ARGV[1]` of the
/// index `KEYS[1]`, if it is there.
const INDEX_SEEN: &str = r"
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return 0 end
local entry = cjson.decode(json)
entry.last_seen = tonumber(ARGV[2])
entry.expires_at = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 1
";

/// The user's state stored as `text` under `key` (empty: none).
fn decode_state(key: &str, text: &str) -> Result<UserRevocations, Error> {
    if text.is_empty() {
        return Ok(UserRevocations::default());
    }
    // Not ours to read: failing closed would log nobody out, failing open might let a
    // revoked session back. Say so.
    UserRevocations::decode(text).ok_or_else(|| Error::SessionStoreUnavailable {
        problem: format!("revocations: the value of {key} is not a revocation state"),
    })
}

/// How often a change of a user's state is tried again when other instances keep
/// changing it between the read and the write.
const CHANGE_ATTEMPTS: usize = 8;

impl RedisRevocations {
    fn index_key(&self, user_id: &str) -> String {
        format!("{}{user_id}:devices", self.prefix)
    }

    /// The user's state as stored, and its text (for the compare-and-set).
    async fn state(&self, key: &str) -> Result<(UserRevocations, String), Error> {
        let text: Option<String> = self.call(self.pool.get(key)).await?;
        let text = text.unwrap_or_default();
        Ok((decode_state(key, &text)?, text))
    }

    /// The user's state read from Redis now, remembered in the cache.
    async fn fresh(&self, user_id: &str) -> Result<Revocation, Error> {
        let (state, _) = self.state(&self.key(user_id)).await?;
        let revocation = state.revocation();
        self.cache.put(user_id, revocation.clone());
        Ok(revocation)
    }

    /// Changes the user's state with `change`, atomically against other instances.
    async fn change(
        &self,
        user_id: &str,
        keep: Duration,
        change: impl Fn(&mut UserRevocations),
    ) -> Result<(), Error> {
        let key = self.key(user_id);
        for _ in 0..CHANGE_ATTEMPTS {
            let (mut state, before) = self.state(&key).await?;
            change(&mut state);
            let after = state.encode();
            let args = vec![
                before,
                after,
                crate::devices::keep_seconds(keep).to_string(),
            ];
            let set: i64 = self
                .call(self.pool.eval(COMPARE_AND_SET, key.as_str(), args))
                .await?;
            if set == 1 {
                // This instance knows at once; the others within their cache time.
                self.cache.put(user_id, state.revocation());
                return Ok(());
            }
        }
        Err(Error::SessionStoreUnavailable {
            problem: format!("revocations: {key} kept changing under {CHANGE_ATTEMPTS} attempts"),
        })
    }
}

#[async_trait]
impl Revocations for RedisRevocations {
    async fn revoked_at(&self, user_id: &str) -> Result<Revocation, Error> {
        if let Some(revocation) = self.cache.get(user_id) {
            return Ok(revocation);
        }
        self.fresh(user_id).await
    }

    fn revoked_at_now(&self, user_id: &str) -> Option<Revocation> {
        self.cache.get(user_id)
    }

    async fn latest_revocation(&self, user_id: &str) -> Result<Option<UnixTime>, Error> {
        Ok(self.fresh(user_id).await?.stamp)
    }

    async fn revoke(&self, user_id: &str, at: UnixTime, keep: Duration) -> Result<(), Error> {
        self.change(user_id, keep, |state| state.revoke(at)).await
    }

    async fn index_login(
        &self,
        user_id: &str,
        session: &IndexedSession,
        keep: Duration,
    ) -> Result<(), Error> {
        let json = serde_json::to_string(session).map_err(|e| Error::Session(e.to_string()))?;
        let args = vec![
            session.handle.to_string(),
            json,
            session.logged_in_at.0.to_string(),
            MAX_LISTED_SESSIONS.to_string(),
            crate::devices::keep_seconds(keep).to_string(),
        ];
        let key = self.index_key(user_id);
        let _: i64 = self
            .call(self.pool.eval(INDEX_LOGIN, key.as_str(), args))
            .await?;
        Ok(())
    }

    async fn indexed_sessions(
        &self,
        user_id: &str,
    ) -> Result<(Vec<IndexedSession>, Option<Revocation>), Error> {
        // The state and the index in one pipeline: one round trip.
        let pipeline = self.pool.next().pipeline();
        let key = self.key(user_id);
        let queued: Result<(), fred::error::Error> = async {
            let () = pipeline.get(key.as_str()).await?;
            let () = pipeline.hgetall(self.index_key(user_id)).await?;
            Ok(())
        }
        .await;
        self.call(async { queued }).await?;
        let (state, all): (Option<String>, HashMap<String, String>) =
            self.call(pipeline.all()).await?;
        let state = decode_state(&key, state.as_deref().unwrap_or_default())?;
        let revocation = state.revocation();
        self.cache.put(user_id, revocation.clone());
        let sessions = all
            .values()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        Ok((sessions, Some(revocation)))
    }

    async fn seen(
        &self,
        user_id: &str,
        handle: SessionHandle,
        at: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), Error> {
        let args = vec![
            handle.to_string(),
            at.0.to_string(),
            expires_at.0.to_string(),
        ];
        let key = self.index_key(user_id);
        let _: i64 = self
            .call(self.pool.eval(INDEX_SEEN, key.as_str(), args))
            .await?;
        Ok(())
    }

    async fn end_indexed(
        &self,
        user_id: &str,
        handle: SessionHandle,
        now: UnixTime,
        keep: Duration,
    ) -> Result<bool, Error> {
        let key = self.index_key(user_id);
        let field = handle.to_string();
        let json: Option<String> = self
            .call(self.pool.hget(key.as_str(), field.as_str()))
            .await?;
        let Some(entry) = json.and_then(|json| serde_json::from_str::<IndexedSession>(&json).ok())
        else {
            return Ok(false);
        };
        let ended = EndedSession {
            handle,
            logged_in_at: entry.logged_in_at,
            until: entry.logged_in_at.plus(keep),
        };
        self.change(user_id, keep, |state| state.end(ended, now))
            .await?;
        // Out of the list once it is over (a failure here leaves an ended session
        // listed until its entry expires: the next attempt finds it ended already).
        let _: i64 = self
            .call(self.pool.hdel(key.as_str(), field.as_str()))
            .await?;
        Ok(true)
    }
}
