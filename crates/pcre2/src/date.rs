//! Fail2Ban's date detection: `datepattern` templates (strptime `%` fields inside a regex,
//! `{^LN-BEG}`, `{DATE}`, `{NONE}`, `{UNB}`, `EPOCH`, `LEPOCH`, `TAI64N`) and the built-in
//! template list used when a filter sets none.
//!
//! What the fields mean is read with core's calendar ([`portcullis_core::calendar`]): the
//! same zone conversion and the same year rule ([`YearInference`]) as the native parser.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use portcullis_core::Time;
use portcullis_core::calendar::{Civil, LocalZone, YearInference, time_at_offset};
use portcullis_core::filter::{Captures, Pattern};

use crate::pattern::{CompileError, PatternOptions, RegexPattern, SearchError, Spans};

/// The built-in templates, most specific first (Fail2Ban's default order).
const DEFAULT_TEMPLATES: &[&str] = &[
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    "TAI64N",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Zone abbreviations accepted in `%Z`/`%z` and `logtimezone`, as fixed offsets in minutes
/// (no DST switching, as in Fail2Ban).
const ZONES: &[(&str, i32)] = &[
    ("Z", 0),
    ("UTC", 0),
    ("GMT", 0),
    ("UT", 0),
    ("WET", 0),
    ("WEST", 60),
    ("BST", 60),
    ("CET", 60),
    ("CEST", 120),
    ("MET", 60),
    ("MEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("IST", 330),
    ("EST", -300),
    ("EDT", -240),
    ("CST", -360),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
    ("AKST", -540),
    ("AKDT", -480),
    ("HST", -600),
    ("AST", -240),
    ("ADT", -180),
    ("NST", -210),
    ("NDT", -150),
    ("JST", 540),
    ("KST", 540),
    ("AEST", 600),
    ("AEDT", 660),
    ("ACST", 570),
    ("ACDT", 630),
    ("AWST", 480),
    ("NZST", 720),
    ("NZDT", 780),
    ("SGT", 480),
    ("HKT", 480),
    ("WIB", 420),
    ("SAST", 120),
    ("CAT", 120),
    ("EAT", 180),
    ("WAT", 60),
    ("A", 60),
    ("B", 120),
    ("C", 180),
    ("D", 240),
    ("E", 300),
    ("F", 360),
    ("G", 420),
    ("H", 480),
    ("I", 540),
    ("K", 600),
    ("L", 660),
    ("M", 720),
    ("N", -60),
    ("O", -120),
    ("P", -180),
    ("Q", -240),
    ("R", -300),
    ("S", -360),
    ("T", -420),
    ("U", -480),
    ("V", -540),
    ("W", -600),
    ("X", -660),
    ("Y", -720),
];

/// A `datepattern` (or `logtimezone`) that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatePatternError {
    /// An unknown `%` field.
    #[error("date pattern {pattern:?}: unknown field %{field}")]
    UnknownField {
        /// The pattern as written.
        pattern: Box<str>,
        /// The field letter(s).
        field: Box<str>,
    },
    /// The resulting regex does not compile.
    #[error("date pattern {pattern:?}: {source}")]
    Regex {
        /// The pattern as written.
        pattern: Box<str>,
        /// The engine's complaint.
        #[source]
        source: CompileError,
    },
    /// A time zone that is neither `UTC[+-]hh[:mm]` nor a known abbreviation.
    #[error("unknown or unsupported time zone {0:?}")]
    TimeZone(Box<str>),
}

/// Where a template may match.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Flags {
    line_begin: bool,
    line_end: bool,
}

#[derive(Clone, Debug)]
enum Kind {
    /// strptime fields in named groups.
    Fields,
    /// Seconds since the epoch in group `group`; `long` also reads milli/microseconds.
    Epoch { group: usize, long: bool },
    /// `@` + 24 hex digits.
    Tai64n,
}

/// One compiled template.
#[derive(Clone, Debug)]
struct Template {
    /// The pattern it came from (deduplication, display).
    name: String,
    regex: RegexPattern,
    flags: Flags,
    kind: Kind,
    /// Group index per strptime field letter (y Y m b B d H I p M S z Z j).
    fields: Vec<(char, usize)>,
}

/// A date already read: the time is a function of the template, `now` and the captured
/// texts, so the same template capturing the same texts at the same relative places
/// (checked through the covering text and the relative spans) gives the same time.
#[derive(Clone, Debug)]
struct Memo {
    template: usize,
    now: Time,
    /// The line text from the first captured byte to the last.
    text: String,
    /// Every group's span relative to the start of `text`.
    groups: Vec<Option<(usize, usize)>>,
    time: Option<Time>,
}

/// The text a template found and what it means.
#[derive(Clone, Debug, PartialEq)]
pub struct DateMatch {
    /// Byte range of the date text in the line (group 1 of the template).
    pub span: (usize, usize),
    /// The instant, or `None` when the text is empty (`{NONE}`) or invalid.
    pub time: Option<Time>,
}

