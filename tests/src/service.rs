//! External programs the suite starts itself (chromedriver, redis-server), and the rule
//! for when one is missing: outside CI the test says so and passes; in CI it fails.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
pub struct Service {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `program` exists; when it does not, fails under `CI=true` and otherwise
/// prints why the test does nothing.
pub fn available(program: &str, package: &str) -> bool {
    if Path::new(program).exists() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{program} is missing: `apt-get install {package}` (scripts/test installs it)"
    );
    eprintln!("SKIPPED: {program} is missing; run scripts/test to install {package}");
    false
}

/// A free loopback port (bound and released; good enough for a child to take it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `program args…` and waits until it accepts connections on `port`. Panics if
/// it exited right after the port answered: another process took the port first.
pub fn start(program: &str, args: &[String], port: u16) -> Service {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut service = Service { child, port };
    wait_for_port(port, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(100));
    if let Ok(Some(status)) = service.child.try_wait() {
        panic!("{program} exited ({status}) although {port} answers: another process has it");
    }
    service
}

/// Whether something listens on `127.0.0.1:port`.
///
/// A connection whose two ends are the same address does not count: a connect to a free
/// port of the ephemeral range can pick that very port as its source and "open" to itself
/// (TCP simultaneous open), which once let a test go on before its server listened.
pub fn listens(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port))
        .and_then(|s| Ok(s.local_addr()? != s.peer_addr()?))
        .unwrap_or(false)
}

/// Polls until `127.0.0.1:port` accepts a TCP connection.
pub fn wait_for_port(port: u16, limit: Duration) {
    let started = Instant::now();
    while !listens(port) {
        assert!(
            started.elapsed() < limit,
            "nothing listens on 127.0.0.1:{port} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `redis-server` on a free loopback port, without persistence.
pub fn redis() -> Option<Service> {
    if !available("/usr/bin/redis-server", "redis-server") {
        return None;
    }
    let port = free_port();
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(str::to_owned);
    Some(start("/usr/bin/redis-server", &args, port))
}

/// `chromedriver` on a free loopback port.
pub fn chromedriver() -> Option<Service> {
    if !available("/usr/bin/chromium", "chromium")
        || !available("/usr/bin/chromedriver", "chromium-driver")
    {
        return None;
    }
    let port = free_port();
    let args = [format!("--port={port}")];
    Some(start("/usr/bin/chromedriver", &args, port))
}
