//! The route-group guard: a tower layer for `Router::route_layer`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use axum::extract::{OriginalUri, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kvixi_core::Error as CoreError;
use kvixi_core::guard::Requirement;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::extract::{KvixiRejection, KvixiUser, flow_and_session};
use crate::response::wants_json;
use crate::session::TowerSession;

/// Requires a logged-in Kvixi user on every route of a group: pass it to
/// [`Router::route_layer`](axum::Router::route_layer), then mount Kvixi around the
/// router (`.with_kvixi(kvixi)`).
///
/// An anonymous request gets the same answer as the [`KvixiUser`] extractor's (a 303 to
/// login coming back to this page for a browser, a 401 JSON error for an API client);
/// a user refused by [`allow`](RequireLoginLayer::allow) gets 403. Both are decided by
/// [`kvixi_core::guard`]. The user is passed on in the request extensions: handlers take
/// `Extension<KvixiUser>` (or `KvixiUser`, which finds it there without reading the
/// session again).
///
/// ```
/// use axum::{Extension, Router, routing::get};
/// use kvixi_axum::{KvixiRouterExt, KvixiUser, require_login};
///
/// async fn account(Extension(user): Extension<KvixiUser>) -> String {
///     format!("Hello, {}", user.display_name())
/// }
///
/// # fn app(kvixi: kvixi_axum::Kvixi) -> Router {
/// let verified_only = Router::new()
///     .route("/account/verified", get(account))
///     .route_layer(require_login().allow(|user| user.verified));
/// Router::new()
///     .route("/account", get(account))
///     .merge(verified_only)
///     .route_layer(require_login())
///     .route("/", get(|| async { "open to everyone" }))
///     .with_kvixi(kvixi)
/// # }
/// ```
pub fn require_login() -> RequireLoginLayer {
    RequireLoginLayer {
        requirement: Requirement::logged_in(),
    }
}

/// Requires a login at most `max_age` old on every route of a group (a sensitive page:
/// deleting the account, changing where mail goes): a [`require_login`] whose older
/// logins send a browser through login again, coming back to the same page, and answer
/// an API client 401 `login_too_old`. The new login replaces the session as any login
/// does. Nest it inside a `require_login` group or use it alone.
///
/// ```
/// use std::time::Duration;
/// use axum::{Extension, Router, routing::post};
/// use kvixi_axum::{KvixiRouterExt, KvixiUser, require_recent_login};
///
/// async fn delete_account(Extension(user): Extension<KvixiUser>) -> String {
///     format!("Deleting the account of {}", user.display_name())
/// }
///
/// # fn app(kvixi: kvixi_axum::Kvixi) -> Router {
/// Router::new()
///     .route("/account/delete", post(delete_account))
///     .route_layer(require_recent_login(Duration::from_secs(5 * 60)))
///     .with_kvixi(kvixi)
/// # }
/// ```
pub fn require_recent_login(max_age: std::time::Duration) -> RequireLoginLayer {
    RequireLoginLayer {
        requirement: Requirement::logged_in().recent(max_age),
    }
}

/// The layer [`require_login`] makes.
#[derive(Clone, Debug)]
pub struct RequireLoginLayer {
    requirement: Requirement,
}

impl RequireLoginLayer {
    /// Also requires `predicate` to accept the user ("verified only", an allow-list);
    /// a logged-in user it refuses gets 403 (`not_allowed`).
    pub fn allow(
        self,
        predicate: impl Fn(&kvixi_core::KvixiUser) -> bool + Send + Sync + 'static,
    ) -> Self {
        RequireLoginLayer {
            requirement: self.requirement.allow(predicate),
        }
    }
}

impl<S> Layer<S> for RequireLoginLayer {
    type Service = RequireLogin<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireLogin {
            inner,
            requirement: self.requirement.clone(),
        }
    }
}

/// The service [`RequireLoginLayer`] wraps around each route of the group.
#[derive(Clone, Debug)]
pub struct RequireLogin<S> {
    inner: S,
    requirement: Requirement,
}

impl<S> Service<Request> for RequireLogin<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequireLoginFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // An outer guard read the user already: moved out, not copied; put back by
        // `admit`. (A recent-login guard reads the session again for the login's time,
        // from the record loaded already.)
        if self.requirement.max_login_age().is_none() {
            if let Some(user) = request.extensions_mut().remove::<KvixiUser>() {
                return self.admit_and_call(Ok(Some(user.0)), request);
            }
        }
        let mut read = match read_user(&request, &self.requirement) {
            Ok(read) => read,
            Err(rejection) => return RequireLoginFuture::refused(rejection),
        };
        // A session already loaded, or a store in memory, answers on the first poll:
        // then the route is called right here, without a clone of it or a second box.
        // (The waker of that poll is never needed: a read that waits is polled again
        // by this future, with the task's own, before anything could wake it.)
        match read.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(user) => self.admit_and_call(user, request),
            Poll::Pending => {
                // The clone that was driven to readiness serves this request.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                RequireLoginFuture {
                    state: State::Reading {
                        waiting: Some(Waiting {
                            read,
                            inner,
                            request,
                            requirement: self.requirement.clone(),
                        }),
                    },
                }
            }
        }
    }
}

