//! portcullis-testkit: the fixtures that the integration tests of several crates share, so each
//! exists once. Network namespaces joined by veth pairs, with addresses only from the
//! documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), named
//! from the pid and a counter, and removed on `Drop` also when a test panics; and the
//! prerequisite check: a test that needs root or a missing tool says so loudly and returns,
//! or FAILS when `CI=true`.
//!
//! Key decision: dev-only (`publish = false`, used only as a dev-dependency). Fixtures panic
//! on failure: in a test, the panic message is the failure report.
#![deny(missing_docs)]

mod command;
pub mod mmdb;
pub mod netns;
mod prereq;
mod rng;

pub use command::run;
pub use netns::{ATTACKER4, ATTACKER6, Listener, Netns, Pair, SERVER4, SERVER6};
pub use prereq::{require, require_root_and, which};
pub use rng::Xorshift;
