//! `/api/authorize`: step 2, exchanging an auth_key for an access token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::params::Params;
use crate::Endpoint;
use crate::api_error::ApiError;

/// `GET /api/authorize?app_id=X&app_secret=S&auth_key=K` → `{"access_token": "..."}`.
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(response) = shared.fault_response(Endpoint::Authorize).await {
        return response;
    }
    let params = Params::from_query(query.as_deref());
    let (Some(app_id), Some(app_secret), Some(auth_key)) = (
        params.get("app_id"),
        params.get("app_secret"),
        params.get("auth_key"),
    ) else {
        return ApiError::InvalidParameters.into_response(shared.strict);
    };
    let now = shared.now();
    let exchanged = shared
        .registry()
        .exchange(app_id, app_secret, auth_key, now);
    match exchanged {
        Ok(access_token) => {
            tracing::debug!(app_id, "auth_key exchanged for an access token");
            (
                [(header::CACHE_CONTROL, "no-store")],
                Json(serde_json::json!({ "access_token": access_token })),
            )
                .into_response()
        }
        Err(error) => {
            tracing::debug!(
                app_id,
                reason = error.message(),
                "auth_key exchange refused"
            );
            error.into_response(shared.strict)
        }
    }
}
