//! Fail2Ban filters for portcullis: PCRE2 patterns with Python `re` semantics, Fail2Ban's
//! tags, multi-line failure ids and date templates.
//!
//! [`RegexPattern`] implements core's [`Pattern`](portcullis_core::filter::Pattern) trait
//! (the same shape as the native engine); every pattern carries a `(*LIMIT_MATCH=N)` bound so
//! a catastrophic pattern fails one search with [`SearchError::MatchLimit`] instead of
//! burning a core. [`Fail2BanFilter`] runs a `filter.d` definition line by line; the
//! definition itself is read by `portcullis-fail2ban` ([`FilterDef`], turned into engine
//! settings by [`FilterOptions::from_def`]), so there is one Fail2Ban reader.
//! [`Fail2BanMatcher`] puts it behind core's
//! [`EventMatcher`](portcullis_core::filter::EventMatcher) shape (lines and journal records
//! in, core `Event`s out), the same shape as core's native `LineMatcher`.
//!
//! Key design decision: Fail2Ban filters are their own matcher, not patterns inside core's
//! rule model: prefregex, multi-line buffers and failure ids that are not addresses do not
//! fit it. This crate depends on core (for the `Pattern` trait and `Event`), never the other
//! way; a native TOML filter can still run on PCRE2 as
//! `Filter<portcullis_pcre2::RegexPattern>`.
#![deny(missing_docs)]

pub mod conf;
pub mod date;
mod filter;
mod literal;
mod matcher;
mod pattern;
mod tags;

pub use conf::{LoadError, filter_path, load_filter};
pub use date::{DateDetector, DateMatch, DatePatternError};
pub use filter::{
    BuildError, Fail2BanFilter, Failure, Fields, FilterOptions, LineResult, Value, normalize,
};
pub use matcher::Fail2BanMatcher;
pub use pattern::{
    CompileError, DEFAULT_MATCH_LIMIT, PatternOptions, RegexPattern, SearchError, Spans,
};
pub use portcullis_fail2ban::FilterDef;
pub use tags::{UseDns, expand_tags, field_name, python_to_pcre2};
