//! The route-group guard's decision: who may pass, and what everyone else is answered.
//!
//! Each adapter's group guard (`kvixi_axum::require_login`, `kvixi_actix::RequireLogin`,
//! `kvixi_rocket::RequireLogin`) reads the current user and hands it to
//! [`Requirement::check`]; the answer it copies out is decided here, so it is the same on
//! every framework and the same as the `KvixiUser` extractor's for an anonymous request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::driver::Kvixi;
use crate::error::Error;
use crate::flow::UnixTime;
use crate::reply::Reply;
use crate::user::KvixiUser;

/// What the guard decided, before any answer is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A user is logged in and the predicate (if any) accepts them.
    Allow,
    /// Nobody is logged in: the same answer as the `KvixiUser` extractor's.
    Anonymous,
    /// Someone is logged in, and the predicate refuses them: 403.
    NotAllowed,
}

/// The decision for a request with `user` (or none), given what the predicate says of
/// that user. Pure: no session, no clock, no framework.
pub fn decide(user: Option<&KvixiUser>, allows: impl FnOnce(&KvixiUser) -> bool) -> Decision {
    match user {
        None => Decision::Anonymous,
        Some(user) if allows(user) => Decision::Allow,
        Some(_) => Decision::NotAllowed,
    }
}

type Predicate = Arc<dyn Fn(&KvixiUser) -> bool + Send + Sync>;

/// What a group guard requires: a logged-in user, and optionally one the app's predicate
/// accepts ("verified only", an allow-list…). Cheap to clone.
///
/// ```
/// use kvixi_core::guard::Requirement;
///
/// let verified_only = Requirement::logged_in().allow(|user| user.verified);
/// # let _ = verified_only;
/// ```
#[derive(Clone, Default)]
pub struct Requirement {
    allow: Option<Predicate>,
    /// How long ago the login may have been ([`recent`](Requirement::recent)).
    max_login_age: Option<Duration>,
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requirement")
            .field("allow", &self.allow.as_ref().map(|_| "predicate"))
            .field("max_login_age", &self.max_login_age)
            .finish()
    }
}

impl Requirement {
    /// Any logged-in user.
    pub fn logged_in() -> Requirement {
        Requirement::default()
    }

    /// Also requires `predicate` to accept the user; a logged-in user it refuses gets
    /// 403 ([`Error::NotAllowed`]). Calling it again adds a predicate (all must accept).
    pub fn allow(self, predicate: impl Fn(&KvixiUser) -> bool + Send + Sync + 'static) -> Self {
        let allow: Predicate = match self.allow {
            None => Arc::new(predicate),
            Some(earlier) => Arc::new(move |user| earlier(user) && predicate(user)),
        };
        Requirement {
            allow: Some(allow),
            ..self
        }
    }

    /// Also requires the login to be at most `max_age` old (a recent login before a
    /// sensitive action: deleting the account, changing where mail goes). An older
    /// login sends a browser through login again, coming back to the same page, and
    /// answers an API client 401 `login_too_old`; the new login replaces the session
    /// as any login does. See [`failure`](Requirement::failure).
    pub fn recent(self, max_age: Duration) -> Self {
        Requirement {
            max_login_age: Some(max_age),
            ..self
        }
    }

    /// The bound [`recent`](Requirement::recent) set, if any: only then does a guard
    /// read the user with [`Kvixi::recent_user`], so no other guard pays for it.
    pub fn max_login_age(&self) -> Option<Duration> {
        self.max_login_age
    }

    /// Whether a login made at `started` (`None`: unknown) is recent enough at `now`.
    /// Pure: the bound inclusive, a login from the future (a clock step) recent.
    pub fn login_is_recent(&self, started: Option<UnixTime>, now: UnixTime) -> bool {
        self.max_login_age
            .is_none_or(|max_age| crate::flow::login_is_recent(started, now, max_age))
    }

    /// The answer to a read of the user that failed: a login too old for
    /// [`recent`](Requirement::recent) sends a browser through login again, back to
    /// `path_and_query` (as an anonymous one is sent), and answers an API client 401
    /// `login_too_old`; any other error gets the flow's error answer.
    pub fn failure<P: AsRef<str>>(
        &self,
        kvixi: &Kvixi,
        error: &Error,
        prefers_json: bool,
        path_and_query: impl FnOnce() -> P,
    ) -> Reply {
        match error {
            Error::LoginTooOld if !prefers_json => {
                tracing::info!("kvixi: a login too old for this page goes through login again");
                kvixi.anonymous_reply(false, path_and_query().as_ref())
            }
            _ => kvixi.failure(error, prefers_json),
        }
    }

    /// The decision for `user`.
    pub fn decide(&self, user: Option<&KvixiUser>) -> Decision {
        decide(user, |user| {
            self.allow.as_ref().is_none_or(|allow| allow(user))
        })
    }

