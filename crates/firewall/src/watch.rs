//! Noticing, within a second, that someone else changed our part of the kernel ruleset: an
//! `nft flush ruleset`, `systemctl restart nftables`, another tool deleting our table, a
//! rule or an element, `ipset flush`, `iptables -F`.
//!
//! nftables reports every change: a [`KernelWatch`] follows `nft monitor destroy` (deletions
//! only, so our own ban storms cost it nothing) on a task of its own. A deleted table,
//! chain, rule or set makes it check our structure (our chains' rules naming our four sets;
//! no element is listed) and report [`KernelEvent::Broken`] only when it is really gone —
//! our own `setup` deletes and re-adds chains inside one transaction and leaves them whole,
//! so healing never feeds itself. A deleted element is reported as [`KernelEvent::Removed`]:
//! the daemon re-adds those still in force (its own unbans are not). When the monitor dies
//! or cannot start, changes may have been missed: [`KernelEvent::Unsure`], and a restart
//! with backoff.
//!
//! The monitor is not enough alone: it loses events without a word when one transaction
//! deletes more than its netlink buffer holds (an `nft flush ruleset` with 100k elements
//! printed nothing), so the structure is also checked every [`PROBE_INTERVAL`] — two
//! `nft list chain`, no elements. A broken structure is reported once until seen whole again.
//!
//! ipset has no monitor: every [`PROBE_INTERVAL`] the watch reads the sets' headers
//! (`ipset list -t`: names and counts, no elements) and `iptables -S`/`ip6tables -S` of the
//! hooked chains, and reports a missing set or rule as `Broken` and the counts as
//! [`KernelEvent::Counts`] (a set holding fewer elements than the bans in force was
//! flushed).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::change::{ElementCounts, SetKind};
use crate::command::Runner;
use crate::config::{FirewallConfig, Verdict};
use crate::error::CommandError;
use crate::netlink::{NfEvent, NfEvents};
use crate::nft::error_chain;

/// How often the ipset watch reads the sets' headers and the rules.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long the nft watch gathers deletions before it reports them (one check for the
/// many lines of one `nft flush ruleset`).
const SETTLE: Duration = Duration::from_millis(20);
/// The first and the longest wait before the monitor is started again.
const RESTART_FIRST: Duration = Duration::from_millis(250);
const RESTART_LAST: Duration = Duration::from_secs(30);

/// What the watch saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// Our table, a chain, a rule or a set is missing: set up again, re-apply every ban.
    Broken(String),
    /// These elements were deleted from our sets (by anyone, the daemon's own unbans too):
    /// re-add those still in force.
    Removed(Vec<IpNet>),
    /// Changes may have been missed (the monitor died or did not start, notifications were
    /// lost): reconcile.
    Unsure(String),
    /// Elements were deleted from our network sets (their ranges are not decoded): re-add
    /// the networks in force.
    NetsRemoved,
    /// The elements our sets hold now (ipset).
    Counts(ElementCounts),
}

/// A task watching the kernel side; its events arrive through [`KernelWatch::recv`].
/// Dropping it stops the task (and kills its monitor process).
#[derive(Debug)]
pub struct KernelWatch {
    rx: mpsc::Receiver<KernelEvent>,
    task: JoinHandle<()>,
}

impl KernelWatch {
    /// Watch nftables table `inet <config.table>`: on our own netlink socket (in
    /// `config.netns` when set), or with a command prefix and no namespace file (the tools
    /// run elsewhere) by following `nft monitor` through it. `own` marks our own big deletions.
    pub(crate) fn nft(config: FirewallConfig, own: Arc<OwnWork>) -> KernelWatch {
        if config.command_prefix.is_empty() || config.netns.is_some() {
            Self::spawn(|tx| netlink_watch(config, own, tx))
        } else {
            Self::spawn(|tx| nft_watch(config, tx))
        }
    }

    /// Watch the ipset sets and iptables rules of `config`.
    pub fn ipset(config: FirewallConfig) -> KernelWatch {
        Self::spawn(|tx| ipset_watch(config, tx))
    }

    fn spawn<F, Fut>(f: F) -> KernelWatch
    where
        F: FnOnce(mpsc::Sender<KernelEvent>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(64);
        KernelWatch {
            rx,
            task: tokio::spawn(f(tx)),
        }
    }

