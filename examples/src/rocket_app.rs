//! The rocket example app (work in progress).
