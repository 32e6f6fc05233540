//! The fleet's shared state in a real `redis-server` (feature `redis`): a pending login is
//! spent once for every flow on that Redis, and the revocation stamps default to it.
//!
//! The server is started by the test. Without `redis-server` the test says so and passes,
//! except under `CI=true`, where it fails (`scripts/test` installs it).
#![cfg(feature = "redis")]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kvixi_core::{Config, Error, Kvixi, MemorySession};
use kvixi_mock::{App, Emulator, Endpoint};

const CALLBACK: &str = "http://localhost:3000/auth/kvixi/callback";
const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A `redis-server` on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `redis-server` is installed: outside CI, says so and skips when it is not;
/// under `CI=true`, fails.
fn redis_installed() -> bool {
    if !std::path::Path::new(REDIS_SERVER).exists() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "{REDIS_SERVER} is missing: `apt-get install redis-server`"
        );
        eprintln!("SKIPPED: {REDIS_SERVER} is missing; run scripts/test to install it");
        return false;
    }
    true
}

/// A loopback port nobody listens on (for now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn redis() -> Option<Redis> {
    redis_installed().then(|| redis_on(free_port()))
}

/// A `redis-server` on `port`, once it listens there.
fn redis_on(port: u16) -> Redis {
    let child = Command::new(REDIS_SERVER)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let started = Instant::now();
    // A connect that meets itself (same source and destination port) is not redis.
    while !TcpStream::connect(("127.0.0.1", port))
        .and_then(|s| Ok(s.local_addr()? != s.peer_addr()?))
        .unwrap_or(false)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis { child, port }
}

/// An instance's flow on the Redis at `port`, against `emulator`.
async fn instance(emulator: &Emulator, port: u16) -> Kvixi {
    let config = Config::builder("app", "secret", CALLBACK)
        .base_url(emulator.base_url())
        .cookie_key("the-fleet-shares-this-cookie-key-of-32+")
        .redis_url(format!("redis://127.0.0.1:{port}"))
        .build()
        .expect("valid config");
    let kvixi = Kvixi::new(config).expect("flow builds");
    kvixi
        .redis_ready(Duration::from_secs(10))
        .await
        .expect("redis answers");
    kvixi
}

