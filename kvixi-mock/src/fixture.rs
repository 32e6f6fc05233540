//! Registered apps and users the emulator starts with, loadable from TOML or JSON.
//!
//! [`Fixture::default()`] holds two users and no app:
//!
//! - [`ALICE`] / [`ALICE_PASSWORD`]: every profile field filled (her biography holds an
//!   apostrophe and `<b>` to exercise escaping, her picture is served by the emulator);
//! - [`BOB`] / [`BOB_PASSWORD`]: every profile field an empty string except his id, name,
//!   first name and `user_verified = "0"`.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

/// User name of the fully filled fixture user.
pub const ALICE: &str = "alice";
/// Password of [`ALICE`].
pub const ALICE_PASSWORD: &str = "wonderland";
/// `user_id` of [`ALICE`].
pub const ALICE_USER_ID: &str = "1001";
/// User name of the mostly empty fixture user.
pub const BOB: &str = "bob";
/// Password of [`BOB`].
pub const BOB_PASSWORD: &str = "builder";
/// `user_id` of [`BOB`].
pub const BOB_USER_ID: &str = "1002";

/// An app registered with Kvixi: its credentials and its fixed redirect URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// The public app identifier sent in step 1 and step 2.
    pub app_id: String,
    /// The credential sent in step 2; the emulator never logs it.
    pub app_secret: String,
    /// Where the browser is sent after the person approves or refuses the app.
    pub redirect_url: String,
}

impl App {
    /// An app with these credentials and this registered redirect URL.
    pub fn new(
        app_id: impl Into<String>,
        app_secret: impl Into<String>,
        redirect_url: impl Into<String>,
    ) -> Self {
        Self {
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            redirect_url: redirect_url.into(),
        }
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("app_id", &self.app_id)
            .field("app_secret", &"[REDACTED]")
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

/// A Kvixi account: the fourteen profile fields of the API, a password for the login page,
/// and the two picture fields the platform adds.
///
/// Picture and cover URLs starting with `/` are answered made absolute with the emulator's
/// base URL, so a fixture can point at the avatars the emulator serves itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The account's stable identifier.
    #[serde(default)]
    pub user_id: String,
    /// The login name, unique in the emulator.
    pub user_name: String,
    /// Email address.
    #[serde(default)]
    pub user_email: String,
    /// First name.
    #[serde(default)]
    pub user_firstname: String,
    /// Last name.
    #[serde(default)]
    pub user_lastname: String,
    /// Gender, free text as the platform stores it.
    #[serde(default)]
    pub user_gender: String,
    /// Birth date, `YYYY-MM-DD` on the platform.
    #[serde(default)]
    pub user_birthdate: String,
    /// Profile picture URL.
    #[serde(default)]
    pub user_picture: String,
    /// Cover picture URL.
    #[serde(default)]
    pub user_cover: String,
    /// Registration time, `YYYY-MM-DD HH:MM:SS` on the platform.
    #[serde(default)]
    pub user_registered: String,
    /// `"1"` when the account is verified, `"0"` otherwise.
    #[serde(default)]
    pub user_verified: String,
    /// Relationship status.
    #[serde(default)]
    pub user_relationship: String,
    /// Free-form biography.
    #[serde(default)]
    pub user_biography: String,
    /// Personal website URL.
    #[serde(default)]
    pub user_website: String,
    /// The password typed on the login page; never part of an API answer or `/_mock/state`.
    pub password: String,
    /// `profile_picture` in API answers; defaults to `user_picture`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture: Option<String>,
    /// `profile_cover` in API answers; defaults to `user_cover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_cover: Option<String>,
}

impl User {
    /// A user with these identifiers and password and every other field empty.
    pub fn new(
        user_id: impl Into<String>,
        user_name: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            user_name: user_name.into(),
            password: password.into(),
            ..Self::default()
        }
    }

