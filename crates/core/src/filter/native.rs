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
    regex: regex::bytes::Regex,
    /// Optional cheaper way to the same captures (see [`FastPath`]).
    fast: Option<FastPath>,
    /// When the pattern starts with `^`: every match starts with one of these (taken from
    /// the syntax tree, so the prefilter can only err on the side of "maybe").
    prefixes: Option<Prefixes>,
    /// Bytes every match contains; used by `candidate` for unanchored patterns.
    required: Box<[u8]>,
}

impl RegexPattern {
    /// Compile `pattern` (the `regex` crate's syntax, byte-oriented: `.`, `\w`, `\d` and
    /// classes match single bytes/ASCII unless Unicode is turned on with `(?u)`; this keeps
    /// the automata small, which is what makes matching fast).
    pub fn new(pattern: &str) -> Result<RegexPattern, regex::Error> {
        let regex = compile_bytes(pattern)?;
        // The regex compiled, so its syntax parses; without a tree there are no facts.
        let (prefixes, required) = match parser().parse(pattern) {
            Ok(hir) => literal_facts(&hir),
            Err(_) => (None, Box::default()),
        };
        Ok(RegexPattern {
            regex,
            prefixes,
            required,
            fast: None,
        })
    }

    /// The regex alone, without the fast path: the reference every shortcut must agree
    /// with. Group spans of the match, indexed like the regex's groups.
    pub fn regex_captures(&self, line: &str) -> Option<Vec<Option<(usize, usize)>>> {
        let mut locs = self.regex.capture_locations();
        self.regex.captures_read(&mut locs, line.as_bytes())?;
        Some((0..locs.len()).map(|i| locs.get(i)).collect())
    }

    /// Attach a [`FastPath`]; its `fast` regex must have the same groups as this one.
    pub(crate) fn with_fast_path(mut self, fast: FastPath) -> RegexPattern {
        self.fast = Some(fast);
        self
    }

    /// Whether a fast path is attached.
    pub fn has_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// The underlying compiled regex.
    pub fn regex(&self) -> &regex::bytes::Regex {
        &self.regex
    }
}

/// Compile with the settings of this engine (bytes, Unicode off by default).
pub(crate) fn compile_bytes(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .unicode(false)
        .build()
}

/// A syntax parser with the same settings as [`compile_bytes`].
pub(crate) fn parser() -> regex_syntax::Parser {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
}

/// Alternative literals one of which starts every match.
type Prefixes = Box<[Box<[u8]>]>;

/// Prefix literals (if anchored at `^`) and a literal every match starts with.
fn literal_facts(hir: &Hir) -> (Option<Prefixes>, Box<[u8]>) {
    let anchored = hir.properties().look_set_prefix().contains(Look::Start);
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let Some(lits) = seq.literals() else {
        return (
            anchored.then(|| vec![Box::<[u8]>::default()].into()),
            Box::default(),
        );
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

/// Same captures, cheaper: a variant of the pattern where `<USER>` cannot contain a space
/// and `<HOST>` is one character class, which the regex engine can usually resolve in one
/// pass without backtracking (a user name with spaces is never a real account). Its
/// answer is used only when the address it found is the only place in the line where
/// "text before the address, address, rest of the pattern to the end" matches; then every
/// way the full pattern can match puts the address there too. Otherwise the full pattern
/// decides.
#[derive(Clone, Debug)]
pub(crate) struct FastPath {
    /// The pattern with the free-text group narrowed (same groups, same indices).
    pub(crate) fast: regex::bytes::Regex,
    /// Group index of the address.
    pub(crate) host: usize,
    /// Literal text every match has right before the address (a prepared searcher).
    pub(crate) lit: memchr::memmem::Finder<'static>,
    /// `lit`, the address and the rest of the pattern to `$`: the places an address could be.
    pub(crate) places: regex::bytes::Regex,
}

impl FastPath {
    /// The full pattern would put the address at `host_start` too.
    fn only_place(&self, line: &str, host_start: usize) -> bool {
        let lit = self.lit.needle();
        let Some(start) = host_start.checked_sub(lit.len()) else {
            return false;
        };
        let bytes = line.as_bytes();
        if bytes.get(start..host_start) != Some(lit) {
            return false;
        }
        // One occurrence of the text before the address: one possible place.
        if self.lit.find(bytes) == Some(start) && self.lit.find(&bytes[start + 1..]).is_none() {
            return true;
        }
        self.places.find(bytes).is_some_and(|m| m.start() == start)
            && self.places.find_at(bytes, start + 1).is_none()
    }
}

/// Capture storage of [`RegexPattern`]: the full pattern's and, with a fast path, the
/// fast variant's, and which one holds the last match.
#[derive(Clone, Debug)]
pub struct RegexCaptures {
    full: regex::bytes::CaptureLocations,
    fast: Option<regex::bytes::CaptureLocations>,
    from_fast: bool,
}

impl Captures for RegexCaptures {
    fn get(&self, index: usize) -> Option<(usize, usize)> {
        match (&self.fast, self.from_fast) {
            (Some(f), true) => f.get(index),
            _ => self.full.get(index),
        }
    }
}

impl Pattern for RegexPattern {
    type Captures = RegexCaptures;
    type Error = Infallible;

    fn new_captures(&self) -> Result<RegexCaptures, Infallible> {
        Ok(RegexCaptures {
            full: self.regex.capture_locations(),
            fast: self.fast.as_ref().map(|f| f.fast.capture_locations()),
            from_fast: false,
        })
    }

    fn captures_at(
        &self,
        line: &str,
        at: usize,
        caps: &mut RegexCaptures,
    ) -> Result<bool, Infallible> {
        if let (Some(fp), Some(locs), 0) = (&self.fast, caps.fast.as_mut(), at)
            && fp.fast.captures_read(locs, line.as_bytes()).is_some()
            && let Some((host_start, host_end)) = locs.get(fp.host)
            && fp.only_place(line, host_start)
            // The one class can swallow what follows an address (`127.0.0.1:51395` of
            // `[client 127.0.0.1:51395]`): then the full pattern finds where it ends.
            && line
                .get(host_start..host_end)
                .is_some_and(|h| h.parse::<std::net::IpAddr>().is_ok())
        {
            caps.from_fast = true;
            return Ok(true);
        }
        caps.from_fast = false;
        Ok(self
            .regex
            .captures_read_at(&mut caps.full, line.as_bytes(), at)
            .is_some())
    }

    fn capture_index(&self, name: &str) -> Option<usize> {
        self.regex.capture_names().position(|n| n == Some(name))
    }

    fn is_match(&self, line: &str) -> Result<bool, Infallible> {
        Ok(self.regex.is_match(line.as_bytes()))
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
        p.anchored_prefixes()
            .unwrap()
            .iter()
            .map(|b| &b[..])
            .collect()
    }

    #[test]
    fn anchored_alternation_gives_each_prefix() {
        let p = RegexPattern::new(r"^(?:fatal: )?Timeout before (?P<x>.*)$").unwrap();
        assert_eq!(
            prefixes(&p),
            vec![&b"Timeout before "[..], b"fatal: Timeout before "]
        );
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
