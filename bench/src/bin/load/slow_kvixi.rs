//! `load slow-kvixi <framework> [--bots N] [--hold S]`: Kvixi holds every key exchange
//! (the emulator with a delay fault, 30 s by default) while bots, each with a free login
//! cookie, call back with made-up keys all at once, and a logged-in browser keeps reading
//! `/me`. Issue 19's attack, on loopback only, bounded in bots and time.
//!
//! It reports the most calls to Kvixi the app had open at once (its established sockets
//! to the emulator's port, from `/proc/net/tcp`), the app's peak open file descriptors
//! and resident memory, the bots' answers (status, and how long each waited), and the
//! browser's `/me` latency while it lasts. The app is the example binary's code in a
//! child process (`load serve`), configured from the environment like a deployment
//! (`KVIXI_MAX_PROVIDER_CALLS` passes through).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kvixi_mock::{App as MockApp, Emulator, Endpoint, Fault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use kvixi_bench::free_port;

const APP_ID: &str = "slow-kvixi-app";
const APP_SECRET: &str = "slow-kvixi-secret";
/// Bots by default, as in issue 19.
pub const DEFAULT_BOTS: usize = 1500;
/// How long Kvixi holds each exchange, by default.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(30);
/// The most a bot waits for its answer.
const BOT_TIMEOUT: Duration = Duration::from_secs(60);
/// The most an answer may be (a bot reads no further).
const MAX_ANSWER: usize = 64 * 1024;

/// What the command line asks for.
pub struct Plan {
    /// The framework's example.
    pub framework: &'static str,
    /// Bots at once.
    pub bots: usize,
    /// How long Kvixi holds each exchange.
    pub hold: Duration,
}

/// The figures of one run.
struct Figures {
    framework: &'static str,
    bound: String,
    peak_calls: usize,
    /// Exchanges Kvixi received from the first bot's callback to the last answer.
    exchanges: u64,
    fds: (usize, usize),
    rss: (u64, u64),
    answers: BTreeMap<u16, (usize, Duration, Duration)>,
    failed_bots: usize,
    me: Vec<Duration>,
    me_failures: usize,
    elapsed: Duration,
}

/// Runs the phase and prints its table; `Err` when something could not be set up.
pub fn run(plan: &Plan) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?;
    let figures = runtime.block_on(measure(plan))?;
    print(&figures);
    Ok(())
}

