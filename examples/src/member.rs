//! The app's own users: a `members` table in the flow's database (sqlx migrations in
//! `examples/migrations/`), upserted by `on_login`, and the member data kept beside the
//! Kvixi user in the session, which `AppUser<Member>` gives back, typed, at every request
//! without a query (`/me/app`).

use std::sync::{Arc, OnceLock};

use kvixi_core::{AccessToken, AppData, Database, KvixiUser, LoginRefused, UnixTime};
use serde::{Deserialize, Serialize};

/// The example's local user: its row in `members`, and its roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The app's own id for the user (the row's key).
    pub local_id: u64,
    /// What the user may do in the app.
    pub roles: Vec<String>,
    /// When the user first logged in to this app (Unix seconds).
    pub first_seen: u64,
    /// How many times the user logged in, this one included.
    pub logins: u64,
}

impl Member {
    /// A member for `user` without a database (sessions in memory or Redis): a local id
    /// derived from the Kvixi id, first seen now, one login.
    pub fn for_user(user: &KvixiUser) -> Member {
        Member {
            local_id: 10_000 + user.id.parse::<u64>().unwrap_or(0),
            roles: roles(user),
            first_seen: UnixTime::now().0,
            logins: 1,
        }
    }
}

/// `member`, and `verified` for a verified Kvixi account.
fn roles(user: &KvixiUser) -> Vec<String> {
    let mut roles = vec!["member".to_owned()];
    if user.verified {
        roles.push("verified".to_owned());
    }
    roles
}

/// The `members` table, once the flow's database is known (it is opened by the flow,
/// after `on_login` is registered).
#[derive(Clone, Default)]
pub struct Members {
    database: Arc<OnceLock<Database>>,
}

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Members {
    /// Runs the example's migrations on `database` and keeps it for `on_login`.
    pub async fn open(&self, database: &Database) -> Result<(), sqlx::migrate::MigrateError> {
        match database {
            Database::Sqlite(pool) => SQLITE.run(pool).await?,
            Database::Postgres(pool) => POSTGRES.run(pool).await?,
        }
        let _ = self.database.set(database.clone());
        Ok(())
    }

    /// The examples' `on_login` hook: upserts the user's row (a first login creates it,
    /// each login counts) and keeps the member in the session. Without a database the
    /// member is derived in memory. A database that fails makes the login unavailable
    /// (503, nothing stored) rather than logging in someone the app has no row for, and
    /// rather than telling an honest user they are not allowed (403).
    pub async fn admit(
        &self,
        user: KvixiUser,
        _token: AccessToken,
    ) -> Result<AppData<Member>, LoginRefused> {
        let Some(database) = self.database.get() else {
            return Ok(AppData(Member::for_user(&user)));
        };
        let now = i64::try_from(UnixTime::now().0).unwrap_or(i64::MAX);
        // One statement for both kinds: `$n` placeholders, which SQLite reads too.
        const UPSERT: &str = "insert into members (kvixi_id, first_seen, logins) values ($1, $2, 1)
             on conflict (kvixi_id) do update set logins = members.logins + 1
             returning local_id, first_seen, logins";
        let row: Result<(i64, i64, i64), sqlx::Error> = match database {
            Database::Sqlite(pool) => {
                let upsert = sqlx::query_as(UPSERT).bind(&user.id).bind(now);
                upsert.fetch_one(pool).await
            }
            Database::Postgres(pool) => {
                let upsert = sqlx::query_as(UPSERT).bind(&user.id).bind(now);
                upsert.fetch_one(pool).await
            }
        };
        let (local_id, first_seen, logins) = row.map_err(|error| {
            tracing::error!(%error, "the members table refused the login's upsert");
            LoginRefused::unavailable("the app could not record the login; try again")
        })?;
        let unsigned = |value: i64| u64::try_from(value).unwrap_or(0);
        Ok(AppData(Member {
            local_id: unsigned(local_id),
            roles: roles(&user),
            first_seen: unsigned(first_seen),
            logins: unsigned(logins),
        }))
    }
}

/// What `/me/app` answers: the Kvixi user's id with the member data.
pub fn as_json(user: &KvixiUser, member: &Member) -> serde_json::Value {
    serde_json::json!({
        "user_id": user.id,
        "local_id": member.local_id,
        "roles": member.roles,
        "first_seen": member.first_seen,
        "logins": member.logins,
    })
}
