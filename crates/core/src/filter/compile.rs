//! From a [`FilterSpec`] to a compiled [`Filter`]: tag expansion, injection checks, dispatch.

use std::ops::Range;

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

use super::coalesce::Merge;
use super::hand::{Form, Parsed};
use super::native::{FastPath, RegexPattern};
use super::pattern::{Captures, Pattern};
use super::spec::{FilterSpec, KindSpec, MergeSpec, ShapeSpec};
use crate::event::{EventKind, Weight};

/// What `<HOST>` and `<ADDR>` expand to: IPv4, IPv6 (with an optional `%zone`, and the
/// IPv4-mapped `::ffff:a.b.c.d` form). Deliberately loose; every captured text is then
/// validated and normalised by [`crate::event::parse_addr`].
/// (No bounded repetitions: they multiply regex states; lengths are checked by parsing.)
/// It never matches a space, `=`, `[` or `]`, so the fixed text before the address ends it,
/// and it needs the shape of an address (four dotted numbers, or a `:`), so a port number
/// next to it is never taken for it.
pub const HOST_REGEX: &str =
    r"(?P<host>[0-9]+(?:\.[0-9]+){3}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z_.\-]+)?)";
/// What `<USER>` expands to: anything (greedy). Rules put fixed text after it, so the
/// greedy match ends at the last occurrence of that text, which is sshd's own.
pub const USER_REGEX: &str = r"(?P<user>.*)";
/// What `<PORT>` expands to.
pub const PORT_REGEX: &str = r"[0-9]+";
/// What `<USER>` becomes in a rule's fast path (see [`RegexPattern`]): no spaces (and, like
/// `.*`, no newline).
const USER_FAST_REGEX: &str = r"(?P<user>[^ \n]*)";
/// What `<HOST>` becomes in a rule's fast path: one class, so the engine never has to
/// guess which branch it is in. Looser than [`HOST_REGEX`], which is fine there: a fast
/// answer is kept only if the full pattern's own places agree.
const HOST_FAST_REGEX: &str = r"(?P<host>[0-9A-Fa-f.:]+(?:%[0-9A-Za-z_.\-]+)?)";

/// Group names a rule may define itself, carried into [`crate::Event`].
const FIELDS: &[&str] = &["user", "method"];

/// Why one rule (or ignore pattern) was rejected when the filter was built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The regex engine rejected the expanded pattern.
    #[error("rule {rule:?}: regex does not compile: {regex}")]
    Regex {
        /// Rule id.
        rule: Box<str>,
        /// The engine's message (shows the expanded pattern).
        regex: regex::Error,
    },
    /// No `<HOST>`/`<ADDR>` tag: nothing to count.
    #[error("rule {rule:?}: the regex has no <HOST> (or <ADDR>) tag")]
    NoHost {
        /// Rule id.
        rule: Box<str>,
    },
    /// More than one address tag.
    #[error("rule {rule:?}: <HOST>/<ADDR> may appear only once")]
    DuplicateHost {
        /// Rule id.
        rule: Box<str>,
    },
    /// `<HOST>` not right after fixed text, so client-chosen text could stand in for it.
    #[error(
        "rule {rule:?}: <HOST> must directly follow fixed text (like `from <HOST>`), \
         so that text chosen by a client cannot take the address's place"
    )]
    HostNotAfterText {
        /// Rule id.
        rule: Box<str>,
    },
    /// Not anchored at both ends.
    #[error(
        "rule {rule:?}: the regex must be anchored: start with ^ and end with $ \
         (unanchored patterns can match text a client wrote inside the line)"
    )]
    NotAnchored {
        /// Rule id.
        rule: Box<str>,
    },
    /// `<SOMETHING>` that is not a known tag.
    #[error("rule {rule:?}: unknown tag <{tag}> (known: <HOST>, <ADDR>, <USER>, <PORT>)")]
    UnknownTag {
        /// Rule id.
        rule: Box<str>,
        /// The tag name as written.
        tag: Box<str>,
    },
    /// A named group that is not an event field.
    #[error(
        "rule {rule:?}: unknown field (?P<{name}>…) (known: user, method; host comes from <HOST>)"
    )]
    UnknownField {
        /// Rule id.
        rule: Box<str>,
        /// The group name.
        name: Box<str>,
    },
    /// A weight that is negative, not finite or absurdly large.
    #[error("rule {rule:?}: weight {weight} is not a number of attempts between 0 and 4000000")]
    BadWeight {
        /// Rule id.
        rule: Box<str>,
        /// The weight as written.
        weight: f64,
    },
    /// Two rules share an id.
    #[error("rule {rule:?}: id used twice")]
    DuplicateId {
        /// Rule id.
        rule: Box<str>,
    },
    /// More rules than an event can name.
    #[error("too many rules (at most 65535)")]
    TooManyRules,
    /// `shapes = []`: the filter would read no line.
    #[error("shapes is empty: name at least one of \"syslog\", \"plain\", \"access\"")]
    NoShapes,
}

/// A filter file that could not be used: where (file, line, key) and why.
#[derive(Debug, thiserror::Error)]
#[error("{origin}:{line}: {key}: {reason}")]
#[non_exhaustive]
pub struct FilterError {
    /// File name (or `builtin:sshd`) the text came from.
    pub origin: String,
    /// 1-based line of the offending value.
    pub line: usize,
    /// TOML key path, like `rule[3].regex`.
    pub key: String,
    /// What is wrong.
    pub reason: FilterErrorKind,
}