/// Finds and reads the date of a line with a list of templates.
#[derive(Clone, Debug)]
pub struct DateDetector {
    templates: Vec<Template>,
    /// How the fields of a match are turned into an instant.
    calendar: Calendar,
    /// Index of the template that matched last: anchored templates are tried first.
    last: Option<usize>,
    /// Start of the last match (a template matching further right is held back).
    last_start: usize,
    /// One capture buffer per template, reused for every line.
    caps: Vec<Spans>,
    /// The last date read. Log lines come in bursts with the same timestamp, so most
    /// lines skip the calendar arithmetic.
    memo: Option<Memo>,
    /// Scratch for the group spans of the current match (compared with the memo's).
    groups: Vec<Option<(usize, usize)>>,
}

/// Field regexes (`%X`/`%ExX` → regex); group names are the strptime letters.
fn field_regex(field: &str, year_re: &str) -> Option<String> {
    Some(
        match field {
            "a" => "(?P<a>mon|tue|wed|thu|fri|sat|sun)",
            "A" => "(?P<A>monday|tuesday|wednesday|thursday|friday|saturday|sunday)",
            "b" => "(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
            "B" => "(?P<B>january|february|march|april|may|june|july|august|september|october|november|december)",
            "d" => r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])",
            "f" => "(?P<f>[0-9]{1,6})",
            "H" => r"(?P<H>[0-1]?\d|2[0-3])",
            "I" => "(?P<I>1[0-2]|0[1-9]|[1-9])",
            "j" => r"(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])",
            "k" => r" ?(?P<H>[0-2]?\d)",
            "l" => r" ?(?P<I>1?\d)",
            "m" => "(?P<m>0?[1-9]|1[0-2])",
            "M" => r"(?P<M>[0-5]?\d)",
            "p" => "(?P<p>am|pm)",
            "S" => r"(?P<S>[0-5]?\d|6[0-1])",
            "u" => "(?P<u>[1-7])",
            "w" => "(?P<w>[0-6])",
            "y" => r"(?P<y>\d\d)",
            "Y" => r"(?P<Y>\d{4})",
            "z" => r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
            "Z" => "(?P<Z>Z|[A-Z]{3,5})",
            "%" => "%",
            "ExH" => r"(?P<H>[0-1]\d|2[0-3])",
            "ExM" => r"(?P<M>[0-5]\d)",
            "ExS" => r"(?P<S>[0-5]\d|6[0-1])",
            "ExY" => return Some(format!(r"(?P<Y>{year_re}\d)")),
            "ExZ" => "(?P<Z>[A-Z](?:[A-Z]{2,4})?)",
            "Exd" => r"(?P<d>[1-2]\d|0[1-9]|3[0-1])",
            "Exk" => r" ?(?P<H>[0-1]?\d|2[0-3])",
            "Exl" => r" ?(?P<I>1[0-2]|\d)",
            "Exm" => "(?P<m>0[1-9]|1[0-2])",
            "Exy" => r"(?P<y>\d{2})",
            "Exz" => r"(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)",
            _ => return None,
        }
        .to_owned(),
    )
}

/// `%ExY` accepts the centuries from 2000 to three years after `ref_year` (Fail2Ban
/// builds the same kind of bound from the current year).
fn year_regex(ref_year: i16) -> String {
    let hi = (ref_year + 3) / 10;
    let mut decades: Vec<String> = (200..=hi.max(202)).map(|d| d.to_string()).collect();
    decades.dedup();
    format!("(?:{})", decades.join("|"))
}

/// Replace `%` fields by their regexes. Returns the regex and whether a field is
/// alphabetic (then the template is case-insensitive).
fn expand_fields(pattern: &str, year_re: &str) -> Result<(String, bool), DatePatternError> {
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut alpha = false;
    let mut rest = pattern;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let key = if after.starts_with("Ex") && after.len() >= 3 && after.is_char_boundary(3) {
            &after[..3]
        } else {
            after
                .get(..after.chars().next().map_or(0, char::len_utf8))
                .unwrap_or("")
        };
        let Some(r) = field_regex(key, year_re) else {
            return Err(DatePatternError::UnknownField {
                pattern: pattern.into(),
                field: key.into(),
            });
        };
        if matches!(key, "a" | "A" | "b" | "B" | "p") {
            alpha = true;
        }
        out.push_str(&r);
        rest = &after[key.len()..];
    }
    out.push_str(rest);
    Ok((out, alpha))
}

/// Whether `regex` has a capturing group: `(` not escaped and not followed by `?`.
fn has_plain_group(regex: &str) -> bool {
    let b = regex.as_bytes();
    (0..b.len())
        .any(|i| b[i] == b'(' && b.get(i + 1) != Some(&b'?') && (i == 0 || b[i - 1] != b'\\'))
}

