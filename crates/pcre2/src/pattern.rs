//! The PCRE2 engine behind core's [`Pattern`] trait: Python `re` syntax, bounded backtracking.

use std::fmt;

use pcre2::bytes::{CaptureLocations, Regex, RegexBuilder};
use portcullis_core::filter::{Captures, Pattern};

/// Default bound on backtracking steps per search. Fail2Ban's real filters need a few
/// thousand on ordinary lines; a catastrophic pattern hits this within about a millisecond
/// (JIT) instead of burning a core.
pub const DEFAULT_MATCH_LIMIT: u32 = 100_000;

/// PCRE2's "match limit exceeded" error code (`PCRE2_ERROR_MATCHLIMIT`).
const ERROR_MATCHLIMIT: i32 = -47;

/// Why a pattern did not compile.
#[derive(Debug, thiserror::Error)]
#[error("regex {pattern:?} does not compile: {source}")]
#[non_exhaustive]
pub struct CompileError {
    /// The pattern as given (before the limit prefix was added).
    pub pattern: Box<str>,
    /// PCRE2's message, with the offset.
    #[source]
    pub source: pcre2::Error,
}

/// A fault while searching one subject; the line is counted as bad, never as "no match".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The backtracking bound was reached: the pattern is catastrophic on this input.
    #[error("match limit of {limit} steps exceeded (catastrophic backtracking cut off)")]
    MatchLimit {
        /// The bound that was hit.
        limit: u32,
    },
    /// Any other PCRE2 run-time error.
    #[error("pcre2 search failed: {0}")]
    Engine(pcre2::Error),
}

/// Options for compiling a [`RegexPattern`].
#[derive(Copy, Clone, Debug)]
pub struct PatternOptions {
    /// `^`/`$` match at every line of the subject (Fail2Ban's `maxlines > 1`).
    pub multi_line: bool,
    /// Backtracking bound, written into the pattern as `(*LIMIT_MATCH=N)`.
    pub match_limit: u32,
}

impl Default for PatternOptions {
    fn default() -> PatternOptions {
        PatternOptions {
            multi_line: false,
            match_limit: DEFAULT_MATCH_LIMIT,
        }
    }
}

/// A pattern compiled by PCRE2 (UTF, Unicode properties, JIT when available), searched
/// with a backtracking bound so that no line can burn the CPU.
#[derive(Clone, Debug)]
pub struct RegexPattern {
    regex: Regex,
    /// The pattern without the limit prefix, for display.
    source: Box<str>,
    /// Group names by index (index 0, the whole match, has none).
    names: Box<[Option<Box<str>>]>,
    limit: u32,
}

impl RegexPattern {
    /// Compile `pattern` (PCRE2 syntax, which accepts Python's `(?P<name>…)`) with the
    /// default options.
    pub fn new(pattern: &str) -> Result<RegexPattern, CompileError> {
        RegexPattern::with_options(pattern, PatternOptions::default())
    }

    /// Compile `pattern` with `options`.
    pub fn with_options(
        pattern: &str,
        options: PatternOptions,
    ) -> Result<RegexPattern, CompileError> {
        let bounded = format!("(*LIMIT_MATCH={}){pattern}", options.match_limit);
        let regex = RegexBuilder::new()
            .utf(true)
            .ucp(true)
            .multi_line(options.multi_line)
            .jit_if_available(true)
            .build(&bounded)
            .map_err(|source| CompileError {
                pattern: pattern.into(),
                source,
            })?;
        let names = regex
            .capture_names()
            .iter()
            .map(|n| n.as_deref().map(Box::from))
            .collect();
        Ok(RegexPattern {
            regex,
            source: pattern.into(),
            names,
            limit: options.match_limit,
        })
    }

    /// The pattern text as given (without the limit prefix).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Group names by index; `None` for unnamed groups and for index 0.
    pub fn capture_names(&self) -> &[Option<Box<str>>] {
        &self.names
    }

    /// The number of groups including group 0.
    pub fn captures_len(&self) -> usize {
        self.names.len()
    }

    /// A capture buffer for this pattern, to be reused across searches.
    pub fn spans(&self) -> Spans {
        Spans(self.regex.capture_locations())
    }

    fn error(&self, e: pcre2::Error) -> SearchError {
        if e.code() == ERROR_MATCHLIMIT {
            SearchError::MatchLimit { limit: self.limit }
        } else {
            SearchError::Engine(e)
        }
    }
}

/// Capture spans of a [`RegexPattern`] search.
#[derive(Clone, Debug)]
pub struct Spans(CaptureLocations);

impl Captures for Spans {
    fn get(&self, index: usize) -> Option<(usize, usize)> {
        self.0.get(index)
    }
}

impl Pattern for RegexPattern {
    type Captures = Spans;
    type Error = SearchError;

    fn new_captures(&self) -> Result<Spans, SearchError> {
        Ok(self.spans())
    }

    fn captures_at(&self, line: &str, at: usize, caps: &mut Spans) -> Result<bool, SearchError> {
        match self
            .regex
            .captures_read_at(&mut caps.0, line.as_bytes(), at)
        {
            Ok(m) => Ok(m.is_some()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn capture_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_deref() == Some(name))
    }

    fn is_match(&self, line: &str) -> Result<bool, SearchError> {
        self.regex
            .is_match(line.as_bytes())
            .map_err(|e| self.error(e))
    }
}

impl fmt::Display for RegexPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_named_groups_and_backrefs() {
        let p = RegexPattern::new(r"^(?P<a>x+)-(?P=a)$").unwrap();
        assert!(p.is_match("xx-xx").unwrap());
        assert!(!p.is_match("xx-x").unwrap());
        assert_eq!(p.capture_index("a"), Some(1));
        let mut c = p.new_captures().unwrap();
        assert!(p.captures_at("xx-xx", 0, &mut c).unwrap());
        assert_eq!(c.get(1), Some((0, 2)));
    }

    #[test]
    fn bare_name_conditional_is_python_like() {
        let p = RegexPattern::new(r"^(?P<c>x)?(?(c)y|z)$").unwrap();
        assert!(p.is_match("xy").unwrap());
        assert!(p.is_match("z").unwrap());
        assert!(!p.is_match("xz").unwrap());
    }

    #[test]
    fn unicode_digits_and_open_ended_repeat() {
        let p = RegexPattern::new(r"^\d{,3}$").unwrap();
        assert!(
            p.is_match("١٢").unwrap(),
            "\\d is Unicode as in Python str patterns"
        );
        assert!(!p.is_match("1234").unwrap());
    }

    #[test]
    fn catastrophic_pattern_is_cut_off() {
        let p = RegexPattern::new(r"^(a+)+$").unwrap();
        let line = format!("{}!", "a".repeat(40));
        match p.is_match(&line) {
            Err(SearchError::MatchLimit { limit }) => assert_eq!(limit, DEFAULT_MATCH_LIMIT),
            other => panic!("expected the match limit, got {other:?}"),
        }
        assert!(
            p.is_match("aaaa").unwrap(),
            "the pattern still works on sane input"
        );
    }
}
