//! The emulator's clock: real monotonic time plus an offset that tests can push forward.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A monotonic clock that tests can advance without sleeping.
///
/// Every expiry in the emulator (auth_keys, access tokens) is measured against this clock, so
/// `advance_clock(Duration::from_secs(3600))` makes a token expire at once.
#[derive(Debug, Default)]
pub(crate) struct MockClock {
    offset: Mutex<Duration>,
}

impl MockClock {
    /// The emulator's "now".
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        *offset = offset.saturating_add(by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward_without_sleeping() {
        let clock = MockClock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(600));
        assert!(clock.now() >= before + Duration::from_secs(600));
    }
}