/// Splits a leading inline-flags group `(?abc)` off `regex` (the first one anywhere, as
/// Fail2Ban does).
fn take_global_flags(regex: &str) -> (Option<String>, String) {
    let b = regex.as_bytes();
    let mut i = 0;
    while let Some(p) = regex[i..].find("(?") {
        let s = i + p;
        let mut e = s + 2;
        while e < b.len() && b[e].is_ascii_lowercase() {
            e += 1;
        }
        if e > s + 2 && b.get(e) == Some(&b')') {
            let flags = regex[s..=e].to_owned();
            return (Some(flags), format!("{}{}", &regex[..s], &regex[e + 1..]));
        }
        i = s + 2;
    }
    (None, regex.to_owned())
}

fn strip_flag_group(s: &str) -> &str {
    if let Some(r) = s.strip_prefix("(?")
        && let Some(e) = r.find(')')
        && e > 0
        && r[..e]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return &r[e + 1..];
    }
    s
}

/// Fail2Ban's "no word boundary needed at the start": `^`, `(^`, `(?:^` or `**`.
fn starts_bounded(regex: &str) -> bool {
    let s = regex.trim_start_matches('(');
    let s = strip_flag_group(s);
    s.starts_with('^') || s.trim_start_matches('(').starts_with("**") || {
        let s2 = s.strip_prefix('(').unwrap_or(s);
        let s2 = s2.strip_prefix("?:").unwrap_or(s2);
        s.starts_with('(') && s2.starts_with('^')
    }
}

/// "No word boundary needed at the end": `$`, `$)`, `\b`, `\s` or `**` + `)`s.
fn ends_bounded(regex: &str) -> bool {
    let t = regex.trim_end_matches(')');
    if t.ends_with("**") {
        return true;
    }
    let unescaped = |s: &str, suf: &str| {
        s.strip_suffix(suf)
            .is_some_and(|p| !p.ends_with('\\') || p.ends_with("\\\\"))
    };
    unescaped(regex, "$")
        || unescaped(regex, "$)")
        || unescaped(regex, r"\b")
        || unescaped(regex, r"\s")
}

fn line_bound_begin(regex: &str) -> bool {
    let s = strip_flag_group(regex);
    s.starts_with('^') || {
        let r = s
            .strip_prefix('(')
            .map(|r| r.strip_prefix("?:").unwrap_or(r));
        r.is_some_and(|r| r.starts_with('^') && !r[1..].starts_with('|'))
    }
}

fn line_bound_end(regex: &str) -> bool {
    let t = regex.strip_suffix(')').unwrap_or(regex);
    t.strip_suffix('$')
        .is_some_and(|p| !p.ends_with('\\') && !p.ends_with('|'))
}

/// Remove `**` markers (they only switch word bounds off).
fn delete_star_bounds(regex: &str) -> String {
    let mut r = regex.to_owned();
    let lead = r.len() - r.trim_start_matches('(').len();
    let after_flags = lead + (r[lead..].len() - strip_flag_group(&r[lead..]).len());
    let lead2 =
        after_flags + (r[after_flags..].len() - r[after_flags..].trim_start_matches('(').len());
    if r[lead2..].starts_with("**") {
        r.replace_range(lead2..lead2 + 2, "");
    }
    let t = r.trim_end_matches(')').len();
    if r[..t].ends_with("**") && !r[..t - 2].ends_with('\\') {
        r.replace_range(t - 2..t, "");
    }
    r
}

/// `WordBegin`: Fail2Ban's `wordBegin` argument.
#[derive(Copy, Clone, PartialEq, Eq)]
enum WordBegin {
    No,
    Yes,
    LineStart,
}

/// Fail2Ban's `DateTemplate.setRegex`: add word or line bounds and the date group.
fn bound_regex(regex: &str, word_begin: WordBegin, word_end: bool) -> (String, Flags) {
    let regex = regex.trim();
    let (gf, mut regex) = take_global_flags(regex);
    let bound_begin = word_begin != WordBegin::No && !starts_bounded(&regex);
    let bound_end = word_end && !ends_bounded(&regex);
    if !has_plain_group(&regex) {
        // Keep leading flags/`^` and a trailing `$` outside the date group.
        let mut head = 0;
        let s = &regex[head..];
        head += s.len() - strip_flag_group(s).len();
        if regex[head..].starts_with('^') {
            head += 1;
        }
        let s = &regex[head..];
        head += s.len() - strip_flag_group(s).len();
        let tail = usize::from(regex.len() > head && regex.ends_with('$'));
        let end = regex.len() - tail;
        regex = format!("{}({}){}", &regex[..head], &regex[head..end], &regex[end..]);
    }
    let mut flags = Flags::default();
    if bound_begin {
        if word_begin == WordBegin::LineStart {
            flags.line_begin = true;
            regex = format!(r"^(?:\W{{0,2}})?{regex}");
        } else {
            regex = format!(r"(?=^|\b|\W){regex}");
        }
    }
    if bound_end {
        regex.push_str(r"(?=\b|\W|$)");
    }
    if !flags.line_begin && line_bound_begin(&regex) {
        flags.line_begin = true;
    }
    if line_bound_end(&regex) {
        flags.line_end = true;
    }
    let mut regex = delete_star_bounds(&regex);
    if let Some(gf) = gf {
        regex.insert_str(0, &gf);
    }
    (regex, flags)
}

