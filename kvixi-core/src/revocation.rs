//! Revoking a user everywhere: a per-user stamp, checked against each session's login
//! time at every read.
//!
//! [`Kvixi::revoke_user`] records "every session of this user that began at or before
//! now is over" as one stamp per user, in a [`Revocations`] store that every instance of
//! the app reads. Each read of an auth record (`current_user`, `current_token`,
//! `auth_record`, `current_app_user`) compares the record's `logged_in_at` with the
//! user's stamp: an older session is anonymous and its record is removed. No session is
//! scanned, whatever the store.
//!
//! A stamp is kept for [`Config::max_session_lifetime`](crate::Config::max_session_lifetime):
//! after that, every session it covers has reached its absolute lifetime anyway.
//!
//! - [`MemoryRevocations`] (the default) serves one instance: a bounded map, one lookup
//!   per read.
//! - `RedisRevocations` (feature `redis`) serves every instance
//!   sharing a Redis, whatever session store each adapter uses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::devices::{
    EndedSession, IndexedSession, MAX_LISTED_SESSIONS, Revocation, SessionHandle, UserRevocations,
};
use crate::driver::{Kvixi, KvixiBuilder};
use crate::error::Error;
use crate::flow::UnixTime;
use crate::reply::Reply;
use crate::session::SessionStorage;

/// Where the per-user revocation stamps live, with the ended sessions and the index of
/// "your devices" ([`crate::devices`]): it must be visible to every instance that serves
/// the same sessions.
#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// The user's revocation state: the latest stamp, if any (every session of the user
    /// that began at or before it is over), and the sessions ended one by one. Called at
    /// every read of a logged-in session: keep it cheap (a map lookup, or a cache in
    /// front of a network store).
    async fn revoked_at(&self, user_id: &str) -> Result<Revocation, Error>;

    /// The state when it is known without waiting (an in-memory map, a fresh cache
    /// entry): `Some(state)`. `None` (the default) makes the caller await
    /// [`revoked_at`](Revocations::revoked_at). Spares the common path a boxed future.
    fn revoked_at_now(&self, user_id: &str) -> Option<Revocation> {
        let _ = user_id;
        None
    }

    /// The stamp as the shared store holds it right now, bypassing any cache: read at
    /// login, so that a new session begins after the latest revocation.
    async fn latest_revocation(&self, user_id: &str) -> Result<Option<UnixTime>, Error> {
        Ok(self.revoked_at(user_id).await?.stamp)
    }

    /// Records that every session of `user_id` that began at or before `at` is over,
    /// and keeps that stamp for `keep` (the absolute session lifetime). The stamp
    /// written is [`flow::revocation_stamp`](crate::flow::revocation_stamp) of `at` and
    /// the current one: never earlier than it, and past the sessions begun in its second
    /// ([`UserRevocations::revoke`](crate::devices::UserRevocations::revoke)).
    async fn revoke(&self, user_id: &str, at: UnixTime, keep: Duration) -> Result<(), Error>;

    /// Adds a login to the user's index of sessions, kept at most `keep` (the absolute
    /// session lifetime), the newest [`MAX_LISTED_SESSIONS`](crate::devices::MAX_LISTED_SESSIONS)
    /// per user: one store write. The default keeps no index (nothing is listed).
    async fn index_login(
        &self,
        user_id: &str,
        session: &IndexedSession,
        keep: Duration,
    ) -> Result<(), Error> {
        let _ = (user_id, session, keep);
        Ok(())
    }

    /// The user's index as stored, and the user's revocation state when the same read
    /// gives it (`None`: the caller reads it itself). The caller drops what is expired,
    /// revoked or ended. One store round trip.
    async fn indexed_sessions(
        &self,
        user_id: &str,
    ) -> Result<(Vec<IndexedSession>, Option<Revocation>), Error> {
        let _ = user_id;
        Ok((Vec::new(), None))
    }

    /// Moves the indexed session's `last_seen` and `expires_at` (at a renewal of its
    /// expiry); nothing when it is not indexed.
    async fn seen(
        &self,
        user_id: &str,
        handle: SessionHandle,
        at: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), Error> {
        let _ = (user_id, handle, at, expires_at);
        Ok(())
    }

    /// Ends the indexed session `handle` of `user_id`: out of the index, and among the
    /// user's ended sessions ([`UserRevocations::end`](crate::devices::UserRevocations::end))
    /// until `keep` after its login. `false` when the user has no such indexed session.
    async fn end_indexed(
        &self,
        user_id: &str,
        handle: SessionHandle,
        now: UnixTime,
        keep: Duration,
    ) -> Result<bool, Error> {
        let _ = (user_id, handle, now, keep);
        Ok(false)
    }
}

