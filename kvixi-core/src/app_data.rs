//! The app's own data beside the Kvixi user: returned by `on_login`, stored in the auth
//! record, read back typed with the user in the same session read.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::driver::Kvixi;
use crate::error::Error;
use crate::session::SessionStorage;
use crate::user::KvixiUser;

/// The largest app data `on_login` may return, as JSON: it travels in the auth record,
/// read at every request, whose whole budget is 1 KiB with the profile. Keep a local id
/// and roles there and look anything bigger up.
pub const MAX_APP_DATA_BYTES: usize = 512;

/// The app's own value for a logged-in user (its local user id, its roles), returned by
/// the `on_login` hook as `Ok(AppData(value))` and read back typed by the adapters'
/// `AppUser<T>` extractors and by [`Kvixi::current_app_user`].
///
/// ```
/// use kvixi_core::{AppData, Config, Kvixi, LoginRefused};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Member {
///     local_id: u64,
///     roles: Vec<String>,
/// }
///
/// # fn run(config: Config) -> Result<(), kvixi_core::Error> {
/// let kvixi = Kvixi::builder(config)
///     .on_login(|user, _token| async move {
///         if !user.verified {
///             return Err(LoginRefused::new("unverified account"));
///         }
///         // Upsert the user in the app's database here.
///         Ok(AppData(Member { local_id: 42, roles: vec!["editor".into()] }))
///     })
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppData<T>(pub T);

/// What an `on_login` hook may return on success: `()` (nothing of the app's stored) or
/// [`AppData`].
pub trait IntoAppData: Send + 'static {
    /// The value as JSON for the auth record, refused past [`MAX_APP_DATA_BYTES`].
    fn into_app_data(self) -> Result<Option<serde_json::Value>, Error>;
}

impl IntoAppData for () {
    fn into_app_data(self) -> Result<Option<serde_json::Value>, Error> {
        Ok(None)
    }
}

impl<T: Serialize + Send + 'static> IntoAppData for AppData<T> {
    fn into_app_data(self) -> Result<Option<serde_json::Value>, Error> {
        let json = serde_json::to_string(&self.0)
            .map_err(|e| Error::Session(format!("on_login's app data does not serialize: {e}")))?;
        if json.len() > MAX_APP_DATA_BYTES {
            return Err(Error::AppDataTooLarge {
                bytes: json.len(),
                limit: MAX_APP_DATA_BYTES,
            });
        }
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| Error::Session(format!("on_login's app data does not parse back: {e}")))
    }
}

/// A logged-in user with the app's own data, as [`Kvixi::current_app_user`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct AppUser<T> {
    /// The Kvixi user.
    pub user: KvixiUser,
    /// What `on_login` returned in [`AppData`].
    pub data: T,
}

/// The auth record's fields a typed read needs: the app data stays raw JSON, borrowed
/// from the session's text, until the record is known to be live.
#[derive(serde::Deserialize)]
struct AppRecord<'a> {
    user: KvixiUser,
    #[serde(default)]
    logged_in_at: crate::UnixTime,
    obtained_at: crate::UnixTime,
    #[serde(default, borrow)]
    app_data: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    handle: Option<crate::devices::SessionHandle>,
    #[serde(default)]
    remembered: bool,
}

impl crate::driver::LiveRecord for AppRecord<'_> {
    fn user_id(&self) -> &str {
        &self.user.id
    }
    fn started(&self) -> crate::UnixTime {
        crate::flow::session_started(self.logged_in_at, self.obtained_at)
    }
    fn handle(&self) -> Option<crate::devices::SessionHandle> {
        self.handle
    }
    fn remembered(&self) -> bool {
        self.remembered
    }
}

impl Kvixi {
    /// [`current_app_user`](Kvixi::current_app_user) for an adapter that holds the
    /// session's data already (`json`: what it stores under
    /// [`flow::AUTH_RECORD_KEY`](crate::flow::AUTH_RECORD_KEY)), when the answer needs
    /// no waiting: `Some(None)` for no record, `Some(Some(found))` for a live session
    /// whose app data is a `T`. `None` means "ask `current_app_user`", which removes a
    /// record that does not parse, is over, or holds no `T` (see
    /// [`Kvixi::current_user_now`]).
    pub fn current_app_user_now<T: DeserializeOwned>(
        &self,
        json: Option<&str>,
    ) -> Option<Option<AppUser<T>>> {
        let Some(json) = json else {
            return Some(None);
        };
        let record: AppRecord<'_> = serde_json::from_str(json).ok()?;
        if !self.live_at_once(&record) {
            return None;
        }
        let data = serde_json::from_str::<T>(record.app_data?.get()).ok()?;
        Some(Some(AppUser {
            user: record.user,
            data,
        }))
    }

    /// The logged-in user and the app data `on_login` stored for them, typed: the same
    /// single session read as [`Kvixi::current_user`], no network call.
    ///
    /// `None` when anonymous, and also when the session holds no app data of type `T`
    /// (logged in before the app returned it, or with another type after a deploy):
    /// that record is removed, and the next login stores fresh data.
    pub async fn current_app_user<T: DeserializeOwned>(
        &self,
        session: &dyn SessionStorage,
    ) -> Result<Option<AppUser<T>>, Error> {
        let Some(json) = session.get(crate::flow::AUTH_RECORD_KEY).await? else {
            return Ok(None);
        };
        let record: AppRecord<'_> = match serde_json::from_str(&json) {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(%error, "dropping an unreadable auth record");
                self.drop_record(session).await?;
                return Ok(None);
            }
        };
        if !self.still_counts(session, &record).await? {
            return Ok(None);
        }
        let data = record
            .app_data
            .map(|raw| serde_json::from_str::<T>(raw.get()));
        match data {
            Some(Ok(data)) => Ok(Some(AppUser {
                user: record.user,
                data,
            })),
            Some(Err(error)) => {
                tracing::warn!(
                    %error,
                    app_type = std::any::type_name::<T>(),
                    "kvixi session's app data is not of the type asked for: logged out"
                );
                self.drop_record(session).await?;
                Ok(None)
            }
            None => {
                tracing::warn!(
                    app_type = std::any::type_name::<T>(),
                    "kvixi session holds no app data (did on_login return AppData?): logged out"
                );
                self.drop_record(session).await?;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Member {
        local_id: u64,
        roles: Vec<String>,
    }

    #[test]
    fn unit_stores_nothing_and_a_small_value_is_kept_as_json() {
        assert_eq!(().into_app_data().unwrap(), None);
        let member = AppData(Member {
            local_id: 7,
            roles: vec!["admin".into()],
        });
        assert_eq!(
            member.into_app_data().unwrap(),
            Some(serde_json::json!({"local_id": 7, "roles": ["admin"]}))
        );
    }

    #[test]
    fn app_data_over_the_limit_is_refused_with_the_limit_named() {
        let roles = vec!["r".repeat(100); 5];
        let error = AppData(Member { local_id: 1, roles })
            .into_app_data()
            .unwrap_err();
        assert!(matches!(error, Error::AppDataTooLarge { limit: 512, .. }));
        assert_eq!(error.status(), 500);
        assert!(error.to_string().contains("limit is 512 bytes"), "{error}");
        let just_fits = "x".repeat(MAX_APP_DATA_BYTES - 2);
        assert!(
            AppData(just_fits).into_app_data().is_ok(),
            "512 bytes is fine"
        );
    }
}
