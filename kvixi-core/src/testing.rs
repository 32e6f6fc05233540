//! Logging a user in from an app's own tests, without Kvixi (feature `testing`).
//!
//! Each adapter's `testing::log_in_as` hands a [`TestLogin`] to its callback route inside
//! the process (a request extension or Rocket's request-local cache, which no client can
//! set), and the route answers with [`Kvixi::handle_test_login`](crate::Kvixi::handle_test_login):
//! the same auth record and session rotation as a real login, through the app's own session
//! layer and store.

use crate::user::KvixiUser;

/// The user an in-process test request asks the callback route to log in.
#[derive(Clone, Debug, PartialEq)]
pub struct TestLogin(pub KvixiUser);
