//! Reads an existing Fail2Ban configuration (`/etc/fail2ban`) the way Fail2Ban 1.0 does.
//!
//! Key decision: a hand-written reader reproduces Python's `configparser` line grammar
//! exactly (no INI crate agrees with it on the shipped files), and every value keeps the file
//! and line it was written on, so every error and every report entry names `FILE:LINE`.
#![deny(missing_docs)]

mod args;
mod bans;
mod error;
mod filter;
mod glob;
mod ini;
mod jail;
mod layer;
mod time;
mod toml_out;

pub use args::{Reference, parse_reference, shell_words, split_references, split_words};
pub use bans::{BanDbError, FAIL2BAN_DB, Fail2BanBan, active_bans};
pub use error::{InterpolateError, LoadError};
pub use filter::{FilterDef, JournalMatch};
pub use ini::{DEFAULT_SECTION, IniError, IniFile, IniValue, Origin, Section};
pub use jail::{
    ActionMapping, FAIL2BAN_VERSION, Import, ImportOptions, ImportedJail, JailAction, Report,
    ReportEntry, Severity,
};
pub use layer::{
    ConfigSet, Located, MAX_INCLUDE_DEPTH, MAX_INTERPOLATED_LEN, MAX_INTERPOLATION_DEPTH,
    MAX_INTERPOLATION_WORK, Vars,
};
pub use time::parse_seconds;
