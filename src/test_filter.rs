//! `portcullis test-filter FILTER LOG|LINE`: the `fail2ban-regex` equivalent for native
//! filters (built-in name or `.toml`) and Fail2Ban filters (`.conf` path or `filter.d` name).
//!
//! Lines are counted as fail2ban-regex counts them: **matched** — the line gave a failure;
//! **ignored** — a regex matched but the line gives none (a Fail2Ban `<F-NOFAIL>` match, or
//! an `ignoreregex`; fail2ban-regex counts a line with any `nofail` match as ignored, so does
//! this; for a native filter, a rule whose events weigh nothing: logins, info lines);
//! **missed** — nothing matched. For a Fail2Ban filter the three numbers equal
//! fail2ban-regex's on the same file (`tests/fail2ban_e2e.rs` checks it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, anyhow};
use clap::Args;
use portcullis_config::FilterRef;
use portcullis_core::EventKind;
use portcullis_core::filter::{BadLine, EventMatcher, LineOutcome};
use portcullis_pcre2::filter_path;
use portcullis_sources::{ReplayReader, SourceId};

use crate::filters::compile_filter;

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

#[derive(Default)]
struct Counts {
    lines: u64,
    matched: u64,
    missed: u64,
    ignored: u64,
    hits: Vec<u64>,
    /// Failures per address, for `--json`.
    addresses: std::collections::HashMap<std::net::IpAddr, u64>,
}

/// The filter `a.filter` names, resolved as a jail's filter is: a built-in name or `.toml`
/// file is native, anything else a Fail2Ban filter (a `.conf` path, or a name in
/// `FAIL2BAN_DIR/filter.d`) with the `--arg`s.
fn filter_ref(a: &TestFilterArgs) -> Result<FilterRef> {
    if a.filter.ends_with(".toml") {
        return Ok(FilterRef::File(PathBuf::from(&a.filter)));
    }
    if portcullis_core::filter::builtin(&a.filter).is_some() {
        return Ok(FilterRef::Named(a.filter.clone()));
    }
    let args: Vec<(String, String)> = a
        .args
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow!("--arg takes KEY=VALUE"))?;
    Ok(FilterRef::Fail2Ban {
        path: filter_path(&a.fail2ban_dir, &a.filter),
        args,
    })
}

/// Run `test-filter`.
pub fn run(a: &TestFilterArgs) -> Result<std::process::ExitCode> {
    let tz = jiff::tz::TimeZone::system();
    let config = crate::config::load_offline(None)?;
    let filter = compile_filter(
        &filter_ref(a)?,
        "test-filter",
        &config.daemon.filter_dir,
        &tz,
    )?;
    let names = filter.rule_texts();
    let f2b = filter.is_fail2ban();
    let mut matcher = filter.matcher();
    let mut counts = Counts {
        hits: vec![0; names.len()],
        ..Counts::default()
    };
    let read_time = portcullis_sources::wall_clock();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let started = Instant::now();
    let mut events = Vec::new();
    let mut handle = |line: &[u8], out: &mut dyn Write| -> Result<()> {
        counts.lines += 1;
        events.clear();
        let outcome = matcher.feed_line(line, read_time, &mut events);
        // A line that matched but gives no failure is ignored, as fail2ban-regex has it (a
        // nofail match wins even beside a failure on the same line, as there).
        let fails = |e: &&portcullis_core::Event| e.weight > portcullis_core::Weight::ZERO;
        let nofail = events.iter().any(|e| e.kind == EventKind::Info);
        let hit = match outcome {
            LineOutcome::Matched { rule }
                if !(nofail && f2b) && events.iter().any(|e| fails(&e)) =>
            {
                Some(usize::from(rule))
            }
            LineOutcome::Bad(BadLine::InvalidAddress { rule }) => Some(usize::from(rule)),
            LineOutcome::Matched { .. } | LineOutcome::Ignored { .. } => {
                counts.ignored += 1;
                return Ok(());
            }
            _ => None,
        };
        for e in events.iter().filter(fails) {
            *counts.addresses.entry(e.addr).or_default() += u64::from(e.count.max(1));
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(i) = hit {
            counts.matched += 1;
            if let Some(h) = counts.hits.get_mut(i) {
                *h += 1;
            }
            if a.print_matched {
                writeln!(out, "{}", String::from_utf8_lossy(line))?;
            }
        } else {
            counts.missed += 1;
            if a.print_missed {
                writeln!(out, "{}", String::from_utf8_lossy(line))?;
            }
        }
        Ok(())
    };
    let path = Path::new(&a.log);
    if path.is_file() {
        // The one reader: memchr over large buffers, no copy for most lines, .gz too.
        let mut failed: Option<anyhow::Error> = None;
        ReplayReader::open(SourceId(0), path)?.for_each_line(|line| {
            if failed.is_none()
                && let Err(e) = handle(line, &mut out)
            {
                failed = Some(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
    } else {
        handle(a.log.as_bytes(), &mut out)?;
    }
    let errors = matcher.stats().search_errors;
    // Lines whose prefix was not understood are among the missed (--print-missed shows
    // them); messages their writer cut gave only addresses no client text can precede.
    let (unparsed, cut) = (matcher.stats().unparsed, matcher.stats().cut);
    let elapsed = started.elapsed();
    if a.json {
        let mut by_count: Vec<_> = counts.addresses.iter().collect();
        by_count.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        let addresses: Vec<_> = by_count
            .into_iter()
            .map(|(addr, n)| serde_json::json!({"addr": addr.to_string(), "failures": n}))
            .collect();
        let v = serde_json::json!({
            "filter": a.filter,
            "lines": counts.lines,
            "matched": counts.matched,
            "missed": counts.missed,
            "ignored": counts.ignored,
            "errors": errors,
            "unparsed": unparsed,
            "cut": cut,
            "addresses": addresses,
            "regex_hits": names.iter().zip(&counts.hits).map(|(n, h)| serde_json::json!({"regex": n, "hits": h})).collect::<Vec<_>>(),
            "seconds": elapsed.as_secs_f64(),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "Lines: {} lines, {} ignored, {} matched, {} missed   Errors: {}",
            counts.lines, counts.ignored, counts.matched, counts.missed, errors
        )?;
        writeln!(out, "Addresses with failures: {}", counts.addresses.len())?;
        if unparsed + cut > 0 {
            writeln!(
                out,
                "Not understood (no known timestamp and header; among the missed): {unparsed}   Cut by their writer: {cut}"
            )?;
        }
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
