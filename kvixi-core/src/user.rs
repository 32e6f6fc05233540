//! The Kvixi user profile, typed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::{Date, Month, PrimitiveDateTime, Time};

/// The fields of `user_info` that map to typed fields; anything else is kept in `extra`.
const KNOWN_FIELDS: [&str; 16] = [
    "user_id",
    "user_name",
    "user_email",
    "user_firstname",
    "user_lastname",
    "user_gender",
    "user_birthdate",
    "user_picture",
    "user_cover",
    "user_registered",
    "user_verified",
    "user_relationship",
    "user_biography",
    "user_website",
    "profile_picture",
    "profile_cover",
];

/// A person logged in with Kvixi, as read from `get_user_info`.
///
/// Only `id` is required. Kvixi answers every field as a string that may be empty;
/// an empty, `null` or missing field is `None` here. Fields this version does not know
/// are kept in `extra` rather than rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvixiUser {
    /// Kvixi's stable user id; never empty.
    pub id: String,
    /// The user's handle on Kvixi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address, as given to Kvixi (not necessarily verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Gender, free text as Kvixi sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Birth date; a date when Kvixi's text parses as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<ProfileDate>,
    /// Profile picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Cover image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<String>,
    /// When the account was registered on Kvixi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<ProfileDate>,
    /// Whether Kvixi marks the account as verified (`false` when unknown).
    #[serde(default)]
    pub verified: bool,
    /// Relationship status, free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Biography, free text (untrusted: escape it before showing it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biography: Option<String>,
    /// Personal website URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Fields Kvixi sent that this version does not know.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

/// Why a `get_user_info` answer is not a usable user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserInfoProblem {
    /// No `user_info` object in the answer.
    MissingUserInfo,
    /// `user_info` has no non-empty `user_id`.
    MissingUserId,
}

impl fmt::Display for UserInfoProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserInfoProblem::MissingUserInfo => "the answer has no user_info object",
            UserInfoProblem::MissingUserId => "user_info has no non-empty user_id",
        })
    }
}

impl KvixiUser {
    /// Reads the body of a `get_user_info` answer (`{"user_info": {...}}`).
    pub fn from_user_info_response(body: &Value) -> Result<KvixiUser, UserInfoProblem> {
        match body.get("user_info") {
            Some(Value::Object(fields)) => KvixiUser::from_user_info(fields),
            _ => Err(UserInfoProblem::MissingUserInfo),
        }
    }

    /// Reads the `user_info` object itself.
    pub fn from_user_info(fields: &Map<String, Value>) -> Result<KvixiUser, UserInfoProblem> {
        let text = |key: &str| fields.get(key).and_then(lenient_text);
        let id = text("user_id").ok_or(UserInfoProblem::MissingUserId)?;
        let extra = fields
            .iter()
            .filter(|(key, _)| !KNOWN_FIELDS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Ok(KvixiUser {
            id,
            name: text("user_name"),
            email: text("user_email"),
            first_name: text("user_firstname"),
            last_name: text("user_lastname"),
            gender: text("user_gender"),
            birthdate: text("user_birthdate").map(ProfileDate::from_text),
            picture: text("user_picture").or_else(|| text("profile_picture")),
            cover: text("user_cover").or_else(|| text("profile_cover")),
            registered: text("user_registered").map(ProfileDate::from_text),
            verified: fields.get("user_verified").is_some_and(lenient_bool),
            relationship: text("user_relationship"),
            biography: text("user_biography"),
            website: text("user_website"),
            extra,
        })
    }

    /// A user for an app's own tests (feature `testing`), with sensible defaults from
    /// `name`: id `test-{name}`, the name as handle and first name, an
    /// `{name}@example.test` address, verified. Change any field with struct update
    /// syntax: `KvixiUser { verified: false, ..KvixiUser::test("bob") }`.
    #[cfg(feature = "testing")]
    pub fn test(name: &str) -> KvixiUser {
        KvixiUser {
            id: format!("test-{name}"),
            name: Some(name.to_owned()),
            email: Some(format!("{name}@example.test")),
            first_name: Some(name.to_owned()),
            last_name: None,
            gender: None,
            birthdate: None,
            picture: None,
            cover: None,
            registered: None,
            verified: true,
            relationship: None,
            biography: None,
            website: None,
            extra: BTreeMap::new(),
        }
    }

    /// The best name to greet the user with: full name, else handle, else id.
    pub fn display_name(&self) -> String {
        match (&self.first_name, &self.last_name) {
            (Some(first), Some(last)) => format!("{first} {last}"),
            (Some(only), None) | (None, Some(only)) => only.clone(),
            (None, None) => self.name.clone().unwrap_or_else(|| self.id.clone()),
        }
    }
}

/// `YYYY-MM-DD`.
fn parse_date(bytes: &[u8]) -> Option<Date> {
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = bytes[..4].iter().try_fold(0i32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i32::from(b - b'0'))
    })?;
    let month = Month::try_from(two_digits(bytes, 5, b'-')?).ok()?;
    Date::from_calendar_date(year, month, two_digits(bytes, 8, b'\0')?).ok()
}

