//! Sessions for actix-web: kvixi-core's cookie-session engine ([`CookieSessions`]). The
//! session cookie is read from the request's `Cookie` headers at the first use of the
//! session, and the `Set-Cookie` the flow decided on is added to the answer.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{COOKIE, HeaderValue, SET_COOKIE};
use actix_web::{HttpMessage, HttpRequest, web};
use kvixi_core::{CookieSessions, Kvixi, Reply, RequestSession, SESSION_COOKIE};
use pin_project_lite::pin_project;

use crate::Error;
use crate::response::{prefers_json, respond};

/// The flow and the request's session, built at its first use (so a page that never
/// asks for it costs nothing): its record is read at most once per request.
pub(crate) fn of(request: &HttpRequest) -> Result<(web::Data<Kvixi>, Arc<RequestSession>), Error> {
    let (Some(kvixi), Some(sessions)) = (
        request.app_data::<web::Data<Kvixi>>(),
        request.app_data::<web::Data<CookieSessions>>(),
    ) else {
        tracing::error!("kvixi extractor used in an app without `with_kvixi`");
        return Err(Error::NotConfigured);
    };
    if let Some(session) = request.extensions().get::<Arc<RequestSession>>() {
        return Ok((kvixi.clone(), Arc::clone(session)));
    }
    let headers = request.headers().get_all(COOKIE);
    let cookie = kvixi_core::flow::cookie_value(
        headers.filter_map(|value| value.to_str().ok()),
        SESSION_COOKIE,
    );
    let session = Arc::new(sessions.request(cookie.map(str::to_owned)));
    request.extensions_mut().insert(Arc::clone(&session));
    Ok((kvixi.clone(), session))
}

/// The middleware [`with_kvixi`](crate::KvixiAppExt::with_kvixi) wraps the app in: it
/// hands the browser the session cookie the flow decided on, and answers 503 a request
/// during which the session store failed, even where `Option<KvixiUser>` made a visitor
/// of the user.
pub(crate) struct KvixiSessions {
    /// Why the app must not start, if it must not: each worker's start fails.
    refusal: Option<Rc<kvixi_core::Error>>,
}

impl KvixiSessions {
    /// The middleware, failing the app's start with `refusal` if any.
    pub(crate) fn new(refusal: Option<kvixi_core::Error>) -> Self {
        KvixiSessions {
            refusal: refusal.map(Rc::new),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for KvixiSessions
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = KvixiSessionsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        if let Some(error) = &self.refusal {
            // `HttpServer` (and `test::init_service`) fail to start: a misconfigured
            // fleet never serves, and no worker panics.
            tracing::error!(%error, "kvixi: the app cannot start");
            return ready(Err(()));
        }
        ready(Ok(KvixiSessionsService { service }))
    }
}

/// The service [`KvixiSessions`] wraps around the app.
pub(crate) struct KvixiSessionsService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for KvixiSessionsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = SessionsFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        SessionsFuture {
            answer: self.service.call(request),
        }
    }
}

pin_project! {
    /// The app's answer, finished with the session's outcome: polled in place, so the
    /// middleware adds no allocation to a request.
    pub(crate) struct SessionsFuture<F> {
        #[pin]
        answer: F,
    }
}

impl<F, B> Future for SessionsFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .answer
            .poll(cx)
            .map(|answer| answer.map(finish))
    }
}

/// The app's answer, with the session's outcome.
fn finish<B>(mut response: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let session = response
        .request()
        .extensions()
        .get::<Arc<RequestSession>>()
        .cloned();
    let Some(session) = session else {
        return response.map_into_left_body();
    };
    if let Some(error) = session.store_unavailable() {
        // Nobody may be shown logged out, and no session cookie goes out.
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            return response.map_into_left_body();
        }
        tracing::debug!(%error, code = error.code(), "kvixi answers 503");
        let request = response.request();
        let Some(kvixi) = request.app_data::<web::Data<Kvixi>>() else {
            return response.map_into_left_body();
        };
        let reply = Reply::error(kvixi.config(), &error, prefers_json(request));
        let (request, _) = response.into_parts();
        return ServiceResponse::new(request, respond(reply)).map_into_right_body();
    }
    if let Some(cookie) = session.take_set_cookie() {
        match HeaderValue::from_str(&cookie.to_string()) {
            Ok(value) => response.headers_mut().append(SET_COOKIE, value),
            Err(_) => tracing::error!("kvixi session cookie is not a header value"),
        }
    }
    response.map_into_left_body()
}
