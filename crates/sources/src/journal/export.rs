//! An incremental parser of the journal export format (`journalctl -o export`).
//!
//! Entries are fields followed by a blank line. A field is `NAME=value\n` (text without a
//! newline) or `NAME\n<u64 little-endian length><bytes>\n` (binary). Field names are `[A-Z0-9_]`.
//! The parser takes input in arbitrary chunks, keeps at most `max_field` bytes of a value (the
//! rest is skipped and counted), and on garbage skips to the next blank line. It never panics.

/// Longest field name accepted; journald's own limit is 64.
const MAX_NAME: usize = 256;
/// Fields kept per entry; more are parsed and dropped.
const MAX_FIELDS: usize = 1024;

/// One journal entry: its fields in order of appearance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportEntry {
    /// `(name, value)` pairs; values are raw bytes, cut to the parser's `max_field`.
    pub fields: Vec<(Box<str>, Vec<u8>)>,
}

impl ExportEntry {
    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Serialise in export format (text form where possible), for tests and fixtures.
    pub fn to_export(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            if value.contains(&b'\n') {
                out.push(b'\n');
                out.extend_from_slice(&(value.len() as u64).to_le_bytes());
                out.extend_from_slice(value);
            } else {
                out.push(b'=');
                out.extend_from_slice(value);
            }
            out.push(b'\n');
        }
        out.push(b'\n');
        out
    }
}

/// Counters of malformed or oversized input.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Times the parser met garbage and skipped to the next blank line.
    pub resyncs: u64,
    /// Field values cut to `max_field`.
    pub cut_fields: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a field or of the blank line ending an entry.
    Field,
    /// Discarding the rest of an oversized text value, up to its newline.
    SkipText,
    /// Discarding `remaining` bytes of an oversized binary value, then its newline.
    SkipBinary { remaining: u64 },
    /// After garbage: discarding up to a blank line; `at_line_start` after a newline.
    Resync { at_line_start: bool },
}

/// Incremental export-format parser: [`push`](ExportParser::push) bytes, then take entries
/// with [`next_entry`](ExportParser::next_entry) until it returns `None`.
#[derive(Debug)]
pub struct ExportParser {
    buf: Vec<u8>,
    pos: usize,
    state: State,
    entry: ExportEntry,
    max_field: usize,
    stats: ExportStats,
}

impl ExportParser {
    /// A parser that keeps at most `max_field` bytes of each value.
    pub fn new(max_field: usize) -> ExportParser {
        ExportParser {
            buf: Vec::new(),
            pos: 0,
            state: State::Field,
            entry: ExportEntry::default(),
            max_field: max_field.max(1),
            stats: ExportStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ExportStats {
        self.stats
    }

    /// Forget buffered input and any entry in progress (the producer was restarted).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.state = State::Field;
        self.entry = ExportEntry::default();
    }

    /// Add input.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete entry, or `None` when more input is needed.
    pub fn next_entry(&mut self) -> Option<ExportEntry> {
        loop {
            let rest = self.buf.get(self.pos..).unwrap_or(&[]);
            if rest.is_empty() {
                return None;
            }
            match self.state {
                State::Resync { at_line_start } => {
                    let Some(nl) = memchr::memchr(b'\n', rest) else {
                        self.pos = self.buf.len();
                        self.state = State::Resync {
                            at_line_start: false,
                        };
                        return None;
                    };
                    self.pos += nl + 1;
                    if nl == 0 && at_line_start {
                        self.state = State::Field;
                    } else {
                        self.state = State::Resync {
                            at_line_start: true,
                        };
                    }
                }
                State::SkipText => match memchr::memchr(b'\n', rest) {
                    Some(nl) => {
                        self.pos += nl + 1;
                        self.state = State::Field;
                    }
                    None => {
                        self.pos = self.buf.len();
                        return None;
                    }
                },
                State::SkipBinary { remaining } => {
                    let avail = rest.len() as u64;
                    if avail <= remaining {
                        self.pos = self.buf.len();
                        self.state = State::SkipBinary {
                            remaining: remaining - avail,
                        };
                        return None;
                    }
                    let skip = remaining as usize;
                    self.pos += skip;
                    if rest.get(skip) == Some(&b'\n') {
                        self.pos += 1;
                        self.state = State::Field;
                    } else {
                        self.garbage();
                    }
                }
                State::Field => {
                    if rest.first() == Some(&b'\n') {
                        self.pos += 1;
                        if !self.entry.fields.is_empty() {
                            return Some(std::mem::take(&mut self.entry));
                        }
                        continue;
                    }
                    let mut sink = FieldSink {
                        entry: &mut self.entry,
                        stats: &mut self.stats,
                        state: &mut self.state,
                        max_field: self.max_field,
                    };
                    match sink.field(rest) {
                        Step::NeedMore => return None,
                        Step::Consumed(n) => self.pos += n,
                        Step::Garbage => self.garbage(),
                    }
                }
            }
        }
    }

    fn garbage(&mut self) {
        self.stats.resyncs += 1;
        self.entry = ExportEntry::default();
        self.state = State::Resync {
            at_line_start: false,
        };
    }
}

/// Where a parsed field goes; borrowed apart from the input buffer.
struct FieldSink<'a> {
    entry: &'a mut ExportEntry,
    stats: &'a mut ExportStats,
    state: &'a mut State,
    max_field: usize,
}

