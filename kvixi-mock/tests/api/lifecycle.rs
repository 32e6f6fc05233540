//! Starting, stopping and fixtures.

use kvixi_mock::{Emulator, Error, Fixture};
use reqwest::StatusCode;

use crate::common::{http_client, start, start_with};

#[tokio::test]
async fn non_loopback_bind_is_refused() {
    let err = Emulator::builder().start("0.0.0.0:0").await.unwrap_err();
    assert!(matches!(err, Error::NonLoopbackAddress { .. }), "{err}");
    assert!(err.to_string().contains("allow_non_loopback"), "{err}");

    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = Emulator::builder().start_on(listener).await.unwrap_err();
    assert!(matches!(err, Error::NonLoopbackAddress { .. }), "{err}");
}

#[tokio::test]
async fn non_loopback_bind_is_allowed_when_asked_for() {
    let mock = Emulator::builder()
        .allow_non_loopback(true)
        .start("0.0.0.0:0")
        .await
        .unwrap();
    assert!(
        mock.base_url().starts_with("http://127.0.0.1:"),
        "{}",
        mock.base_url()
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn localhost_and_any_127_address_are_accepted() {
    for addr in ["localhost:0", "127.0.0.1:0"] {
        let mock = Emulator::builder().start(addr).await.unwrap();
        assert!(mock.addr().ip().is_loopback());
        assert!(!mock.base_url().ends_with('/'));
        mock.shutdown().await;
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() {
    let h = start().await;
    assert_eq!(h.get("/_mock/state").await.status(), StatusCode::OK);
    h.mock.shutdown().await;
    h.mock.shutdown().await; // idempotent
    let fresh = http_client();
    assert!(fresh.get(h.url("/_mock/state")).send().await.is_err());
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let mock = Emulator::builder().start("127.0.0.1:0").await.unwrap();
    let url = format!("{}/_mock/state", mock.base_url());
    let clone = mock.clone();
    drop(mock);
    assert!(
        http_client().get(&url).send().await.is_ok(),
        "a clone is still alive"
    );
    drop(clone);
    let mut refused = false;
    for _ in 0..50 {
        if http_client().get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        refused,
        "the server still answers after the last handle was dropped"
    );
}

#[tokio::test]
async fn example_toml_fixture_loads_and_serves_its_users() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/example.toml");
    let fixture = Fixture::from_path(path).unwrap();
    assert_eq!(fixture.apps[0].app_id, "kvixi-demo");
    assert_eq!(fixture.users.len(), 3);
    let h = start_with(Emulator::builder().fixture(fixture)).await;
    let token = h.log_in("carol").await;
    let (_, body) = h.user_info(&token).await;
    assert_eq!(
        body["user_info"]["user_picture"],
        format!("{}/_mock/avatar/carol.svg", h.mock.base_url()).as_str()
    );
}

#[tokio::test]
async fn json_fixture_file_loads() {
    let path = std::env::temp_dir().join(format!("kvixi-mock-fixture-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"apps": [{"app_id": "j", "app_secret": "js", "redirect_url": "http://127.0.0.1:1/cb"}],
            "users": [{"user_id": "9", "user_name": "dave", "password": "pw"}]}"#,
    )
    .unwrap();
    let loaded = Fixture::from_path(&path);
    let _ = std::fs::remove_file(&path);
    let fixture = loaded.unwrap();
    assert_eq!(fixture.apps[0].app_secret, "js");
    assert_eq!(fixture.users[0].user_name, "dave");
}

#[tokio::test]
async fn missing_fixture_file_is_a_clear_error() {
    let err = Fixture::from_path("/nonexistent/kvixi.toml").unwrap_err();
    assert!(matches!(err, Error::FixtureRead { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/kvixi.toml"));
}
