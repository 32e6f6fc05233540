//! The tower layers: the flow in request extensions, and tower-sessions set up for it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Extension;
use axum::extract::Request;
use kvixi_core::{Config, Kvixi, SESSION_COOKIE};
use tower::{Layer, Service};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

use crate::session::IdleExpiry;

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
    type Future = KvixiFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let session = request.extensions().get::<Session>().cloned();
        KvixiFuture {
            inner: self.inner.call(request),
            session,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`KvixiService`]: the app's; once it is done, a remembered
    /// session the app changed keeps its persistent cookie.
    pub struct KvixiFuture<F> {
        #[pin]
        inner: F,
        session: Option<Session>,
    }
}

impl<F: Future> Future for KvixiFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        // tower-sessions saves a changed session with the layer's expiry, which would
        // turn a remembered session's cookie into a browser-session cookie.
        if let Some(session) = this.session.take() {
            if session.is_modified() {
                if let Some(seconds) = crate::session::remembered_now(&session) {
                    session.set_expiry(Some(crate::session::remembered_expiry(seconds)));
                }
            }
        }
        Poll::Ready(output)
    }
}

/// A tower-sessions layer over `store` with the cookie the flow needs: `HttpOnly`,
/// `SameSite=Lax` (Strict would lose the session on the way back from Kvixi), `Secure`
/// when the redirect URL is https, `Path=/`, and a browser-session cookie (no
/// `Max-Age`), except for a login with "remember me": that session gets a persistent
/// cookie and [`Config::remembered_idle_timeout`] (30 days by default, within
/// [`Config::max_session_lifetime`]).
///
/// A login ends after [`Config::idle_timeout`] without a request (24 h by default). Every
/// read of the login (the extractors, [`require_login`](crate::require_login)) renews the
/// session at most once per 1/24 of its idle timeout (once an hour by default, at every
/// request below 48 s; see [`kvixi_core::flow::renewal_due`]) by stamping the auth record
/// it reads anyway (as its member `kvixi.renewed`, so deciding costs no second session
/// read). The store is wrapped in [`IdleExpiry`] (on the system clock; `with_kvixi_store`
/// mounts it on the flow's), which keeps each record an idle timeout after its last save
/// whatever the cookie says: a session ends between 23/24 of the idle
/// timeout and the whole of it after its last request. A session without a login, holding
/// only the app's own data, is renewed when the app changes it. The [`KvixiLayer`] keeps a
/// remembered session's cookie persistent when the app changes the session.
pub fn session_layer<St: SessionStore + Clone>(
    config: &Config,
    store: St,
) -> SessionManagerLayer<IdleExpiry<St>> {
    manager(config, IdleExpiry::new(store, config))
}

/// [`session_layer`] for `kvixi`, on its clock ([`IdleExpiry::for_flow`]): what
/// `with_kvixi_store` mounts.
pub(crate) fn flow_session_layer<St: SessionStore + Clone>(
    kvixi: &Kvixi,
    store: St,
) -> SessionManagerLayer<IdleExpiry<St>> {
    manager(kvixi.config(), IdleExpiry::for_flow(store, kvixi))
}

fn manager<St: SessionStore + Clone>(
    config: &Config,
    store: IdleExpiry<St>,
) -> SessionManagerLayer<IdleExpiry<St>> {
    SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.cookie_secure())
        .with_path("/")
        .with_expiry(Expiry::OnSessionEnd)
}
