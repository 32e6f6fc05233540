//! The route-group guard, the app's own pages and the audit events, against every
//! adapter's example app: `/account` and everything under it are guarded by one line,
//! `/account/verified` also by a "verified only" predicate.

use std::sync::Arc;
use std::time::Duration;

use kvixi_core::{FailedLogin, KvixiBuilder, LoggedOut, RefusedLogin};
use reqwest::{Response, StatusCode, header};
use serde_json::Value;

use crate::{APP_SECRET, REFUSED_USER, StartApp, TestApp, raw_location};

/// A fixture user that logs in fine and is not verified.
const UNVERIFIED_USER: &str = "carol";

/// Starts the app with an unverified user `carol` registered on the emulator.
async fn start_app(
    start: StartApp,
    customize: impl FnOnce(KvixiBuilder) -> KvixiBuilder,
) -> TestApp {
    let app = TestApp::start_customized(start, customize).await;
    app.emulator.add_user(kvixi_mock::fixture::User::new(
        "1003",
        UNVERIFIED_USER,
        "pw",
    ));
    app
}

fn header<'r>(response: &'r Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// An anonymous browser on a guarded page goes to login and comes back to that page,
/// exactly as the `KvixiUser` extractor sends it.
pub async fn guarded_group_sends_anonymous_browser_to_login_and_back(start: StartApp) {
    let app = start_app(start, |builder| builder).await;
    let browser = app.browser();
    let account = browser.get("/account").await;
    assert_eq!(account.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        raw_location(&account),
        "/auth/kvixi/login?return_to=%2Faccount"
    );
    assert_eq!(header(&account, "cache-control"), "no-store");
    let deeper = browser.get("/account/verified?tab=2").await;
    assert_eq!(deeper.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        raw_location(&deeper),
        "/auth/kvixi/login?return_to=%2Faccount%2Fverified%3Ftab%3D2"
    );
    // The same answer as the extractor's on /private.
    let private = browser.get("/private").await;
    assert_eq!(
        raw_location(&private),
        "/auth/kvixi/login?return_to=%2Fprivate"
    );
    // And the login it starts comes back to the guarded page.
    let callback = browser.log_in("alice", Some("/account")).await;
    assert_eq!(raw_location(&callback), "/account");
    assert_eq!(browser.get("/account").await.status(), StatusCode::OK);
}

/// An anonymous API client on a guarded page gets the extractor's 401 JSON.
pub async fn guarded_group_answers_anonymous_json_with_401(start: StartApp) {
    let app = start_app(start, |builder| builder).await;
    let browser = app.browser();
    let account = browser.get_json("/account").await;
    assert_eq!(account.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&account, "referrer-policy"), "no-referrer");
    let from_guard = account.text().await.expect("body");
    let from_extractor = browser.get_json("/me").await.text().await.expect("body");
    assert_eq!(from_guard, from_extractor);
    let body: Value = serde_json::from_str(&from_guard).expect("JSON");
    assert_eq!(body["error"], "not_logged_in");
}

/// A logged-in user sees the guarded page, built from the user the guard passed on.
pub async fn guarded_group_serves_the_user_the_guard_passed_on(start: StartApp) {
    let app = start_app(start, |builder| builder).await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    let account = browser.get("/account").await;
    assert_eq!(account.status(), StatusCode::OK);
    let html = account.text().await.expect("body");
    assert!(
        html.contains("Account of <span id=\"user-name\">Alice Liddell</span>"),
        "{html}"
    );
    let verified = browser.get("/account/verified").await;
    assert_eq!(verified.status(), StatusCode::OK, "alice is verified");
}

