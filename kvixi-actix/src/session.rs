//! The core's session interface over `actix_session::Session`.
//!
//! `actix_session::Session` lives in one worker thread (`Rc<RefCell<…>>`), while the
//! core's [`SessionStorage`] futures must be `Send`. Its operations are synchronous edits
//! of request-local state that the middleware persists after the handler, so nothing is
//! lost by working on a copy: [`SessionEdit::begin`] copies the entries, the core reads and
//! writes the copy, and [`SessionEdit::commit`] replays the writes, in order, on the
//! real session.
//!
//! A session loaded while the store was unavailable holds only the
//! [`STORE_UNAVAILABLE`](crate::resilient::STORE_UNAVAILABLE) marker: every read and
//! write of it is then [`Error::SessionStoreUnavailable`], so the core answers 503 and
//! nothing is written (see [`crate::resilient`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use actix_session::Session;
use kvixi_core::flow::AUTH_RECORD_KEY;
use kvixi_core::{Error, SessionStorage, async_trait};
use serde_json::value::RawValue;

use crate::resilient::{STORE_UNAVAILABLE, store_unavailable};

/// One write the core made, to be replayed on the `Session`.
#[derive(Debug)]
enum Write {
    /// A key and its JSON text.
    Insert(String, String),
    Remove(String),
    Renew,
    Purge,
}

#[derive(Debug, Default)]
struct Copy {
    /// The session's entries as actix-session keeps them: JSON text.
    entries: HashMap<String, String>,
    writes: Vec<Write>,
}

/// A session seen through the core's [`SessionStorage`] for the length of one core call.
#[derive(Debug)]
pub(crate) struct SessionEdit {
    copy: Mutex<Copy>,
    /// The store's problem, when the session could not be loaded.
    unavailable: Option<String>,
}

impl SessionEdit {
    /// Starts an edit of `session` from a copy of the entries the flow uses.
    pub(crate) fn begin(session: &Session) -> SessionEdit {
        let all = session.entries();
        let entries = kvixi_core::flow::SESSION_KEYS
            .iter()
            .filter_map(|key| all.get(*key).map(|json| ((*key).to_owned(), json.clone())))
            .collect();
        SessionEdit {
            copy: Mutex::new(Copy {
                entries,
                writes: Vec::new(),
            }),
            unavailable: store_unavailable(&all),
        }
    }

    /// Refuses every use of a session that could not be loaded.
    fn available(&self) -> Result<(), Error> {
        unavailable_error(self.unavailable.as_ref())
    }

