//! The core's [`Reply`] as an actix response, and what a request asks for.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse};
use kvixi_core::Reply;

/// Builds the response the core decided, with every header the core lists.
pub(crate) fn respond(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in reply.headers() {
        match HeaderValue::from_str(value) {
            Ok(value) => {
                // Appended: the session middleware may add its own `Set-Cookie`.
                response.append_header((name, value));
            }
            Err(_) => tracing::error!(header = name, "kvixi reply header is not a header value"),
        }
    }
    response.body(reply.body)
}

/// Whether the request would rather have JSON than HTML; the core reads the headers.
pub(crate) fn prefers_json(request: &HttpRequest) -> bool {
    let headers = request.headers();
    let value = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    kvixi_core::flow::prefers_json(value("accept"), value("x-requested-with"))
}

/// The request's path and query, as the browser asked for it (for `return_to`).
pub(crate) fn path_and_query(request: &HttpRequest) -> &str {
    request
        .uri()
        .path_and_query()
        .map_or("/", |target| target.as_str())
}
