//! `load serve <framework>`: what `cargo run -p kvixi-examples --bin <framework>` does,
//! from the same `kvixi_examples` library and with the same runtime, in this process.
//! The parent reads this process's memory and CPU time while it loads it.

use std::process::ExitCode;

use kvixi_examples::setup::{self, Example};

/// Serves the example of `framework` until killed.
pub fn serve(framework: &str) -> ExitCode {
    let served = match framework {
        "axum" => axum(),
        "actix" => actix(),
        "rocket" => rocket(),
        other => Err(format!("no example for {other:?} (axum, actix or rocket)").into()),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

type Served = Result<(), Box<dyn std::error::Error>>;

/// `#[tokio::main]`, as the `axum` binary.
fn axum() -> Served {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let example = setup::from_env().await?;
        let listener = tokio::net::TcpListener::bind(example.addr).await?;
        example.announce("axum");
        let app = kvixi_examples::axum_app::router(example.kvixi.clone());
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// `#[actix_web::main]`, as the `actix` binary: one store and one key for every worker.
fn actix() -> Served {
    actix_web::rt::System::new().block_on(async {
        let example = setup::from_env().await?;
        let (kvixi, store, key) = (
            example.kvixi.clone(),
            kvixi_actix::MemoryStore::default(),
            actix_web::cookie::Key::generate(),
        );
        let server = actix_web::HttpServer::new(move || {
            kvixi_examples::actix_app::app(kvixi.clone(), store.clone(), key.clone())
        })
        .bind(example.addr)?;
        example.announce("actix");
        server.run().await?;
        Ok(())
    })
}

/// `#[rocket::main]`, as the `rocket` binary: a secret key made for the run, Rocket's
/// own log off.
fn rocket() -> Served {
    rocket::execute(async {
        let example: Example = setup::from_env().await?;
        let mut secret_key = vec![0u8; 64];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret_key);
        let figment = rocket::Config::figment()
            .merge(("address", example.addr.ip()))
            .merge(("port", example.addr.port()))
            .merge(("secret_key", secret_key))
            .merge(("log_level", "off"));
        example.announce("rocket");
        kvixi_examples::rocket_app::rocket(example.kvixi.clone(), figment)
            .launch()
            .await?;
        Ok(())
    })
}