    /// The profile as `get_user_info` answers it, with relative picture URLs resolved
    /// against `base_url` (e.g. `http://127.0.0.1:8787`).
    pub fn info(&self, base_url: &str) -> UserInfo {
        let absolute = |url: &str| {
            if url.starts_with('/') && !url.starts_with("//") {
                format!("{base_url}{url}")
            } else {
                url.to_owned()
            }
        };
        UserInfo {
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            user_email: self.user_email.clone(),
            user_firstname: self.user_firstname.clone(),
            user_lastname: self.user_lastname.clone(),
            user_gender: self.user_gender.clone(),
            user_birthdate: self.user_birthdate.clone(),
            user_picture: absolute(&self.user_picture),
            user_cover: absolute(&self.user_cover),
            user_registered: self.user_registered.clone(),
            user_verified: self.user_verified.clone(),
            user_relationship: self.user_relationship.clone(),
            user_biography: self.user_biography.clone(),
            user_website: self.user_website.clone(),
            profile_picture: absolute(
                self.profile_picture
                    .as_deref()
                    .unwrap_or(&self.user_picture),
            ),
            profile_cover: absolute(self.profile_cover.as_deref().unwrap_or(&self.user_cover)),
        }
    }
}

/// A user's profile as the API answers it inside `{"user_info": ...}`: every field a string,
/// no password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // The fields mirror `User`'s, documented there.
pub struct UserInfo {
    pub user_id: String,
    pub user_name: String,
    pub user_email: String,
    pub user_firstname: String,
    pub user_lastname: String,
    pub user_gender: String,
    pub user_birthdate: String,
    pub user_picture: String,
    pub user_cover: String,
    pub user_registered: String,
    pub user_verified: String,
    pub user_relationship: String,
    pub user_biography: String,
    pub user_website: String,
    pub profile_picture: String,
    pub profile_cover: String,
}

/// The apps and users the emulator starts with.
///
/// Files look like `kvixi-mock/fixtures/example.toml`: an `[[apps]]` table per app and a
/// `[[users]]` table per user (JSON: `{"apps": [...], "users": [...]}`). A missing list is
/// empty: a file with only apps has no users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Registered apps.
    #[serde(default)]
    pub apps: Vec<App>,
    /// Kvixi accounts that can log in.
    #[serde(default)]
    pub users: Vec<User>,
}

impl Default for Fixture {
    /// [`alice()`] and [`bob()`], no app.
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            users: vec![alice(), bob()],
        }
    }
}

impl Fixture {
    /// A fixture with no app and no user.
    pub fn empty() -> Self {
        Self {
            apps: Vec::new(),
            users: Vec::new(),
        }
    }

    /// Reads a fixture file, TOML when its name ends in `.toml`, JSON when in `.json`.
    ///
    /// # Errors
    ///
    /// [`Error::FixtureFormat`] for another extension, [`Error::FixtureRead`] when the file
    /// cannot be read, [`Error::FixtureToml`] / [`Error::FixtureJson`] when it is not a valid
    /// fixture (unknown fields are refused, to catch typos).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let extension = path
            .extension()
            .and_then(|ext| ext.to_str())
            .map(str::to_ascii_lowercase);
        let parse: fn(&str, String) -> Result<Self, Error> = match extension.as_deref() {
            Some("toml") => Self::parse_toml,
            Some("json") => Self::parse_json,
            _ => {
                return Err(Error::FixtureFormat {
                    path: path.to_owned(),
                });
            }
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::FixtureRead {
            path: path.to_owned(),
            source,
        })?;
        parse(&text, path.display().to_string())
    }

    /// Parses a fixture written in TOML.
    ///
    /// # Errors
    ///
    /// [`Error::FixtureToml`] when `text` is not a valid fixture.
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        Self::parse_toml(text, "<string>".to_owned())
    }

    /// Parses a fixture written in JSON.
    ///
    /// # Errors
    ///
    /// [`Error::FixtureJson`] when `text` is not a valid fixture.
    pub fn from_json_str(text: &str) -> Result<Self, Error> {
        Self::parse_json(text, "<string>".to_owned())
    }

    fn parse_toml(text: &str, origin: String) -> Result<Self, Error> {
        toml::from_str(text).map_err(|source| Error::FixtureToml { origin, source })
    }

    fn parse_json(text: &str, origin: String) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|source| Error::FixtureJson { origin, source })
    }
}

