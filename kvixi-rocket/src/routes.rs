//! The login, callback and logout routes.

use kvixi_core::Config;
use kvixi_core::flow::{self, LOGIN_COOKIE};
use rocket::http::uri::Origin;
use rocket::http::{Cookie, Method, Status};
use rocket::route::{Handler, Outcome, Route};
use rocket::{Data, Request};

use crate::Error;
use crate::fairing::Attached;
use crate::response::{KvixiResponse, wants_json};

/// The login, callback, logout and logout-everywhere routes at the configured paths. Each matches any query string and hands
/// it, raw, to the core.
pub(crate) fn routes(config: &Config) -> Result<Vec<Route>, Error> {
    [
        ("login_path", Method::Get, config.login_path(), Flow::Login),
        (
            "redirect_url",
            Method::Get,
            config.callback_path(),
            Flow::Callback,
        ),
        (
            "logout_path",
            Method::Post,
            config.logout_path(),
            Flow::Logout,
        ),
        (
            "logout_everywhere_path",
            Method::Post,
            config.logout_everywhere_path(),
            Flow::LogoutEverywhere,
        ),
        (
            "sessions_path",
            Method::Get,
            config.sessions_path(),
            Flow::Sessions,
        ),
        (
            "sessions_path",
            Method::Post,
            config.end_session_path(),
            Flow::EndSession,
        ),
    ]
    .into_iter()
    .map(|(setting, method, path, flow)| {
        // `Route::new` panics on what it cannot parse, and `<…>` would be a parameter.
        if path.contains(['<', '>']) || Origin::parse_route(path).is_err() {
            return Err(Error::RoutePath {
                setting,
                path: path.to_owned(),
            });
        }
        let mut route = Route::new(method, path, flow);
        route.name = Some(flow.name().into());
        Ok(route)
    })
    .collect()
}

#[derive(Clone, Copy, Debug)]
enum Flow {
    Login,
    Callback,
    Logout,
    LogoutEverywhere,
    Sessions,
    EndSession,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Flow::Login => "kvixi_login",
            Flow::Callback => "kvixi_callback",
            Flow::Logout => "kvixi_logout",
            Flow::LogoutEverywhere => "kvixi_logout_everywhere",
            Flow::Sessions => "kvixi_sessions",
            Flow::EndSession => "kvixi_end_session",
        }
    }
}

#[rocket::async_trait]
impl Handler for Flow {
    async fn handle<'r>(&self, request: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let Some(attached) = Attached::of(request) else {
            tracing::error!(error = %Error::NotAttached, "kvixi route without its fairing");
            return Outcome::Error(Status::InternalServerError);
        };
        let kvixi = &attached.kvixi;
        let session = crate::session::of(&attached.sessions, request);
        let query = request.uri().query().map(|query| query.as_str());
        let mut reply = match self {
            // The pending login travels in its own cookie: no session is touched here.
            Flow::Login => kvixi.handle_login(query),
            Flow::Callback => {
                // Only an in-process test request fills this cache (`testing::log_in_as`).
                #[cfg(feature = "testing")]
                if let Some(user) = crate::testing::requested_login(request) {
                    let reply = kvixi.handle_test_login(&*session, user).await;
                    return Outcome::from(request, KvixiResponse(reply));
                }
                // The core's rule on the raw `Cookie` headers (a login cookie sent twice,
                // one of them planted, counts as none); Rocket's local client sets no
                // header, only its jar.
                let mut headers = request.headers().get("Cookie").peekable();
                let login_cookie = match headers.peek() {
                    Some(_) => flow::cookie_value(headers, LOGIN_COOKIE),
                    None => request.cookies().get(LOGIN_COOKIE).map(Cookie::value),
                };
                let user_agent = request.headers().get_one("User-Agent");
                let json = wants_json(request);
                kvixi
                    .handle_callback(&*session, query, login_cookie, user_agent, json)
                    .await
            }
            Flow::Logout => kvixi.handle_logout(&*session, wants_json(request)).await,
            Flow::LogoutEverywhere => {
                let json = wants_json(request);
                kvixi.handle_logout_everywhere(&*session, json).await
            }
            Flow::Sessions => kvixi.handle_sessions(&*session, wants_json(request)).await,
            Flow::EndSession => {
                let limit = rocket::data::ToByteUnit::bytes(
                    kvixi_core::devices::MAX_END_SESSION_FORM_BYTES,
                );
                let form = match data.open(limit).into_string().await {
                    Ok(form) if form.is_complete() => form.into_inner(),
                    Ok(_) => return Outcome::Error(Status::PayloadTooLarge),
                    Err(_) => return Outcome::Error(Status::BadRequest),
                };
                let json = wants_json(request);
                kvixi.handle_end_session(&*session, &form, json).await
            }
        };
        // Through Rocket's jar, which writes the header (and which local clients track).
        if let Some(header) = reply.set_cookie.take() {
            match Cookie::parse(header) {
                Ok(cookie) => request.cookies().add(cookie),
                Err(error) => tracing::error!(%error, "kvixi login cookie does not parse"),
            }
        }
        Outcome::from(request, KvixiResponse(reply))
    }
}

