//! Extractors: `KvixiUser`, `Option<KvixiUser>`, `KvixiToken` and `KvixiDevices`.

use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::Extensions;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use kvixi_core::{AccessToken, Error as CoreError, Kvixi, Reply};
use tower_sessions::Session;

use crate::Error;
use crate::response::{into_response, wants_json};
use crate::session::TowerSession;

/// The logged-in Kvixi user. Anonymous requests are rejected: JSON clients get 401,
/// browsers a 303 to the login route that comes back to this page. Use
/// `Option<KvixiUser>` where anonymous visitors are welcome.
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

/// Why an extractor refused a request; answers the response the core decided.
#[derive(Debug)]
pub struct KvixiRejection(Reply);

impl KvixiRejection {
    pub(crate) fn new(reply: Reply) -> Self {
        KvixiRejection(reply)
    }
}

impl IntoResponse for KvixiRejection {
    fn into_response(self) -> Response {
        into_response(self.0)
    }
}

/// The flow and session of a request (borrowed from its extensions), or the rejection
/// for their absence.
pub(crate) fn flow_and_session(
    extensions: &Extensions,
) -> Result<(&Kvixi, TowerSession<'_>), KvixiRejection> {
    let missing = |error: Error| {
        tracing::error!(%error, "kvixi extractor used without its layers");
        KvixiRejection(Reply::plain(500, error.to_string()))
    };
    let kvixi = extensions
        .get::<Kvixi>()
        .ok_or(Error::LayerMissing("KvixiLayer"))
        .map_err(missing)?;
    let session = extensions
        .get::<Session>()
        .ok_or(Error::LayerMissing("SessionManagerLayer"))
        .map_err(missing)?;
    Ok((kvixi, TowerSession::new(session, kvixi)))
}

pub(crate) fn failure(kvixi: &Kvixi, parts: &Parts, error: &CoreError) -> KvixiRejection {
    KvixiRejection(kvixi.failure(error, wants_json(&parts.headers)))
}

pub(crate) fn anonymous(kvixi: &Kvixi, parts: &Parts) -> KvixiRejection {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |original| &original.0);
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    KvixiRejection(kvixi.anonymous_reply(wants_json(&parts.headers), path))
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for KvixiUser {
    type Rejection = KvixiRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        // A group guard (`require_login`) already read the user: no second session read.
        if let Some(user) = parts.extensions.get::<KvixiUser>() {
            return Ok(Some(user.clone()));
        }
        let (kvixi, session) = flow_and_session(&parts.extensions)?;
        match kvixi.current_user(&session).await {
            Ok(user) => Ok(user.map(KvixiUser)),
            Err(error) => Err(failure(kvixi, parts, &error)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for KvixiUser {
    type Rejection = KvixiRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // A group guard (`require_login`) already read the user: no second session read.
        if let Some(user) = parts.extensions.get::<KvixiUser>() {
            return Ok(user.clone());
        }
        let (kvixi, session) = flow_and_session(&parts.extensions)?;
        match kvixi.current_user(&session).await {
            Ok(Some(user)) => Ok(KvixiUser(user)),
            Ok(None) => Err(anonymous(kvixi, parts)),
            Err(error) => Err(failure(kvixi, parts, &error)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for KvixiToken {
    type Rejection = KvixiRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (kvixi, session) = flow_and_session(&parts.extensions)?;
        match kvixi.current_token(&session).await {
            Ok(Some(token)) => Ok(KvixiToken(token)),
            Ok(None) => Err(anonymous(kvixi, parts)),
            Err(error) => Err(failure(kvixi, parts, &error)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for KvixiDevices {
    type Rejection = KvixiRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (kvixi, session) = flow_and_session(&parts.extensions)?;
        match kvixi.sessions_of_current(&session).await {
            Ok(Some(devices)) => Ok(KvixiDevices(devices)),
            Ok(None) => Err(anonymous(kvixi, parts)),
            Err(error) => Err(failure(kvixi, parts, &error)),
        }
    }
}
