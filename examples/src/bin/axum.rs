//! `cargo run -p kvixi-examples --bin axum`: the axum example with the embedded emulator.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let example = match kvixi_examples::setup::from_env().await {
        Ok(example) => example,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(example.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "error: cannot listen on {} (KVIXI_EXAMPLE_ADDR): {error}",
                example.addr
            );
            return ExitCode::FAILURE;
        }
    };
    example.announce("axum");
    let app = kvixi_examples::axum_app::router(example.kvixi.clone());
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
