//! Deterministic generator of realistic sshd `auth.log` traffic with exact ground truth, for
//! portcullis's benchmarks and corpus tests.
//!
//! Key decision: every line is planned by a hand-written seeded PRNG and tallied as it is
//! written, so the same options always give byte-identical output and the truth (attempts,
//! probes and successes per address, by the counting table in [`truth`]) describes exactly
//! the bytes produced, not an intention.
//!
//! It is an independent oracle: the ground truth that portcullis's date parsers, filters and
//! counting are checked against (`bench/check_truth.py`, the corpus tests). So it shares no
//! code with what it tests: it does not depend on portcullis-core, neither its date parser
//! nor its calendar, and writes its own timestamps with jiff directly. A bug in core's
//! calendar (a wrong leap day, an off-by-one at New Year) then shows up as a mismatch
//! instead of being copied into the expected answers, where it would cancel out.
#![deny(missing_docs)]

mod addr;
mod clock;
mod error;
mod generate;
mod rng;
mod rotate;
mod site;
#[cfg(test)]
mod tests;
pub mod truth;
mod users;

pub use clock::{Format, parse_start};
pub use error::{ConfigError, GenerateError, RotateError, StartError};
pub use generate::{Config, generate};
pub use rotate::{RotatedSet, write_rotated};
pub use site::{SiteConfig, SiteTruth, generate_site};
pub use truth::{AddressTruth, Breach, Totals, Truth};
