//! The login, callback and logout routes.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use kvixi_core::{Kvixi, Reply, RequestSession};

use crate::response::{prefers_json, respond};

/// Mounts the login (GET), callback (GET) and logout (POST) routes at the configured
/// paths and puts the flow in the app data, as `web::Data<Kvixi>`, where the extractors
/// and your handlers find it.
pub(crate) fn routes(kvixi: Kvixi) -> impl FnOnce(&mut web::ServiceConfig) {
    move |app| {
        let paths = kvixi.config();
        let login = web::resource(paths.login_path()).route(web::get().to(login));
        let callback = web::resource(paths.callback_path()).route(web::get().to(callback));
        let logout = web::resource(paths.logout_path()).route(web::post().to(logout));
        let everywhere =
            web::resource(paths.logout_everywhere_path()).route(web::post().to(logout_everywhere));
        let sessions = web::resource(paths.sessions_path()).route(web::get().to(sessions));
        let end = web::resource(paths.end_session_path()).route(web::post().to(end_session));
        app.app_data(web::Data::new(kvixi))
            .service(login)
            .service(callback)
            .service(logout)
            .service(everywhere)
            .service(sessions)
            .service(end);
    }
}

/// Answers the reply of one core call on the request's session (its cookie is set by
/// the session middleware).
async fn answer(
    request: &HttpRequest,
    call: impl AsyncFnOnce(&Kvixi, &RequestSession, bool) -> Reply,
) -> HttpResponse {
    match crate::session::of(request) {
        Ok((kvixi, session)) => respond(call(&kvixi, &session, prefers_json(request)).await),
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}

async fn login(request: HttpRequest, kvixi: web::Data<Kvixi>) -> HttpResponse {
    // The pending login travels in its own cookie: no session is touched here.
    respond(kvixi.handle_login(request.uri().query()))
}

async fn callback(request: HttpRequest) -> HttpResponse {
    // Only an in-process test request carries this extension (see `testing::log_in_as`).
    #[cfg(feature = "testing")]
    {
        let test_login = actix_web::HttpMessage::extensions(&request)
            .get::<kvixi_core::testing::TestLogin>()
            .cloned();
        if let Some(kvixi_core::testing::TestLogin(user)) = test_login {
            return answer(&request, async |kvixi, session, _| {
                kvixi.handle_test_login(session, user).await
            })
            .await;
        }
    }
    let query = request.uri().query();
    let cookies = request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok());
    let login_cookie = kvixi_core::flow::cookie_value(cookies, kvixi_core::flow::LOGIN_COOKIE);
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    answer(&request, async |kvixi, session, json| {
        kvixi
            .handle_callback(session, query, login_cookie, user_agent, json)
            .await
    })
    .await
}

async fn logout(request: HttpRequest) -> HttpResponse {
    answer(&request, async |kvixi, session, json| {
        kvixi.handle_logout(session, json).await
    })
    .await
}

async fn logout_everywhere(request: HttpRequest) -> HttpResponse {
    answer(&request, async |kvixi, session, json| {
        kvixi.handle_logout_everywhere(session, json).await
    })
    .await
}

async fn sessions(request: HttpRequest) -> HttpResponse {
    answer(&request, async |kvixi, session, json| {
        kvixi.handle_sessions(session, json).await
    })
    .await
}

async fn end_session(request: HttpRequest, body: web::Payload) -> HttpResponse {
    let Ok(form) = body
        .to_bytes_limited(kvixi_core::devices::MAX_END_SESSION_FORM_BYTES)
        .await
    else {
        return HttpResponse::PayloadTooLarge().body("The form is too large.");
    };
    let Ok(form) = form else {
        return HttpResponse::BadRequest().body("The form could not be read.");
    };
    let form = String::from_utf8_lossy(&form);
    answer(&request, async |kvixi, session, json| {
        kvixi.handle_end_session(session, &form, json).await
    })
    .await
}