/// What is wrong with a filter file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// Not valid TOML, or not the shape of a filter.
    #[error("{0}")]
    Toml(String),
    /// A rule or ignore pattern was rejected.
    #[error("{0}")]
    Compile(CompileError),
    /// No `[[rule]]` at all.
    #[error("the filter has no [[rule]]")]
    NoRules,
}

/// One compiled rule: a pattern and what a match means.
#[derive(Clone, Debug)]
pub struct Rule<P: Pattern = RegexPattern> {
    /// Stable name (stats, `--explain`).
    pub id: Box<str>,
    /// What a match means.
    pub kind: EventKind,
    /// Weight of one occurrence.
    pub weight: Weight,
    /// Role in merging the lines of one attempt.
    pub merge: Merge,
    /// The compiled regex.
    pub pattern: P,
    /// Whether its address can be trusted in a cut message (see [`super::cut`]): no
    /// client-chosen text can come before it.
    pub cut_safe: bool,
    /// Tried only on cut messages: a form of another rule whose tail the cut took.
    pub only_cut: bool,
    /// Whether the line tells if the named account exists (the filter's `account` key):
    /// sshd's words before the user name.
    pub account_words: bool,
    host: usize,
    user: Option<usize>,
    method: Option<usize>,
    /// A hand-written parser of exactly this rule's regex, asked before the pattern (see
    /// [`super::hand`]); the same for every engine, since it sits here and not in one.
    hand: Option<Form>,
}

impl<P: Pattern> Rule<P> {
    /// A rule over an already compiled `pattern`, which must have a `host` group.
    pub fn new(
        id: &str,
        kind: EventKind,
        weight: Weight,
        merge: Merge,
        pattern: P,
    ) -> Result<Rule<P>, CompileError> {
        let host = pattern
            .capture_index("host")
            .ok_or_else(|| CompileError::NoHost { rule: id.into() })?;
        Ok(Rule {
            id: id.into(),
            kind,
            weight,
            merge,
            user: pattern.capture_index("user"),
            method: pattern.capture_index("method"),
            pattern,
            cut_safe: false,
            only_cut: false,
            account_words: false,
            host,
            hand: None,
        })
    }

    /// Attaches the hand-written parser written for the rule text `source` (before tag
    /// expansion), if there is one; an edited rule keeps only its pattern.
    pub fn with_hand_parser(mut self, source: &str) -> Rule<P> {
        self.hand = Form::for_source(source);
        self
    }

    /// The hand-written parser asked before the pattern, if any.
    pub fn hand_parser(&self) -> Option<Form> {
        self.hand
    }

    /// States whether the address is trusted in cut messages (see [`cut_safe`]).
    pub fn with_cut_safe(mut self, safe: bool) -> Rule<P> {
        self.cut_safe = safe;
        self
    }
}

/// Whether no client-chosen text can come before `<HOST>` in the rule `source`: the
/// address is a top-level item of the pattern and nothing before it can match more than
/// sshd's own text — no `user` group and no field but digits (see [`admits_client_text`]).
/// A rule whose earlier fields are sshd's own although the regex cannot show it (a valid
/// account's name) states `cut_safe = true` in its filter, with the reason.
pub fn cut_safe(rule: &str, source: &str) -> Result<bool, CompileError> {
    let (expanded, _) = expand_tags(rule, source, false)?;
    let hir = super::native::parser()
        .parse(&expanded)
        .map_err(|e| CompileError::Regex {
            rule: rule.into(),
            regex: regex::Error::Syntax(e.to_string()),
        })?;
    let Some((items, at)) = top_level_host(&hir) else {
        return Ok(false);
    };
    Ok(!items[..at].iter().any(admits_client_text))
}

/// The pattern's top-level items and the index of the `host` group among them, when the
/// address is a top-level item (not inside a group or an alternation).
fn top_level_host(hir: &Hir) -> Option<(&[Hir], usize)> {
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let is_host =
        |h: &Hir| matches!(h.kind(), HirKind::Capture(c) if c.name.as_deref() == Some("host"));
    let at = items.iter().position(is_host)?;
    Some((items, at))
}

/// Whether `hir` can match text the client chose: a `user` group, or any class that admits
/// more than digits (`\S+`, `[^:]*`, `.`, …). A space-free field is not enough: it matches
/// the first word of a client's text that holds spaces, and the forged rest (` from
/// 203.0.113.66 port 22`) then lines up with the rule's own text. What this leaves before an
/// address is sshd's own text: literals, and digits (its counters, as in `drop connection
/// #12 from`).
fn admits_client_text(hir: &Hir) -> bool {
    use regex_syntax::hir::Class;
    match hir.kind() {
        HirKind::Capture(c) => c.name.as_deref() == Some("user") || admits_client_text(&c.sub),
        HirKind::Class(Class::Unicode(c)) => {
            c.ranges().iter().any(|r| r.start() < '0' || r.end() > '9')
        }
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() < b'0' || r.end() > b'9'),
        HirKind::Repetition(r) => admits_client_text(&r.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(admits_client_text),
        HirKind::Literal(_) | HirKind::Empty | HirKind::Look(_) => false,
    }
}

