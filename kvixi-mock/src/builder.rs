//! Configuring and starting an [`Emulator`].

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};

use crate::registry::Registry;
use crate::server::{Shared, router};
use crate::{App, Emulator, Error, Fixture, User};

/// Access token lifetime the published documentation states: one hour.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Settings of an emulator to start; made by [`Emulator::builder`].
#[derive(Debug, Clone)]
#[must_use = "an EmulatorBuilder does nothing until `start` is awaited"]
pub struct EmulatorBuilder {
    fixture: Fixture,
    token_lifetime: Duration,
    strict: bool,
    allow_non_loopback: bool,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            fixture: Fixture::default(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            strict: false,
            allow_non_loopback: false,
        }
    }
}

impl EmulatorBuilder {
    /// Starts from these apps and users instead of [`Fixture::default()`] (alice and bob).
    /// Apps and users added before are replaced.
    pub fn fixture(mut self, fixture: Fixture) -> Self {
        self.fixture = fixture;
        self
    }

    /// Registers one more app.
    pub fn app(mut self, app: App) -> Self {
        self.fixture.apps.push(app);
        self
    }

    /// Adds one more user.
    pub fn user(mut self, user: User) -> Self {
        self.fixture.users.push(user);
        self
    }

    /// How long an access token stays valid ([`DEFAULT_TOKEN_LIFETIME`] by default; the
    /// platform's code uses 60 s).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Answers API errors with HTTP 400 (401 for an invalid or expired access token) instead
    /// of the platform's HTTP 200. The bodies stay the same.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Allows listening on an address that is not loopback. The emulator serves app secrets
    /// at `/_mock/state`, so this is refused unless asked for.
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// Listens on `addr` (e.g. `"127.0.0.1:0"` for any free port) and starts serving.
    ///
    /// # Errors
    ///
    /// [`Error::NonLoopbackAddress`] when `addr` resolves to an address outside 127.0.0.0/8
    /// and ::1, unless [`allow_non_loopback`](Self::allow_non_loopback) is set;
    /// [`Error::ResolveAddress`] or [`Error::Bind`] when it cannot be resolved or bound.
    pub async fn start<A>(self, addr: A) -> Result<Emulator, Error>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        let label = addr.to_string();
        let resolve_error = |source| Error::ResolveAddress {
            addr: label.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
            .await
            .map_err(resolve_error)?
            .collect();
        if addrs.is_empty() {
            return Err(resolve_error(io::Error::new(
                io::ErrorKind::NotFound,
                "no address found",
            )));
        }
        self.check_loopback(&addrs)?;
        let listener = TcpListener::bind(&addrs[..])
            .await
            .map_err(|source| Error::Bind {
                addr: label.clone(),
                source,
            })?;
        self.start_on(listener).await
    }

    /// Starts serving on an already bound listener.
    ///
    /// # Errors
    ///
    /// [`Error::NonLoopbackAddress`] as for [`start`](Self::start); [`Error::Bind`] when the
    /// listener's address cannot be read.
    pub async fn start_on(self, listener: TcpListener) -> Result<Emulator, Error> {
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: "the given listener".to_owned(),
            source,
        })?;
        self.check_loopback(&[addr])?;
        let base_url = format!("http://{}", browsable(addr));
        let registry = Registry::new(self.fixture, self.token_lifetime);
        let shared = Arc::new(Shared::new(registry, self.strict, base_url.clone()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async {
                // A dropped sender stops the server too.
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                tracing::error!(%error, "the Kvixi emulator stopped serving");
            }
        });
        tracing::info!(%base_url, strict = self.strict, "Kvixi emulator listening");
        Ok(Emulator::running(shared, addr, base_url, stop, task))
    }

    fn check_loopback(&self, addrs: &[SocketAddr]) -> Result<(), Error> {
        if self.allow_non_loopback {
            return Ok(());
        }
        match addrs.iter().find(|addr| !is_loopback(addr.ip())) {
            Some(addr) => Err(Error::NonLoopbackAddress { addr: *addr }),
            None => Ok(()),
        }
    }
}

/// Whether `ip` is in 127.0.0.0/8 or is ::1 (IPv4-mapped forms included).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The address a browser on this machine reaches `addr` at: a wildcard address (`0.0.0.0`,
/// `::`) is shown as loopback.
fn browsable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_recognised() {
        for ip in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "10.0.0.1",
            "::",
            "192.168.1.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn wildcard_addresses_are_shown_as_loopback() {
        assert_eq!(
            browsable("0.0.0.0:80".parse().unwrap()).to_string(),
            "127.0.0.1:80"
        );
        assert_eq!(
            browsable("[::]:80".parse().unwrap()).to_string(),
            "[::1]:80"
        );
    }
}
