//! The route-group guard: a middleware for `web::scope(..).wrap(..)`.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::web;
use kvixi_core::guard::Requirement;
use kvixi_core::{Kvixi, Reply};
use pin_project_lite::pin_project;

use crate::extract::KvixiUser;
use crate::response::{prefers_json, respond};

/// Requires a logged-in Kvixi user on every route of a scope: pass it to
/// `web::scope(..).wrap(..)` in an app set up with
/// [`with_kvixi`](crate::KvixiAppExt::with_kvixi).
///
/// An anonymous request gets the same answer as the [`KvixiUser`] extractor's (a 303 to
/// login coming back to this page for a browser, a 401 JSON error for an API client);
/// a user refused by [`allow`](RequireLogin::allow) gets 403. Both are decided by
/// [`kvixi_core::guard`]. The user is passed on in the request extensions: handlers take
/// `web::ReqData<KvixiUser>` (or `KvixiUser`, which finds it there without reading the
/// session again).
///
/// ```
/// use actix_web::{App, web};
/// use kvixi_actix::{KvixiUser, RequireLogin};
///
/// async fn account(user: web::ReqData<KvixiUser>) -> String {
///     format!("Hello, {}", user.display_name())
/// }
///
/// let account_pages = web::scope("/account")
///     .wrap(RequireLogin::new())
///     .route("", web::get().to(account))
///     .service(
///         web::scope("/verified")
///             .wrap(RequireLogin::new().allow(|user| user.verified))
///             .route("", web::get().to(account)),
///     );
/// # let _ = App::new().service(account_pages);
/// ```
#[derive(Clone, Debug, Default)]
pub struct RequireLogin {
    requirement: Requirement,
}

impl RequireLogin {
    /// Any logged-in user.
    pub fn new() -> Self {
        RequireLogin::default()
    }

    /// Also requires `predicate` to accept the user ("verified only", an allow-list);
    /// a logged-in user it refuses gets 403 (`not_allowed`).
    pub fn allow(
        self,
        predicate: impl Fn(&kvixi_core::KvixiUser) -> bool + Send + Sync + 'static,
    ) -> Self {
        RequireLogin {
            requirement: self.requirement.allow(predicate),
        }
    }

    /// Also requires the login to be at most `max_age` old: see [`require_recent_login`].
    pub fn recent(self, max_age: Duration) -> Self {
        RequireLogin {
            requirement: self.requirement.recent(max_age),
        }
    }
}

/// Requires a login at most `max_age` old on every route of a scope (a sensitive page:
/// deleting the account, changing where mail goes): a [`RequireLogin`] whose older
/// logins send a browser through login again, coming back to the same page, and answer
/// an API client 401 `login_too_old`. The new login replaces the session as any login
/// does. Nest it inside a `RequireLogin` scope or use it alone.
///
/// ```
/// use std::time::Duration;
/// use actix_web::{App, web};
/// use kvixi_actix::{KvixiUser, require_recent_login};
///
/// async fn delete_account(user: web::ReqData<KvixiUser>) -> String {
///     format!("Deleting the account of {}", user.display_name())
/// }
///
/// let sensitive = web::scope("/account/delete")
///     .wrap(require_recent_login(Duration::from_secs(5 * 60)))
///     .route("", web::post().to(delete_account));
/// # let _ = App::new().service(sensitive);
/// ```
pub fn require_recent_login(max_age: Duration) -> RequireLogin {
    RequireLogin::new().recent(max_age)
}

impl<S, B> Transform<S, ServiceRequest> for RequireLogin
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = RequireLoginService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireLoginService {
            service: Rc::new(service),
            requirement: self.requirement.clone(),
        }))
    }
}

/// The service [`RequireLogin`] wraps around a scope.
#[derive(Debug)]
pub struct RequireLoginService<S> {
    service: Rc<S>,
    requirement: Requirement,
}

type Answer<B> = Result<ServiceResponse<EitherBody<B, BoxBody>>, actix_web::Error>;

/// The read of the current user, owned by the guard's future.
type UserRead =
    Pin<Box<dyn Future<Output = Result<Option<kvixi_core::KvixiUser>, kvixi_core::Error>>>>;

impl<S, B> Service<ServiceRequest> for RequireLoginService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = RequireLoginFuture<S, B>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let (kvixi, session) = match crate::session::of(request.request()) {
            Ok(found) => found,
            Err(error) => return refused(request, Reply::plain(500, error.to_string())),
        };
        let reader = kvixi.clone();
        let mut read: UserRead = match self.requirement.max_login_age() {
            // The login's time is read too, from the record loaded already.
            Some(max_age) => Box::pin(async move { reader.recent_user(&*session, max_age).await }),
            None => {
                // An outer guard's user: moved out, not copied; put back when admitted.
                let known = request.extensions_mut().remove::<KvixiUser>();
                if let Some(known) = known {
                    return self.decide(&kvixi, Ok(Some(known.0)), request);
                }
                Box::pin(async move { session.current_user(&reader).await })
            }
        };
        // A store that answers at once (the memory store) is decided right here, and the
        // scope's future is polled in place, unboxed: the `guarded` row of the
        // interleaved table (`cargo bench -p kvixi-bench -- authenticated`) shows it.
        match read.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(user) => self.decide(&kvixi, user, request),
            Poll::Pending => RequireLoginFuture {
                state: State::Reading {
                    read,
                    request: Some(request),
                    service: Rc::clone(&self.service),
                    requirement: self.requirement.clone(),
                    kvixi,
                },
            },
        }
    }
}