/// A logged-in user the predicate refuses gets 403, as a page or as JSON; the rest of
/// the group is still theirs.
pub async fn guard_predicate_refuses_a_user_with_403(start: StartApp) {
    let app = start_app(start, |builder| builder).await;
    let browser = app.browser();
    let callback = browser.log_in(UNVERIFIED_USER, None).await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER, "carol logs in");
    let account = browser.get("/account").await;
    assert_eq!(account.status(), StatusCode::OK);
    assert!(account.text().await.expect("body").contains("carol"));

    let page = browser.get("/account/verified").await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert!(header(&page, "content-type").starts_with("text/html"));
    let html = page.text().await.expect("body");
    assert!(html.contains("not_allowed"), "{html}");
    assert!(
        !html.contains(UNVERIFIED_USER),
        "the refusal page is not the page"
    );

    let json = browser.get_json("/account/verified").await;
    assert_eq!(json.status(), StatusCode::FORBIDDEN);
    let body: Value = json.json().await.expect("JSON");
    assert_eq!(body["error"], "not_allowed");
    // Still logged in: a 403 is not a logout.
    assert_eq!(browser.get("/account").await.status(), StatusCode::OK);
}

/// Routes outside the group are as they were: public pages stay public, a path that
/// only starts like the group is not in it.
pub async fn routes_outside_the_group_are_unaffected(start: StartApp) {
    let app = start_app(start, |builder| builder).await;
    let browser = app.browser();
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);
    assert_eq!(
        browser.get("/accountant").await.status(),
        StatusCode::NOT_FOUND,
        "not under /account"
    );
    assert_eq!(
        browser.get("/auth/kvixi/login").await.status(),
        StatusCode::SEE_OTHER
    );
    browser.log_in(UNVERIFIED_USER, None).await;
    // The predicate of /account/verified applies nowhere else.
    assert_eq!(browser.get("/private").await.status(), StatusCode::OK);
    assert_eq!(browser.get_json("/me").await.status(), StatusCode::OK);
}

/// What the audit hooks saw.
#[derive(Clone, Default)]
struct Seen {
    logouts: Arc<std::sync::Mutex<Vec<Option<String>>>>,
    failures: Arc<std::sync::Mutex<Vec<FailedLogin>>>,
    refusals: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Seen {
    fn hooks(&self, builder: KvixiBuilder) -> KvixiBuilder {
        let (logouts, failures, refusals) = (
            self.logouts.clone(),
            self.failures.clone(),
            self.refusals.clone(),
        );
        builder
            .on_logout(move |event: LoggedOut| {
                let logouts = logouts.clone();
                async move {
                    let id = event.user.map(|user| user.id);
                    logouts.lock().expect("not poisoned").push(id);
                }
            })
            .on_login_failed(move |event: FailedLogin| {
                let failures = failures.clone();
                async move { failures.lock().expect("not poisoned").push(event) }
            })
            .on_login_refused(move |event: RefusedLogin| {
                let refusals = refusals.clone();
                async move {
                    refusals.lock().expect("not poisoned").push(event.user.id);
                    // An audit hook that fails is logged; the refusal is answered as usual.
                    Err::<(), _>("the audit store is down")
                }
            })
    }
}

/// Each outcome calls its hook exactly once, with no secret in what it is given.
pub async fn audit_hooks_fire_once_per_outcome(start: StartApp) {
    let seen = Seen::default();
    let app = start_app(start, |builder| seen.hooks(builder)).await;
    let browser = app.browser();

    // A success and a logout.
    browser.log_in("alice", None).await;
    let logout = browser.post("/auth/kvixi/logout").await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        *seen.logouts.lock().expect("not poisoned"),
        [Some(kvixi_mock::fixture::ALICE_USER_ID.to_owned())]
    );

    // A failure: a callback without a pending login.
    let forged = browser
        .visit(browser.url("/auth/kvixi/callback?auth_key=stolen-key-123"))
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    // A refusal by on_login (the suite's app refuses bob).
    let refused = browser.log_in(REFUSED_USER, None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let failures = seen.failures.lock().expect("not poisoned").clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        (failures[0].code, failures[0].status),
        ("no_pending_login", 400)
    );
    assert!(!format!("{failures:?}").contains("stolen-key-123"));
    assert_eq!(
        *seen.refusals.lock().expect("not poisoned"),
        [kvixi_mock::fixture::BOB_USER_ID.to_owned()],
        "refused once, and not counted as a failure"
    );
    assert_eq!(seen.logouts.lock().expect("not poisoned").len(), 1);
}

