//! The example apps of kvixi-rs: one per framework, the same pages, the same setup.
//!
//! Each binary (`cargo run -p kvixi-examples --bin axum`, …) starts an app with the
//! pages `/` (public), `/private` (HTML, needs login) and `/me` (JSON, needs login), and,
//! unless `KVIXI_APP_ID` is set, an embedded `kvixi-mock` emulator to log in against.
//! The apps are also what the end-to-end suite in `tests/` drives, and [`serve`] is what
//! `kvixi-bench`'s load tool runs and measures.
//!
//! `KVIXI_REDIS_URL` (e.g. `redis://127.0.0.1:6379`) moves every example's sessions to
//! Redis, so that several instances share them; they then also need the same
//! `KVIXI_COOKIE_KEY` (at least 32 random characters: `openssl rand -base64 48`).
#![forbid(unsafe_code)]

pub mod actix_app;
pub mod axum_app;
pub mod pages;
pub mod rocket_app;
pub mod serve;
pub mod setup;
