//! A throwaway `redis-server` on a free loopback port, without persistence, for the runs
//! with the Redis session store; killed (by its pid) when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long `redis-server` may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A running `redis-server` of this run.
pub struct Redis {
    child: Child,
    addr: SocketAddr,
}

/// Why there is no Redis server for the Redis rows or column.
pub enum Unavailable {
    /// `redis-server` is not installed: the Redis figures are skipped, the run goes on.
    NotInstalled,
    /// It is installed but did not start.
    Failed(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NotInstalled => f.write_str("redis-server is not installed"),
            Unavailable::Failed(problem) => f.write_str(problem),
        }
    }
}

impl Redis {
    /// Starts `redis-server` on 127.0.0.1 with nothing saved to disk.
    pub fn start() -> Result<Redis, Unavailable> {
        let port = free_port().map_err(|e| Unavailable::Failed(e.to_string()))?;
        let dir = std::env::temp_dir();
        let spawned = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(Unavailable::NotInstalled);
            }
            Err(error) => return Err(Unavailable::Failed(format!("redis-server: {error}"))),
        };
        let mut redis = Redis {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(Unavailable::Failed(format!(
                    "redis-server exited: {status}"
                )));
            }
            if redis.command("PING").is_ok_and(|answer| answer == "+PONG") {
                return Ok(redis);
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(Unavailable::Failed(format!(
                    "redis-server did not answer on {} within {START_TIMEOUT:?}",
                    redis.addr
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URL the app gets as `KVIXI_REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Keys in the database (`DBSIZE`).
    pub fn key_count(&self) -> Result<u64, String> {
        let answer = self.command("DBSIZE")?;
        answer
            .strip_prefix(':')
            .and_then(|count| count.parse().ok())
            .ok_or_else(|| format!("DBSIZE answered {answer:?}"))
    }

    /// Sends a one-word command (`PING`, `DBSIZE`, `FLUSHALL`) over a new connection;
    /// the first line of the answer.
    pub fn command(&self, name: &str) -> Result<String, String> {
        let mut stream =
            TcpStream::connect_timeout(&self.addr, COMMAND_TIMEOUT).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(COMMAND_TIMEOUT))
            .map_err(|e| e.to_string())?;
        write!(stream, "*1\r\n${}\r\n{name}\r\n", name.len()).map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