#[cfg(test)]
mod tests {
    use kvixi_core::{Config, Kvixi};
    use rocket::http::Status;
    use rocket::local::asynchronous::Client;

    use crate::KvixiFairing;
    use crate::test_app::{CALLBACK, bare, client};

    #[rocket::async_test]
    async fn a_path_rocket_cannot_route_stops_ignition() {
        let config = Config::builder("app", "secret", CALLBACK)
            .login_path("/auth/<who>")
            .build()
            .expect("the core accepts it");
        let kvixi = Kvixi::new(config).expect("flow builds");
        match Client::tracked(bare().attach(KvixiFairing::new(kvixi))).await {
            Err(error) => assert!(matches!(
                error.kind(),
                rocket::error::ErrorKind::FailedFairings(_)
            )),
            Ok(_) => panic!("the rocket ignited with a parameter in a Kvixi path"),
        }
    }

    #[rocket::async_test]
    async fn a_shared_store_with_per_process_revocations_stops_ignition() {
        let config = || {
            Config::builder("app", "secret", CALLBACK)
                .build()
                .expect("valid")
        };
        // Any store but kvixi's memory store may be shared by several instances.
        let shared = tower_sessions_memory_store::MemoryStore::default();
        let kvixi = Kvixi::new(config()).expect("flow builds");
        match Client::tracked(bare().attach(KvixiFairing::new(kvixi).store(shared.clone()))).await {
            Err(error) => assert!(matches!(
                error.kind(),
                rocket::error::ErrorKind::FailedFairings(_)
            )),
            Ok(_) => panic!("the rocket ignited with revocations only this process sees"),
        }
        // Chosen revocations, or kvixi's own memory store: it ignites.
        let chosen = Kvixi::builder(config())
            .revocations(kvixi_core::MemoryRevocations::default())
            .build()
            .expect("flow builds");
        let fairing = KvixiFairing::new(chosen).store(shared);
        Client::tracked(bare().attach(fairing))
            .await
            .expect("ignites");
        let kvixi = Kvixi::new(config()).expect("flow builds");
        let store = kvixi_core::MemoryStore::from_config(kvixi.config());
        let fairing = KvixiFairing::new(kvixi).store(store);
        Client::tracked(bare().attach(fairing))
            .await
            .expect("ignites");
    }

    #[rocket::async_test]
    async fn callback_without_pending_login_is_refused_by_the_core() {
        let (_emulator, client) = client().await;
        let callback = client
            .get("/auth/kvixi/callback?auth_key=abc")
            .dispatch()
            .await;
        assert_eq!(callback.status(), Status::BadRequest);
        let logout = client.get("/auth/kvixi/logout").dispatch().await;
        assert_eq!(logout.status(), Status::NotFound);
    }

    #[rocket::async_test]
    async fn a_login_cookie_sent_twice_is_no_pending_login() {
        let (emulator, client) = client().await;
        let login = client.get("/auth/kvixi/login").dispatch().await;
        assert_eq!(login.status(), Status::SeeOther);
        let login_cookie = login
            .cookies()
            .get(kvixi_core::flow::LOGIN_COOKIE)
            .expect("the login cookie")
            .value()
            .to_owned();
        let key = emulator.issue_auth_key("unit-app", "alice").expect("a key");
        let callback = |cookies: String| {
            client
                .get(format!("/auth/kvixi/callback?auth_key={key}"))
                .header(rocket::http::Header::new("Cookie", cookies))
        };
        // Once more beside a planted copy: the core's rule, refused.
        let pair = format!("{}={login_cookie}", kvixi_core::flow::LOGIN_COOKIE);
        let twice = callback(format!("{pair}; {pair}")).dispatch().await;
        assert_eq!(twice.status(), Status::BadRequest);
        // Sent once, the same cookie is the pending login: logged in.
        let once = callback(pair).dispatch().await;
        assert_eq!(once.status(), Status::SeeOther);
    }
}