/// Revocation stamps, ended sessions and the index of "your devices" in this process's
/// memory: the default, for one instance.
///
/// Bounded: it holds at most `capacity` users' stamps (65 536 by default). When full, a
/// new stamp first drops the expired ones; if none is, the oldest stamp is dropped and
/// its time becomes a floor below which *every* session counts as revoked. So a full map
/// fails closed (some users log in again early), never open (a revoked session back).
/// The index holds at most `capacity` users too; when full, it drops expired entries,
/// then a whole user's list (those sessions are no longer listed; they stay live).
///
/// A read is one atomic load and a short hash for a user who was never revoked (a 64-bit
/// filter of the revoked users' ids), a read-locked map lookup otherwise.
#[derive(Debug)]
pub struct MemoryRevocations {
    capacity: usize,
    /// One bit per hashed revoked user id; every bit once a floor exists. Never cleared.
    filter: AtomicU64,
    state: RwLock<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    /// Revocation state, what a read returns, and the time after which it no longer
    /// matters, per user.
    users: HashMap<String, MemoryUser>,
    /// Every session that began at or before it is revoked (stamps dropped when full).
    floor: Option<UnixTime>,
    /// "Your devices", per user.
    index: HashMap<String, Vec<IndexedSession>>,
}

#[derive(Debug)]
struct MemoryUser {
    state: UserRevocations,
    read: Revocation,
    until: UnixTime,
}

impl MemoryState {
    /// Makes room for one more user in a full map: drops what expired by `now`, else the
    /// user whose state is oldest, raising the floor over every session it ended.
    fn make_room(&mut self, capacity: usize, user_id: &str, now: UnixTime) {
        if self.users.contains_key(user_id) || self.users.len() < capacity {
            return;
        }
        self.users.retain(|_, user| user.until > now);
        if self.users.len() < capacity {
            return;
        }
        let covers = |user: &MemoryUser| {
            let ended = user
                .state
                .ended
                .iter()
                .map(|ended| ended.logged_in_at)
                .max();
            user.state.stamp.max(ended)
        };
        let oldest = self
            .users
            .iter()
            .min_by_key(|(_, user)| covers(user))
            .map(|(id, user)| (id.clone(), covers(user)));
        if let Some((id, covered)) = oldest {
            self.users.remove(&id);
            self.floor = self.floor.max(covered);
        }
    }

    /// Changes `user_id`'s state with `change`, keeping it at least until `until`.
    fn change(
        &mut self,
        capacity: usize,
        user_id: &str,
        now: UnixTime,
        until: UnixTime,
        change: impl FnOnce(&mut UserRevocations),
    ) {
        self.make_room(capacity, user_id, now);
        let floor = self.floor;
        let user = self
            .users
            .entry(user_id.to_owned())
            .or_insert_with(|| MemoryUser {
                state: UserRevocations {
                    stamp: floor,
                    ended: Vec::new(),
                },
                read: Revocation::default(),
                until,
            });
        user.state.stamp = user.state.stamp.max(floor);
        change(&mut user.state);
        user.read = user.state.revocation();
        user.until = user.until.max(until);
    }
}

/// How long an instance trusts a stamp it read from a shared store (Redis, the
/// database), by default: the longest a revocation made on another instance takes to
/// reach this one.
pub const DEFAULT_REVOCATION_CACHE: Duration = Duration::from_secs(1);

/// Most users whose stamps one instance caches; past it the cache starts again empty.
const MAX_CACHED_USERS: usize = 65_536;

/// The short per-process cache in front of a shared stamp store: what was read, and
/// when, per user.
#[derive(Debug)]
#[cfg_attr(not(any(feature = "redis", feature = "database")), allow(dead_code))]
pub(crate) struct StampCache {
    pub(crate) cache_for: Duration,
    stamps: std::sync::Mutex<HashMap<String, (Revocation, std::time::Instant)>>,
}

impl Default for StampCache {
    fn default() -> Self {
        StampCache {
            cache_for: DEFAULT_REVOCATION_CACHE,
            stamps: std::sync::Mutex::default(),
        }
    }
}