/// The fixture user with every profile field filled.
pub fn alice() -> User {
    User {
        user_id: ALICE_USER_ID.to_owned(),
        user_name: ALICE.to_owned(),
        user_email: "alice@example.com".to_owned(),
        user_firstname: "Alice".to_owned(),
        user_lastname: "Liddell".to_owned(),
        user_gender: "female".to_owned(),
        user_birthdate: "1990-05-04".to_owned(),
        user_picture: "/_mock/avatar/alice.svg".to_owned(),
        user_cover: "/_mock/cover/alice.svg".to_owned(),
        user_registered: "2019-01-15 10:00:00".to_owned(),
        user_verified: "1".to_owned(),
        user_relationship: "single".to_owned(),
        user_biography: "Curious explorer. I'm late for <b>tea</b> & croquet with the Queen."
            .to_owned(),
        user_website: "https://alice.example".to_owned(),
        password: ALICE_PASSWORD.to_owned(),
        profile_picture: None,
        profile_cover: None,
    }
}

/// The fixture user whose profile is mostly empty strings.
pub fn bob() -> User {
    User {
        user_firstname: "Bob".to_owned(),
        user_verified: "0".to_owned(),
        ..User::new(BOB_USER_ID, BOB, BOB_PASSWORD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_fixture_has_alice_fully_filled_and_bob_mostly_empty() {
        let fixture = Fixture::default();
        assert!(fixture.apps.is_empty());
        let alice = &fixture.users[0];
        let info = alice.info("http://127.0.0.1:1");
        let value = serde_json::to_value(&info).unwrap();
        for (field, value) in value.as_object().unwrap() {
            assert!(
                !value.as_str().unwrap().is_empty(),
                "alice's {field} is empty"
            );
        }
        assert_eq!(
            info.user_picture,
            "http://127.0.0.1:1/_mock/avatar/alice.svg"
        );
        assert_eq!(info.profile_picture, info.user_picture);
        let bob = fixture.users[1].info("http://127.0.0.1:1");
        assert_eq!(bob.user_id, BOB_USER_ID);
        assert_eq!(bob.user_email, "");
        assert_eq!(bob.user_verified, "0");
    }

    #[test]
    fn absolute_picture_urls_are_kept() {
        let user = User {
            user_picture: "https://cdn.example/p.png".to_owned(),
            profile_picture: Some("//cdn.example/q.png".to_owned()),
            ..User::new("1", "u", "p")
        };
        let info = user.info("http://127.0.0.1:1");
        assert_eq!(info.user_picture, "https://cdn.example/p.png");
        assert_eq!(info.profile_picture, "//cdn.example/q.png");
    }

    #[test]
    fn toml_fixture_parses() {
        let fixture = Fixture::from_toml_str(
            r#"
            [[apps]]
            app_id = "a"
            app_secret = "s"
            redirect_url = "http://127.0.0.1:3000/cb"

            [[users]]
            user_id = "7"
            user_name = "carol"
            password = "pw"
            user_email = "carol@example.com"
            "#,
        )
        .unwrap();
        assert_eq!(
            fixture.apps,
            vec![App::new("a", "s", "http://127.0.0.1:3000/cb")]
        );
        assert_eq!(fixture.users[0].user_email, "carol@example.com");
        assert_eq!(fixture.users[0].user_lastname, "");
    }

    #[test]
    fn json_fixture_parses() {
        let fixture = Fixture::from_json_str(
            r#"{"users": [{"user_id": "7", "user_name": "carol", "password": "pw"}]}"#,
        )
        .unwrap();
        assert!(fixture.apps.is_empty());
        assert_eq!(fixture.users[0].user_name, "carol");
    }

    #[test]
    fn fixture_with_a_misspelt_field_is_refused() {
        let err =
            Fixture::from_toml_str("[[users]]\nuser_name = \"x\"\npasword = \"p\"\n").unwrap_err();
        assert!(matches!(err, Error::FixtureToml { .. }), "{err}");
    }

    #[test]
    fn fixture_file_with_unknown_extension_is_refused() {
        let err = Fixture::from_path("fixture.yaml").unwrap_err();
        assert!(matches!(err, Error::FixtureFormat { .. }), "{err}");
    }

    #[test]
    fn app_debug_hides_the_secret() {
        let app = App::new("id", "very-secret", "http://127.0.0.1/cb");
        assert!(!format!("{app:?}").contains("very-secret"));
    }
}
