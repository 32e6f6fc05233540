//! The tower layers: the flow in request extensions, and tower-sessions set up for it.

use axum::Extension;
use axum::extract::Request;
use kvixi_core::{Config, Kvixi, SESSION_COOKIE};
use tower::{Layer, Service};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};

/// Puts the [`Kvixi`] flow in every request's extensions, where the routes and
/// extractors find it.
#[derive(Clone, Debug)]
pub struct KvixiLayer {
    kvixi: Kvixi,
}

impl KvixiLayer {
    /// A layer serving `kvixi`.
    pub fn new(kvixi: Kvixi) -> Self {
        KvixiLayer { kvixi }
    }
}

impl<S> Layer<S> for KvixiLayer {
    type Service = KvixiService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        KvixiService {
            inner: Extension(self.kvixi.clone()).layer(inner),
        }
    }
}

/// The service [`KvixiLayer`] wraps around the app.
#[derive(Clone, Debug)]
pub struct KvixiService<S> {
    inner: axum::middleware::AddExtension<S, Kvixi>,
}

impl<S: Service<Request>> Service<Request> for KvixiService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.inner.call(request)
    }
}

/// A tower-sessions layer over `store` with the cookie the flow needs: `HttpOnly`,
/// `SameSite=Lax` (Strict would lose the session on the way back from Kvixi), `Secure`
/// when the redirect URL is https, `Path=/`, expiring after
/// [`Config::idle_timeout`] without a request (24 h by default).
///
/// tower-sessions pushes the expiry back (in the store and in the cookie's `Max-Age`)
/// only when it saves a changed session. So that a logged-in user who only reads pages
/// stays logged in, every read of the login (the extractors,
/// [`require_login`](crate::require_login)) renews the session at most once per 1/24 of
/// the idle timeout (once an hour by default, at every request below 48 s; see
/// [`kvixi_core::flow::renewal_due`]) by stamping the auth record it reads anyway (as
/// its member `kvixi.renewed`, so deciding costs no second session read): a logged-in
/// session ends between 23/24 of the idle timeout and the whole of it after its last
/// request. A session without a login, holding only the app's own data, is renewed when
/// the app changes it.
pub fn session_layer<St: SessionStore + Clone>(
    config: &Config,
    store: St,
) -> SessionManagerLayer<St> {
    SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.cookie_secure())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle_timeout(config)))
}

/// The configured idle timeout as tower-sessions takes it.
fn idle_timeout(config: &Config) -> time::Duration {
    let seconds = i64::try_from(config.idle_timeout().as_secs()).unwrap_or(i64::MAX);
    time::Duration::seconds(seconds)
}