/// Where the groups of a matched rule are in the message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    /// Index of the rule in [`Filter::rules`].
    pub rule: u16,
    /// Byte range of the address text.
    pub host: (usize, usize),
    /// Byte range of the user name, if the rule captures one.
    pub user: Option<(usize, usize)>,
    /// Byte range of the method, if the rule captures one.
    pub method: Option<(usize, usize)>,
}

/// Result of matching one message against a filter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MessageMatch {
    /// No rule matched.
    None,
    /// A rule matched but an ignore pattern matched too; holds the rule index.
    Ignored(u16),
    /// A rule matched.
    Matched(RuleMatch),
    /// The message is cut (see [`super::cut`]) and the rules that matched it (the first one's
    /// index held) took their address where client-chosen text may stand, or where the cut
    /// fell: no rule matched it at a trusted one.
    Untrusted(u16),
}

/// Reusable per-caller match storage (one capture set per rule), so matching allocates
/// nothing per line.
#[derive(Debug)]
pub struct Scratch<P: Pattern = RegexPattern> {
    rules: Vec<P::Captures>,
    ignores: Vec<P::Captures>,
}

/// Which line shapes a filter reads from files (see [`ShapeSpec`](super::spec::ShapeSpec)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shapes {
    /// `TIME host program[pid]: message`.
    pub syslog: bool,
    /// `TIME message`.
    pub plain: bool,
    /// `ADDR - USER [TIME] "REQUEST" ...`.
    pub access: bool,
}

impl Shapes {
    /// Syslog lines only (the default).
    pub const SYSLOG: Shapes = Shapes {
        syslog: true,
        plain: false,
        access: false,
    };
}

/// A compiled filter: which programs it reads, its rules and its ignore patterns.
///
/// Lines are dispatched on their first byte to the rules whose literal prefix can match,
/// then on the whole prefix, so a message usually runs one regex or none.
#[derive(Clone, Debug)]
pub struct Filter<P: Pattern = RegexPattern> {
    description: Option<Box<str>>,
    programs: Box<[Box<str>]>,
    shapes: Shapes,
    rules: Box<[Rule<P>]>,
    ignores: Box<[P]>,
    /// `dispatch[first[b]..first[b+1]]` are the rules (in file order) that can match a
    /// message starting with byte `b`.
    first: Box<[u32; 257]>,
    dispatch: Box<[u16]>,
}

impl<P: Pattern> Filter<P> {
    /// A filter from compiled parts. `programs` empty means every program.
    pub fn new(
        description: Option<&str>,
        programs: &[&str],
        rules: Vec<Rule<P>>,
        ignores: Vec<P>,
    ) -> Result<Filter<P>, CompileError> {
        if rules.len() > usize::from(u16::MAX) {
            return Err(CompileError::TooManyRules);
        }
        let mut first = Box::new([0u32; 257]);
        let mut dispatch = Vec::new();
        for b in 0..=255u8 {
            first[usize::from(b)] = dispatch.len() as u32;
            for (i, r) in rules.iter().enumerate() {
                let can_start = match r.pattern.anchored_prefixes() {
                    None => true,
                    Some(ps) => ps.iter().any(|p| p.first().is_none_or(|&f| f == b)),
                };
                if can_start {
                    dispatch.push(i as u16);
                }
            }
        }
        first[256] = dispatch.len() as u32;
        Ok(Filter {
            description: description.map(Into::into),
            programs: programs.iter().map(|&p| p.into()).collect(),
            shapes: Shapes::SYSLOG,
            rules: rules.into(),
            ignores: ignores.into(),
            first,
            dispatch: dispatch.into(),
        })
    }

    /// The same filter reading lines of `shapes`.
    pub fn with_shapes(mut self, shapes: Shapes) -> Filter<P> {
        self.shapes = shapes;
        self
    }

    /// Which line shapes it reads.
    pub fn shapes(&self) -> Shapes {
        self.shapes
    }

    /// The `[filter] description`.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Program names this filter reads; empty means all.
    pub fn programs(&self) -> &[Box<str>] {
        &self.programs
    }

    /// Whether lines of `program` are for this filter.
    #[inline]
    pub fn wants_program(&self, program: &[u8]) -> bool {
        self.programs.is_empty() || self.programs.iter().any(|p| p.as_bytes() == program)
    }

    /// The rules, in file order (an event's `rule` indexes this).
    pub fn rules(&self) -> &[Rule<P>] {
        &self.rules
    }

    /// The same filter with its patterns alone: the reference the hand-written parsers are
    /// tested and benched against.
    pub fn without_hand_parsers(mut self) -> Filter<P> {
        for r in &mut self.rules {
            r.hand = None;
        }
        self
    }

    /// Fresh match storage for this filter.
    pub fn new_scratch(&self) -> Result<Scratch<P>, P::Error> {
        Ok(Scratch {
            rules: self
                .rules
                .iter()
                .map(|r| r.pattern.new_captures())
                .collect::<Result<_, _>>()?,
            ignores: self
                .ignores
                .iter()
                .map(|p| p.new_captures())
                .collect::<Result<_, _>>()?,
        })
    }

