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
/// Filters are generic over their pattern type (native by default, see
/// [`Filter`](super::Filter)) and never box a `dyn Pattern`.
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