/// Remove the bounds a template adds, so it can be embedded into a `{DATE}` pattern.
fn unbound(pattern: &str) -> &str {
    let p = pattern.strip_prefix("{UNB}").unwrap_or(pattern);
    let p = p.strip_prefix("{^LN-BEG}").unwrap_or(p);
    let p = p
        .strip_prefix(r"(?:^|\b|\W)")
        .or_else(|| p.strip_prefix(r"(^|\b|\W)"))
        .unwrap_or(p);
    p.strip_suffix(r"(?=\b|\W|$)").unwrap_or(p)
}

fn compile(
    name: &str,
    regex: &str,
    flags: Flags,
    kind: Kind,
) -> Result<Template, DatePatternError> {
    let regex = RegexPattern::with_options(&format!("(?J){regex}"), PatternOptions::default())
        .map_err(|source| DatePatternError::Regex {
            pattern: name.into(),
            source,
        })?;
    let fields = regex
        .capture_names()
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let n = n.as_deref()?;
            let mut cs = n.chars();
            let c = cs.next()?;
            (cs.next().is_none() && "yYmbBdHIpMSzZjfaAw".contains(c)).then_some((c, i))
        })
        .collect();
    Ok(Template {
        name: name.to_owned(),
        regex,
        flags,
        kind,
        fields,
    })
}

const EPOCH_RE: &str = r"\d{10,11}\b(?:\.\d{3,6})?";
const LONG_EPOCH_RE: &str = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?";

/// A template from one `datepattern` line (`{DATE}`, `{^LN-BEG}` and `{DEFAULT}` are
/// expanded by [`DateDetector::new`]).
fn template(pattern: &str, year_re: &str) -> Result<Template, DatePatternError> {
    let key = if pattern.contains('%') {
        pattern.to_owned()
    } else {
        pattern.to_ascii_uppercase()
    };
    if key.contains("EPOCH") {
        let upper = pattern.to_ascii_uppercase();
        if let Some(pos) = upper.find("{EPOCH}").or_else(|| upper.find("{LEPOCH}")) {
            let long = upper[pos..].starts_with("{LEPOCH}");
            let len = if long { 8 } else { 7 };
            let inner = if long { LONG_EPOCH_RE } else { EPOCH_RE };
            let regex = format!("({}({inner}){})", &pattern[..pos], &pattern[pos + len..]);
            let (r, f) = bound_regex(&regex, WordBegin::Yes, true);
            return compile(pattern, &r, f, Kind::Epoch { group: 2, long });
        }
        let (long, line) = match key.as_str() {
            "EPOCH" => (false, false),
            "{^LN-BEG}EPOCH" | "^EPOCH" => (false, true),
            "LEPOCH" => (true, false),
            "{^LN-BEG}LEPOCH" | "^LEPOCH" => (true, true),
            _ => return pattern_template(pattern, year_re),
        };
        let e = if long { LONG_EPOCH_RE } else { EPOCH_RE };
        let (r, f) = if line {
            bound_regex(
                &format!(r"((?P<square>(?<=^\[))?{e})(?(square)(?=\]))"),
                WordBegin::LineStart,
                true,
            )
        } else {
            bound_regex(
                &format!(
                    r"((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\())){e})(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))"
                ),
                WordBegin::No,
                true,
            )
        };
        return compile(pattern, &r, f, Kind::Epoch { group: 1, long });
    }
    if matches!(key.as_str(), "TAI64N" | "{^LN-BEG}TAI64N" | "^TAI64N") {
        let wb = if key == "TAI64N" {
            WordBegin::No
        } else {
            WordBegin::LineStart
        };
        let (r, f) = bound_regex("@[0-9a-f]{24}", wb, true);
        return compile(pattern, &r, f, Kind::Tai64n);
    }
    pattern_template(pattern, year_re)
}

/// A `%`-field template (Fail2Ban's `DatePatternRegex`).
fn pattern_template(pattern: &str, year_re: &str) -> Result<Template, DatePatternError> {
    let (mut p, mut wb, mut we) = (pattern, WordBegin::Yes, true);
    if let Some(r) = p.strip_prefix("{UNB}") {
        p = r;
        wb = WordBegin::No;
        we = false;
    }
    if wb == WordBegin::Yes
        && let Some(r) = p.strip_prefix("{^LN-BEG}")
    {
        p = r;
        wb = WordBegin::LineStart;
    }
    let (mut regex, alpha) = expand_fields(p, year_re)?;
    if alpha {
        regex.insert_str(0, "(?i)");
    }
    let (r, f) = bound_regex(&regex, wb, we);
    compile(pattern, &r, f, Kind::Fields)
}

