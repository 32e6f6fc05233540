//! The library's metrics, through the `metrics` facade: an app installs the recorder it
//! wants (Prometheus, StatsD, …); without one, each call is a no-op. Names follow
//! Prometheus conventions, and no label carries a user id, a token or any unbounded
//! value: labels are the stable codes of [`Error::code`](crate::Error::code), endpoint
//! names and refusal reasons.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `kvixi_login_starts_total` | counter | |
//! | `kvixi_logins_total` | counter | |
//! | `kvixi_login_failures_total` | counter | `code` |
//! | `kvixi_logins_refused_total` | counter | |
//! | `kvixi_logouts_total` | counter | |
//! | `kvixi_revocations_total` | counter | |
//! | `kvixi_provider_refusals_total` | counter | `reason` (`busy`, `breaker`) |
//! | `kvixi_provider_request_duration_seconds` | histogram | `endpoint` (`authorize`, `user_info`) |
//! | `kvixi_session_store_duration_seconds` | histogram | |
//! | `kvixi_session_store_shed_total` | counter | |
//! | `kvixi_provider_calls_in_flight` | gauge | |
//! | `kvixi_provider_callbacks_waiting` | gauge | |
//! | `kvixi_provider_breaker_state` | gauge | (0 closed, 1 open, 2 half-open) |

use std::time::Duration;

use ::metrics::{counter, gauge, histogram};

/// A login was started.
pub(crate) fn login_started() {
    counter!("kvixi_login_starts_total").increment(1);
}

/// A login completed.
pub(crate) fn logged_in() {
    counter!("kvixi_logins_total").increment(1);
}

/// A login failed, with its error's stable code.
pub(crate) fn login_failed(code: &'static str) {
    counter!("kvixi_login_failures_total", "code" => code).increment(1);
}

/// The app's `on_login` refused a login.
pub(crate) fn login_refused() {
    counter!("kvixi_logins_refused_total").increment(1);
}

/// A session ended by logout.
pub(crate) fn logged_out() {
    counter!("kvixi_logouts_total").increment(1);
}

/// A user was revoked.
pub(crate) fn revoked() {
    counter!("kvixi_revocations_total").increment(1);
}

/// A callback was refused before calling Kvixi (`busy`, `breaker`).
pub(crate) fn provider_refused(reason: &'static str) {
    counter!("kvixi_provider_refusals_total", "reason" => reason).increment(1);
}

/// A call to Kvixi's `endpoint` took `took`.
pub(crate) fn provider_call(endpoint: &'static str, took: Duration) {
    histogram!("kvixi_provider_request_duration_seconds", "endpoint" => endpoint)
        .record(took.as_secs_f64());
}

/// A session store call that had to wait took `took` (a store answering at once, as
/// the memory stores do, is not timed: it costs the logged-in request nothing). For
/// adapters whose framework calls the store itself.
pub fn store_call(took: Duration) {
    histogram!("kvixi_session_store_duration_seconds").record(took.as_secs_f64());
}

/// A session store call was answered 503 at once: the store had answered nothing for a
/// while and calls were already waiting on it.
#[cfg(feature = "tower-sessions-store")]
pub(crate) fn store_call_shed() {
    counter!("kvixi_session_store_shed_total").increment(1);
}

/// How many calls to Kvixi are in flight.
pub(crate) fn provider_calls_in_flight(calls: usize) {
    gauge!("kvixi_provider_calls_in_flight").set(calls as f64);
}

/// How many callbacks wait for a slot to call Kvixi.
pub(crate) fn provider_callbacks_waiting(callbacks: usize) {
    gauge!("kvixi_provider_callbacks_waiting").set(callbacks as f64);
}

/// The breaker's state (0 closed, 1 open, 2 half-open).
pub(crate) fn breaker_state(state: f64) {
    gauge!("kvixi_provider_breaker_state").set(state);
}
