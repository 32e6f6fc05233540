//! The expiry of a session record in a tower-sessions store, set and judged on the flow's
//! clock: one rule for kvixi-core's cookie-session engine (actix, Rocket) and kvixi-axum's
//! store wrapper. A record saved at `t` with the idle timeout `idle` expires at
//! `t + idle`; it is over once [`flow::idle_over`] says so of `t`.
//!
//! ```
//! use kvixi_core::UnixTime;
//! use kvixi_core::record_expiry::{expiring_at, idle_over, saved_at};
//!
//! let day = time::Duration::hours(24);
//! let expiry = expiring_at(UnixTime(1_000_000), day);
//! assert_eq!(saved_at(expiry, day), UnixTime(1_000_000));
//! assert!(!idle_over(expiry, day, UnixTime(1_000_000 + 86_400)));
//! assert!(idle_over(expiry, day, UnixTime(1_000_000 + 86_402)));
//! ```

use time::{Duration, OffsetDateTime};

use crate::flow::{self, UnixTime};

/// When a record saved at `now` (the flow's clock) expires after `idle`: the flow's
/// whole second with the system clock's fraction of a second, so that on the system
/// clock it is exactly as precise as the stores that judge it.
pub fn expiring_at(now: UnixTime, idle: Duration) -> OffsetDateTime {
    // The system clock first: a second it turns meanwhile makes the expiry later, not
    // earlier.
    let system = OffsetDateTime::now_utc();
    let now = i64::try_from(now.0).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(now)
        .and_then(|now| now.replace_nanosecond(system.nanosecond()))
        .unwrap_or(system)
        .saturating_add(idle)
}

/// When a record expiring at `expiry` after `idle` was last saved, in whole seconds.
pub fn saved_at(expiry: OffsetDateTime, idle: Duration) -> UnixTime {
    let saved = expiry.unix_timestamp().saturating_sub(idle.whole_seconds());
    UnixTime(u64::try_from(saved).unwrap_or(0))
}

/// Whether a record expiring at `expiry` after `idle` is over at `now`
/// ([`flow::idle_over`] of its last save), whatever its store still holds.
pub fn idle_over(expiry: OffsetDateTime, idle: Duration, now: UnixTime) -> bool {
    flow::idle_over(saved_at(expiry, idle), now, idle.unsigned_abs())
}