    /// The next event (cancel-safe); `None` once the task ended.
    pub async fn recv(&mut self) -> Option<KernelEvent> {
        self.rx.recv().await
    }
}

impl Drop for KernelWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One line of `nft monitor destroy` as far as it concerns table `inet <table>`.
#[derive(Debug, PartialEq, Eq)]
enum Deleted {
    /// The table, a chain, a rule or a set.
    Structure,
    /// Elements of one of our sets.
    Elements(Vec<IpNet>),
}

/// Read a monitor line: `delete element inet T addr4 { 192.0.2.1 timeout 1h expires … }`,
/// `delete rule inet T input handle 3`, `delete table inet T`, … Lines of other tables,
/// generation notes (`# new generation …`) and anything unknown are `None`.
fn parse_deleted(line: &str, table: &str) -> Option<Deleted> {
    let mut words = line.split_whitespace();
    if words.next()? != "delete" {
        return None;
    }
    let object = words.next()?;
    if words.next()? != "inet" || words.next()? != table {
        return None;
    }
    match object {
        "table" | "chain" | "rule" | "set" => Some(Deleted::Structure),
        "element" => {
            let set = words.next()?;
            if !SetKind::ALL.iter().any(|k| k.nft_name() == set) {
                return None;
            }
            let inner = line.split_once('{')?.1;
            let inner = inner.rsplit_once('}').map_or(inner, |(a, _)| a);
            let targets = inner
                .split(',')
                .filter_map(|e| e.split_whitespace().next())
                .filter_map(|w| {
                    w.parse::<IpNet>()
                        .ok()
                        .or_else(|| w.parse::<std::net::IpAddr>().ok().map(IpNet::from))
                })
                .collect();
            Some(Deleted::Elements(targets))
        }
        _ => None,
    }
}

/// What of our structure is missing, if anything, from `nft -t list ruleset`: terse, so no
/// element is fetched (about 7 ms with 100k elements, where `nft list chain` of a chain whose
/// rules name the sets takes 0.6 s: nft loads the sets' elements for it). Each hooked chain
/// must hold a rule per set. A listing that fails counts as missing: the setup that follows
/// says why if it fails too.
pub(crate) async fn nft_missing(runner: &Runner, config: &FirewallConfig) -> Option<String> {
    match runner
        .output(&config.nft, &["-t", "list", "ruleset"], None)
        .await
    {
        Ok(text) => missing_in_listing(&String::from_utf8_lossy(&text), config),
        Err(e) => Some(format!("the ruleset ({})", error_chain(&e))),
    }
}

/// What of our table `config.table` is missing from a terse ruleset listing.
fn missing_in_listing(text: &str, config: &FirewallConfig) -> Option<String> {
    let head = format!("table inet {} {{", config.table);
    let mut in_table = false;
    let mut found_table = false;
    let mut chain: Option<&str> = None;
    let mut rules: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        if !in_table {
            if line == head {
                in_table = true;
                found_table = true;
            }
            continue;
        }
        if line == "}" {
            in_table = false;
            continue;
        }
        let t = line.trim();
        if let Some(name) = t.strip_prefix("chain ").and_then(|r| r.strip_suffix(" {")) {
            chain = Some(name);
        } else if t == "}" {
            chain = None;
        } else if let Some(c) = chain {
            for kind in SetKind::ALL {
                if t.contains(&format!("@{} ", kind.nft_name())) {
                    rules.push((c, kind.nft_name()));
                }
            }
        }
    }
    if !found_table {
        return Some(format!("table inet {}", config.table));
    }
    let mut chains = vec!["input"];
    if config.hook_forward {
        chains.push("forward");
    }
    for c in chains {
        for kind in SetKind::ALL {
            if !rules.contains(&(c, kind.nft_name())) {
                return Some(format!(
                    "rule for set {} in chain inet {} {c}",
                    kind.nft_name(),
                    config.table
                ));
            }
        }
    }
    None
}

/// What tells our own kernel changes from others': the pids of the `nft` processes we
/// started (each transaction's notifications end with the pid of the process that made it),
/// and whether a reconcile — whose flush may overflow the socket — is running.
#[derive(Debug, Default)]
pub(crate) struct OwnWork {
    pids: Mutex<VecDeque<u32>>,
    busy: AtomicUsize,
    ended: Mutex<Option<Instant>>,
}