impl DateDetector {
    /// A detector for a filter's `datepattern` (one template per non-empty line; `None`
    /// = the built-in templates). `ref_year` bounds `%ExY`; `default_tz` is `logtimezone`;
    /// `local` is the zone of dates without one.
    pub fn new(
        datepattern: Option<&str>,
        default_tz: Option<&str>,
        local: TimeZone,
        ref_year: i16,
    ) -> Result<DateDetector, DatePatternError> {
        let year_re = year_regex(ref_year);
        let default_offset = match default_tz {
            Some(tz) => Some(zone_offset(tz).ok_or_else(|| DatePatternError::TimeZone(tz.into()))?),
            None => None,
        };
        let mut templates: Vec<Template> = Vec::new();
        let push = |t: Template, templates: &mut Vec<Template>| {
            if !templates.iter().any(|o| o.name == t.name) {
                templates.push(t);
            }
        };
        let lines: Vec<&str> = match datepattern {
            Some(d) => d
                .split('\n')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect(),
            None => vec!["{DEFAULT}"],
        };
        for line in lines {
            let key = if line.contains('%') {
                line.to_owned()
            } else {
                line.to_ascii_uppercase()
            };
            if key == "{^LN-BEG}" || key == "{DEFAULT}" {
                for t in default_templates(&year_re)? {
                    if key == "{DEFAULT}" || t.flags.line_begin {
                        push(t, &mut templates);
                    }
                }
            } else if key.contains("{DATE}") {
                for d in DEFAULT_TEMPLATES {
                    let inner = unbound(d);
                    let wrapped = replace_date(line, inner);
                    push(template(&wrapped, &year_re)?, &mut templates);
                }
            } else if key == "{NONE}" {
                push(pattern_template("{UNB}^", &year_re)?, &mut templates);
            } else {
                push(template(line, &year_re)?, &mut templates);
            }
        }
        let caps = templates.iter().map(|t| t.regex.spans()).collect();
        Ok(DateDetector {
            templates,
            calendar: Calendar {
                default_offset,
                local: LocalZone::new(local),
                years: YearInference::new(),
            },
            last: None,
            last_start: 1,
            caps,
            memo: None,
            groups: Vec::new(),
        })
    }

    /// Find the date in `line`; `now` settles dates without a year or day.
    pub fn find(&mut self, line: &str, now: Time) -> Result<Option<DateMatch>, SearchError> {
        // Fail2Ban's dates have whole seconds (its strptime drops `%f`), so comparing them
        // with `now` or with `now` cut to its second gives the same answers; cut, the memo
        // holds for a whole second of a clock that moves on every line.
        let now = Time::from_secs(now.as_secs());
        if let Some(i) = self.last {
            let t = &self.templates[i];
            if (t.flags.line_begin || t.flags.line_end)
                && t.regex.captures_at(line, 0, &mut self.caps[i])?
            {
                return Ok(Some(self.read(i, line, now)));
            }
        }
        let mut best: Option<(usize, usize)> = None;
        let n = self.templates.len();
        for (i, t) in self.templates.iter().enumerate() {
            let c = &mut self.caps[i];
            if !t.regex.captures_at(line, 0, c)? {
                continue;
            }
            let start = c.get(0).map_or(0, |s| s.0);
            if i + 1 >= n || t.flags.line_begin || t.flags.line_end || start <= self.last_start {
                best = Some((i, start));
                break;
            }
            if best.as_ref().is_none_or(|b| start < b.1) {
                best = Some((i, start));
            }
        }
        Ok(best.map(|(i, start)| {
            self.last = Some(i);
            self.last_start = start;
            self.read(i, line, now)
        }))
    }

    /// The date found by template `i` (its spans are in `self.caps[i]`).
    fn read(&mut self, i: usize, line: &str, now: Time) -> DateMatch {
        let c = &self.caps[i];
        let span = c.get(1).or_else(|| c.get(0)).unwrap_or((0, 0));
        let text = &line[span.0..span.1];
        let n = self.templates[i].regex.captures_len();
        let (lo, hi) = (0..n)
            .filter_map(|g| c.get(g))
            .fold((usize::MAX, 0), |(l, h), (a, b)| (l.min(a), h.max(b)));
        let lo = lo.min(hi);
        self.groups.clear();
        self.groups
            .extend((0..n).map(|g| c.get(g).map(|(a, b)| (a - lo, b - lo))));
        let cover = &line[lo..hi];
        if let Some(m) = &self.memo
            && m.template == i
            && m.now == now
            && m.text == cover
            && m.groups == self.groups
        {
            return DateMatch { span, time: m.time };
        }
        let time = self.read_time(i, line, text, now);
        let m = self.memo.get_or_insert_with(|| Memo {
            template: i,
            now,
            text: String::new(),
            groups: Vec::new(),
            time,
        });
        m.template = i;
        m.now = now;
        m.text.clear();
        m.text.push_str(cover);
        m.groups.clone_from(&self.groups);
        m.time = time;
        DateMatch { span, time }
    }

