//! The app's own user data kept beside the Kvixi user: what `on_login` returns and
//! `AppUser<Member>` gives back, typed, at every request (`/me/app`).

use kvixi_core::{AccessToken, AppData, KvixiUser, LoginRefused};
use serde::{Deserialize, Serialize};

/// The example's local user: an id of its own and roles. A real app would upsert its
/// user row in `on_login` and keep only the row's id and roles here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The app's own id for the user.
    pub local_id: u64,
    /// What the user may do in the app.
    pub roles: Vec<String>,
}

impl Member {
    /// The example's member for a Kvixi user: a local id derived from theirs, the role
    /// `member`, and `verified` for a verified Kvixi account.
    pub fn for_user(user: &KvixiUser) -> Member {
        let mut roles = vec!["member".to_owned()];
        if user.verified {
            roles.push("verified".to_owned());
        }
        Member {
            local_id: 10_000 + user.id.parse::<u64>().unwrap_or(0),
            roles,
        }
    }
}

/// The examples' `on_login` hook: admits everyone, with their [`Member`] data.
pub async fn admit(user: KvixiUser, _token: AccessToken) -> Result<AppData<Member>, LoginRefused> {
    Ok(AppData(Member::for_user(&user)))
}

/// What `/me/app` answers: the Kvixi user's id with the member data.
pub fn as_json(user: &KvixiUser, member: &Member) -> serde_json::Value {
    serde_json::json!({
        "user_id": user.id,
        "local_id": member.local_id,
        "roles": member.roles,
    })
}
