//! Every scenario against the Rocket adapter's example app.

use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Rocket 0.5 binds its own listener: free the port, launch on it, and return once it
/// accepts connections, so that no scenario races the bind.
fn start(kvixi: kvixi_core::Kvixi, listener: std::net::TcpListener) {
    let port = listener.local_addr().expect("bound").port();
    drop(listener);
    let figment = rocket::figment::Figment::from(rocket::Config::debug_default())
        .merge(("address", "127.0.0.1"))
        .merge(("port", port))
        .merge(("log_level", "off"))
        .merge(("secret_key", vec![42u8; 64]))
        .merge(("workers", 2))
        .merge(("shutdown.ctrlc", false))
        .merge(("cli_colors", false));
    let app = kvixi_examples::rocket_app::rocket(kvixi, figment);
    tokio::spawn(async move {
        if let Err(error) = app.launch().await {
            panic!("the Rocket app did not launch: {error}");
        }
    });
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the Rocket app never listened");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

kvixi_e2e::scenarios!(start);