async fn measure(plan: &Plan) -> Result<Figures, String> {
    let app_port = free_port().map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{app_port}");
    let redirect = format!("{base}/auth/kvixi/callback");
    let emulator = Emulator::builder()
        .app(MockApp::new(APP_ID, APP_SECRET, &redirect))
        .start("127.0.0.1:0")
        .await
        .map_err(|e| format!("the emulator does not start: {e}"))?;
    let kvixi_port = emulator.addr().port();
    let mut child = spawn_app(plan.framework, app_port, &emulator.base_url(), &redirect)?;
    let pid = child.id();
    let app = SocketAddr::from(([127, 0, 0, 1], app_port));
    wait_listening(&mut child, app).await?;

    // The browser logs in while Kvixi still answers.
    let session = log_in(app, &emulator).await?;
    let before = (open_fds(pid).unwrap_or(0), rss(pid).unwrap_or(0));

    // Every bot takes its free login cookie first.
    let mut cookies = Vec::with_capacity(plan.bots);
    for _ in 0..plan.bots {
        let answer = get(app, "/auth/kvixi/login", None, false).await?;
        let cookie = set_cookie(&answer.head, "kvixi_login")
            .ok_or("the login start set no kvixi_login cookie")?;
        cookies.push(cookie);
    }

    let exchanges_before = emulator.request_count(Endpoint::Authorize);
    emulator.inject_fault(Endpoint::Authorize, Fault::Delay(plan.hold));
    let done = Arc::new(AtomicBool::new(false));
    let monitor = tokio::spawn(monitor(pid, kvixi_port, done.clone()));
    let reader = tokio::spawn(read_me(app, session, done.clone()));

    // All at once: every bot's callback, a made-up key each.
    let started = Instant::now();
    let mut bots = Vec::with_capacity(plan.bots);
    for (n, cookie) in cookies.into_iter().enumerate() {
        bots.push(tokio::spawn(async move {
            let path = format!("/auth/kvixi/callback?auth_key=made-up-key-{n}");
            let answer = tokio::time::timeout(
                BOT_TIMEOUT,
                get(app, &path, Some(&format!("kvixi_login={cookie}")), true),
            )
            .await;
            match answer {
                Ok(Ok(answer)) => Some((answer.status, answer.served_in)),
                _ => None,
            }
        }));
    }
    let mut answers: BTreeMap<u16, (usize, Duration, Duration)> = BTreeMap::new();
    let mut failed_bots = 0;
    for bot in bots {
        match bot.await {
            Ok(Some((status, waited))) => {
                let entry = answers
                    .entry(status)
                    .or_insert((0, Duration::MAX, Duration::ZERO));
                entry.0 += 1;
                entry.1 = entry.1.min(waited);
                entry.2 = entry.2.max(waited);
            }
            _ => failed_bots += 1,
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let (peak_calls, peak_fds, peak_rss) = monitor.await.map_err(|e| e.to_string())?;
    let exchanges = emulator.request_count(Endpoint::Authorize) - exchanges_before;
    let (me, me_failures) = reader.await.map_err(|e| e.to_string())?;
    emulator.clear_faults();
    let _ = child.kill();
    let _ = child.wait();
    Ok(Figures {
        framework: plan.framework,
        bound: std::env::var("KVIXI_MAX_PROVIDER_CALLS")
            .unwrap_or_else(|_| format!("{} (default)", kvixi_core::DEFAULT_MAX_PROVIDER_CALLS)),
        peak_calls,
        exchanges,
        fds: (before.0, peak_fds),
        rss: (before.1, peak_rss),
        answers,
        failed_bots,
        me,
        me_failures,
        elapsed,
    })
}

fn spawn_app(framework: &str, port: u16, kvixi: &str, redirect: &str) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
    Command::new(exe)
        .args(["serve", framework])
        .env("KVIXI_APP_ID", APP_ID)
        .env("KVIXI_APP_SECRET", APP_SECRET)
        .env("KVIXI_REDIRECT_URL", redirect)
        .env("KVIXI_BASE_URL", kvixi)
        .env("KVIXI_COOKIE_KEY", key)
        .env("KVIXI_EXAMPLE_ADDR", format!("127.0.0.1:{port}"))
        .env("KVIXI_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("RUST_LOG", "error,rocket=off")
        .env_remove("KVIXI_REDIS_URL")
        .env_remove("KVIXI_DATABASE_URL")
        .env("KVIXI_EXAMPLE_STORE", "memory")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the {framework} example: {e}"))
}

async fn wait_listening(child: &mut Child, app: SocketAddr) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the example exited: {status}"));
        }
        // A connect that meets itself (same source and destination port) is not the app.
        if TcpStream::connect(app)
            .await
            .and_then(|s| Ok(s.local_addr()? != s.peer_addr()?))
            .unwrap_or(false)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the example did not listen within 60 s".into())
}

/// A whole login of alice's through the emulator; the session cookie (`name=value`).
async fn log_in(app: SocketAddr, emulator: &Emulator) -> Result<String, String> {
    let start = get(app, "/auth/kvixi/login", None, false).await?;
    let login = set_cookie(&start.head, "kvixi_login").ok_or("no login cookie")?;
    let key = emulator
        .issue_auth_key(APP_ID, "alice")
        .map_err(|e| e.to_string())?;
    let callback = get(
        app,
        &format!("/auth/kvixi/callback?auth_key={key}"),
        Some(&format!("kvixi_login={login}")),
        false,
    )
    .await?;
    let session = set_cookie(&callback.head, kvixi_core::SESSION_COOKIE).ok_or_else(|| {
        format!(
            "the callback answered {} without a session",
            callback.status
        )
    })?;
    let cookie = format!("{}={session}", kvixi_core::SESSION_COOKIE);
    let me = get(app, "/me", Some(&cookie), true).await?;
    if me.status != 200 {
        return Err(format!("the logged-in /me answered {}", me.status));
    }
    Ok(cookie)
}

