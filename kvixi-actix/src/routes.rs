//! The login, callback and logout routes.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use kvixi_core::{Kvixi, Reply};

use crate::response::{prefers_json, respond};
use crate::session::{SessionEdit, edit_session};

/// Mounts the login (GET), callback (GET) and logout (POST) routes at the configured
/// paths and puts the flow in the app data, as `web::Data<Kvixi>`, where the extractors
/// and your handlers find it. Pass it to `App::configure`, with
/// [`session_middleware`](crate::session_middleware) wrapping the app.
pub fn configure(kvixi: Kvixi) -> impl FnOnce(&mut web::ServiceConfig) {
    move |app| {
        let paths = kvixi.config();
        let login = web::resource(paths.login_path()).route(web::get().to(login));
        let callback = web::resource(paths.callback_path()).route(web::get().to(callback));
        let logout = web::resource(paths.logout_path()).route(web::post().to(logout));
        let everywhere =
            web::resource(paths.logout_everywhere_path()).route(web::post().to(logout_everywhere));
        app.app_data(web::Data::new(kvixi))
            .service(login)
            .service(callback)
            .service(logout)
            .service(everywhere);
    }
}

/// Answers the reply of one core call on the session; a session that cannot be
/// written is the core's failure page.
async fn answer(
    kvixi: &Kvixi,
    request: &HttpRequest,
    session: &Session,
    call: impl AsyncFnOnce(&SessionEdit) -> Reply,
) -> HttpResponse {
    let reply = edit_session(session, call)
        .await
        .unwrap_or_else(|error| kvixi.failure(&error, prefers_json(request)));
    respond(reply)
}

async fn login(request: HttpRequest, kvixi: web::Data<Kvixi>) -> HttpResponse {
    // The pending login travels in its own cookie: no session is touched here.
    respond(kvixi.handle_login(request.uri().query()))
}

async fn callback(request: HttpRequest, kvixi: web::Data<Kvixi>, session: Session) -> HttpResponse {
    // Only an in-process test request carries this extension (see `testing::log_in_as`).
    #[cfg(feature = "testing")]
    {
        let test_login = actix_web::HttpMessage::extensions(&request)
            .get::<kvixi_core::testing::TestLogin>()
            .cloned();
        if let Some(kvixi_core::testing::TestLogin(user)) = test_login {
            return answer(&kvixi, &request, &session, async |session| {
                kvixi.handle_test_login(session, user).await
            })
            .await;
        }
    }
    let query = request.uri().query();
    let json = prefers_json(&request);
    let cookies = request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok());
    let login_cookie = kvixi_core::flow::cookie_value(cookies, kvixi_core::flow::LOGIN_COOKIE);
    answer(&kvixi, &request, &session, async |session| {
        kvixi
            .handle_callback(session, query, login_cookie, json)
            .await
    })
    .await
}

async fn logout(request: HttpRequest, kvixi: web::Data<Kvixi>, session: Session) -> HttpResponse {
    let json = prefers_json(&request);
    answer(&kvixi, &request, &session, async |session| {
        kvixi.handle_logout(session, json).await
    })
    .await
}

async fn logout_everywhere(
    request: HttpRequest,
    kvixi: web::Data<Kvixi>,
    session: Session,
) -> HttpResponse {
    let json = prefers_json(&request);
    answer(&kvixi, &request, &session, async |session| {
        kvixi.handle_logout_everywhere(session, json).await
    })
    .await
}