impl<S: Service<Request, Response = Response>> RequireLogin<S> {
    fn admit_and_call(
        &mut self,
        user: Result<Option<kvixi_core::KvixiUser>, CoreError>,
        mut request: Request,
    ) -> RequireLoginFuture<S> {
        match admit(&self.requirement, user, &mut request) {
            Ok(()) => RequireLoginFuture::calling(self.inner.call(request)),
            Err(rejection) => RequireLoginFuture::refused(rejection),
        }
    }
}

/// The core reading the user from the request's session.
type ReadUser =
    Pin<Box<dyn Future<Output = Result<Option<kvixi_core::KvixiUser>, CoreError>> + Send>>;

fn read_user(request: &Request, requirement: &Requirement) -> Result<ReadUser, KvixiRejection> {
    let (kvixi, session) = flow_and_session(request.extensions())?;
    let (kvixi, session) = (kvixi.clone(), session.session().clone());
    if let Some(max_age) = requirement.max_login_age() {
        return Ok(Box::pin(async move {
            let session = TowerSession::new(&session, &kvixi);
            kvixi.recent_user(&session, max_age).await
        }));
    }
    Ok(Box::pin(async move {
        kvixi
            .current_user(&TowerSession::new(&session, &kvixi))
            .await
    }))
}

/// A request whose user is still being read.
struct Waiting<S> {
    read: ReadUser,
    inner: S,
    request: Request,
    requirement: Requirement,
}

pin_project! {
    /// The answer of [`RequireLogin`]: the route's, or the core's refusal.
    pub struct RequireLoginFuture<S>
    where
        S: Service<Request>,
    {
        #[pin]
        state: State<S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S>
    where
        S: Service<Request>,
    {
        Reading { waiting: Option<Waiting<S>> },
        Calling { #[pin] future: S::Future },
        Refused { response: Option<Response> },
    }
}

impl<S: Service<Request>> RequireLoginFuture<S> {
    fn calling(future: S::Future) -> Self {
        RequireLoginFuture {
            state: State::Calling { future },
        }
    }

    fn refused(rejection: KvixiRejection) -> Self {
        RequireLoginFuture {
            state: State::Refused {
                response: Some(rejection.into_response()),
            },
        }
    }
}

impl<S> Future for RequireLoginFuture<S>
where
    S: Service<Request, Response = Response>,
{
    type Output = Result<Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(response.take().unwrap_or_else(polled_again)));
                }
                StateProj::Reading { waiting } => {
                    let Some(reading) = waiting.as_mut() else {
                        return Poll::Ready(Ok(polled_again()));
                    };
                    let user = std::task::ready!(reading.read.as_mut().poll(cx));
                    let Some(Waiting {
                        mut inner,
                        mut request,
                        requirement,
                        ..
                    }) = waiting.take()
                    else {
                        return Poll::Ready(Ok(polled_again()));
                    };
                    match admit(&requirement, user, &mut request) {
                        Ok(()) => State::Calling {
                            future: inner.call(request),
                        },
                        Err(rejection) => State::Refused {
                            response: Some(rejection.into_response()),
                        },
                    }
                }
            };
            state.set(next);
        }
    }
}

/// What a refused (or still reading) guard's future gives when polled again after it
/// answered: a misuse by the caller, answered without a panic.
fn polled_again() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Lets the core decide on the user read; the admitted user is left in the request
/// extensions, where handlers and the `KvixiUser` extractor find it.
fn admit(
    requirement: &Requirement,
    read: Result<Option<kvixi_core::KvixiUser>, CoreError>,
    request: &mut Request,
) -> Result<(), KvixiRejection> {
    let (kvixi, _) = flow_and_session(request.extensions())?;
    let json = || wants_json(request.headers());
    let path = || {
        request
            .extensions()
            .get::<OriginalUri>()
            .map_or(request.uri(), |original| &original.0)
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
    };
    let user = match read {
        Ok(user) => user,
        Err(error) => {
            let reply = requirement.failure(kvixi, &error, json(), path);
            return Err(KvixiRejection::new(reply));
        }
    };
    let user = requirement
        .check(kvixi, user, json, path)
        .map_err(KvixiRejection::new)?;
    request.extensions_mut().insert(KvixiUser(user));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use axum::routing::post;
    use kvixi_core::{Config, Kvixi};
    use tower::ServiceExt;

    use super::require_login;
    use crate::KvixiRouterExt;

    #[tokio::test]
    async fn an_anonymous_request_never_reaches_a_handler_of_the_group() {
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .build()
            .expect("valid config");
        let app: Router = Router::new()
            .route(
                "/vault/open",
                post(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async { "opened" }
                }),
            )
            .route_layer(require_login())
            .with_kvixi(Kvixi::new(config).expect("flow builds"));
        for (accept, status) in [
            ("application/json", StatusCode::UNAUTHORIZED),
            ("text/html", StatusCode::SEE_OTHER),
        ] {
            let request = axum::http::Request::post("/vault/open")
                .header(header::ACCEPT, accept)
                .body(Body::empty())
                .expect("request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), status);
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
