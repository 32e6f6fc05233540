//! `GET /_mock/state` and the library's `state()`.

use kvixi_mock::fixture::{ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD};
use kvixi_mock::{App, StateSnapshot};
use reqwest::StatusCode;

use crate::common::{APP_ID, APP_SECRET, REDIRECT_URL, start};

#[tokio::test]
async fn state_lists_apps_keys_tokens_and_users() {
    let h = start().await;
    let token = h.log_in(ALICE).await;
    let auth_key = h.approve(BOB).await;

    let response = h.get("/_mock/state").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["apps"],
        serde_json::json!([{ "app_id": APP_ID, "app_secret": APP_SECRET, "redirect_url": REDIRECT_URL }])
    );
    assert_eq!(body["auth_keys"], serde_json::json!([auth_key]));
    assert_eq!(body["access_tokens"], serde_json::json!([token]));
    let users = body["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["user_name"], ALICE);
    assert_eq!(users[1]["user_name"], BOB);

    let typed: StateSnapshot = serde_json::from_value(body).unwrap();
    assert_eq!(typed, h.mock.state());
}

#[tokio::test]
async fn state_never_shows_passwords() {
    let h = start().await;
    let text = h.get("/_mock/state").await.text().await.unwrap();
    assert!(!text.contains("password"), "{text}");
    assert!(!text.contains(ALICE_PASSWORD));
    assert!(!text.contains(BOB_PASSWORD));
}

#[tokio::test]
async fn app_registered_at_runtime_appears_and_replaces_same_id() {
    let h = start().await;
    h.mock
        .register_app(App::new(APP_ID, "rotated-secret", REDIRECT_URL));
    h.mock
        .register_app(App::new("second", "s2", "http://127.0.0.1:4000/cb"));
    let apps = h.mock.state().apps;
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0].app_secret, "rotated-secret");
    assert_eq!(apps[1].app_id, "second");
}

#[tokio::test]
async fn clock_endpoint_expires_tokens_from_another_process() {
    let h = start().await;
    let token = h.log_in(ALICE).await;
    let advanced = h
        .http
        .post(h.url("/_mock/clock?advance=3601"))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), StatusCode::NO_CONTENT);
    let (_, body) = h.user_info(&token).await;
    assert_eq!(body["message"], "Bad Request, expired access_token");
}
