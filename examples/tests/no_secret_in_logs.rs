//! Runs each example binary at `RUST_LOG=trace` through login, `/me`, a call with the
//! token, token expiry and logout, and checks that nothing the process printed (the app
//! and its embedded emulator) contains the app secret, the auth_key or the access token.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{StatusCode, header};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether the example started: it printed its banner (which it does once it listens)
/// and its port answers. `Err` with its output when it exited instead.
///
/// A port that answers is not enough. The ports are picked free before the example
/// starts, and the three tests run at once: another test's process can take one of them
/// first, and then the port answers while this example has exited with "cannot listen"
/// (CI saw that as a refused login). A connect that meets itself (same source and
/// destination port) does not count either.
fn wait_until_started(child: &mut Child, port: u16, out: &Path) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // Read after the exit: all it printed.
            let printed = std::fs::read_to_string(out).unwrap_or_default();
            return Err(format!("the example exited ({status}):\n{printed}"));
        }
        let printed = std::fs::read_to_string(out).unwrap_or_default();
        let listens = TcpStream::connect(("127.0.0.1", port))
            .and_then(|s| Ok(s.local_addr()? != s.peer_addr()?))
            .unwrap_or(false);
        if listens && printed.contains(" example: open http://127.0.0.1:") {
            return Ok(());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the example never listened:\n{printed}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .expect("ASCII Location")
        .to_owned()
}

/// Everything a person does with the example, recorded; returns the secrets seen.
async fn exercise(app: &str, mock: &str) -> Vec<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let html = "text/html";
    let to_kvixi = http
        .get(format!("{app}/auth/kvixi/login?return_to=%2Fprivate"))
        .header(header::ACCEPT, html)
        .send()
        .await
        .expect("login");
    assert_eq!(to_kvixi.status(), StatusCode::SEE_OTHER);
    let approved = http
        .get(format!("{}&mock_user=alice", location(&to_kvixi)))
        .send()
        .await
        .expect("emulator");
    let callback = location(&approved);
    let auth_key = url::Url::parse(&callback)
        .expect("callback URL")
        .query_pairs()
        .find(|(k, _)| k == "auth_key")
        .map(|(_, v)| v.into_owned())
        .expect("an auth_key");
    let landed = http
        .get(&callback)
        .header(header::ACCEPT, html)
        .send()
        .await
        .expect("callback");
    assert_eq!(landed.status(), StatusCode::SEE_OTHER, "logged in");
    let json = |path: &str| {
        http.get(format!("{app}{path}"))
            .header(header::ACCEPT, "application/json")
            .send()
    };
    assert_eq!(json("/me").await.expect("/me").status(), StatusCode::OK);
    assert_eq!(
        json("/me/fresh").await.expect("fresh").status(),
        StatusCode::OK
    );

    let state: serde_json::Value = http
        .get(format!("{mock}/_mock/state"))
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("state JSON");
    let advanced = http
        .post(format!("{mock}/_mock/clock?advance=3601"))
        .send()
        .await
        .expect("clock");
    assert_eq!(advanced.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        json("/me/fresh").await.expect("fresh").status(),
        StatusCode::UNAUTHORIZED,
        "Kvixi says the token expired"
    );
    let logout = http
        .post(format!("{app}/auth/kvixi/logout"))
        .header(header::ACCEPT, html)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);

    let mut secrets = vec![auth_key];
    for app in state["apps"].as_array().into_iter().flatten() {
        secrets.extend(app["app_secret"].as_str().map(str::to_owned));
    }
    for token in state["access_tokens"].as_array().into_iter().flatten() {
        secrets.extend(token.as_str().map(str::to_owned));
    }
    assert!(
        secrets.len() >= 3,
        "auth_key, secret and token: {}",
        secrets.len()
    );
    secrets
}

/// The example, started at `RUST_LOG=trace` on two free ports with its output in a
/// file: (process, app port, mock port, output file, its directory). A start that lost
/// a port to another process is tried again on new ports, twice at most.
fn start_example(binary: &str) -> (Child, u16, u16, PathBuf, PathBuf) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let (app_port, mock_port) = (free_port(), free_port());
        let name = format!("kvixi-log-{}-{app_port}", std::process::id());
        let out = std::env::temp_dir().join(format!("{name}.txt"));
        let file = File::create(&out).expect("log file");
        // The example's SQLite file and key, out of the checkout.
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("a directory for the example");
        let mut child = Command::new(binary)
            .env_remove("KVIXI_APP_ID")
            .env_remove("KVIXI_REDIS_URL")
            .env_remove("KVIXI_DATABASE_URL")
            .env("KVIXI_EXAMPLE_DIR", &dir)
            .env("KVIXI_EXAMPLE_ADDR", format!("127.0.0.1:{app_port}"))
            .env("KVIXI_PUBLIC_URL", format!("http://127.0.0.1:{app_port}"))
            .env("KVIXI_MOCK_ADDR", format!("127.0.0.1:{mock_port}"))
            .env("RUST_LOG", "trace")
            .env_remove("ROCKET_LOG_LEVEL")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("the example starts");
        match wait_until_started(&mut child, app_port, &out) {
            Ok(()) => return (child, app_port, mock_port, out, dir),
            Err(failure) => {
                let _ = std::fs::remove_file(&out);
                let _ = std::fs::remove_dir_all(&dir);
                // Only a lost port (the app's or the emulator's) is worth another try.
                let lost_port = failure.contains("cannot listen")
                    || failure.contains("could not start the embedded Kvixi emulator");
                assert!(lost_port, "{failure}");
                failures.push(failure);
            }
        }
    }
    panic!("the example could not start: {failures:#?}");
}

async fn check_example(binary: &str) {
    let (mut child, app_port, mock_port, out, dir) = start_example(binary);
    let secrets = exercise(
        &format!("http://127.0.0.1:{app_port}"),
        &format!("http://127.0.0.1:{mock_port}"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = child.kill();
    let _ = child.wait();

    let printed = std::fs::read_to_string(&out).expect("captured output");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_dir_all(&dir);
    let name = Path::new(binary)
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    assert!(
        printed.contains("kvixi login succeeded") && printed.lines().count() > 50,
        "{name} printed too little to prove anything ({} lines)",
        printed.lines().count()
    );
    for secret in &secrets {
        assert!(
            !printed.contains(secret.as_str()),
            "{name} printed a secret ({}…) at RUST_LOG=trace",
            &secret[..secret.len().min(4)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_example_prints_no_secret_at_trace_level() {
    check_example(env!("CARGO_BIN_EXE_axum")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocket_example_prints_no_secret_at_trace_level() {
    check_example(env!("CARGO_BIN_EXE_rocket")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_example_prints_no_secret_at_trace_level() {
    check_example(env!("CARGO_BIN_EXE_actix")).await;
}
