//! The route-group guard: a tower layer for `Router::route_layer`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{OriginalUri, Request};
use axum::response::Response;
use kvixi_core::guard::Requirement;
use tower::{Layer, Service};

use crate::extract::{KvixiRejection, KvixiUser, flow_and_session};
use crate::response::wants_json;

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
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let requirement = self.requirement.clone();
        Box::pin(async move {
            match admit(&requirement, &mut request).await {
                Ok(()) => inner.call(request).await,
                Err(rejection) => Ok(axum::response::IntoResponse::into_response(rejection)),
            }
        })
    }
}

/// Reads the user (once: an outer guard may have done it) and lets the core decide;
/// the admitted user is left in the request extensions.
async fn admit(requirement: &Requirement, request: &mut Request) -> Result<(), KvixiRejection> {
    let (kvixi, session) = flow_and_session(request.extensions())?;
    // Moved out, not copied; put back below when admitted.
    let known = request
        .extensions_mut()
        .remove::<KvixiUser>()
        .map(|user| user.0);
    let user = match known {
        Some(user) => Some(user),
        None => match kvixi.current_user(&session).await {
            Ok(user) => user,
            Err(error) => {
                let reply = kvixi.failure(&error, wants_json(request.headers()));
                return Err(KvixiRejection::new(reply));
            }
        },
    };
    let json = || wants_json(request.headers());
    let path = || {
        request
            .extensions()
            .get::<OriginalUri>()
            .map_or(request.uri(), |original| &original.0)
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
    };
    let user = requirement
        .check(&kvixi, user, json, path)
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
