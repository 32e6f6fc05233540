//! The example apps of kvixi-rs: one per framework, the same pages, the same setup.
//!
//! Each framework is a cargo feature (`axum`, the default; `actix`; `rocket`), so that
//! running one example compiles one framework: `cargo run -p kvixi-examples --bin axum`,
//! `cargo run -p kvixi-examples --features actix --bin actix`,
//! `cargo run -p kvixi-examples --features rocket --bin rocket`.
//!
//! Each binary starts an app with the
//! pages `/` (public), `/private` (HTML, needs login), `/me` (JSON, needs login) and `/me/app`
//! (the app's own data kept beside the Kvixi user, [`member::Member`], typed), and,
//! unless `KVIXI_APP_ID` is set, an embedded `kvixi-mock` emulator to log in against.
//! The apps are also what the end-to-end suite in `tests/` drives, and [`serve`] is what
//! `kvixi-bench`'s load tool runs and measures.
//!
//! By default each example keeps its sessions and its `members` table ([`member::Members`],
//! migrations in `examples/migrations/`) in the SQLite file `kvixi-example.db` of
//! `KVIXI_EXAMPLE_DIR` (the working directory), and the cookie key it makes once beside it:
//! a restart logs nobody out. `KVIXI_DATABASE_URL` (`postgres://…`) or `KVIXI_REDIS_URL`
//! (e.g. `redis://127.0.0.1:6379`) moves every example's sessions there, so that several
//! instances share them; they then also need the same `KVIXI_COOKIE_KEY` (at least 32
//! random characters: `openssl rand -base64 48`).
#![forbid(unsafe_code)]

#[cfg(feature = "actix")]
pub mod actix_app;
#[cfg(feature = "axum")]
pub mod axum_app;
pub mod member;
pub mod pages;
#[cfg(feature = "rocket")]
pub mod rocket_app;
pub mod serve;
pub mod setup;
