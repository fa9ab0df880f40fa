//! Integration tests of the sources on real files, real inotify and real journalctl.

mod edge;
mod journal;
mod resume;
mod rotation;
mod util;