#[cfg_attr(not(any(feature = "redis", feature = "database")), allow(dead_code))]
impl StampCache {
    /// The state read less than `cache_for` ago, if any.
    pub(crate) fn get(&self, user_id: &str) -> Option<Revocation> {
        let stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        let (revocation, read_at) = stamps.get(user_id)?;
        (read_at.elapsed() < self.cache_for).then(|| revocation.clone())
    }

    /// Remembers `revocation` as read now.
    pub(crate) fn put(&self, user_id: &str, revocation: Revocation) {
        let mut stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        if stamps.len() >= MAX_CACHED_USERS && !stamps.contains_key(user_id) {
            stamps.clear();
        }
        stamps.insert(user_id.to_owned(), (revocation, std::time::Instant::now()));
    }
}

/// How many users' stamps [`MemoryRevocations::default`] holds.
pub const DEFAULT_MEMORY_REVOCATIONS: usize = 65_536;

impl Default for MemoryRevocations {
    fn default() -> Self {
        MemoryRevocations::new(DEFAULT_MEMORY_REVOCATIONS)
    }
}

impl MemoryRevocations {
    /// A map holding at most `capacity` users' stamps.
    pub fn new(capacity: usize) -> Self {
        MemoryRevocations {
            capacity: capacity.max(1),
            filter: AtomicU64::new(0),
            state: RwLock::new(MemoryState::default()),
        }
    }

    /// How many users' stamps are held.
    pub fn len(&self) -> usize {
        self.read().users.len()
    }

