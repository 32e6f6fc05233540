//! `kvixi-instance <axum|actix|rocket>`: one instance of a framework's example, as its
//! binary in `kvixi-examples` runs it (configured by the environment), for the fleet
//! scenarios (`tests/tests/fleet.rs`), which start several as separate processes.

use std::process::ExitCode;

use kvixi_examples::serve::{self, Framework};

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    match name.parse::<Framework>() {
        Ok(framework) => serve::run(framework),
        Err(error) => {
            eprintln!("usage: kvixi-instance <axum|actix|rocket>: {error}");
            ExitCode::FAILURE
        }
    }
}
