//! Throwaway Postgres servers on loopback: `initdb` in a temporary directory, `postgres`
//! on a free port, both as the `postgres` user when the suite runs as root (Postgres
//! refuses root). A server stops when its value is dropped, and also when the test
//! process dies: it is started behind a shell that waits on the process's pipe.
//!
//! [`Postgres::start`] returns `None` when Postgres is not installed outside CI, and
//! fails the test under `CI=true` ([`service::available`]); `scripts/test` installs it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection;

use crate::service;
use crate::topology::TempDir;

/// A Postgres server of the test's own, stopped when dropped.
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    /// Its loopback port.
    pub port: u16,
    /// The shell that runs it and stops it when its stdin closes.
    server: Option<Child>,
    /// The shell removes the directory once the server stopped (for the process's
    /// shared server, which is never dropped).
    remove_on_exit: bool,
}

/// The newest `/usr/lib/postgresql/N/bin` holding `postgres`, if any.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `program args…`, as the `postgres` user when we are root.
fn as_postgres(program: &str) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

/// Whether Postgres is installed; when it is not, fails under `CI=true` and otherwise
/// prints why the test does nothing ([`service::available`]).
pub fn installed() -> bool {
    postgres_bin().is_some()
        || service::available("/usr/lib/postgresql/15/bin/postgres", "postgresql")
}

impl Postgres {
    /// A new cluster in a temporary directory, serving on a free loopback port.
    pub fn start() -> Option<Postgres> {
        if !installed() {
            return None;
        }
        let bin = postgres_bin()?;
        let dir = TempDir::new("kvixi-postgres");
        if running_as_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(owned.success(), "chown the Postgres directory");
        }
        let data = dir.path().join("data");
        let initdb = as_postgres(bin.join("initdb").to_str().expect("a UTF-8 path"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("initdb runs");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let mut postgres = Postgres {
            dir,
            bin,
            port: service::free_port(),
            server: None,
            remove_on_exit: false,
        };
        postgres.start_again();
        Some(postgres)
    }

    /// Starts the server (again) on the same data and port, and waits until it listens.
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "the server is already running");
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        // The shell starts the server, waits until its own stdin (our pipe) closes,
        // then stops it at once ("immediate" shutdown, as a crash would).
        let script = r#""$0" -D "$1" -p "$2" -k "$3" -c listen_addresses=127.0.0.1 \
            -c fsync=off -c full_page_writes=off >>"$4" 2>&1 &
            server=$!
            read -r _ignored
            kill -QUIT "$server"
            wait "$server"
            if [ "$5" = remove ]; then rm -rf "$3"; fi"#;
        let server = as_postgres("sh")
            .arg("-c")
            .arg(script)
            .arg(self.bin.join("postgres"))
            .arg(&data)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .arg(&log)
            .arg(if self.remove_on_exit {
                "remove"
            } else {
                "keep"
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Postgres shell starts");
        self.server = Some(server);
        service::wait_for_port(self.port, Duration::from_secs(30));
        // Listening is not yet accepting: wait for the end of its startup (recovery).
        let started = std::time::Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Postgres accepts connections within 30 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server at once (no checkpoint: like a crash or a killed container), and
    /// waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            drop(server.stdin.take());
            let _ = server.wait();
        }
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database on this server, and its URL.
    pub async fn new_database(&self) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!("kvixi_{}", COUNTER.fetch_add(1, Ordering::SeqCst));
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("Postgres accepts the admin connection");
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        self.url(&name)
    }

    /// The server this test process shares among its tests, started on first use. It
    /// stops when the process exits (its pipe closes).
    pub fn shared() -> Option<&'static Postgres> {
        static SHARED: OnceLock<Option<Postgres>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let mut server = Postgres::start()?;
                // Restarted once with the flag: the shell that outlives this process
                // removes the directory.
                server.stop();
                server.remove_on_exit = true;
                server.start_again();
                Some(server)
            })
            .as_ref()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
