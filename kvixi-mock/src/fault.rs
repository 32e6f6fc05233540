//! Fault injection: make one endpoint misbehave until the fault is cleared.

use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt as _;

/// One of the three Kvixi endpoints a fault can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/api/oauth`, the login-and-consent page (GET and POST).
    OAuth,
    /// `/api/authorize`, the auth_key exchange.
    Authorize,
    /// `/api/get_user_info`, the profile read.
    UserInfo,
}

/// How a faulted endpoint misbehaves. A fault applies before any normal processing, so a
/// faulted `/api/authorize` does not consume the auth_key it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long (real time), then answer normally.
    Delay(Duration),
    /// Answer this HTTP status with a short plain-text body (an invalid code answers 500).
    Status(u16),
    /// Answer HTTP 200 with a body that is not JSON.
    MalformedJson,
    /// Answer HTTP 200 with a body of exactly this many bytes, streamed in chunks (so a huge
    /// size costs no memory) and without a `Content-Length`: a JSON string that never ends.
    OversizedBody(usize),
    /// Answer HTTP 200 with exactly this body, as JSON (e.g. `[]`, or a `user_info` without
    /// `user_id`).
    Body(String),
}

/// The start of an oversized body; the rest is `a` repeated.
const OVERSIZED_PREFIX: &[u8] = b"{\"access_token\":\"";
/// Streaming chunk size of an oversized body.
const CHUNK_LEN: usize = 64 * 1024;
static FILLER: [u8; CHUNK_LEN] = [b'a'; CHUNK_LEN];

impl Fault {
    /// The answer replacing the normal one, or `None` for a delay (the caller sleeps
    /// [`Fault::delay`] first and then answers normally).
    pub(crate) fn response(&self) -> Option<Response> {
        let json = [(header::CONTENT_TYPE, "application/json")];
        match self {
            Fault::Delay(_) => None,
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = format!("kvixi-mock injected fault: HTTP {}\n", status.as_u16());
                Some((status, body).into_response())
            }
            Fault::MalformedJson => Some(
                (
                    StatusCode::OK,
                    json,
                    "{\"access_token\": \"truncated-by-kvixi-mock\", \"user_info\": {",
                )
                    .into_response(),
            ),
            Fault::OversizedBody(len) => {
                Some((StatusCode::OK, json, oversized_body(*len)).into_response())
            }
            Fault::Body(body) => Some((StatusCode::OK, json, body.clone()).into_response()),
        }
    }

    /// How long to wait before answering normally.
    pub(crate) fn delay(&self) -> Option<Duration> {
        match self {
            Fault::Delay(delay) => Some(*delay),
            _ => None,
        }
    }
}

/// A streamed body of exactly `len` bytes that allocates nothing per chunk.
fn oversized_body(len: usize) -> Body {
    let prefix_len = OVERSIZED_PREFIX.len().min(len);
    let prefix = Bytes::from_static(&OVERSIZED_PREFIX[..prefix_len]);
    let filler = futures_util::stream::unfold(len - prefix_len, |remaining| async move {
        if remaining == 0 {
            return None;
        }
        let n = remaining.min(CHUNK_LEN);
        Some((Bytes::from_static(&FILLER[..n]), remaining - n))
    });
    let chunks = futures_util::stream::once(async move { prefix })
        .chain(filler)
        .map(Ok::<_, std::convert::Infallible>);
    Body::from_stream(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_len(fault: Fault) -> usize {
        let response = fault.response().unwrap();
        let mut stream = response.into_body().into_data_stream();
        let mut total = 0;
        while let Some(chunk) = stream.next().await {
            total += chunk.unwrap().len();
        }
        total
    }

    #[tokio::test]
    async fn oversized_body_has_exactly_the_requested_length() {
        for len in [0, 5, OVERSIZED_PREFIX.len(), CHUNK_LEN + 17, 3 * CHUNK_LEN] {
            assert_eq!(body_len(Fault::OversizedBody(len)).await, len);
        }
    }

    #[test]
    fn invalid_status_code_answers_500() {
        let response = Fault::Status(42).response().unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn delay_answers_normally() {
        assert!(Fault::Delay(Duration::from_millis(1)).response().is_none());
    }
}