/// A hook that panics breaks nothing: the logout is answered and done.
pub async fn panicking_audit_hook_leaves_the_answer_alone(start: StartApp) {
    let app = start_app(start, |builder| {
        builder
            .on_logout(|event: LoggedOut| async move {
                assert!(event.user.is_none(), "an audit hook with a bug");
            })
            .on_login_failed(|_: FailedLogin| async {
                assert!(APP_SECRET.is_empty(), "another audit hook with a bug");
            })
    })
    .await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    let logout = browser.post("/auth/kvixi/logout").await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(raw_location(&logout), "/");
    assert_eq!(
        browser.get_json("/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let failed = browser
        .visit(browser.url("/auth/kvixi/callback?auth_key=abc"))
        .await;
    assert_eq!(failed.status(), StatusCode::BAD_REQUEST);
    assert!(failed.text().await.expect("body").contains("try-again"));
}

/// The app's own page renderer: its body, the core's status and headers, and nothing
/// secret to show.
pub async fn own_error_page_keeps_the_cores_status_and_headers(start: StartApp) {
    let app = start_app(start, |builder| {
        builder.page_renderer(kvixi_examples::pages::own_error_page)
    })
    .await;
    let browser = app.browser();
    let failed = browser
        .visit(browser.url("/auth/kvixi/callback?auth_key=abc"))
        .await;
    assert_eq!(failed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&failed, "cache-control"), "no-store");
    assert_eq!(header(&failed, "referrer-policy"), "no-referrer");
    assert!(header(&failed, "content-type").starts_with("text/html"));
    let html = failed.text().await.expect("body");
    assert!(html.contains("id=\"app-error-page\""), "{html}");
    assert!(
        html.contains("href=\"/auth/kvixi/login\""),
        "try again: {html}"
    );
    assert!(!html.contains(APP_SECRET) && !html.contains("auth_key=abc"));

    // The 403 of the guard is rendered the same way; JSON stays the default.
    browser.log_in(UNVERIFIED_USER, None).await;
    let refused = browser.get("/account/verified").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        header(&refused, "cache-control"),
        "no-store",
        "the guard's 403 page"
    );
    assert_eq!(
        header(&refused, "referrer-policy"),
        "no-referrer",
        "the guard's 403 page"
    );
    assert!(header(&refused, "content-type").starts_with("text/html"));
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("app-error-page")
    );
    let json = browser.get_json("/account/verified").await;
    assert_eq!(json.status(), StatusCode::FORBIDDEN);
    let body: Value = json.json().await.expect("JSON");
    assert_eq!(body["error"], "not_allowed");
}

/// With the app's own sign-in page (the examples' `own_pages`), anonymous browsers land
/// there with `return_to`; the page (served by every framework's example) links to the
/// login with the same `return_to`, and the login started from it ends on the page first
/// asked for. JSON clients still get 401.
pub async fn sign_in_page_receives_anonymous_browsers(start: StartApp) {
    let app = start_app(start, kvixi_examples::pages::own_pages).await;
    let browser = app.browser();
    let account = browser.get("/account?tab=2").await;
    assert_eq!(account.status(), StatusCode::SEE_OTHER);
    let sign_in = raw_location(&account);
    assert_eq!(sign_in, "/sign-in?return_to=%2Faccount%3Ftab%3D2");
    let private = browser.get("/private").await;
    assert_eq!(raw_location(&private), "/sign-in?return_to=%2Fprivate");
    let json = browser.get_json("/account").await;
    assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
    assert!(json.headers().get(header::LOCATION).is_none());

    // The redirect leads to the page itself (no 404, no loop back to the guard).
    let page = browser.get(&sign_in).await;
    assert_eq!(page.status(), StatusCode::OK, "the app serves {sign_in}");
    assert!(header(&page, "content-type").starts_with("text/html"));
    let html = page.text().await.expect("body");
    assert!(html.contains("id=\"sign-in\""), "{html}");
    let login = login_link(&html);
    assert_eq!(
        login, "/auth/kvixi/login?return_to=%2Faccount%3Ftab%3D2",
        "the login link keeps the return_to"
    );

    // The login started from the page's link comes back to the page first asked for.
    let callback = browser.approve_login_from(&login, "alice").await;
    let done = browser.visit(callback).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "alice logs in");
    assert_eq!(raw_location(&done), "/account?tab=2");
    let account = browser.get("/account?tab=2").await;
    assert_eq!(account.status(), StatusCode::OK);
    let html = account.text().await.expect("body");
    assert!(html.contains("Account of"), "{html}");
}

