//! The route-group guard: a middleware for `web::scope(..).wrap(..)`.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_session::SessionExt;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{HttpMessage, web};
use kvixi_core::guard::Requirement;
use kvixi_core::{Kvixi, Reply};
use pin_project_lite::pin_project;

use crate::extract::KvixiUser;
use crate::middleware::SessionWasNeeded;
use crate::response::{prefers_json, respond};
use crate::session::AuthRead;

/// Requires a logged-in Kvixi user on every route of a scope: pass it to
/// `web::scope(..).wrap(..)` in an app set up with [`configure`](crate::configure) and
/// [`session_middleware`](crate::session_middleware).
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
        // The session middleware has loaded the session: the core usually decides at
        // once, and the scope is called right here, with nothing boxed.
        let state = match admit_now(&self.requirement, &request) {
            Some(Ok(())) => State::Calling {
                future: self.service.call(request),
            },
            Some(Err(reply)) => State::Refused {
                response: Some(refused(request, reply)),
            },
            None => {
                let service = self.service.clone();
                let requirement = self.requirement.clone();
                State::Waiting {
                    future: Box::pin(async move {
                        match admit(&requirement, &request).await {
                            Ok(()) => Ok(service.call(request).await?.map_into_left_body()),
                            Err(reply) => Ok(refused(request, reply)),
                        }
                    }),
                }
            }
        };
        RequireLoginFuture { state }
    }
}

fn refused<B>(request: ServiceRequest, reply: Reply) -> ServiceResponse<EitherBody<B, BoxBody>> {
    request.into_response(respond(reply)).map_into_right_body()
}

pin_project! {
    /// The answer of [`RequireLoginService`]: the scope's, or the core's refusal.
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
        Calling { #[pin] future: S::Future },
        Refused { response: Option<ServiceResponse<EitherBody<B, BoxBody>>> },
        Waiting { future: Pin<Box<dyn Future<Output = Answer<B>>>> },
    }
}

impl<S, B> Future for RequireLoginFuture<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Output = Answer<B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<B>> {
        match self.project().state.project() {
            StateProj::Calling { future } => future
                .poll(cx)
                .map(|answer| answer.map(ServiceResponse::map_into_left_body)),
            StateProj::Refused { response } => Poll::Ready(
                response
                    .take()
                    .ok_or_else(|| actix_web::error::ErrorInternalServerError("polled again")),
            ),
            StateProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

/// The decision when it needs no waiting (see [`Kvixi::current_user_now`]); `None`
/// when the session must be read by [`admit`].
fn admit_now(requirement: &Requirement, request: &ServiceRequest) -> Option<Result<(), Reply>> {
    let Some(kvixi) = request.app_data::<web::Data<Kvixi>>() else {
        return Some(Err(not_configured()));
    };
    // An outer guard's user: moved out, not copied; put back by `pass` when admitted.
    let known = request.extensions_mut().remove::<KvixiUser>();
    let user = match known {
        Some(user) => Some(user.0),
        None => AuthRead::at_once(&request.get_session(), |json| kvixi.current_user_now(json))?,
    };
    Some(pass(requirement, kvixi, user, request))
}

/// Reads the user from the session and lets the core decide.
async fn admit(requirement: &Requirement, request: &ServiceRequest) -> Result<(), Reply> {
    let Some(kvixi) = request.app_data::<web::Data<Kvixi>>().cloned() else {
        return Err(not_configured());
    };
    let session = request.get_session();
    let auth = AuthRead::begin(&session);
    let read = kvixi.current_user(&auth).await;
    auth.finish(&session);
    let user = match read {
        Ok(user) => user,
        Err(error) => {
            if matches!(error, kvixi_core::Error::SessionStoreUnavailable { .. }) {
                request.extensions_mut().insert(SessionWasNeeded);
            }
            return Err(kvixi.failure(&error, prefers_json(request.request())));
        }
    };
    pass(requirement, &kvixi, user, request)
}

/// The core's check of `user`; the admitted user is left in the request extensions.
fn pass(
    requirement: &Requirement,
    kvixi: &Kvixi,
    user: Option<kvixi_core::KvixiUser>,
    request: &ServiceRequest,
) -> Result<(), Reply> {
    let json = || prefers_json(request.request());
    let path = || {
        request
            .uri()
            .path_and_query()
            .map_or("/", |target| target.as_str())
    };
    let user = requirement.check(kvixi, user, json, path)?;
    request.extensions_mut().insert(KvixiUser(user));
    Ok(())
}

fn not_configured() -> Reply {
    tracing::error!("kvixi_actix::RequireLogin used in an app without kvixi_actix::configure");
    Reply::plain(500, crate::Error::NotConfigured.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::http::{StatusCode, header};
    use actix_web::test::{self, TestRequest};
    use actix_web::{App, web};
    use kvixi_core::{Config, Kvixi};

    use super::RequireLogin;
    use crate::MemoryStore;

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
        let key = crate::session_key(kvixi.config());
        let app = test::init_service(
            App::new()
                .wrap(crate::session_middleware(
                    kvixi.config(),
                    MemoryStore::default(),
                    key,
                ))
                .configure(crate::configure(kvixi))
                .service(
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
