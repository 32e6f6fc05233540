//! The core's [`Reply`] as a Rocket response, and the catcher that answers what a
//! refusing guard decided.

use std::io::Cursor;

use kvixi_core::Reply;
use kvixi_core::flow::prefers_json;
use rocket::catcher::{self, Catcher};
use rocket::http::Status;
use rocket::response::{self, Responder, Response};
use rocket::{Request, async_trait};

use crate::local::Local;

/// An answer decided by the Kvixi flow, as a Rocket [`Responder`] with every header the
/// core lists (`Cache-Control: no-store`, `Referrer-Policy: no-referrer`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvixiResponse(pub Reply);

impl KvixiResponse {
    /// What a Kvixi guard decided when it refused this request (a 303 to login, a 401
    /// JSON error, an error page), for a 401 catcher of your own; `None` when no Kvixi
    /// guard refused it.
    pub fn refusal(request: &Request<'_>) -> Option<KvixiResponse> {
        Local::of(request).refusal.get().cloned().map(KvixiResponse)
    }
}

impl<'r> Responder<'r, 'static> for KvixiResponse {
    fn respond_to(self, _request: &'r Request<'_>) -> response::Result<'static> {
        let reply = self.0;
        let mut response = Response::build();
        response.status(Status::from_code(reply.status).unwrap_or(Status::InternalServerError));
        for (name, value) in reply.headers() {
            // Adjoined: the cookie jar may add its own `Set-Cookie`.
            response.raw_header_adjoin(name, value.to_owned());
        }
        response
            .sized_body(reply.body.len(), Cursor::new(reply.body))
            .ok()
    }
}

/// Whether the request asks for JSON rather than HTML (the core decides).
pub(crate) fn wants_json(request: &Request<'_>) -> bool {
    let headers = request.headers();
    prefers_json(
        headers.get_one("Accept"),
        headers.get_one("X-Requested-With"),
    )
}

/// Leaves `reply` for the catcher; a reply left earlier in the request is kept.
pub(crate) fn leave_refusal(request: &Request<'_>, reply: Reply) {
    let _ = Local::of(request).refusal.set(reply);
}

/// The 401 catcher: the reply a Kvixi guard left, or a plain 401.
pub(crate) fn catcher() -> Catcher {
    let mut catcher = Catcher::new(401, RefusalCatcher);
    catcher.name = Some("kvixi_refusal".into());
    catcher
}

#[derive(Clone)]
struct RefusalCatcher;

#[async_trait]
impl catcher::Handler for RefusalCatcher {
    async fn handle<'r>(&self, status: Status, request: &'r Request<'_>) -> catcher::Result<'r> {
        let reply = KvixiResponse::refusal(request).unwrap_or_else(|| {
            KvixiResponse(Reply::plain(
                status.code,
                status.reason().unwrap_or("Unauthorized"),
            ))
        });
        reply.respond_to(request)
    }
}

#[cfg(test)]
mod tests {
    use rocket::http::{Accept, Status};
    use rocket::local::asynchronous::Client;
    use rocket::{Request, catch, catchers, get, routes};

    use super::KvixiResponse;
    use crate::test_app::{bare, emulator};
    use crate::{KvixiFairing, KvixiUser};

    #[get("/api/me")]
    fn api_me(user: KvixiUser) -> String {
        user.id.clone()
    }

    #[catch(401)]
    fn api_unauthorized(request: &Request<'_>) -> Result<KvixiResponse, &'static str> {
        KvixiResponse::refusal(request).ok_or("api says no")
    }

    #[rocket::async_test]
    async fn an_app_catcher_under_a_longer_base_can_answer_the_kvixi_refusal() {
        let (_emulator, config) = emulator().await;
        let kvixi = kvixi_core::Kvixi::new(config).expect("flow builds");
        let rocket = bare()
            .mount("/", routes![api_me])
            .register("/api", catchers![api_unauthorized])
            .attach(KvixiFairing::new(kvixi));
        let client = Client::tracked(rocket).await.expect("the rocket ignites");
        let response = client.get("/api/me").header(Accept::HTML).dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(
            response.headers().get_one("Referrer-Policy"),
            Some("no-referrer")
        );
    }
}