/// A sensitive page (the examples' `/account/delete`, behind `require_recent_login(5
/// min)`) serves a fresh login; once the login is older, a browser goes through login
/// again and comes back to the page (the rest of the account still open to it), an API
/// client gets 401 `login_too_old`, and a form posted with the old login never reaches
/// its handler.
pub async fn recent_login_guard_sends_an_old_login_through_login_again(start: StartApp) {
    let app = start_app(start, |builder| builder).await;
    let browser = app.browser();
    browser.log_in("alice", None).await;
    let fresh = browser.get("/account/delete").await;
    assert_eq!(fresh.status(), StatusCode::OK, "a fresh login passes");
    let html = fresh.text().await.expect("body");
    assert!(html.contains("id=\"delete-account\""), "{html}");

    app.advance_clock(Duration::from_secs(5 * 60 + 30));
    assert_eq!(
        browser.get("/account").await.status(),
        StatusCode::OK,
        "an older login is still a login"
    );
    let old = browser.get("/account/delete?from=settings").await;
    assert_eq!(old.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        raw_location(&old),
        "/auth/kvixi/login?return_to=%2Faccount%2Fdelete%3Ffrom%3Dsettings"
    );
    assert_eq!(header(&old, "cache-control"), "no-store");
    let json = browser.get_json("/account/delete").await;
    assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
    let body: Value = json.json().await.expect("JSON");
    assert_eq!(body["error"], "login_too_old");
    // The form's handler ends every session: with the old login it never runs.
    let posted = browser.post("/account/delete").await;
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    assert!(raw_location(&posted).starts_with("/auth/kvixi/login?"));
    assert_eq!(browser.get("/account").await.status(), StatusCode::OK);

    // The login it asks for comes back to the page, which the new session may see.
    let callback = browser
        .log_in("alice", Some("/account/delete?from=settings"))
        .await;
    assert_eq!(raw_location(&callback), "/account/delete?from=settings");
    assert_eq!(
        browser.get("/account/delete").await.status(),
        StatusCode::OK
    );
}

/// Where the sign-in page's login form (`id="login-form"`) goes when submitted as is
/// (the "remember me" box left unticked): its action with its hidden `return_to`.
fn login_link(html: &str) -> String {
    let form = html
        .find("id=\"login-form\"")
        .map(|at| &html[html[..at].rfind("<form").unwrap_or(0)..])
        .unwrap_or_else(|| panic!("no login form in {html}"));
    let attribute = |name: &str| {
        form.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
    };
    let action = attribute("action").unwrap_or_else(|| panic!("no action: {html}"));
    let return_to = form
        .split("name=\"return_to\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next());
    let unescape = |text: &str| {
        text.replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    match return_to {
        Some(to) => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &unescape(to))
                .finish();
            format!("{}?{query}", unescape(action))
        }
        None => unescape(action),
    }
}

/// Expands the group-guard, pages and events scenarios into one `#[tokio::test]` each
/// for the framework `start` serves.
#[macro_export]
macro_rules! guard_scenarios {
    ($start:path) => {
        $crate::scenarios!(@each $start;
            guarded_group_sends_anonymous_browser_to_login_and_back,
            guarded_group_answers_anonymous_json_with_401,
            guarded_group_serves_the_user_the_guard_passed_on,
            guard_predicate_refuses_a_user_with_403,
            routes_outside_the_group_are_unaffected,
            audit_hooks_fire_once_per_outcome,
            panicking_audit_hook_leaves_the_answer_alone,
            own_error_page_keeps_the_cores_status_and_headers,
            sign_in_page_receives_anonymous_browsers,
            recent_login_guard_sends_an_old_login_through_login_again,
        );
    };
}
