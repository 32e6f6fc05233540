//! The actix example app (work in progress).
