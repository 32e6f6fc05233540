//! Extractors: `KvixiUser`, `Option<KvixiUser>`, `KvixiToken` and `KvixiDevices`.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use kvixi_core::{AccessToken, Kvixi, RequestSession};

use crate::Error;
use crate::response::{path_and_query, prefers_json};

/// The Kvixi user of the request's session, as an actix extractor. An anonymous request
/// is answered by the core: a 401 JSON error for API clients, a 303 to the login route
/// (coming back to the same path and query) for browsers.
///
/// For pages open to visitors, take `Option<KvixiUser>`: actix-web turns any refusal of
/// the inner extractor into `None`, so a visitor is `None`, never an error. The one
/// exception is a session store outage: who the visitor is cannot be known then, so
/// the session middleware of [`with_kvixi`](crate::KvixiAppExt::with_kvixi) answers the
/// request 503 rather than let the page treat a logged-in user as a visitor.
///
/// One session read, no call to Kvixi. Derefs to [`kvixi_core::KvixiUser`].
#[derive(Clone, Debug, PartialEq)]
pub struct KvixiUser(pub kvixi_core::KvixiUser);

impl Deref for KvixiUser {
    type Target = kvixi_core::KvixiUser;
    fn deref(&self) -> &kvixi_core::KvixiUser {
        &self.0
    }
}

/// The access token of the request's session, to call Kvixi as the user. A token past
/// its lifetime is refused like an anonymous request (the browser goes through login
/// again) while [`KvixiUser`] still finds the user.
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

pub(crate) type Extraction<T> = Pin<Box<dyn Future<Output = Result<T, Error>>>>;

/// Extracts what `read` finds in the request's session; finding nothing gets the core's
/// anonymous answer, a session failure its error page.
pub(crate) fn extract<T: 'static>(
    request: &HttpRequest,
    read: impl AsyncFnOnce(&Kvixi, Arc<RequestSession>) -> Result<Option<T>, kvixi_core::Error>
    + 'static,
) -> Extraction<T> {
    let request = request.clone();
    Box::pin(async move {
        let (kvixi, session) = crate::session::of(&request)?;
        match read(&kvixi, session).await {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(Error::NotLoggedIn(Box::new(
                kvixi.anonymous_reply(prefers_json(&request), path_and_query(&request)),
            ))),
            Err(error) => Err(Error::Session {
                reply: Box::new(kvixi.failure(&error, prefers_json(&request))),
                error,
            }),
        }
    })
}

impl FromRequest for KvixiUser {
    type Error = Error;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        // A group guard (`RequireLogin`) already read the user: no second session read.
        let known = request.extensions().get::<KvixiUser>().cloned();
        if let Some(user) = known {
            return Box::pin(std::future::ready(Ok(user)));
        }
        extract(request, async |kvixi, session| {
            Ok(session.current_user(kvixi).await?.map(KvixiUser))
        })
    }
}

impl FromRequest for KvixiToken {
    type Error = Error;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(request, async |kvixi, session| {
            Ok(kvixi.current_token(&*session).await?.map(KvixiToken))
        })
    }
}

impl FromRequest for KvixiDevices {
    type Error = Error;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(request, async |kvixi, session| {
            Ok(kvixi
                .sessions_of_current(&*session)
                .await?
                .map(KvixiDevices))
        })
    }
}
