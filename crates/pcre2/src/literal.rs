//! Required literals of a PCRE2 pattern: a set of strings of which at least one occurs in
//! the subject of every match. A filter uses them to skip patterns (and whole lines) that
//! cannot match before PCRE2 runs.
//!
//! The analysis is conservative: anything it does not understand (case-insensitive or
//! extended mode, `\Q…\E`, recursion, backtracking verbs, unusual escapes) yields `None`
//! ("no requirement known"), never a wrong literal. Optional atoms and groups, classes,
//! lookarounds, conditionals and back-references break literal runs and contribute nothing.

/// A parse that gave up: the pattern uses something the analysis does not model.
struct Bail;

/// What a piece of pattern is known to need.
struct Lits {
    /// One of these strings occurs in every match; `None` = nothing known.
    req: Option<Vec<String>>,
    /// When the piece matches exactly one of these strings and nothing else (a plain
    /// literal or an alternation of them), so it can be joined with its neighbours.
    exact: Option<Vec<String>>,
}

/// What a parenthesised piece is, for its neighbours.
enum Piece {
    /// A group that consumes its content.
    Group(Lits),
    /// Consumes nothing (lookaround, comment, inline flags): neighbours stay adjacent.
    ZeroWidth,
    /// Consumes text that cannot be named (conditional, back-reference).
    Opaque,
}

/// Joined literal sets larger than this are not built (the set would get too big).
const MAX_EXACT: usize = 16;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

/// The literals of which at least one occurs in every match of `pattern` (PCRE2 syntax,
/// compiled without caseless or extended options), or `None` when no such set is known.
pub(crate) fn required_literals(pattern: &str) -> Option<Vec<String>> {
    let mut p = Parser {
        s: pattern.as_bytes(),
        i: 0,
    };
    let lits = p.alternation().ok()?;
    if p.i != p.s.len() {
        return None; // an unbalanced `)`: do not guess
    }
    lits.req
        .filter(|set| !set.is_empty() && set.iter().all(|l| !l.is_empty()))
}

