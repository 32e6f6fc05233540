//! The error answers of the JSON endpoints, worded as the Kvixi platform words them.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered by `/api/authorize` or `/api/get_user_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// A required parameter is missing or empty.
    InvalidParameters,
    /// No such app.
    InvalidAppId,
    /// The app exists but the secret is wrong.
    InvalidAppSecret,
    /// The auth_key is unknown, used, expired or belongs to another app.
    InvalidAuthKey,
    /// The access token was never issued.
    InvalidAccessToken,
    /// The access token has expired.
    ExpiredAccessToken,
}

impl ApiError {
    /// The platform's message.
    pub(crate) fn message(self) -> &'static str {
        match self {
            ApiError::InvalidParameters => "Bad Request, invalid parameters",
            ApiError::InvalidAppId => "Bad Request, invalid app_id",
            ApiError::InvalidAppSecret => "Bad Request, invalid app_secret",
            ApiError::InvalidAuthKey => "Bad Request, invalid auth_key",
            ApiError::InvalidAccessToken => "Bad Request, invalid access_token",
            ApiError::ExpiredAccessToken => "Bad Request, expired access_token",
        }
    }

    /// The status answered: 200 like the platform, or 400/401 in strict mode.
    pub(crate) fn status(self, strict: bool) -> StatusCode {
        match (strict, self) {
            (false, _) => StatusCode::OK,
            (true, ApiError::InvalidAccessToken | ApiError::ExpiredAccessToken) => {
                StatusCode::UNAUTHORIZED
            }
            (true, _) => StatusCode::BAD_REQUEST,
        }
    }

    /// `{"error": true, "message": "..."}` with the status of [`ApiError::status`].
    pub(crate) fn into_response(self, strict: bool) -> Response {
        (
            self.status(strict),
            [(header::CACHE_CONTROL, "no-store")],
            Json(serde_json::json!({ "error": true, "message": self.message() })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_http_200_unless_strict() {
        assert_eq!(ApiError::InvalidAuthKey.status(false), StatusCode::OK);
        assert_eq!(
            ApiError::InvalidAuthKey.status(true),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::ExpiredAccessToken.status(true),
            StatusCode::UNAUTHORIZED
        );
    }
}
