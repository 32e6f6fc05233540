//! The core's [`Reply`] as an axum response.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kvixi_core::Reply;
use kvixi_core::flow::prefers_json;

/// Copies a core reply into an axum response. Flow answers are never cached.
pub(crate) fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(content_type) = reply.content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    } else {
        headers.remove(header::CONTENT_TYPE);
    }
    if let Some(location) = reply.location.and_then(|l| HeaderValue::try_from(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
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
