//! The emulator's logs never hold a secret. In a test binary of its own: tracing caches
//! per call site whether anyone listens, and a test running in parallel without a
//! subscriber can make that cache say "no one" for this test's thread-local subscriber.

#[path = "api/common.rs"]
#[allow(dead_code)]
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{APP_ID, APP_SECRET, start};
use kvixi_mock::fixture::ALICE;

/// A log sink for the test's own thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime keeps the server on this thread, under the thread-local subscriber.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_secrets_auth_keys_or_tokens() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("kvixi_mock=trace"))
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = start().await;
    let auth_key = h.approve(ALICE).await;
    let (_, body) = h.authorize(APP_ID, APP_SECRET, &auth_key).await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    h.authorize(APP_ID, "wrong-secret-value", &auth_key).await;
    h.user_info(&token).await;
    h.post_login(&[
        ("app_id", APP_ID),
        ("user_name", ALICE),
        ("password", "typed-password"),
    ])
    .await;
    h.mock.shutdown().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("/api/authorize"),
        "no request was logged:\n{logs}"
    );
    assert!(logs.contains("/api/get_user_info"));
    for secret in [
        APP_SECRET,
        "wrong-secret-value",
        &auth_key,
        &token,
        "typed-password",
        "?",
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain {secret:?}:\n{logs}"
        );
    }
}
