//! The example apps of kvixi-rs: one per framework, the same pages, the same setup.
//!
//! Each binary (`cargo run -p kvixi-examples --bin axum`, …) starts an app with the
//! pages `/` (public), `/private` (HTML, needs login) and `/me` (JSON, needs login), and,
//! unless `KVIXI_APP_ID` is set, an embedded `kvixi-mock` emulator to log in against.
//! The apps are also what the end-to-end suite in `tests/` drives.
#![forbid(unsafe_code)]

pub mod actix_app;
pub mod axum_app;
pub mod pages;
pub mod rocket_app;
pub mod setup;