/// A set is better when its shortest literal is longer (fewer chance hits), then when it
/// has fewer members.
fn better(a: &[String], b: &[String]) -> bool {
    let min = |s: &[String]| s.iter().map(String::len).min().unwrap_or(0);
    (min(a), std::cmp::Reverse(a.len())) > (min(b), std::cmp::Reverse(b.len()))
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn starts_with(&self, t: &str) -> bool {
        self.s[self.i..].starts_with(t.as_bytes())
    }

    /// `a|b|…` up to a `)` (not consumed) or the end.
    fn alternation(&mut self) -> Result<Lits, Bail> {
        let union = |a: Option<Vec<String>>, b: Option<Vec<String>>| match (a, b) {
            (Some(mut a), Some(b)) => {
                for l in b {
                    if !a.contains(&l) {
                        a.push(l);
                    }
                }
                Some(a)
            }
            _ => None,
        };
        let mut all = Lits {
            req: Some(Vec::new()),
            exact: Some(Vec::new()),
        };
        loop {
            let branch = self.sequence()?;
            all.req = union(all.req, branch.req);
            all.exact = union(all.exact, branch.exact).filter(|e| e.len() <= MAX_EXACT);
            if self.peek() == Some(b'|') {
                self.i += 1;
            } else {
                return Ok(all);
            }
        }
    }

    /// A quantifier after an atom: `Some(true)` when it allows zero repetitions,
    /// `Some(false)` when it requires at least one, `None` when there is none.
    fn quantifier(&mut self) -> Option<bool> {
        let zero = match self.peek()? {
            b'?' | b'*' => {
                self.i += 1;
                true
            }
            b'+' => {
                self.i += 1;
                false
            }
            b'{' => {
                let rest = &self.s[self.i + 1..];
                let end = rest.iter().position(|&c| c == b'}')?;
                let body = &rest[..end];
                if body.is_empty()
                    || !body
                        .iter()
                        .all(|c| c.is_ascii_digit() || *c == b',' || *c == b' ')
                {
                    return None;
                }
                if !body.iter().any(u8::is_ascii_digit) {
                    return None;
                }
                self.i += end + 2;
                let min: String = body
                    .iter()
                    .take_while(|c| **c != b',')
                    .filter(|c| c.is_ascii_digit())
                    .map(|&c| c as char)
                    .collect();
                min.parse::<u64>().map_or(true, |m| m == 0)
            }
            _ => return None,
        };
        if matches!(self.peek(), Some(b'?' | b'+')) {
            self.i += 1; // lazy or possessive
        }
        Some(zero)
    }

    /// Skip a character class starting at `[`.
    fn class(&mut self) -> Result<(), Bail> {
        self.i += 1;
        if self.peek() == Some(b'^') {
            self.i += 1;
        }
        if self.peek() == Some(b']') {
            self.i += 1;
        }
        loop {
            match self.peek() {
                None => return Err(Bail),
                Some(b'\\') => {
                    if self.starts_with("\\Q") {
                        return Err(Bail);
                    }
                    self.i += 2;
                }
                Some(b'[')
                    if self.starts_with("[:")
                        || self.starts_with("[=")
                        || self.starts_with("[.") =>
                {
                    let close = [b':', b']'];
                    let close = if self.starts_with("[:") {
                        close
                    } else {
                        [self.s[self.i + 1], b']']
                    };
                    let rest = &self.s[self.i + 2..];
                    let end = rest.windows(2).position(|w| w == close).ok_or(Bail)?;
                    self.i += 2 + end + 2;
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// Skip to just after the next `)` (names, comments, conditions).
    fn skip_paren(&mut self) -> Result<(), Bail> {
        let end = self.s[self.i..]
            .iter()
            .position(|&c| c == b')')
            .ok_or(Bail)?;
        self.i += end + 1;
        Ok(())
    }

    /// A group starting at `(`: `Ok(Some(req))` for a group that consumes its content
    /// (to be quantified by the caller), `Ok(None)` for zero-width or unmodelled parts.
    /// A parenthesised piece starting at `(` (its quantifier is left to the caller).
    fn group(&mut self) -> Result<Piece, Bail> {
        self.i += 1;
        if self.peek() == Some(b'*') {
            return Err(Bail); // verbs like (*ACCEPT) change what a match needs
        }
        if self.peek() != Some(b'?') {
            return self.group_body().map(Piece::Group);
        }
        self.i += 1;
        let c = self.peek().ok_or(Bail)?;
        match c {
            b':' | b'>' | b'|' => {
                self.i += 1;
                self.group_body().map(Piece::Group)
            }
            b'=' | b'!' => {
                self.i += 1;
                self.group_body()?;
                Ok(Piece::ZeroWidth)
            }
            b'<' if matches!(self.s.get(self.i + 1), Some(b'=' | b'!')) => {
                self.i += 2;
                self.group_body()?;
                Ok(Piece::ZeroWidth)
            }
            b'<' | b'\'' => {
                let close = if c == b'<' { b'>' } else { b'\'' };
                let end = self.s[self.i + 1..]
                    .iter()
                    .position(|&x| x == close)
                    .ok_or(Bail)?;
                self.i += end + 2;
                self.group_body().map(Piece::Group)
            }
            b'P' => match self.s.get(self.i + 1) {
                Some(b'<') => {
                    let end = self.s[self.i + 2..]
                        .iter()
                        .position(|&x| x == b'>')
                        .ok_or(Bail)?;
                    self.i += end + 3;
                    self.group_body().map(Piece::Group)
                }
                Some(b'=') => {
                    self.skip_paren()?; // back-reference: consumes text we cannot name
                    Ok(Piece::Opaque)
                }
                _ => Err(Bail),
            },
            b'#' => {
                self.skip_paren()?;
                Ok(Piece::ZeroWidth)
            }
            b'(' => {
                // Conditional: skip the condition, analyse (and drop) the branches.
                if self.s.get(self.i + 1) == Some(&b'?') {
                    self.group()?;
                } else {
                    self.i += 1;
                    self.skip_paren()?;
                }
                self.group_body()?;
                Ok(Piece::Opaque)
            }
            _ => {
                // Inline flags `(?flags)` or `(?flags:…)`.
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == b'-' || c == b'^')
                {
                    self.i += 1;
                }
                let flags = &self.s[start..self.i];
                if flags.is_empty() || flags.iter().any(|c| matches!(c, b'i' | b'x')) {
                    return Err(Bail);
                }
                match self.peek() {
                    Some(b')') => {
                        self.i += 1;
                        Ok(Piece::ZeroWidth)
                    }
                    Some(b':') => {
                        self.i += 1;
                        self.group_body().map(Piece::Group)
                    }
                    _ => Err(Bail),
                }
            }
        }
    }

    /// The alternation inside a group and its closing `)`.
    fn group_body(&mut self) -> Result<Lits, Bail> {
        let r = self.alternation()?;
        if self.peek() != Some(b')') {
            return Err(Bail);
        }
        self.i += 1;
        Ok(r)
    }

    /// A concatenation up to `|`, `)` or the end.
    fn sequence(&mut self) -> Result<Lits, Bail> {
        let mut best: Option<Vec<String>> = None;
        // The literal strings the text just before the cursor is one of (joined across
        // adjacent literals and exact groups).
        let mut run: Vec<String> = vec![String::new()];
        // Whether nothing but exact pieces has been seen: the whole sequence is `run`.
        let mut pure = true;
        let offer = |set: Vec<String>, best: &mut Option<Vec<String>>| {
            if set.iter().all(|l| !l.is_empty()) && best.as_ref().is_none_or(|b| better(&set, b)) {
                *best = Some(set);
            }
        };
        let flush = |run: &mut Vec<String>, best: &mut Option<Vec<String>>| {
            offer(std::mem::replace(run, vec![String::new()]), best);
        };
        while let Some(c) = self.peek() {
            // The literal this atom stands for, if it is one.
            let lit: Option<char> = match c {
                b'|' | b')' => break,
                b'(' => {
                    let g = self.group()?;
                    let q = self.quantifier();
                    match (g, q) {
                        (Piece::Group(Lits { exact: Some(e), .. }), None)
                            if run.len() * e.len() <= MAX_EXACT =>
                        {
                            run = run
                                .iter()
                                .flat_map(|r| e.iter().map(move |x| format!("{r}{x}")))
                                .collect();
                        }
                        (Piece::Group(g), None | Some(false)) => {
                            flush(&mut run, &mut best);
                            pure = false;
                            if let Some(set) = g.req {
                                offer(set, &mut best);
                            }
                        }
                        (Piece::ZeroWidth, None) => {} // joins nothing, breaks nothing
                        _ => {
                            flush(&mut run, &mut best);
                            pure = false;
                        }
                    }
                    continue;
                }
                b'[' => {
                    self.class()?;
                    None
                }
                b'.' | b'^' | b'$' => {
                    self.i += 1;
                    None
                }
                b'\\' => {
                    let e = *self.s.get(self.i + 1).ok_or(Bail)?;
                    self.i += 2;
                    match e {
                        b'd' | b'D' | b's' | b'S' | b'w' | b'W' | b'h' | b'H' | b'v' | b'V'
                        | b'R' | b'X' | b'C' => None,
                        b'N' if self.peek() != Some(b'{') => None,
                        b'b' | b'B' | b'A' | b'z' | b'Z' | b'G' | b'K' | b'E' => None,
                        b'n' => None, // a literal newline could span the line and the buffer's end
                        b't' => Some('\t'),
                        b'r' => Some('\r'),
                        b'f' => Some('\x0c'),
                        b'e' => Some('\x1b'),
                        b'a' => Some('\x07'),
                        _ if e.is_ascii_alphanumeric() => return Err(Bail),
                        _ if e.is_ascii() => Some(e as char),
                        _ => {
                            // An escaped non-ASCII character stands for itself.
                            self.i -= 1;
                            let ch = self.char_here()?;
                            Some(ch)
                        }
                    }
                }
                b'{' | b'*' | b'+' | b'?' => {
                    // A quantifier without an atom, or a literal brace: break the run.
                    self.i += 1;
                    None
                }
                _ => Some(self.char_here()?),
            };
            match (lit, self.quantifier()) {
                (Some(ch), None) => run.iter_mut().for_each(|r| r.push(ch)),
                (Some(ch), Some(false)) => {
                    run.iter_mut().for_each(|r| r.push(ch));
                    flush(&mut run, &mut best);
                    pure = false;
                }
                _ => {
                    flush(&mut run, &mut best);
                    pure = false;
                }
            }
        }
        let exact = pure.then(|| run.clone());
        offer(run, &mut best);
        Ok(Lits { req: best, exact })
    }

    /// The (UTF-8) character at the cursor, consumed.
    fn char_here(&mut self) -> Result<char, Bail> {
        let rest = std::str::from_utf8(&self.s[self.i..]).ok();
        let rest = match rest {
            Some(r) => r,
            None => {
                // The cursor is inside the pattern text, which is valid UTF-8 as a whole;
                // decode just the next character.
                let len = (1..=4).find(|&n| {
                    std::str::from_utf8(self.s.get(self.i..self.i + n).unwrap_or(&[])).is_ok()
                });
                std::str::from_utf8(&self.s[self.i..self.i + len.ok_or(Bail)?]).map_err(|_| Bail)?
            }
        };
        let ch = rest.chars().next().ok_or(Bail)?;
        self.i += ch.len_utf8();
        Ok(ch)
    }
}

#[cfg(test)]
mod tests {
    use super::required_literals as lits;
    use portcullis_core::filter::Pattern;

    fn set(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn longest_plain_run() {
        assert_eq!(
            lits(r"^Failed \S+ for (?P<u>.*) from \d+"),
            set(&["Failed "])
        );
        assert_eq!(lits(r"^\[?x\]? LOGIN REFUSED"), set(&[" LOGIN REFUSED"]));
    }

    #[test]
    fn optional_atoms_are_dropped() {
        assert_eq!(lits(r"abcdX?ef"), set(&["abcd"]));
        assert_eq!(lits(r"abcdX*ef"), set(&["abcd"]));
        assert_eq!(lits(r"abX{0,3}cdef"), set(&["cdef"]));
        assert_eq!(lits(r"ab(?:long literal)?c"), set(&["ab"]));
        assert_eq!(lits(r"abcX+yz"), set(&["abcX"]));
    }

    #[test]
    fn alternations_give_sets() {
        assert_eq!(
            lits(r"^(?:Connection (?:closed|reset)|Disconnected) by\d"),
            set(&[
                "Connection closed by",
                "Connection reset by",
                "Disconnected by"
            ])
        );
        assert_eq!(lits(r"abc|def"), set(&["abc", "def"]));
        assert_eq!(
            lits(r"^[iI](?:llegal|nvalid) user \S+"),
            set(&["llegal user ", "nvalid user "])
        );
        assert_eq!(
            lits(r"^(?P<n>(Connection (?:closed|reset)|Disconnected)) (?:by|from) \d"),
            set(&[
                "Connection closed by ",
                "Connection closed from ",
                "Connection reset by ",
                "Connection reset from ",
                "Disconnected by ",
                "Disconnected from "
            ])
        );
        assert_eq!(lits(r"abc|\d+"), None, "one branch needs nothing");
    }

    #[test]
    fn zero_width_and_conditionals_contribute_nothing() {
        assert_eq!(lits(r"(?=secret)xy"), set(&["xy"]));
        assert_eq!(
            lits(r"(?P<c>a)?(?(c)long branch|other branch)zz"),
            set(&["zz"])
        );
        assert_eq!(
            lits(r"ab(?(c)x|y)cd"),
            set(&["ab"]),
            "a conditional separates ab and cd"
        );
        assert_eq!(
            lits(r"(?P<a>x)abc(?P=a)de"),
            set(&["xabc"]),
            "a back-reference separates xabc and de"
        );
        assert_eq!(lits(r"ab(?=c)cd"), set(&["abcd"]));
        assert_eq!(lits(r"(?<=:)abc"), set(&["abc"]));
    }

    #[test]
    fn unmodelled_syntax_bails() {
        assert_eq!(lits(r"(?i)abc"), None);
        assert_eq!(lits(r"a(?x) b c"), None);
        assert_eq!(lits(r"\Qabc\E"), None);
        assert_eq!(lits(r"\x41bc"), None);
        assert_eq!(lits(r"(*ACCEPT)abc"), None);
        assert_eq!(lits(r"abc)"), None);
    }

    #[test]
    fn escapes_and_classes() {
        assert_eq!(lits(r"pam_[a-z]+\(sshd:auth\):"), set(&["(sshd:auth):"]));
        assert_eq!(lits(r"[]abc]xyz[[:alpha:]]q"), set(&["xyz"]));
        assert_eq!(lits(r"ü-straße"), set(&["ü-straße"]));
    }

    /// Every literal found must occur in a subject that the pattern matches.
    #[test]
    fn literals_occur_in_matches() {
        let cases = [
            (
                r"^Failed (?:publickey|\S+) for (?P<u>\S+) from (?P<h>\S+)",
                "Failed password for root from 192.0.2.1",
            ),
            (
                r"^[iI](?:llegal|nvalid) user (?P<u>.*?) from \S+",
                "Invalid user x from y",
            ),
            (r"(?:a|b)c{2,}d", "bccd"),
        ];
        for (re, subject) in cases {
            let p = crate::RegexPattern::new(re).unwrap();
            assert!(p.is_match(subject).unwrap(), "{re} must match {subject}");
            let l = lits(re).unwrap();
            assert!(
                l.iter().any(|x| subject.contains(x.as_str())),
                "{l:?} not in {subject}"
            );
        }
    }
}
