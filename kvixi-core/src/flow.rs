//! The login flow as pure transitions: no I/O, no clock, no framework.
//!
//! Each function takes what is in the session, what the request brought and the
//! current time, and returns the new session state or the failure. The
//! [`Kvixi`](crate::Kvixi) driver performs the effects (session writes, calls to Kvixi).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;
use url::form_urlencoded;

use crate::config::Config;
use crate::error::Error;
use crate::return_to::ReturnTo;
use crate::secret::{AccessToken, AuthKey};
use crate::user::KvixiUser;

/// Name of the cookie that carries a started login (encrypted, scoped to the callback
/// path): a visitor who has not finished a login owns no server-side record.
pub const LOGIN_COOKIE: &str = "kvixi_login";
/// Session key of the auth record.
pub const AUTH_RECORD_KEY: &str = "kvixi.auth";
/// Every session key the flow reads or writes (an adapter may copy just these).
pub const SESSION_KEYS: [&str; 1] = [AUTH_RECORD_KEY];
/// Longest login cookie value looked at (a sealed pending login is about 200 bytes).
pub const MAX_LOGIN_COOKIE_LEN: usize = 1024;
/// Longest auth_key accepted from a callback.
pub const MAX_AUTH_KEY_LEN: usize = 256;

/// Seconds since the Unix epoch: the flow's only notion of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The system clock's current time, in whole seconds. On Linux it is the kernel's
    /// coarse real-time clock (the time of the last tick, a few milliseconds old at
    /// most), read without asking the hardware: every authenticated request reads the
    /// time, and this read costs a tenth of `SystemTime::now`.
    pub fn now() -> UnixTime {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{ClockId, DynamicClockId, clock_gettime_dynamic};
            // A kernel or sandbox that refuses the coarse clock: the system clock.
            if let Ok(now) = clock_gettime_dynamic(DynamicClockId::Known(ClockId::RealtimeCoarse)) {
                return UnixTime(u64::try_from(now.tv_sec).unwrap_or(0));
            }
        }
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixTime(since_epoch.as_secs())
    }

    /// This time plus `d`.
    pub fn plus(self, d: Duration) -> UnixTime {
        UnixTime(self.0.saturating_add(d.as_secs()))
    }

    /// Whether this is the zero a missing field reads as.
    pub fn is_unknown(&self) -> bool {
        self.0 == 0
    }
}

impl Default for UnixTime {
    /// The Unix epoch, which stands for "unknown" in records written by older versions.
    fn default() -> Self {
        UnixTime(0)
    }
}

/// A login started in this browser session and not yet called back: the login-CSRF
/// defence, since Kvixi round-trips no `state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Random id, for correlating log lines of one login.
    pub id: String,
    /// When the login started.
    pub created_at: UnixTime,
    /// Where to go after the login, already sanitized.
    pub return_to: ReturnTo,
    /// "Remember me" was asked for at the login start (`remember=1`): sealed in the login
    /// cookie with the rest, so a forged callback cannot ask for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remember: bool,
}

/// Who is logged in, stored in the session after a successful callback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthRecord {
    /// The Kvixi user.
    pub user: KvixiUser,
    /// The access token, until it expires or Kvixi refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<AccessToken>,
    /// When the token was obtained.
    pub obtained_at: UnixTime,
    /// When the token is assumed expired (obtained + configured lifetime).
    pub token_expires_at: UnixTime,
    /// When the user logged in: the absolute session lifetime and revocations count from
    /// it. Records written before it existed read as 0 and count from `obtained_at`.
    #[serde(default, skip_serializing_if = "UnixTime::is_unknown")]
    pub logged_in_at: UnixTime,
    /// The app's own value returned by `on_login` (see [`AppData`](crate::AppData)),
    /// at most [`MAX_APP_DATA_BYTES`](crate::MAX_APP_DATA_BYTES) of JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_data: Option<serde_json::Value>,
    /// Logged in with "remember me": the session keeps
    /// [`Config::remembered_idle_timeout`] in a persistent cookie.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remembered: bool,
    /// The session's handle in "your devices" ([`crate::devices`]); records written
    /// before it existed have none and are not listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<crate::devices::SessionHandle>,
}

impl AuthRecord {
    /// When the session began, for its absolute lifetime and for revocations.
    pub fn session_started(&self) -> UnixTime {
        session_started(self.logged_in_at, self.obtained_at)
    }
}