/// Two ASCII digits at `at`, followed by `separator` (or the end, for `\0`).
fn two_digits(bytes: &[u8], at: usize, separator: u8) -> Option<u8> {
    let (tens, ones) = (*bytes.get(at)?, *bytes.get(at + 1)?);
    let next_ok = match bytes.get(at + 2) {
        Some(b) => *b == separator,
        None => separator == b'\0',
    };
    (tens.is_ascii_digit() && ones.is_ascii_digit() && next_ok)
        .then(|| (tens - b'0') * 10 + (ones - b'0'))
}

/// A string field: strings are trimmed, numbers and booleans kept as text; empty,
/// `null`, arrays and objects become `None`.
fn lenient_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn lenient_bool(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"),
        _ => false,
    }
}

/// A date from the profile: parsed when Kvixi's text is a date or a date-time,
/// otherwise the text as it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileDate {
    /// `YYYY-MM-DD`.
    Date(Date),
    /// `YYYY-MM-DD HH:MM:SS`, in Kvixi's (unstated) time zone.
    DateTime(PrimitiveDateTime),
    /// Anything else, kept verbatim.
    Raw(String),
}

impl ProfileDate {
    /// Parses Kvixi's text, keeping it raw when it is neither a date nor a date-time.
    ///
    /// Hand-written rather than through `time`'s format parser: it runs on every read
    /// of the session, so it must cost next to nothing.
    pub fn from_text(text: String) -> ProfileDate {
        let parsed = match text.len() {
            10 => parse_date(text.as_bytes()).map(ProfileDate::Date),
            19 if text.as_bytes()[10] == b' ' => {
                let bytes = text.as_bytes();
                parse_date(&bytes[..10]).and_then(|date| {
                    let time = Time::from_hms(
                        two_digits(bytes, 11, b':')?,
                        two_digits(bytes, 14, b':')?,
                        two_digits(bytes, 17, b'\0')?,
                    )
                    .ok()?;
                    Some(ProfileDate::DateTime(PrimitiveDateTime::new(date, time)))
                })
            }
            _ => None,
        };
        parsed.unwrap_or(ProfileDate::Raw(text))
    }

    /// The calendar date, when there is one.
    pub fn date(&self) -> Option<Date> {
        match self {
            ProfileDate::Date(d) => Some(*d),
            ProfileDate::DateTime(dt) => Some(dt.date()),
            ProfileDate::Raw(_) => None,
        }
    }
}

impl fmt::Display for ProfileDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileDate::Date(d) => write!(
                f,
                "{:04}-{:02}-{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            ),
            ProfileDate::DateTime(dt) => write!(
                f,
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second()
            ),
            ProfileDate::Raw(raw) => f.write_str(raw),
        }
    }
}

