//! The Redis scenarios against every adapter.

mod axum {
    use kvixi_e2e::Stop;
    use tower_sessions_redis_store::RedisStore;
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};

    fn start(kvixi: kvixi_core::Kvixi, listener: std::net::TcpListener, redis_url: String) -> Stop {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let task = tokio::spawn(async move {
            let config = Config::from_url(&redis_url).expect("redis URL");
            let pool = Pool::new(config, None, None, None, 2).expect("redis pool");
            pool.init().await.expect("redis connects");
            let app = kvixi_examples::axum_app::router_with_store(kvixi, RedisStore::new(pool));
            axum::serve(listener, app).await
        });
        Stop::new(move || task.abort())
    }

    kvixi_e2e::redis_scenarios!(start);
}
