//! `cargo run -p kvixi-examples --features actix --bin actix`: the actix example with the embedded emulator
//! (or a real Kvixi app), sessions in memory or in the Redis of `KVIXI_REDIS_URL`.

use std::process::ExitCode;

use kvixi_examples::serve::{self, Framework};

fn main() -> ExitCode {
    serve::run(Framework::Actix)
}
