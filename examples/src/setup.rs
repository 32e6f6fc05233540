//! What every example binary does before serving: read the environment, start the
//! embedded emulator when no real Kvixi app is configured, build the flow.

use std::net::SocketAddr;

use kvixi_core::{Config, Kvixi};
use kvixi_mock::{App, Emulator};
use rand::RngCore;

/// App id the embedded emulator registers.
pub const DEMO_APP_ID: &str = "kvixi-demo";

/// A configured example, ready to serve.
pub struct Example {
    /// The login flow.
    pub kvixi: Kvixi,
    /// Where the app listens (`KVIXI_EXAMPLE_ADDR`, default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// The app's public URL (`KVIXI_PUBLIC_URL`, default `http://localhost:{port}`).
    pub public_url: String,
    /// The embedded emulator, when `KVIXI_APP_ID` is not set. Keep it alive.
    pub emulator: Option<Emulator>,
}

/// Reads the environment and starts the embedded emulator if needed. Logs go to stderr,
/// filtered by `RUST_LOG` (default `info`).
pub async fn from_env() -> Result<Example, Box<dyn std::error::Error>> {
    init_tracing();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let addr: SocketAddr = var("KVIXI_EXAMPLE_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(|e| format!("KVIXI_EXAMPLE_ADDR is not an address like 127.0.0.1:3000: {e}"))?;
    let public_url = var("KVIXI_PUBLIC_URL")
        .unwrap_or_else(|| format!("http://localhost:{}", addr.port()))
        .trim_end_matches('/')
        .to_owned();

    if var("KVIXI_APP_ID").is_some() {
        let kvixi = Kvixi::new(Config::from_env()?)?;
        return Ok(Example {
            kvixi,
            addr,
            public_url,
            emulator: None,
        });
    }

    // No real app: register one with the embedded emulator, under a secret made for
    // this run and never printed.
    let redirect_url = format!("{public_url}/auth/kvixi/callback");
    let mut secret_bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut secret_bytes);
    let secret: String = secret_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mock_addr = var("KVIXI_MOCK_ADDR").unwrap_or_else(|| "127.0.0.1:8787".into());
    let emulator = Emulator::builder()
        .app(App::new(DEMO_APP_ID, &secret, &redirect_url))
        .start(mock_addr.as_str())
        .await
        .map_err(|e| {
            format!(
                "could not start the embedded Kvixi emulator on {mock_addr} (KVIXI_MOCK_ADDR): {e}"
            )
        })?;
    let config = Config::builder(DEMO_APP_ID, secret, redirect_url)
        .base_url(emulator.base_url())
        .build()?;
    Ok(Example {
        kvixi: Kvixi::new(config)?,
        addr,
        public_url,
        emulator: Some(emulator),
    })
}

impl Example {
    /// Prints where to go and, with the emulator, whom to log in as.
    pub fn announce(&self, framework: &str) {
        println!("kvixi-rs {framework} example: open {}/", self.public_url);
        match &self.emulator {
            Some(emulator) => {
                println!(
                    "Kvixi emulator at {} (offline; set KVIXI_APP_ID to use a real app)",
                    emulator.base_url()
                );
                println!("Log in as one of:");
                for (name, password) in [
                    (
                        kvixi_mock::fixture::ALICE,
                        kvixi_mock::fixture::ALICE_PASSWORD,
                    ),
                    (kvixi_mock::fixture::BOB, kvixi_mock::fixture::BOB_PASSWORD),
                ] {
                    println!("  user name {name:<8} password {password}");
                }
            }
            None => println!("Using Kvixi at {}", self.kvixi.config().base_url()),
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
