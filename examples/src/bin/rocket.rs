//! `cargo run -p kvixi-examples --features rocket --bin rocket`: the Rocket example with the embedded emulator
//! (or a real Kvixi app), sessions and members in `kvixi-example.db` (SQLite), or in the
//! database of `KVIXI_DATABASE_URL`, or sessions in the Redis of `KVIXI_REDIS_URL`.
//!
//! Listens on `KVIXI_EXAMPLE_ADDR`; Rocket's own `ROCKET_*` variables (and `Rocket.toml`)
//! apply on top. Rocket's `secret_key` (unused by kvixi, whose cookies are sealed with
//! `KVIXI_COOKIE_KEY`) is new at each run unless `ROCKET_SECRET_KEY` is set.
//! Rocket's own log prints every request URI with its query string, the callback's
//! auth_key included, so it is off unless `ROCKET_LOG_LEVEL` asks for it; the app logs
//! through `tracing` (`RUST_LOG`).

use std::process::ExitCode;

use kvixi_examples::serve::{self, Framework};

/// mimalloc gives the memory of a burst (a store failover's pile-up of connections) back
/// to the system; glibc's allocator keeps the high-water mark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    serve::run(Framework::Rocket)
}
