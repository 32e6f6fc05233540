//! The harness every test uses: an emulator with one registered app and an HTTP client that
//! does not follow redirects.

use kvixi_mock::{App, Emulator, EmulatorBuilder};
use reqwest::StatusCode;
use serde_json::Value;

pub const APP_ID: &str = "test-app";
pub const APP_SECRET: &str = "test-app-secret";
pub const REDIRECT_URL: &str = "http://127.0.0.1:3000/auth/kvixi/callback";

pub struct Harness {
    pub mock: Emulator,
    pub http: reqwest::Client,
}

/// An HTTP client that shows redirects instead of following them.
pub fn http_client() -> reqwest::Client {
    // Plain http:// needs no TLS, but reqwest wants a crypto provider to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// The default emulator with the test app registered.
pub async fn start() -> Harness {
    start_with(Emulator::builder()).await
}

/// An emulator from `builder`, with the test app registered.
pub async fn start_with(builder: EmulatorBuilder) -> Harness {
    let mock = builder
        .app(App::new(APP_ID, APP_SECRET, REDIRECT_URL))
        .start("127.0.0.1:0")
        .await
        .expect("emulator starts");
    Harness {
        mock,
        http: http_client(),
    }
}

impl Harness {
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.mock.base_url())
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_login(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/api/oauth"))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// Approves the test app as `user_name` through `mock_user`; answers the auth_key.
    pub async fn approve(&self, user_name: &str) -> String {
        let response = self
            .get(&format!("/api/oauth?app_id={APP_ID}&mock_user={user_name}"))
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        query_param(&location(&response), "auth_key").expect("auth_key in the redirect")
    }

    pub async fn authorize(
        &self,
        app_id: &str,
        app_secret: &str,
        auth_key: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url("/api/authorize"))
            .query(&[
                ("app_id", app_id),
                ("app_secret", app_secret),
                ("auth_key", auth_key),
            ])
            .send()
            .await
            .expect("request");
        json(response).await
    }

    pub async fn user_info(&self, access_token: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url("/api/get_user_info"))
            .query(&[("access_token", access_token)])
            .send()
            .await
            .expect("request");
        json(response).await
    }

    /// Steps 1 and 2 for `user_name`; answers the access token.
    pub async fn log_in(&self, user_name: &str) -> String {
        let auth_key = self.approve(user_name).await;
        let (_, body) = self.authorize(APP_ID, APP_SECRET, &auth_key).await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }
}

pub async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("ASCII location")
        .to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .expect("absolute URL")
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The platform's error body.
pub fn api_error(message: &str) -> Value {
    serde_json::json!({ "error": true, "message": message })
}