/// How long a session lasts without a request: [`Config::remembered_idle_timeout`] for a
/// login with "remember me", [`Config::idle_timeout`] otherwise; never past
/// [`Config::max_session_lifetime`], which ends every session anyway.
pub fn session_idle_timeout(config: &Config, remembered: bool) -> Duration {
    let idle = if remembered {
        config.remembered_idle_timeout()
    } else {
        config.idle_timeout()
    };
    idle.min(config.max_session_lifetime())
}

/// Whether the login start's query asks for "remember me": `remember` is `1`, `on` (an
/// HTML checkbox), `true` or `yes`.
pub fn wants_remembering(login_query: Option<&str>) -> bool {
    login_query
        .and_then(|query| first_param(query, "remember"))
        .is_some_and(|value| matches!(value.as_str(), "1" | "on" | "true" | "yes"))
}

/// Whether a login made at `started` (`None`: unknown) is at most `max_age` old at `now`,
/// for a recent-login guard: the bound inclusive, a login from the future (a clock
/// stepped back) recent, an unknown one not.
pub fn login_is_recent(started: Option<UnixTime>, now: UnixTime, max_age: Duration) -> bool {
    started.is_some_and(|started| now.0.saturating_sub(started.0) <= max_age.as_secs())
}

/// Whether a stored session still counts, once its record has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionCheck {
    /// Logged in.
    Live,
    /// Older than [`Config::max_session_lifetime`]: a new login is needed.
    LifetimeReached,
    /// The user was revoked (logged out everywhere) after this session began.
    Revoked,
    /// The session was ended on its own, from "your devices".
    Ended,
}

/// When a session began: its `logged_in_at`, or, for a record written before that field
/// existed, the time of its token exchange (which was the login).
pub fn session_started(logged_in_at: UnixTime, obtained_at: UnixTime) -> UnixTime {
    if logged_in_at.is_unknown() {
        obtained_at
    } else {
        logged_in_at
    }
}

/// Decides whether a session that began at `started` still counts at `now`, given the
/// user's latest revocation stamp: a session that began at or before the stamp is
/// revoked, one older than the absolute lifetime is over.
pub fn check_session(
    config: &Config,
    started: UnixTime,
    revoked_at: Option<UnixTime>,
    now: UnixTime,
) -> SessionCheck {
    if revoked_at.is_some_and(|stamp| started <= stamp) {
        return SessionCheck::Revoked;
    }
    if now.0.saturating_sub(started.0) > config.max_session_lifetime().as_secs() {
        return SessionCheck::LifetimeReached;
    }
    SessionCheck::Live
}

/// The `logged_in_at` of a login at `now`: strictly after the user's latest revocation,
/// so that a login in the same second as a "log out everywhere" is not revoked by it.
pub fn login_time(now: UnixTime, revoked_at: Option<UnixTime>) -> UnixTime {
    match revoked_at {
        Some(stamp) if stamp >= now => UnixTime(stamp.0.saturating_add(1)),
        _ => now,
    }
}

/// The stamp a revocation at `now` writes over the user's `current` one: after every
/// session begun so far. A login in the second of a revocation is dated one second after
/// it ([`login_time`]), so a second revocation in that same second must reach past it,
/// or the sessions begun between the two would survive the second.
pub fn revocation_stamp(now: UnixTime, current: Option<UnixTime>) -> UnixTime {
    login_time(now, current)
}

/// How often a logged-in session is renewed, as a fraction of its idle timeout: once
/// 1/24 of it has passed since the last renewal (about once an hour with the default
/// 24 h), so a session read without renewing still has 23/24 of it ahead.
pub const RENEWALS_PER_IDLE_TIMEOUT: u32 = 24;

/// Whether a logged-in session last renewed at `renewed` (its idle expiry pushed back by
/// a store write) is due for a renewal at `now`, for the idle timeout `idle`: when it has
/// no renewal on record, or when 1/[`RENEWALS_PER_IDLE_TIMEOUT`] of `idle` may have passed
/// since. For adapters whose session store pushes the expiry back only when it writes.
///
/// Rounded towards renewing: both times are whole seconds, so an age read as `n` may be
/// nearly `n + 1`. A renewal too many is one harmless store write; a renewal missed could
/// let a session in use idle out (with an idle timeout under 48 s, every read renews). A
/// `renewed` after `now` (a clock set back, another instance's clock ahead) is due too.
pub fn renewal_due(renewed: Option<UnixTime>, now: UnixTime, idle: Duration) -> bool {
    let Some(renewed) = renewed else {
        return true;
    };
    if renewed > now {
        return true;
    }
    let every = (idle / RENEWALS_PER_IDLE_TIMEOUT).as_secs();
    (now.0 - renewed.0).saturating_add(1) >= every
}

