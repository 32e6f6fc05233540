//! The HTTP side of the emulator: routes, shared state and request logging.

mod authorize;
mod dev;
mod oauth;
mod page;
mod params;
mod request_log;
mod user_info;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::clock::MockClock;
use crate::registry::Registry;
use crate::{Endpoint, Fault};

/// What every handler shares. Locks are never held across an `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    registry: Mutex<Registry>,
    faults: Mutex<HashMap<Endpoint, Fault>>,
    clock: MockClock,
    strict: bool,
    base_url: String,
    /// Requests seen per endpoint (OAuth, Authorize, UserInfo), faulted ones included.
    requests: [std::sync::atomic::AtomicU64; 3],
}

impl Shared {
    pub(crate) fn new(registry: Registry, strict: bool, base_url: String) -> Self {
        Self {
            registry: Mutex::new(registry),
            faults: Mutex::new(HashMap::new()),
            clock: MockClock::default(),
            strict,
            base_url,
            requests: Default::default(),
        }
    }

    /// How many requests `endpoint` has received.
    pub(crate) fn request_count(&self, endpoint: Endpoint) -> u64 {
        self.requests[endpoint_index(endpoint)].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The registry, locked. A panic elsewhere cannot leave it half-updated in a way that
    /// matters to a test double, so a poisoned lock is simply taken over.
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, HashMap<Endpoint, Fault>> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    pub(crate) fn clock(&self) -> &MockClock {
        &self.clock
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Applies the fault attached to `endpoint`, if any: sleeps for a delay (then `None`, answer
    /// normally) or gives the replacement answer.
    async fn fault_response(&self, endpoint: Endpoint) -> Option<Response> {
        self.requests[endpoint_index(endpoint)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fault = self.faults().get(&endpoint).cloned()?;
        if let Some(delay) = fault.delay() {
            tokio::time::sleep(delay).await;
        }
        let response = fault.response();
        if response.is_some() {
            tracing::debug!(?endpoint, "answering with an injected fault");
        }
        response
    }
}

fn endpoint_index(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::OAuth => 0,
        Endpoint::Authorize => 1,
        Endpoint::UserInfo => 2,
    }
}

/// The emulator's routes over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/oauth", get(oauth::show).post(oauth::submit))
        .route("/api/authorize", get(authorize::authorize))
        .route("/api/get_user_info", get(user_info::get_user_info))
        .route("/_mock/state", get(dev::state))
        .route("/_mock/clock", axum::routing::post(dev::advance_clock))
        .route("/_mock/avatar/{file}", get(dev::avatar))
        .route("/_mock/cover/{file}", get(dev::cover))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::from_fn(request_log::log_request))
        .with_state(shared)
}
