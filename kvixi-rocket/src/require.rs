//! The route-group guard: a fairing that covers a base path.
//!
//! Rocket has no middleware that can answer in place of a route, and a request guard
//! protects only the handlers that name it: one forgotten guard is a page open to
//! everyone. So the group guard is a request fairing over a base path: it reads the user
//! before routing; a refused request is routed to an internal route that answers the
//! core's reply, so no handler of the group ever runs for it.

use std::time::Duration;

use kvixi_core::guard::Requirement;
use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::http::uri::{Origin, Path};
use rocket::http::{Method, Status};
use rocket::route::{Handler, Outcome, Route};
use rocket::{Build, Data, Request, Rocket};

use crate::fairing::Attached;
use crate::local::Local;
use crate::response::{KvixiResponse, leave_refusal, wants_json};

/// Where a refused request is routed (answered with the refusal left in its cache).
const REFUSED_PATH: &str = "/__kvixi/refused";
const REFUSED_ROUTE: &str = "kvixi_refused";

/// Requires a logged-in Kvixi user on every route under a base path: attach one per
/// group, beside [`KvixiFairing`](crate::KvixiFairing).
///
/// Rocket's idiom for "before every route of a group" is a fairing (a request guard
/// covers only the handlers that name it), so this is a request fairing:
/// `RequireLogin::under("/account")` covers `/account` and every path below it (not
/// `/accountant`). An anonymous request gets the same answer as the
/// [`KvixiUser`](crate::KvixiUser) guard's (a 303 to login coming back to this page for
/// a browser, a 401 JSON error for an API client); a user refused by
/// [`allow`](RequireLogin::allow) gets 403. Both are decided by [`kvixi_core::guard`],
/// before routing: no handler of the group runs for a refused request.
///
/// The admitted user is left in the request-local cache: a handler reads it with the
/// [`KvixiUser`](crate::KvixiUser) guard, which finds it there without reading the
/// session again (Rocket handlers see request state only through guards).
///
/// ```
/// use kvixi_rocket::{KvixiFairing, KvixiUser, RequireLogin};
///
/// #[rocket::get("/account")]
/// fn account(user: KvixiUser) -> String {
///     format!("Hello, {}", user.display_name())
/// }
///
/// # fn app(kvixi: kvixi_rocket::Kvixi) -> rocket::Rocket<rocket::Build> {
/// rocket::build()
///     .mount("/", rocket::routes![account])
///     .attach(KvixiFairing::new(kvixi))
///     .attach(RequireLogin::under("/account"))
///     .attach(RequireLogin::under("/account/verified").allow(|user| user.verified))
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RequireLogin {
    /// The base path's segments.
    base: Vec<String>,
    requirement: Requirement,
}

impl RequireLogin {
    /// Covers `base` (a path like `/account`) and every path below it.
    pub fn under(base: impl Into<String>) -> Self {
        let base = base.into();
        RequireLogin {
            base: base
                .split('/')
                .filter(|segment| !segment.is_empty())
                .map(str::to_owned)
                .collect(),
            requirement: Requirement::logged_in(),
        }
    }

    /// Also requires `predicate` to accept the user ("verified only", an allow-list);
    /// a logged-in user it refuses gets 403 (`not_allowed`).
    pub fn allow(
        self,
        predicate: impl Fn(&kvixi_core::KvixiUser) -> bool + Send + Sync + 'static,
    ) -> Self {
        RequireLogin {
            requirement: self.requirement.allow(predicate),
            ..self
        }
    }

    /// Also requires the login to be at most `max_age` old: see [`require_recent_login`].
    pub fn recent(self, max_age: Duration) -> Self {
        RequireLogin {
            requirement: self.requirement.recent(max_age),
            ..self
        }
    }

    /// Whether `path` is the base or below it, compared as Rocket's router compares it:
    /// by its percent-decoded, non-empty segments (so `/%61ccount` and `//account` are
    /// covered like `/account`, which they are routed to).
    fn covers(&self, path: Path<'_>) -> bool {
        let mut segments = path.segments();
        self.base
            .iter()
            .all(|base| segments.next() == Some(base.as_str()))
    }
}