    /// Match one message (the text after `program[pid]: `): the first rule that matches,
    /// unless an ignore pattern matches too.
    ///
    /// `cut`: the message may have lost its tail (see [`super::cut`]). Then a rule's match
    /// counts only if the rule is `cut_safe` and its own text follows the address inside
    /// the message (the cut did not fall in it); a match that does not is passed over, so a
    /// later rule that does still gets the message (the client must not be able to hide a
    /// trusted form behind an untrusted one, e.g. by ending a certificate's key ID with a
    /// forged `(serial 0) CA …`). Rules written for cut messages only (`only_cut`) are
    /// tried then, and only then.
    pub fn match_message(
        &self,
        message: &str,
        cut: bool,
        scratch: &mut Scratch<P>,
    ) -> Result<MessageMatch, P::Error> {
        let bytes = message.as_bytes();
        let b = usize::from(bytes.first().copied().unwrap_or(0));
        let (lo, hi) = (self.first[b] as usize, self.first[b + 1] as usize);
        let mut untrusted = None;
        for &i in &self.dispatch[lo..hi] {
            let rule = &self.rules[usize::from(i)];
            if rule.only_cut && !cut {
                continue;
            }
            if let Some(ps) = rule.pattern.anchored_prefixes()
                && !ps.iter().any(|p| bytes.starts_with(p))
            {
                continue;
            }
            // The hand parser, when sure, answers for the pattern (with the same spans).
            let (host, user, method) = match rule.hand.map(|f| f.parse(message)) {
                Some(Parsed::NoMatch) => continue,
                Some(Parsed::Match(s)) => (Some(s.host), s.user, s.method),
                Some(Parsed::Unknown) | None => {
                    let caps = &mut scratch.rules[usize::from(i)];
                    if !rule.pattern.captures_at(message, 0, caps)? {
                        continue;
                    }
                    (
                        caps.get(rule.host),
                        rule.user.and_then(|u| caps.get(u)),
                        rule.method.and_then(|m| caps.get(m)),
                    )
                }
            };
            for (p, c) in self.ignores.iter().zip(scratch.ignores.iter_mut()) {
                if p.candidate(message) && p.captures_at(message, 0, c)? {
                    return Ok(MessageMatch::Ignored(i));
                }
            }
            let Some(host) = host else {
                continue;
            };
            if cut && !(rule.cut_safe && host.1 < message.len()) {
                untrusted.get_or_insert(i);
                continue;
            }
            return Ok(MessageMatch::Matched(RuleMatch {
                rule: i,
                host,
                user,
                method,
            }));
        }
        Ok(untrusted.map_or(MessageMatch::None, MessageMatch::Untrusted))
    }
}

impl Filter<RegexPattern> {
    /// Read and compile a filter file. `origin` (a file name, or `builtin:sshd`) is only
    /// used in error messages, which name it with the line and key of the problem.
    pub fn from_toml(text: &str, origin: &str) -> Result<Filter, FilterError> {
        let spec: FilterSpec = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            FilterError {
                origin: origin.to_owned(),
                line: line_of(text, span.start),
                key: key_path(text, span.start),
                reason: FilterErrorKind::Toml(e.message().to_owned()),
            }
        })?;
        Filter::from_spec(&spec, text, origin)
    }

    /// Compile a parsed spec. `text` is the file it came from (to turn spans into lines).
    pub fn from_spec(spec: &FilterSpec, text: &str, origin: &str) -> Result<Filter, FilterError> {
        let err = |span: Range<usize>, key: String, e: CompileError| FilterError {
            origin: origin.to_owned(),
            line: line_of(text, span.start),
            key,
            reason: FilterErrorKind::Compile(e),
        };
        if spec.rules.is_empty() {
            return Err(FilterError {
                origin: origin.to_owned(),
                line: 1,
                key: "rule".into(),
                reason: FilterErrorKind::NoRules,
            });
        }
        let mut rules = Vec::with_capacity(spec.rules.len());
        for (n, r) in spec.rules.iter().enumerate() {
            let id = r.id.get_ref().as_str();
            if spec.rules[..n].iter().any(|o| o.id.get_ref() == id) {
                let e = CompileError::DuplicateId { rule: id.into() };
                return Err(err(r.id.span(), format!("rule[{n}].id"), e));
            }
            let kind = match r.kind.get_ref() {
                KindSpec::Attempt => EventKind::Attempt,
                KindSpec::Probe => EventKind::Probe,
                KindSpec::Success => EventKind::Success,
                KindSpec::Info => EventKind::Info,
            };
            let weight = match &r.weight {
                Some(w) => Weight::from_attempts(*w.get_ref()).ok_or_else(|| {
                    let e = CompileError::BadWeight {
                        rule: id.into(),
                        weight: *w.get_ref(),
                    };
                    err(w.span(), format!("rule[{n}].weight"), e)
                })?,
                None if kind == EventKind::Attempt => Weight::ONE,
                None => Weight::ZERO,
            };
            let merge = match r.merge {
                MergeSpec::None => Merge::None,
                MergeSpec::Precursor => Merge::Precursor,
                MergeSpec::Closer => Merge::Closer,
                MergeSpec::User => Merge::User,
                MergeSpec::Tentative => Merge::Tentative,
            };
            let pattern = compile_native(id, r.regex.get_ref(), true)
                .and_then(|p| Rule::new(id, kind, weight, merge, p))
                .map_err(|e| err(r.regex.span(), format!("rule[{n}].regex"), e))?;
            let computed = cut_safe(id, r.regex.get_ref())
                .map_err(|e| err(r.regex.span(), format!("rule[{n}].regex"), e))?;
            let mut pattern = pattern
                .with_cut_safe(r.cut_safe.unwrap_or(computed))
                .with_hand_parser(r.regex.get_ref());
            pattern.only_cut = r.only_cut;
            pattern.account_words = r.account.is_some();
            rules.push(pattern);
        }
        let mut ignores = Vec::with_capacity(spec.ignores.len());
        for (n, ig) in spec.ignores.iter().enumerate() {
            let id = format!("ignore[{n}]");
            let p = compile_native(&id, ig.regex.get_ref(), false)
                .map_err(|e| err(ig.regex.span(), format!("{id}.regex"), e))?;
            ignores.push(p);
        }
        let programs: Vec<&str> = spec.filter.programs.iter().map(String::as_str).collect();
        let shapes = match &spec.filter.shapes {
            None => Shapes::SYSLOG,
            Some(list) if list.get_ref().is_empty() => {
                return Err(err(
                    list.span(),
                    "filter.shapes".into(),
                    CompileError::NoShapes,
                ));
            }
            Some(list) => {
                let has = |s: ShapeSpec| list.get_ref().contains(&s);
                Shapes {
                    syslog: has(ShapeSpec::Syslog),
                    plain: has(ShapeSpec::Plain),
                    access: has(ShapeSpec::Access),
                }
            }
        };
        Filter::new(
            spec.filter.description.as_deref(),
            &programs,
            rules,
            ignores,
        )
        .map(|f| f.with_shapes(shapes))
        .map_err(|e| err(0..0, "rule".into(), e))
    }
}

