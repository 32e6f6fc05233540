//! Fault injection.

use std::time::{Duration, Instant};

use kvixi_mock::fixture::ALICE;
use kvixi_mock::{Endpoint, Fault};
use reqwest::StatusCode;

use crate::common::{APP_ID, APP_SECRET, start};

#[tokio::test]
async fn delay_fault_waits_then_answers_normally() {
    let h = start().await;
    h.mock.inject_fault(
        Endpoint::Authorize,
        Fault::Delay(Duration::from_millis(300)),
    );
    let auth_key = h.approve(ALICE).await;
    let started = Instant::now();
    let (_, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn status_fault_answers_that_status() {
    let h = start().await;
    h.mock.inject_fault(Endpoint::UserInfo, Fault::Status(500));
    let response = h.get("/api/get_user_info?access_token=x").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    h.mock.inject_fault(Endpoint::UserInfo, Fault::Status(503));
    let response = h.get("/api/get_user_info?access_token=x").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn malformed_json_fault_answers_200_with_a_body_that_is_not_json() {
    let h = start().await;
    h.mock
        .inject_fault(Endpoint::Authorize, Fault::MalformedJson);
    let response = h
        .get("/api/authorize?app_id=a&app_secret=b&auth_key=c")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.bytes().await.unwrap();
    assert!(!body.is_empty());
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
}

#[tokio::test]
async fn oversized_body_fault_streams_exactly_that_many_bytes() {
    let h = start().await;
    let size = 5 * 1024 * 1024 + 3;
    h.mock
        .inject_fault(Endpoint::UserInfo, Fault::OversizedBody(size));
    let mut response = h.get("/api/get_user_info?access_token=x").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut total = 0;
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        if total == 0 {
            assert!(chunk.starts_with(b"{\""));
        }
        total += chunk.len();
        chunks += 1;
    }
    assert_eq!(total, size);
    assert!(chunks > 1, "the body was not streamed");
}

#[tokio::test]
async fn body_fault_answers_exactly_that_body() {
    let h = start().await;
    h.mock
        .inject_fault(Endpoint::UserInfo, Fault::Body("[]".to_owned()));
    let response = h.get("/api/get_user_info?access_token=x").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn faulted_authorize_does_not_consume_the_auth_key() {
    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    h.mock.inject_fault(Endpoint::Authorize, Fault::Status(500));
    let response = h
        .http
        .get(h.url("/api/authorize"))
        .query(&[
            ("app_id", APP_ID),
            ("app_secret", APP_SECRET),
            ("auth_key", &auth_key),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    h.mock.clear_fault(Endpoint::Authorize);
    let (_, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn faults_stay_until_cleared_and_only_affect_their_endpoint() {
    let h = start().await;
    h.mock.inject_fault(Endpoint::OAuth, Fault::Status(502));
    h.mock.inject_fault(Endpoint::UserInfo, Fault::Status(500));
    for _ in 0..2 {
        let response = h.get(&format!("/api/oauth?app_id={APP_ID}")).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    }
    let (status, _) = h.authorize(APP_ID, APP_SECRET, "x").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the authorize endpoint was not faulted"
    );

    h.mock.clear_fault(Endpoint::OAuth);
    assert_eq!(
        h.get(&format!("/api/oauth?app_id={APP_ID}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        h.get("/api/get_user_info?access_token=x").await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    h.mock.clear_faults();
    assert_eq!(
        h.get("/api/get_user_info?access_token=x").await.status(),
        StatusCode::OK
    );
}
