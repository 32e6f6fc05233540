//! The core's session interface over `actix_session::Session`.
//!
//! `actix_session::Session` lives in one worker thread (`Rc<RefCell<…>>`), while the
//! core's [`SessionStorage`] futures must be `Send`. Its operations are synchronous edits
//! of request-local state that the middleware persists after the handler, so nothing is
//! lost by working on a copy: [`SessionEdit::begin`] copies the entries, the core reads and
//! writes the copy, and [`SessionEdit::commit`] replays the writes, in order, on the
//! real session.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use actix_session::Session;
use kvixi_core::{Error, SessionStorage, async_trait};
use serde_json::Value;

/// One write the core made, to be replayed on the `Session`.
#[derive(Debug)]
enum Write {
    Insert(String, Value),
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
}

impl SessionEdit {
    /// Starts an edit of `session` from a copy of its entries.
    pub(crate) fn begin(session: &Session) -> SessionEdit {
        SessionEdit {
            copy: Mutex::new(Copy {
                entries: session.entries().clone(),
                writes: Vec::new(),
            }),
        }
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
                Write::Insert(key, value) => session
                    .insert(key, value)
                    .map_err(|e| Error::Session(e.to_string()))?,
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

#[async_trait]
impl SessionStorage for SessionEdit {
    async fn get(&self, key: &str) -> Result<Option<Value>, Error> {
        self.lock()
            .entries
            .get(key)
            .map(|text| serde_json::from_str(text).map_err(|e| Error::Session(e.to_string())))
            .transpose()
    }

    async fn insert(&self, key: &str, value: Value) -> Result<(), Error> {
        let mut copy = self.lock();
        copy.entries.insert(key.to_owned(), value.to_string());
        copy.writes.push(Write::Insert(key.to_owned(), value));
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), Error> {
        let mut copy = self.lock();
        copy.entries.remove(key);
        copy.writes.push(Write::Remove(key.to_owned()));
        Ok(())
    }

    async fn rotate_id(&self) -> Result<(), Error> {
        self.lock().writes.push(Write::Renew);
        Ok(())
    }

    async fn destroy(&self) -> Result<(), Error> {
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
    use serde_json::json;

    use super::*;

    /// A request's session holding `auth` = 1.
    fn logged_in_session() -> Session {
        let session = TestRequest::default().to_http_request().get_session();
        session.insert("auth", 1).unwrap();
        session
    }

    #[tokio::test]
    async fn writes_reach_the_session_only_at_commit_and_in_order() {
        let request = TestRequest::default().to_http_request();
        let session = request.get_session();
        session.insert("pending", "old").unwrap();

        let edit = SessionEdit::begin(&session);
        assert_eq!(edit.get("pending").await.unwrap(), Some(json!("old")));
        edit.remove("pending").await.unwrap();
        edit.rotate_id().await.unwrap();
        edit.insert("auth", json!({"user": 1})).await.unwrap();
        assert_eq!(edit.get("pending").await.unwrap(), None);
        assert!(session.contains_key("pending"), "untouched before commit");

        edit.commit(&session).unwrap();
        assert_eq!(session.status(), SessionStatus::Renewed);
        assert!(!session.contains_key("pending"));
        assert_eq!(
            session.get::<Value>("auth").unwrap(),
            Some(json!({"user": 1}))
        );
    }

    #[tokio::test]
    async fn destroy_purges_the_session() {
        let session = logged_in_session();
        let edit = SessionEdit::begin(&session);
        edit.destroy().await.unwrap();
        assert_eq!(edit.get("auth").await.unwrap(), None);
        edit.commit(&session).unwrap();
        assert_eq!(session.status(), SessionStatus::Purged);
        assert!(session.entries().is_empty());
    }

    #[tokio::test]
    async fn unreadable_entries_are_session_errors() {
        let session = logged_in_session();
        // actix-session only holds JSON; a foreign writer could still leave other text.
        let edit = SessionEdit::begin(&session);
        edit.lock()
            .entries
            .insert("auth".into(), "{not json".into());
        assert!(matches!(edit.get("auth").await, Err(Error::Session(_))));
    }
}
