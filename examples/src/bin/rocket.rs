//! `cargo run -p kvixi-examples --bin rocket`: the Rocket example with the embedded emulator.
//!
//! Listens on `KVIXI_EXAMPLE_ADDR`; Rocket's own `ROCKET_*` variables (and `Rocket.toml`)
//! apply on top. The `secret_key` of the private session cookie is new at each run unless
//! `ROCKET_SECRET_KEY` is set. Rocket's own log prints every request URI with its query
//! string, the callback's auth_key included, so it is off unless `ROCKET_LOG_LEVEL` asks
//! for it; the app logs through `tracing` (`RUST_LOG`).

use std::process::ExitCode;
use std::sync::Arc;

use rand::RngCore;
use rocket::error::ErrorKind;
use rocket::fairing::AdHoc;
use rocket::figment::providers::Env;

#[rocket::main]
async fn main() -> ExitCode {
    init_tracing();
    // The embedded emulator runs on this runtime: `example` lives until the end.
    let example = match kvixi_examples::setup::from_env().await {
        Ok(example) => Arc::new(example),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut secret_key = vec![0u8; 64];
    rand::rng().fill_bytes(&mut secret_key);
    let figment = rocket::Config::figment()
        .merge(("address", example.addr.ip()))
        .merge(("port", example.addr.port()))
        .merge(("secret_key", secret_key))
        .merge(("log_level", "off"))
        // Rocket's own variables win over the defaults above.
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global());
    let announced = example.clone();
    let app = kvixi_examples::rocket_app::rocket(example.kvixi.clone(), figment).attach(
        AdHoc::on_liftoff("Announce the example", move |_| {
            announced.announce("rocket");
            Box::pin(async {})
        }),
    );
    match app.launch().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            if let ErrorKind::Bind(bind) = error.kind() {
                eprintln!(
                    "error: cannot listen on {} (KVIXI_EXAMPLE_ADDR): {bind}",
                    example.addr
                );
            } else {
                eprintln!("error: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG` (default `info`) for everything but Rocket's own records, which follow
/// `ROCKET_LOG_LEVEL` (default off). `log` records reach `tracing` here (setup installs
/// the bridge), so Rocket's `log_level` alone would filter nothing.
fn init_tracing() {
    let rocket = match std::env::var("ROCKET_LOG_LEVEL")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        Some("critical") => "warn",
        Some("normal") => "info",
        Some("debug") => "trace",
        _ => "off",
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Rocket's own modules, and the code its macros generate in the routes' module.
    for target in ["rocket", "kvixi_examples::rocket_app::_"] {
        if let Ok(directive) = format!("{target}={rocket}").parse() {
            filter = filter.add_directive(directive);
        }
    }
    // `setup::from_env` finds this subscriber installed and keeps it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