    /// What the date text of template `i` means (the template's own reading, no memo).
    fn read_time(&mut self, i: usize, line: &str, text: &str, now: Time) -> Option<Time> {
        let t = &self.templates[i];
        let c = &self.caps[i];
        if text.is_empty() {
            None
        } else {
            match t.kind {
                Kind::Epoch { group, long } => {
                    c.get(group).and_then(|(a, b)| epoch(&line[a..b], long))
                }
                Kind::Tai64n => text
                    .get(2..17)
                    .and_then(|h| i64::from_str_radix(h, 16).ok())
                    .map(Time::from_secs),
                Kind::Fields => {
                    let get = |f: char| {
                        t.fields
                            .iter()
                            .filter(|(k, _)| *k == f)
                            .find_map(|&(_, g)| c.get(g))
                            .map(|(a, b)| &line[a..b])
                    };
                    self.calendar.strptime(&get, now)
                }
            }
        }
    }
}

/// How the strptime fields of a match become an instant: Fail2Ban's `reGroupDictStrptime`
/// on core's calendar.
#[derive(Clone, Debug)]
struct Calendar {
    /// Zone for dates without one, in minutes east of UTC (`logtimezone`); `None` = local.
    default_offset: Option<i32>,
    /// The local zone (Fail2Ban uses the process's `TZ`).
    local: LocalZone,
    /// The year of dates without one: core's rule, shared with the native parser.
    years: YearInference,
}

impl Calendar {
    /// Fail2Ban's reading of the fields (whole seconds: `%f` is matched but not used, as in
    /// Fail2Ban). A missing year is inferred from `now` ([`YearInference`]); a missing day
    /// and month mean today (local), or yesterday when that would be after `now`.
    fn strptime<'l>(&mut self, get: &dyn Fn(char) -> Option<&'l str>, now: Time) -> Option<Time> {
        let num = |f: char| get(f).and_then(|v| v.trim().parse::<i32>().ok());
        let mut year = num('Y');
        if let Some(y) = num('y') {
            year = Some(if y <= 2000 { y + 2000 } else { y });
        }
        let month_name = |v: &str| {
            let v = v.to_lowercase();
            MONTHS
                .iter()
                .position(|m| *m == v || m.get(..3) == Some(v.as_str()))
                .map(|p| p as i32 + 1)
        };
        let mut month = num('m');
        if let Some(m) = get('B').or_else(|| get('b')).and_then(month_name) {
            month = Some(m);
        }
        let mut day = num('d');
        let mut hour = num('H').unwrap_or(0);
        if let Some(h) = num('I') {
            let ampm = get('p').unwrap_or("").to_lowercase();
            hour = match ampm.as_str() {
                "pm" if h != 12 => h + 12,
                "pm" => h,
                _ if h == 12 => 0,
                _ => h,
            };
        }
        let minute = num('M').unwrap_or(0);
        let second = num('S').unwrap_or(0);
        let mut offset = None;
        if let Some(z) = get('z').or_else(|| get('Z')) {
            offset = Some(if matches!(z, "Z" | "UTC" | "GMT") {
                0
            } else {
                zone_offset(z)?
            });
        }
        let offset = offset.or(self.default_offset);
        let now_local = self.local.civil(now)?;
        let assume_year = year.is_none();
        let year = year.map_or(now_local.year(), i64::from);
        if (month.is_none() || day.is_none())
            && let Some(j) = num('j')
        {
            let d = Date::new(i16::try_from(year).ok()?, 1, 1)
                .ok()?
                .checked_add(jiff::Span::new().days(j - 1))
                .ok()?;
            month = Some(i32::from(d.month()));
            day = Some(i32::from(d.day()));
        }
        let assume_today = month.is_none() && day.is_none();
        let (month, day) = match (month, day) {
            (Some(m), Some(d)) => (m, d),
            (None, None) => (i32::from(now_local.month()), i32::from(now_local.day())),
            (Some(m), None) => (m, 1),
            (None, Some(d)) => (1, d),
        };
        let (month, day) = (u8::try_from(month).ok()?, u8::try_from(day).ok()?);
        let (hour, minute, second) = (
            u8::try_from(hour).ok()?,
            u8::try_from(minute).ok()?,
            u8::try_from(second).ok()?,
        );
        let local = &mut self.local;
        let mut instant_of = |c: &Civil| match offset {
            Some(minutes) => Some(time_at_offset(c, minutes * 60)),
            None => local.to_time(c),
        };
        if assume_year && !assume_today {
            let date = Civil::yearless(month, day, hour, minute, second, 0)?;
            return self.years.resolve(date, now, instant_of);
        }
        let t = instant_of(&Civil::new(year, month, day, hour, minute, second, 0)?)?;
        if assume_today && t > now {
            // Rollover at midnight: a time later than now is yesterday's.
            let d = Date::new(i16::try_from(year).ok()?, month as i8, day as i8)
                .ok()?
                .yesterday()
                .ok()?;
            let yesterday = Civil::new(
                i64::from(d.year()),
                d.month() as u8,
                d.day() as u8,
                hour,
                minute,
                second,
                0,
            )?;
            return instant_of(&yesterday);
        }
        Some(t)
    }
}

