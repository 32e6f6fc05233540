//! `AppUser<T>`: the Kvixi user with the app's own data, typed.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::extract::{KvixiRejection, anonymous, failure, flow_and_session};

/// The logged-in user with the app data `on_login` returned as
/// [`AppData`](kvixi_core::AppData), read back as `T` from the same single session read
/// as [`KvixiUser`](crate::KvixiUser): no second read, no database lookup.
///
/// A type of its own rather than a parameter of `KvixiUser`: handlers that need only
/// the Kvixi profile keep writing `KvixiUser`, and the handler's signature says which
/// of the app's types it expects. Anonymous requests are answered like `KvixiUser`'s
/// (401 JSON / 303 to login); so is a session holding no `T` (logged in before the app
/// returned it, or with another type): its record is dropped and the next login stores
/// fresh data. `Option<AppUser<T>>` is `None` in those cases.
///
/// ```
/// use axum::Json;
/// use kvixi_axum::AppUser;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Member {
///     local_id: u64,
///     roles: Vec<String>,
/// }
///
/// async fn dashboard(member: AppUser<Member>) -> String {
///     format!("{} (#{})", member.user.id, member.data.local_id)
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AppUser<T> {
    /// The Kvixi user.
    pub user: kvixi_core::KvixiUser,
    /// The app's own data for them.
    pub data: T,
}

impl<T: DeserializeOwned + Send, S: Send + Sync> OptionalFromRequestParts<S> for AppUser<T> {
    type Rejection = KvixiRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let (kvixi, session) = flow_and_session(&parts.extensions)?;
        match kvixi.current_app_user::<T>(&session).await {
            Ok(found) => Ok(found.map(|found| AppUser {
                user: found.user,
                data: found.data,
            })),
            Err(error) => Err(failure(kvixi, parts, &error)),
        }
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AppUser<T> {
    type Rejection = KvixiRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (kvixi, session) = flow_and_session(&parts.extensions)?;
        match kvixi.current_app_user::<T>(&session).await {
            Ok(Some(found)) => Ok(AppUser {
                user: found.user,
                data: found.data,
            }),
            Ok(None) => Err(anonymous(kvixi, parts)),
            Err(error) => Err(failure(kvixi, parts, &error)),
        }
    }
}
