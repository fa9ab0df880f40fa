//! Filters: turn log lines into [`Event`](crate::Event)s.
//!
//! A filter is data (TOML, [`FilterSpec`]) compiled once into a [`Filter`]: the programs it
//! reads, ordered rules (regex with tags `<HOST>`, `<USER>`, `<PORT>`, kind, weight, merge
//! role) and ignore patterns. [`EventMatcher`] is the shape of every engine's entry point for
//! raw lines and journal records ([`Record`]); [`LineMatcher`] is the native one, made of a
//! per-line stage ([`UnmergedMatcher`], may run on worker threads) and an in-order
//! [`AttemptMerger`]. Regex engines sit behind the [`Pattern`] trait; a [`Filter`] is generic
//! over it (the native [`native::RegexPattern`] by default), so no rule boxes a pattern.
//!
//! Speed: a line of another program is rejected after its header; otherwise the message is
//! dispatched on its first byte and then on each rule's literal prefix, so usually one
//! regex (or none) runs. Safety: every rule is anchored `^…$` and its address must follow
//! fixed text, checked when it is compiled; addresses are validated and normalised.

pub mod coalesce;
mod compile;
pub mod cut;
pub mod hand;
pub mod header;
mod matcher;
pub mod native;
mod pattern;
pub mod spec;

pub use coalesce::{Coalescer, Merge};
pub use compile::{
    BUILTIN_NAMES, CompileError, Filter, FilterError, FilterErrorKind, HOST_REGEX, MessageMatch,
    PORT_REGEX, Rule, RuleMatch, Scratch, Shapes, USER_REGEX, builtin, compile_native, cut_safe,
};
pub use matcher::{
    AttemptMerger, BadLine, EventMatcher, LineMatcher, LineOutcome, MAX_LINE, Record, Stats,
    Unmerged, UnmergedMatcher,
};
pub use pattern::{Captures, Pattern};
pub use spec::FilterSpec;
