//! The example app under load, in a fresh child process of its own (this same binary in
//! `serve` mode), so that its memory and CPU time can be read from `/proc`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use url::Url;

/// How long the app may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running example app; killed (by its pid) when dropped.
pub struct App {
    child: Child,
    /// The app's base URL, on 127.0.0.1.
    pub url: Url,
    /// Where the app listens.
    pub addr: SocketAddr,
}

/// Where the app keeps its sessions.
#[derive(Clone, Copy, Debug)]
pub enum Sessions<'a> {
    /// The example's default in-memory store.
    Memory,
    /// The Redis at this URL (`KVIXI_REDIS_URL`), with a cookie key made for the run.
    Redis(&'a str),
}

use kvixi_bench::free_port;

/// A Kvixi emulator of the load process's own, which the app calls instead of its
/// embedded one (to slow every call down, for instance).
pub struct OwnKvixi<'a> {
    pub emulator: &'a kvixi_mock::Emulator,
}

/// The app the load registers with its own emulator.
const OWN_APP_ID: &str = "load-app";
const OWN_APP_SECRET: &str = "load-app-secret";

impl App {
    /// Starts the `framework` example with its embedded emulator, both on loopback.
    pub fn start(framework: &str, sessions: Sessions<'_>) -> Result<App, String> {
        App::start_with(framework, sessions, None)
    }

    /// Starts the `framework` example, calling `kvixi` if given (registered there on the
    /// app's port), its embedded emulator otherwise.
    pub fn start_with(
        framework: &str,
        sessions: Sessions<'_>,
        kvixi: Option<OwnKvixi<'_>>,
    ) -> Result<App, String> {
        let (app_port, mock_port) = (
            free_port().map_err(|e| e.to_string())?,
            free_port().map_err(|e| e.to_string())?,
        );
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        match sessions {
            Sessions::Memory => command
                .env_remove("KVIXI_REDIS_URL")
                .env_remove("KVIXI_DATABASE_URL")
                .env("KVIXI_EXAMPLE_STORE", "memory")
                .env_remove("KVIXI_COOKIE_KEY"),
            Sessions::Redis(url) => command
                .env("KVIXI_REDIS_URL", url)
                .env("KVIXI_COOKIE_KEY", cookie_key()),
        };
        let public = format!("http://127.0.0.1:{app_port}");
        match kvixi {
            None => command
                .env_remove("KVIXI_APP_ID")
                .env_remove("KVIXI_BASE_URL"),
            Some(OwnKvixi { emulator }) => {
                let redirect = format!("{public}/auth/kvixi/callback");
                emulator.register_app(kvixi_mock::App::new(OWN_APP_ID, OWN_APP_SECRET, &redirect));
                command
                    .env("KVIXI_APP_ID", OWN_APP_ID)
                    .env("KVIXI_APP_SECRET", OWN_APP_SECRET)
                    .env("KVIXI_REDIRECT_URL", redirect)
                    .env("KVIXI_BASE_URL", emulator.base_url())
                    .env("KVIXI_COOKIE_KEY", cookie_key())
            }
        };
        let child = command
            .args(["serve", framework])
            .env("KVIXI_EXAMPLE_ADDR", format!("127.0.0.1:{app_port}"))
            .env("KVIXI_PUBLIC_URL", &public)
            .env("KVIXI_MOCK_ADDR", format!("127.0.0.1:{mock_port}"))
            .env("RUST_LOG", "warn,rocket=off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the {framework} example: {e}"))?;
        let url =
            Url::parse(&format!("http://127.0.0.1:{app_port}/")).map_err(|e| e.to_string())?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, app_port));
        let mut app = App { child, url, addr };
        app.wait_until_listening(addr)?;
        Ok(app)
    }

    fn wait_until_listening(&mut self, addr: SocketAddr) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the example exited: {status}"));
            }
            // A connect that meets itself (same source and destination port) is not
            // the example.
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .and_then(|s| Ok(s.local_addr()? != s.peer_addr()?))
                .unwrap_or(false)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "the example did not listen on {addr} within {START_TIMEOUT:?}"
        ))
    }

    /// The app's resident memory (`VmRSS`), in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The CPU time (user + system) the app has used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time_of(&self.child.id().to_string())
    }
}

/// A `KVIXI_COOKIE_KEY` for one run: 64 random hex digits.
fn cookie_key() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// CPU time (user + system) of process `pid` (`self` for this one), from `/proc/<pid>/stat`.
pub fn cpu_time_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it runs on.
    Some(Duration::from_millis(ticks * 10))
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