/// Whether a session last renewed at `renewed` (as [`renewal_due`] reads it) has been
/// idle for longer than `idle` at `now`, on the flow's clock: then it is over, whatever
/// its store still holds. The stores end such a session by themselves (its expiry is
/// `renewed + idle`); this is the flow's own decision, for a store that keeps expired
/// records and for a clock that is not the system's (the test suite's).
///
/// Rounded towards keeping, the other way from [`renewal_due`]: both times are whole
/// seconds, so a session is over only once its age is read as more than `idle` plus one
/// second. A `renewed` after `now` is not over.
pub fn idle_over(renewed: UnixTime, now: UnixTime, idle: Duration) -> bool {
    now.0.saturating_sub(renewed.0) > idle.as_secs().saturating_add(1)
}

/// What starting a login produces: the pending login for the browser's login cookie and
/// where to send the browser.
#[derive(Clone, Debug)]
pub struct LoginStart {
    /// To be sealed into the [`LOGIN_COOKIE`] (see [`seal_pending_login`]).
    pub pending: PendingLogin,
    /// Kvixi's login page for this app.
    pub redirect: Url,
}

/// A callback that passed every check on our side; the key still has to be exchanged.
#[derive(Clone, Debug)]
pub struct AcceptedCallback {
    /// The key to exchange.
    pub auth_key: AuthKey,
    /// The pending login it consumed.
    pub pending: PendingLogin,
}

/// The state of the stored access token.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenState<'a> {
    /// Usable until `expires_at`.
    Valid(&'a AccessToken),
    /// Expired or refused by Kvixi: a new login is needed.
    Expired,
}

/// What to answer a request that needs a user when there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnonymousReply {
    /// 401 with a JSON error (API clients).
    Unauthorized,
    /// 303 to this login URL, which returns to the current page (browsers).
    RedirectToLogin(String),
}

/// Starts a login: a pending login (with the sanitized `return_to` from the login
/// request's raw query) and the URL of Kvixi's login page.
pub fn start_login(
    config: &Config,
    login_query: Option<&str>,
    login_id: String,
    now: UnixTime,
) -> LoginStart {
    let requested = login_query.and_then(|q| first_param(q, "return_to"));
    let return_to = ReturnTo::sanitize(requested.as_deref(), config.default_return_to());
    let mut redirect = config.base_url().clone();
    redirect.set_path("/api/oauth");
    redirect
        .query_pairs_mut()
        .clear()
        .append_pair("app_id", config.app_id());
    LoginStart {
        pending: PendingLogin {
            id: login_id,
            created_at: now,
            return_to,
            remember: wants_remembering(login_query),
        },
        redirect,
    }
}

/// Checks a callback against the session's pending login. The pending login is
/// consumed whatever the outcome: the driver removes it before calling this.
pub fn accept_callback(
    config: &Config,
    pending: Option<PendingLogin>,
    callback_query: Option<&str>,
    now: UnixTime,
) -> Result<AcceptedCallback, Error> {
    let pending = pending.ok_or(Error::NoPendingLogin)?;
    let max = config.pending_login_lifetime();
    let age = now.0.saturating_sub(pending.created_at.0);
    // A pending login from the future means a tampered store or a broken clock.
    if age > max.as_secs() || pending.created_at.0 > now.0.saturating_add(60) {
        return Err(Error::PendingLoginExpired { max });
    }
    let query = callback_query.unwrap_or("");
    if first_param(query, "error").is_some() {
        return Err(Error::AccessDenied);
    }
    let mut keys = form_urlencoded::parse(query.as_bytes()).filter(|(name, _)| name == "auth_key");
    let key = match (keys.next(), keys.next()) {
        (None, _) => return Err(Error::MissingAuthKey),
        (Some(_), Some(_)) => return Err(Error::MalformedAuthKey),
        (Some((_, key)), None) => key,
    };
    if key.is_empty() {
        return Err(Error::MissingAuthKey);
    }
    if key.len() > MAX_AUTH_KEY_LEN
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    {
        return Err(Error::MalformedAuthKey);
    }
    Ok(AcceptedCallback {
        auth_key: AuthKey::new(key.into_owned()),
        pending,
    })
}

/// Finishes a login: the auth record to store once Kvixi answered with a token and a user.
pub fn finish_login(
    config: &Config,
    user: KvixiUser,
    token: AccessToken,
    now: UnixTime,
) -> AuthRecord {
    AuthRecord {
        user,
        token: Some(token),
        obtained_at: now,
        token_expires_at: now.plus(config.token_lifetime()),
        logged_in_at: now,
        app_data: None,
        remembered: false,
        handle: None,
    }
}