    /// Lets `user` through, or answers the request: the anonymous answer (a 303 to login
    /// with `return_to` = `path_and_query` for a browser, 401 JSON for an API client) or
    /// a 403 page (or JSON) for a user the predicate refuses. `prefers_json` and
    /// `path_and_query` read the request only when it is refused: the admitted path, every
    /// request of a logged-in user, pays for neither.
    pub fn check<P: AsRef<str>>(
        &self,
        kvixi: &Kvixi,
        user: Option<KvixiUser>,
        prefers_json: impl FnOnce() -> bool,
        path_and_query: impl FnOnce() -> P,
    ) -> Result<KvixiUser, Reply> {
        self.admits(kvixi, user.as_ref(), prefers_json, path_and_query)?;
        // Admitted means someone is logged in; the fallback only keeps this total.
        user.ok_or_else(|| kvixi.anonymous_reply(false, "/"))
    }

    /// [`check`](Requirement::check) for a user that stays where it is (an adapter that
    /// keeps it in a request-local slot): `Ok(())` lets the request through.
    pub fn admits<P: AsRef<str>>(
        &self,
        kvixi: &Kvixi,
        user: Option<&KvixiUser>,
        prefers_json: impl FnOnce() -> bool,
        path_and_query: impl FnOnce() -> P,
    ) -> Result<(), Reply> {
        match self.decide(user) {
            Decision::Allow => Ok(()),
            Decision::NotAllowed => Err(kvixi.failure(&Error::NotAllowed, prefers_json())),
            Decision::Anonymous => {
                Err(kvixi.anonymous_reply(prefers_json(), path_and_query().as_ref()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn user(id: &str, verified: bool) -> KvixiUser {
        let body = serde_json::json!({"user_info": {
            "user_id": id, "user_verified": if verified { "1" } else { "0" }
        }});
        KvixiUser::from_user_info_response(&body).expect("a user")
    }

    fn kvixi() -> Kvixi {
        let config = Config::builder("a", "s", "http://localhost/auth/kvixi/callback")
            .build()
            .expect("valid config");
        Kvixi::new(config).expect("flow builds")
    }

    #[test]
    fn decision_covers_anonymous_allowed_and_refused() {
        let verified = Requirement::logged_in().allow(|user| user.verified);
        assert_eq!(verified.decide(None), Decision::Anonymous);
        assert_eq!(verified.decide(Some(&user("1", true))), Decision::Allow);
        assert_eq!(
            verified.decide(Some(&user("2", false))),
            Decision::NotAllowed
        );
        assert_eq!(
            Requirement::logged_in().decide(Some(&user("2", false))),
            Decision::Allow
        );
    }

    #[test]
    fn a_login_is_recent_up_to_the_bound_and_only_when_known() {
        let recent = Requirement::logged_in().recent(Duration::from_secs(300));
        assert!(recent.login_is_recent(Some(UnixTime(1_000)), UnixTime(1_300)));
        assert!(!recent.login_is_recent(Some(UnixTime(1_000)), UnixTime(1_301)));
        assert!(!recent.login_is_recent(None, UnixTime(1_000)));
        // A clock stepped back since the login: not older than the bound.
        assert!(recent.login_is_recent(Some(UnixTime(2_000)), UnixTime(1_300)));
        // Without a bound, any login (the check is then never made).
        assert!(Requirement::logged_in().login_is_recent(None, UnixTime(5)));
        assert_eq!(recent.max_login_age(), Some(Duration::from_secs(300)));
        // A predicate added later keeps the bound.
        assert!(recent.allow(|user| user.verified).max_login_age().is_some());
    }

    #[test]
    fn predicates_add_up() {
        let both = Requirement::logged_in()
            .allow(|user| user.verified)
            .allow(|user| user.id == "1");
        assert_eq!(both.decide(Some(&user("1", true))), Decision::Allow);
        assert_eq!(both.decide(Some(&user("3", true))), Decision::NotAllowed);
        // The first predicate still counts after the second was added.
        assert_eq!(both.decide(Some(&user("1", false))), Decision::NotAllowed);
    }

    #[test]
    fn anonymous_answer_is_the_extractors() {
        let kvixi = kvixi();
        let requirement = Requirement::logged_in();
        for json in [false, true] {
            assert_eq!(
                requirement.check(&kvixi, None, || json, || "/account?tab=2"),
                Err(kvixi.anonymous_reply(json, "/account?tab=2"))
            );
        }
        let browser = requirement
            .check(&kvixi, None, || false, || "/account")
            .expect_err("refused");
        assert_eq!(
            browser.location.as_deref(),
            Some("/auth/kvixi/login?return_to=%2Faccount")
        );
    }

    #[test]
    fn refused_user_gets_403_not_allowed() {
        let kvixi = kvixi();
        let requirement = Requirement::logged_in().allow(|user| user.verified);
        let json = requirement
            .check(&kvixi, Some(user("2", false)), || true, || "/account")
            .expect_err("refused");
        assert_eq!(json.status, 403);
        let body: serde_json::Value = serde_json::from_str(&json.body).expect("JSON");
        assert_eq!(body["error"], "not_allowed");
        let html = requirement
            .check(&kvixi, Some(user("2", false)), || false, || "/account")
            .expect_err("refused");
        assert_eq!(html.status, 403);
        assert!(html.body.contains("not allowed"));
        let allowed = requirement.check(
            &kvixi,
            Some(user("1", true)),
            || unreachable!("an admitted request is not read"),
            || "/account",
        );
        assert_eq!(allowed.map(|user| user.id), Ok("1".to_owned()));
    }
}
