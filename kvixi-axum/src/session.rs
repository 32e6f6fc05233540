//! The core's session interface over `tower_sessions::Session`.

use kvixi_core::{Error, SessionStorage, async_trait};
use serde_json::Value;
use tower_sessions::Session;

/// A `tower_sessions::Session` seen through the core's [`SessionStorage`].
pub(crate) struct TowerSession(pub(crate) Session);

fn store_error(error: tower_sessions::session::Error) -> Error {
    Error::Session(error.to_string())
}

#[async_trait]
impl SessionStorage for TowerSession {
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let value = self.0.get_value(key).await.map_err(store_error)?;
        Ok(value.map(|value| match value {
            Value::String(json) => json,
            // Written by something else than the flow: the core decides what it is worth.
            other => other.to_string(),
        }))
    }
    async fn insert(&self, key: &str, json: String) -> Result<(), Error> {
        self.0
            .insert_value(key, Value::String(json))
            .await
            .map(drop)
            .map_err(store_error)
    }
    async fn remove(&self, key: &str) -> Result<(), Error> {
        self.0
            .remove_value(key)
            .await
            .map(drop)
            .map_err(store_error)
    }
    async fn rotate_id(&self) -> Result<(), Error> {
        self.0.cycle_id().await.map_err(store_error)
    }
    async fn destroy(&self) -> Result<(), Error> {
        self.0.flush().await.map_err(store_error)
    }
}
