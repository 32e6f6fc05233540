//! Serving one framework's example from the environment, on the runtime its `main` macro
//! would build: what `cargo run -p kvixi-examples --bin <framework>` runs, and what
//! `kvixi-bench`'s load tool starts in its child process, so that both are the same code.
//!
//! [`setup::from_env`] reads the environment. With `KVIXI_REDIS_URL` the library puts
//! sessions, revocations and spent logins in that Redis, and `KVIXI_COOKIE_KEY` keys every
//! cookie, so that instances behind a load balancer are interchangeable.

use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;
#[cfg(feature = "rocket")]
use std::sync::Arc;

#[cfg(feature = "rocket")]
use rocket::error::ErrorKind;
#[cfg(feature = "rocket")]
use rocket::fairing::AdHoc;
#[cfg(feature = "rocket")]
use rocket::figment::providers::Env;

#[cfg(any(feature = "axum", feature = "actix", feature = "rocket"))]
use crate::setup::{self, Example};

/// The frameworks an example exists for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// axum 0.8 with `kvixi-axum`.
    Axum,
    /// actix-web 4 with `kvixi-actix`.
    Actix,
    /// Rocket 0.5 with `kvixi-rocket`.
    Rocket,
}

impl Framework {
    /// Every framework, in the order the docs list them.
    pub const ALL: [Framework; 3] = [Framework::Axum, Framework::Actix, Framework::Rocket];

    /// The name of the framework's example binary (`axum`, `actix`, `rocket`).
    pub fn name(self) -> &'static str {
        match self {
            Framework::Axum => "axum",
            Framework::Actix => "actix",
            Framework::Rocket => "rocket",
        }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A framework name that is none of `axum`, `actix`, `rocket`.
#[derive(Debug)]
pub struct UnknownFramework(pub String);

impl fmt::Display for UnknownFramework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no example for {:?}: pick among axum, actix, rocket",
            self.0
        )
    }
}

impl std::error::Error for UnknownFramework {}

impl FromStr for Framework {
    type Err = UnknownFramework;

    fn from_str(name: &str) -> Result<Framework, UnknownFramework> {
        Framework::ALL
            .into_iter()
            .find(|framework| framework.name() == name)
            .ok_or_else(|| UnknownFramework(name.to_owned()))
    }
}

type Served = Result<(), Box<dyn std::error::Error>>;

/// Serves `framework`'s example until Ctrl-C (or until the process is killed); prints
/// `error: …` and fails when it cannot start. This is the whole `main` of each binary.
pub fn run(framework: Framework) -> ExitCode {
    let served: Served = match framework {
        #[cfg(feature = "axum")]
        Framework::Axum => axum(),
        #[cfg(feature = "actix")]
        Framework::Actix => actix(),
        #[cfg(feature = "rocket")]
        Framework::Rocket => rocket(),
        // Each framework is a cargo feature, so that one example builds one framework.
        #[allow(unreachable_patterns)]
        other => Err(format!(
            "this build has no {other} example: run `cargo run -p kvixi-examples --features {other} --bin {other}`"
        )
        .into()),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(any(feature = "axum", feature = "actix", feature = "rocket"))]
fn cannot_listen(example: &Example, error: impl fmt::Display) -> String {
    format!(
        "cannot listen on {} (KVIXI_EXAMPLE_ADDR): {error}",
        example.addr
    )
}

/// As `#[tokio::main]` would run it.
#[cfg(feature = "axum")]
fn axum() -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let example = setup::from_env().await?;
        let listener = tokio::net::TcpListener::bind(example.addr)
            .await
            .map_err(|e| cannot_listen(&example, e))?;
        // Sessions in the Redis of KVIXI_REDIS_URL when it is set, in memory otherwise.
        let app = crate::axum_app::router(example.kvixi.clone());
        example.announce("axum");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

/// As `#[actix_web::main]` would run it: one flow for every worker, which carries the
/// sessions' store (the Redis of `KVIXI_REDIS_URL`, or one memory store) and the cookie key.
#[cfg(feature = "actix")]
fn actix() -> Served {
    actix_web::rt::System::new().block_on(async {
        // This example shows the app's own failure and sign-in pages.
        let example = setup::from_env_with(crate::actix_app::own_pages).await?;
        let kvixi = example.kvixi.clone();
        let server = actix_web::HttpServer::new(move || crate::actix_app::app(kvixi.clone()))
            .bind(example.addr)
            .map_err(|e| cannot_listen(&example, e))?
            .run();
        example.announce("actix");
        server.await?;
        Ok(())
    })
}

/// As `#[rocket::main]` would run it. Listens on `KVIXI_EXAMPLE_ADDR`; Rocket's own
/// `ROCKET_*` variables (and `Rocket.toml`) apply on top. Rocket wants a `secret_key` for
/// its private cookies, which kvixi does not use (its cookies are sealed with the app's
/// cookie key): it is new at each run unless `ROCKET_SECRET_KEY` is set. Rocket's own log prints every request URI with its query string, the callback's
/// auth_key included, so it is off unless `ROCKET_LOG_LEVEL` asks for it; the app logs
/// through `tracing` (`RUST_LOG`).
#[cfg(feature = "rocket")]
fn rocket() -> Served {
    init_rocket_tracing();
    rocket::execute(async {
        // The embedded emulator runs on this runtime: `example` lives until the end.
        let example = Arc::new(setup::from_env().await?);
        let figment = rocket::Config::figment()
            .merge(("address", example.addr.ip()))
            .merge(("port", example.addr.port()))
            .merge(("secret_key", random_secret_key()))
            .merge(("log_level", "off"))
            // Rocket's own variables win over the defaults above.
            .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global());
        // Sessions in the Redis of KVIXI_REDIS_URL when it is set, in memory otherwise.
        let app = crate::rocket_app::rocket(example.kvixi.clone(), figment);
        let announced = example.clone();
        let app = app.attach(AdHoc::on_liftoff("Announce the example", move |_| {
            announced.announce("rocket");
            Box::pin(async {})
        }));
        match app.launch().await {
            Ok(_) => Ok(()),
            // `kind()` marks the error handled: Rocket panics on dropping an unread one.
            Err(error) => match error.kind() {
                ErrorKind::Bind(bind) => Err(cannot_listen(&example, bind).into()),
                _ => Err(error.to_string().into()),
            },
        }
    })
}

/// 64 random bytes: Rocket's `secret_key` for this run.
#[cfg(feature = "rocket")]
fn random_secret_key() -> Vec<u8> {
    let mut key = vec![0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    key
}

/// `RUST_LOG` (default `info`) for everything but Rocket's own records, which follow
/// `ROCKET_LOG_LEVEL` (default off). `log` records reach `tracing` here (setup installs
/// the bridge), so Rocket's `log_level` alone would filter nothing.
#[cfg(feature = "rocket")]
fn init_rocket_tracing() {
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
