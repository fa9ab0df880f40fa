//! `tail -F` on the portcullis file source: prints each line with its resume position.
//!
//! `cargo run -p portcullis-sources --example tail -- FILE [DEV:INO:OFFSET:HASH]`

use std::io::Write;
use std::time::Duration;

use portcullis_sources::{
    FilePosition, FileTail, FileTailOptions, LineSource, Position, ReadStatus, SourceId,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: tail FILE [DEV:INO:OFFSET:HASH]")?;
    let resume = match args.next() {
        Some(s) => {
            let v: Vec<u64> = s.split(':').map(str::parse).collect::<Result<_, _>>()?;
            let [dev, ino, offset, first_line_hash] = v[..] else {
                return Err("position is DEV:INO:OFFSET:HASH".into());
            };
            Some(FilePosition {
                dev,
                ino,
                offset,
                first_line_hash,
            })
        }
        None => None,
    };
    let mut tail = FileTail::open(SourceId(0), &path, resume, FileTailOptions::default())?;
    let mut out = Vec::new();
    let stdout = std::io::stdout();
    loop {
        out.clear();
        if tail.read_batch(&mut out, 1024, Duration::from_secs(3600))? == ReadStatus::Stopped {
            return Ok(());
        }
        let mut w = stdout.lock();
        for l in &out {
            if let Position::File(p) = l.position {
                write!(w, "{}:{}:{}:{} ", p.dev, p.ino, p.offset, p.first_line_hash)?;
            }
            w.write_all(&l.bytes)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
}
