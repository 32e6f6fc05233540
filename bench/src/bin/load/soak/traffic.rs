//! The soak's traffic: a round-robin balancer over the instances, and browsers that log
//! in, browse and log out, each knowing whether it should be logged in.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kvixi_core::SESSION_COOKIE;
use rand::Rng as _;
use reqwest::cookie::Jar;
use reqwest::{Client, RequestBuilder, StatusCode, header};
use url::Url;

use super::ledger::{Class, Kind, Ledger};

/// How long a revocation may take to reach every instance: their caches hold a stamp for
/// 1 s (plus scheduling on a busy machine).
pub const REVOCATION_BOUND: Duration = Duration::from_millis(1500);
/// The most any request waits for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a connection idles in the balancer's pool: under every framework's keep-alive
/// timeout (5 s for actix and Rocket), as a balancer is configured, so that it never
/// sends a request on a connection the instance is closing.
const IDLE: Duration = Duration::from_secs(2);
const HTML: &str = "text/html,application/xhtml+xml";
pub(super) const JSON: &str = "application/json";

/// One soak user: two browsers (a laptop and a phone) log in as each.
pub struct User {
    /// `user_name` at Kvixi, shown on the pages.
    pub name: String,
    /// `user_id` at Kvixi, in `/me/app`.
    pub id: String,
    /// The user's "log out everywhere" calls so far.
    revokes: Mutex<Vec<Revoke>>,
}

impl User {
    /// Soak user number `n`.
    pub fn new(n: usize) -> User {
        User {
            name: format!("soaker-{n:02}"),
            id: format!("73101{n:02}"),
            revokes: Mutex::new(Vec::new()),
        }
    }
}

/// A "log out everywhere" as one browser saw it: recorded before it is sent, so that
/// the other device's logged-out answer while it is in flight is explained by it.
#[derive(Clone, Copy)]
struct Revoke {
    sent: Instant,
    /// When its answer came (`None` while in flight).
    answered: Option<Instant>,
    /// It answered 303 from a live session (else a 5xx, or from a session that may have
    /// been revoked already: it may or may not have revoked anyone).
    certain: bool,
    /// It answered 5xx: the store failed, so it wrote no stamp and explains no logout.
    /// (Without an answer, as when its instance is killed mid-request, it may have
    /// written its stamp first: not failed.)
    failed: bool,
}

/// What every task shares.
pub struct Shared {
    /// The instances' base URLs; a restart may move one.
    pub bases: RwLock<Vec<Url>>,
    next: AtomicUsize,
    /// The counts.
    pub ledger: Arc<Ledger>,
    stop: AtomicBool,
    /// Session cookies logged out (or revoked), usable for replays from this instant.
    dead_cookies: Mutex<VecDeque<(String, Instant)>>,
    /// The current session cookie of each browser.
    live_cookies: Mutex<Vec<Option<String>>>,
}

impl Shared {
    /// Traffic to `bases`, counted in `ledger`, for `browsers` browsers.
    pub fn new(bases: Vec<Url>, ledger: Arc<Ledger>, browsers: usize) -> Shared {
        Shared {
            bases: RwLock::new(bases),
            next: AtomicUsize::new(0),
            ledger,
            stop: AtomicBool::new(false),
            dead_cookies: Mutex::new(VecDeque::new()),
            live_cookies: Mutex::new(vec![None; browsers]),
        }
    }