/// Expand tags in `source` and compile it with the native engine, enforcing the injection
/// rules: anchored with `^…$`; for rules (`needs_host`), exactly one `<HOST>` that
/// directly follows fixed text, and only known field names.
pub fn compile_native(
    rule: &str,
    source: &str,
    needs_host: bool,
) -> Result<RegexPattern, CompileError> {
    let (expanded, hosts) = expand_tags(rule, source, false)?;
    if needs_host && hosts == 0 {
        return Err(CompileError::NoHost { rule: rule.into() });
    }
    if hosts > 1 {
        return Err(CompileError::DuplicateHost { rule: rule.into() });
    }
    let pattern = RegexPattern::new(&expanded).map_err(|regex| CompileError::Regex {
        rule: rule.into(),
        regex,
    })?;
    let hir = super::native::parser()
        .parse(&expanded)
        .map_err(|e| CompileError::Regex {
            rule: rule.into(),
            regex: regex::Error::Syntax(e.to_string()),
        })?;
    let props = hir.properties();
    if !props
        .look_set_prefix()
        .contains(regex_syntax::hir::Look::Start)
        || !props
            .look_set_suffix()
            .contains(regex_syntax::hir::Look::End)
    {
        return Err(CompileError::NotAnchored { rule: rule.into() });
    }
    let mut after_text = Vec::new();
    host_positions(&hir, &|| false, &mut after_text);
    if after_text.iter().any(|ok| !ok) {
        return Err(CompileError::HostNotAfterText { rule: rule.into() });
    }
    if needs_host {
        for name in pattern.capture_names() {
            if name != "host" && !FIELDS.contains(&name) {
                return Err(CompileError::UnknownField {
                    rule: rule.into(),
                    name: name.into(),
                });
            }
        }
    }
    Ok(match fast_path(rule, source, &hir, &pattern)? {
        Some(fp) => pattern.with_fast_path(fp),
        None => pattern,
    })
}

/// A [`FastPath`] for rules whose `<HOST>` is a top-level item of the pattern; `None`
/// when the shape does not allow one (then the full pattern always runs).
fn fast_path(
    rule: &str,
    source: &str,
    hir: &Hir,
    full: &RegexPattern,
) -> Result<Option<FastPath>, CompileError> {
    let Some((items, at)) = top_level_host(hir) else {
        return Ok(None);
    };
    let before = Hir::concat(items[..at].to_vec());
    let seq = Extractor::new().kind(ExtractKind::Suffix).extract(&before);
    let lit: Box<[u8]> = match seq.longest_common_suffix() {
        Some(l) if !l.is_empty() => l.into(),
        _ => return Ok(None),
    };
    let Ok(lit_text) = std::str::from_utf8(&lit) else {
        return Ok(None);
    };
    let rest = Hir::concat(items[at..].to_vec());
    let places = format!("{}{}", regex::escape(lit_text), rest);
    let (fast_src, _) = expand_tags(rule, source, true)?;
    let to_err = |regex| CompileError::Regex {
        rule: rule.into(),
        regex,
    };
    let fast = super::native::compile_bytes(&fast_src).map_err(to_err)?;
    let places = super::native::compile_bytes(&places).map_err(to_err)?;
    let full_names: Vec<_> = full.regex().capture_names().collect();
    if fast.capture_names().collect::<Vec<_>>() != full_names {
        return Ok(None);
    }
    let Some(host) = full.capture_index("host") else {
        return Ok(None);
    };
    let finder = memchr::memmem::Finder::new(&lit).into_owned();
    Ok(Some(FastPath {
        fast,
        host,
        lit: finder,
        places,
    }))
}

