//! Black-box tests: a real emulator on loopback, driven by a real HTTP client.

mod common;

mod authorize;
mod faults;
mod lifecycle;
mod mock_state;
mod oauth;
mod user_info;
