//! `App::with_kvixi`: the session middleware and the routes in one line, the store and
//! the cookie key following from the flow's `Config`.

use std::any::TypeId;
use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::cookie::time::Duration;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use kvixi_core::Kvixi;

use crate::{MemoryStore, configure, session_key, session_middleware};

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
    /// Wraps the app in the [`session_middleware`] the Kvixi routes and extractors need
    /// and mounts the routes ([`configure`]). The sessions go where the flow's
    /// [`Config`](kvixi_core::Config) says: with a Redis URL (`KVIXI_REDIS_URL`), a
    /// [`RedisStore`](crate::RedisStore) on the flow's own connection pool
    /// ([`Kvixi::redis`]); without, one [`MemoryStore`] (bounded by
    /// [`Config::max_memory_sessions`](kvixi_core::Config::max_memory_sessions)) shared
    /// by every worker serving this flow. The session cookie is sealed with a key derived
    /// from the app's cookie key ([`session_key`]), opened with the previous ones too.
    ///
    /// Call it in `HttpServer::new`'s closure with a clone of one [`Kvixi`] built
    /// outside it. For a store of your own, use
    /// [`with_kvixi_store`](KvixiAppExt::with_kvixi_store).
    ///
    /// A cookie sealed with a previous key is sealed again by rewriting the request's
    /// `Cookie` header before actix-session reads it: a middleware wrapped around the
    /// app after this call (so running before it) that reads the request's cookies
    /// defeats that, as actix-web keeps its first parse of them (see
    /// [`session_middleware`]).
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

    /// Like [`with_kvixi`](KvixiAppExt::with_kvixi), with the sessions in `store`, the
    /// app's own (create it once, outside `HttpServer::new`'s closure, and clone it
    /// into each worker); the session cookie's key still follows from the flow
    /// ([`session_key`]). Each call to `store` gets at most
    /// [`Config::session_store_timeout`](kvixi_core::Config::session_store_timeout):
    /// see [`session_middleware`] for what an outage costs.
    ///
    /// A store other than [`MemoryStore`] may be shared by several instances, and then
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
    fn with_kvixi_store<S: SessionStore + 'static>(
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
        let store = kvixi.adapter_state(|| FlowStore::for_flow(&kvixi));
        let key = session_key(kvixi.config());
        #[allow(unused_mut)]
        let mut sessions = session_middleware(kvixi.config(), store, key);
        // Never per-process sessions when the config names a shared Redis: the app
        // refuses to start, naming the feature.
        #[cfg(not(feature = "redis"))]
        if kvixi.config().redis_url().is_some() {
            sessions = sessions.refusing_to_start(kvixi_core::Error::Config {
                setting: "redis_url",
                problem: "is set but kvixi-actix was built without its `redis` feature (on by \
                          default): enable it"
                    .into(),
            });
        }
        self.wrap(sessions).configure(configure(kvixi))
    }

    fn with_kvixi_store<S: SessionStore + 'static>(
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
        let per_process = TypeId::of::<S>() == TypeId::of::<MemoryStore>();
        let refusal = kvixi
            .check_own_store(std::any::type_name::<S>(), per_process)
            .err();
        let key = session_key(kvixi.config());
        let mut sessions = session_middleware(kvixi.config(), store, key);
        if let Some(error) = refusal {
            sessions = sessions.refusing_to_start(error);
        }
        self.wrap(sessions).configure(configure(kvixi))
    }
}

type State = HashMap<String, String>;

/// The store the flow's config calls for, kept once per flow (`Kvixi::adapter_state`)
/// so that every worker shares it.
#[derive(Clone, Debug)]
enum FlowStore {
    Memory(MemoryStore),
    #[cfg(feature = "redis")]
    Redis(crate::RedisStore),
    /// The config names a Redis this build cannot reach: the app refuses to start (see
    /// `with_kvixi`), and a store built anyway answers every call with an error, never
    /// a silent fall back to per-process sessions.
    #[cfg(not(feature = "redis"))]
    NoRedisSupport,
}

impl FlowStore {
    fn for_flow(kvixi: &Kvixi) -> FlowStore {
        #[cfg(feature = "redis")]
        if let Some(store) = crate::RedisStore::from_flow(kvixi) {
            return FlowStore::Redis(store);
        }
        #[cfg(not(feature = "redis"))]
        if kvixi.config().redis_url().is_some() {
            tracing::error!(
                "KVIXI_REDIS_URL is set but kvixi-actix was built without its `redis` feature: \
                 sessions are unavailable (enable the feature, on by default)"
            );
            return FlowStore::NoRedisSupport;
        }
        FlowStore::Memory(MemoryStore::from_config(kvixi.config()))
    }
}

#[cfg(not(feature = "redis"))]
fn no_redis_support() -> anyhow::Error {
    anyhow::anyhow!("kvixi-actix was built without its `redis` feature")
}

/// Calls `$call` on the store behind a [`FlowStore`].
macro_rules! on_store {
    ($store:expr, $s:ident => $call:expr, $unsupported:expr) => {
        match $store {
            FlowStore::Memory($s) => $call,
            #[cfg(feature = "redis")]
            FlowStore::Redis($s) => $call,
            #[cfg(not(feature = "redis"))]
            FlowStore::NoRedisSupport => $unsupported,
        }
    };
}

impl SessionStore for FlowStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        on_store!(self, s => s.load(session_key).await, Err(LoadError::Other(no_redis_support())))
    }

    async fn save(&self, session_state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        on_store!(self, s => s.save(session_state, ttl).await, Err(SaveError::Other(no_redis_support())))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        on_store!(
            self,
            s => s.update(session_key, session_state, ttl).await,
            Err(UpdateError::Other(no_redis_support()))
        )
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        on_store!(self, s => s.update_ttl(session_key, ttl).await, Err(no_redis_support()))
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        on_store!(self, s => s.delete(session_key).await, Err(no_redis_support()))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test;
    use kvixi_core::{Config, MemoryRevocations};

    use super::*;

    /// A store of the app's own that several instances could share, as far as kvixi
    /// can tell (anything but [`MemoryStore`]).
    #[derive(Clone, Default)]
    struct SharedStore(MemoryStore);

    impl SessionStore for SharedStore {
        async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
            self.0.load(session_key).await
        }

        async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
            self.0.save(state, ttl).await
        }

        async fn update(
            &self,
            session_key: SessionKey,
            state: State,
            ttl: &Duration,
        ) -> Result<SessionKey, UpdateError> {
            self.0.update(session_key, state, ttl).await
        }

        async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
            self.0.update_ttl(session_key, ttl).await
        }

        async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
            self.0.delete(session_key).await
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
