//! A real browser through every example app: headless Chromium over WebDriver clicks
//! "Log in with Kvixi", types alice's credentials into the emulator's form, allows,
//! lands on the private page and logs out. Screenshots go to `target/e2e-screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use kvixi_e2e::{StartApp, TestApp, service};
use serde_json::json;

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("e2e-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

async fn browser(driver_port: u16) -> Client {
    let profile = tempdir();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1000,800",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let capabilities = capabilities
        .as_object()
        .cloned()
        .expect("capabilities are an object");
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("chromedriver starts a Chromium session")
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kvixi-e2e-chromium-{}-{}",
        std::process::id(),
        service::free_port()
    ));
    std::fs::create_dir_all(&dir).expect("profile folder");
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn text_of(client: &Client, id: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id} never appeared: {e}"))
        .text()
        .await
        .expect("element text")
}

/// The whole login a person would do, in `framework`'s example app.
async fn log_in_and_out_with_a_real_browser(framework: &str, start: StartApp) {
    let Some(driver) = service::chromedriver() else {
        return;
    };
    let app = TestApp::start(start).await;
    let client = browser(driver.port).await;

    client.goto(app.base.as_str()).await.expect("home page");
    shot(&client, &format!("{framework}-1-home")).await;
    client
        .find(Locator::Id("login"))
        .await
        .expect("a login button")
        .click()
        .await
        .expect("click login");

    // The emulator's login and consent page.
    let form = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("user_name"))
        .await
        .expect("the emulator's login form");
    form.send_keys(kvixi_mock::fixture::ALICE)
        .await
        .expect("type");
    client
        .find(Locator::Id("password"))
        .await
        .expect("password field")
        .send_keys(kvixi_mock::fixture::ALICE_PASSWORD)
        .await
        .expect("type");
    shot(&client, &format!("{framework}-2-kvixi-login")).await;
    client
        .find(Locator::Id("allow"))
        .await
        .expect("Allow button")
        .click()
        .await
        .expect("click Allow");

    // Back on the app, on the page the login button asked to return to.
    assert_eq!(text_of(&client, "user-name").await, "Alice Liddell");
    let url = client.current_url().await.expect("url");
    assert_eq!(url.path(), "/private", "{framework} returned to {url}");
    shot(&client, &format!("{framework}-3-logged-in")).await;

    client
        .find(Locator::Id("logout"))
        .await
        .expect("a logout button")
        .click()
        .await
        .expect("click logout");
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("login"))
        .await
        .expect("logged out, the login button is back");
    shot(&client, &format!("{framework}-4-logged-out")).await;
    client.close().await.expect("close the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_example_logs_alice_in_and_out_in_chromium() {
    log_in_and_out_with_a_real_browser("axum", kvixi_e2e::apps::axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_example_logs_alice_in_and_out_in_chromium() {
    log_in_and_out_with_a_real_browser("actix", kvixi_e2e::apps::actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocket_example_logs_alice_in_and_out_in_chromium() {
    log_in_and_out_with_a_real_browser("rocket", kvixi_e2e::apps::rocket).await;
}