/// Requires a login at most `max_age` old on every route under `base` (a sensitive page:
/// deleting the account, changing where mail goes): a [`RequireLogin`] whose older
/// logins send a browser through login again, coming back to the same page, and answer
/// an API client 401 `login_too_old`. The new login replaces the session as any login
/// does. Attach it beside a `RequireLogin` of a wider base, or alone.
///
/// ```
/// use std::time::Duration;
/// use kvixi_rocket::{KvixiFairing, KvixiUser, require_recent_login};
///
/// #[rocket::post("/account/delete")]
/// fn delete_account(user: KvixiUser) -> String {
///     format!("Deleting the account of {}", user.display_name())
/// }
///
/// # fn app(kvixi: kvixi_rocket::Kvixi) -> rocket::Rocket<rocket::Build> {
/// rocket::build()
///     .mount("/", rocket::routes![delete_account])
///     .attach(KvixiFairing::new(kvixi))
///     .attach(require_recent_login("/account/delete", Duration::from_secs(5 * 60)))
/// # }
/// ```
pub fn require_recent_login(base: impl Into<String>, max_age: Duration) -> RequireLogin {
    RequireLogin::under(base).recent(max_age)
}

/// Takes the user a [`RequireLogin`] fairing admitted for this request, if any: moved
/// out, not copied (a second `KvixiUser` guard of the request reads the session, which
/// Rocket's session slot has already loaded).
pub(crate) fn take_passed_on(request: &Request<'_>) -> Option<kvixi_core::KvixiUser> {
    Local::of(request).passed_on().take()
}

#[rocket::async_trait]
impl Fairing for RequireLogin {
    fn info(&self) -> Info {
        Info {
            name: "Kvixi group guard",
            kind: Kind::Ignite | Kind::Request,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        // One internal route for every group guard.
        if rocket
            .routes()
            .any(|route| route.name.as_deref() == Some(REFUSED_ROUTE))
        {
            return Ok(rocket);
        }
        let mut route = Route::new(Method::Get, REFUSED_PATH, Refused);
        route.name = Some(REFUSED_ROUTE.into());
        Ok(rocket.mount("/", vec![route]))
    }

    async fn on_request(&self, request: &mut Request<'_>, _data: &mut Data<'_>) {
        if !self.covers(request.uri().path()) {
            return;
        }
        let refusal = self.admit(request).await;
        if let Some(reply) = refusal {
            leave_refusal(request, reply);
            request.set_method(Method::Get);
            request.set_uri(Origin::const_new(REFUSED_PATH, None));
        }
    }
}

impl RequireLogin {
    /// Admits the request (leaving the user for the `KvixiUser` guard), or returns the
    /// core's refusal.
    async fn admit(&self, request: &Request<'_>) -> Option<kvixi_core::Reply> {
        let Some(attached) = Attached::of(request) else {
            tracing::error!("kvixi_rocket::RequireLogin attached without KvixiFairing");
            return Some(kvixi_core::Reply::plain(
                500,
                crate::Error::NotAttached.to_string(),
            ));
        };
        let kvixi = &attached.kvixi;
        let json = || wants_json(request);
        let local = Local::of(request);
        // An outer group guard may have read the user already. (Tested apart from the
        // take, so that no user-sized value waits in this future across the read.)
        let path_and_query = || request.uri().to_string();
        let user = if let Some(max_age) = self.requirement.max_login_age() {
            // The login's time is read too, from the record loaded already; an outer
            // guard's user is read again with it.
            let session = crate::session::of(&attached.sessions, request);
            match kvixi.recent_user(&*session, max_age).await {
                Ok(user) => user,
                Err(error) => {
                    let reply = self
                        .requirement
                        .failure(kvixi, &error, json(), path_and_query);
                    return Some(reply);
                }
            }
        } else if local.passed_on().is_some() {
            local.passed_on().take()
        } else {
            match crate::session::of(&attached.sessions, request)
                .current_user(kvixi)
                .await
            {
                Ok(user) => user,
                Err(error) => return Some(kvixi.failure(&error, json())),
            }
        };
        // Into its slot at once, decided there: the user is moved once on its way to
        // the handler.
        let mut slot = local.passed_on();
        *slot = user;
        match self
            .requirement
            .admits(kvixi, slot.as_ref(), json, path_and_query)
        {
            Ok(()) => None,
            Err(reply) => {
                *slot = None;
                Some(reply)
            }
        }
    }
}

/// The internal route of refused requests: answers the refusal the fairing left.
#[derive(Clone)]
struct Refused;

#[rocket::async_trait]
impl Handler for Refused {
    async fn handle<'r>(&self, request: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        match KvixiResponse::refusal(request) {
            Some(reply) => Outcome::from(request, reply),
            // Asked for directly: there is nothing here.
            None => Outcome::forward(data, Status::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rocket::http::Accept;
    use rocket::local::asynchronous::Client;

    use super::*;
    use crate::KvixiFairing;
    use crate::test_app::{bare, emulator};
    use crate::testing::log_in;

    static RAN: AtomicUsize = AtomicUsize::new(0);

    /// A handler with no guard at all: only the fairing protects it.
    #[rocket::post("/vault/open")]
    fn open_vault() -> &'static str {
        RAN.fetch_add(1, Ordering::SeqCst);
        "opened"
    }

