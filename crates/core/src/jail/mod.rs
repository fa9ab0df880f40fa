//! Jails: the sans-IO engine that turns events into ban decisions.
//!
//! One [`JailEngine`] per jail. It is a pure state machine in the shape of quinn-proto's
//! `Connection`: `handle_event` / `handle_timeout` / `handle_command` in, `poll_decision` /
//! `poll_timeout` out, `now` always an argument. See [`JailEngine`] for the call protocol and
//! the rules (exact sliding window, escalation to permanent, allowlist and login protection,
//! breach alerts, IPv6 aggregation). [`LogClock`] makes log time a clock for the offline
//! drivers that one far-off line cannot freeze.

mod command;
pub use command::{Command, CommandError, MAX_BAN_DURATION};

mod config;
pub use config::JailConfig;

mod engine;
pub use engine::{
    JailEngine, JailStats, MAX_PROTECTED_USERS, ParticipantBan, Restored, SuccessVerdict,
    WindowEntry, WindowState,
};

mod addr_table;
mod escalation;
mod few;
mod slow;
mod window;

mod log_clock;
pub use log_clock::{FUTURE_SLACK, LogClock, LogClockStats, Placed, Placement};

#[cfg(test)]
mod tests;
