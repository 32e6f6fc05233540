//! "Your devices": a user's live sessions, listed, and ended one at a time.
//!
//! Each login gets a random [`SessionHandle`], kept in its auth record and in a small
//! per-user index beside the revocation stamps (the same store: memory, Redis or the
//! database), at most [`MAX_LISTED_SESSIONS`] entries per user, newest first. A handle
//! names a session without opening it: it is not the session id, and nothing made from
//! it logs anyone in.
//!
//! Ending one session adds its handle to the user's *ended* list, which travels with the
//! user's revocation stamp: the read every logged-in request makes anyway (cached for
//! [`DEFAULT_REVOCATION_CACHE`](crate::DEFAULT_REVOCATION_CACHE) by the shared stores).
//! So a session ended on one instance is over on every instance within that cache time,
//! and a user who never ended a session pays nothing more. The ended session's record
//! is removed at its next read, as a revoked one's is.
//!
//! The index is written once at login and once at each renewal of the session (which
//! also keeps `last_seen`), never at other requests.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::driver::Kvixi;
use crate::error::Error;
use crate::flow::{self, UnixTime};
use crate::reply::Reply;
use crate::session::SessionStorage;

/// Most sessions of one user the index keeps (and [`Kvixi::sessions_of`] lists): the
/// newest. Older sessions are not listed; "log out everywhere" still ends them.
pub const MAX_LISTED_SESSIONS: usize = 50;

/// Most bytes of the form an adapter reads for `POST sessions/end`
/// ([`Kvixi::handle_end_session`]): a handle and a `return_to`. A larger form is a 413.
pub const MAX_END_SESSION_FORM_BYTES: usize = 4096;

/// Most ended sessions whose handles one user's revocation state carries. Past it, the
/// oldest ended session is folded into the user's revocation stamp: it stays over, and
/// so does every session of the user begun no later (fails closed, never open).
pub const MAX_ENDED_SESSIONS: usize = 64;

/// The opaque name of one login's session in "your devices": 128 random bits, written as
/// 32 hex digits. Not the session id: it opens nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(u128);

impl SessionHandle {
    /// A new random handle.
    pub fn random() -> SessionHandle {
        SessionHandle(rand::random())
    }

    /// Parses the 32 hex digits of a handle; `None` for anything else.
    pub fn parse(text: &str) -> Option<SessionHandle> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(SessionHandle)
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({self})")
    }
}

impl Serialize for SessionHandle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionHandle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = SessionHandle;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a session handle (32 hex digits)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SessionHandle, E> {
                SessionHandle::parse(text).ok_or_else(|| E::custom("not a session handle"))
            }
        }
        // Read from the borrowed text: no allocation on the per-request path.
        deserializer.deserialize_str(Hex)
    }
}

/// One session in a user's index, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedSession {
    /// The session's handle.
    pub handle: SessionHandle,
    /// When it logged in.
    pub logged_in_at: UnixTime,
    /// When it was last seen: its login, then each renewal of its expiry.
    pub last_seen: UnixTime,
    /// The browser's family, from the login's `User-Agent` ([`browser_family`]).
    pub browser: String,
    /// When the entry no longer matters: the session's idle timeout after `last_seen`,
    /// never past its absolute lifetime.
    pub expires_at: UnixTime,
}

/// One of a user's sessions, as "your devices" shows it (`GET /auth/kvixi/sessions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device {
    /// The handle to end it with ([`Kvixi::end_session`]).
    pub handle: SessionHandle,
    /// When it logged in (Unix seconds).
    pub logged_in_at: UnixTime,
    /// When it was last seen (Unix seconds), at the granularity of the session's
    /// renewals (a sixth of its idle timeout).
    pub last_seen: UnixTime,
    /// A short browser name ("Firefox on Linux"), never the full `User-Agent`.
    pub browser: String,
    /// Whether it is the session that asked.
    pub current: bool,
}

