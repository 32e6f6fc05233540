//! Step 2: exchanging an auth_key for an access token.

use std::time::Duration;

use kvixi_mock::fixture::{ALICE, BOB};
use kvixi_mock::{App, Error};
use reqwest::StatusCode;

use crate::common::{APP_ID, APP_SECRET, api_error, start};

#[tokio::test]
async fn auth_key_exchanges_for_an_access_token() {
    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    let (status, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 22);
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let state = h.mock.state();
    assert!(state.auth_keys.is_empty(), "the auth_key was not consumed");
    assert_eq!(state.access_tokens, vec![token.to_owned()]);
}

#[tokio::test]
async fn reused_auth_key_is_refused() {
    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    let (status, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, api_error("Bad Request, invalid auth_key"));
}

#[tokio::test]
async fn unknown_auth_key_is_refused() {
    let h = start().await;
    let (_, body) = h.authorize(APP_ID, APP_SECRET, "made-up").await;
    assert_eq!(body, api_error("Bad Request, invalid auth_key"));
}

#[tokio::test]
async fn wrong_secret_is_refused_without_consuming_the_key() {
    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    let (status, body) = h.authorize(APP_ID, "wrong-secret", &auth_key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, api_error("Bad Request, invalid app_secret"));
    let (_, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn unknown_app_is_refused() {
    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    let (_, body) = h.authorize("other-app", APP_SECRET, &auth_key).await;
    assert_eq!(body, api_error("Bad Request, invalid app_id"));
}

#[tokio::test]
async fn auth_key_of_another_app_is_refused() {
    let h = start().await;
    h.mock.register_app(App::new(
        "second-app",
        "second-secret",
        "http://127.0.0.1:4000/cb",
    ));
    let auth_key = h.approve(ALICE).await;
    let (_, body) = h.authorize("second-app", "second-secret", &auth_key).await;
    assert_eq!(body, api_error("Bad Request, invalid auth_key"));
}

#[tokio::test]
async fn missing_or_empty_parameters_are_refused() {
    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    for query in [
        String::new(),
        format!("?app_id={APP_ID}&app_secret={APP_SECRET}"),
        format!("?app_id={APP_ID}&auth_key={auth_key}"),
        format!("?app_secret={APP_SECRET}&auth_key={auth_key}"),
        format!("?app_id=&app_secret={APP_SECRET}&auth_key={auth_key}"),
        format!("?app_id={APP_ID}&app_secret={APP_SECRET}&auth_key="),
    ] {
        let response = h.get(&format!("/api/authorize{query}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            api_error("Bad Request, invalid parameters"),
            "{query}"
        );
    }
    assert_eq!(
        h.mock.state().auth_keys,
        vec![auth_key],
        "a refused call consumed the key"
    );
}

#[tokio::test]
async fn auth_key_expires_after_ten_minutes_unused() {
    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    h.mock.advance_clock(Duration::from_secs(11 * 60));
    let (_, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert_eq!(body, api_error("Bad Request, invalid auth_key"));
    assert!(h.mock.state().auth_keys.is_empty());
}

#[tokio::test]
async fn auth_key_is_still_good_just_before_ten_minutes() {
    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    h.mock.advance_clock(Duration::from_secs(9 * 60 + 50));
    let (_, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn second_exchange_answers_the_same_token_while_it_is_valid() {
    let h = start().await;
    let first = h.log_in(ALICE).await;
    let second = h.log_in(ALICE).await;
    assert_eq!(first, second);
    let bobs = h.log_in(BOB).await;
    assert_ne!(first, bobs);
}

#[tokio::test]
async fn exchange_after_the_token_expired_answers_a_new_token() {
    let h = start().await;
    let first = h.log_in(ALICE).await;
    h.mock.advance_clock(Duration::from_secs(3600));
    let second = h.log_in(ALICE).await;
    assert_ne!(first, second);
    let (_, body) = h.user_info(&second).await;
    assert_eq!(body["user_info"]["user_name"], ALICE);
}

#[tokio::test]
async fn scripted_auth_key_exchanges_like_an_approved_one() {
    let h = start().await;
    let auth_key = h.mock.issue_auth_key(APP_ID, ALICE).unwrap();
    let (_, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn scripted_auth_key_for_unknown_app_or_user_is_an_error() {
    let h = start().await;
    assert!(matches!(
        h.mock.issue_auth_key("nope", ALICE),
        Err(Error::UnknownApp { .. })
    ));
    assert!(matches!(
        h.mock.issue_auth_key(APP_ID, "nobody"),
        Err(Error::UnknownUser { .. })
    ));
}