/// Replace `<HOST>`, `<ADDR>`, `<USER>`, `<PORT>`; returns the pattern and how many
/// address tags it had. `(?P<name>` and `(?<name>` group syntax is left alone, as are
/// `\<`/`\>`; any other `<UPPERCASE>` is an error so typos do not silently match text.
fn expand_tags(rule: &str, source: &str, fast: bool) -> Result<(String, usize), CompileError> {
    let mut out = String::with_capacity(source.len() + 128);
    let mut hosts = 0;
    let bytes = source.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while let Some(off) = memchr::memchr(b'<', &bytes[i..]) {
        let lt = i + off;
        i = lt + 1;
        let before = &source[..lt];
        if before.ends_with("(?P") || before.ends_with("(?") || before.ends_with('\\') {
            continue;
        }
        let Some(len) = memchr::memchr(b'>', &bytes[lt + 1..]) else {
            continue;
        };
        let name = &source[lt + 1..lt + 1 + len];
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_uppercase() || c == b'_') {
            continue;
        }
        let with = match name {
            "HOST" | "ADDR" => {
                hosts += 1;
                if fast { HOST_FAST_REGEX } else { HOST_REGEX }
            }
            "USER" if fast => USER_FAST_REGEX,
            "USER" => USER_REGEX,
            "PORT" => PORT_REGEX,
            _ => {
                return Err(CompileError::UnknownTag {
                    rule: rule.into(),
                    tag: name.into(),
                });
            }
        };
        out.push_str(&source[copied..lt]);
        out.push_str(with);
        copied = lt + 2 + len;
        i = copied;
    }
    out.push_str(&source[copied..]);
    Ok((out, hosts))
}

/// For every `host` group, whether the text just before it is always fixed text of the
/// pattern (a non-empty literal), whichever way the pattern matched up to there.
/// `before` answers that question for what precedes `hir`.
fn host_positions(hir: &Hir, before: &dyn Fn() -> bool, found: &mut Vec<bool>) {
    match hir.kind() {
        HirKind::Capture(c) if c.name.as_deref() == Some("host") => found.push(before()),
        HirKind::Capture(c) => host_positions(&c.sub, before, found),
        HirKind::Concat(subs) => {
            for i in 0..subs.len() {
                host_positions(
                    &subs[i],
                    &|| ends_with_literal_seq(&subs[..i], before),
                    found,
                );
            }
        }
        HirKind::Alternation(subs) => {
            for s in subs {
                host_positions(s, before, found);
            }
        }
        HirKind::Repetition(r) => {
            // Later iterations follow the group itself.
            host_positions(
                &r.sub,
                &|| before() && ends_with_literal(&r.sub, before),
                found,
            );
        }
        _ => {}
    }
}

/// Whether every way `hir` can match ends with a non-empty literal (when `hir` can match
/// empty text, what precedes it decides: `before`).
fn ends_with_literal(hir: &Hir, before: &dyn Fn() -> bool) -> bool {
    match hir.kind() {
        HirKind::Literal(l) => !l.0.is_empty() || before(),
        // The start of the message: nothing a client wrote precedes it (access logs
        // begin with the client's address, `^<HOST> `).
        HirKind::Look(regex_syntax::hir::Look::Start) => true,
        HirKind::Empty | HirKind::Look(_) => before(),
        HirKind::Class(_) => false,
        HirKind::Capture(c) => ends_with_literal(&c.sub, before),
        HirKind::Concat(subs) => ends_with_literal_seq(subs, before),
        HirKind::Alternation(subs) => subs.iter().all(|s| ends_with_literal(s, before)),
        HirKind::Repetition(r) => {
            let sub = ends_with_literal(&r.sub, before);
            if r.min == 0 { sub && before() } else { sub }
        }
    }
}

fn ends_with_literal_seq(items: &[Hir], before: &dyn Fn() -> bool) -> bool {
    match items.split_last() {
        None => before(),
        Some((last, rest)) => ends_with_literal(last, &|| ends_with_literal_seq(rest, before)),
    }
}

