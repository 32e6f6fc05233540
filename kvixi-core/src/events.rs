//! Audit events: the app's hooks for logouts, failed and refused logins, and the `tracing`
//! event every outcome of the flow emits.
//!
//! Each outcome calls its hook exactly once, after the outcome is settled and before the
//! answer leaves. A hook is an audit trail, not a gate: one that returns an error or
//! panics is logged at `error` and the request is answered as if it had succeeded (only
//! `on_login` can refuse a login).
//!
//! Every outcome is also one `tracing` event at `info`, with the stable fields
//! `kvixi.event` (`login`, `login_failed`, `login_refused`, `logout`), `kvixi.user_id`
//! (when a user is known) and `kvixi.code` (the error's code, for failures), so that a
//! log pipeline can count them.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;

use crate::driver::KvixiBuilder;
use crate::user::KvixiUser;

/// A logout: the session ended.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LoggedOut {
    /// Who was logged in, when someone was (a logout of an anonymous session ends it too).
    pub user: Option<KvixiUser>,
}

/// A login that failed: no pending login, a refused or missing auth_key, the person
/// denied access, Kvixi failing. Carries no secret, no auth_key and nothing of Kvixi's
/// own message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedLogin {
    /// The error's stable code (`"no_pending_login"`, `"provider_timeout"`, …), as
    /// [`Error::code`](crate::Error::code) names it.
    pub code: &'static str,
    /// The HTTP status the callback answered.
    pub status: u16,
}

/// A login that Kvixi confirmed and the app's `on_login` hook refused.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RefusedLogin {
    /// The user Kvixi confirmed.
    pub user: KvixiUser,
    /// The reason the hook gave (for the app's logs; the user saw a generic message).
    pub reason: String,
}

/// What an event hook's future may end with: `()`, or a `Result` whose error is logged.
pub trait HookOutput: Send + 'static {
    /// The failure to log, if any.
    fn failure(self) -> Option<String>;
}

impl HookOutput for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: fmt::Display + Send + 'static> HookOutput for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|error| error.to_string())
    }
}

type HookFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;
type Hook<E> = Arc<dyn Fn(E) -> HookFuture + Send + Sync>;

fn boxed<E, F, Fut>(hook: F) -> Hook<E>
where
    F: Fn(E) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HookOutput,
{
    Arc::new(move |event| {
        let future = hook(event);
        Box::pin(async move { future.await.failure() })
    })
}

/// The app's event hooks, shared by every request.
#[derive(Clone, Default)]
pub(crate) struct EventHooks {
    on_logout: Option<Hook<LoggedOut>>,
    on_login_failed: Option<Hook<FailedLogin>>,
    on_login_refused: Option<Hook<RefusedLogin>>,
}

impl fmt::Debug for EventHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHooks")
            .field("on_logout", &self.on_logout.is_some())
            .field("on_login_failed", &self.on_login_failed.is_some())
            .field("on_login_refused", &self.on_login_refused.is_some())
            .finish()
    }
}

/// Runs one hook; its error or panic is logged and goes no further.
async fn run<E>(name: &'static str, hook: Option<&Hook<E>>, event: E) {
    let Some(hook) = hook else { return };
    // The call itself happens inside the future, so a hook that panics before returning
    // its future is caught too.
    let call = async { hook(event).await };
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(None) => {}
        Ok(Some(error)) => tracing::error!(hook = name, %error, "kvixi event hook failed"),
        Err(_) => tracing::error!(hook = name, "kvixi event hook panicked"),
    }
}

impl EventHooks {
    pub(crate) async fn logged_in(&self, user: &KvixiUser) {
        crate::telemetry::logged_in();
        tracing::info!(kvixi.event = "login", kvixi.user_id = %user.id, "kvixi login succeeded");
    }

    pub(crate) async fn logged_out(&self, user: Option<KvixiUser>) {
        crate::telemetry::logged_out();
        let user_id = user.as_ref().map(|user| user.id.as_str());
        tracing::info!(
            kvixi.event = "logout",
            kvixi.user_id = user_id,
            "kvixi logout"
        );
        run("on_logout", self.on_logout.as_ref(), LoggedOut { user }).await;
    }