/// Whether the stored token may still be used at `now`.
pub fn token_state(record: &AuthRecord, now: UnixTime) -> TokenState<'_> {
    match &record.token {
        Some(token) if now < record.token_expires_at => TokenState::Valid(token),
        _ => TokenState::Expired,
    }
}

/// Kvixi answered `expired access_token`: forget the token, keep the user logged in.
pub fn drop_token(mut record: AuthRecord) -> AuthRecord {
    record.token = None;
    record
}

/// What a request that needs a user gets when there is none: JSON clients a 401,
/// browsers a redirect to login that comes back to `path_and_query`.
pub fn anonymous_reply(
    config: &Config,
    prefers_json: bool,
    path_and_query: &str,
) -> AnonymousReply {
    if prefers_json {
        return AnonymousReply::Unauthorized;
    }
    let back = ReturnTo::sanitize(Some(path_and_query), config.default_return_to());
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", back.as_str())
        .finish();
    AnonymousReply::RedirectToLogin(format!("{}?{query}", config.login_path()))
}

/// The pending login sealed (encrypted and authenticated with the app's cookie key) as
/// the value of the [`LOGIN_COOKIE`].
pub fn seal_pending_login(config: &Config, pending: &PendingLogin) -> String {
    // Serializing three plain fields cannot fail.
    let json = serde_json::to_string(pending).unwrap_or_default();
    config.cookie_key().seal(LOGIN_COOKIE, &json)
}

/// The pending login in a [`LOGIN_COOKIE`] value, if this app sealed it; anything else
/// (forged, tampered with, oversized, another app's) is no pending login.
pub fn open_pending_login(config: &Config, sealed: &str) -> Option<PendingLogin> {
    if sealed.len() > MAX_LOGIN_COOKIE_LEN {
        return None;
    }
    // A previous key opens it too (a rotation fails no login in progress); the callback
    // clears the cookie whatever the outcome, so it needs no sealing again.
    let opened = config.open_cookie(LOGIN_COOKIE, sealed)?;
    serde_json::from_str(&opened.value).ok()
}

/// The `Set-Cookie` header that hands the browser its pending login: `HttpOnly`,
/// `SameSite=Lax` (it must come back on Kvixi's redirect), `Secure` on https, sent only
/// to the callback path, gone after the pending-login lifetime.
pub fn login_cookie_header(config: &Config, sealed: &str) -> String {
    login_cookie(config, sealed, config.pending_login_lifetime()).to_string()
}

/// The `Set-Cookie` header that deletes the login cookie (every callback sends it).
pub fn clear_login_cookie_header(config: &Config) -> String {
    login_cookie(config, "", Duration::ZERO).to_string()
}

fn login_cookie<'c>(config: &'c Config, value: &'c str, max_age: Duration) -> cookie::Cookie<'c> {
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    cookie::Cookie::build((LOGIN_COOKIE, value))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(config.cookie_secure())
        .path(config.callback_path())
        .max_age(time::Duration::seconds(max_age))
        .build()
}

/// The value of the cookie `name` in a request's `Cookie` header(s), if sent once. A
/// name sent twice (a planted duplicate) counts as absent.
pub fn cookie_value<'h>(
    cookie_headers: impl IntoIterator<Item = &'h str>,
    name: &str,
) -> Option<&'h str> {
    let mut found = cookie_headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, value)| value.trim_matches('"'));
    match (found.next(), found.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

/// Pending logins already used by a callback, kept until their lifetime ends: a replayed
/// copy of a login cookie (or two racing callbacks with one) buys no second call to
/// Kvixi. Bounded: past `capacity` the oldest entries are forgotten first (they are the
/// closest to expiring anyway). Every operation is O(1) amortized.
#[derive(Debug)]
pub struct ConsumedLogins {
    capacity: usize,
    ids: std::collections::HashSet<String>,
    by_expiry: std::collections::VecDeque<(UnixTime, String)>,
}

impl ConsumedLogins {
    /// An empty record holding at most `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        ConsumedLogins {
            capacity: capacity.max(1),
            ids: Default::default(),
            by_expiry: Default::default(),
        }
    }

    /// Marks `pending` as used at `now`; `false` when it was used already.
    pub fn consume(&mut self, config: &Config, pending: &PendingLogin, now: UnixTime) -> bool {
        while let Some((expires, _)) = self.by_expiry.front() {
            if *expires >= now && self.by_expiry.len() < self.capacity {
                break;
            }
            if let Some((_, id)) = self.by_expiry.pop_front() {
                self.ids.remove(&id);
            }
        }
        if self.ids.contains(&pending.id) {
            return false;
        }
        let expires = pending.created_at.plus(config.pending_login_lifetime());
        if expires >= now {
            // An expired one is refused by `accept_callback` anyway: nothing to keep.
            self.ids.insert(pending.id.clone());
            self.by_expiry.push_back((expires, pending.id.clone()));
        }
        true
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Whether a request wants JSON rather than an HTML page: it says so with
/// `X-Requested-With`, or its `Accept` ranks `application/json` above `text/html`, or it
/// does not accept HTML at all (curl's `*/*` included; browsers' navigations always
/// name `text/html`).
pub fn prefers_json(accept: Option<&str>, x_requested_with: Option<&str>) -> bool {
    if x_requested_with.is_some() {
        return true;
    }
    let Some(accept) = accept else {
        return true;
    };
    let (mut html, mut json) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(q),
            "application/json" => json = json.max(q),
            m if m.ends_with("+json") => json = json.max(q),
            _ => {}
        }
    }
    html <= 0.0 || json > html
}