/// Pids remembered (the newest): far more than can be in flight.
const OWN_PIDS: usize = 256;
/// How long after our own reconcile an overflow may still be its doing.
const OWN_GRACE: Duration = Duration::from_millis(500);

impl OwnWork {
    pub(crate) fn started(&self, pid: u32) {
        if let Ok(mut p) = self.pids.lock() {
            if p.len() == OWN_PIDS {
                p.pop_front();
            }
            p.push_back(pid);
        }
    }

    fn is_ours(&self, pid: u32) -> bool {
        self.pids.lock().is_ok_and(|p| p.contains(&pid))
    }

    pub(crate) fn begin(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn end(&self) {
        if let Ok(mut e) = self.ended.lock() {
            *e = Some(Instant::now());
        }
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether an overflow now may be our reconcile's.
    fn reconciling(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0
            || self
                .ended
                .lock()
                .ok()
                .and_then(|e| *e)
                .is_some_and(|t| t.elapsed() < OWN_GRACE)
    }
}

/// The watch on our own netlink socket (see `netlink`): a thread blocks on it and hands the
/// notifications over; this task gathers them for [`SETTLE`] and reports.
async fn netlink_watch(config: FirewallConfig, own: Arc<OwnWork>, tx: mpsc::Sender<KernelEvent>) {
    let runner = Runner::new(config.command_prefix.clone(), config.command_timeout);
    let (raw_tx, mut raw_rx) = mpsc::channel::<Result<Vec<NfEvent>, String>>(256);
    let table = config.table.clone();
    let config_netns = config.netns.clone();
    let spawned = std::thread::Builder::new()
        .name("nft-events".into())
        .spawn(move || {
            let mut socket = match NfEvents::open(config_netns.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    let _ = raw_tx.blocking_send(Err(format!(
                        "cannot subscribe to nf_tables notifications: {e}"
                    )));
                    return;
                }
            };
            let mut out = Vec::new();
            loop {
                if let Err(e) = socket.read(&table, &mut out) {
                    let _ = raw_tx
                        .blocking_send(Err(format!("cannot read nf_tables notifications: {e}")));
                    return;
                }
                if !out.is_empty() && raw_tx.blocking_send(Ok(std::mem::take(&mut out))).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        let _ = tx
            .send(KernelEvent::Unsure(format!(
                "cannot start the watch thread: {e}; following nft monitor instead"
            )))
            .await;
        return nft_watch(config, tx).await;
    }
    loop {
        let Some(first) = raw_rx.recv().await else {
            return;
        };
        let mut batch = match first {
            Ok(b) => b,
            Err(why) => {
                let _ = tx
                    .send(KernelEvent::Unsure(format!(
                        "{why}; following nft monitor instead"
                    )))
                    .await;
                return nft_watch(config, tx).await;
            }
        };
        // Gather what arrives within SETTLE: one check for one flush's many notifications.
        while let Ok(Some(Ok(more))) = tokio::time::timeout(SETTLE, raw_rx.recv()).await {
            batch.extend(more);
        }
        tracing::debug!(notifications = batch.len(), "nf_tables notifications");
        let mut structure = false;
        let mut lost = false;
        let mut removed: Vec<IpNet> = Vec::new();
        let mut nets = false;
        // One transaction's notifications until its generation note, which names the
        // process: ours are dropped.
        let mut pending: Vec<NfEvent> = Vec::new();
        for e in batch.into_iter().chain([NfEvent::Generation { pid: 0 }]) {
            match e {
                NfEvent::Generation { pid } => {
                    if pid != 0 && own.is_ours(pid) {
                        pending.clear();
                    }
                    for e in pending.drain(..) {
                        match e {
                            NfEvent::Structure => structure = true,
                            NfEvent::Elements { set, addrs } => {
                                nets |= set.starts_with("net");
                                removed.extend(addrs.into_iter().map(IpNet::from));
                            }
                            NfEvent::Lost | NfEvent::Generation { .. } => {}
                        }
                    }
                }
                NfEvent::Lost => lost |= !own.reconciling(),
                other => pending.push(other),
            }
        }
        let mut events = Vec::new();
        if structure || lost {
            // Every foreign deletion is checked (no once-per-outage rule: our own heal's
            // notifications are dropped, so no check would see the structure whole again).
            match nft_missing(&runner, &config).await.map(KernelEvent::Broken) {
                Some(broken) => events.push(broken),
                None if lost => events.push(KernelEvent::Unsure(
                    "nf_tables notifications were lost (the socket overflowed)".into(),
                )),
                None => {}
            }
        }
        if !removed.is_empty() {
            events.push(KernelEvent::Removed(removed));
        }
        if nets {
            events.push(KernelEvent::NetsRemoved);
        }
        for e in events {
            if tx.send(e).await.is_err() {
                return;
            }
        }
    }
}

async fn nft_watch(config: FirewallConfig, tx: mpsc::Sender<KernelEvent>) {
    let runner = Runner::new(config.command_prefix.clone(), config.command_timeout);
    let mut wait = RESTART_FIRST;
    loop {
        let (mut cmd, described) = runner.command(&config.nft, &["monitor", "destroy"]);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let why = match cmd.spawn() {
            Ok(child) => follow_monitor(child, &runner, &config, &tx, &mut wait).await,
            Err(e) => format!("cannot start {described}: {e}"),
        };
        if tx.is_closed() {
            return;
        }
        if tx
            .send(KernelEvent::Unsure(format!("{why}; restarted in {wait:?}")))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RESTART_LAST);
    }
}

/// Reports a broken structure once per outage: the daemon heals it; while it stays missing,
/// more checks say nothing for [`REPORT_AGAIN`] (no heal queued behind the heal in
/// progress), then report it again. A heal takes milliseconds, so a structure still missing
/// that long after a report was broken again (a second fault between the heal and the next
/// check, which a "once until seen whole" rule never reported: the CI run that found it had
/// `iptables -F` + `ipset destroy` land 10 ms after the previous heal) or the heal failed.
#[derive(Debug, Default)]
struct Outage {
    reported: Option<tokio::time::Instant>,
}

/// How long a reported outage stays quiet before it is reported again.
const REPORT_AGAIN: Duration = Duration::from_secs(2);

impl Outage {
    /// What to send for a check that found `missing`.
    fn seen(&mut self, missing: Option<String>) -> Option<KernelEvent> {
        let now = tokio::time::Instant::now();
        match missing {
            None => {
                self.reported = None;
                None
            }
            Some(_) if self.reported.is_some_and(|at| now - at < REPORT_AGAIN) => None,
            Some(what) => {
                self.reported = Some(now);
                Some(KernelEvent::Broken(what))
            }
        }
    }
}

/// Make the child get SIGKILL when the daemon dies: `kill_on_drop` covers a clean stop, this
/// a `kill -9` (an orphaned `nft monitor` in a quiet namespace never writes, so it would
/// never learn its reader is gone).
fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: the hook runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}

/// Follow one monitor process until it ends; returns why it ended. Our structure is also
/// checked every [`PROBE_INTERVAL`] (two `nft list chain`, no elements): nft's monitor
/// drops events without a word when a transaction deletes more than its netlink buffer
/// holds (measured: an `nft flush ruleset` with 100k elements printed nothing).
async fn follow_monitor(
    mut child: Child,
    runner: &Runner,
    config: &FirewallConfig,
    tx: &mpsc::Sender<KernelEvent>,
    wait: &mut Duration,
) -> String {
    let Some(out) = child.stdout.take() else {
        return "nft monitor has no output".into();
    };
    let mut lines = BufReader::new(out).lines();
    let mut structure = false;
    let mut removed: Vec<IpNet> = Vec::new();
    let mut outage = Outage::default();
    // The first check after one interval: at start the daemon's setup runs meanwhile.
    let mut probe =
        tokio::time::interval_at(tokio::time::Instant::now() + PROBE_INTERVAL, PROBE_INTERVAL);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Gather what arrives within SETTLE of the first line, then report it.
        let gathering = structure || !removed.is_empty();
        let read = async {
            if gathering {
                tokio::time::timeout(SETTLE, lines.next_line()).await.ok()
            } else {
                Some(lines.next_line().await)
            }
        };
        let next = tokio::select! {
            r = read => r,
            _ = probe.tick() => {
                if let Some(event) = outage.seen(nft_missing(runner, config).await)
                    && tx.send(event).await.is_err()
                {
                    return "stopped".into();
                }
                continue;
            }
        };
        match next {
            Some(Ok(Some(line))) => {
                // The monitor works: the next failure starts the backoff afresh.
                *wait = RESTART_FIRST;
                match parse_deleted(&line, &config.table) {
                    Some(Deleted::Structure) => structure = true,
                    Some(Deleted::Elements(t)) => removed.extend(t),
                    None => {}
                }
            }
            Some(Ok(None)) => {
                let status = child.wait().await;
                return format!("nft monitor ended ({status:?})");
            }
            Some(Err(e)) => return format!("cannot read nft monitor: {e}"),
            None => {
                if std::mem::take(&mut structure)
                    && let Some(event) = outage.seen(nft_missing(runner, config).await)
                    && tx.send(event).await.is_err()
                {
                    return "stopped".into();
                }
                if !removed.is_empty()
                    && tx
                        .send(KernelEvent::Removed(std::mem::take(&mut removed)))
                        .await
                        .is_err()
                {
                    return "stopped".into();
                }
            }
        }
    }
}