    pub(crate) async fn login_failed(&self, code: &'static str, status: u16) {
        crate::telemetry::login_failed(code);
        tracing::info!(
            kvixi.event = "login_failed",
            kvixi.code = code,
            kvixi.status = status,
            "kvixi login failed"
        );
        let event = FailedLogin { code, status };
        run("on_login_failed", self.on_login_failed.as_ref(), event).await;
    }

    pub(crate) async fn login_refused(&self, user: &KvixiUser, reason: &str) {
        crate::telemetry::login_refused();
        tracing::info!(
            kvixi.event = "login_refused",
            kvixi.user_id = %user.id,
            kvixi.code = "login_refused",
            "kvixi login refused by on_login"
        );
        let event = RefusedLogin {
            user: user.clone(),
            reason: reason.to_owned(),
        };
        run("on_login_refused", self.on_login_refused.as_ref(), event).await;
    }
}

impl KvixiBuilder {
    /// Runs `hook` once per logout, after the session ended (an audit trail; it cannot
    /// keep anyone logged in). Its future may end with `()` or a `Result`: an error, or a
    /// panic, is logged and the logout is answered as usual.
    pub fn on_logout<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(LoggedOut) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HookOutput,
    {
        self.events.on_logout = Some(boxed(hook));
        self
    }

    /// Runs `hook` once per failed callback (no pending login, a refused auth_key,
    /// access denied, Kvixi failing) with the error's code and status: never a secret,
    /// the auth_key or Kvixi's own message. Refusals by `on_login` go to
    /// [`on_login_refused`](KvixiBuilder::on_login_refused) instead. Errors and panics are
    /// logged, the failure page is answered as usual.
    pub fn on_login_failed<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(FailedLogin) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HookOutput,
    {
        self.events.on_login_failed = Some(boxed(hook));
        self
    }

    /// Runs `hook` once each time `on_login` refuses a user Kvixi confirmed. Errors and
    /// panics are logged, the refusal is answered as usual.
    pub fn on_login_refused<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(RefusedLogin) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HookOutput,
    {
        self.events.on_login_refused = Some(boxed(hook));
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn user(id: &str) -> KvixiUser {
        let body = serde_json::json!({"user_info": {"user_id": id}});
        KvixiUser::from_user_info_response(&body).expect("a user")
    }

    fn counting<E: Send + 'static>(count: &Arc<AtomicUsize>) -> Hook<E> {
        let count = count.clone();
        boxed(move |_event: E| {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
            }
        })
    }

    #[tokio::test]
    async fn each_outcome_calls_its_own_hook_once() {
        let (logout, failed, refused) = Default::default();
        let hooks = EventHooks {
            on_logout: Some(counting(&logout)),
            on_login_failed: Some(counting(&failed)),
            on_login_refused: Some(counting(&refused)),
        };
        hooks.logged_out(None).await;
        hooks.login_failed("no_pending_login", 400).await;
        let counts = |c: &Arc<AtomicUsize>| c.load(Ordering::SeqCst);
        assert_eq!(
            (counts(&logout), counts(&failed), counts(&refused)),
            (1, 1, 0)
        );
        hooks.login_refused(&user("7"), "not invited").await;
        assert_eq!(counts(&refused), 1);
    }

    #[tokio::test]
    async fn a_failing_or_panicking_hook_goes_no_further() {
        let failing = EventHooks {
            on_logout: Some(boxed(|_: LoggedOut| async { Err::<(), _>("db down") })),
            on_login_failed: Some(boxed(|event: FailedLogin| async move {
                assert!(event.status == 0, "a hook bug");
            })),
            on_login_refused: Some(boxed(|_: RefusedLogin| -> std::future::Ready<()> {
                panic!("panics before its future exists")
            })),
        };
        failing.logged_out(None).await;
        failing.login_failed("access_denied", 403).await;
        failing.login_refused(&user("7"), "x").await;
    }

    #[test]
    fn the_failed_login_event_has_no_room_for_a_secret() {
        // Only a code and a status: the shape is the guarantee.
        let event = FailedLogin {
            code: "auth_key_rejected",
            status: 400,
        };
        assert_eq!(
            format!("{event:?}"),
            r#"FailedLogin { code: "auth_key_rejected", status: 400 }"#
        );
    }
}
