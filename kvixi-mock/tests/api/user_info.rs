//! Step 3: reading the profile, token expiry and strict mode.

use std::time::Duration;

use kvixi_mock::fixture::{ALICE, ALICE_USER_ID, BOB, BOB_USER_ID};
use kvixi_mock::{Emulator, User};
use reqwest::StatusCode;

use crate::common::{APP_ID, APP_SECRET, api_error, start, start_with};

const FIELDS: [&str; 16] = [
    "user_id",
    "user_name",
    "user_email",
    "user_firstname",
    "user_lastname",
    "user_gender",
    "user_birthdate",
    "user_picture",
    "user_cover",
    "user_registered",
    "user_verified",
    "user_relationship",
    "user_biography",
    "user_website",
    "profile_picture",
    "profile_cover",
];

#[tokio::test]
async fn alice_has_every_field_filled_and_absolute_picture_urls() {
    let h = start().await;
    let token = h.log_in(ALICE).await;
    let (status, body) = h.user_info(&token).await;
    assert_eq!(status, StatusCode::OK);
    let info = body["user_info"].as_object().expect("a user_info object");
    assert_eq!(info.len(), FIELDS.len(), "{body}");
    for field in FIELDS {
        let value = info[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} is not a string"));
        assert!(!value.is_empty(), "{field} is empty");
    }
    assert_eq!(info["user_id"], ALICE_USER_ID);
    assert!(info.get("password").is_none());
    let picture = format!("{}/_mock/avatar/alice.svg", h.mock.base_url());
    assert_eq!(info["user_picture"], picture.as_str());
    assert_eq!(info["profile_picture"], picture.as_str());
    assert!(info["user_biography"].as_str().unwrap().contains("<b>"));

    let avatar = h.get("/_mock/avatar/alice.svg").await;
    assert_eq!(avatar.status(), StatusCode::OK);
    assert_eq!(avatar.headers()["content-type"], "image/svg+xml");
    assert!(avatar.text().await.unwrap().contains(">A</text>"));
}

#[tokio::test]
async fn bob_answers_mostly_empty_strings() {
    let h = start().await;
    let token = h.log_in(BOB).await;
    let (_, body) = h.user_info(&token).await;
    let info = &body["user_info"];
    assert_eq!(info["user_id"], BOB_USER_ID);
    assert_eq!(info["user_name"], BOB);
    assert_eq!(info["user_email"], "");
    assert_eq!(info["user_picture"], "");
    assert_eq!(info["user_verified"], "0");
}

#[tokio::test]
async fn user_added_at_runtime_can_log_in() {
    let h = start().await;
    h.mock.add_user(User {
        user_email: "carol@example.com".to_owned(),
        ..User::new("2001", "carol", "pw")
    });
    let token = h.log_in("carol").await;
    let (_, body) = h.user_info(&token).await;
    assert_eq!(body["user_info"]["user_email"], "carol@example.com");
}

#[tokio::test]
async fn missing_access_token_is_refused() {
    let h = start().await;
    let response = h.get("/api/get_user_info").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, api_error("Bad Request, invalid parameters"));
}

#[tokio::test]
async fn unknown_access_token_is_refused() {
    let h = start().await;
    let (status, body) = h.user_info("made-up").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, api_error("Bad Request, invalid access_token"));
}

#[tokio::test]
async fn access_token_expires_after_an_hour_by_default() {
    let h = start().await;
    let token = h.log_in(ALICE).await;
    h.mock.advance_clock(Duration::from_secs(3599));
    let (_, body) = h.user_info(&token).await;
    assert!(body["user_info"].is_object(), "{body}");
    h.mock.advance_clock(Duration::from_secs(1));
    let (status, body) = h.user_info(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, api_error("Bad Request, expired access_token"));
}

#[tokio::test]
async fn access_token_lifetime_is_configurable() {
    let h = start_with(Emulator::builder().token_lifetime(Duration::from_secs(60))).await;
    let token = h.log_in(ALICE).await;
    h.mock.advance_clock(Duration::from_secs(61));
    let (_, body) = h.user_info(&token).await;
    assert_eq!(body, api_error("Bad Request, expired access_token"));
}

#[tokio::test]
async fn strict_mode_answers_errors_with_4xx() {
    let h = start_with(Emulator::builder().strict(true)).await;
    let auth_key = h.approve(ALICE).await;

    let (status, body) = h.authorize(APP_ID, "wrong", &auth_key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, api_error("Bad Request, invalid app_secret"));
    let response = h.get("/api/authorize").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let (status, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, _) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = h.user_info("made-up").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, api_error("Bad Request, invalid access_token"));
    let (status, _) = h.user_info(&token).await;
    assert_eq!(status, StatusCode::OK);
    h.mock.advance_clock(Duration::from_secs(3600));
    let (status, body) = h.user_info(&token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, api_error("Bad Request, expired access_token"));
    assert_eq!(
        h.get("/api/get_user_info").await.status(),
        StatusCode::BAD_REQUEST
    );
}
