//! `/api/oauth`: step 1, the login-and-consent page and its form.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use url::Url;

use super::Shared;
use super::page;
use super::params::Params;
use crate::{App, Endpoint};

/// `GET /api/oauth?app_id=X[&mock_user=NAME]`.
pub(crate) async fn show(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    if let Some(response) = shared.fault_response(Endpoint::OAuth).await {
        return response;
    }
    let params = Params::from_query(query.as_deref());
    let Some(app_id) = params.get("app_id") else {
        return page::error(
            StatusCode::NOT_FOUND,
            "Page not found",
            "The login link is missing its app_id.",
        );
    };
    let Some(app) = shared.registry().app(app_id).cloned() else {
        return unknown_app();
    };
    match params.get("mock_user") {
        Some(user_name) => approve(&shared, &app, user_name),
        None => page::login(StatusCode::OK, &app.app_id, "", None),
    }
}

/// `POST /api/oauth` with the form's `app_id`, `user_name`, `password` and `decision`.
pub(crate) async fn submit(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    if let Some(response) = shared.fault_response(Endpoint::OAuth).await {
        return response;
    }
    let form = Params::from_urlencoded(&body);
    let Some(app_id) = form.get("app_id") else {
        return page::error(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The login form was sent without its app_id.",
        );
    };
    let Some(app) = shared.registry().app(app_id).cloned() else {
        return unknown_app();
    };
    match form.get("decision") {
        Some("deny") => {
            tracing::debug!(app_id = %app.app_id, "the person refused the app");
            redirect(&app, "error", "access_denied")
        }
        // Pressing Enter in a field submits the first button, Allow.
        Some("allow") | None => {
            let user_name = form.get("user_name").unwrap_or_default();
            let password = form.get("password").unwrap_or_default();
            let known = shared
                .registry()
                .check_password(user_name, password)
                .is_some();
            if known {
                approve(&shared, &app, user_name)
            } else {
                page::login(
                    StatusCode::UNAUTHORIZED,
                    &app.app_id,
                    user_name,
                    Some("Wrong user name or password."),
                )
            }
        }
        Some(_) => page::error(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The login form was sent with an unknown decision.",
        ),
    }
}

/// Issues an auth_key for `user_name` and sends the browser back to the app with it.
fn approve(shared: &Shared, app: &App, user_name: &str) -> Response {
    let issued = shared
        .registry()
        .issue_auth_key(&app.app_id, user_name, shared.now());
    match issued {
        Ok(auth_key) => {
            tracing::debug!(app_id = %app.app_id, user_name, "the person approved the app");
            redirect(app, "auth_key", &auth_key)
        }
        Err(_) => page::error(
            StatusCode::BAD_REQUEST,
            "Unknown user",
            &format!("There is no Kvixi user named \"{user_name}\"."),
        ),
    }
}

fn unknown_app() -> Response {
    page::error(
        StatusCode::BAD_REQUEST,
        "Unknown application",
        "The application you are trying to log in to doesn't exist or has been disabled.",
    )
}

/// `303 See Other` to the app's redirect URL with `name=value` appended to its query.
fn redirect(app: &App, name: &str, value: &str) -> Response {
    let Ok(mut target) = Url::parse(&app.redirect_url) else {
        return page::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Misconfigured application",
            "The application's registered redirect URL is not an absolute URL.",
        );
    };
    target.query_pairs_mut().append_pair(name, value);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, target.as_str()),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(app: &App) -> String {
        let response = redirect(app, "auth_key", "k y&z");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn redirect_appends_to_an_existing_query() {
        let app = App::new("a", "s", "http://127.0.0.1:3000/cb?from=kvixi");
        assert_eq!(
            location(&app),
            "http://127.0.0.1:3000/cb?from=kvixi&auth_key=k+y%26z"
        );
    }

    #[test]
    fn redirect_starts_a_query_when_there_is_none() {
        let app = App::new("a", "s", "http://127.0.0.1:3000/cb");
        assert_eq!(location(&app), "http://127.0.0.1:3000/cb?auth_key=k+y%26z");
    }

    #[test]
    fn unparseable_redirect_url_is_a_server_error() {
        let app = App::new("a", "s", "/relative/cb");
        assert_eq!(
            redirect(&app, "auth_key", "k").status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