/// The instant of an epoch text: seconds with an optional fraction; with `long` also 13+
/// digits of milliseconds (optional fraction) or 16+ digits of microseconds. Exact to the
/// microsecond (digits past it are cut).
fn epoch(v: &str, long: bool) -> Option<Time> {
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    // Microseconds per unit of `whole`, and how many fraction digits are microseconds.
    let (unit, fraction_digits) = if long && v.len() >= 13 {
        if v.len() >= 16 && !v.contains('.') {
            (1, 0)
        } else {
            (1000, 3)
        }
    } else {
        (1_000_000, 6)
    };
    let mut micros = whole.parse::<i64>().ok()?.checked_mul(unit)?;
    let mut scale = unit;
    for c in fraction.bytes().take(fraction_digits) {
        scale /= 10;
        micros = micros.checked_add(i64::from(c.checked_sub(b'0').filter(|d| *d <= 9)?) * scale)?;
    }
    Some(Time::from_micros(micros))
}

/// Replace `{DATE}` (not escaped) in `pattern` by `inner`.
fn replace_date(pattern: &str, inner: &str) -> String {
    let upper = pattern.to_ascii_uppercase();
    let mut out = String::new();
    let mut last = 0;
    let mut from = 0;
    while let Some(p) = upper[from..].find("{DATE}") {
        let s = from + p;
        if s > 0 && pattern.as_bytes()[s - 1] == b'\\' {
            from = s + 6;
            continue;
        }
        out.push_str(&pattern[last..s]);
        out.push_str(inner);
        last = s + 6;
        from = last;
    }
    out.push_str(&pattern[last..]);
    out
}

/// The built-in templates, each unanchored one preceded (as a group, first) by its
/// `{^LN-BEG}` version.
fn default_templates(year_re: &str) -> Result<Vec<Template>, DatePatternError> {
    let mut anchored = Vec::new();
    let mut plain = Vec::new();
    for d in DEFAULT_TEMPLATES {
        if !d.starts_with("{^LN-BEG}") && !d.starts_with('^') {
            anchored.push(template(&format!("{{^LN-BEG}}{d}"), year_re)?);
        }
        plain.push(template(d, year_re)?);
    }
    anchored.extend(plain);
    Ok(anchored)
}