impl FieldSink<'_> {
    /// Parse one field at the start of `rest` (not a blank line).
    fn field(&mut self, rest: &[u8]) -> Step {
        let window = rest.get(..rest.len().min(MAX_NAME + 1)).unwrap_or(rest);
        let Some(i) = memchr::memchr2(b'=', b'\n', window) else {
            return if rest.len() > MAX_NAME {
                Step::Garbage
            } else {
                Step::NeedMore
            };
        };
        let name = window.get(..i).unwrap_or(&[]);
        if name.is_empty()
            || !name
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        {
            return Step::Garbage;
        }
        let name: Box<str> = String::from_utf8_lossy(name).into();
        let after = i + 1;
        let value_area = rest.get(after..).unwrap_or(&[]);
        if window.get(i) == Some(&b'=') {
            match memchr::memchr(b'\n', value_area) {
                Some(nl) => {
                    let v = value_area.get(..nl.min(self.max_field)).unwrap_or(&[]);
                    self.add(name, v, nl as u64);
                    Step::Consumed(after + nl + 1)
                }
                None if value_area.len() > self.max_field => {
                    let v = value_area.get(..self.max_field).unwrap_or(&[]);
                    self.add(name, v, u64::MAX);
                    *self.state = State::SkipText;
                    Step::Consumed(rest.len())
                }
                None => Step::NeedMore,
            }
        } else {
            let Some(len_bytes) = value_area.get(..8) else {
                return Step::NeedMore;
            };
            let mut le = [0u8; 8];
            le.copy_from_slice(len_bytes);
            let len = u64::from_le_bytes(le);
            let data = value_area.get(8..).unwrap_or(&[]);
            if len <= self.max_field as u64 {
                let len = len as usize;
                match data.get(len) {
                    None => Step::NeedMore,
                    Some(b'\n') => {
                        let v = data.get(..len).unwrap_or(&[]);
                        self.add(name, v, len as u64);
                        Step::Consumed(after + 8 + len + 1)
                    }
                    Some(_) => Step::Garbage,
                }
            } else {
                let Some(v) = data.get(..self.max_field) else {
                    return Step::NeedMore;
                };
                self.add(name, v, len);
                *self.state = State::SkipBinary {
                    remaining: len - self.max_field as u64,
                };
                Step::Consumed(after + 8 + self.max_field)
            }
        }
    }

    fn add(&mut self, name: Box<str>, value: &[u8], full_len: u64) {
        if full_len > value.len() as u64 {
            self.stats.cut_fields += 1;
        }
        if self.entry.fields.len() < MAX_FIELDS {
            self.entry.fields.push((name, value.to_vec()));
        }
    }
}

