//! `kvixi-mock`: runs the Kvixi emulator on loopback until Ctrl-C.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kvixi_mock::{App, Emulator, Fixture};
use tracing_subscriber::EnvFilter;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "kvixi-mock",
    version,
    about = "Runs a Kvixi API emulator for offline development"
)]
struct Args {
    /// Address to listen on (loopback only unless --allow-non-loopback).
    #[arg(long, env = "KVIXI_MOCK_ADDR", default_value = "127.0.0.1:8787")]
    addr: String,

    /// Apps and users to start with, a `.toml` or `.json` file (default: alice and bob).
    #[arg(long, env = "KVIXI_MOCK_FIXTURE", value_name = "FILE")]
    fixture: Option<PathBuf>,

    /// Access token lifetime in seconds (the platform's code uses 60).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    token_lifetime: u64,

    /// Answer API errors with HTTP 400/401 instead of the platform's HTTP 200.
    #[arg(long)]
    strict: bool,

    /// Allow listening on an address that is not loopback.
    #[arg(long)]
    allow_non_loopback: bool,
}

/// Registered when the fixture has no app, so the emulator is usable out of the box.
fn demo_app() -> App {
    App::new(
        "kvixi-demo",
        "kvixi-demo-secret",
        "http://localhost:3000/auth/kvixi/callback",
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kvixi-mock: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), kvixi_mock::Error> {
    let mut fixture = match &args.fixture {
        Some(path) => Fixture::from_path(path)?,
        None => Fixture::default(),
    };
    if fixture.apps.is_empty() {
        fixture.apps.push(demo_app());
    }
    // Passwords are not part of the emulator's state: keep them for the banner.
    let users = fixture.users.clone();
    let mock = Emulator::builder()
        .fixture(fixture)
        .token_lifetime(Duration::from_secs(args.token_lifetime))
        .strict(args.strict)
        .allow_non_loopback(args.allow_non_loopback)
        .start(args.addr.as_str())
        .await?;

    // The standalone tool prints credentials so a developer can use them; the library never does.
    let state = mock.state();
    println!("Kvixi emulator running at {}", mock.base_url());
    if let Some(app) = state.apps.first() {
        println!("Login page:  {}", mock.oauth_url(&app.app_id));
    }
    println!("State:       {}/_mock/state", mock.base_url());
    println!("\nApps:");
    for app in &state.apps {
        println!("  app_id       {}", app.app_id);
        println!("  app_secret   {}", app.app_secret);
        println!("  redirect_url {}\n", app.redirect_url);
    }
    println!("Users (name / password):");
    for user in &users {
        println!("  {} / {}", user.user_name, user.password);
    }
    println!("\nPress Ctrl-C to stop.");

    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot listen for Ctrl-C; stopping");
    }
    mock.shutdown().await;
    Ok(())
}