/// The sets' element counts and what is missing, from `ipset list -t` and `iptables -S`.
pub(crate) async fn ipset_check(
    runner: &Runner,
    config: &FirewallConfig,
) -> Result<(ElementCounts, Option<String>), CommandError> {
    let name = |kind: SetKind| crate::ipset::set_name(&config.table, kind);
    let headers = runner.output(&config.ipset, &["list", "-t"], None).await?;
    let headers = String::from_utf8_lossy(&headers);
    let mut counts = ElementCounts::default();
    let mut missing = None;
    for kind in SetKind::ALL {
        match set_entries(&headers, &name(kind)) {
            Some(n) => *counts.get_mut(kind) = n,
            None => {
                missing.get_or_insert_with(|| format!("ipset set {}", name(kind)));
            }
        }
    }
    let verdict = match config.verdict {
        Verdict::Drop => "DROP",
        Verdict::Reject => "REJECT",
    };
    let mut chains = vec!["INPUT"];
    if config.hook_forward {
        chains.push("FORWARD");
    }
    for (tool, kinds) in [
        (&config.iptables, [SetKind::Addr4, SetKind::Net4]),
        (&config.ip6tables, [SetKind::Addr6, SetKind::Net6]),
    ] {
        for chain in &chains {
            let rules = runner.output(tool, &["-w", "-S", chain], None).await?;
            let rules = String::from_utf8_lossy(&rules);
            for kind in kinds {
                let rule = format!("--match-set {} src -j {verdict}", name(kind));
                if !rules.lines().any(|l| l.contains(&rule)) {
                    missing.get_or_insert_with(|| format!("the {chain} rule {rule}"));
                }
            }
        }
    }
    Ok((counts, missing))
}

