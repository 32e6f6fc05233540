//! The Redis rows (issue 22): the authenticated path with sessions on a `redis-server`
//! this run starts itself (a free loopback port, nothing saved to disk, killed when the
//! run ends), through each adapter's one-line setup on `KVIXI_REDIS_URL`, against the
//! floor on the same session layer and the same store on the flow's own pool; and the
//! Redis keys each logged-in user leaves behind.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use kvixi_bench::redis_server::{Redis, Unavailable};

use crate::provider::Provider;

/// Distinct users each framework logs in through the whole flow before the keys are
/// counted.
pub const USERS: usize = 100;

/// Rounds of the Redis rows' interleaved comparison: a request there waits for
/// `redis-server` to wake up and answer, which varies more than in-process work.
pub const ROUNDS: usize = 101;

/// Redis keys per logged-in user, by framework.
static KEYS_PER_USER: Mutex<BTreeMap<&'static str, f64>> = Mutex::new(BTreeMap::new());

/// The run's `redis-server`, or `None` (with a printed line) when it is not installed.
///
/// # Panics
///
/// When it is installed and does not start, and under `CI=true` when it is missing: a
/// CI run must not pass without its Redis rows.
pub fn start() -> Option<Redis> {
    match Redis::start() {
        Ok(redis) => Some(redis),
        Err(Unavailable::NotInstalled) if std::env::var("CI").as_deref() != Ok("true") => {
            println!("Redis rows skipped: redis-server is not installed");
            None
        }
        Err(why) => panic!("the Redis rows need redis-server: {why}"),
    }
}

/// Adds the users [`keys_per_user`] logs in to the emulator.
pub fn add_users(provider: &Provider) {
    for i in 0..USERS {
        provider.add_user(&user_id(i), &user_name(i));
    }
}

fn user_name(i: usize) -> String {
    format!("bench-user-{i}")
}

fn user_id(i: usize) -> String {
    format!("{}", 50_000 + i)
}

/// Logs [`USERS`] distinct users in with `log_in` (each through the login route, the
/// emulator and the callback, as a browser of its own) and records how many keys the
/// Redis gained, per user, for `framework`.
pub fn keys_per_user(redis: &Redis, framework: &'static str, mut log_in: impl FnMut(&str)) {
    let before = redis.key_count().expect("DBSIZE before the logins");
    for i in 0..USERS {
        log_in(&user_name(i));
    }
    let after = redis.key_count().expect("DBSIZE after the logins");
    let per_user = after.saturating_sub(before) as f64 / USERS as f64;
    KEYS_PER_USER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(framework, per_user);
}

/// The Redis keys per logged-in user measured for `framework`.
pub fn keys_per_user_of(framework: &str) -> Option<f64> {
    KEYS_PER_USER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(framework)
        .copied()
}
