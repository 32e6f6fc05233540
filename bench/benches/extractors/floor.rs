//! What every framework's floor handler answers a visitor, written by hand: the same
//! statuses and headers as the flow's answers, without the flow.

use kvixi_core::AuthRecord;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// `Accept` of a client that wants JSON.
pub const ACCEPT_JSON: &str = "application/json";
/// `Accept` of a browser's navigation.
pub const ACCEPT_BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The body of the floor's 401, about the size of the flow's.
pub const UNAUTHORIZED_JSON: &str =
    r#"{"error":"not_logged_in","message":"You need to log in with Kvixi to see this page."}"#;

/// The headers every flow answer carries, which the floor copies.
pub const HEADERS: [(&str, &str); 2] = [
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
];

/// Where the floor sends a browser: the login route, coming back to this page.
pub fn login_location(path_and_query: &str) -> String {
    format!(
        "/auth/kvixi/login?return_to={}",
        utf8_percent_encode(path_and_query, NON_ALPHANUMERIC)
    )
}

/// Whether the request prefers JSON, by the same rule the flow applies.
pub fn prefers_json(accept: Option<&str>, x_requested_with: Option<&str>) -> bool {
    kvixi_core::flow::prefers_json(accept, x_requested_with)
}

/// The auth record from the value the flow stored: a JSON object, or the record's JSON
/// text in a JSON string (a compact form the core may adopt; see BENCHMARKS.md).
pub fn auth_record(value: Value) -> Option<AuthRecord> {
    match value {
        Value::String(text) => serde_json::from_str(&text).ok(),
        other => serde_json::from_value(other).ok(),
    }
}