/// The first value of `name` in a raw query string, percent-decoded.
fn first_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_tells_the_same_second_as_the_system_clock() {
        let system = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
        };
        let (before, now, after) = (system(), UnixTime::now().0, system());
        // The coarse clock may lag the last tick (milliseconds): at most one second off.
        assert!(
            before.saturating_sub(1) <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
    }

    #[test]
    fn a_session_is_renewed_when_missing_and_then_once_per_24th_of_its_idle_timeout() {
        let day = Duration::from_secs(24 * 3600);
        assert!(renewal_due(None, UnixTime(1_000), day), "never renewed");
        assert!(
            !renewal_due(Some(UnixTime(1_000)), UnixTime(1_000), day),
            "just renewed"
        );
        assert!(!renewal_due(Some(UnixTime(1_000)), UnixTime(1_600), day));
        // The boundary: 3600 s, less the second that whole seconds may hide.
        assert!(!renewal_due(Some(UnixTime(1_000)), UnixTime(4_598), day));
        assert!(renewal_due(Some(UnixTime(1_000)), UnixTime(4_599), day));
        assert!(renewal_due(Some(UnixTime(1_000)), UnixTime(4_600), day));
        assert!(renewal_due(Some(UnixTime(1_000)), UnixTime(90_000), day));
        // A stamp from the future cannot be trusted to be recent.
        assert!(renewal_due(Some(UnixTime(1_001)), UnixTime(1_000), day));
    }

    #[test]
    fn a_session_is_idle_over_only_past_its_idle_timeout_and_a_second() {
        let day = Duration::from_secs(24 * 3600);
        let renewed = UnixTime(1_000);
        assert!(!idle_over(renewed, UnixTime(1_000), day));
        assert!(
            !idle_over(renewed, UnixTime(1_000 + 86_401), day),
            "a second of doubt"
        );
        assert!(idle_over(renewed, UnixTime(1_000 + 86_402), day));
        assert!(
            !idle_over(UnixTime(5_000), UnixTime(1_000), day),
            "renewed ahead"
        );
        assert!(
            !idle_over(renewed, UnixTime(u64::MAX), Duration::MAX),
            "no overflow"
        );
    }

    #[test]
    fn tiny_idle_timeouts_renew_at_every_read() {
        for seconds in [0, 1, 2, 5, 24, 47] {
            let idle = Duration::from_secs(seconds);
            assert!(
                renewal_due(Some(UnixTime(7)), UnixTime(7), idle),
                "{seconds} s"
            );
            assert!(
                renewal_due(Some(UnixTime(7)), UnixTime(8), idle),
                "{seconds} s"
            );
        }
        let idle = Duration::from_millis(1_500);
        assert!(renewal_due(Some(UnixTime(7)), UnixTime(7), idle));
        // 48 s: renewed at most once in the same second.
        let idle = Duration::from_secs(48);
        assert!(!renewal_due(Some(UnixTime(7)), UnixTime(7), idle));
        assert!(renewal_due(Some(UnixTime(7)), UnixTime(8), idle));
    }

    #[test]
    fn a_read_that_does_not_renew_leaves_23_24ths_of_the_idle_timeout() {
        // Reads at real times in milliseconds, seen in whole seconds as the clock gives
        // them; whenever a read skips the renewal, less than 1/24 of the idle timeout has
        // really passed since the last one.
        for idle_ms in [
            1_000u64, 2_000, 5_000, 48_000, 90_000, 3_600_000, 86_400_000,
        ] {
            let idle = Duration::from_millis(idle_ms);
            for (start, step) in [(0u64, 400u64), (999, 550), (1, 9_999), (500, 61_001)] {
                let mut renewed: Option<(UnixTime, u64)> = None;
                let mut renewals = 0u32;
                let mut at = start;
                while at < start + 2 * 86_400_000 {
                    let now = UnixTime(at / 1_000);
                    if renewal_due(renewed.map(|(stamp, _)| stamp), now, idle) {
                        renewed = Some((now, at));
                        renewals += 1;
                    } else if let Some((_, real)) = renewed {
                        assert!(
                            (at - real) * 24 < idle_ms,
                            "idle {idle_ms} ms: {} ms since the renewal",
                            at - real
                        );
                    }
                    at += step;
                }
                if idle_ms == 86_400_000 && step < 60_000 {
                    // Two days of reads: about 24 renewals a day, not one per read.
                    assert!((48..=50).contains(&renewals), "{renewals} in two days");
                }
            }
        }
    }

    fn config() -> Config {
        Config::builder(
            "app-1",
            "secret",
            "http://localhost:3000/auth/kvixi/callback",
        )
        .base_url("http://127.0.0.1:8787")
        .build()
        .unwrap()
    }

    fn pending_at(t: u64) -> PendingLogin {
        PendingLogin {
            id: "id".into(),
            created_at: UnixTime(t),
            return_to: ReturnTo::parse("/private").unwrap(),
            remember: false,
        }
    }

    #[test]
    fn remember_me_is_asked_by_the_login_start_and_sealed_with_the_pending_login() {
        let config = config();
        for (query, asked) in [
            (None, false),
            (Some("return_to=%2Fa"), false),
            (Some("remember=1"), true),
            (Some("return_to=%2Fa&remember=on"), true),
            (Some("remember=true"), true),
            (Some("remember=0"), false),
            (Some("remember="), false),
            (Some("remembered=1"), false),
        ] {
            let start = start_login(&config, query, "id".into(), UnixTime(100));
            assert_eq!(start.pending.remember, asked, "{query:?}");
            let sealed = seal_pending_login(&config, &start.pending);
            let opened = open_pending_login(&config, &sealed).expect("opens");
            assert_eq!(opened.remember, asked, "travels sealed: {query:?}");
        }
        // A pending login sealed before remember existed reads as not remembered.
        let old = serde_json::json!({"id": "x", "created_at": 1, "return_to": "/"});
        let old: PendingLogin = serde_json::from_value(old).unwrap();
        assert!(!old.remember);
    }

    #[test]
    fn a_remembered_session_idles_longer_but_never_past_the_lifetime() {
        let day = Duration::from_secs(24 * 3600);
        let config = Config::builder("app", "secret", "https://app.example/cb")
            .build()
            .unwrap();
        assert_eq!(session_idle_timeout(&config, false), day);
        // 30 days asked, 7 days of lifetime: the lifetime bounds it.
        assert_eq!(session_idle_timeout(&config, true), 7 * day);
        let config = Config::builder("app", "secret", "https://app.example/cb")
            .remembered_idle_timeout(3 * day)
            .build()
            .unwrap();
        assert_eq!(session_idle_timeout(&config, true), 3 * day);
        let shorter = Config::builder("app", "secret", "https://app.example/cb")
            .remembered_idle_timeout(Duration::from_secs(60))
            .build();
        assert!(
            matches!(
                shorter,
                Err(Error::Config {
                    setting: "remembered_idle_timeout",
                    ..
                })
            ),
            "{shorter:?}"
        );
    }

    fn user() -> KvixiUser {
        KvixiUser::from_user_info_response(&serde_json::json!({"user_info": {"user_id": "7"}}))
            .unwrap()
    }

    #[test]
    fn login_start_records_a_sanitized_return_to_and_points_at_kvixi() {
        let config = config();
        let start = start_login(
            &config,
            Some("return_to=%2Fprivate%3Fa%3D1"),
            "x".into(),
            UnixTime(5),
        );
        assert_eq!(start.pending.return_to.as_str(), "/private?a=1");
        assert_eq!(start.pending.created_at, UnixTime(5));
        assert_eq!(
            start.redirect.as_str(),
            "http://127.0.0.1:8787/api/oauth?app_id=app-1"
        );
        let hostile = start_login(
            &config,
            Some("return_to=%2F%2Fevil.com"),
            "x".into(),
            UnixTime(5),
        );
        assert_eq!(hostile.pending.return_to.as_str(), "/");
        let none = start_login(&config, None, "x".into(), UnixTime(5));
        assert_eq!(none.pending.return_to.as_str(), "/");
    }

    #[test]
    fn callback_without_pending_login_is_refused() {
        let err = accept_callback(&config(), None, Some("auth_key=abc"), UnixTime(10)).unwrap_err();
        assert!(matches!(err, Error::NoPendingLogin));
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn callback_on_expired_pending_login_is_refused() {
        let config = config();
        let ok = accept_callback(
            &config,
            Some(pending_at(0)),
            Some("auth_key=abc"),
            UnixTime(600),
        );
        assert!(ok.is_ok(), "exactly ten minutes is still fine");
        let err = accept_callback(
            &config,
            Some(pending_at(0)),
            Some("auth_key=abc"),
            UnixTime(601),
        )
        .unwrap_err();
        assert!(matches!(err, Error::PendingLoginExpired { .. }));
        let future = accept_callback(
            &config,
            Some(pending_at(10_000)),
            Some("auth_key=abc"),
            UnixTime(0),
        )
        .unwrap_err();
        assert!(matches!(future, Error::PendingLoginExpired { .. }));
    }

    #[test]
    fn callback_hands_over_the_key_and_the_return_to() {
        let accepted = accept_callback(
            &config(),
            Some(pending_at(0)),
            Some("auth_key=Ab-9_z.~"),
            UnixTime(1),
        )
        .unwrap();
        assert_eq!(accepted.auth_key.secret(), "Ab-9_z.~");
        assert_eq!(accepted.pending.return_to.as_str(), "/private");
    }

    #[test]
    fn unusable_auth_keys_are_refused() {
        let long = format!("auth_key={}", "a".repeat(100_000));
        type IsExpected = fn(&Error) -> bool;
        let cases: [(Option<&str>, IsExpected); 9] = [
            (None, |e| matches!(e, Error::MissingAuthKey)),
            (Some(""), |e| matches!(e, Error::MissingAuthKey)),
            (Some("auth_key="), |e| matches!(e, Error::MissingAuthKey)),
            (Some("other=1"), |e| matches!(e, Error::MissingAuthKey)),
            (Some(long.as_str()), |e| {
                matches!(e, Error::MalformedAuthKey)
            }),
            (Some("auth_key=%FF%FE"), |e| {
                matches!(e, Error::MalformedAuthKey)
            }),
            (Some("auth_key=a%20b"), |e| {
                matches!(e, Error::MalformedAuthKey)
            }),
            (Some("auth_key=a&auth_key=b"), |e| {
                matches!(e, Error::MalformedAuthKey)
            }),
            (Some("error=access_denied"), |e| {
                matches!(e, Error::AccessDenied)
            }),
        ];
        for (query, expected) in cases {
            let err =
                accept_callback(&config(), Some(pending_at(0)), query, UnixTime(1)).unwrap_err();
            assert!(expected(&err), "{query:?} gave {err:?}");
            assert!((400..500).contains(&err.status()));
        }
        let both = accept_callback(
            &config(),
            Some(pending_at(0)),
            Some("auth_key=abc&error=access_denied"),
            UnixTime(1),
        );
        assert!(matches!(both, Err(Error::AccessDenied)));
    }

    #[test]
    fn a_consumed_pending_login_cannot_serve_a_second_callback() {
        // The driver takes the pending login out of the session before the check, so
        // the second callback sees none.
        let config = config();
        let mut session_pending = Some(pending_at(0));
        let first = accept_callback(
            &config,
            session_pending.take(),
            Some("auth_key=k"),
            UnixTime(1),
        );
        assert!(first.is_ok());
        let second = accept_callback(
            &config,
            session_pending.take(),
            Some("auth_key=k"),
            UnixTime(2),
        );
        assert!(matches!(second, Err(Error::NoPendingLogin)));
    }

    #[test]
    fn token_expires_after_the_configured_lifetime() {
        let config = config();
        let record = finish_login(&config, user(), AccessToken::new("t"), UnixTime(100));
        assert_eq!(record.token_expires_at, UnixTime(3700));
        assert!(matches!(
            token_state(&record, UnixTime(3699)),
            TokenState::Valid(_)
        ));
        assert_eq!(token_state(&record, UnixTime(3700)), TokenState::Expired);
        let dropped = drop_token(record);
        assert_eq!(token_state(&dropped, UnixTime(101)), TokenState::Expired);
        assert_eq!(dropped.user.id, "7", "the user stays logged in");
    }

    #[test]
    fn auth_record_round_trips_and_is_small() {
        let record = finish_login(&config(), user(), AccessToken::new("tok"), UnixTime(1));
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.len() < 200, "{json}");
        let back: AuthRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn anonymous_browsers_are_sent_to_login_and_back() {
        let config = config();
        assert_eq!(
            anonymous_reply(&config, false, "/private?tab=2"),
            AnonymousReply::RedirectToLogin(
                "/auth/kvixi/login?return_to=%2Fprivate%3Ftab%3D2".into()
            )
        );
        assert_eq!(
            anonymous_reply(&config, true, "/me"),
            AnonymousReply::Unauthorized
        );
    }

    #[test]
    fn json_preference_follows_accept_and_x_requested_with() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(!prefers_json(Some(browser), None));
        assert!(prefers_json(Some(browser), Some("XMLHttpRequest")));
        assert!(prefers_json(Some("application/json"), None));
        assert!(prefers_json(Some("*/*"), None), "curl");
        assert!(prefers_json(None, None));
        assert!(prefers_json(
            Some("text/html;q=0.5, application/json"),
            None
        ));
        assert!(!prefers_json(
            Some("application/json;q=0.5, text/html"),
            None
        ));
        assert!(prefers_json(Some("text/html;q=0"), None));
    }

    #[test]
    fn the_login_cookie_carries_the_pending_login_sealed_and_scoped_to_the_callback() {
        let config = config();
        let pending = pending_at(42);
        let sealed = seal_pending_login(&config, &pending);
        assert!(!sealed.contains("/private"), "encrypted: {sealed}");
        assert_eq!(open_pending_login(&config, &sealed), Some(pending.clone()));
        let mut flipped = sealed.clone().into_bytes();
        flipped[10] ^= 1;
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(open_pending_login(&config, &flipped), None, "tampered");
        assert_eq!(open_pending_login(&config, "forged"), None);
        assert_eq!(open_pending_login(&config, &"A".repeat(5000)), None);
        let other_app = config_with_key(&[9; 32]);
        assert_eq!(open_pending_login(&other_app, &sealed), None, "another key");

        let header = login_cookie_header(&config, &sealed);
        for attribute in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/auth/kvixi/callback",
            "Max-Age=600",
        ] {
            assert!(header.split("; ").any(|a| a == attribute), "{header}");
        }
        assert!(
            !header.contains("Secure"),
            "plain-http redirect URL: {header}"
        );
        let https = Config::builder("a", "s", "https://app.example/cb")
            .build()
            .unwrap();
        assert!(login_cookie_header(&https, "v").contains("Secure"));
        let clear = clear_login_cookie_header(&config);
        assert!(clear.starts_with("kvixi_login=;"), "{clear}");
        assert!(clear.contains("Max-Age=0") && clear.contains("Path=/auth/kvixi/callback"));
    }

    fn config_with_key(key: &[u8]) -> Config {
        Config::builder(
            "app-1",
            "secret",
            "http://localhost:3000/auth/kvixi/callback",
        )
        .cookie_key(key.to_vec())
        .build()
        .unwrap()
    }

    #[test]
    fn cookie_value_finds_one_cookie_and_ignores_planted_duplicates() {
        let headers = ["a=1; kvixi_login=abc", "b=2"];
        assert_eq!(cookie_value(headers, LOGIN_COOKIE), Some("abc"));
        assert_eq!(cookie_value(["kvixi_login_x=1"], LOGIN_COOKIE), None);
        assert_eq!(cookie_value([] as [&str; 0], LOGIN_COOKIE), None);
        assert_eq!(
            cookie_value(["kvixi_login=a; kvixi_login=b"], LOGIN_COOKIE),
            None
        );
    }

    #[test]
    fn a_pending_login_serves_one_callback_and_the_record_stays_bounded() {
        let config = config();
        let mut consumed = ConsumedLogins::new(3);
        let first = pending_at(100);
        assert!(consumed.consume(&config, &first, UnixTime(101)));
        assert!(
            !consumed.consume(&config, &first, UnixTime(102)),
            "replayed"
        );
        for i in 0..10 {
            let other = PendingLogin {
                id: format!("other-{i}"),
                ..pending_at(100)
            };
            assert!(consumed.consume(&config, &other, UnixTime(103)));
        }
        assert!(consumed.len() <= 3, "bounded: {}", consumed.len());
        // Kept no longer than the pending login's own lifetime.
        let mut consumed = ConsumedLogins::new(100);
        consumed.consume(&config, &first, UnixTime(101));
        let later = PendingLogin {
            id: "later".into(),
            ..pending_at(800)
        };
        consumed.consume(&config, &later, UnixTime(801));
        assert_eq!(consumed.len(), 1, "the first one expired at 700");
        let expired = PendingLogin {
            id: "expired".into(),
            ..pending_at(0)
        };
        assert!(consumed.consume(&config, &expired, UnixTime(5000)));
        assert_eq!(consumed.len(), 0, "an expired pending login is not kept");
    }
}
