//! `portcullis test-filter FILTER LOG|LINE`: the `fail2ban-regex` equivalent for native
//! filters (built-in name or `.toml`) and Fail2Ban filters (`.conf` path or `filter.d` name).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use portcullis_core::Time;
use portcullis_core::date::DateParser;
use portcullis_core::filter::{Filter, LineMatcher, LineOutcome};
use portcullis_pcre2::{Fail2BanFilter, filter_path, load_filter};

/// Arguments of `test-filter`.
#[derive(Debug, Args)]
pub struct TestFilterArgs {
    /// Native filter (built-in name or .toml file) or Fail2Ban filter (.conf file, or a
    /// name in FAIL2BAN_DIR/filter.d).
    pub filter: String,
    /// A log file, or a single log line.
    pub log: String,
    /// Fail2Ban configuration directory for filter names.
    #[arg(long, default_value = "/etc/fail2ban")]
    pub fail2ban_dir: PathBuf,
    /// Fail2Ban filter arguments, like `mode=aggressive` (repeatable).
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
    /// Print the lines that matched.
    #[arg(long)]
    pub print_matched: bool,
    /// Print the lines that did not match.
    #[arg(long)]
    pub print_missed: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

enum Engine {
    Native(Box<LineMatcher>),
    Fail2Ban(Box<Fail2BanFilter>),
}

#[derive(Default)]
struct Counts {
    lines: u64,
    matched: u64,
    missed: u64,
    ignored: u64,
    errors: u64,
    hits: Vec<u64>,
}

fn open_engine(a: &TestFilterArgs, tz: &jiff::tz::TimeZone) -> Result<(Engine, Vec<String>)> {
    let is_native =
        a.filter.ends_with(".toml") || portcullis_core::filter::builtin(&a.filter).is_some();
    if is_native {
        let filter = if let Some(text) = portcullis_core::filter::builtin(&a.filter) {
            Filter::from_toml(text, &format!("<built-in {}>", a.filter))
                .map_err(|e| anyhow!("{e}"))?
        } else {
            let text = std::fs::read_to_string(&a.filter)
                .with_context(|| format!("cannot read {}", a.filter))?;
            Filter::from_toml(&text, &a.filter).map_err(|e| anyhow!("{e}"))?
        };
        let names = filter.rules().iter().map(|r| r.id.to_string()).collect();
        let m =
            LineMatcher::new(filter, DateParser::new(tz.clone())).map_err(|e| anyhow!("{e}"))?;
        return Ok((Engine::Native(Box::new(m)), names));
    }
    let path = filter_path(&a.fail2ban_dir, &a.filter);
    let args: Vec<(String, String)> = a
        .args
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow!("--arg takes KEY=VALUE"))?;
    let opts = load_filter(&path, &args)
        .with_context(|| format!("cannot read filter {}", path.display()))?;
    let year = tz.to_datetime(jiff::Timestamp::now()).year();
    let f = Fail2BanFilter::new(&opts, tz.clone(), year)
        .with_context(|| format!("filter {}", path.display()))?;
    let names = f.failregex().map(str::to_owned).collect();
    Ok((Engine::Fail2Ban(Box::new(f)), names))
}

/// Run `test-filter`.
pub fn run(a: &TestFilterArgs) -> Result<std::process::ExitCode> {
    let tz = jiff::tz::TimeZone::system();
    let (mut engine, names) = open_engine(a, &tz)?;
    let mut counts = Counts {
        hits: vec![0; names.len()],
        ..Counts::default()
    };
    let read_time = Time::from(jiff::Timestamp::now());
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let started = Instant::now();
    let mut events = Vec::new();
    let mut handle = |line: &str, out: &mut dyn Write| -> Result<()> {
        counts.lines += 1;
        let (hit, ignored, error) = match &mut engine {
            Engine::Native(m) => {
                events.clear();
                match m.feed_line(line.as_bytes(), read_time, &mut events) {
                    LineOutcome::Matched { rule } => (Some(usize::from(rule)), false, false),
                    LineOutcome::Ignored { .. } => (None, true, false),
                    LineOutcome::Bad(portcullis_core::filter::BadLine::EngineError) => {
                        (None, false, true)
                    }
                    _ => (None, false, false),
                }
            }
            Engine::Fail2Ban(f) => {
                let r = f.process_line(line, read_time);
                let hit = r.failures.iter().find(|x| !x.is_nofail()).map(|x| x.regex);
                (hit, r.ignored.is_some(), !r.errors.is_empty())
            }
        };
        if error {
            counts.errors += 1;
        }
        if let Some(i) = hit {
            counts.matched += 1;
            if let Some(h) = counts.hits.get_mut(i) {
                *h += 1;
            }
            if a.print_matched {
                writeln!(out, "{line}")?;
            }
        } else if ignored {
            counts.ignored += 1;
        } else {
            counts.missed += 1;
            if a.print_missed {
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    };
    let path = Path::new(&a.log);
    if path.is_file() {
        // The shared reader: memchr over large buffers, no copy for most lines, .gz too.
        let mut failed: Option<anyhow::Error> = None;
        crate::pipeline::for_each_line(path, |raw| {
            if failed.is_some() {
                return;
            }
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = String::from_utf8_lossy(raw);
            if let Err(e) = handle(&line, &mut out) {
                failed = Some(e);
            }
        })
        .with_context(|| format!("cannot read {}", a.log))?;
        if let Some(e) = failed {
            return Err(e);
        }
    } else {
        handle(&a.log, &mut out)?;
    }
    let elapsed = started.elapsed();
    if a.json {
        let v = serde_json::json!({
            "filter": a.filter,
            "lines": counts.lines,
            "matched": counts.matched,
            "missed": counts.missed,
            "ignored": counts.ignored,
            "errors": counts.errors,
            "regex_hits": names.iter().zip(&counts.hits).map(|(n, h)| serde_json::json!({"regex": n, "hits": h})).collect::<Vec<_>>(),
            "seconds": elapsed.as_secs_f64(),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "Lines: {}", counts.lines)?;
        writeln!(
            out,
            "Matched: {}   Missed: {}   Ignored: {}   Errors: {}",
            counts.matched, counts.missed, counts.ignored, counts.errors
        )?;
        writeln!(out, "Hits per regex:")?;
        for (i, (n, h)) in names.iter().zip(&counts.hits).enumerate() {
            writeln!(out, "  #{i:<3} {h:>9}  {}", n.escape_debug())?;
        }
        let rate = counts.lines as f64 / elapsed.as_secs_f64().max(1e-9);
        writeln!(
            out,
            "Time: {:.3} s ({rate:.0} lines/s)",
            elapsed.as_secs_f64()
        )?;
    }
    out.flush()?;
    Ok(if counts.matched > 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}