impl RegexPattern {
    fn capture_names(&self) -> impl Iterator<Item = &str> {
        let regex: &regex::bytes::Regex = self.regex();
        regex.capture_names().flatten()
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    memchr::memchr_iter(b'\n', &text.as_bytes()[..end]).count() + 1
}

/// The TOML key path at byte `offset`, like `rule[2].kind`: the key on that line (text
/// before `=`) under the nearest table header above it (`[[rule]]` headers are counted).
fn key_path(text: &str, offset: usize) -> String {
    let end = offset.min(text.len());
    let mut table = String::new();
    let mut arrays: Vec<(String, usize)> = Vec::new();
    let mut line_start = 0;
    for line in text[..end].split_inclusive('\n') {
        let t = line.trim();
        if line_start + line.len() <= end && line.ends_with('\n') {
            line_start += line.len();
        } else {
            break;
        }
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_owned();
            let n = match arrays.iter_mut().find(|(a, _)| *a == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    arrays.push((name.clone(), 0));
                    0
                }
            };
            table = format!("{name}[{n}]");
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_owned();
        }
    }
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = match line.split_once('=') {
        Some((k, _)) if !line.trim_start().starts_with('[') => k.trim(),
        _ => "",
    };
    match (table.is_empty(), key.is_empty()) {
        (true, true) => "(top level)".to_owned(),
        (true, false) => key.to_owned(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// The TOML of a built-in filter, embedded in the binary; `None` for an unknown name.
pub fn builtin(name: &str) -> Option<&'static str> {
    match name {
        "sshd" => Some(include_str!("../../filters/sshd.toml")),
        "dovecot" => Some(include_str!("../../filters/dovecot.toml")),
        "nginx-http-auth" => Some(include_str!("../../filters/nginx-http-auth.toml")),
        "nginx-botsearch" => Some(include_str!("../../filters/nginx-botsearch.toml")),
        "apache-auth" => Some(include_str!("../../filters/apache-auth.toml")),
        "apache-badbots" => Some(include_str!("../../filters/apache-badbots.toml")),
        "vsftpd" => Some(include_str!("../../filters/vsftpd.toml")),
        "proftpd" => Some(include_str!("../../filters/proftpd.toml")),
        "postfix-sasl" => Some(include_str!("../../filters/postfix-sasl.toml")),
        _ => None,
    }
}

/// Names accepted by [`builtin`].
pub const BUILTIN_NAMES: &[&str] = &[
    "sshd",
    "dovecot",
    "postfix-sasl",
    "nginx-http-auth",
    "nginx-botsearch",
    "apache-auth",
    "apache-badbots",
    "vsftpd",
    "proftpd",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> FilterError {
        match Filter::from_toml(text, "custom.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    fn rule(regex: &str) -> String {
        format!(
            "[filter]\nprograms = [\"x\"]\n\n[[rule]]\nid = \"r1\"\nkind = \"attempt\"\nregex = '{regex}'\n"
        )
    }

    #[test]
    fn builtin_sshd_compiles() {
        let f = Filter::from_toml(builtin("sshd").unwrap(), "builtin:sshd").unwrap();
        assert!(f.rules().len() >= 20);
        assert_eq!(&*f.programs()[1], "sshd-session");
        assert!(builtin("nope").is_none());
        for name in BUILTIN_NAMES {
            let text = builtin(name).unwrap();
            Filter::from_toml(text, &format!("builtin:{name}")).unwrap();
        }
    }

    #[test]
    fn toml_errors_name_file_line_and_key() {
        let e = err(
            "[filter]\nprograms = [\"x\"]\n\n[[rule]]\nid = \"a\"\nkind = \"bogus\"\nregex = '^x <HOST>$'\n",
        );
        assert_eq!(
            (e.origin.as_str(), e.line, e.key.as_str()),
            ("custom.toml", 6, "rule[0].kind")
        );
        assert!(
            e.to_string().starts_with("custom.toml:6: rule[0].kind: "),
            "{e}"
        );
        let e = err(
            "[filter]\nprograms = [\"x\"]\n[[rule]]\nid = \"a\"\nkind = \"info\"\nregex = '^x <HOST>$'\n[[rule]]\nid = \"b\"\nkind = \"info\"\nregexp = '^x <HOST>$'\n",
        );
        assert_eq!((e.line, e.key.as_str()), (10, "rule[1].regexp"), "{e}");
        let e = err("[filter\n");
        assert_eq!(e.line, 1);
        let e = err("[filter]\nprograms = [\"x\"]\n");
        assert!(matches!(e.reason, FilterErrorKind::NoRules));
    }

    fn compile_err(regex: &str) -> (CompileError, FilterError) {
        let e = err(&rule(regex));
        assert_eq!((e.line, e.key.as_str()), (7, "rule[0].regex"), "{e}");
        match e.reason {
            FilterErrorKind::Compile(ref c) => {
                assert!(c.to_string().starts_with("rule \"r1\": "), "{c}");
                let c = match c {
                    CompileError::NoHost { .. } => CompileError::NoHost { rule: "r1".into() },
                    CompileError::NotAnchored { .. } => {
                        CompileError::NotAnchored { rule: "r1".into() }
                    }
                    CompileError::HostNotAfterText { .. } => {
                        CompileError::HostNotAfterText { rule: "r1".into() }
                    }
                    CompileError::DuplicateHost { .. } => {
                        CompileError::DuplicateHost { rule: "r1".into() }
                    }
                    CompileError::UnknownTag { tag, .. } => CompileError::UnknownTag {
                        rule: "r1".into(),
                        tag: tag.clone(),
                    },
                    CompileError::UnknownField { name, .. } => CompileError::UnknownField {
                        rule: "r1".into(),
                        name: name.clone(),
                    },
                    CompileError::Regex { regex, .. } => CompileError::Regex {
                        rule: "r1".into(),
                        regex: regex.clone(),
                    },
                    other => panic!("unexpected {other}"),
                };
                (c, e)
            }
            _ => panic!("not a compile error: {e}"),
        }
    }

    #[test]
    fn rules_without_host_are_rejected() {
        assert!(matches!(
            compile_err(r"^Failed for <USER>$").0,
            CompileError::NoHost { .. }
        ));
        // A hand-written host group is not the tag either.
        assert!(matches!(
            compile_err(r"^from (?P<host>\S+)$").0,
            CompileError::UnknownField { .. } | CompileError::NoHost { .. }
        ));
    }

    #[test]
    fn unanchored_rules_are_rejected() {
        for re in [
            r"Failed from <HOST>$",
            r"^Failed from <HOST>",
            r"(?m)^Failed from <HOST>$",
            r"^a$|b from <HOST>$",
        ] {
            assert!(
                matches!(
                    compile_err(re).0,
                    CompileError::NotAnchored { .. } | CompileError::HostNotAfterText { .. }
                ),
                "{re}"
            );
        }
        assert!(matches!(
            compile_err(r"Failed from <HOST>$").0,
            CompileError::NotAnchored { .. }
        ));
    }

    #[test]
    fn host_must_follow_fixed_text() {
        for re in [
            r"^.?<HOST>$",
            r"^(?P<user>.*)<HOST>$",
            r"^Failed <USER><HOST> port$",
            r"^from \S+<HOST>$",
            r"^from (?:x|.)<HOST>$",
            r"^from [ab]<HOST>$",
        ] {
            assert!(
                matches!(compile_err(re).0, CompileError::HostNotAfterText { .. }),
                "{re}"
            );
        }
        // Accepted: every path to the address ends in literal text or the message's
        // start.
        for re in [
            r"^<HOST> - <USER> \[x\]$",
            r"^(?:from )?<HOST>$",
            r"^from <HOST>$",
            r"^by (?:(?:invalid|authenticating) user <USER> )?<HOST> port <PORT>$",
            r"^x(?:ab|cd)?<HOST>$",
            r"^drop \[<HOST>\]$",
            // A one-character class is a literal.
            r"^from[ ]<HOST>$",
        ] {
            Filter::from_toml(&rule(re), "t.toml").unwrap_or_else(|e| panic!("{re}: {e}"));
        }
    }

    #[test]
    fn tag_and_field_errors() {
        assert!(
            matches!(compile_err(r"^from <HOST> <HOSTS>$").0, CompileError::UnknownTag { ref tag, .. } if &**tag == "HOSTS")
        );
        assert!(matches!(
            compile_err(r"^from <HOST> or <ADDR>$").0,
            CompileError::DuplicateHost { .. }
        ));
        assert!(
            matches!(compile_err(r"^from <HOST> (?P<port>\d+)$").0, CompileError::UnknownField { ref name, .. } if &**name == "port")
        );
        let (c, e) = compile_err(r"^from <HOST> (unclosed$");
        assert!(matches!(c, CompileError::Regex { .. }));
        assert!(e.to_string().contains("regex does not compile"), "{e}");
        // Group syntax and word boundaries are not tags.
        Filter::from_toml(
            &rule(r"^\<from\> <HOST> (?P<method>x)(?<user>y)$"),
            "t.toml",
        )
        .unwrap();
    }

    #[test]
    fn weight_and_id_errors() {
        let text =
            "[[rule]]\nid = \"a\"\nkind = \"attempt\"\nweight = -1.0\nregex = '^x <HOST>$'\n";
        let e = err(text);
        assert_eq!((e.line, e.key.as_str()), (4, "rule[0].weight"), "{e}");
        assert!(matches!(
            e.reason,
            FilterErrorKind::Compile(CompileError::BadWeight { .. })
        ));
        let text = "[[rule]]\nid = \"a\"\nkind = \"info\"\nregex = '^x <HOST>$'\n\n[[rule]]\nid = \"a\"\nkind = \"info\"\nregex = '^y <HOST>$'\n";
        let e = err(text);
        assert_eq!((e.line, e.key.as_str()), (7, "rule[1].id"), "{e}");
    }

    #[test]
    fn ignore_patterns_must_be_anchored() {
        let text = "[[rule]]\nid = \"a\"\nkind = \"info\"\nregex = '^x <HOST>$'\n[[ignore]]\nregex = 'x'\n";
        let e = err(text);
        assert_eq!((e.line, e.key.as_str()), (6, "ignore[0].regex"), "{e}");
    }

    #[test]
    fn default_weights_follow_kind() {
        let text = "[[rule]]\nid = \"a\"\nkind = \"attempt\"\nregex = '^a <HOST>$'\n[[rule]]\nid = \"b\"\nkind = \"probe\"\nregex = '^b <HOST>$'\n";
        let f = Filter::from_toml(text, "t.toml").unwrap();
        assert_eq!(f.rules()[0].weight, Weight::ONE);
        assert_eq!(f.rules()[1].weight, Weight::ZERO);
        assert!(f.programs().is_empty());
        assert!(f.wants_program(b"anything"));
    }

    #[test]
    fn dispatch_runs_only_rules_whose_prefix_fits() {
        let f = Filter::from_toml(builtin("sshd").unwrap(), "builtin:sshd").unwrap();
        let mut scratch = f.new_scratch().unwrap();
        let m = f
            .match_message(
                "Failed password for root from 192.0.2.1 port 22 ssh2",
                false,
                &mut scratch,
            )
            .unwrap();
        let MessageMatch::Matched(RuleMatch { rule, .. }) = m else {
            panic!("no match: {m:?}");
        };
        assert_eq!(&*f.rules()[usize::from(rule)].id, "failed-auth");
        // Messages starting with a byte no rule starts with reach no rule.
        let b = usize::from(b'z');
        assert_eq!(f.first[b], f.first[b + 1]);
        assert_eq!(
            f.match_message("zzz from 192.0.2.1", false, &mut scratch)
                .unwrap(),
            MessageMatch::None
        );
        assert_eq!(
            f.match_message("", false, &mut scratch).unwrap(),
            MessageMatch::None
        );
    }
}
