//! The core's [`Reply`] as an axum response.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use kvixi_core::Reply;
use kvixi_core::flow::prefers_json;

/// Copies a core reply into an axum response.
pub(crate) fn into_response(reply: Reply) -> Response {
    let mut headers = HeaderMap::new();
    for (name, value) in reply.headers() {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *response.headers_mut() = headers;
    response
}

/// Whether the request asks for JSON rather than HTML (the core decides).
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    prefers_json(text(header::ACCEPT.as_str()), text("x-requested-with"))
}
