//! The adapter's one error type, answered as the response the core decided.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use kvixi_core::Reply;

use crate::response::respond;

/// What can go wrong in this adapter (flow errors are [`kvixi_core::Error`]). As an actix
/// [`ResponseError`], it answers the core's reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kvixi extractor, guard or route ran in an app without the flow in its data.
    #[error("the Kvixi flow is not in the app: add `.with_kvixi(kvixi)` to the App")]
    NotConfigured,
    /// Nobody is logged in, or the access token expired: the reply sends a browser to
    /// the login route and back, and tells a JSON client 401.
    #[error("no Kvixi user is logged in (or their token expired)")]
    NotLoggedIn(Box<Reply>),
    /// The session could not be read or written; the reply is the core's error page.
    #[error("the Kvixi session could not be used: {error}")]
    Session {
        /// What the core reported.
        #[source]
        error: kvixi_core::Error,
        /// The answer the core chose for it.
        reply: Box<Reply>,
    },
    /// The test login did not go through (see the `testing` module).
    #[error("test login failed at {step}: {problem}")]
    TestLogin {
        /// The step of the flow that failed.
        step: &'static str,
        /// What happened.
        problem: String,
    },
}

impl Error {
    fn reply(&self) -> Option<&Reply> {
        match self {
            Error::NotLoggedIn(reply) | Error::Session { reply, .. } => Some(&**reply),
            Error::NotConfigured | Error::TestLogin { .. } => None,
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.reply()
            .and_then(|reply| StatusCode::from_u16(reply.status).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self.reply() {
            Some(reply) => respond(reply.clone()),
            None => HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
        }
    }
}