/// Minutes east of UTC of `UTC+hh[:mm]`, `+hhmm`, `CET`, `CET+01`, … (Fail2Ban's
/// fixed-offset zones).
pub fn zone_offset(tz: &str) -> Option<i32> {
    let tz = tz.trim();
    let split = tz.find(['+', '-']).unwrap_or(tz.len());
    let (abbr, off) = tz.split_at(split);
    let base = if abbr.is_empty() {
        0
    } else {
        ZONES.iter().find(|(n, _)| *n == abbr)?.1
    };
    if off.is_empty() {
        return Some(base);
    }
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    Some(base + sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cet() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0").unwrap()
    }
    const NOW: Time = Time::from_secs(1_124_013_600);

    fn find(d: &mut DateDetector, line: &str) -> Option<Time> {
        d.find(line, NOW).unwrap().and_then(|m| m.time)
    }

    #[test]
    fn default_templates_read_syslog_and_iso() {
        let mut d = DateDetector::new(None, None, cet(), 2005).unwrap();
        // 2005-01-10 07:00:01 CET = 06:00:01 UTC.
        assert_eq!(
            find(&mut d, "Jan 10 07:00:01 host sshd[1]: x"),
            Some(Time::from_secs(1_105_336_801))
        );
        assert_eq!(
            find(&mut d, "2005-01-10 07:00:01 x"),
            Some(Time::from_secs(1_105_336_801))
        );
        assert_eq!(
            find(&mut d, "1105336801 x"),
            Some(Time::from_secs(1_105_336_801))
        );
    }

    #[test]
    fn line_begin_only_and_none() {
        let mut d = DateDetector::new(Some("{^LN-BEG}"), None, cet(), 2005).unwrap();
        assert!(find(&mut d, "x Jan 10 07:00:01 y").is_none());
        let mut n = DateDetector::new(Some("{NONE}"), None, cet(), 2005).unwrap();
        let m = n.find("Jan 10 07:00:01 y", NOW).unwrap().unwrap();
        assert_eq!((m.span, m.time), ((0, 0), None));
    }

    fn ts(rfc3339: &str) -> Time {
        rfc3339.parse::<jiff::Timestamp>().unwrap().into()
    }

    /// Both engines read year-less syslog dates alike: core's calendar, zone conversion and
    /// year rule (here across New Year both ways, leap days and zones).
    #[test]
    fn syslog_dates_agree_with_the_native_parser() {
        for (line, reference, want) in [
            (
                "Aug 14 11:00:00 h",
                "2005-08-14T10:00:00Z",
                "2005-08-14T09:00:00Z",
            ),
            (
                "Aug 16 11:00:00 h",
                "2005-08-14T10:00:00Z",
                "2004-08-16T09:00:00Z",
            ),
            (
                "Dec 31 23:59:59 h",
                "2027-01-01T00:00:10Z",
                "2026-12-31T22:59:59Z",
            ),
            // January read on New Year's Eve (CET): next year's (Fail2Ban's own rule would
            // put it almost a year back).
            (
                "Jan  1 00:30:00 h",
                "2026-12-31T12:00:00Z",
                "2026-12-31T23:30:00Z",
            ),
            (
                "Jan  1 00:30:00 h",
                "2026-11-25T12:00:00Z",
                "2025-12-31T23:30:00Z",
            ),
            // Feb 29 read in a non-leap year: the last leap year's.
            (
                "Feb 29 10:00:00 h",
                "2027-03-01T00:00:00Z",
                "2024-02-29T09:00:00Z",
            ),
            // Summer time.
            (
                "Jul  1 08:00:01 h",
                "2026-11-25T12:00:00Z",
                "2026-07-01T06:00:01Z",
            ),
        ] {
            let mut d = DateDetector::new(None, None, cet(), 2027).unwrap();
            let mut native = portcullis_core::date::DateParser::new(cet());
            let got = d.find(line, ts(reference)).unwrap().and_then(|m| m.time);
            let same = native
                .parse_prefix(line.as_bytes(), ts(reference))
                .map(|r| r.0);
            assert_eq!(got, Some(ts(want)), "{line} at {reference}");
            assert_eq!(got, same, "{line} at {reference}: the engines differ");
        }
    }

    #[test]
    fn time_only_dates_are_today_or_yesterday() {
        let mut d = DateDetector::new(Some("^%H:%M:%S"), None, cet(), 2005).unwrap();
        // NOW is 2005-08-14 12:00 CEST.
        assert_eq!(find(&mut d, "11:00:00 x"), Some(ts("2005-08-14T09:00:00Z")));
        assert_eq!(find(&mut d, "13:00:00 x"), Some(ts("2005-08-13T11:00:00Z")));
    }

    /// `now` is read at whole seconds (Fail2Ban's dates have no fraction), so a clock that
    /// moves within a second changes no date, and the memo may hold for the second.
    #[test]
    fn now_within_a_second_changes_nothing() {
        let mut d = DateDetector::new(Some("^%H:%M:%S"), None, cet(), 2005).unwrap();
        for micros in [0, 1, 999_999] {
            let now = Time::from_micros(NOW.as_micros() + micros);
            let m = d.find("12:00:00 x", now).unwrap().unwrap();
            assert_eq!(m.time, Some(ts("2005-08-14T10:00:00Z")), "+{micros}us");
        }
    }

    #[test]
    fn epochs_are_exact_to_the_microsecond() {
        for (text, long, want) in [
            ("1105336801", false, 1_105_336_801_000_000),
            ("1105336801.123456", false, 1_105_336_801_123_456),
            ("1105336801.5", false, 1_105_336_801_500_000),
            ("1105336801123", true, 1_105_336_801_123_000),
            ("1105336801123.456", true, 1_105_336_801_123_456),
            ("1105336801123.4567", true, 1_105_336_801_123_456),
            ("1105336801123456", true, 1_105_336_801_123_456),
            ("1105336801", true, 1_105_336_801_000_000),
        ] {
            assert_eq!(epoch(text, long), Some(Time::from_micros(want)), "{text}");
        }
        assert_eq!(epoch("99999999999999999999", false), None);
        let mut d = DateDetector::new(Some("LEPOCH"), None, cet(), 2005).unwrap();
        assert_eq!(
            find(&mut d, "1105336801123.456 x"),
            Some(Time::from_micros(1_105_336_801_123_456))
        );
    }

    #[test]
    fn zones_and_offsets() {
        assert_eq!(zone_offset("UTC+0200"), Some(120));
        assert_eq!(zone_offset("-05:30"), Some(-330));
        assert_eq!(zone_offset("CEST"), Some(120));
        assert_eq!(zone_offset("XYZ"), None);
        let mut d =
            DateDetector::new(Some("^%Y-%m-%d %H:%M:%S"), Some("UTC"), cet(), 2005).unwrap();
        assert_eq!(
            find(&mut d, "2005-01-10 06:00:01 x"),
            Some(Time::from_secs(1_105_336_801))
        );
    }
}
