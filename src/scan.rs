//! `portcullis scan`: replay log files through filters and jails with log time as the clock.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use portcullis_core::event::{Alert, Ban, parse_addr};
use portcullis_core::filter::{AttemptMerger, Stats, Unmerged, UnmergedMatcher};
use portcullis_core::{Decision, Event, EventKind, Time};
use serde::Serialize;

use crate::cli::ScanArgs;
use crate::logfiles::rotation_order;
use crate::offline::{OfflineJail, load_jails};
use crate::tally::AddrTally;
use portcullis_sources::file_reference_time;

use crate::text::escape_terminal;

/// Everything `scan` learned about one address.
#[derive(Debug, Default)]
struct AddrReport {
    tally: AddrTally,
    bans: Vec<BanLite>,
}

/// A ban as `scan` keeps it: no strings until output.
#[derive(Debug, Clone, Copy)]
struct BanLite {
    target: ipnet::IpNet,
    since: Time,
    until: Option<Time>,
    ban_no: u32,
    /// Index into the jail list.
    jail: u16,
}

/// A ban as `scan --json` prints it.
#[derive(Debug, Serialize)]
struct BanRecord<'a> {
    jail: &'a str,
    target: String,
    since: String,
    until: Option<String>,
    duration_secs: Option<u64>,
    permanent: bool,
    ban_no: u32,
}

impl BanLite {
    fn from_ban(ban: &Ban, jail: u16) -> BanLite {
        BanLite {
            target: ban.target,
            since: ban.since,
            until: ban.until,
            ban_no: ban.ban_no,
            jail,
        }
    }

    fn record<'a>(&self, jails: &'a [String]) -> BanRecord<'a> {
        BanRecord {
            jail: jails
                .get(usize::from(self.jail))
                .map_or("?", String::as_str),
            target: self.target.to_string(),
            since: self.since.to_string(),
            until: self.until.map(|t| t.to_string()),
            duration_secs: self.until.map(|u| u.since(self.since).as_secs()),
            permanent: self.until.is_none(),
            ban_no: self.ban_no,
        }
    }
}