/// What a user's revocation state says at a read: the stamp ("every session begun at or
/// before it is over") and the handles of the sessions ended one by one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revocation {
    /// The latest "log out everywhere" (or revocation), if any.
    pub stamp: Option<UnixTime>,
    /// Sessions ended one at a time; `None` when there are none (the common case costs
    /// no allocation, and a clone of a non-empty list only a reference count).
    pub ended: Option<Arc<[SessionHandle]>>,
}

impl Revocation {
    /// Only a stamp.
    pub fn stamp(stamp: Option<UnixTime>) -> Revocation {
        Revocation { stamp, ended: None }
    }

    /// Whether the session named `handle` was ended one by one.
    pub fn ends(&self, handle: Option<SessionHandle>) -> bool {
        match (&self.ended, handle) {
            (Some(ended), Some(handle)) => ended.contains(&handle),
            _ => false,
        }
    }

    /// What this revocation state and the session limits of `config` make, at `now`, of
    /// a session that began at `started` (see [`flow::session_started`]) under `handle`:
    /// the one decision behind a read ([`Kvixi::current_user`]) and "your devices".
    pub(crate) fn check(
        &self,
        config: &crate::Config,
        started: UnixTime,
        handle: Option<SessionHandle>,
        now: UnixTime,
    ) -> flow::SessionCheck {
        if self.ends(handle) {
            return flow::SessionCheck::Ended;
        }
        flow::check_session(config, started, self.stamp, now)
    }
}

/// An ended session, as a user's revocation state keeps it until it no longer matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndedSession {
    /// Its handle.
    pub handle: SessionHandle,
    /// When it logged in: folded into the stamp if the list overflows.
    pub logged_in_at: UnixTime,
    /// After this the session would be over anyway (its absolute lifetime).
    pub until: UnixTime,
}

/// A user's revocation state as the shared stores keep it: the stamp and the ended
/// sessions. The decisions on it (what a revocation clears, what an overflow folds) are
/// here, once, for every store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserRevocations {
    /// The stamp.
    pub stamp: Option<UnixTime>,
    /// The ended sessions still within their lifetime.
    pub ended: Vec<EndedSession>,
}

impl UserRevocations {
    /// A state with `stamp` and no ended session.
    pub fn stamp_only(stamp: Option<UnixTime>) -> UserRevocations {
        UserRevocations {
            stamp,
            ended: Vec::new(),
        }
    }

    /// The state after a revocation at `at`: the new stamp (see
    /// [`flow::revocation_stamp`]); the ended sessions all began before it, so their list
    /// is no longer needed.
    pub fn revoke(&mut self, at: UnixTime) {
        self.stamp = Some(flow::revocation_stamp(at, self.stamp));
        self.ended.clear();
    }

    /// The state after `session` was ended at `now`: expired entries dropped, and the
    /// oldest folded into the stamp past [`MAX_ENDED_SESSIONS`].
    pub fn end(&mut self, session: EndedSession, now: UnixTime) {
        self.ended
            .retain(|ended| ended.until > now && ended.handle != session.handle);
        if self
            .stamp
            .is_some_and(|stamp| session.logged_in_at <= stamp)
        {
            return; // already over
        }
        self.ended.push(session);
        if self.ended.len() > MAX_ENDED_SESSIONS {
            self.ended.sort_by_key(|ended| ended.logged_in_at);
            let excess = self.ended.len() - MAX_ENDED_SESSIONS;
            let folded = self.ended[excess - 1].logged_in_at;
            self.stamp = self.stamp.max(Some(folded));
            self.ended.retain(|ended| ended.logged_in_at > folded);
        }
    }

    /// What a read returns.
    pub fn revocation(&self) -> Revocation {
        let ended = if self.ended.is_empty() {
            None
        } else {
            Some(self.ended.iter().map(|ended| ended.handle).collect())
        };
        Revocation {
            stamp: self.stamp,
            ended,
        }
    }

