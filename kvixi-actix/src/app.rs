//! `App::with_kvixi`: the session middleware and the routes in one line, the store and
//! the cookie key following from the flow's `Config`.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use kvixi_core::{CookieSessions, Kvixi};
use tower_sessions_core::SessionStore;

use crate::routes::routes;
use crate::session::KvixiSessions;

/// "Log in with Kvixi" on an actix-web [`App`], in one line.
///
/// ```
/// use actix_web::{App, test, web};
/// use kvixi_actix::{Kvixi, KvixiAppExt, KvixiUser};
///
/// async fn me(user: KvixiUser) -> String {
///     user.id.clone()
/// }
///
/// # #[actix_web::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = kvixi_core::Config::builder("my-app", "my-secret", "http://localhost:3000/auth/kvixi/callback")
///     .build()?;
/// let kvixi = Kvixi::new(config)?;
/// // In `HttpServer::new(move || …)`, once per worker: every worker shares the sessions.
/// let app = test::init_service(App::new().with_kvixi(kvixi.clone()).route("/me", web::get().to(me))).await;
///
/// let request = test::TestRequest::get().uri("/me").insert_header(("accept", "application/json"));
/// let response = test::call_service(&app, request.to_request()).await;
/// assert_eq!(response.status(), 401);
/// # Ok(())
/// # }
/// ```
pub trait KvixiAppExt {
    /// Mounts the login, callback and logout routes, puts the flow in the app data
    /// (`web::Data<Kvixi>`, for your handlers too) and wraps the app in the session
    /// middleware the Kvixi routes and extractors need. The sessions go where the flow's
    /// [`Config`](kvixi_core::Config) says ([`Kvixi::session_store`]): with a database
    /// URL (`KVIXI_DATABASE_URL`), the app's SQLite or Postgres through the flow's own
    /// pool; with a Redis URL (`KVIXI_REDIS_URL`), tower-sessions' Redis store on the
    /// flow's own connection pool; without either, one
    /// [`MemoryStore`](kvixi_core::MemoryStore) (bounded by
    /// [`Config::max_memory_sessions`](kvixi_core::Config::max_memory_sessions)) shared
    /// by every worker serving this flow. The session cookie holds only the session id,
    /// sealed with the app's cookie key (see the [crate docs](crate#sessions)).
    ///
    /// Call it in `HttpServer::new`'s closure with a clone of one [`Kvixi`] built
    /// outside it. For a store of your own, use
    /// [`with_kvixi_store`](KvixiAppExt::with_kvixi_store).
    fn with_kvixi(
        self,
        kvixi: Kvixi,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    >;

    /// Like [`with_kvixi`](KvixiAppExt::with_kvixi), with the sessions in `store`: any
    /// tower-sessions [`SessionStore`] (kvixi-core's [`MemoryStore`](kvixi_core::MemoryStore), tower-sessions'
    /// Redis store, a database store, one of your own). Create it once, outside
    /// `HttpServer::new`'s closure, and clone it into each worker. Each call to `store`
    /// gets at most
    /// [`Config::session_store_timeout`](kvixi_core::Config::session_store_timeout): a
    /// store that fails or does not answer in time makes the requests that need the
    /// session answer 503 (nobody is logged out), and leaves the others alone.
    ///
    /// A store other than [`MemoryStore`](kvixi_core::MemoryStore) may be shared by several instances, and then
    /// the flow's revocation stamps must be shared too (`KVIXI_REDIS_URL`, or
    /// `Kvixi::builder(..).revocations(..)`): otherwise the app fails to start (every
    /// worker's init fails, so `HttpServer` and `test::init_service` do), with an error
    /// logged that names the fix ([`Kvixi::check_own_store`]).
    ///
    /// ```
    /// use actix_web::{App, test};
    /// use kvixi_actix::{Kvixi, KvixiAppExt, MemoryStore};
    ///
    /// # #[actix_web::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = kvixi_core::Config::builder("my-app", "my-secret", "http://localhost:3000/auth/kvixi/callback")
    ///     .build()?;
    /// let kvixi = Kvixi::new(config)?;
    /// let store = MemoryStore::new(10_000);
    /// let app = test::init_service(App::new().with_kvixi_store(kvixi.clone(), store.clone())).await;
    /// # Ok(())
    /// # }
    /// ```
    fn with_kvixi_store<S: SessionStore>(
        self,
        kvixi: Kvixi,
        store: S,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    >;
}

impl<T, B> KvixiAppExt for App<T>
where
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    T::Service: 'static,
    B: MessageBody + 'static,
{
    fn with_kvixi(
        self,
        kvixi: Kvixi,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    > {
        // Once per flow, so that every worker shares the store.
        let store = kvixi.session_store();
        let sessions = kvixi.adapter_state(|| Arc::new(CookieSessions::for_flow(store, &kvixi)));
        let middleware = KvixiSessions::new(None);
        self.app_data(web::Data::from(sessions))
            .wrap(middleware)
            .configure(routes(kvixi))
    }

    fn with_kvixi_store<S: SessionStore>(
        self,
        kvixi: Kvixi,
        store: S,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    > {
        let refusal = kvixi.check_store::<S>().err();
        let sessions = Arc::new(CookieSessions::for_flow(store, &kvixi));
        let middleware = KvixiSessions::new(refusal);
        self.app_data(web::Data::from(sessions))
            .wrap(middleware)
            .configure(routes(kvixi))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test;
    use kvixi_core::{Config, MemoryRevocations, MemoryStore};
    use tower_sessions_core::session::{Id, Record};
    use tower_sessions_core::session_store;

    use super::*;

    /// A store of the app's own that several instances could share, as far as kvixi
    /// can tell (anything but [`MemoryStore`]).
    #[derive(Clone, Debug, Default)]
    struct SharedStore(MemoryStore);

    #[kvixi_core::async_trait]
    impl SessionStore for SharedStore {
        async fn save(&self, record: &Record) -> session_store::Result<()> {
            self.0.save(record).await
        }
        async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
            self.0.load(id).await
        }
        async fn delete(&self, id: &Id) -> session_store::Result<()> {
            self.0.delete(id).await
        }
    }

    fn config() -> Config {
        Config::builder("app", "secret", "http://localhost/auth/kvixi/callback")
            .base_url("http://127.0.0.1:9")
            .build()
            .expect("valid config")
    }

    /// Whether an app on `kvixi` and `store` starts: `test::init_service` panics, as
    /// `HttpServer` fails, when a worker's init fails.
    async fn starts<S: SessionStore + 'static>(kvixi: Kvixi, store: S) -> bool {
        let init = actix_web::rt::spawn(async move {
            test::init_service(App::new().with_kvixi_store(kvixi, store)).await;
        });
        match init.await {
            Ok(()) => true,
            Err(error) => {
                let panic = error.into_panic();
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .unwrap_or_default();
                assert!(
                    message.starts_with("service initialization failed"),
                    "{message}"
                );
                false
            }
        }
    }

    #[actix_web::test]
    async fn an_own_shared_store_with_revocations_in_one_process_does_not_start() {
        let kvixi = Kvixi::new(config()).expect("flow builds");
        assert!(!starts(kvixi, SharedStore::default()).await);
    }

    #[actix_web::test]
    async fn an_own_shared_store_starts_once_revocations_are_chosen() {
        let kvixi = Kvixi::builder(config())
            .revocations(MemoryRevocations::default())
            .build()
            .expect("flow builds");
        assert!(starts(kvixi, SharedStore::default()).await);
    }

    #[actix_web::test]
    async fn an_own_memory_store_starts_with_the_default_revocations() {
        let kvixi = Kvixi::new(config()).expect("flow builds");
        assert!(starts(kvixi, MemoryStore::default()).await);
    }
}
