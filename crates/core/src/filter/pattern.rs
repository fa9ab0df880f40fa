//! The engine-neutral regex interface filters are written against (ripgrep's `Matcher` shape).

use std::fmt;

/// Capture group spans from the last successful [`Pattern::captures_at`].
pub trait Captures: fmt::Debug {
    /// The byte range of group `index` (0 is the whole match), `None` if it did not take part.
    fn get(&self, index: usize) -> Option<(usize, usize)>;
}

/// A compiled regular expression, whatever the engine.
///
/// Two methods are required; the rest have defaults an engine may override for speed.
/// Filters hold concrete patterns (usually [`AnyPattern`]) and never box a `dyn Pattern`.
pub trait Pattern: fmt::Debug {
    /// Reusable storage for group spans, so matching allocates nothing per line.
    type Captures: Captures;
    /// A fault while matching (for example a backtracking limit); never "no match".
    type Error: std::error::Error + Send + Sync + 'static;

    /// Fresh capture storage sized for this pattern.
    fn new_captures(&self) -> Result<Self::Captures, Self::Error>;

    /// Search `line` starting at byte `at`; on a match fill `caps` and return `true`.
    fn captures_at(
        &self,
        line: &str,
        at: usize,
        caps: &mut Self::Captures,
    ) -> Result<bool, Self::Error>;

    /// The index of the group called `name`, if the pattern has one.
    fn capture_index(&self, name: &str) -> Option<usize>;

    /// Whether the pattern matches anywhere in `line`.
    fn is_match(&self, line: &str) -> Result<bool, Self::Error> {
        let mut caps = self.new_captures()?;
        self.captures_at(line, 0, &mut caps)
    }

    /// A cheap literal prefilter: `false` only if `line` certainly cannot match. It may say
    /// `true` for lines that do not match.
    fn candidate(&self, line: &str) -> bool {
        let _ = line;
        true
    }

    /// Literals one of which every match starts with, at the very start of the searched
    /// text (the pattern begins with `^`); `None` when unknown. Filters dispatch lines to
    /// rules on these, so they must never exclude a line the pattern matches.
    fn anchored_prefixes(&self) -> Option<&[Box<[u8]>]> {
        None
    }
}

/// A fault of some engine while matching (never "no match"): the line is counted as bad.
#[derive(Debug, thiserror::Error)]
#[error("pattern matching failed: {0}")]
pub struct MatchError(pub Box<str>);

/// The engines a filter can be built on, chosen per filter without boxing.
///
/// Only the native engine lives in the core; the PCRE2 engine (for Fail2Ban filters) is
/// added as another variant behind a cargo feature.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyPattern {
    /// The `regex` crate: linear time, the engine of built-in and native filters.
    Native(super::native::RegexPattern),
}

/// Capture storage of an [`AnyPattern`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyCaptures {
    /// Storage of the native engine.
    Native(<super::native::RegexPattern as Pattern>::Captures),
}

impl Captures for AnyCaptures {
    fn get(&self, index: usize) -> Option<(usize, usize)> {
        match self {
            AnyCaptures::Native(c) => Captures::get(c, index),
        }
    }
}

impl From<super::native::RegexPattern> for AnyPattern {
    fn from(p: super::native::RegexPattern) -> AnyPattern {
        AnyPattern::Native(p)
    }
}

impl Pattern for AnyPattern {
    type Captures = AnyCaptures;
    type Error = MatchError;

    fn new_captures(&self) -> Result<AnyCaptures, MatchError> {
        match self {
            AnyPattern::Native(p) => match p.new_captures() {
                Ok(c) => Ok(AnyCaptures::Native(c)),
                Err(e) => match e {},
            },
        }
    }

    fn captures_at(
        &self,
        line: &str,
        at: usize,
        caps: &mut AnyCaptures,
    ) -> Result<bool, MatchError> {
        match (self, caps) {
            (AnyPattern::Native(p), AnyCaptures::Native(c)) => match p.captures_at(line, at, c) {
                Ok(m) => Ok(m),
                Err(e) => match e {},
            },
        }
    }

    fn capture_index(&self, name: &str) -> Option<usize> {
        match self {
            AnyPattern::Native(p) => p.capture_index(name),
        }
    }

    fn candidate(&self, line: &str) -> bool {
        match self {
            AnyPattern::Native(p) => p.candidate(line),
        }
    }

    fn anchored_prefixes(&self) -> Option<&[Box<[u8]>]> {
        match self {
            AnyPattern::Native(p) => p.anchored_prefixes(),
        }
    }
}

impl fmt::Display for AnyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyPattern::Native(p) => fmt::Display::fmt(p, f),
        }
    }
}
