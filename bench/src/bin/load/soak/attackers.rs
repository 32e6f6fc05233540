//! The soak's attackers: bots on the login route and the callback with made-up keys, and
//! a trickle of hostile requests (forged, replayed and tampered session cookies, huge and
//! malformed query strings, wrong methods). None may ever get a session.

use std::sync::Arc;
use std::time::Duration;

use kvixi_core::SESSION_COOKIE;
use kvixi_core::flow::LOGIN_COOKIE;
use rand::Rng as _;
use reqwest::{Client, RequestBuilder, header};
use url::Url;

use super::ledger::{Kind, Ledger};
use super::traffic::{JSON, Shared, client, join};

/// A bot: starts a login, calls back with a made-up key (with its login cookie, or with
/// none), and starts again, every `pace`.
pub async fn bot(index: usize, shared: Arc<Shared>, pace: Duration) {
    let client = client(None);
    let mut round = 0usize;
    while !shared.stopped() {
        round += 1;
        let login_cookie = if round % 3 == 0 {
            None
        } else {
            Ledger::bump(&shared.ledger.bot_requests);
            let start = shared
                .send("bot GET /auth/kvixi/login", |base| {
                    client.get(join(base, "/auth/kvixi/login?return_to=/private"))
                })
                .await;
            start.as_ref().and_then(|answer| {
                answer
                    .response
                    .headers()
                    .get_all(header::SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find(|c| c.starts_with(&format!("{LOGIN_COOKIE}=")))
                    .and_then(|c| c.split(';').next())
                    .map(str::to_owned)
            })
        };
        let key: String = (0..32)
            .map(|_| char::from(b"0123456789abcdef"[rand::rng().random_range(0..16)]))
            .collect();
        let path = format!("/auth/kvixi/callback?auth_key={key}");
        Ledger::bump(&shared.ledger.bot_requests);
        let answer = shared
            .send("bot GET /auth/kvixi/callback", |base| {
                let request = client.get(join(base, &path));
                match &login_cookie {
                    Some(cookie) => request.header(header::COOKIE, cookie),
                    None => request,
                }
            })
            .await;
        if let Some(answer) = answer {
            let status = answer.status();
            if answer.sets_session() {
                shared.ledger.record(Kind::Breach, || {
                    format!(
                        "bot {index}: a made-up auth_key got a session on instance {} ({status})",
                        answer.instance
                    )
                });
            } else if status.is_success() || status.is_redirection() {
                shared.ledger.record(Kind::Unexpected, || {
                    format!(
                        "bot {index}: a made-up auth_key answered {status} on instance {}",
                        answer.instance
                    )
                });
            }
        }
        tokio::time::sleep(pace).await;
    }
}

/// Hostile requests, one every `pace`, in turn: forged, replayed and tampered session
/// cookies (each must be anonymous), huge and malformed query strings, wrong methods.
pub async fn hostile(shared: Arc<Shared>, pace: Duration) {
    let client = client(None);
    let mut round = 0usize;
    while !shared.stopped() {
        round += 1;
        Ledger::bump(&shared.ledger.hostile_requests);
        match round % 8 {
            0 => {
                let forged: String = (0..43)
                    .map(|_| {
                        char::from(b"ABCDEFabcdef0123456789-_"[rand::rng().random_range(0..24)])
                    })
                    .collect();
                must_be_anonymous(&shared, &client, "a forged session cookie", &forged).await;
            }
            1 => {
                if let Some(cookie) = shared.dead_cookie() {
                    must_be_anonymous(&shared, &client, "a logged-out session cookie", &cookie)
                        .await;
                }
            }
            2 => {
                if let Some(cookie) = shared.live_cookie() {
                    let tampered = tamper(&cookie);
                    must_be_anonymous(&shared, &client, "a tampered session cookie", &tampered)
                        .await;
                }
            }
            3 => {
                let huge = format!("/auth/kvixi/login?return_to=/{}", "A".repeat(20_000));
                no_session(
                    &shared,
                    &client,
                    "a 20 kB return_to",
                    |c, url| c.get(url),
                    &huge,
                )
                .await;
            }
            4 => {
                let path = "/auth/kvixi/callback?auth_key=%zz%ff&auth_key=two&x=%00%C0";
                no_session(
                    &shared,
                    &client,
                    "a malformed callback",
                    |c, url| c.get(url),
                    path,
                )
                .await;
            }
            5 => {
                let (method, path) = [
                    (reqwest::Method::DELETE, "/auth/kvixi/login"),
                    (reqwest::Method::PUT, "/me"),
                    (reqwest::Method::GET, "/auth/kvixi/logout-everywhere"),
                    (reqwest::Method::POST, "/auth/kvixi/callback?auth_key=x"),
                ][round / 8 % 4]
                    .clone();
                let what = format!("{method} {path}");
                no_session(
                    &shared,
                    &client,
                    &what,
                    |c, url| c.request(method.clone(), url),
                    path,
                )
                .await;
            }
            6 => {
                let junk = "x".repeat(6000);
                must_be_anonymous(&shared, &client, "a 6 kB session cookie", &junk).await;
            }
            _ => {
                let path = "/auth/kvixi/login?return_to=https%3A%2F%2Fevil.example%2F";
                no_session(
                    &shared,
                    &client,
                    "an open-redirect attempt",
                    |c, url| c.get(url),
                    path,
                )
                .await;
            }
        }
        tokio::time::sleep(pace).await;
    }
}

/// `/me` with `cookie` as the session cookie must not answer 200.
async fn must_be_anonymous(shared: &Shared, client: &Client, what: &str, cookie: &str) {
    let header_value = format!("{SESSION_COOKIE}={cookie}");
    let answer = shared
        .send(&format!("GET /me with {what}"), |base| {
            client
                .get(join(base, "/me"))
                .header(header::ACCEPT, JSON)
                .header(header::COOKIE, &header_value)
        })
        .await;
    if let Some(answer) = answer {
        if answer.status().is_success() {
            shared.ledger.record(Kind::Breach, || {
                format!(
                    "GET /me with {what} answered {} on instance {}",
                    answer.status(),
                    answer.instance
                )
            });
        }
    }
}

/// A hostile request that must not log anyone in (any answer below 500 is fine).
async fn no_session(
    shared: &Shared,
    client: &Client,
    what: &str,
    method: impl Fn(&Client, Url) -> RequestBuilder,
    path: &str,
) {
    let answer = shared
        .send(what, |base| method(client, join(base, path)))
        .await;
    if let Some(answer) = answer {
        if answer.sets_session() {
            shared.ledger.record(Kind::Breach, || {
                format!("{what} got a session on instance {}", answer.instance)
            });
        }
    }
}

/// `cookie` with one character in its middle changed.
fn tamper(cookie: &str) -> String {
    let mut chars: Vec<char> = cookie.chars().collect();
    let middle = chars.len() / 2;
    if let Some(c) = chars.get_mut(middle) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}
