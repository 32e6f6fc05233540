//! `cargo run -p kvixi-examples --bin actix`: the actix example with the embedded emulator.

use std::process::ExitCode;

use actix_web::HttpServer;
use actix_web::cookie::Key;
use kvixi_actix::MemoryStore;

#[actix_web::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until Ctrl-C. The embedded emulator runs on this thread's runtime for as long
/// as `example` lives.
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let example = kvixi_examples::setup::from_env().await?;
    // One store and one cookie key for all workers. The key is new at each run: a
    // restart logs everyone out, as the memory store would anyway.
    let (kvixi, store, key) = (
        example.kvixi.clone(),
        MemoryStore::default(),
        Key::generate(),
    );
    let server = HttpServer::new(move || {
        kvixi_examples::actix_app::app(kvixi.clone(), store.clone(), key.clone())
    })
    .bind(example.addr)
    .map_err(|e| {
        format!(
            "cannot listen on {} (KVIXI_EXAMPLE_ADDR): {e}",
            example.addr
        )
    })?;
    example.announce("actix");
    server.run().await?;
    Ok(())
}
