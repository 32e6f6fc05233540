//! `/api/get_user_info`: step 3, reading the profile of the person behind a token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::params::Params;
use crate::Endpoint;
use crate::api_error::ApiError;

/// `GET /api/get_user_info?access_token=T` → `{"user_info": {...}}`.
pub(crate) async fn get_user_info(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(response) = shared.fault_response(Endpoint::UserInfo).await {
        return response;
    }
    let params = Params::from_query(query.as_deref());
    let Some(access_token) = params.get("access_token") else {
        return ApiError::InvalidParameters.into_response(shared.strict);
    };
    let now = shared.now();
    let found = shared
        .registry()
        .user_for_token(access_token, now)
        .map(|user| user.map(|user| user.info(shared.base_url())));
    let body = match found {
        Ok(Some(user_info)) => serde_json::json!({ "user_info": user_info }),
        // The platform answers `[]` when the user row is gone.
        Ok(None) => serde_json::json!([]),
        Err(error) => return error.into_response(shared.strict),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
