//! The actix example app, built only with `kvixi-actix`'s public API.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, web};
use kvixi_actix::{
    Kvixi, KvixiAppExt, KvixiDevices, KvixiToken, KvixiUser, RequireLogin, SessionStore,
    require_recent_login,
};

pub use crate::pages::own_pages;

/// The pages with Kvixi login, in one line: the sessions go where the flow's config says
/// (the Redis of `KVIXI_REDIS_URL`, or this process's memory, shared by every worker).
/// Call it in `HttpServer::new`'s closure with a clone of one flow.
pub fn app(
    kvixi: Kvixi,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    pages(App::new().with_kvixi(kvixi))
}

/// The same pages with sessions in a store of the app's own (any tower-sessions store).
/// Build the store once, outside `HttpServer::new`, and clone it into each worker's app.
pub fn app_with_store<S: SessionStore>(
    kvixi: Kvixi,
    store: S,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    pages(App::new().with_kvixi_store(kvixi, store))
}

/// The example's pages on an app that has the Kvixi flow.
fn pages<T>(app: App<T>) -> App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    // The recorder is installed before the flow counts anything.
    crate::setup::metrics();
    app
        // `/account` and everything under it: one guard for the scope, a second one (with
        // a predicate) for the verified-only page. The handlers take no Kvixi extractor.
        .service(
            web::scope("/account")
                .wrap(RequireLogin::new())
                .route("", web::get().to(account))
                .service(
                    web::scope("/verified")
                        .wrap(RequireLogin::new().allow(|user| user.verified))
                        .route("", web::get().to(verified)),
                )
                // Deleting the account asks for a recent login.
                .service(
                    web::scope("/delete")
                        .wrap(require_recent_login(
                            crate::pages::DELETE_NEEDS_LOGIN_WITHIN,
                        ))
                        .route("", web::get().to(delete_page))
                        .route("", web::post().to(delete_account)),
                ),
        )
        .route("/sign-in", web::get().to(sign_in))
        .route("/", web::get().to(home))
        .route("/private", web::get().to(private))
        .route("/me", web::get().to(me))
        .route("/me/app", web::get().to(me_app))
        .route("/me/fresh", web::get().to(fresh))
        .route("/metrics", web::get().to(metrics))
}

/// The library's metrics in Prometheus text format.
async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(crate::setup::PROMETHEUS_TEXT)
        .body(crate::setup::metrics().render())
}

async fn home(kvixi: web::Data<Kvixi>, user: Option<KvixiUser>) -> web::Html {
    web::Html::new(crate::pages::home(kvixi.config(), user.as_deref()))
}

async fn private(kvixi: web::Data<Kvixi>, user: KvixiUser) -> web::Html {
    web::Html::new(crate::pages::private(kvixi.config(), &user))
}

/// The user comes from the group guard, in the request extensions; "your devices" from
/// the session the guard read.
async fn account(
    kvixi: web::Data<Kvixi>,
    user: web::ReqData<KvixiUser>,
    devices: KvixiDevices,
) -> web::Html {
    web::Html::new(crate::pages::account(kvixi.config(), &user, &devices))
}

async fn verified(user: web::ReqData<KvixiUser>) -> web::Html {
    web::Html::new(crate::pages::verified(&user))
}

async fn delete_page(user: web::ReqData<KvixiUser>) -> web::Html {
    web::Html::new(crate::pages::delete_account(&user))
}

/// Ends every session of the user, on every device. (The example keeps its member row:
/// a real app deletes its own data of the user here too.)
async fn delete_account(kvixi: web::Data<Kvixi>, user: web::ReqData<KvixiUser>) -> HttpResponse {
    match kvixi.revoke_user(&user.id).await {
        Ok(()) => HttpResponse::SeeOther()
            .insert_header((actix_web::http::header::LOCATION, "/"))
            .finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn sign_in(kvixi: web::Data<Kvixi>, request: actix_web::HttpRequest) -> web::Html {
    web::Html::new(crate::pages::sign_in(
        kvixi.config(),
        request.query_string().into(),
    ))
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

/// The app's own data for the user, typed, from the same session read as the user.
async fn me_app(
    member: kvixi_actix::AppUser<crate::member::Member>,
) -> web::Json<serde_json::Value> {
    web::Json(crate::member::as_json(&member.user, &member.data))
}
