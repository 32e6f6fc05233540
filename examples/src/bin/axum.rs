//! `cargo run -p kvixi-examples --bin axum`: the axum example with the embedded emulator
//! (or a real Kvixi app), sessions and members in `kvixi-example.db` (SQLite), or in the
//! database of `KVIXI_DATABASE_URL`, or sessions in the Redis of `KVIXI_REDIS_URL`.

use std::process::ExitCode;

use kvixi_examples::serve::{self, Framework};

/// mimalloc gives the memory of a burst (a store failover's pile-up of connections) back
/// to the system; glibc's allocator keeps the high-water mark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    serve::run(Framework::Axum)
}