impl Serialize for ProfileDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProfileDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ProfileDate::from_text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_fixture() -> Value {
        json!({"user_info": {
            "user_id": "1001", "user_name": "alice", "user_email": "alice@example.com",
            "user_firstname": "Alice", "user_lastname": "Liddell", "user_gender": "female",
            "user_birthdate": "1990-05-04", "user_picture": "http://127.0.0.1/a.svg",
            "user_cover": "http://127.0.0.1/c.svg", "user_registered": "2019-01-15 10:00:00",
            "user_verified": "1", "user_relationship": "single",
            "user_biography": "Curious <b>explorer</b>", "user_website": "https://alice.example",
            "profile_picture": "http://127.0.0.1/a.svg", "profile_cover": "http://127.0.0.1/c.svg"
        }})
    }

    #[test]
    fn full_profile_is_typed() {
        let user = KvixiUser::from_user_info_response(&full_fixture()).unwrap();
        assert_eq!(user.id, "1001");
        assert_eq!(user.name.as_deref(), Some("alice"));
        assert_eq!(user.email.as_deref(), Some("alice@example.com"));
        assert_eq!(user.display_name(), "Alice Liddell");
        assert!(user.verified);
        assert_eq!(
            user.birthdate.as_ref().and_then(ProfileDate::date),
            Some(time::macros::date!(1990 - 05 - 04))
        );
        assert!(matches!(user.registered, Some(ProfileDate::DateTime(_))));
        assert_eq!(user.website.as_deref(), Some("https://alice.example"));
        assert!(user.extra.is_empty(), "profile_* are known fields");
    }

    #[test]
    fn all_empty_strings_become_none() {
        let mut body = full_fixture();
        for (key, value) in body["user_info"].as_object_mut().unwrap() {
            if key != "user_id" {
                *value = json!("");
            }
        }
        let user = KvixiUser::from_user_info_response(&body).unwrap();
        assert_eq!(user.id, "1001");
        assert_eq!(user.name, None);
        assert_eq!(user.birthdate, None);
        assert_eq!(user.picture, None);
        assert!(!user.verified);
        assert_eq!(user.display_name(), "1001");
    }

    #[test]
    fn nulls_and_missing_fields_become_none() {
        let body = json!({"user_info": {"user_id": 42, "user_name": null, "user_email": null}});
        let user = KvixiUser::from_user_info_response(&body).unwrap();
        assert_eq!(user.id, "42", "a numeric id is kept as text");
        assert_eq!(user.name, None);
        assert_eq!(user.email, None);
    }

    #[test]
    fn verified_accepts_strings_and_booleans() {
        for (value, expected) in [
            (json!("1"), true),
            (json!("0"), false),
            (json!("true"), true),
            (json!("False"), false),
            (json!("yes"), true),
            (json!("no"), false),
            (json!(true), true),
            (json!(false), false),
            (json!(null), false),
            (json!("maybe"), false),
        ] {
            let body = json!({"user_info": {"user_id": "1", "user_verified": value}});
            let user = KvixiUser::from_user_info_response(&body).unwrap();
            assert_eq!(user.verified, expected, "{value}");
        }
    }

    #[test]
    fn unknown_fields_are_kept() {
        let body = json!({"user_info": {"user_id": "1", "user_karma": 7, "badges": ["a"]}});
        let user = KvixiUser::from_user_info_response(&body).unwrap();
        assert_eq!(user.extra.get("user_karma"), Some(&json!(7)));
        assert_eq!(user.extra.get("badges"), Some(&json!(["a"])));
    }

    #[test]
    fn extra_numbers_survive_the_session_round_trip() {
        // Found by the provider_json fuzz target: without exact float parsing this
        // number came back from the session slightly different.
        let body: Value = serde_json::from_str(
            r#"{"user_info":{"user_id":"1","x":[3333333333333300000000000000000000000000000000000000000000000000000000000000000000000000000000012297829382473034406]}}"#,
        )
        .unwrap();
        let user = KvixiUser::from_user_info_response(&body).unwrap();
        let stored = serde_json::to_string(&user).unwrap();
        assert_eq!(serde_json::from_str::<KvixiUser>(&stored).unwrap(), user);
    }

    #[test]
    fn dates_and_date_times_parse_and_print_back() {
        for text in [
            "1990-05-04",
            "2019-01-15 10:00:00",
            "0001-01-01",
            "2024-02-29 23:59:59",
        ] {
            let parsed = ProfileDate::from_text(text.to_owned());
            assert!(!matches!(parsed, ProfileDate::Raw(_)), "{text}");
            assert_eq!(parsed.to_string(), text);
        }
        for raw in [
            "0000-00-00",
            "1990-13-01",
            "1990-02-30",
            "1990-5-04",
            "1990-05-04T10:00:00",
            "2019-01-15 24:00:00",
            "199O-05-04",
            "1990/05/04",
            "+990-05-04",
            "2019-01-15 10:00:0x",
        ] {
            assert_eq!(
                ProfileDate::from_text(raw.to_owned()),
                ProfileDate::Raw(raw.to_owned())
            );
        }
    }

    #[test]
    fn unparsable_dates_stay_raw() {
        let body = json!({"user_info": {"user_id": "1", "user_birthdate": "0000-00-00"}});
        let user = KvixiUser::from_user_info_response(&body).unwrap();
        assert_eq!(user.birthdate, Some(ProfileDate::Raw("0000-00-00".into())));
    }

    #[test]
    fn answers_without_a_user_are_refused() {
        for body in [
            json!([]),
            json!({}),
            json!({"user_info": []}),
            json!({"user_info": "x"}),
        ] {
            assert_eq!(
                KvixiUser::from_user_info_response(&body),
                Err(UserInfoProblem::MissingUserInfo),
                "{body}"
            );
        }
        for body in [
            json!({"user_info": {}}),
            json!({"user_info": {"user_id": ""}}),
            json!({"user_info": {"user_id": "  "}}),
            json!({"user_info": {"user_id": null}}),
        ] {
            assert_eq!(
                KvixiUser::from_user_info_response(&body),
                Err(UserInfoProblem::MissingUserId),
                "{body}"
            );
        }
    }

    #[test]
    fn session_form_round_trips_and_stays_small() {
        let user = KvixiUser::from_user_info_response(&full_fixture()).unwrap();
        let json = serde_json::to_string(&user).unwrap();
        assert!(json.len() < 700, "{} bytes", json.len());
        let back: KvixiUser = serde_json::from_str(&json).unwrap();
        assert_eq!(back, user);
        let sparse =
            KvixiUser::from_user_info_response(&json!({"user_info": {"user_id": "2"}})).unwrap();
        assert_eq!(
            serde_json::to_string(&sparse).unwrap(),
            r#"{"id":"2","verified":false}"#
        );
    }
}