impl AddrReport {
    fn observe(&mut self, ev: &Event, hasher: &RandomState) {
        self.tally.record(ev.kind, ev.count, ev.time);
        if let Some(user) = &ev.user
            && ev.kind != EventKind::Success
        {
            self.tally.tried_user(user, hasher);
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    files: usize,
    lines: u64,
    matched: u64,
    ignored: u64,
    unmatched: u64,
    /// Of `unmatched`: lines whose prefix (timestamp, header) was not understood.
    unparsed: u64,
    bad_lines: u64,
    /// Messages their writer cut (sshd's 500 bytes; see core's `filter::cut`): only an
    /// address no client text can precede was taken from them.
    cut: u64,
    /// Events whose time was not believed (after the file's last write, an unconfirmed
    /// jump, far in the past): they did not move the clock (summed over jails).
    bad_time: u64,
    attempts: u64,
    probes: u64,
    successes: u64,
    addresses: usize,
    bans: u64,
    permanent_bans: u64,
    breaches: u64,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct FileSummary {
    path: String,
    lines: u64,
    bytes: u64,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct BreachRecord {
    jail: String,
    addr: String,
    user: Option<String>,
    failures: u32,
    time: String,
}

/// Run `scan`; exit code 0 = done (1 = some files could not be read).
pub fn run(args: &ScanArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let explain: Option<IpAddr> = match &args.explain {
        Some(a) => Some(parse_addr(a).with_context(|| format!("--explain: not an address: {a}"))?),
        None => None,
    };
    let mut jails = load_jails(
        args.config.as_deref(),
        args.fail2ban_config.as_deref(),
        args.jail.as_deref(),
        args.timezone.as_deref(),
    )?;
    if jails.is_empty() {
        bail!("no jail to run (check --jail and the configuration)");
    }

    let files = rotation_order(&args.files);
    let total_bytes: u64 = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = progress_bar(total_bytes);

    let mut addrs: HashMap<IpAddr, AddrReport> = HashMap::new();
    let mut totals = Totals::default();
    let mut summaries = Vec::new();
    let mut breaches = Vec::new();
    let mut failed_files = 0usize;
    let mut events: Vec<Event> = Vec::new();
    let stderr = io::stderr();
    let hasher = RandomState::new();
    let jail_names: Vec<String> = jails.iter().map(|j| j.name().to_string()).collect();
    let mut site = crate::campaigns::OfflineSite::load(
        args.config.as_deref(),
        args.fail2ban_config.as_deref(),
        &jail_names,
    )?;

    let mut parallel = Parallel::plan(&jails, explain);
    for path in &files {
        let reference = file_reference_time(path);
        for jail in &mut jails {
            jail.begin_input(reference);
        }
        let mut lines = 0u64;
        let result = if let Some(par) = parallel.as_mut() {
            let (n, result) = par.run_file(path, reference, progress.as_ref(), |j, ev| {
                addrs.entry(ev.addr).or_default().observe(ev, &hasher);
                jails[j].handle_event(ev, |e, _| site.event(j, e));
                drain(
                    &mut jails[j],
                    j,
                    &mut addrs,
                    &mut breaches,
                    &mut totals,
                    None,
                );
            });
            lines = n;
            result
        } else {
            read_lines(path, |line| {
                lines += 1;
                if let Some(pb) = &progress {
                    pb.inc(line.len() as u64 + 1);
                }
                for (j, jail) in jails.iter_mut().enumerate() {
                    events.clear();
                    jail.feed_line(line, reference, &mut events);
                    for ev in &events {
                        if explain == Some(ev.addr) {
                            let _ = writeln!(
                                stderr.lock(),
                                "explain: [{}] {} {} x{} weight {} rule {}: {}",
                                jail.name(),
                                ev.time,
                                ev.kind.as_str(),
                                ev.count,
                                ev.weight,
                                jail.rule_name(ev.rule),
                                escape_terminal(&String::from_utf8_lossy(line))
                            );
                        }
                        addrs.entry(ev.addr).or_default().observe(ev, &hasher);
                        jail.handle_event(ev, |e, _| site.event(j, e));
                    }
                    drain(jail, j, &mut addrs, &mut breaches, &mut totals, explain);
                }
            })
        };
        totals.lines += lines;
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match result {
            Ok(()) => summaries.push(FileSummary {
                path: path.display().to_string(),
                lines,
                bytes,
                error: None,
            }),
            Err(err) => {
                failed_files += 1;
                eprintln!("portcullis: {}: {err:#}", path.display());
                summaries.push(FileSummary {
                    path: path.display().to_string(),
                    lines,
                    bytes,
                    error: Some(format!("{err:#}")),
                });
            }
        }
    }
    for (j, jail) in jails.iter_mut().enumerate() {
        // Tries the matcher held for their connection's outcome, which no line settled.
        events.clear();
        match parallel.as_mut() {
            Some(par) => par.mergers[j].finish(&mut events),
            None => jail.finish_matching(&mut events),
        }
        for ev in &events {
            addrs.entry(ev.addr).or_default().observe(ev, &hasher);
            jail.handle_event(ev, |e, _| site.event(j, e));
        }
        jail.finish(|e, _| site.event(j, e));
        drain(jail, j, &mut addrs, &mut breaches, &mut totals, explain);
        totals.bad_time += jail.bad_time().total();
        let st = jail.stats();
        totals.matched += st.matched;
        totals.ignored += st.ignored;
        totals.unmatched += st.unmatched;
        totals.unparsed += st.unparsed;
        totals.bad_lines += st.bad;
        totals.cut += st.cut;
    }
    if let Some(par) = &parallel {
        totals.matched += par.stats.matched;
        totals.ignored += par.stats.ignored;
        totals.unmatched += par.stats.unmatched;
        totals.unparsed += par.stats.unparsed;
        totals.bad_lines += par.stats.bad;
        totals.cut += par.stats.cut;
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    totals.files = files.len();
    totals.addresses = addrs.len();
    for r in addrs.values() {
        totals.attempts += r.tally.attempts;
        totals.probes += r.tally.probes;
        totals.successes += r.tally.successes;
    }
    let campaigns = site.finish();
    totals.seconds = started.elapsed().as_secs_f64();

    let mut rows: Vec<(IpAddr, AddrReport)> = addrs.into_iter().collect();
    rows.sort_by(|a, b| {
        (b.1.tally.attempts, b.1.tally.probes, a.0).cmp(&(
            a.1.tally.attempts,
            a.1.tally.probes,
            b.0,
        ))
    });
    // GeoIP: silent and free when no database is configured or found.
    let geo_settings = match &args.fail2ban_config {
        Some(_) => crate::config::load_offline(None)?.geoip,
        None => crate::config::load_offline(args.config.as_deref())?.geoip,
    };
    let geo = crate::geo::open_offline(&geo_settings, &args.geoip);
    let out = io::stdout();
    let mut out = io::BufWriter::new(out.lock());
    if args.json {
        write_json(
            &mut out,
            &totals,
            &summaries,
            &jail_names,
            Found {
                rows: &rows,
                breaches: &breaches,
                geo: &geo,
                campaigns: &campaigns,
            },
        )?;
    } else {
        write_human(
            &mut out, &totals, &summaries, &rows, &breaches, args.limit, &geo,
        )?;
        if !campaigns.is_empty() {
            writeln!(out, "\nCAMPAIGNS (site-wide, docs/campaigns.md):")?;
            for l in crate::campaigns::human_lines(&campaigns) {
                writeln!(out, "  {l}")?;
            }
        }
    }
    crate::geo::warn_offline(&geo);
    out.flush()?;
    Ok(if failed_files > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Bytes of whole lines handed to a worker thread at a time: large enough that channel
/// traffic is negligible (about 600 lines), small enough that memory stays low (measured on
/// the 100k-attacker file: 1 MiB chunks peak at 72 MiB, 64 KiB at 60 MiB, same speed).
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks (per worker) read ahead or matched but not yet consumed.
const QUEUE_CHUNKS: usize = 2;

/// Matching on worker threads: the reader splits the file into chunks of whole lines, the
/// workers run core's per-line stage ([`UnmergedMatcher`]: date, header, regex, address) on
/// forks, and the calling thread takes their events back in file order and settles their
/// counts with one [`AttemptMerger`] per jail, so counts stay exact across chunk boundaries.
/// Chunk `k` goes to worker `k % workers`, and results are taken back in the same order.
struct Parallel {
    /// One per-line stage per jail, forked per worker and file.
    templates: Vec<UnmergedMatcher>,
    /// Attempt merging per jail, across files (like the sequential matcher's own).
    mergers: Vec<AttemptMerger>,
    workers: usize,
    /// Line counters summed over all workers and jails (only the four `scan` reports).
    stats: Stats,
}

impl Parallel {
    /// `None` (read sequentially) with `--explain` (it prints the line of each event), a
    /// Fail2Ban filter (its matcher keeps multi-line state) or a single core.
    fn plan(jails: &[OfflineJail], explain: Option<IpAddr>) -> Option<Parallel> {
        if explain.is_some() {
            return None;
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        if workers < 2 {
            return None;
        }
        Parallel::new(jails, workers)
    }

    /// `workers` threads matching for `jails`; `None` if a jail's filter is not native.
    fn new(jails: &[OfflineJail], workers: usize) -> Option<Parallel> {
        let mut templates = Vec::new();
        for jail in jails {
            let Ok(stage) = jail.native_matcher()?.unmerged();
            templates.push(stage);
        }
        Some(Parallel {
            mergers: jails.iter().map(|_| AttemptMerger::new()).collect(),
            templates,
            workers,
            stats: Stats::default(),
        })
    }

    /// Match every line of `path`, calling `on_event(jail index, event)` in file order with
    /// merged counts. Returns the lines read and the read result.
    fn run_file(
        &mut self,
        path: &std::path::Path,
        reference: Time,
        progress: Option<&indicatif::ProgressBar>,
        mut on_event: impl FnMut(usize, &Event),
    ) -> (u64, Result<()>) {
        let mut forks = Vec::with_capacity(self.workers);
        for _ in 0..self.workers {
            let mut set = Vec::with_capacity(self.templates.len());
            for t in &self.templates {
                match t.fork() {
                    Ok(m) => set.push(m),
                    // The native engine cannot fail to make capture storage.
                    Err(never) => match never {},
                }
            }
            forks.push(set);
        }
        std::thread::scope(|scope| {
            let mut to_workers = Vec::new();
            let mut from_workers = Vec::new();
            let mut handles = Vec::new();
            for mut set in forks {
                let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE_CHUNKS);
                let (event_tx, event_rx) = mpsc::sync_channel::<Vec<(u16, Unmerged)>>(QUEUE_CHUNKS);
                to_workers.push(chunk_tx);
                from_workers.push(event_rx);
                handles.push(scope.spawn(move || {
                    let mut scratch = Vec::new();
                    // Events of the largest chunk so far: one allocation per chunk.
                    let mut capacity = 0;
                    for chunk in chunk_rx {
                        let mut events = Vec::with_capacity(capacity);
                        // Every line in a chunk ends with a newline.
                        let mut rest = &chunk[..];
                        while let Some(nl) = memchr::memchr(b'\n', rest) {
                            let line = &rest[..nl];
                            rest = &rest[nl + 1..];
                            for (j, m) in set.iter_mut().enumerate() {
                                m.feed_line(line, reference, &mut scratch);
                                let j = u16::try_from(j).unwrap_or(u16::MAX);
                                events.extend(scratch.drain(..).map(|ev| (j, ev)));
                            }
                        }
                        capacity = capacity.max(events.len());
                        if event_tx.send(events).is_err() {
                            break;
                        }
                    }
                    set.iter()
                        .map(|m| m.stats().clone())
                        .collect::<Vec<Stats>>()
                }));
            }
            let reader = scope.spawn(move || {
                let mut lines = 0u64;
                let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
                let mut next = 0usize;
                let mut send = |chunk: Vec<u8>| {
                    let ok = to_workers[next % to_workers.len()].send(chunk).is_ok();
                    next += 1;
                    ok
                };
                let result = read_lines(path, |line| {
                    lines += 1;
                    if let Some(pb) = progress {
                        pb.inc(line.len() as u64 + 1);
                    }
                    chunk.extend_from_slice(line);
                    chunk.push(b'\n');
                    if chunk.len() >= CHUNK_BYTES {
                        let full =
                            std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
                        send(full);
                    }
                });
                if !chunk.is_empty() {
                    send(chunk);
                }
                (lines, result)
            });
            let mut settled = Vec::new();
            for k in 0.. {
                let Ok(events) = from_workers[k % from_workers.len()].recv() else {
                    break;
                };
                for (j, u) in events {
                    let j = usize::from(j);
                    self.mergers[j].settle(u, &mut settled);
                    for ev in settled.drain(..) {
                        on_event(j, &ev);
                    }
                }
            }
            for h in handles {
                for st in h.join().unwrap_or_default() {
                    self.stats.add(&st);
                }
            }
            match reader.join() {
                Ok(r) => r,
                Err(_) => (0, Err(anyhow::anyhow!("reader thread panicked"))),
            }
        })
    }
}

fn drain(
    jail: &mut OfflineJail,
    jail_idx: usize,
    addrs: &mut HashMap<IpAddr, AddrReport>,
    breaches: &mut Vec<BreachRecord>,
    totals: &mut Totals,
    explain: Option<IpAddr>,
) {
    while let Some(decision) = jail.poll_decision() {
        match decision {
            Decision::Ban(ban) => {
                totals.bans += 1;
                if ban.is_permanent() {
                    totals.permanent_bans += 1;
                }
                if explain.is_some_and(|a| ban.target.contains(&a)) {
                    eprintln!(
                        "explain: [{}] {} ban #{} of {} until {}",
                        ban.jail,
                        ban.since,
                        ban.ban_no,
                        ban.target,
                        ban.until.map_or("forever".to_string(), |t| t.to_string())
                    );
                }
                let key = ban.target.network();
                addrs.entry(key).or_default().bans.push(BanLite::from_ban(
                    &ban,
                    u16::try_from(jail_idx).unwrap_or(u16::MAX),
                ));
            }
            Decision::Unban { .. } => {}
            Decision::Alert(Alert::Breach {
                addr,
                user,
                failures,
                time,
            }) => {
                totals.breaches += 1;
                breaches.push(BreachRecord {
                    jail: jail.name().to_string(),
                    addr: addr.to_string(),
                    user: user.map(|u| u.to_string()),
                    failures,
                    time: time.to_string(),
                });
            }
            Decision::Alert(_) => {}
        }
    }
}

/// Every line of the file at `path` (plain or gzip), through the one reader.
fn read_lines(path: &std::path::Path, f: impl FnMut(&[u8])) -> Result<()> {
    let mut reader = portcullis_sources::ReplayReader::open(portcullis_sources::SourceId(0), path)
        .context("cannot open")?;
    reader.for_each_line(f)?;
    Ok(())
}

fn progress_bar(total_bytes: u64) -> Option<indicatif::ProgressBar> {
    if !io::stderr().is_terminal() || total_bytes < 64 << 20 {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total_bytes);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} scanning [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style);
    }
    Some(pb)
}

#[derive(Serialize)]
struct JsonAddr<'a> {
    addr: String,
    attempts: u64,
    probes: u64,
    successes: u64,
    first_seen: Option<String>,
    last_seen: Option<String>,
    users: Vec<&'a str>,
    more_users: usize,
    bans: Vec<BanRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<portcullis_core::origin::Origin>,
}

/// What the scan found, for [`write_json`].
#[derive(Clone, Copy)]
struct Found<'a> {
    rows: &'a [(IpAddr, AddrReport)],
    breaches: &'a [BreachRecord],
    geo: &'a portcullis_geoip::GeoIp,
    campaigns: &'a [portcullis_core::campaign::CampaignAlert],
}

/// The JSON document, written address by address so a 100k-address report is never held
/// twice in memory.
fn write_json(
    out: &mut impl Write,
    totals: &Totals,
    files: &[FileSummary],
    jails: &[String],
    found: Found<'_>,
) -> Result<()> {
    let Found {
        rows,
        breaches,
        geo,
        campaigns,
    } = found;
    write!(out, "{{\"totals\":")?;
    serde_json::to_writer(&mut *out, totals)?;
    write!(out, ",\"files\":")?;
    serde_json::to_writer(&mut *out, files)?;
    write!(out, ",\"addresses\":[")?;
    for (i, (addr, r)) in rows.iter().enumerate() {
        if i > 0 {
            write!(out, ",")?;
        }
        let t = &r.tally;
        let row = JsonAddr {
            addr: addr.to_string(),
            attempts: t.attempts,
            probes: t.probes,
            successes: t.successes,
            first_seen: t.first_seen.map(|t| t.to_string()),
            last_seen: t.last_seen.map(|t| t.to_string()),
            users: t.users().iter().map(|u| &**u).collect(),
            more_users: t.more_users(),
            bans: r.bans.iter().map(|b| b.record(jails)).collect(),
            origin: geo.lookup(*addr),
        };
        serde_json::to_writer(&mut *out, &row)?;
    }
    write!(out, "],\"breaches\":")?;
    serde_json::to_writer(&mut *out, breaches)?;
    if !geo.is_empty() {
        let origins: Vec<_> = rows
            .iter()
            .map(|(a, r)| (geo.lookup(*a), r.tally.attempts))
            .collect();
        let (countries, systems) =
            crate::geo::tally(origins.iter().map(|(o, n)| (o.as_ref(), *n)), 20);
        write!(out, ",\"by_country\":")?;
        serde_json::to_writer(&mut *out, &countries)?;
        write!(out, ",\"by_asn\":")?;
        serde_json::to_writer(&mut *out, &systems)?;
    }
    write!(out, ",\"campaigns\":")?;
    serde_json::to_writer(&mut *out, &crate::campaigns::json(campaigns))?;
    writeln!(out, "}}")?;
    Ok(())
}

fn write_human(
    out: &mut impl Write,
    totals: &Totals,
    files: &[FileSummary],
    rows: &[(IpAddr, AddrReport)],
    breaches: &[BreachRecord],
    limit: usize,
    geo: &portcullis_geoip::GeoIp,
) -> Result<()> {
    for f in files {
        if let Some(e) = &f.error {
            writeln!(out, "unreadable: {}: {}", f.path, e)?;
        }
    }
    writeln!(
        out,
        "{} files, {} lines ({} matched, {} ignored, {} bad) in {:.2}s",
        totals.files,
        totals.lines,
        totals.matched,
        totals.ignored,
        totals.bad_lines,
        totals.seconds
    )?;
    if totals.cut > 0 {
        writeln!(
            out,
            "{} messages cut by their writer (sshd: 500 bytes): an address after client-chosen text was not taken from them",
            totals.cut
        )?;
    }
    if totals.unparsed > 0 {
        writeln!(
            out,
            "{} lines not understood (no known timestamp and header): see test-filter --print-missed",
            totals.unparsed
        )?;
    }
    if totals.bad_time > 0 {
        writeln!(
            out,
            "{} events with an unbelievable time (after the file's last write, a lone jump \
             or far in the past): counted, but they did not move the clock",
            totals.bad_time
        )?;
    }
    writeln!(
        out,
        "{} addresses: {} failed attempts, {} probes, {} successful logins; {} bans ({} permanent); {} breach signals",
        totals.addresses,
        totals.attempts,
        totals.probes,
        totals.successes,
        totals.bans,
        totals.permanent_bans,
        totals.breaches
    )?;
    if !breaches.is_empty() {
        writeln!(out, "\nBREACH SIGNALS (success after failures):")?;
        for b in breaches {
            writeln!(
                out,
                "  {}  {}  user {}  after {} failures  [{}]",
                b.time,
                b.addr,
                escape_terminal(b.user.as_deref().unwrap_or("?")),
                b.failures,
                b.jail
            )?;
        }
    }
    if !geo.is_empty() {
        let origins: Vec<_> = rows
            .iter()
            .map(|(a, r)| (geo.lookup(*a), r.tally.attempts))
            .collect();
        let (countries, systems) =
            crate::geo::tally(origins.iter().map(|(o, n)| (o.as_ref(), *n)), 8);
        writeln!(
            out,
            "\nby country (addresses (attempts)): {}",
            crate::geo::summary_line(&countries)
        )?;
        writeln!(
            out,
            "by AS (addresses (attempts)): {}",
            crate::geo::summary_line(&systems)
        )?;
    }
    let geo_head = if geo.is_empty() {
        String::new()
    } else {
        format!("{:<3} {:<28} ", "cc", "AS")
    };
    writeln!(
        out,
        "\n{:<39} {:>8} {:>7} {:>4} {:<20} {:<20} {:<16} {geo_head}users",
        "address", "attempts", "probes", "ok", "first seen (UTC)", "last seen (UTC)", "bans"
    )?;
    let n = if limit == 0 {
        rows.len()
    } else {
        limit.min(rows.len())
    };
    for (addr, r) in &rows[..n] {
        let bans = match r.bans.len() {
            0 => "-".to_string(),
            k if r.bans.iter().any(|b| b.until.is_none()) => format!("{k} (permanent)"),
            k => k.to_string(),
        };
        let t = &r.tally;
        let mut users: Vec<String> = t
            .users()
            .iter()
            .map(|u| escape_terminal(u).into_owned())
            .collect();
        if t.more_users() > 0 {
            users.push(format!("+{} more", t.more_users()));
        }
        let geo_cols = if geo.is_empty() {
            String::new()
        } else {
            let o = geo.lookup(*addr).unwrap_or_default();
            let asn: String = escape_terminal(&o.asn_label()).chars().take(28).collect();
            format!("{:<3} {asn:<28} ", escape_terminal(o.country_label()))
        };
        writeln!(
            out,
            "{:<39} {:>8} {:>7} {:>4} {:<20} {:<20} {:<16} {geo_cols}{}",
            addr.to_string(),
            t.attempts,
            t.probes,
            t.successes,
            t.first_seen
                .map(|t| t.short_utc().to_string())
                .unwrap_or_default(),
            t.last_seen
                .map(|t| t.short_utc().to_string())
                .unwrap_or_default(),
            bans,
            users.join(",")
        )?;
    }
    if n < rows.len() {
        writeln!(
            out,
            "… {} more addresses (--limit 0 shows all, --json for scripts)",
            rows.len() - n
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event of `path` as one sequential matcher per jail sees it, in file order.
    fn sequential(path: &std::path::Path, reference: Time) -> Vec<(usize, Event)> {
        let mut jails = load_jails(None, None, None, Some("UTC")).expect("jails");
        let mut all = Vec::new();
        let mut events = Vec::new();
        read_lines(path, |line| {
            for (j, jail) in jails.iter_mut().enumerate() {
                jail.feed_line(line, reference, &mut events);
                all.extend(events.drain(..).map(|e| (j, e)));
            }
        })
        .expect("read");
        all
    }

    #[test]
    fn worker_threads_give_the_sequential_events_in_file_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        let mut config = portcullis_loggen::Config::default();
        config.lines = 30_000;
        config.attackers = 300;
        config.seed = 7;
        let file = std::fs::File::create(&path).expect("create");
        portcullis_loggen::generate(&config, io::BufWriter::new(file)).expect("generate");
        let size = std::fs::metadata(&path).expect("size").len();
        // Many chunks, so merged attempts straddle chunk (and worker) boundaries.
        assert!(
            size > 20 * CHUNK_BYTES as u64,
            "corpus too small: {size} bytes"
        );
        let reference = file_reference_time(&path);
        let expected = sequential(&path, reference);

        let jails = load_jails(None, None, None, Some("UTC")).expect("jails");
        // Three workers even on a small machine: chunk k goes to worker k % 3.
        let mut par = Parallel::new(&jails, 3).expect("native jails");
        let mut got = Vec::new();
        let (lines, result) = par.run_file(&path, reference, None, |j, ev| {
            got.push((j, ev.clone()));
        });
        result.expect("read");
        assert_eq!(lines, 30_000);
        assert!(
            expected.iter().any(|(_, e)| e.count == 0),
            "corpus has lines of attempts another line already counted"
        );
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "events differ from the sequential matcher");
        // One event per matched line with the default (single) jail.
        assert_eq!(par.stats.matched, expected.len() as u64);
    }

    #[test]
    fn explain_reads_sequentially() {
        let jails = load_jails(None, None, None, Some("UTC")).expect("jails");
        assert!(Parallel::plan(&jails, Some("192.0.2.1".parse().expect("addr"))).is_none());
    }
}