    /// Whether no stamp is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, user_id: &str) -> Revocation {
        if self.filter.load(Ordering::Acquire) & filter_bit(user_id) == 0 {
            return Revocation::default();
        }
        let state = self.read();
        match state.users.get(user_id) {
            Some(user) => {
                let mut read = user.read.clone();
                read.stamp = read.stamp.max(state.floor);
                read
            }
            None => Revocation::stamp(state.floor),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MemoryState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, MemoryState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets reads of `user_id` (every user's, once a floor exists) see the map.
    fn mark(&self, state: &MemoryState, user_id: &str) {
        let bits = match state.floor {
            Some(_) => u64::MAX,
            None => filter_bit(user_id),
        };
        self.filter.fetch_or(bits, Ordering::Release);
    }
}

#[async_trait]
impl Revocations for MemoryRevocations {
    async fn revoked_at(&self, user_id: &str) -> Result<Revocation, Error> {
        Ok(self.lookup(user_id))
    }

    fn revoked_at_now(&self, user_id: &str) -> Option<Revocation> {
        Some(self.lookup(user_id))
    }

    async fn revoke(&self, user_id: &str, at: UnixTime, keep: Duration) -> Result<(), Error> {
        let mut state = self.write();
        state.change(self.capacity, user_id, at, at.plus(keep), |user| {
            user.revoke(at);
        });
        self.mark(&state, user_id);
        Ok(())
    }

    async fn index_login(
        &self,
        user_id: &str,
        session: &IndexedSession,
        _keep: Duration,
    ) -> Result<(), Error> {
        let now = session.logged_in_at;
        let mut state = self.write();
        if !state.index.contains_key(user_id) && state.index.len() >= self.capacity {
            state.index.retain(|_, sessions| {
                sessions.retain(|session| session.expires_at > now);
                !sessions.is_empty()
            });
            if state.index.len() >= self.capacity {
                let some = state.index.keys().next().cloned();
                if let Some(user) = some {
                    state.index.remove(&user);
                }
            }
        }
        let sessions = state.index.entry(user_id.to_owned()).or_default();
        sessions.retain(|kept| kept.expires_at > now && kept.handle != session.handle);
        sessions.push(session.clone());
        if sessions.len() > MAX_LISTED_SESSIONS {
            sessions.sort_by_key(|session| std::cmp::Reverse(session.logged_in_at));
            sessions.truncate(MAX_LISTED_SESSIONS);
        }
        Ok(())
    }

    async fn indexed_sessions(
        &self,
        user_id: &str,
    ) -> Result<(Vec<IndexedSession>, Option<Revocation>), Error> {
        let sessions = self.read().index.get(user_id).cloned().unwrap_or_default();
        Ok((sessions, Some(self.lookup(user_id))))
    }

    async fn seen(
        &self,
        user_id: &str,
        handle: SessionHandle,
        at: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), Error> {
        let mut state = self.write();
        let found = state
            .index
            .get_mut(user_id)
            .and_then(|sessions| sessions.iter_mut().find(|s| s.handle == handle));
        if let Some(session) = found {
            session.last_seen = at;
            session.expires_at = expires_at;
        }
        Ok(())
    }

    async fn end_indexed(
        &self,
        user_id: &str,
        handle: SessionHandle,
        now: UnixTime,
        keep: Duration,
    ) -> Result<bool, Error> {
        let mut state = self.write();
        let Some(sessions) = state.index.get_mut(user_id) else {
            return Ok(false);
        };
        let Some(at) = sessions.iter().position(|s| s.handle == handle) else {
            return Ok(false);
        };
        let ended = sessions.remove(at);
        let until = ended.logged_in_at.plus(keep);
        state.change(self.capacity, user_id, now, until, |user| {
            user.end(
                EndedSession {
                    handle,
                    logged_in_at: ended.logged_in_at,
                    until,
                },
                now,
            );
        });
        self.mark(&state, user_id);
        Ok(true)
    }
}

/// The bit of `user_id` in the filter: the top 6 bits of its FNV-1a hash.
fn filter_bit(user_id: &str) -> u64 {
    let hash = user_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    1 << (hash >> 58)
}

impl KvixiBuilder {
    /// Keeps revocation stamps in `revocations` instead of the default: the shared Redis
    /// when the config has a Redis URL (`RedisRevocations`, feature `redis`), this
    /// process's memory ([`MemoryRevocations`]) otherwise. Several instances need a
    /// shared one, or a revocation made on one instance is unknown to the others.
    pub fn revocations(mut self, revocations: impl Revocations) -> Self {
        self.revocations = Some(Arc::new(revocations));
        self
    }
}

impl Kvixi {
    /// Ends every session of `user_id`, on every instance that shares this flow's
    /// [`Revocations`]: each is anonymous at its next request and its record is removed.
    /// A login after this call is not affected. Callable from any handler or task (an
    /// admin banning a user, a password-reset-like flow).
    pub async fn revoke_user(&self, user_id: &str) -> Result<(), Error> {
        let keep = self.config().max_session_lifetime();
        self.revocations().revoke(user_id, self.now(), keep).await?;
        crate::telemetry::revoked();
        tracing::info!(
            user_id,
            "kvixi user revoked: every session of theirs is over"
        );
        Ok(())
    }

    /// Logs the session's user out everywhere: revokes them (see [`Kvixi::revoke_user`])
    /// and ends this session. An anonymous session is just ended.
    pub async fn logout_everywhere(&self, session: &dyn SessionStorage) -> Result<(), Error> {
        // Read once: after the revocation this session no longer counts, and the audit
        // event must still name who left.
        let Some(user) = self.current_user(session).await? else {
            return self.close_session(session, None).await;
        };
        self.revoke_user(&user.id).await?;
        // Done: the stamp ends this session too. A store that fails to remove its record
        // now (an outage that began after the stamp) changes nothing for the user, so it
        // is not answered as a failure: the record goes at its next read.
        self.close_revoked_session(session, user).await;
        Ok(())
    }

    /// `POST logout-everywhere`: [`Kvixi::logout_everywhere`]; 303 to `/`.
    pub async fn handle_logout_everywhere(
        &self,
        session: &dyn SessionStorage,
        prefers_json: bool,
    ) -> Reply {
        match self.logout_everywhere(session).await {
            Ok(()) => Reply::see_other("/"),
            Err(error) => self.failure(&error, prefers_json),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::flow::{SessionCheck, check_session, login_time, session_started};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn config() -> Config {
        Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .max_session_lifetime(7 * DAY)
            .build()
            .expect("valid config")
    }

    #[tokio::test]
    async fn a_stamp_ends_the_sessions_that_began_before_it_and_only_those() {
        let revocations = MemoryRevocations::default();
        assert_eq!(revocations.revoked_at("1001").await.unwrap().stamp, None);
        revocations
            .revoke("1001", UnixTime(100), DAY)
            .await
            .unwrap();
        let stamp = revocations.revoked_at("1001").await.unwrap().stamp;
        assert_eq!(stamp, Some(UnixTime(100)));
        assert_eq!(revocations.revoked_at("1002").await.unwrap().stamp, None);

        let config = config();
        let check = |started| check_session(&config, UnixTime(started), stamp, UnixTime(150));
        assert_eq!(check(99), SessionCheck::Revoked);
        assert_eq!(check(100), SessionCheck::Revoked, "the same second");
        assert_eq!(check(101), SessionCheck::Live);
        // A login in the revocation's second starts after it.
        assert_eq!(login_time(UnixTime(100), stamp), UnixTime(101));
        assert_eq!(login_time(UnixTime(120), stamp), UnixTime(120));
        assert_eq!(login_time(UnixTime(120), None), UnixTime(120));

        revocations.revoke("1001", UnixTime(50), DAY).await.unwrap();
        assert_eq!(
            revocations.revoked_at("1001").await.unwrap().stamp,
            Some(UnixTime(101)),
            "an earlier stamp never un-revokes (and still ends the sessions dated 101)"
        );
    }

    #[tokio::test]
    async fn a_second_revocation_in_the_same_second_ends_the_logins_between() {
        let config = config();
        let revocations = MemoryRevocations::default();
        revocations
            .revoke("1001", UnixTime(100), DAY)
            .await
            .unwrap();
        // The phone logs in after the first "log out everywhere", in its second.
        let phone = login_time(
            UnixTime(100),
            revocations.revoked_at("1001").await.unwrap().stamp,
        );
        assert_eq!(phone, UnixTime(101));
        // The laptop logs out everywhere, still in that second: the phone is out too.
        revocations
            .revoke("1001", UnixTime(100), DAY)
            .await
            .unwrap();
        let stamp = revocations.revoked_at("1001").await.unwrap().stamp;
        assert_eq!(
            check_session(&config, phone, stamp, UnixTime(100)),
            SessionCheck::Revoked,
            "a session begun between two revocations of one second survives the second"
        );
        // A login after the second one is not affected by it.
        let later = login_time(UnixTime(100), stamp);
        assert_eq!(
            check_session(&config, later, stamp, UnixTime(100)),
            SessionCheck::Live
        );
    }

    #[test]
    fn the_absolute_lifetime_counts_from_the_login_whatever_the_activity() {
        let config = config();
        let limit = 7 * DAY.as_secs();
        let check = |now| check_session(&config, UnixTime(1000), None, UnixTime(now));
        assert_eq!(check(1000 + limit), SessionCheck::Live);
        assert_eq!(check(1000 + limit + 1), SessionCheck::LifetimeReached);
        // A record from before `logged_in_at` existed counts from its token exchange.
        assert_eq!(session_started(UnixTime(0), UnixTime(5)), UnixTime(5));
        assert_eq!(session_started(UnixTime(9), UnixTime(5)), UnixTime(9));
    }

    #[tokio::test]
    async fn users_sharing_a_filter_bit_are_told_apart_by_the_map() {
        let revocations = MemoryRevocations::default();
        let revoked = "1001";
        let twin = (0..10_000)
            .map(|i| format!("user-{i}"))
            .find(|id| filter_bit(id) == filter_bit(revoked))
            .expect("64 bits: some id shares the bit");
        revocations.revoke(revoked, UnixTime(5), DAY).await.unwrap();
        assert_eq!(
            revocations.revoked_at(revoked).await.unwrap().stamp,
            Some(UnixTime(5))
        );
        assert_eq!(revocations.revoked_at(&twin).await.unwrap().stamp, None);
        assert_eq!(
            revocations.revoked_at_now(&twin),
            Some(Revocation::default()),
            "never awaits"
        );
    }

    #[tokio::test]
    async fn a_full_map_drops_expired_stamps_then_fails_closed() {
        let revocations = MemoryRevocations::new(2);
        revocations.revoke("a", UnixTime(10), DAY).await.unwrap();
        revocations.revoke("b", UnixTime(20), DAY).await.unwrap();
        revocations.revoke("c", UnixTime(30), DAY).await.unwrap();
        assert_eq!(revocations.len(), 2, "bounded");
        // a's stamp was dropped: its time became a floor for everyone.
        assert_eq!(
            revocations.revoked_at("a").await.unwrap().stamp,
            Some(UnixTime(10))
        );
        assert_eq!(
            revocations.revoked_at("stranger").await.unwrap().stamp,
            Some(UnixTime(10))
        );
        assert_eq!(
            revocations.revoked_at("c").await.unwrap().stamp,
            Some(UnixTime(30))
        );

        // Once b and c have expired, a new stamp takes their room without a floor.
        let later = UnixTime(30).plus(DAY).plus(Duration::from_secs(1));
        let fresh = MemoryRevocations::new(2);
        fresh.revoke("b", UnixTime(20), DAY).await.unwrap();
        fresh.revoke("c", UnixTime(30), DAY).await.unwrap();
        fresh.revoke("d", later, DAY).await.unwrap();
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh.revoked_at("stranger").await.unwrap().stamp, None);
    }
}
