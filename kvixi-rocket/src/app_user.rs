//! `AppUser<T>`: the Kvixi user with the app's own data, typed.

use rocket::Request;
use rocket::request::{FromRequest, Outcome};
use serde::de::DeserializeOwned;

use crate::Error;
use crate::fairing::Attached;
use crate::guard::{anonymous, failed, not_attached};

/// The logged-in user with the app data `on_login` returned as
/// [`AppData`](kvixi_core::AppData), read back as `T` from the same single session read
/// as [`KvixiUser`](crate::KvixiUser): no second read, no database lookup.
///
/// A request guard of its own rather than a parameter of `KvixiUser`: routes that need
/// only the Kvixi profile keep writing `KvixiUser`, and the route's signature says
/// which of the app's types it expects. It refuses like `KvixiUser` (401 JSON / 303 to
/// login through the fairing's catcher), also when the session holds no `T` (logged in
/// before the app returned it, or with another type): that record is dropped and the
/// next login stores fresh data. `Option<AppUser<T>>` is `None` then.
///
/// ```
/// use kvixi_rocket::AppUser;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Member {
///     local_id: u64,
///     roles: Vec<String>,
/// }
///
/// #[rocket::get("/dashboard")]
/// fn dashboard(member: AppUser<Member>) -> String {
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

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Send + 'static> FromRequest<'r> for AppUser<T> {
    type Error = Error;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Error> {
        let Some(attached) = Attached::of(request) else {
            return not_attached();
        };
        let session = crate::session::of(&attached.sessions, request);
        match session.current_app_user::<T>(&attached.kvixi).await {
            Ok(Some(found)) => Outcome::Success(AppUser {
                user: found.user,
                data: found.data,
            }),
            Ok(None) => anonymous(request, attached),
            Err(error) => failed(request, attached, error),
        }
    }
}
