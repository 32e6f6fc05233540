//! `AppUser<T>`: the Kvixi user with the app's own data, typed.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::Error;
use crate::extract::{Extraction, extract};

/// The logged-in user with the app data `on_login` returned as
/// [`AppData`](kvixi_core::AppData), read back as `T` from the same single session read
/// as [`KvixiUser`](crate::KvixiUser): no second read, no database lookup.
///
/// A type of its own rather than a parameter of `KvixiUser`: handlers that need only
/// the Kvixi profile keep writing `KvixiUser`, and the handler's signature says which
/// of the app's types it expects. Anonymous requests are answered like `KvixiUser`'s
/// (401 JSON / 303 to login); so is a session holding no `T` (logged in before the app
/// returned it, or with another type): its record is dropped and the next login stores
/// fresh data. As with `KvixiUser`, `Option<AppUser<T>>` is `None` then.
///
/// ```
/// use kvixi_actix::AppUser;
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

impl<T: DeserializeOwned + 'static> FromRequest for AppUser<T> {
    type Error = Error;
    type Future = Extraction<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(request, async |kvixi, session| {
            let found = session.current_app_user::<T>(kvixi).await?;
            Ok(found.map(|found| AppUser {
                user: found.user,
                data: found.data,
            }))
        })
    }
}
