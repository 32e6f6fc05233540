//! Log in with Kvixi for rocket (work in progress).
#![forbid(unsafe_code)]
