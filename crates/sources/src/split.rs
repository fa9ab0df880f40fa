//! Splitting a byte stream into lines with a length cap, tracking stream offsets.

/// Splits fed bytes at `\n`, keeping at most `max_line` bytes of each line.
///
/// A line longer than the cap is delivered once its newline arrives, cut to `max_line`
/// bytes, with the rest discarded: memory stays bounded and the line's end offset (the
/// resume position) is still exact. A partial last line waits in `pending`.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max_line: usize,
    /// Bytes of the current incomplete line (at most `max_line`).
    pending: Vec<u8>,
    /// The current incomplete line already exceeded `max_line`.
    overflow: bool,
    /// Stream offset just after the last byte fed.
    offset: u64,
    /// Lines delivered cut.
    pub(crate) cut_lines: u64,
}

impl LineSplitter {
    pub(crate) fn new(max_line: usize, offset: u64) -> LineSplitter {
        LineSplitter {
            max_line: max_line.max(1),
            pending: Vec::new(),
            overflow: false,
            offset,
            cut_lines: 0,
        }
    }

    /// Stream offset just after the last byte fed.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Forget any partial line and continue at `offset`.
    pub(crate) fn reset(&mut self, offset: u64) {
        self.pending.clear();
        self.overflow = false;
        self.offset = offset;
    }

    /// Feed bytes; `emit(line, end_offset, cut)` is called for every completed line, at most
    /// `limit` times. Returns the bytes consumed: all of `data`, or up to the newline of the
    /// `limit`-th line (the caller feeds the rest again later).
    pub(crate) fn feed(
        &mut self,
        data: &[u8],
        limit: usize,
        mut emit: impl FnMut(&[u8], u64, bool),
    ) -> usize {
        let base = self.offset;
        let mut start = 0usize;
        for (emitted, nl) in memchr::memchr_iter(b'\n', data).enumerate() {
            if emitted == limit {
                self.offset = base + start as u64;
                return start;
            }
            let end = base + nl as u64 + 1;
            let seg = &data[start..nl];
            if self.pending.is_empty() && !self.overflow {
                let seg = strip_cr(seg);
                if seg.len() > self.max_line {
                    self.cut_lines += 1;
                    emit(&seg[..self.max_line], end, true);
                } else {
                    emit(seg, end, false);
                }
            } else {
                self.push_pending(seg);
                let cut = self.overflow;
                if !cut && self.pending.last() == Some(&b'\r') {
                    self.pending.pop();
                }
                if cut {
                    self.cut_lines += 1;
                }
                emit(&self.pending, end, cut);
                self.pending.clear();
                self.overflow = false;
            }
            start = nl + 1;
        }
        if let Some(rest) = data.get(start..) {
            self.push_pending(rest);
        }
        self.offset = base + data.len() as u64;
        data.len()
    }

    /// The partial last line, if any, as `(bytes, end_offset, cut)`; used when the input
    /// ends or the file is rotated away without a final newline.
    pub(crate) fn take_partial(&mut self) -> Option<(Vec<u8>, u64, bool)> {
        if self.pending.is_empty() && !self.overflow {
            return None;
        }
        let cut = self.overflow;
        if cut {
            self.cut_lines += 1;
        }
        self.overflow = false;
        Some((std::mem::take(&mut self.pending), self.offset, cut))
    }

    fn push_pending(&mut self, seg: &[u8]) {
        let room = self.max_line - self.pending.len();
        if seg.len() > room {
            self.overflow = true;
            self.pending.extend_from_slice(&seg[..room]);
        } else {
            self.pending.extend_from_slice(seg);
        }
    }
}

fn strip_cr(seg: &[u8]) -> &[u8] {
    match seg.split_last() {
        Some((b'\r', rest)) => rest,
        _ => seg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: usize, chunks: &[&[u8]]) -> (Vec<(Vec<u8>, u64, bool)>, LineSplitter) {
        let mut s = LineSplitter::new(max, 0);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, usize::MAX, |l, e, cut| out.push((l.to_vec(), e, cut)));
        }
        (out, s)
    }

    #[test]
    fn splits_across_chunks_with_offsets() {
        let (out, mut s) = run(100, &[b"ab", b"c\nde\r\n", b"f"]);
        assert_eq!(
            out,
            vec![(b"abc".to_vec(), 4, false), (b"de".to_vec(), 8, false)]
        );
        assert_eq!(s.take_partial(), Some((b"f".to_vec(), 9, false)));
        assert_eq!(s.take_partial(), None);
    }

    #[test]
    fn cuts_long_lines_and_keeps_end_offset() {
        let (out, s) = run(4, &[b"0123456789\nxy\n", b"abc", b"defgh", b"ij\nk\n"]);
        assert_eq!(
            out,
            vec![
                (b"0123".to_vec(), 11, true),
                (b"xy".to_vec(), 14, false),
                (b"abcd".to_vec(), 25, true),
                (b"k".to_vec(), 27, false),
            ]
        );
        assert_eq!(s.cut_lines, 2);
    }

    #[test]
    fn limit_stops_after_a_line() {
        let mut s = LineSplitter::new(100, 0);
        let mut out = Vec::new();
        let data = b"a\nbb\nccc\n";
        let used = s.feed(data, 2, |l, e, _| out.push((l.to_vec(), e)));
        assert_eq!(used, 5);
        assert_eq!(s.offset(), 5);
        let used2 = s.feed(&data[used..], 2, |l, e, _| out.push((l.to_vec(), e)));
        assert_eq!(used2, 4);
        assert_eq!(
            out,
            vec![
                (b"a".to_vec(), 2),
                (b"bb".to_vec(), 5),
                (b"ccc".to_vec(), 9)
            ]
        );
    }

    #[test]
    fn invalid_utf8_untouched() {
        let (out, _) = run(100, &[b"\xff\xfe\x00ok\n"]);
        assert_eq!(out[0].0, b"\xff\xfe\x00ok".to_vec());
    }
}