    /// The state as one line of text (Redis keeps it as the value of the user's stamp
    /// key): the stamp's seconds (`-` for none), then `handle:logged_in_at:until` per
    /// ended session. A bare number, as stamps were written before ended sessions
    /// existed, reads as that stamp.
    pub fn encode(&self) -> String {
        let mut text = match self.stamp {
            Some(stamp) => stamp.0.to_string(),
            None => "-".to_owned(),
        };
        for ended in &self.ended {
            text.push_str(&format!(
                " {}:{}:{}",
                ended.handle, ended.logged_in_at.0, ended.until.0
            ));
        }
        text
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` for text it did not write.
    pub fn decode(text: &str) -> Option<UserRevocations> {
        let mut parts = text.split(' ');
        let stamp = match parts.next()? {
            "-" => None,
            seconds => Some(UnixTime(seconds.parse().ok()?)),
        };
        let ended = parts
            .map(|part| {
                let mut fields = part.split(':');
                let handle = SessionHandle::parse(fields.next()?)?;
                let logged_in_at = UnixTime(fields.next()?.parse().ok()?);
                let until = UnixTime(fields.next()?.parse().ok()?);
                Some(EndedSession {
                    handle,
                    logged_in_at,
                    until,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(UserRevocations { stamp, ended })
    }
}

/// A short name for the browser behind `user_agent`: its family and, when known, its
/// system ("Firefox on Linux", "Safari on iOS"). Nothing else of the header is kept.
pub fn browser_family(user_agent: Option<&str>) -> String {
    let Some(agent) = user_agent else {
        return "Unknown browser".to_owned();
    };
    let family = [
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("OPR/", "Opera"),
        ("Opera", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("HeadlessChrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(token, _)| agent.contains(token))
    .map_or("Unknown browser", |(_, family)| family);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(token, _)| agent.contains(token))
    .map(|(_, system)| system);
    match system {
        Some(system) => format!("{family} on {system}"),
        None => family.to_owned(),
    }
}

/// The JSON of `GET sessions`.
#[derive(Serialize)]
struct SessionList<'a> {
    sessions: &'a [Device],
}

impl Kvixi {
    /// The live sessions of `user_id`, newest first, at most [`MAX_LISTED_SESSIONS`]:
    /// one read of the index (one round trip on Redis, one query on a database). None is
    /// marked current; see [`sessions_of_current`](Kvixi::sessions_of_current).
    pub async fn sessions_of(&self, user_id: &str) -> Result<Vec<Device>, Error> {
        self.devices(user_id, None).await
    }

    /// The sessions of the session's user, the session itself marked `current`; `None`
    /// when nobody is logged in.
    pub async fn sessions_of_current(
        &self,
        session: &dyn SessionStorage,
    ) -> Result<Option<Vec<Device>>, Error> {
        let Some(record) = self.auth_record(session).await? else {
            return Ok(None);
        };
        self.devices(&record.user.id, record.handle).await.map(Some)
    }

    async fn devices(
        &self,
        user_id: &str,
        current: Option<SessionHandle>,
    ) -> Result<Vec<Device>, Error> {
        let revocations = self.revocations();
        let (mut entries, revocation) = revocations.indexed_sessions(user_id).await?;
        let revocation = match revocation {
            Some(revocation) => revocation,
            None => revocations.revoked_at(user_id).await?,
        };
        let now = self.now();
        // An entry's login time is its session's start (`index_login` writes it).
        entries.retain(|entry| {
            entry.expires_at > now
                && revocation.check(self.config(), entry.logged_in_at, Some(entry.handle), now)
                    == flow::SessionCheck::Live
        });
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.logged_in_at));
        entries.truncate(MAX_LISTED_SESSIONS);
        Ok(entries
            .into_iter()
            .map(|entry| Device {
                current: Some(entry.handle) == current,
                handle: entry.handle,
                logged_in_at: entry.logged_in_at,
                last_seen: entry.last_seen,
                browser: entry.browser,
            })
            .collect())
    }

    /// Ends the session of `user_id` named `handle`, on every instance sharing this
    /// flow's revocations (at once here, within the revocation cache time elsewhere): it
    /// is anonymous at its next request, and its record is removed then.
    /// [`Error::UnknownSession`] (404) when `handle` is not one of the user's listed
    /// sessions.
    pub async fn end_session(&self, user_id: &str, handle: SessionHandle) -> Result<(), Error> {
        let keep = self.config().max_session_lifetime();
        let ended = self
            .revocations()
            .end_indexed(user_id, handle, self.now(), keep)
            .await?;
        if !ended {
            return Err(Error::UnknownSession);
        }
        crate::telemetry::revoked();
        tracing::info!(user_id, %handle, "kvixi session ended from another device");
        Ok(())
    }

    /// `GET sessions`: the current user's sessions as JSON
    /// (`{"sessions": [{"handle", "logged_in_at", "last_seen", "browser", "current"}]}`);
    /// 401 for nobody.
    pub async fn handle_sessions(&self, session: &dyn SessionStorage, prefers_json: bool) -> Reply {
        match self.sessions_of_current(session).await {
            Ok(Some(sessions)) => {
                let body = serde_json::to_string(&SessionList {
                    sessions: &sessions,
                })
                .unwrap_or_default();
                Reply {
                    status: 200,
                    location: None,
                    content_type: Some("application/json"),
                    body,
                    set_cookie: None,
                    retry_after: None,
                }
            }
            Ok(None) => self.failure(&Error::NotLoggedIn, prefers_json),
            Err(error) => self.failure(&error, prefers_json),
        }
    }

    /// `POST sessions/end` with the form `body` (`handle`, and an optional same-site
    /// `return_to`): ends that session of the current user ([`Kvixi::end_session`]).
    /// A browser is sent back with 303 (to `return_to`, or `/`); an API client gets 200
    /// `{"ended": handle}`. A handle that is not the user's is a 404 that says nothing
    /// more; nobody logged in is a 401. Ending the current session logs it out.
    pub async fn handle_end_session(
        &self,
        session: &dyn SessionStorage,
        body: &str,
        prefers_json: bool,
    ) -> Reply {
        let form = |name: &str| {
            url::form_urlencoded::parse(body.as_bytes())
                .find(|(field, _)| field == name)
                .map(|(_, value)| value.into_owned())
        };
        let outcome = async {
            let record = self.auth_record(session).await?.ok_or(Error::NotLoggedIn)?;
            let handle = form("handle")
                .as_deref()
                .and_then(SessionHandle::parse)
                .ok_or(Error::UnknownSession)?;
            self.end_session(&record.user.id, handle).await?;
            if record.handle == Some(handle) {
                self.close_session(session, Some(record.user)).await?;
            }
            Ok::<_, Error>(handle)
        };
        match outcome.await {
            Ok(handle) if prefers_json => Reply {
                status: 200,
                location: None,
                content_type: Some("application/json"),
                body: serde_json::json!({ "ended": handle }).to_string(),
                set_cookie: None,
                retry_after: None,
            },
            Ok(_) => {
                let back = crate::ReturnTo::sanitize(
                    form("return_to").as_deref(),
                    &crate::ReturnTo::root(),
                );
                Reply::see_other(back.as_str())
            }
            Err(error) => self.failure(&error, prefers_json),
        }
    }

    /// Records the login of `record`'s session in the user's index. A failure is logged
    /// and the login stands: the session is not listed, "log out everywhere" still ends it.
    pub(crate) async fn index_login(&self, record: &flow::AuthRecord, user_agent: Option<&str>) {
        let Some(handle) = record.handle else {
            return;
        };
        let entry = IndexedSession {
            handle,
            logged_in_at: record.logged_in_at,
            last_seen: record.logged_in_at,
            browser: browser_family(user_agent),
            expires_at: self.index_expiry(
                record.logged_in_at,
                record.logged_in_at,
                record.remembered,
            ),
        };
        let keep = self.config().max_session_lifetime();
        if let Err(error) = self
            .revocations()
            .index_login(&record.user.id, &entry, keep)
            .await
        {
            tracing::warn!(%error, "kvixi: the login is not in the user's session list");
        }
    }

    /// Moves the session's `last_seen` to now, at a renewal of its expiry.
    pub(crate) async fn index_seen(
        &self,
        user_id: &str,
        handle: SessionHandle,
        started: UnixTime,
        remembered: bool,
    ) {
        let now = self.now();
        let expires_at = self.index_expiry(started, now, remembered);
        if let Err(error) = self
            .revocations()
            .seen(user_id, handle, now, expires_at)
            .await
        {
            tracing::warn!(%error, "kvixi: the session's last_seen is not updated");
        }
    }

    fn index_expiry(&self, started: UnixTime, seen: UnixTime, remembered: bool) -> UnixTime {
        let idle = flow::session_idle_timeout(self.config(), remembered);
        seen.plus(idle)
            .min(started.plus(self.config().max_session_lifetime()))
    }
}

/// How long an index entry is kept by a store that expires whole keys: the absolute
/// session lifetime, at least a second.
pub(crate) fn keep_seconds(keep: Duration) -> i64 {
    i64::try_from(keep.as_secs().max(1)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(n: u128) -> SessionHandle {
        SessionHandle(n)
    }

    #[test]
    fn a_handle_reads_back_and_nothing_else_reads_as_one() {
        let h = SessionHandle::random();
        assert_eq!(SessionHandle::parse(&h.to_string()), Some(h));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<SessionHandle>(&json).unwrap(), h);
        for bad in [
            "",
            "xyz",
            "+0000000000000000000000000000000",
            &"0".repeat(33),
        ] {
            assert_eq!(SessionHandle::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_overflow_of_ended_sessions_folds_the_oldest_into_the_stamp() {
        let mut state = UserRevocations::default();
        let now = UnixTime(1_000);
        for n in 0..=MAX_ENDED_SESSIONS as u64 {
            let session = EndedSession {
                handle: handle(n.into()),
                logged_in_at: UnixTime(100 + n),
                until: UnixTime(10_000),
            };
            state.end(session, now);
        }
        assert_eq!(state.ended.len(), MAX_ENDED_SESSIONS);
        assert_eq!(
            state.stamp,
            Some(UnixTime(100)),
            "the oldest is over by the stamp"
        );
        let read = state.revocation();
        assert!(!read.ends(Some(handle(0))));
        assert!(read.ends(Some(handle(1))));
        assert!(read.ends(Some(handle(64))));
        // A revocation makes the list unneeded.
        state.revoke(now);
        assert!(state.ended.is_empty());
        assert_eq!(state.stamp, Some(now));
    }

    #[test]
    fn the_stored_text_reads_back_and_an_old_stamp_reads_as_one() {
        let mut state = UserRevocations::default();
        state.end(
            EndedSession {
                handle: handle(7),
                logged_in_at: UnixTime(5),
                until: UnixTime(50),
            },
            UnixTime(6),
        );
        assert_eq!(
            UserRevocations::decode(&state.encode()),
            Some(state.clone())
        );
        assert_eq!(
            UserRevocations::decode("1700000000"),
            Some(UserRevocations {
                stamp: Some(UnixTime(1_700_000_000)),
                ended: Vec::new()
            })
        );
        assert_eq!(UserRevocations::decode("x y"), None);
        // Expired ended sessions go at the next change.
        state.end(
            EndedSession {
                handle: handle(8),
                logged_in_at: UnixTime(60),
                until: UnixTime(500),
            },
            UnixTime(60),
        );
        assert_eq!(state.ended.len(), 1);
    }

    #[test]
    fn a_browser_is_named_by_its_family_and_system_only() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(browser_family(Some(firefox)), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(browser_family(Some(chrome)), "Chrome on Windows");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        assert_eq!(browser_family(Some(edge)), "Edge on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_family(Some(safari)), "Safari on iOS");
        assert_eq!(browser_family(None), "Unknown browser");
        assert_eq!(browser_family(Some("x<script>")), "Unknown browser");
    }
}