enum Step {
    NeedMore,
    Consumed(usize),
    Garbage,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(p: &mut ExportParser, data: &[u8], chunk: usize) -> Vec<ExportEntry> {
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            p.push(c);
            while let Some(e) = p.next_entry() {
                out.push(e);
            }
        }
        out
    }

    fn entry(fields: &[(&str, &[u8])]) -> ExportEntry {
        ExportEntry {
            fields: fields
                .iter()
                .map(|(n, v)| (Box::<str>::from(*n), v.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn text_and_binary_fields() {
        let mut input = b"__CURSOR=s=1;i=1\nMESSAGE=hello\n\n".to_vec();
        input.extend_from_slice(b"MESSAGE\n");
        input.extend_from_slice(&6u64.to_le_bytes());
        input.extend_from_slice(b"a\nb\x00\xffc\n_PID=42\n\n");
        for chunk in [1, 2, 3, 7, 1000] {
            let mut p = ExportParser::new(1024);
            let got = parse_all(&mut p, &input, chunk);
            assert_eq!(
                got,
                vec![
                    entry(&[("__CURSOR", b"s=1;i=1"), ("MESSAGE", b"hello")]),
                    entry(&[("MESSAGE", b"a\nb\x00\xffc"), ("_PID", b"42")]),
                ],
                "chunk {chunk}"
            );
            assert_eq!(p.stats(), ExportStats::default());
        }
    }

    #[test]
    fn oversized_fields_are_cut() {
        let mut input = b"MESSAGE=0123456789\nA=b\n\n".to_vec();
        input.extend_from_slice(b"MESSAGE\n");
        input.extend_from_slice(&12u64.to_le_bytes());
        input.extend_from_slice(b"abcdefghijkl\nA=c\n\n");
        for chunk in [1, 5, 1000] {
            let mut p = ExportParser::new(4);
            let got = parse_all(&mut p, &input, chunk);
            assert_eq!(
                got,
                vec![
                    entry(&[("MESSAGE", b"0123"), ("A", b"b")]),
                    entry(&[("MESSAGE", b"abcd"), ("A", b"c")]),
                ],
                "chunk {chunk}"
            );
            assert_eq!(p.stats().cut_fields, 2);
        }
    }

    #[test]
    fn garbage_resyncs_at_blank_line() {
        let input = b"lower=case\nMESSAGE=lost\n\nMESSAGE=kept\n\n";
        let mut p = ExportParser::new(64);
        assert_eq!(
            parse_all(&mut p, input, 3),
            vec![entry(&[("MESSAGE", b"kept")])]
        );
        assert_eq!(p.stats().resyncs, 1);
        // A binary field whose data is not followed by a newline.
        let mut bad = b"MESSAGE\n".to_vec();
        bad.extend_from_slice(&2u64.to_le_bytes());
        bad.extend_from_slice(b"abX\n\nMESSAGE=ok\n\n");
        let mut p = ExportParser::new(64);
        assert_eq!(
            parse_all(&mut p, &bad, 1000),
            vec![entry(&[("MESSAGE", b"ok")])]
        );
        // A huge declared length is skipped without allocating it.
        let mut huge = b"MESSAGE\n".to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        huge.extend_from_slice(b"abc");
        let mut p = ExportParser::new(64);
        assert!(parse_all(&mut p, &huge, 2).is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..2000),
                                   chunk in 1usize..64, max in 1usize..100) {
            let mut p = ExportParser::new(max);
            for e in parse_all(&mut p, &data, chunk) {
                for (_, v) in &e.fields {
                    prop_assert!(v.len() <= max);
                }
            }
        }

        #[test]
        fn round_trips_in_any_chunking(
            entries in proptest::collection::vec(
                proptest::collection::vec(
                    ("[A-Z_][A-Z0-9_]{0,10}", proptest::collection::vec(any::<u8>(), 0..40)),
                    1..6),
                0..6),
            chunk in 1usize..50)
        {
            let entries: Vec<ExportEntry> = entries.into_iter().map(|fs| ExportEntry {
                fields: fs.into_iter().map(|(n, v)| (n.into_boxed_str(), v)).collect(),
            }).collect();
            let mut data = Vec::new();
            for e in &entries {
                data.extend_from_slice(&e.to_export());
            }
            let mut p = ExportParser::new(64);
            prop_assert_eq!(parse_all(&mut p, &data, chunk), entries);
        }
    }
}
