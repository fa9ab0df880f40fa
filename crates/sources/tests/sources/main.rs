//! Integration tests of the sources on real files, real inotify and real journalctl.

// Test helpers unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod edge;
mod faults;
mod journal;
mod logrotate;
mod resume;
mod rotation;
mod special;
mod util;
