//! The route-group guard: a middleware for `web::scope(..).wrap(..)`.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use kvixi_core::Reply;
use kvixi_core::guard::Requirement;

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

impl<S, B> Service<ServiceRequest> for RequireLoginService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let requirement = self.requirement.clone();
        Box::pin(async move {
            match admit(&requirement, &request).await {
                Ok(()) => Ok(service.call(request).await?.map_into_left_body()),
                Err(reply) => Ok(request.into_response(respond(reply)).map_into_right_body()),
            }
        })
    }
}

/// Reads the user (an outer guard's, or the session's) and lets the core decide; the
/// admitted user is left in the request extensions.
async fn admit(requirement: &Requirement, request: &ServiceRequest) -> Result<(), Reply> {
    let (kvixi, session) = match crate::session::of(request.request()) {
        Ok(found) => found,
        Err(error) => return Err(Reply::plain(500, error.to_string())),
    };
    let json = || prefers_json(request.request());
    // An outer guard's user: moved out, not copied; put back once admitted.
    let known = request.extensions_mut().remove::<KvixiUser>();
    let user = match known {
        Some(user) => Some(user.0),
        None => session
            .current_user(&kvixi)
            .await
            .map_err(|error| kvixi.failure(&error, json()))?,
    };
    let path = || {
        request
            .uri()
            .path_and_query()
            .map_or("/", |target| target.as_str())
    };
    let user = requirement.check(&kvixi, user, json, path)?;
    request.extensions_mut().insert(KvixiUser(user));
    Ok(())
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
