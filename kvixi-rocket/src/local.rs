//! What kvixi-rocket keeps for one request, in a single entry of Rocket's request-local
//! cache: each entry is an allocation and a type-map insert of its own, paid on every
//! request that reaches a Kvixi guard, fairing or route.

use std::sync::{Mutex, OnceLock, PoisonError};

use kvixi_core::Reply;
use rocket::Request;

use kvixi_core::RequestSession;

/// One request's Kvixi state.
#[derive(Default)]
pub(crate) struct Local {
    /// The session record, read from the store at most once.
    pub(crate) session: OnceLock<RequestSession>,
    /// The reply of the first Kvixi guard that refused the request, for the catcher.
    pub(crate) refusal: OnceLock<Reply>,
    /// The user a group guard admitted, for the `KvixiUser` guard.
    passed_on: Mutex<Option<kvixi_core::KvixiUser>>,
}

impl Local {
    /// The request's state, created at its first use.
    pub(crate) fn of<'r>(request: &'r Request<'_>) -> &'r Local {
        request.local_cache(Local::default)
    }

    /// The slot of the user a group guard admitted.
    pub(crate) fn passed_on(&self) -> std::sync::MutexGuard<'_, Option<kvixi_core::KvixiUser>> {
        self.passed_on
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
