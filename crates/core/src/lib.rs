/*!
The detection core of portcullis: log lines in, ban decisions out.

Main types: [`Event`] (a timestamped failure or success for one address), the filter engine
([`filter::Filter`], which turns a log line into events), and the jail engine
([`jail::JailEngine`], which turns events into [`Decision`]s). Time is one model: instants
are [`Time`], and [`calendar`] is the one calendar (zones, the year of year-less dates) that
the native [`date::DateParser`] and the Fail2Ban engine both read dates with.

Key decision: everything here is a deterministic state machine. Time is always an argument
([`Time`]); nothing reads a clock, a file, a socket or spawns a thread. The same code serves
the live daemon (wall clock) and `portcullis scan` (log time), and tests drive it with a fake
clock through millions of events.

This crate never touches the firewall or the store: callers drain decisions and apply them.
*/
#![deny(missing_docs)]

pub mod calendar;
pub mod campaign;
pub mod date;
pub mod event;
pub mod filter;
pub mod jail;
pub mod origin;
pub mod time;

pub use event::{Decision, Event, EventKind, Weight};
pub use time::Time;
