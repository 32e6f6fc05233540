//! Step 1: the login-and-consent page.

use kvixi_mock::App;
use kvixi_mock::fixture::{ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD};
use reqwest::StatusCode;

use crate::common::{APP_ID, REDIRECT_URL, location, query_param, start};

#[tokio::test]
async fn login_page_shows_the_form_with_stable_ids() {
    let h = start().await;
    let response = h.get(&format!("/api/oauth?app_id={APP_ID}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    for needle in [
        r#"<form method="post" action="/api/oauth">"#,
        r#"<input type="hidden" name="app_id" value="test-app">"#,
        r#"id="user_name" name="user_name""#,
        r#"id="password" type="password" name="password""#,
        r#"<button id="allow" type="submit" name="decision" value="allow">Allow</button>"#,
        r#"<button id="deny" type="submit" name="decision" value="deny">Deny</button>"#,
        APP_ID,
    ] {
        assert!(page.contains(needle), "the page lacks {needle}:\n{page}");
    }
}

#[tokio::test]
async fn login_page_without_app_id_is_not_found() {
    let h = start().await;
    assert_eq!(h.get("/api/oauth").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        h.get("/api/oauth?app_id=").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn login_page_for_unknown_app_is_an_html_error() {
    let h = start().await;
    let response = h.get("/api/oauth?app_id=nope").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("doesn't exist or has been disabled") || page.contains("doesn&#x27;t"));
}

#[tokio::test]
async fn login_page_escapes_the_app_id() {
    let h = start().await;
    h.mock
        .register_app(App::new("<x>\"y", "s", "http://127.0.0.1:3000/cb"));
    let page = h
        .get("/api/oauth?app_id=%3Cx%3E%22y")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<x>"), "{page}");
    assert!(page.contains("&lt;x&gt;"), "{page}");
}

#[tokio::test]
async fn mock_user_approves_at_once_with_an_auth_key() {
    let h = start().await;
    let response = h
        .get(&format!("/api/oauth?app_id={APP_ID}&mock_user={ALICE}"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response);
    assert!(
        target.starts_with(&format!("{REDIRECT_URL}?auth_key=")),
        "{target}"
    );
    let auth_key = query_param(&target, "auth_key").unwrap();
    assert!(
        auth_key.len() >= 22,
        "an auth_key of {} chars is too short",
        auth_key.len()
    );
    assert!(
        auth_key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    );
    assert_eq!(h.mock.state().auth_keys, vec![auth_key]);
}

#[tokio::test]
async fn unknown_mock_user_is_an_html_error() {
    let h = start().await;
    let response = h
        .get(&format!("/api/oauth?app_id={APP_ID}&mock_user=nobody"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(h.mock.state().auth_keys.is_empty());
}

#[tokio::test]
async fn allowing_with_the_right_password_redirects_with_an_auth_key() {
    let h = start().await;
    let response = h
        .post_login(&[
            ("app_id", APP_ID),
            ("user_name", BOB),
            ("password", BOB_PASSWORD),
            ("decision", "allow"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let auth_key = query_param(&location(&response), "auth_key").unwrap();
    assert_eq!(h.mock.state().auth_keys, vec![auth_key]);
}

#[tokio::test]
async fn pressing_enter_without_a_decision_allows() {
    let h = start().await;
    let response = h
        .post_login(&[
            ("app_id", APP_ID),
            ("user_name", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(query_param(&location(&response), "auth_key").is_some());
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_with_401() {
    let h = start().await;
    let response = h
        .post_login(&[
            ("app_id", APP_ID),
            ("user_name", ALICE),
            ("password", "not-her-password"),
            ("decision", "allow"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"id="error""#), "{page}");
    assert!(page.contains("Wrong user name or password"), "{page}");
    assert!(
        page.contains(r#"value="alice""#),
        "user name not kept: {page}"
    );
    assert!(page.contains(r#"id="allow""#));
    assert!(
        !page.contains("not-her-password"),
        "the password was echoed back"
    );
    assert!(h.mock.state().auth_keys.is_empty());
}

#[tokio::test]
async fn unknown_user_shows_the_form_again_with_401() {
    let h = start().await;
    let response = h
        .post_login(&[
            ("app_id", APP_ID),
            ("user_name", "mallory"),
            ("password", "x"),
            ("decision", "allow"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn denying_redirects_with_access_denied() {
    let h = start().await;
    let response = h
        .post_login(&[
            ("app_id", APP_ID),
            ("user_name", ""),
            ("password", ""),
            ("decision", "deny"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        format!("{REDIRECT_URL}?error=access_denied")
    );
    assert!(h.mock.state().auth_keys.is_empty());
}

#[tokio::test]
async fn login_form_for_unknown_app_is_an_html_error() {
    let h = start().await;
    let response = h
        .post_login(&[
            ("app_id", "nope"),
            ("user_name", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn redirect_url_with_a_query_gets_the_auth_key_appended() {
    let h = start().await;
    h.mock.register_app(App::new(
        "with-query",
        "s",
        "http://127.0.0.1:3000/cb?tenant=a%20b",
    ));
    let response = h
        .get(&format!("/api/oauth?app_id=with-query&mock_user={ALICE}"))
        .await;
    let target = location(&response);
    assert!(
        target.starts_with("http://127.0.0.1:3000/cb?tenant=a%20b&auth_key="),
        "{target}"
    );
    assert_eq!(query_param(&target, "tenant").as_deref(), Some("a b"));
}