/// `Number of entries` of set `name` in `ipset list -t` output.
fn set_entries(headers: &str, name: &str) -> Option<usize> {
    let mut in_set = false;
    for line in headers.lines() {
        if let Some(n) = line.strip_prefix("Name: ") {
            in_set = n.trim() == name;
        } else if in_set && let Some(n) = line.strip_prefix("Number of entries: ") {
            return n.trim().parse().ok();
        }
    }
    None
}

async fn ipset_watch(config: FirewallConfig, tx: mpsc::Sender<KernelEvent>) {
    let runner = Runner::new(config.command_prefix.clone(), config.command_timeout);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PROBE_INTERVAL, PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut outage = Outage::default();
    loop {
        tick.tick().await;
        let event = match ipset_check(&runner, &config).await {
            Ok((_, Some(missing))) => match outage.seen(Some(missing)) {
                Some(e) => e,
                None => continue,
            },
            Ok((counts, None)) => {
                failing = false;
                outage.seen(None);
                KernelEvent::Counts(counts)
            }
            // Said once per outage; the daemon's own calls report the failure too.
            Err(e) if !failing => {
                failing = true;
                KernelEvent::Unsure(format!("cannot read the sets: {}", error_chain(&e)))
            }
            Err(_) => continue,
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A structure broken again right after a heal (before a check saw it whole) is reported
    /// again: before, it never was, and the second fault was never healed.
    #[test]
    fn an_outage_is_reported_again_while_it_lasts() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut o = Outage::default();
            let broken = || Some("ipset set portcullis4".to_string());
            assert!(matches!(o.seen(broken()), Some(KernelEvent::Broken(_))));
            // The heal is in progress: the next checks stay quiet.
            assert!(o.seen(broken()).is_none());
            tokio::time::sleep(REPORT_AGAIN + Duration::from_millis(50)).await;
            // Still (or again) missing long after the report: said again.
            assert!(matches!(o.seen(broken()), Some(KernelEvent::Broken(_))));
            // Seen whole: the next loss is a new outage, reported at once.
            assert!(o.seen(None).is_none());
            assert!(matches!(o.seen(broken()), Some(KernelEvent::Broken(_))));
        });
    }

    #[test]
    fn monitor_lines_are_read() {
        let t = "portcullis";
        assert_eq!(
            parse_deleted(
                "delete element inet portcullis addr4 { 192.0.2.1 timeout 1h expires 59m59s488ms }",
                t
            ),
            Some(Deleted::Elements(vec!["192.0.2.1/32".parse().unwrap()]))
        );
        assert_eq!(
            parse_deleted(
                "delete element inet portcullis net6 { 2001:db8::/64, 2001:db8:1::/48 timeout 1d }",
                t
            ),
            Some(Deleted::Elements(vec![
                "2001:db8::/64".parse().unwrap(),
                "2001:db8:1::/48".parse().unwrap()
            ]))
        );
        for s in [
            "delete rule inet portcullis input handle 3",
            "delete set inet portcullis addr4",
            "delete chain inet portcullis input",
            "delete table inet portcullis",
        ] {
            assert_eq!(parse_deleted(s, t), Some(Deleted::Structure), "{s}");
        }
        for s in [
            "# new generation 8 by process 27147 (nft)",
            "delete table inet other",
            "delete table ip portcullis",
            "delete element inet portcullis other { 192.0.2.1 }",
            "add element inet portcullis addr4 { 192.0.2.1 }",
            "",
        ] {
            assert_eq!(parse_deleted(s, t), None, "{s}");
        }
    }

    #[test]
    fn the_terse_ruleset_shows_what_is_missing() {
        let config = FirewallConfig::default();
        let mut whole = String::from(
            "table inet other {\n\tchain input {\n\t}\n}\ntable inet portcullis {\n\tset addr4 {\n\t\ttype ipv4_addr\n\t}\n\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n",
        );
        for (p, s) in [
            ("ip", "addr4"),
            ("ip6", "addr6"),
            ("ip", "net4"),
            ("ip6", "net6"),
        ] {
            whole += &format!("\t\t{p} saddr @{s} drop\n");
        }
        whole += "\t}\n}\n";
        assert_eq!(missing_in_listing(&whole, &config), None);
        let no_rule = whole.replace("\t\tip6 saddr @net6 drop\n", "");
        assert!(
            missing_in_listing(&no_rule, &config)
                .unwrap()
                .contains("net6")
        );
        assert!(
            missing_in_listing("table inet other {\n}\n", &config)
                .unwrap()
                .contains("table")
        );
        let forward = FirewallConfig {
            hook_forward: true,
            ..FirewallConfig::default()
        };
        assert!(
            missing_in_listing(&whole, &forward)
                .unwrap()
                .contains("forward")
        );
    }

    #[test]
    fn a_broken_structure_is_reported_once_until_seen_whole() {
        let mut o = Outage::default();
        assert_eq!(o.seen(None), None);
        assert_eq!(
            o.seen(Some("table".into())),
            Some(KernelEvent::Broken("table".into()))
        );
        assert_eq!(o.seen(Some("table".into())), None, "the heal is under way");
        assert_eq!(o.seen(None), None);
        assert!(o.seen(Some("rule".into())).is_some(), "a new outage");
    }

    #[test]
    fn ipset_headers_are_read() {
        let text = "Name: portcullis4\nType: hash:ip\nRevision: 4\nHeader: family inet hashsize 1024 maxelem 65536 timeout 0\nSize in memory: 200\nReferences: 1\nNumber of entries: 7\nName: portcullis6\nType: hash:ip\nNumber of entries: 0\n";
        assert_eq!(set_entries(text, "portcullis4"), Some(7));
        assert_eq!(set_entries(text, "portcullis6"), Some(0));
        assert_eq!(set_entries(text, "portcullis-net4"), None);
    }
}
