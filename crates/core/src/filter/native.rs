//! The native engine: the `regex` crate (linear time, no backtracking blow-up).

use std::convert::Infallible;
use std::fmt;

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, Look};

use super::pattern::{Captures, Pattern};

/// At most this many alternative prefixes are kept per pattern; beyond, their common
/// prefix is used (still a valid, just weaker, filter).
const MAX_PREFIXES: usize = 8;

/// A pattern compiled by the `regex` crate, plus the literal facts used to skip lines
/// that cannot match without running it.
#[derive(Clone, Debug)]
pub struct RegexPattern {
    regex: regex::Regex,
    /// When the pattern starts with `^`: every match starts with one of these (taken from
    /// the syntax tree, so the prefilter can only err on the side of "maybe").
    prefixes: Option<Box<[Box<[u8]>]>>,
    /// Bytes every match contains; used by `candidate` for unanchored patterns.
    required: Box<[u8]>,
}

impl RegexPattern {
    /// Compile `pattern` (the `regex` crate's syntax).
    pub fn new(pattern: &str) -> Result<RegexPattern, regex::Error> {
        let regex = regex::Regex::new(pattern)?;
        // The regex compiled, so its syntax parses; without a tree there are no facts.
        let (prefixes, required) = match regex_syntax::Parser::new().parse(pattern) {
            Ok(hir) => literal_facts(&hir),
            Err(_) => (None, Box::default()),
        };
        Ok(RegexPattern { regex, prefixes, required })
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// The underlying compiled regex.
    pub fn regex(&self) -> &regex::Regex {
        &self.regex
    }
}

/// Prefix literals (if anchored at `^`) and a literal every match starts with.
fn literal_facts(hir: &Hir) -> (Option<Box<[Box<[u8]>]>>, Box<[u8]>) {
    let anchored = hir.properties().look_set_prefix().contains(Look::Start);
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let Some(lits) = seq.literals() else {
        return (anchored.then(|| vec![Box::<[u8]>::default()].into()), Box::default());
    };
    let lcp: Box<[u8]> = seq.longest_common_prefix().unwrap_or_default().into();
    if !anchored {
        return (None, lcp);
    }
    // Drop literals that another kept literal is a prefix of: that one already covers them.
    let mut all: Vec<&[u8]> = lits.iter().map(|l| l.as_bytes()).collect();
    all.sort_unstable();
    let mut kept: Vec<Box<[u8]>> = Vec::new();
    for l in all {
        if !kept.last().is_some_and(|k| l.starts_with(k)) {
            kept.push(l.into());
        }
    }
    if kept.len() > MAX_PREFIXES {
        kept = vec![lcp.clone()];
    }
    (Some(kept.into()), lcp)
}

impl Captures for regex::CaptureLocations {
    fn get(&self, index: usize) -> Option<(usize, usize)> {
        regex::CaptureLocations::get(self, index)
    }
}

impl Pattern for RegexPattern {
    type Captures = regex::CaptureLocations;
    type Error = Infallible;

    fn new_captures(&self) -> Result<regex::CaptureLocations, Infallible> {
        Ok(self.regex.capture_locations())
    }

    fn captures_at(
        &self,
        line: &str,
        at: usize,
        caps: &mut regex::CaptureLocations,
    ) -> Result<bool, Infallible> {
        Ok(self.regex.captures_read_at(caps, line, at).is_some())
    }

    fn capture_index(&self, name: &str) -> Option<usize> {
        self.regex.capture_names().position(|n| n == Some(name))
    }

    fn is_match(&self, line: &str) -> Result<bool, Infallible> {
        Ok(self.regex.is_match(line))
    }

    fn candidate(&self, line: &str) -> bool {
        match &self.prefixes {
            Some(ps) => ps.iter().any(|p| line.as_bytes().starts_with(p)),
            None => {
                self.required.is_empty()
                    || memchr::memmem::find(line.as_bytes(), &self.required).is_some()
            }
        }
    }

    fn anchored_prefixes(&self) -> Option<&[Box<[u8]>]> {
        self.prefixes.as_deref()
    }
}

impl fmt::Display for RegexPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.regex.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(p: &RegexPattern) -> Vec<&[u8]> {
        p.anchored_prefixes().unwrap().iter().map(|b| &b[..]).collect()
    }

    #[test]
    fn anchored_alternation_gives_each_prefix() {
        let p = RegexPattern::new(r"^(?:fatal: )?Timeout before (?P<x>.*)$").unwrap();
        assert_eq!(prefixes(&p), vec![&b"Timeout before "[..], b"fatal: Timeout before "]);
        assert!(p.candidate("fatal: Timeout before x"));
        assert!(p.candidate("Timeout before x"));
        assert!(!p.candidate("Accepted password for x"));
        assert!(!p.candidate("xTimeout before"));
        assert_eq!(p.capture_index("x"), Some(1));
    }

    #[test]
    fn unanchored_prefilter_searches_anywhere() {
        let p = RegexPattern::new(r"from \d+").unwrap();
        assert!(p.anchored_prefixes().is_none());
        assert!(p.candidate("x from 12"));
        assert!(!p.candidate("x by 12"));
        assert!(p.is_match("x from 12").unwrap());
    }

    #[test]
    fn case_insensitive_prefix_is_never_wrong() {
        let p = RegexPattern::new(r"(?i)^failed x").unwrap();
        for l in ["FAILED X", "failed x", "FaIlEd x"] {
            assert!(p.candidate(l), "{l}");
            assert!(p.is_match(l).unwrap());
        }
    }

    #[test]
    fn anchored_pattern_without_literal_accepts_everything() {
        let p = RegexPattern::new(r"^.*x$").unwrap();
        assert!(p.candidate("abcx"));
        assert!(p.candidate(""));
    }
}