/// The browser: `/me` every 20 ms until `done`; each answer's time, and the failures.
async fn read_me(app: SocketAddr, cookie: String, done: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let (mut times, mut failures) = (Vec::new(), 0);
    while !done.load(Ordering::SeqCst) {
        let sent = Instant::now();
        match tokio::time::timeout(Duration::from_secs(5), get(app, "/me", Some(&cookie), true))
            .await
        {
            Ok(Ok(answer)) if answer.status == 200 => times.push(sent.elapsed()),
            _ => failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (times, failures)
}

/// Samples the app every 50 ms until `done`: the most sockets it had open to Kvixi, the
/// most file descriptors, the most resident memory.
async fn monitor(pid: u32, kvixi_port: u16, done: Arc<AtomicBool>) -> (usize, usize, u64) {
    let (mut calls, mut fds, mut memory) = (0, 0, 0);
    while !done.load(Ordering::SeqCst) {
        calls = calls.max(sockets_to(kvixi_port));
        fds = fds.max(open_fds(pid).unwrap_or(0));
        memory = memory.max(rss(pid).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (calls, fds, memory)
}

/// Established TCP connections whose remote end is 127.0.0.1:`port`: the app's calls
/// to Kvixi (nothing else connects to the emulator during the phase).
fn sockets_to(port: u16) -> usize {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    fields.get(2).is_some_and(|remote| remote.ends_with(&want))
                        && fields.get(3) == Some(&"01")
                })
                .count()
        })
        .sum()
}

fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

struct Answer {
    status: u16,
    head: String,
    /// From the connection's establishment to the end of the answer: the app's time,
    /// without the wait in the listen backlog that 1 500 simultaneous connects meet.
    served_in: Duration,
}

/// One `GET` on a connection of its own (`Connection: close`), read to its end.
async fn get(
    app: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    json: bool,
) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(app).await.map_err(|e| e.to_string())?;
    let connected = Instant::now();
    let accept = if json {
        "application/json"
    } else {
        "text/html"
    };
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {app}\r\nAccept: {accept}\r\n{cookie}Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = stream.read(&mut buffer).await.map_err(|e| e.to_string())?;
        if read == 0 || answer.len() > MAX_ANSWER {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&answer);
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {:?}", head.lines().next()))?;
    Ok(Answer {
        status,
        head,
        served_in: connected.elapsed(),
    })
}

/// The value of cookie `name` in an answer head's `Set-Cookie` headers.
fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|line| {
            let (header, value) = line.split_once(':')?;
            header
                .eq_ignore_ascii_case("set-cookie")
                .then_some(value.trim())
        })
        .find_map(|value| value.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        .filter(|value| !value.is_empty())
}

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    times.sort();
    let index = ((times.len() as f64 - 1.0) * p).round() as usize;
    times[index.min(times.len() - 1)]
}

fn print(figures: &Figures) {
    let mut me = figures.me.clone();
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!();
    println!(
        "slow-kvixi: {} — {} bots, Kvixi holding every exchange; bound {}",
        figures.framework,
        figures.answers.values().map(|a| a.0).sum::<usize>() + figures.failed_bots,
        figures.bound
    );
    println!();
    println!("| | {} |", figures.framework);
    println!("| --- | --- |");
    // Sockets, not calls: the app's HTTP pool may open a spare connection while another
    // is being set up, so the exchanges Kvixi received are the exact figure.
    println!(
        "| app's connections to Kvixi at once (calls in all) | {} ({}) |",
        figures.peak_calls, figures.exchanges
    );
    println!(
        "| app's open file descriptors | {} → {} |",
        figures.fds.0, figures.fds.1
    );
    println!(
        "| app RSS | {:.1} → {:.1} MiB (+{:.1}) |",
        mib(figures.rss.0),
        mib(figures.rss.1),
        mib(figures.rss.1.saturating_sub(figures.rss.0))
    );
    let answers: Vec<String> = figures
        .answers
        .iter()
        .map(|(status, (count, fastest, slowest))| {
            format!(
                "{count} × {status} in {:.0}–{:.0} ms after connecting",
                fastest.as_secs_f64() * 1e3,
                slowest.as_secs_f64() * 1e3
            )
        })
        .collect();
    println!(
        "| bots' answers | {}{} |",
        answers.join(", "),
        if figures.failed_bots > 0 {
            format!(", {} without an answer", figures.failed_bots)
        } else {
            String::new()
        }
    );
    println!(
        "| logged-in `/me` during it | {} answers, p50 {:.1} ms, p99 {:.1} ms, {} failed |",
        me.len(),
        percentile(&mut me, 0.5).as_secs_f64() * 1e3,
        percentile(&mut me, 0.99).as_secs_f64() * 1e3,
        figures.me_failures
    );
    println!("| phase took | {:.1} s |", figures.elapsed.as_secs_f64());
}
