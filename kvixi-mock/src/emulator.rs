//! A running emulator and the handle tests script it through.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::Shared;
use crate::{App, EmulatorBuilder, Endpoint, Error, Fault, StateSnapshot, User};

/// How long [`Emulator::shutdown`] lets open requests finish before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A Kvixi emulator serving on loopback.
///
/// Cloning is cheap and every clone drives the same emulator. The server stops when
/// [`shutdown`](Self::shutdown) is awaited or when the last clone is dropped.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Running>,
}

struct Running {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let stop = self
            .stop
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Settings for a new emulator: the default fixture (alice and bob, no app), one-hour
    /// tokens, platform-style HTTP 200 errors, loopback only.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    pub(crate) fn running(
        shared: Arc<Shared>,
        addr: SocketAddr,
        base_url: String,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    ) -> Self {
        Self {
            inner: Arc::new(Running {
                shared,
                addr,
                base_url,
                stop: Mutex::new(Some(stop)),
                task: Mutex::new(Some(task)),
            }),
        }
    }

    /// Where the emulator answers, e.g. `http://127.0.0.1:38291` (no trailing slash); use it
    /// as the Kvixi base URL.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// The socket address the emulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The step 1 URL a browser is sent to for `app_id`: `{base}/api/oauth?app_id=...`.
    pub fn oauth_url(&self, app_id: &str) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("app_id", app_id)
            .finish();
        format!("{}/api/oauth?{query}", self.inner.base_url)
    }

    /// Registers an app, replacing one with the same app_id.
    pub fn register_app(&self, app: App) {
        self.inner.shared.registry().register_app(app);
    }

    /// Adds a user, replacing one with the same user name.
    pub fn add_user(&self, user: User) {
        self.inner.shared.registry().add_user(user);
    }

    /// Moves the emulator's clock forward, expiring auth_keys and tokens without sleeping.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.shared.clock().advance(by);
    }

    /// Makes `endpoint` misbehave as `fault` until cleared; replaces any fault it had.
    pub fn inject_fault(&self, endpoint: Endpoint, fault: Fault) {
        self.inner.shared.faults().insert(endpoint, fault);
    }

    /// Makes `endpoint` behave normally again.
    pub fn clear_fault(&self, endpoint: Endpoint) {
        self.inner.shared.faults().remove(&endpoint);
    }

    /// Makes every endpoint behave normally again.
    pub fn clear_faults(&self) {
        self.inner.shared.faults().clear();
    }

    /// Issues an auth_key as if `user_name` had approved `app_id` on the login page, for tests
    /// that script the callback themselves.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownApp`] or [`Error::UnknownUser`] when either is not registered.
    pub fn issue_auth_key(&self, app_id: &str, user_name: &str) -> Result<String, Error> {
        let now = self.inner.shared.now();
        self.inner
            .shared
            .registry()
            .issue_auth_key(app_id, user_name, now)
    }

    /// How many requests `endpoint` has received so far (for tests that check that a
    /// refused callback never reached Kvixi).
    pub fn request_count(&self, endpoint: Endpoint) -> u64 {
        self.inner.shared.request_count(endpoint)
    }

    /// What `GET /_mock/state` answers: apps with secrets, live auth_keys, tokens, users
    /// (never passwords).
    pub fn state(&self) -> StateSnapshot {
        let shared = &self.inner.shared;
        let now = shared.now();
        shared.registry().snapshot(shared.base_url(), now)
    }

    /// Stops accepting connections, lets open requests finish (for up to 5 s) and waits for the
    /// server to stop. Calling it again, or from another clone, returns at once.
    pub async fn shutdown(&self) {
        let stop = self
            .inner
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut task) = task {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        tracing::info!(base_url = %self.inner.base_url, "Kvixi emulator stopped");
    }
}
