//! The fairing: routes, catcher, flow and session store in one `attach`.

use std::sync::Arc;

use kvixi_core::{CookieSessions, Kvixi};
use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Request, Response, Rocket};
use tower_sessions_core::SessionStore;

use crate::response::{KvixiResponse, catcher};
use crate::routes::routes;

/// Kvixi login for a Rocket app: attach it once.
///
/// At ignition it mounts the login, callback and logout routes at the paths of the
/// [`Config`](kvixi_core::Config), registers a 401 catcher at `/` that answers refused
/// guards (see the [crate docs](crate#anonymous-requests-and-your-own-catchers)), and
/// manages the [`Kvixi`] flow as state (unless the app manages one already), so handlers
/// can take `&State<Kvixi>`.
///
/// Sessions live in the shared Redis when the config names one (`KVIXI_REDIS_URL`), else
/// in memory, unless [`store`](KvixiFairing::store) names another store: in a
/// [`kvixi_core::MemoryStore`], which holds at most
/// [`Config::max_memory_sessions`](kvixi_core::Config::max_memory_sessions) sessions
/// (100 000 unless configured), drops the least recently used past that, and frees
/// expired sessions without a request having to touch them, so a flood of anonymous or
/// bot traffic costs bounded memory. To keep a handle on it (its `len` for monitoring),
/// build it yourself:
///
/// ```
/// use kvixi_core::MemoryStore;
/// use kvixi_rocket::{Kvixi, KvixiFairing};
///
/// # fn run(config: kvixi_rocket::Config) -> Result<(), kvixi_core::Error> {
/// let kvixi = Kvixi::new(config)?;
/// let store = MemoryStore::from_config(kvixi.config());
/// let rocket = rocket::build().attach(KvixiFairing::new(kvixi).store(store.clone()));
/// println!("{} sessions held", store.len());
/// # Ok(())
/// # }
/// ```
pub struct KvixiFairing {
    kvixi: Kvixi,
    sessions: Arc<CookieSessions>,
    /// Why this setup must not start (a shared store with per-process revocations).
    misconfigured: Option<kvixi_core::Error>,
}

impl KvixiFairing {
    /// Serves `kvixi`, with sessions in the store its config names
    /// ([`Kvixi::session_store`]): the app's database of
    /// [`Config::database_url`](kvixi_core::Config::database_url) (`KVIXI_DATABASE_URL`),
    /// the shared Redis of [`Config::redis_url`](kvixi_core::Config::redis_url)
    /// (`KVIXI_REDIS_URL`), or a [`MemoryStore`](kvixi_core::MemoryStore) sized by
    /// [`Config::max_memory_sessions`](kvixi_core::Config::max_memory_sessions).
    pub fn new(kvixi: Kvixi) -> Self {
        let store = kvixi.session_store();
        KvixiFairing {
            sessions: Arc::new(CookieSessions::for_flow(store, &kvixi)),
            kvixi,
            misconfigured: None,
        }
    }

    /// Keeps sessions in `store` instead (Redis for several instances). Each call to
    /// `store` gets at most
    /// [`Config::session_store_timeout`](kvixi_core::Config::session_store_timeout)
    /// ([`StoreTimeout`](kvixi_core::StoreTimeout)): a store that fails or does not answer in time makes the
    /// requests that need the session answer 503, and leaves the others alone.
    ///
    /// A store other than [`MemoryStore`](kvixi_core::MemoryStore) may be shared by several instances: then the
    /// flow's revocation stamps must be shared too (`KVIXI_REDIS_URL`, or
    /// `Kvixi::builder(..).revocations(..)`), or the rocket fails to ignite with an error
    /// that names the fix ([`Kvixi::check_own_store`]).
    pub fn store<St: SessionStore>(mut self, store: St) -> Self {
        self.misconfigured = self.kvixi.check_store::<St>().err();
        self.sessions = Arc::new(CookieSessions::for_flow(store, &self.kvixi));
        self
    }
}

/// What the routes and guards find in the rocket's state.
pub(crate) struct Attached {
    pub(crate) kvixi: Kvixi,
    pub(crate) sessions: Arc<CookieSessions>,
}

impl Attached {
    pub(crate) fn of<'r>(request: &'r Request<'_>) -> Option<&'r Attached> {
        request.rocket().state::<Attached>()
    }
}

#[rocket::async_trait]
impl Fairing for KvixiFairing {
    fn info(&self) -> Info {
        Info {
            name: "Kvixi login",
            kind: Kind::Ignite | Kind::Response | Kind::Singleton,
        }
    }

    /// Rocket turns a failing `Option<KvixiUser>` into `None`, so a page could render as
    /// anonymous while the session store is down: the store's 503, which the guard left
    /// for the catcher, replaces any other answer (nobody is shown logged out by mistake).
    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        // A store refusal needs a store read, which only a session cookie starts: a
        // request without one (a visitor, a page that never reads the session) is left
        // alone without creating its request-local Kvixi state.
        if request.cookies().get(crate::SESSION_COOKIE).is_none() {
            return;
        }
        let Some(refusal) = KvixiResponse::refusal(request) else {
            return;
        };
        if refusal.0.status == 503 && response.status().code != 503 {
            if let Ok(answer) = rocket::response::Responder::respond_to(refusal, request) {
                *response = answer;
            }
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        if let Some(error) = &self.misconfigured {
            tracing::error!(%error, "kvixi cannot start");
            return Err(rocket);
        }
        let config = self.kvixi.config();
        let routes = match routes(config) {
            Ok(routes) => routes,
            Err(error) => {
                tracing::error!(%error, "kvixi routes cannot be mounted");
                return Err(rocket);
            }
        };
        let mut rocket = rocket
            .mount("/", routes)
            .register("/", vec![catcher()])
            .manage(Attached {
                kvixi: self.kvixi.clone(),
                sessions: Arc::clone(&self.sessions),
            });
        if rocket.state::<Kvixi>().is_none() {
            rocket = rocket.manage(self.kvixi.clone());
        }
        Ok(rocket)
    }
}