    /// Asks every task to finish its current step and end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sends a request built by `build` for an instance's base URL to the next instance,
    /// as a balancer would: an instance that refuses the connection (killed, restarting)
    /// is skipped. Counts the answer; `None` when there is none (counted as the 502 or
    /// 504 a balancer would answer).
    pub(super) async fn send(
        &self,
        what: &str,
        build: impl Fn(&Url) -> RequestBuilder,
    ) -> Option<Answer> {
        let bases = read(&self.bases).clone();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let class = Class::of(what);
        let mut last_error = String::new();
        for attempt in 0..bases.len() {
            let instance = (first + attempt) % bases.len();
            match build(&bases[instance])
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status();
                    self.ledger
                        .answer(sent, status.as_u16(), class, Some(instance), || {
                            format!("{what} on instance {instance}: {status}")
                        });
                    return Some(Answer {
                        response,
                        instance,
                        sent,
                    });
                }
                Err(error) if error.is_connect() => {
                    // Judged at the end: outside that instance's restart, a failure.
                    Ledger::bump(&self.ledger.rerouted);
                    self.ledger
                        .outage(instance, || format!("rerouted {what}: {error}"));
                    last_error = error.to_string();
                }
                Err(error) => {
                    let status = if error.is_timeout() { 504 } else { 502 };
                    self.ledger.answer(sent, status, class, Some(instance), || {
                        format!("{what} on instance {instance}: no answer ({error})")
                    });
                    return None;
                }
            }
        }
        self.ledger.answer(sent, 502, class, None, || {
            format!("{what}: no instance accepts a connection ({last_error})")
        });
        None
    }

    /// The instances' base URLs now.
    pub(super) fn bases(&self) -> Vec<Url> {
        read(&self.bases).clone()
    }

    /// Sends a request to the next instance without counting it (the calibration): its
    /// status, `None` without an answer.
    pub(super) async fn send_uncounted(
        &self,
        build: impl Fn(&Url) -> RequestBuilder,
    ) -> Option<StatusCode> {
        let bases = self.bases();
        let instance = self.next.fetch_add(1, Ordering::Relaxed) % bases.len().max(1);
        let response = build(bases.get(instance)?)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .ok()?;
        Some(response.status())
    }

    pub(super) fn dead_cookie(&self) -> Option<String> {
        let mut dead = lock(&self.dead_cookies);
        let ready = dead
            .front()
            .is_some_and(|(_, from)| *from <= Instant::now());
        if !ready {
            return None;
        }
        let (cookie, _) = dead.pop_front()?;
        Some(cookie)
    }

    fn bury(&self, cookie: Option<String>) {
        if let Some(cookie) = cookie {
            let mut dead = lock(&self.dead_cookies);
            if dead.len() < 1000 {
                dead.push_back((cookie, Instant::now() + REVOCATION_BOUND));
            }
        }
    }

    pub(super) fn live_cookie(&self) -> Option<String> {
        let live = lock(&self.live_cookies);
        let cookies: Vec<&String> = live.iter().flatten().collect();
        if cookies.is_empty() {
            return None;
        }
        Some(cookies[rand::rng().random_range(0..cookies.len())].clone())
    }
}

/// An answer from one instance.
pub(super) struct Answer {
    pub(super) response: reqwest::Response,
    pub(super) instance: usize,
    sent: Instant,
}

impl Answer {
    pub(super) fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The answer's body; `None` when it broke off (the instance killed or restarted
    /// mid-answer), counted as the 502 a balancer would answer: an empty body is not a
    /// page without the user.
    pub(super) async fn body(self, ledger: &Ledger, what: &str) -> Option<String> {
        let (sent, instance) = (self.sent, self.instance);
        match self.response.text().await {
            Ok(body) => Some(body),
            Err(error) => {
                ledger.answer(sent, 502, Class::of(what), Some(instance), || {
                    format!("{what} on instance {instance}: the body broke off ({error})")
                });
                None
            }
        }
    }

    fn location(&self) -> Option<Url> {
        let value = self
            .response
            .headers()
            .get(header::LOCATION)?
            .to_str()
            .ok()?;
        Url::parse("http://127.0.0.1/").ok()?.join(value).ok()
    }

    /// Whether it sets a session cookie with a value (not a removal).
    pub(super) fn sets_session(&self) -> bool {
        self.response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|cookie| {
                cookie
                    .strip_prefix(&format!("{SESSION_COOKIE}="))
                    .is_some_and(|rest| !rest.starts_with(';') && !rest.is_empty())
                    && !cookie.contains("Max-Age=0")
            })
    }
}

/// Whether a browser should be logged in.
#[derive(Clone, Copy, Debug)]
enum State {
    Anonymous,
    /// Logged in by a callback sent at `sent` and answered at `answered`. `sure` is false
    /// after a logout that answered 5xx: logged in or out, either is right.
    LoggedIn {
        sent: Instant,
        answered: Instant,
        sure: bool,
        /// A read sent at this instant answered 200 as the user: a "log out everywhere"
        /// answered more than [`REVOCATION_BOUND`] before it did not end this session,
        /// and explains no later logout.
        seen: Instant,
    },
}

/// One browser: a cookie jar, a user, and what it expects.
pub struct Browser {
    index: usize,
    name: String,
    user: Arc<User>,
    client: Client,
    jar: Arc<Jar>,
    state: State,
    /// Where and when (seconds from the start) the current login's callback answered,
    /// and how many reads it has had: for the ledger's examples.
    login: (usize, f64, u32),
}

