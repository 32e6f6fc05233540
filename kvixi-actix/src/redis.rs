//! Sessions in Redis, for several instances behind a load balancer (feature `redis`).

use actix_session::storage::RedisSessionStore;

/// actix-session's Redis store on a connection pool, for the Redis at `url`
/// (`redis://host:port`).
///
/// Prefer it to `RedisSessionStore::new`: that store keeps one connection, and after a
/// Redis restart it waits up to two minutes between reconnection attempts (redis-rs's
/// defaults, which actix-session does not expose), answering 503 all that time. A pool
/// replaces a broken connection at the next request. Wrap the store with
/// [`session_middleware`](crate::session_middleware), which times out every call.
pub async fn redis_store(url: &str) -> anyhow::Result<RedisSessionStore> {
    let pool =
        deadpool_redis::Config::from_url(url).create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
    RedisSessionStore::new_pooled(pool).await
}