/// The emulator and two instances' flows on the Redis at `port`.
async fn two_instances(port: u16) -> (Emulator, Kvixi, Kvixi) {
    let emulator = Emulator::builder()
        .app(App::new("app", "secret", CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let a = instance(&emulator, port).await;
    let b = instance(&emulator, port).await;
    (emulator, a, b)
}

#[tokio::test]
async fn a_pending_login_is_spent_once_for_every_instance_on_the_redis() {
    let Some(redis) = redis() else {
        return;
    };
    let (emulator, a, b) = two_instances(redis.port).await;

    let started = a.login(None);
    let key = emulator.issue_auth_key("app", "alice").expect("a key");
    let query = format!("auth_key={key}");
    let on_a = MemorySession::default();
    a.callback(&on_a, Some(&query), Some(&started.login_cookie))
        .await
        .expect("alice logs in on A");
    let exchanges = emulator.request_count(Endpoint::Authorize);

    // The same cookie, replayed on B (and on A again) with a fresh key: refused before
    // any call to Kvixi.
    for (name, flow) in [("B", &b), ("A", &a)] {
        let fresh = emulator.issue_auth_key("app", "alice").expect("a key");
        let query = format!("auth_key={fresh}");
        let session = MemorySession::default();
        let replayed = flow
            .callback(&session, Some(&query), Some(&started.login_cookie))
            .await;
        assert!(
            matches!(replayed, Err(Error::NoPendingLogin)),
            "{name}: {replayed:?}"
        );
        assert!(flow.current_user(&session).await.expect("read").is_none());
    }
    assert_eq!(
        emulator.request_count(Endpoint::Authorize),
        exchanges,
        "a spent login cookie costs Kvixi no call on any instance"
    );

    // A login started on A and finished on B works (the positive control).
    let started = a.login(None);
    let key = emulator.issue_auth_key("app", "bob").expect("a key");
    let query = format!("auth_key={key}");
    let on_b = MemorySession::default();
    b.callback(&on_b, Some(&query), Some(&started.login_cookie))
        .await
        .expect("a login started on A finishes on B");

    // Revocations default to the same Redis: revoking alice on B ends her session on A.
    b.revoke_user(&kvixi_mock::fixture::alice().user_id)
        .await
        .expect("revoked");
    let deadline = Instant::now() + Duration::from_secs(3);
    while a.current_user(&on_a).await.expect("read").is_some() {
        assert!(Instant::now() < deadline, "A learns of B's revocation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        b.current_user(&on_b).await.expect("read").is_some(),
        "bob stays"
    );
}

/// While Redis is away the callback answers 503 without a call to Kvixi; once a Redis
/// listens on that port, the same pending login (the same login cookie and auth_key)
/// logs in: the outage did not spend it. Spent then, it is refused when replayed.
#[tokio::test]
async fn redis_away_is_an_outage_not_a_spent_login() {
    // A port nobody listens on: the flow starts, the callback answers 503.
    let port = free_port();
    let emulator = Emulator::builder()
        .app(App::new("app", "secret", CALLBACK))
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let config = Config::builder("app", "secret", CALLBACK)
        .base_url(emulator.base_url())
        .session_store_timeout(Duration::from_millis(300))
        .redis_url(format!("redis://127.0.0.1:{port}"))
        .build()
        .expect("valid config");
    let kvixi = Kvixi::new(config).expect("starts while Redis is away");
    let started = kvixi.login(None);
    let key = emulator.issue_auth_key("app", "alice").expect("a key");
    let query = format!("auth_key={key}");
    let outcome = kvixi
        .callback(
            &MemorySession::default(),
            Some(&query),
            Some(&started.login_cookie),
        )
        .await;
    assert!(
        matches!(outcome, Err(Error::SessionStoreUnavailable { .. })),
        "{outcome:?}"
    );
    assert_eq!(emulator.request_count(Endpoint::Authorize), 0);

    // Redis comes back on the same port: the same callback is loaded again.
    if !redis_installed() {
        return;
    }
    let _redis = redis_on(port);
    kvixi
        .redis_ready(Duration::from_secs(10))
        .await
        .expect("the flow reconnects to the Redis back on its port");
    assert_eq!(
        emulator.request_count(Endpoint::Authorize),
        0,
        "the auth_key is still unused before the retry"
    );
    let session = MemorySession::default();
    let retried = kvixi
        .callback(&session, Some(&query), Some(&started.login_cookie))
        .await;
    assert!(
        retried.is_ok(),
        "the same pending login, retried once Redis is back, logs in (the outage did not \
         spend it): {retried:?}"
    );
    assert_eq!(
        emulator.request_count(Endpoint::Authorize),
        1,
        "the retry exchanged the auth_key, once"
    );
    let user = kvixi
        .current_user(&session)
        .await
        .expect("read")
        .expect("alice's session is written");
    assert_eq!(user.id, kvixi_mock::fixture::alice().user_id, "{user:?}");

    // Spent now, in Redis: the same cookie again, with a fresh key, buys nothing.
    let fresh = emulator.issue_auth_key("app", "alice").expect("a key");
    let replay = MemorySession::default();
    let replayed = kvixi
        .callback(
            &replay,
            Some(&format!("auth_key={fresh}")),
            Some(&started.login_cookie),
        )
        .await;
    assert!(
        matches!(replayed, Err(Error::NoPendingLogin)),
        "{replayed:?}"
    );
    assert_eq!(emulator.request_count(Endpoint::Authorize), 1);
}

/// Two "log out everywhere" in one second, on two instances: the second ends the
/// sessions begun between them (dated one second after the first stamp), not only the
/// older ones.
#[tokio::test]
async fn a_second_revocation_in_one_second_reaches_the_logins_between() {
    use kvixi_core::flow::{UnixTime, login_time};
    use kvixi_core::{RedisRevocations, Revocations};

    let Some(redis) = redis() else {
        return;
    };
    let (_emulator, a, b) = two_instances(redis.port).await;
    let on_a = RedisRevocations::new(a.redis().expect("a pool").clone());
    let on_b = RedisRevocations::new(b.redis().expect("a pool").clone());
    let keep = Duration::from_secs(3600);
    on_a.revoke("1001", UnixTime(100), keep)
        .await
        .expect("revoked");
    let phone = login_time(
        UnixTime(100),
        on_b.latest_revocation("1001").await.expect("read"),
    );
    on_b.revoke("1001", UnixTime(100), keep)
        .await
        .expect("revoked");
    let stamp = on_a
        .latest_revocation("1001")
        .await
        .expect("read")
        .expect("a stamp");
    assert!(
        phone <= stamp,
        "the phone's session (dated {phone:?}) survives the second revocation (stamp {stamp:?})"
    );
}

/// `redis-cli INFO commandstats` of the Redis at `port`: calls per command.
fn command_calls(port: u16) -> std::collections::HashMap<String, u64> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "info", "commandstats"])
        .output()
        .expect("redis-cli runs (redis-tools)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// What changed between two [`command_calls`], without the `info` of the second.
fn commands_between(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
) -> Vec<(String, u64)> {
    let mut changed: Vec<_> = after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .filter_map(|(name, calls)| {
            let delta = calls - before.get(name).copied().unwrap_or(0);
            (delta > 0).then(|| (name.clone(), delta))
        })
        .collect();
    changed.sort();
    changed
}

/// "Your devices" on Redis (issue 30), the cost measured in Redis's own command counts:
/// a login adds one index write (one `EVAL`), and listing a user with 50 sessions (55
/// logged in) on an instance with nothing cached is one pipeline of a `GET` and an
/// `HGETALL`: one round trip. The figures are printed for BENCHMARKS.md.
#[tokio::test]
async fn your_devices_on_redis_is_one_write_per_login_and_one_round_trip_per_list() {
    let Some(redis) = redis() else {
        return;
    };
    let (emulator, a, b) = two_instances(redis.port).await;
    let log_in = async |flow: &Kvixi| {
        let started = flow.login(None);
        let key = emulator.issue_auth_key("app", "alice").expect("a key");
        let query = format!("auth_key={key}");
        let session = MemorySession::default();
        flow.callback(&session, Some(&query), Some(&started.login_cookie))
            .await
            .expect("alice logs in");
    };
    for _ in 0..54 {
        log_in(&a).await;
    }
    let before = command_calls(redis.port);
    log_in(&a).await;
    let login = commands_between(&before, &command_calls(redis.port));
    println!("one login, Redis commands: {login:?}");
    // Redis counts the commands a script runs too (`hset`, `hlen`, ...): the round
    // trips are the `eval` (the index), the `get` (the stamp a login starts after) and
    // the `set` (the spent login), as before the index but for the `eval`.
    assert_eq!(
        login
            .iter()
            .find(|(name, _)| name == "eval")
            .map(|(_, n)| *n),
        Some(1),
        "one index write per login: {login:?}"
    );
    let outside_scripts: Vec<_> = login
        .iter()
        .filter(|(name, _)| ["eval", "get", "set", "del", "exists"].contains(&name.as_str()))
        .collect();
    assert_eq!(outside_scripts.len(), 3, "{login:?}");

    let alice = kvixi_mock::fixture::alice().user_id;
    let before = command_calls(redis.port);
    let listed = b.sessions_of(&alice).await.expect("listed");
    let list = commands_between(&before, &command_calls(redis.port));
    println!("sessions_of (50 listed), Redis commands: {list:?}");
    assert_eq!(listed.len(), 50, "the newest 50 of 55");
    assert_eq!(
        list,
        vec![("get".to_owned(), 1), ("hgetall".to_owned(), 1)],
        "one pipeline, nothing else"
    );
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        b.sessions_of(&alice).await.expect("listed");
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "sessions_of (50 listed) on loopback Redis: median {:?}, p99 {:?} over 200",
        times[100], times[198]
    );
}
