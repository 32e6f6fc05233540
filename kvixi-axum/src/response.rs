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
            // Appended: the session layer may add its own `Set-Cookie`.
            headers.append(name, value);
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

/// The value of the flow's login cookie in the request's `Cookie` headers.
pub(crate) fn login_cookie(headers: &HeaderMap) -> Option<&str> {
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok());
    kvixi_core::flow::cookie_value(cookies, kvixi_core::flow::LOGIN_COOKIE)
}
