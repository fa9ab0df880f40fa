//! End-to-end harness: network namespaces, a real OpenSSH sshd logging through a captured
//! `/dev/log`, and real clients. Everything is torn down on `Drop`, also when a test panics.

pub mod daemon;
pub mod sshd;

/// The network namespaces and the prerequisite check are shared with the firewall crate's
/// tests: `portcullis-testkit`.
pub use portcullis_testkit::netns;
pub use portcullis_testkit::{require, require_root_and, run, which};