    /// Applies the core's writes to `session`; actix-session persists them after the
    /// handler (a renewal or a purge included).
    pub(crate) fn commit(self, session: &Session) -> Result<(), Error> {
        let copy = self
            .copy
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        for write in copy.writes {
            match write {
                Write::Insert(key, json) => {
                    // Stored as the JSON itself, not as a JSON string holding JSON.
                    let raw =
                        RawValue::from_string(json).map_err(|e| Error::Session(e.to_string()))?;
                    session
                        .insert(key, raw)
                        .map_err(|e| Error::Session(e.to_string()))?;
                }
                Write::Remove(key) => drop(session.remove(&key)),
                Write::Renew => session.renew(),
                Write::Purge => session.purge(),
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Copy> {
        // Each step below leaves the copy consistent, even if a panic poisoned the lock.
        self.copy.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs one core call on `session`: the call works on a copy, its writes are committed
/// when it returns.
pub(crate) async fn edit_session<T>(
    session: &Session,
    call: impl AsyncFnOnce(&SessionEdit) -> T,
) -> Result<T, Error> {
    let edit = SessionEdit::begin(session);
    let output = call(&edit).await;
    edit.commit(session)?;
    Ok(output)
}

/// What an extractor hands the core: a copy of the auth record alone. Reading the user or
/// the token writes nothing, except that the core drops a record it cannot read; that
/// removal is replayed by [`AuthRead::finish`].
#[derive(Debug)]
pub(crate) struct AuthRead {
    json: Option<String>,
    dropped: AtomicBool,
    /// The store's problem, when the session could not be loaded.
    unavailable: Option<String>,
}

impl AuthRead {
    /// Copies the auth record of `session`.
    pub(crate) fn begin(session: &Session) -> AuthRead {
        let entries = session.entries();
        AuthRead {
            json: entries.get(AUTH_RECORD_KEY).cloned(),
            dropped: AtomicBool::new(false),
            unavailable: store_unavailable(&entries),
        }
    }

    /// What `decide` (one of the core's `*_now` reads) makes of `session`'s auth record
    /// as loaded, without copying it; `None` when the store could not load the session
    /// or `decide` cannot tell at once: then [`AuthRead::begin`] and the core's full read
    /// answer.
    pub(crate) fn at_once<R>(
        session: &Session,
        decide: impl FnOnce(Option<&str>) -> Option<R>,
    ) -> Option<R> {
        let entries = session.entries();
        if entries.contains_key(STORE_UNAVAILABLE) {
            return None;
        }
        decide(entries.get(AUTH_RECORD_KEY).map(String::as_str))
    }

    /// Applies the core's only possible write, the removal of an unreadable record.
    pub(crate) fn finish(self, session: &Session) {
        if self.dropped.into_inner() {
            drop(session.remove(AUTH_RECORD_KEY));
        }
    }
}

#[async_trait]
impl SessionStorage for AuthRead {
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        unavailable_error(self.unavailable.as_ref())?;
        Ok(self.json.clone().filter(|_| key == AUTH_RECORD_KEY))
    }

    async fn insert(&self, _key: &str, _json: String) -> Result<(), Error> {
        Err(read_only())
    }

    async fn remove(&self, key: &str) -> Result<(), Error> {
        unavailable_error(self.unavailable.as_ref())?;
        if key == AUTH_RECORD_KEY {
            self.dropped.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn rotate_id(&self) -> Result<(), Error> {
        Err(read_only())
    }

    async fn destroy(&self) -> Result<(), Error> {
        Err(read_only())
    }
}

fn read_only() -> Error {
    Error::Session("an extractor only reads the session".into())
}

/// [`Error::SessionStoreUnavailable`] when the store's `problem` kept the session from
/// loading.
fn unavailable_error(problem: Option<&String>) -> Result<(), Error> {
    match problem {
        Some(problem) => Err(Error::SessionStoreUnavailable {
            problem: problem.clone(),
        }),
        None => Ok(()),
    }
}

#[async_trait]
impl SessionStorage for SessionEdit {
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        self.available()?;
        // actix-session keeps every entry as JSON text already.
        Ok(self.lock().entries.get(key).cloned())
    }

    async fn insert(&self, key: &str, json: String) -> Result<(), Error> {
        self.available()?;
        let mut copy = self.lock();
        copy.entries.insert(key.to_owned(), json.clone());
        copy.writes.push(Write::Insert(key.to_owned(), json));
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), Error> {
        self.available()?;
        let mut copy = self.lock();
        copy.entries.remove(key);
        copy.writes.push(Write::Remove(key.to_owned()));
        Ok(())
    }

    async fn rotate_id(&self) -> Result<(), Error> {
        self.available()?;
        self.lock().writes.push(Write::Renew);
        Ok(())
    }

    async fn destroy(&self) -> Result<(), Error> {
        self.available()?;
        let mut copy = self.lock();
        copy.entries.clear();
        copy.writes.push(Write::Purge);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use actix_session::SessionExt;
    use actix_session::SessionStatus;
    use actix_web::test::TestRequest;
    use kvixi_core::flow::AUTH_RECORD_KEY as AUTH;
    use serde_json::{Value, json};

    use super::*;

    /// A request's session holding an auth record and an app value.
    fn logged_in_session() -> Session {
        let session = TestRequest::default().to_http_request().get_session();
        session.insert(AUTH, json!({"user": 1})).unwrap();
        session.insert("cart", json!([1, 2])).unwrap();
        session
    }

    #[tokio::test]
    async fn writes_reach_the_session_only_at_commit_and_in_order() {
        let request = TestRequest::default().to_http_request();
        let session = request.get_session();
        session.insert(AUTH, "old").unwrap();

        let edit = SessionEdit::begin(&session);
        assert_eq!(edit.get(AUTH).await.unwrap().as_deref(), Some(r#""old""#));
        edit.remove(AUTH).await.unwrap();
        assert_eq!(edit.get(AUTH).await.unwrap(), None);
        edit.rotate_id().await.unwrap();
        edit.insert(AUTH, r#"{"user":1}"#.into()).await.unwrap();
        assert_eq!(
            session.get::<Value>(AUTH).unwrap(),
            Some(json!("old")),
            "untouched before commit"
        );

        edit.commit(&session).unwrap();
        assert_eq!(session.status(), SessionStatus::Renewed);
        assert_eq!(
            session.get::<Value>(AUTH).unwrap(),
            Some(json!({"user": 1})),
            "stored as JSON, not as a string holding JSON"
        );
    }

    #[tokio::test]
    async fn only_the_flow_entries_are_copied_and_the_others_survive() {
        let session = logged_in_session();
        let edit = SessionEdit::begin(&session);
        assert_eq!(edit.get("cart").await.unwrap(), None, "not the flow's");
        edit.remove(AUTH).await.unwrap();
        edit.commit(&session).unwrap();
        assert_eq!(session.get::<Value>("cart").unwrap(), Some(json!([1, 2])));
    }

    #[tokio::test]
    async fn auth_read_sees_only_the_record_and_replays_its_removal() {
        let session = logged_in_session();
        let read = AuthRead::begin(&session);
        assert_eq!(
            read.get(AUTH).await.unwrap().as_deref(),
            Some(r#"{"user":1}"#)
        );
        assert_eq!(read.get("cart").await.unwrap(), None);
        assert!(read.insert(AUTH, "1".into()).await.is_err());
        read.remove(AUTH).await.unwrap();
        read.finish(&session);
        assert!(!session.contains_key(AUTH));
        assert!(session.contains_key("cart"));
    }

    #[tokio::test]
    async fn destroy_purges_the_session() {
        let session = logged_in_session();
        let edit = SessionEdit::begin(&session);
        edit.destroy().await.unwrap();
        assert_eq!(edit.get(AUTH).await.unwrap(), None);
        edit.commit(&session).unwrap();
        assert_eq!(session.status(), SessionStatus::Purged);
        assert!(session.entries().is_empty());
    }

    /// A session as the store wrapper hands it over when the store is down.
    fn unavailable_session() -> Session {
        let session = TestRequest::default().to_http_request().get_session();
        let marker = crate::resilient::STORE_UNAVAILABLE;
        session.insert(marker, "Connection refused").unwrap();
        session
    }

    fn is_unavailable(result: Result<impl std::fmt::Debug, Error>) -> bool {
        matches!(result, Err(Error::SessionStoreUnavailable { problem }) if problem == "Connection refused")
    }

    #[tokio::test]
    async fn an_edit_of_a_session_the_store_could_not_load_fails_and_writes_nothing() {
        let session = unavailable_session();
        let before = session.entries().clone();
        let edit = SessionEdit::begin(&session);
        assert!(is_unavailable(edit.get(AUTH).await), "not anonymous");
        assert!(is_unavailable(edit.insert(AUTH, "1".into()).await));
        assert!(is_unavailable(edit.remove(AUTH).await));
        assert!(is_unavailable(edit.rotate_id().await));
        assert!(is_unavailable(edit.destroy().await), "no logout");
        edit.commit(&session).unwrap();
        assert_eq!(*session.entries(), before, "no write, no purge, no renewal");
    }

    #[tokio::test]
    async fn an_auth_read_of_a_session_the_store_could_not_load_fails() {
        let session = unavailable_session();
        let read = AuthRead::begin(&session);
        assert!(is_unavailable(read.get(AUTH).await), "not anonymous");
        assert!(is_unavailable(read.remove(AUTH).await));
        read.finish(&session);
    }

    #[tokio::test]
    async fn text_that_is_not_json_is_refused_at_commit() {
        let session = logged_in_session();
        let edit = SessionEdit::begin(&session);
        edit.insert(AUTH, "{not json".into()).await.unwrap();
        assert!(matches!(edit.commit(&session), Err(Error::Session(_))));
    }
}
