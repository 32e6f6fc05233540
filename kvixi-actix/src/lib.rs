//! Log in with Kvixi for actix (work in progress).
#![forbid(unsafe_code)]
