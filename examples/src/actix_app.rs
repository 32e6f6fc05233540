//! The actix example app, built only with `kvixi-actix`'s public API.

use actix_web::body::MessageBody;
use actix_web::cookie::Key;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, web};
use kvixi_actix::{Kvixi, KvixiToken, KvixiUser, SessionStore};

/// The pages with Kvixi login, sessions in `store` ([`kvixi_actix::MemoryStore`], or Redis
/// for several instances) under the cookie key `key`. Build the store and the key once,
/// outside `HttpServer::new`, and clone them into each worker's app.
pub fn app<S: SessionStore + 'static>(
    kvixi: Kvixi,
    store: S,
    key: Key,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(kvixi_actix::session_middleware(kvixi.config(), store, key))
        .configure(kvixi_actix::configure(kvixi))
        .route("/", web::get().to(home))
        .route("/private", web::get().to(private))
        .route("/me", web::get().to(me))
        .route("/me/fresh", web::get().to(fresh))
}

async fn home(kvixi: web::Data<Kvixi>, user: Option<KvixiUser>) -> web::Html {
    web::Html::new(crate::pages::home(kvixi.config(), user.as_deref()))
}

async fn private(kvixi: web::Data<Kvixi>, user: KvixiUser) -> web::Html {
    web::Html::new(crate::pages::private(kvixi.config(), &user))
}

async fn me(user: KvixiUser) -> web::Json<kvixi_core::KvixiUser> {
    web::Json(user.0)
}

/// The profile read from Kvixi now, with the user's token.
async fn fresh(kvixi: web::Data<Kvixi>, token: KvixiToken) -> HttpResponse {
    match kvixi.client().user_info(&token.0).await {
        Ok(user) => HttpResponse::Ok().json(user),
        Err(error) => {
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_GATEWAY);
            HttpResponse::build(status).body(error.user_message())
        }
    }
}