    #[rocket::get("/vault")]
    fn vault(user: crate::KvixiUser) -> String {
        user.id.clone()
    }

    #[rocket::async_test]
    async fn a_refused_request_never_reaches_a_handler_of_the_group() {
        let (emulator, config) = emulator().await;
        let kvixi = kvixi_core::Kvixi::new(config).expect("flow builds");
        let rocket = bare()
            .mount("/", rocket::routes![open_vault, vault])
            .attach(KvixiFairing::new(kvixi))
            .attach(RequireLogin::under("/vault"))
            .attach(RequireLogin::under("/vault/open").allow(|user| user.id == "nobody"));
        let client = Client::tracked(rocket).await.expect("the rocket ignites");

        let anonymous = client
            .post("/vault/open")
            .header(Accept::HTML)
            .dispatch()
            .await;
        assert_eq!(anonymous.status(), Status::SeeOther);
        assert_eq!(
            anonymous.headers().get_one("Location"),
            Some("/auth/kvixi/login?return_to=%2Fvault%2Fopen")
        );
        log_in(&client, &emulator, "alice")
            .await
            .expect("logged in");
        let refused = client
            .post("/vault/open")
            .header(Accept::JSON)
            .dispatch()
            .await;
        assert_eq!(refused.status(), Status::Forbidden);
        assert_eq!(RAN.load(Ordering::SeqCst), 0, "the handler never ran");
        // The group's other page gets the user the fairing passed on.
        let page = client.get("/vault").dispatch().await;
        assert_eq!(page.status(), Status::Ok);
        assert_eq!(page.into_string().await.as_deref(), Some("1001"));
        // The internal route answers nothing by itself.
        let direct = client.get(REFUSED_PATH).dispatch().await;
        assert_eq!(direct.status(), Status::NotFound);
    }

    #[test]
    fn covers_the_base_and_below_only() {
        let covers = |guard: &RequireLogin, uri: &str| {
            let origin = Origin::parse(uri).expect("a path");
            guard.covers(origin.path())
        };
        let guard = RequireLogin::under("/account/");
        for covered in [
            "/account",
            "/account/verified",
            "/%61ccount",
            "//account//verified",
        ] {
            assert!(covers(&guard, covered), "{covered}");
        }
        for open in ["/accountant", "/", "/other/account"] {
            assert!(!covers(&guard, open), "{open}");
        }
        assert!(covers(&RequireLogin::under("/"), "/anything"));
    }

    #[rocket::async_test]
    async fn an_encoded_or_doubled_path_to_the_group_is_refused_too() {
        let (_emulator, config) = emulator().await;
        let kvixi = kvixi_core::Kvixi::new(config).expect("flow builds");
        let rocket = bare()
            .mount("/", rocket::routes![open_vault])
            .attach(KvixiFairing::new(kvixi))
            .attach(RequireLogin::under("/vault"));
        let client = Client::tracked(rocket).await.expect("the rocket ignites");
        for uri in ["/%76ault/open", "//vault/open", "/vault//open"] {
            let response = client.post(uri).header(Accept::JSON).dispatch().await;
            assert_eq!(response.status(), Status::Unauthorized, "{uri}");
        }
        assert_eq!(RAN.load(Ordering::SeqCst), 0, "the handler never ran");
    }
}
