//! `load serve <framework>`: exactly what `cargo run -p kvixi-examples --bin <framework>`
//! runs ([`kvixi_examples::serve::run`]: same runtime, same session store choice, with
//! `KVIXI_REDIS_URL`), in this process. The parent reads this process's memory and CPU
//! time while it loads it.

use std::process::ExitCode;

use kvixi_examples::serve::{self, Framework};

/// Serves the example of `framework` until killed.
pub fn serve(framework: &str) -> ExitCode {
    match framework.parse::<Framework>() {
        Ok(framework) => serve::run(framework),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
