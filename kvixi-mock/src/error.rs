//! The one error type of the crate.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong when configuring, starting or scripting the emulator.
///
/// Errors answered to HTTP clients are not represented here: the emulator answers them the way
/// the Kvixi platform does (JSON bodies or HTML pages), they never surface as Rust errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address given to [`EmulatorBuilder::start`](crate::EmulatorBuilder::start) did not
    /// resolve to any socket address.
    #[error("cannot resolve the listen address `{addr}`: {source}")]
    ResolveAddress {
        /// The address as given.
        addr: String,
        /// Why resolution failed.
        #[source]
        source: io::Error,
    },

    /// The emulator was asked to listen on an address that is not loopback.
    #[error(
        "refusing to listen on {addr}: the Kvixi emulator exposes secrets and is meant for \
         loopback only (127.0.0.0/8, ::1, localhost); use `allow_non_loopback(true)` or \
         `--allow-non-loopback` if you really want this"
    )]
    NonLoopbackAddress {
        /// The refused address.
        addr: SocketAddr,
    },

    /// Binding or inspecting the listening socket failed.
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        /// The address that could not be bound.
        addr: String,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },

    /// A fixture file could not be read.
    #[error("cannot read the fixture file {}: {source}", path.display())]
    FixtureRead {
        /// The file that could not be read.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },

    /// A fixture file's name does not end in `.toml` or `.json`.
    #[error("cannot tell the format of the fixture file {}: name it `*.toml` or `*.json`", path.display())]
    FixtureFormat {
        /// The file with the unknown extension.
        path: PathBuf,
    },

    /// A TOML fixture is not valid.
    #[error("invalid TOML fixture {origin}: {source}")]
    FixtureToml {
        /// Where the fixture came from (a path, or `<string>`).
        origin: String,
        /// The parser's explanation.
        #[source]
        source: toml::de::Error,
    },

    /// A JSON fixture is not valid.
    #[error("invalid JSON fixture {origin}: {source}")]
    FixtureJson {
        /// Where the fixture came from (a path, or `<string>`).
        origin: String,
        /// The parser's explanation.
        #[source]
        source: serde_json::Error,
    },

    /// No app with this app_id is registered in the emulator.
    #[error("no app `{app_id}` is registered in the emulator; register it with `register_app`")]
    UnknownApp {
        /// The app_id that was asked for.
        app_id: String,
    },

    /// No user with this user name exists in the emulator.
    #[error("no user `{user_name}` exists in the emulator; add it with `add_user`")]
    UnknownUser {
        /// The user name that was asked for.
        user_name: String,
    },
}
