//! Request guards: `KvixiUser`, `Option<KvixiUser>`, `KvixiToken` and `KvixiDevices`.

use std::ops::Deref;

use kvixi_core::{AccessToken, Reply};
use rocket::Request;
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};

use crate::Error;
use crate::fairing::Attached;
use crate::response::{leave_refusal, wants_json};

/// The logged-in Kvixi user. Anonymous requests are refused: JSON clients get 401,
/// browsers a 303 to the login route that comes back to this page (through the catcher
/// the fairing registers). `Option<KvixiUser>` is `None` for anonymous visitors and never
/// refuses.
///
/// Costs one session read and no network call.
#[derive(Clone, Debug, PartialEq)]
pub struct KvixiUser(pub kvixi_core::KvixiUser);

impl Deref for KvixiUser {
    type Target = kvixi_core::KvixiUser;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The user's Kvixi access token, for calling Kvixi on their behalf. When it has
/// expired the request is answered as anonymous (log in again); the user stays logged in
/// to the app.
#[derive(Clone, Debug)]
pub struct KvixiToken(pub AccessToken);

/// The current user's sessions ("your devices"), newest first, with this request's own
/// marked [`current`](kvixi_core::devices::Device::current): for an account page where
/// each has a "log out this device" form (posting its `handle` to
/// [`Config::end_session_path`](kvixi_core::Config::end_session_path)). Anonymous
/// requests are refused as [`KvixiUser`] refuses them.
///
/// Costs the session read (shared with a guard or another extractor of the request) and
/// one read of the user's index in the store. Derefs to the list.
#[derive(Clone, Debug)]
pub struct KvixiDevices(pub Vec<kvixi_core::devices::Device>);

impl Deref for KvixiDevices {
    type Target = [kvixi_core::devices::Device];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Fails the guard with 401, leaving `reply` for the catcher.
fn refuse<T>(request: &Request<'_>, reply: Reply, error: Error) -> Outcome<T, Error> {
    leave_refusal(request, reply);
    Outcome::Error((Status::Unauthorized, error))
}

pub(crate) fn anonymous<T>(request: &Request<'_>, attached: &Attached) -> Outcome<T, Error> {
    let path_and_query = request.uri().to_string();
    let reply = attached
        .kvixi
        .anonymous_reply(wants_json(request), &path_and_query);
    refuse(request, reply, Error::NotLoggedIn)
}

pub(crate) fn failed<T>(
    request: &Request<'_>,
    attached: &Attached,
    error: kvixi_core::Error,
) -> Outcome<T, Error> {
    let reply = attached.kvixi.failure(&error, wants_json(request));
    refuse(request, reply, Error::Flow(error))
}

pub(crate) fn not_attached<T>() -> Outcome<T, Error> {
    tracing::error!(error = %Error::NotAttached, "kvixi guard used without its fairing");
    Outcome::Error((Status::InternalServerError, Error::NotAttached))
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for KvixiUser {
    type Error = Error;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Error> {
        // A group guard (`RequireLogin`) already read the user: no second session read.
        if let Some(user) = crate::require::take_passed_on(request) {
            return Outcome::Success(KvixiUser(user));
        }
        let Some(attached) = Attached::of(request) else {
            return not_attached();
        };
        let session = crate::session::of(&attached.sessions, request);
        match session.current_user(&attached.kvixi).await {
            Ok(Some(user)) => Outcome::Success(KvixiUser(user)),
            Ok(None) => anonymous(request, attached),
            Err(error) => failed(request, attached, error),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for KvixiToken {
    type Error = Error;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Error> {
        let Some(attached) = Attached::of(request) else {
            return not_attached();
        };
        let session = crate::session::of(&attached.sessions, request);
        match attached.kvixi.current_token(&*session).await {
            Ok(Some(token)) => Outcome::Success(KvixiToken(token)),
            Ok(None) => anonymous(request, attached),
            Err(error) => failed(request, attached, error),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for KvixiDevices {
    type Error = Error;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Error> {
        let Some(attached) = Attached::of(request) else {
            return not_attached();
        };
        let session = crate::session::of(&attached.sessions, request);
        match attached.kvixi.sessions_of_current(&*session).await {
            Ok(Some(devices)) => Outcome::Success(KvixiDevices(devices)),
            Ok(None) => anonymous(request, attached),
            Err(error) => failed(request, attached, error),
        }
    }
}

#[cfg(test)]
mod tests {
    use rocket::http::{Accept, Status};
    use rocket::local::asynchronous::Client;

    use crate::test_app::{bare, client};
    use crate::testing::log_in;

    #[rocket::async_test]
    async fn anonymous_json_client_gets_401_json() {
        let (_emulator, client) = client().await;
        let response = client.get("/me").header(Accept::JSON).dispatch().await;
        assert_eq!(response.status(), Status::Unauthorized);
        assert_eq!(
            response.headers().get_one("Cache-Control"),
            Some("no-store")
        );
        let body: serde_json::Value =
            serde_json::from_str(&response.into_string().await.unwrap_or_default())
                .expect("a JSON error");
        assert_eq!(body["error"], "not_logged_in");
    }

    #[rocket::async_test]
    async fn anonymous_browser_is_sent_to_login_with_return_to() {
        let (_emulator, client) = client().await;
        let response = client.get("/me?x=1").header(Accept::HTML).dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(
            response.headers().get_one("Location"),
            Some("/auth/kvixi/login?return_to=%2Fme%3Fx%3D1")
        );
        let token = client.get("/token").header(Accept::HTML).dispatch().await;
        assert_eq!(token.status(), Status::SeeOther);
    }

    #[rocket::async_test]
    async fn optional_user_is_none_when_anonymous_and_some_after_login() {
        let (emulator, client) = client().await;
        let visitor = client.get("/maybe").dispatch().await;
        assert_eq!(visitor.status(), Status::Ok);
        assert_eq!(visitor.into_string().await.as_deref(), Some("anonymous"));

        log_in(&client, &emulator, "alice")
            .await
            .expect("logged in");
        let user = client.get("/maybe").dispatch().await;
        assert_eq!(user.into_string().await.as_deref(), Some("1001"));
        let token = client.get("/token").dispatch().await;
        assert_eq!(token.status(), Status::Ok);
    }

    #[rocket::async_test]
    async fn guard_without_fairing_is_a_server_error_not_a_panic() {
        let client = Client::tracked(bare()).await.expect("the rocket ignites");
        let response = client.get("/me").dispatch().await;
        assert_eq!(response.status(), Status::InternalServerError);
        let maybe = client.get("/maybe").dispatch().await;
        assert_eq!(maybe.into_string().await.as_deref(), Some("anonymous"));
    }
}