impl<S, B> RequireLoginService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    /// Calls the scope, or answers the refusal, once the user is known.
    fn decide(
        &self,
        kvixi: &Kvixi,
        user: Result<Option<kvixi_core::KvixiUser>, kvixi_core::Error>,
        request: ServiceRequest,
    ) -> RequireLoginFuture<S, B> {
        match admit(&self.requirement, kvixi, user, &request) {
            Ok(()) => RequireLoginFuture {
                state: State::Calling {
                    future: self.service.call(request),
                },
            },
            Err(reply) => refused(request, reply),
        }
    }
}

/// The guard's refusal, answered without calling the scope.
fn refused<S, B>(request: ServiceRequest, reply: Reply) -> RequireLoginFuture<S, B>
where
    S: Service<ServiceRequest>,
{
    RequireLoginFuture {
        state: State::Refused {
            response: Some(request.into_response(respond(reply)).map_into_right_body()),
        },
    }
}

/// Passes `user` through the requirement: on success it is in the request's
/// extensions for the handlers.
fn admit(
    requirement: &Requirement,
    kvixi: &Kvixi,
    user: Result<Option<kvixi_core::KvixiUser>, kvixi_core::Error>,
    request: &ServiceRequest,
) -> Result<(), Reply> {
    let json = || prefers_json(request.request());
    let path = || {
        request
            .uri()
            .path_and_query()
            .map_or("/", |target| target.as_str())
    };
    let user = user.map_err(|error| requirement.failure(kvixi, &error, json(), path))?;
    let user = requirement.check(kvixi, user, json, path)?;
    request.extensions_mut().insert(KvixiUser(user));
    Ok(())
}

pin_project! {
    /// [`RequireLoginService`]'s answer: the scope's own future when the user was known
    /// at once, the read of the user first when the store made it wait.
    pub struct RequireLoginFuture<S, B>
    where
        S: Service<ServiceRequest>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<ServiceRequest>,
    {
        Reading {
            read: UserRead,
            request: Option<ServiceRequest>,
            service: Rc<S>,
            requirement: Requirement,
            kvixi: web::Data<Kvixi>,
        },
        Calling { #[pin] future: S::Future },
        Refused { response: Option<ServiceResponse<EitherBody<B, BoxBody>>> },
    }
}

impl<S, B> Future for RequireLoginFuture<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Output = Answer<B>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<B>> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProj::Calling { future } => {
                    return future
                        .poll(cx)
                        .map(|answer| answer.map(ServiceResponse::map_into_left_body));
                }
                StateProj::Refused { response } => {
                    return Poll::Ready(response.take().ok_or_else(|| {
                        actix_web::error::ErrorInternalServerError("polled again")
                    }));
                }
                StateProj::Reading {
                    read,
                    request,
                    service,
                    requirement,
                    kvixi,
                } => {
                    let user = std::task::ready!(read.as_mut().poll(cx));
                    let Some(request) = request.take() else {
                        return Poll::Ready(Err(actix_web::error::ErrorInternalServerError(
                            "polled again",
                        )));
                    };
                    match admit(requirement, kvixi, user, &request) {
                        Ok(()) => State::Calling {
                            future: service.call(request),
                        },
                        Err(reply) => State::Refused {
                            response: Some(
                                request.into_response(respond(reply)).map_into_right_body(),
                            ),
                        },
                    }
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::http::{StatusCode, header};
    use actix_web::test::{self, TestRequest};
    use actix_web::{App, web};
    use kvixi_core::{Config, Kvixi};

    use super::RequireLogin;
    use crate::KvixiAppExt;

    static RAN: AtomicUsize = AtomicUsize::new(0);

    async fn open_vault() -> &'static str {
        RAN.fetch_add(1, Ordering::SeqCst);
        "opened"
    }

    #[actix_web::test]
    async fn an_anonymous_request_never_reaches_a_handler_of_the_scope() {
        let config = Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .build()
            .expect("valid config");
        let kvixi = Kvixi::new(config).expect("flow builds");
        let app = test::init_service(
            App::new().with_kvixi(kvixi).service(
                web::scope("/vault")
                    .wrap(RequireLogin::new())
                    .route("/open", web::post().to(open_vault)),
            ),
        )
        .await;
        for (accept, status) in [
            ("application/json", StatusCode::UNAUTHORIZED),
            ("text/html", StatusCode::SEE_OTHER),
        ] {
            let request = TestRequest::post()
                .uri("/vault/open")
                .insert_header((header::ACCEPT, accept))
                .to_request();
            let response = test::call_service(&app, request).await;
            assert_eq!(response.status(), status);
        }
        assert_eq!(RAN.load(Ordering::SeqCst), 0);
    }
}
