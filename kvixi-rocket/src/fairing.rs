//! The fairing: routes, catcher, flow and session store in one `attach`.

use std::sync::Arc;

use kvixi_core::Kvixi;
use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Request, Rocket};
use tower_sessions_core::SessionStore;
use tower_sessions_memory_store::MemoryStore;

use crate::response::catcher;
use crate::routes::routes;
use crate::session::Sessions;

/// Kvixi login for a Rocket app: attach it once.
///
/// At ignition it mounts the login, callback and logout routes at the paths of the
/// [`Config`](kvixi_core::Config), registers a 401 catcher at `/` that answers refused
/// guards (see the [crate docs](crate#anonymous-requests-and-your-own-catchers)), and
/// manages the [`Kvixi`] flow as state (unless the app manages one already), so handlers
/// can take `&State<Kvixi>`. Sessions live in memory unless [`store`](KvixiFairing::store)
/// names another store.
pub struct KvixiFairing {
    kvixi: Kvixi,
    store: Arc<dyn SessionStore>,
}

impl KvixiFairing {
    /// Serves `kvixi`, with sessions in an in-memory store.
    pub fn new(kvixi: Kvixi) -> Self {
        KvixiFairing {
            kvixi,
            store: Arc::new(MemoryStore::default()),
        }
    }

    /// Keeps sessions in `store` instead (Redis for several instances).
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Arc::new(store);
        self
    }
}

/// What the routes and guards find in the rocket's state.
pub(crate) struct Attached {
    pub(crate) kvixi: Kvixi,
    pub(crate) sessions: Sessions,
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
            kind: Kind::Ignite | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
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
                sessions: Sessions::new(self.store.clone(), config),
            });
        if rocket.state::<Kvixi>().is_none() {
            rocket = rocket.manage(self.kvixi.clone());
        }
        Ok(rocket)
    }
}