impl Browser {
    /// Browser `index`, logging in as `user`.
    pub fn new(index: usize, user: Arc<User>) -> Browser {
        let jar = Arc::new(Jar::default());
        let client = client(Some(jar.clone()));
        let device = if index % 2 == 0 { "laptop" } else { "phone" };
        Browser {
            index,
            name: format!("{}'s {device}", user.name),
            user,
            client,
            jar,
            state: State::Anonymous,
            login: (0, 0.0, 0),
        }
    }

    /// Logs in, browses and logs out until the soak stops.
    pub async fn run(mut self, shared: Arc<Shared>) {
        while !shared.stopped() {
            let pause = match self.state {
                State::Anonymous => {
                    if self.log_in(&shared).await {
                        think()
                    } else {
                        Duration::from_millis(500)
                    }
                }
                State::LoggedIn { .. } => {
                    let roll = rand::rng().random_range(0..100);
                    if roll < 3 {
                        self.log_out(&shared, false).await;
                    } else if roll < 4 {
                        self.log_out(&shared, true).await;
                    } else {
                        self.read(&shared).await;
                    }
                    think()
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    fn session_cookie(&self) -> Option<String> {
        let url = Url::parse("http://127.0.0.1/").ok()?;
        kvixi_e2e::jar_cookie(&self.jar, &url, SESSION_COOKIE)
    }

    fn publish(&self, shared: &Shared) {
        // The open-loop readers are not among the browsers whose cookies are replayed.
        if let Some(slot) = lock(&shared.live_cookies).get_mut(self.index) {
            *slot = match self.state {
                State::LoggedIn { .. } => self.session_cookie(),
                State::Anonymous => None,
            };
        }
    }

    /// Logs in once for an open-loop reader: its `Cookie` header value on success.
    pub(super) async fn log_in_for_reader(&mut self, shared: &Shared) -> Option<String> {
        if !self.log_in(shared).await {
            return None;
        }
        let cookie = self.session_cookie()?;
        Some(format!("{SESSION_COOKIE}={cookie}"))
    }

    /// The login: start on one instance, approve at Kvixi, callback on the next.
    async fn log_in(&mut self, shared: &Shared) -> bool {
        let ledger = &shared.ledger;
        let return_to = ["/account", "/me/app", "/private"][rand::rng().random_range(0..3)];
        let path = format!("/auth/kvixi/login?return_to={}", encode(return_to));
        let Some(start) = shared
            .send("GET /auth/kvixi/login", |base| {
                self.client
                    .get(join(base, &path))
                    .header(header::ACCEPT, HTML)
            })
            .await
        else {
            return false;
        };
        if start.status() != StatusCode::SEE_OTHER {
            self.refused(shared, "the login start", &start);
            return false;
        }
        let Some(mut kvixi) = start.location() else {
            ledger.record(Kind::Unexpected, || {
                format!("{}: the login start has no Location", self.name)
            });
            return false;
        };
        kvixi
            .query_pairs_mut()
            .append_pair("mock_user", &self.user.name);
        let approved = match self.client.get(kvixi).timeout(REQUEST_TIMEOUT).send().await {
            Ok(approved) if approved.status() == StatusCode::SEE_OTHER => approved,
            other => {
                let what = other.map_or_else(|e| e.to_string(), |r| r.status().to_string());
                ledger.record(Kind::Unexpected, || {
                    format!("{}: the emulator's approval: {what}", self.name)
                });
                return false;
            }
        };
        let Some(callback) = approved
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Url::parse(v).ok())
        else {
            ledger.record(Kind::Unexpected, || {
                format!("{}: the emulator's approval has no Location", self.name)
            });
            return false;
        };
        let Some(done) = shared
            .send("GET /auth/kvixi/callback", |base| {
                self.client
                    .get(rewrite(&callback, base))
                    .header(header::ACCEPT, HTML)
            })
            .await
        else {
            return false;
        };
        let landed = done.location().map(|url| url.path().to_owned());
        if done.status() == StatusCode::SEE_OTHER && landed.as_deref() == Some(return_to) {
            self.state = State::LoggedIn {
                sent: done.sent,
                answered: Instant::now(),
                sure: true,
                seen: done.sent,
            };
            self.login = (done.instance, ledger.now(), 0);
            Ledger::bump(&ledger.logins);
            self.publish(shared);
            true
        } else {
            self.refused(shared, "the callback", &done);
            false
        }
    }

    /// A login step that did not go on: a 5xx is the fault's (counted already), anything
    /// else refused an honest browser.
    fn refused(&self, shared: &Shared, step: &str, answer: &Answer) {
        let status = answer.status();
        if status.is_server_error() {
            Ledger::bump(&shared.ledger.logins_refused);
        } else {
            shared.ledger.record(Kind::Unexpected, || {
                format!(
                    "{}: {step} on instance {} answered {status} ({:?})",
                    self.name,
                    answer.instance,
                    answer.location().map(|u| u.path().to_owned())
                )
            });
        }
    }

    /// One read of a logged-in page: JSON `/me` or `/me/app`, or the HTML `/account` or
    /// `/private`, each checked against the browser's user and its expectation.
    async fn read(&mut self, shared: &Shared) {
        let page = match rand::rng().random_range(0..10) {
            0..5 => ("/me", JSON),
            5..7 => ("/me/app", JSON),
            7..9 => ("/account", HTML),
            _ => ("/private", HTML),
        };
        self.read_page(shared, page).await;
    }

    /// A read of `path` (with `accept`), judged against the browser's expectation.
    async fn read_page(&mut self, shared: &Shared, (path, accept): (&str, &str)) {
        let ledger = &shared.ledger;
        let what = format!("GET {path}");
        let Some(answer) = shared
            .send(&what, |base| {
                self.client
                    .get(join(base, path))
                    .header(header::ACCEPT, accept)
            })
            .await
        else {
            return;
        };
        let (status, instance, sent) = (answer.status(), answer.instance, answer.sent);
        let anonymous = status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::SEE_OTHER
                && answer.location().is_some_and(|url| {
                    url.path() == "/sign-in" || url.path() == "/auth/kvixi/login"
                }));
        if status == StatusCode::OK {
            let Some(body) = answer.body(ledger, &what).await else {
                return;
            };
            let expected = if path == "/me/app" {
                &self.user.id
            } else {
                &self.user.name
            };
            if !body.contains(expected.as_str()) {
                ledger.record(Kind::Breach, || {
                    format!(
                        "{}: {what} on instance {instance} answered 200 without {expected}",
                        self.name
                    )
                });
            } else if self.must_be_revoked(sent) {
                ledger.record(Kind::Breach, || {
                    format!(
                        "{}: {what} on instance {instance} answered 200 more than {REVOCATION_BOUND:?} after a \"log out everywhere\"",
                        self.name
                    )
                });
            } else {
                Ledger::bump(&ledger.reads);
                self.login.2 += 1;
                if let State::LoggedIn {
                    sent: login,
                    answered,
                    seen,
                    ..
                } = self.state
                {
                    self.state = State::LoggedIn {
                        sent: login,
                        answered,
                        sure: true,
                        seen: seen.max(sent),
                    };
                }
            }
        } else if anonymous {
            if self.may_be_revoked() {
                Ledger::bump(&ledger.expected_logouts);
            } else {
                let cookie = self.session_cookie().unwrap_or_default();
                let (login_instance, login_at, reads) = self.login;
                ledger.record(Kind::Lost, || {
                    format!(
                        "{}: {what} on instance {instance} answered {status}: logged out \
                         (logged in on instance {login_instance} at {login_at:.2}s, {reads} reads since; \
                         session cookie {}…)",
                        self.name,
                        cookie.chars().take(12).collect::<String>()
                    )
                });
            }
            self.state = State::Anonymous;
            self.publish(shared);
        } else if !status.is_server_error() {
            ledger.record(Kind::Unexpected, || {
                format!(
                    "{}: {what} on instance {instance} answered {status}",
                    self.name
                )
            });
        }
    }

    /// Whether a request sent at `sent` must find this browser's session revoked: a "log
    /// out everywhere" answered 303 after the login ended, and more than the bound before.
    fn must_be_revoked(&self, sent: Instant) -> bool {
        let State::LoggedIn { answered, .. } = self.state else {
            return false;
        };
        lock(&self.user.revokes).iter().any(|revoke| {
            revoke.certain
                && revoke.sent > answered
                && revoke
                    .answered
                    .is_some_and(|done| sent > done + REVOCATION_BOUND)
        })
    }

    /// Whether the session may have ended for a reason the ledger knows: a logout that
    /// answered 5xx, or a "log out everywhere" that wrote its stamp (it did not fail)
    /// after this login began and that no 200 read since has outlived.
    fn may_be_revoked(&self) -> bool {
        match self.state {
            State::Anonymous => true,
            State::LoggedIn { sure: false, .. } => true,
            State::LoggedIn { sent, seen, .. } => lock(&self.user.revokes).iter().any(|revoke| {
                !revoke.failed
                    && revoke
                        .answered
                        .is_none_or(|done| done > sent && done + REVOCATION_BOUND > seen)
            }),
        }
    }

    /// `POST /auth/kvixi/logout` (or `logout-everywhere`), as the page's form sends it.
    async fn log_out(&mut self, shared: &Shared, everywhere: bool) {
        let path = if everywhere {
            "/auth/kvixi/logout-everywhere"
        } else {
            "/auth/kvixi/logout"
        };
        // The session is judged before it ends: a lost one must not hide behind the
        // logout's 303 (which answers a logged-out browser the same).
        self.read_page(shared, ("/me", JSON)).await;
        if matches!(self.state, State::Anonymous) {
            return;
        }
        let cookie = self.session_cookie();
        // A session another device's "log out everywhere" may have ended is anonymous to
        // the app: its own "log out everywhere" then revokes no one.
        let live = !self.may_be_revoked();
        let pending = everywhere.then(|| {
            let mut revokes = lock(&self.user.revokes);
            revokes.push(Revoke {
                sent: Instant::now(),
                answered: None,
                certain: false,
                failed: false,
            });
            revokes.len() - 1
        });
        let Some(answer) = shared
            .send(&format!("POST {path}"), |base| {
                self.client
                    .post(join(base, path))
                    .header(header::ACCEPT, HTML)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body("")
            })
            .await
        else {
            // No answer (its instance killed or restarted mid-request): it may have
            // written its stamp before the answer was lost, as CI saw once.
            self.unsure(pending, false);
            return;
        };
        let status = answer.status();
        if status == StatusCode::SEE_OTHER {
            Ledger::bump(&shared.ledger.logouts);
            if everywhere {
                Ledger::bump(&shared.ledger.everywhere);
                if let Some(index) = pending {
                    let revoke = &mut lock(&self.user.revokes)[index];
                    revoke.answered = Some(Instant::now());
                    revoke.certain = live;
                }
            }
            self.state = State::Anonymous;
            self.publish(shared);
            shared.bury(cookie);
        } else if status.is_server_error() {
            self.unsure(pending, true);
        } else {
            if let Some(index) = pending {
                lock(&self.user.revokes)[index].answered = Some(Instant::now());
            }
            shared.ledger.record(Kind::Unexpected, || {
                format!(
                    "{}: POST {path} on instance {} answered {status}",
                    self.name, answer.instance
                )
            });
        }
    }

    /// A logout without a clear answer (5xx, or none): this browser's own session may
    /// or may not have ended. A "log out everywhere" that answered 5xx (`failed`) wrote
    /// no stamp, so it explains no other device's logout; one without an answer may have.
    fn unsure(&mut self, pending: Option<usize>, failed: bool) {
        if let State::LoggedIn {
            sent: login,
            answered,
            seen,
            ..
        } = self.state
        {
            self.state = State::LoggedIn {
                sent: login,
                answered,
                sure: false,
                seen,
            };
        }
        if let Some(index) = pending {
            let revoke = &mut lock(&self.user.revokes)[index];
            revoke.answered = Some(Instant::now());
            revoke.failed = failed;
        }
    }
}

/// A client with keep-alive (a balancer's connections), no redirects followed, and a
/// cookie jar when given one.
pub(super) fn client(jar: Option<Arc<Jar>>) -> Client {
    let builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(IDLE)
        .timeout(REQUEST_TIMEOUT);
    let builder = match jar {
        Some(jar) => builder.cookie_provider(jar),
        None => builder,
    };
    builder.build().unwrap_or_else(|_| Client::new())
}

/// A browser's pause between two steps: 100 to 300 ms.
fn think() -> Duration {
    Duration::from_millis(rand::rng().random_range(100..300))
}

pub(super) fn join(base: &Url, path: &str) -> Url {
    base.join(path).unwrap_or_else(|_| base.clone())
}

/// `url` (the balancer's address) sent to the instance at `base`.
fn rewrite(url: &Url, base: &Url) -> Url {
    let mut url = url.clone();
    let _ = url.set_host(base.host_str());
    let _ = url.set_port(base.port());
    url
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
