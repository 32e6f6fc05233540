//! Bots: anonymous clients that hit the login route as fast as the app answers, as a
//! scraper or an attacker would. No cookie jar, one keep-alive connection each, and
//! hand-written HTTP/1.1 (a request is a fixed buffer, an answer is read up to its end),
//! so that a bot costs the shared 2 cores far less than a reqwest browser, as wrk would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::browser::REQUEST_TIMEOUT;

/// What the bots ask for: the start of a login, as the home page's button does.
pub const LOGIN_START: &str = "/auth/kvixi/login?return_to=%2Fprivate";
/// Largest answer head a bot accepts.
const MAX_HEAD: usize = 16 * 1024;
/// Failures described in the outcome, at most.
const EXAMPLES: usize = 5;

/// The bounds of a swarm of bots.
#[derive(Clone, Copy, Debug)]
pub struct Swarm {
    /// Bots at once, one connection each.
    pub connections: usize,
    /// Login starts in all, shared out among the bots.
    pub total: u64,
    /// The swarm stops here even if login starts are left.
    pub deadline: Duration,
}

/// What a swarm measured.
#[derive(Debug)]
pub struct SwarmOutcome {
    /// The bounds it ran under.
    pub plan: Swarm,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Login starts answered 303, as they should be.
    pub answered: u64,
    /// Answers that handed the bot a session cookie (an anonymous visitor should own none).
    pub session_cookies: u64,
    /// Errors, timeouts and statuses other than 303.
    pub failures: u64,
    /// The first few failures, to say what went wrong.
    pub examples: Vec<String>,
    /// Login starts not sent: the deadline passed or the swarm was told to stop.
    pub not_started: u64,
}

impl SwarmOutcome {
    /// Login starts answered 303 per second of wall time.
    pub fn rate(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `plan` against the app listening at `app`, until its count or deadline is used up
/// or `stop` is set.
pub async fn run(plan: Swarm, app: SocketAddr, stop: Arc<AtomicBool>) -> SwarmOutcome {
    let request: Arc<[u8]> = format!(
        "GET {LOGIN_START} HTTP/1.1\r\nHost: {app}\r\nUser-Agent: kvixi-bench-bot\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\r\n"
    )
    .into_bytes()
    .into();
    let start = Instant::now();
    let stop_at = start + plan.deadline;
    let remaining = Arc::new(AtomicU64::new(plan.total));
    let tasks: Vec<_> = (0..plan.connections)
        .map(|_| {
            let (request, remaining, stop) = (request.clone(), remaining.clone(), stop.clone());
            tokio::spawn(bot(app, request, remaining, stop, stop_at))
        })
        .collect();
    let mut outcome = SwarmOutcome {
        plan,
        elapsed: Duration::ZERO,
        answered: 0,
        session_cookies: 0,
        failures: 0,
        examples: Vec::new(),
        not_started: 0,
    };
    for task in tasks {
        match task.await {
            Ok(tally) => {
                outcome.answered += tally.answered;
                outcome.session_cookies += tally.session_cookies;
                outcome.failures += tally.failures;
                for example in tally.examples {
                    if outcome.examples.len() < EXAMPLES {
                        outcome.examples.push(example);
                    }
                }
            }
            Err(join) => {
                outcome.failures += 1;
                outcome.examples.push(format!("a bot task ended: {join}"));
            }
        }
    }
    outcome.elapsed = start.elapsed();
    outcome.not_started = remaining.load(Ordering::Relaxed);
    outcome
}

/// One bot's counts.
#[derive(Default)]
struct Tally {
    answered: u64,
    session_cookies: u64,
    failures: u64,
    examples: Vec<String>,
}

impl Tally {
    fn fail(&mut self, problem: impl ToString) {
        self.failures += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(problem.to_string());
        }
    }
}

/// Takes one login start from the shared count; `false` when none is left.
fn take(remaining: &AtomicU64) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

async fn bot(
    app: SocketAddr,
    request: Arc<[u8]>,
    remaining: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    stop_at: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut connection: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) && Instant::now() < stop_at && take(&remaining) {
        if connection.is_none() {
            match tokio::time::timeout(REQUEST_TIMEOUT, Connection::open(app)).await {
                Ok(Ok(opened)) => connection = Some(opened),
                Ok(Err(error)) => {
                    tally.fail(format!("connect: {error}"));
                    // Bounded by the count and the deadline; no need to spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => {
                    tally.fail("connect: timed out");
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, open.exchange(&request)).await {
            Ok(Ok(answer)) => {
                if answer.status == 303 {
                    tally.answered += 1;
                } else {
                    tally.fail(format!("expected 303, got {}", answer.status));
                }
                if answer.session_cookie {
                    tally.session_cookies += 1;
                }
                if !answer.keep_alive {
                    connection = None;
                }
            }
            Ok(Err(problem)) => {
                tally.fail(problem);
                connection = None;
            }
            Err(_) => {
                tally.fail("timed out");
                connection = None;
            }
        }
    }
    tally
}

/// What a bot reads of an answer.
struct Answer {
    status: u16,
    keep_alive: bool,
    session_cookie: bool,
}

/// One keep-alive HTTP/1.1 connection, with the bytes read but not used yet.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

impl Connection {
    async fn open(app: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(app).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` and reads its whole answer.
    async fn exchange(&mut self, request: &[u8]) -> Result<Answer, String> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let head_len = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(format!("an answer head over {MAX_HEAD} bytes"));
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..head_len])
            .map_err(|_| "an answer head that is not UTF-8".to_owned())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
        let (mut length, mut chunked) = (0usize, false);
        let mut answer = Answer {
            status,
            keep_alive: !status_line.starts_with("HTTP/1.0"),
            session_cookie: false,
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .parse()
                    .map_err(|_| format!("a Content-Length of {value:?}"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                answer.keep_alive = !value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("set-cookie")
                && value
                    .strip_prefix(kvixi_core::SESSION_COOKIE)
                    .is_some_and(|rest| rest.starts_with('='))
            {
                answer.session_cookie = true;
            }
        }
        self.buffer.drain(..head_len);
        if chunked {
            self.skip_chunks().await?;
        } else {
            self.skip(length).await?;
        }
        Ok(answer)
    }

    /// Reads more bytes into the buffer.
    async fn fill(&mut self) -> Result<(), String> {
        self.buffer.reserve(4096);
        match self.stream.read_buf(&mut self.buffer).await {
            Ok(0) => Err("the app closed the connection".into()),
            Ok(_) => Ok(()),
            Err(error) => Err(format!("receive: {error}")),
        }
    }

    /// Drops the next `count` bytes of the answer.
    async fn skip(&mut self, count: usize) -> Result<(), String> {
        while self.buffer.len() < count {
            self.fill().await?;
        }
        self.buffer.drain(..count);
        Ok(())
    }

    /// The next line of the answer, without its CRLF.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 2);
                return Ok(line);
            }
            if self.buffer.len() > MAX_HEAD {
                return Err("a chunk line too long".into());
            }
            self.fill().await?;
        }
    }

    /// Drops a chunked body, trailers included.
    async fn skip_chunks(&mut self) -> Result<(), String> {
        loop {
            let line = self.line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| format!("a chunk size of {size:?}"))?;
            if size == 0 {
                while !self.line().await?.is_empty() {}
                return Ok(());
            }
            self.skip(size + 2).await?;
        }
    }
}
