//! The login, callback and logout routes.

use actix_web::dev::Url;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use kvixi_core::{Kvixi, Reply, RequestSession};

use crate::response::{prefers_json, respond};

/// Mounts the login (GET), callback (GET), logout (POST) and devices routes at the
/// configured paths and puts the flow in the app data, as `web::Data<Kvixi>`, where the
/// extractors and your handlers find it.
///
/// actix tries an app's services one after another, so the routes sit in one scope on
/// the prefix their paths share (`/auth/kvixi` by default): a request for any other page
/// of the app passes them with one comparison instead of six (about 2 % of an
/// authenticated request in `cargo bench -p kvixi-bench -- authenticated/actix`). The
/// scope's guard admits only kvixi's own paths (compared as actix's router decodes
/// them), so the app's routes under that prefix still answer. Paths that share no
/// prefix get the same guard on every request, without the saving.
pub(crate) fn routes(kvixi: Kvixi) -> impl FnOnce(&mut web::ServiceConfig) {
    move |app| {
        let config = kvixi.config();
        let paths = [
            config.login_path(),
            config.callback_path(),
            config.logout_path(),
            config.logout_everywhere_path(),
            config.sessions_path(),
            config.end_session_path(),
        ]
        .map(str::to_owned);
        let prefix = shared_prefix(&paths).to_owned();
        let at = |i: usize| &paths[i][prefix.len()..];
        let scope = web::scope(&prefix)
            .service(web::resource(at(0)).route(web::get().to(login)))
            .service(web::resource(at(1)).route(web::get().to(callback)))
            .service(web::resource(at(2)).route(web::post().to(logout)))
            .service(web::resource(at(3)).route(web::post().to(logout_everywhere)))
            .service(web::resource(at(4)).route(web::get().to(sessions)))
            .service(web::resource(at(5)).route(web::post().to(end_session)));
        let ours = paths.clone();
        let scope = scope.guard(guard::fn_guard(move |context| {
            let uri = &context.head().uri;
            let ours = |path: &str| ours.iter().any(|ours| ours == path);
            if uri.path().contains('%') {
                // Decoded as actix's router decodes it (rare: only paths with escapes).
                ours(Url::new(uri.clone()).path())
            } else {
                ours(uri.path())
            }
        }));
        app.app_data(web::Data::new(kvixi)).service(scope);
    }
}

/// The longest run of whole segments every path starts with ("/auth/kvixi" for the
/// defaults); empty when they share none.
fn shared_prefix(paths: &[String]) -> &str {
    let Some(first) = paths.first() else {
        return "";
    };
    let mut prefix = first.as_str();
    loop {
        let shared = paths.iter().all(|path| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        if shared && prefix != "/" {
            return prefix;
        }
        match prefix.rfind('/') {
            Some(0) | None => return "",
            Some(end) => prefix = &prefix[..end],
        }
    }
}

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

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::test::{self, TestRequest};
    use actix_web::{App, web};
    use kvixi_core::{Config, Kvixi};

    use super::shared_prefix;
    use crate::KvixiAppExt;

    /// An app with kvixi (its callback at `callback`, login at `login_path`) and one own
    /// route at
    /// `route`, asked each `(method, path)`: the statuses must be as listed.
    async fn answers(
        callback: &str,
        login_path: &str,
        route: &str,
        expected: &[(&str, &str, StatusCode)],
    ) {
        let config = Config::builder("app", "secret", callback)
            .login_path(login_path)
            .build()
            .expect("valid config");
        let kvixi = Kvixi::new(config).expect("flow builds");
        let app = test::init_service(
            App::new()
                .with_kvixi(kvixi)
                .route(route, web::get().to(|| async { "the app's" }))
                .route("/me", web::get().to(|| async { "me" })),
        )
        .await;
        for (method, path, status) in expected {
            let request = TestRequest::default()
                .method(method.parse().expect("a method"))
                .uri(path)
                .insert_header(("accept", "text/html"))
                .to_request();
            let response = test::call_service(&app, request).await;
            assert_eq!(response.status(), *status, "{method} {path}");
        }
    }

    #[actix_web::test]
    async fn the_apps_own_routes_under_the_prefix_still_answer() {
        answers(
            "http://localhost/auth/kvixi/callback",
            "/auth/kvixi/login",
            "/auth/kvixi/help",
            &[
                ("GET", "/auth/kvixi/help", StatusCode::OK),
                ("GET", "/me", StatusCode::OK),
                ("GET", "/auth/kvixi/login", StatusCode::SEE_OTHER),
                // Escapes are matched decoded, as before the routes shared a scope.
                ("GET", "/auth/kvixi/log%69n", StatusCode::SEE_OTHER),
                ("POST", "/auth/kvixi/logout", StatusCode::SEE_OTHER),
                ("GET", "/auth/kvixi/logout", StatusCode::METHOD_NOT_ALLOWED),
                ("GET", "/auth/kvixi/nothing", StatusCode::NOT_FOUND),
                // An escaped path of the app's is the app's.
                ("GET", "/auth/kvixi/h%65lp", StatusCode::OK),
            ],
        )
        .await;
    }

    #[actix_web::test]
    async fn paths_that_share_no_prefix_leave_the_apps_routes_alone() {
        answers(
            "http://localhost/callback",
            "/login",
            "/files/{name}",
            &[
                ("GET", "/files/my%20doc", StatusCode::OK),
                ("GET", "/files/notes", StatusCode::OK),
                ("GET", "/login", StatusCode::SEE_OTHER),
                ("GET", "/log%69n", StatusCode::SEE_OTHER),
            ],
        )
        .await;
    }

    fn prefix(paths: &[&str]) -> String {
        let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        shared_prefix(&paths).to_owned()
    }

    #[test]
    fn the_routes_share_their_longest_run_of_whole_segments() {
        let defaults = [
            "/auth/kvixi/login",
            "/auth/kvixi/callback",
            "/auth/kvixi/logout",
            "/auth/kvixi/logout/everywhere",
            "/auth/kvixi/sessions",
            "/auth/kvixi/sessions/end",
        ];
        assert_eq!(prefix(&defaults), "/auth/kvixi");
        assert_eq!(
            prefix(&["/auth/kvixi", "/auth/kvixi/callback"]),
            "/auth/kvixi"
        );
        // Not in the middle of a segment.
        assert_eq!(
            prefix(&["/auth/kvixi-login", "/auth/kvixi-callback"]),
            "/auth"
        );
        assert_eq!(prefix(&["/login", "/callback"]), "");
        assert_eq!(prefix(&["/login", "/login"]), "/login");
        assert_eq!(prefix(&["/a/", "/a/b"]), "/a");
    }
}
