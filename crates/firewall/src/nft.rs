//! The nftables backend: one `inet` table of our own, four sets, one `nft -j -f -`
//! transaction per batch.
//!
//! Ruleset documents are built with the `nftables` crate's JSON model; the process is
//! run by our own [`Runner`] (the crate's helper has no timeout and no command prefix).
//!
//! Deleting a missing element fails a whole nft transaction (and `destroy`, which would
//! not, needs nft ≥ 1.0.8). So every removal is written as `add` (no timeout) followed
//! by `delete` in the same transaction: the add makes the element exist, the delete
//! removes it, and the result is "absent" whether it was there or not. For interval
//! (network) sets that add can itself fail when a different, overlapping network is in
//! the set; then the batch is retried once, exactly, from a fresh listing (absent
//! removals dropped, overlapping network adds rejected and reported).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use nftables::expr::{Elem, Expression, NamedExpression, Payload, PayloadField, Prefix};
use nftables::schema::{
    Chain, Element, NfCmd, NfListObject, NfObject, Nftables, Set, SetFlag, SetType, SetTypeValue,
    Table,
};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::change::{ApplyReport, Change, Plan, SetKind, timeout_secs};
use crate::command::Tools;
use crate::config::{FirewallConfig, Verdict};
use crate::error::{
    ApplyError, CommandError, ConfigError, ListError, ReconcileError, SetupError, TeardownError,
};
use crate::watch::KernelWatch;

use crate::nfnl::{
    Listing, MAX_TIMEOUT_SECS, NfTables, REFILL_BYTES, WriteError, flush_messages, plan_messages,
};

/// Up to this many bans in force, a reconcile over netlink lists the sets and sends only
/// the difference; above it, one transaction flushes and refills them. The kernel's dump
/// of a hash set restarts its walk for every message it fills, so listing grows faster
/// than linearly (measured: 30k elements 0.12 s, 100k 1.2 s), while the refill is linear
/// (100k: about 0.2 s of CPU).
const DIFF_LIMIT: usize = 20_000;

/// The nftables engine. Owns table `inet <table>` and nothing else.
#[derive(Debug)]
pub struct NftBackend {
    /// Configuration, runner, last error.
    tools: Tools,
    /// The netlink socket for element writes and reads, opened on first use; `None` also
    /// after a transport failure (opened afresh next time, so no stale answer is read).
    netlink: std::sync::Mutex<Option<NfTables>>,
}

impl NftBackend {
    /// A backend for `config`. Touches nothing until [`NftBackend::setup`].
    pub fn new(config: FirewallConfig) -> Result<NftBackend, ConfigError> {
        Ok(NftBackend {
            tools: Tools::new(config)?,
            netlink: std::sync::Mutex::new(None),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FirewallConfig {
        &self.tools.config
    }

    /// A watch on our table (see [`KernelWatch`]).
    pub fn watch(&self) -> KernelWatch {
        KernelWatch::nft(self.tools.config.clone(), self.tools.runner.own.clone())
    }

    /// What of our table, sets and rules is missing, from a terse listing that fetches no
    /// element (milliseconds at any set size); `None` when all is there.
    pub async fn missing(&self) -> Option<String> {
        crate::watch::nft_missing(&self.tools.runner, &self.tools.config).await
    }

    /// The last error of setup/apply/reconcile/teardown, if the last such call failed.
    pub fn last_error(&self) -> Option<&str> {
        self.tools.last_error()
    }

    /// Whether `nft list tables` works (used by detection).
    pub async fn probe(&self) -> Result<(), CommandError> {
        self.tools
            .runner
            .output(&self.tools.config.nft, &["list", "tables"], None)
            .await
            .map(|_| ())
    }

    /// Create (or bring up to date) our table, sets and chains in one transaction.
    /// Idempotent; elements already in the sets stay. Chains are recreated so a changed
    /// priority, verdict or forward setting takes effect; other tables are never touched.
    pub async fn setup(&mut self) -> Result<(), SetupError> {
        let doc = self.setup_document();
        let r = self.run_document(&doc).await;
        self.tools.note(r.as_ref().err());
        r.map_err(SetupError::from)
    }

    /// Apply a batch in one transaction (see the module docs for removals).
    pub async fn apply(&mut self, changes: &[Change]) -> Result<ApplyReport, ApplyError> {
        let started = Instant::now();
        let plan = Plan::from_changes(changes);
        let r = self.apply_plan(plan, changes.len(), started).await;
        self.tools.note(r.as_ref().err());
        r
    }

    /// Every element of our four sets with its remaining time (`None` = permanent): over
    /// netlink when configured (see [`FirewallConfig::netlink`]), else (or when that fails)
    /// from `nft -j list table`.
    pub async fn list(&self) -> Result<Vec<(IpNet, Option<Duration>)>, ListError> {
        match self.netlink_list().await {
            Ok(Ok((elements, _))) => Ok(elements),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "netlink listing failed; asking nft");
                self.cli_list().await
            }
            Err(_) => self.cli_list().await,
        }
    }

    /// The listing through `nft -j list table` (JSON).
    pub async fn cli_list(&self) -> Result<Vec<(IpNet, Option<Duration>)>, ListError> {
        let out = self
            .tools
            .runner
            .output(
                &self.tools.config.nft,
                &["-j", "list", "table", "inet", &self.tools.config.table],
                None,
            )
            .await?;
        parse_listing(&out, &self.tools.config.table).map_err(|detail| {
            ListError::Command(CommandError::Output {
                command: format!("nft -j list table inet {}", self.tools.config.table),
                detail,
            })
        })
    }

    /// Make the kernel sets hold exactly `desired`. Over netlink: list the sets (a dump,
    /// no JSON), diff, and send only the difference (nothing when the kernel already
    /// agrees, which is a restart with the sets intact; one or a few transactions when
    /// they were flushed). Without netlink, or when the sets hold an element we did not
    /// write, or the listing fails: [`NftBackend::refill`]. Overlapping desired networks
    /// keep the wider one (others reported).
    pub async fn reconcile(
        &mut self,
        desired: &[(IpNet, Option<Duration>)],
    ) -> Result<ApplyReport, ReconcileError> {
        let started = Instant::now();
        self.tools.runner.own.begin();
        let r = self.reconcile_netlink(desired, started).await;
        self.tools.runner.own.end();
        match r {
            Ok(r) => r,
            Err(why) => {
                let mut r = self.refill(desired).await;
                if let Ok(report) = &mut r {
                    report.netlink_fallback = why;
                }
                r
            }
        }
    }

    /// The netlink reconcile; `Err` when it does not apply (see [`NftBackend::reconcile`]),
    /// with why when that is a fault to report.
    async fn reconcile_netlink(
        &mut self,
        desired: &[(IpNet, Option<Duration>)],
        started: Instant,
    ) -> Result<Result<ApplyReport, ReconcileError>, Option<String>> {
        if desired.len() > DIFF_LIMIT {
            return self.netlink_refill(desired, started).await;
        }
        let current = match self.netlink_list().await? {
            Ok((elements, 0)) => elements,
            Ok((_, foreign)) => {
                tracing::info!(
                    foreign,
                    "our sets hold elements we did not write: flushing and refilling them"
                );
                return Err(None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "netlink listing failed; refilling through nft");
                return Err(Some(error_chain(&e)));
            }
        };
        let current: HashMap<IpNet, Option<Duration>> = current.into_iter().collect();
        let mut plan = Plan::reconcile(&current, desired);
        plan.drop_net_overlaps(&current);
        let changes = plan.add.len() + plan.remove.len();
        let r = self.apply_plan(plan, changes, started).await;
        self.tools.note(r.as_ref().err());
        Ok(r.map_err(ReconcileError::from))
    }

    /// The sets flushed and refilled with `desired` in one netlink transaction (atomic:
    /// packets never see a half-done state); `Err` when it does not fit in one or netlink
    /// fails (the caller refills through nft).
    async fn netlink_refill(
        &mut self,
        desired: &[(IpNet, Option<Duration>)],
        started: Instant,
    ) -> Result<Result<ApplyReport, ReconcileError>, Option<String>> {
        if !self.tools.config.uses_netlink() {
            return Err(None);
        }
        let mut plan = Plan::reconcile(&HashMap::new(), desired);
        plan.drop_net_overlaps(&HashMap::new());
        let table = &self.tools.config.table;
        let (adds, made_permanent) = plan_messages(table, &plan);
        let mut messages = flush_messages(table);
        messages.extend(adds);
        if messages.iter().map(Vec::len).sum::<usize>() > REFILL_BYTES {
            tracing::info!(
                bans = desired.len(),
                "too many bans for one netlink transaction: refilling through nft"
            );
            return Err(None);
        }
        let r = self
            .with_netlink(
                move |s| s.transact_one(&messages),
                |r| !matches!(r, Err(WriteError::Transport(_))),
            )
            .await?;
        match r {
            Ok(()) => {
                self.tools.note::<ReconcileError>(None);
                Ok(Ok(plan.into_report(1, made_permanent, started)))
            }
            Err(WriteError::Refused { errno, .. }) => {
                let e = std::io::Error::from_raw_os_error(errno);
                tracing::warn!(error = %e, "the kernel refused the netlink refill; refilling through nft");
                Err(Some(format!("the kernel refused the netlink refill: {e}")))
            }
            Err(WriteError::Transport(e)) => {
                tracing::warn!(error = %e, "the netlink refill failed; refilling through nft");
                Err(Some(format!("the netlink refill failed: {e}")))
            }
        }
    }

    /// The ruleset generation (see `NfTables::generation`): `None` without netlink or when
    /// the kernel does not answer.
    pub async fn generation(&self) -> Option<u32> {
        match self.with_netlink(|s| s.generation(), |r| r.is_ok()).await {
            Ok(Ok(g)) => Some(g),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "no ruleset generation");
                None
            }
            Err(_) => None,
        }
    }

    /// Whether up to `sample` single addresses of `desired`, spread evenly over it, are all
    /// elements of our sets: point lookups, O(sample) whatever the sets' size. `false`
    /// without netlink, or when a lookup fails.
    pub async fn sample_present(
        &self,
        desired: &[(IpNet, Option<Duration>)],
        sample: usize,
    ) -> bool {
        let hosts: Vec<IpNet> = desired
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| t.prefix_len() == t.max_prefix_len())
            .collect();
        let picks: Vec<IpNet> = if hosts.len() <= sample {
            hosts
        } else {
            (0..sample)
                .map(|i| hosts[i * (hosts.len() - 1) / (sample - 1).max(1)])
                .collect()
        };
        let table = self.tools.config.table.clone();
        let r = self
            .with_netlink(
                move |s| {
                    for t in &picks {
                        if !s.has_element(&table, t)? {
                            tracing::info!(missing = %t, "a sampled ban is not in the kernel set");
                            return Ok(false);
                        }
                    }
                    Ok::<bool, std::io::Error>(true)
                },
                |r| r.is_ok(),
            )
            .await;
        match r {
            Ok(Ok(all)) => all,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "sampled element lookup failed");
                false
            }
            Err(_) => false,
        }
    }

    /// Make the kernel sets hold exactly `desired` through `nft`, in one transaction: each
    /// of our sets is flushed and refilled atomically (packets never see a half-done
    /// state). This costs the same as one `apply` of `desired` whatever the kernel held,
    /// and avoids listing the sets through `nft`, which is the slow part (about 2x the cost
    /// of the refill at 100k elements). So `added` counts every desired element and
    /// `removed` stays 0.
    pub async fn refill(
        &mut self,
        desired: &[(IpNet, Option<Duration>)],
    ) -> Result<ApplyReport, ReconcileError> {
        let started = Instant::now();
        let mut plan = Plan::reconcile(&HashMap::new(), desired);
        plan.drop_net_overlaps(&HashMap::new());
        let (script, made_permanent) = self.refill_script(&plan);
        self.tools.runner.own.begin();
        let r = self
            .tools
            .runner
            .output(
                &self.tools.config.nft,
                &["-f", "-"],
                Some(script.into_bytes()),
            )
            .await;
        self.tools.runner.own.end();
        let r = r.map(|_| ()).map_err(|source| ApplyError::Command {
            changes: plan.add.len(),
            source,
        });
        self.tools.note(r.as_ref().err());
        r?;
        // `removed` is 0: the plan is made against nothing (the sets are flushed).
        Ok(plan.into_report(1, made_permanent, started))
    }

    /// At stop: with `flush`, delete our whole table (sets, chains, elements); without,
    /// leave everything so bans keep working while the daemon is down.
    pub async fn teardown(&mut self, flush: bool) -> Result<(), TeardownError> {
        if !flush {
            return Ok(());
        }
        let table = || {
            NfListObject::Table(Table {
                family: NfFamily::INet,
                name: Cow::Owned(self.tools.config.table.clone()),
                handle: None,
            })
        };
        // `add` first so deleting an absent table is not an error.
        let doc = document(vec![
            NfObject::CmdObject(NfCmd::Add(table())),
            NfObject::CmdObject(NfCmd::Delete(table())),
        ]);
        let r = self.run_document(&doc).await;
        self.tools.note(r.as_ref().err());
        r.map_err(TeardownError::from)
    }

    /// One transaction for `plan`; on failure, one exact retry from a fresh listing.
    async fn apply_plan(
        &mut self,
        mut plan: Plan,
        changes: usize,
        started: Instant,
    ) -> Result<ApplyReport, ApplyError> {
        if plan.is_empty() {
            return Ok(plan.into_report(0, 0, started));
        }
        let mut transactions = 1;
        let made_permanent;
        let fallback;
        let first = match self.netlink_write(&plan).await {
            Ok((Ok(n), permanent)) => {
                return Ok(plan.into_report(n, permanent, started));
            }
            Ok((Err(WriteError::Refused { errno, committed }), permanent)) => {
                // The kernel refused part of the plan (an absent set, an element that
                // expired meanwhile, an overlapping network): fall back to nft, exactly,
                // from a fresh listing, below. `committed` batches went in before.
                let e = std::io::Error::from_raw_os_error(errno);
                tracing::warn!(error = %e, committed, "the kernel refused a netlink element batch; retrying through nft from a fresh listing");
                fallback = Some(format!("the kernel refused a netlink element batch: {e}"));
                made_permanent = permanent;
                transactions += committed;
                Err(CommandError::Netlink {
                    operation: "element batch".into(),
                    source: e,
                })
            }
            other => {
                fallback = match other {
                    Ok((Err(WriteError::Transport(e)), _)) => {
                        tracing::warn!(error = %e, "netlink element batch failed; using nft");
                        Some(format!("netlink element batch failed: {e}"))
                    }
                    Err(why) => why,
                    Ok(_) => None,
                };
                let (doc, permanent) = self.batch_document(&plan);
                made_permanent = permanent;
                self.run_document(&doc).await
            }
        };
        if let Err(first_err) = first {
            // Something in the batch conflicts with the kernel state (an element expired
            // during a reconcile, an overlapping network). Re-plan exactly and retry once.
            tracing::debug!(error = %first_err, "nft batch refused; retrying from a fresh listing");
            let current: HashMap<_, _> = self.list().await?.into_iter().collect();
            plan.keep_present_removals(&current);
            plan.drop_net_overlaps(&current);
            transactions += 1;
            if !plan.is_empty() {
                let (doc, _) = self.batch_document(&plan);
                self.run_document(&doc)
                    .await
                    .map_err(|source| ApplyError::Command { changes, source })?;
            }
        }
        let mut report = plan.into_report(transactions, made_permanent, started);
        report.netlink_fallback = fallback;
        Ok(report)
    }

    /// Run `f` on the netlink socket on a blocking thread, after noting that thread as ours
    /// for the kernel watch (a transaction's generation note carries the id of the thread
    /// that sent it). The socket is kept when `keep` says so. `Err(None)`: netlink is not
    /// configured; `Err(Some(why))`: the socket cannot be opened (no permission, no
    /// nf_tables netlink in this kernel) or its thread failed (said in the log; the caller
    /// uses `nft` and reports why).
    async fn with_netlink<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut NfTables) -> T + Send + 'static,
        keep: impl FnOnce(&T) -> bool + Send + 'static,
    ) -> Result<T, Option<String>> {
        if !self.tools.config.uses_netlink() {
            return Err(None);
        }
        let held = self.netlink.lock().ok().and_then(|mut s| s.take());
        let socket = match held {
            Some(s) => s,
            None => match NfTables::open(
                self.tools.config.netns.as_deref(),
                self.tools.config.command_timeout,
            ) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open a netlink socket; using nft");
                    return Err(Some(format!("cannot open a netlink socket: {e}")));
                }
            },
        };
        let own = self.tools.runner.own.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut socket = socket;
            own.started(rustix::thread::gettid().as_raw_nonzero().get() as u32);
            let out = f(&mut socket);
            let keep = keep(&out);
            (keep.then_some(socket), out)
        })
        .await;
        match joined {
            Ok((socket, out)) => {
                if let Ok(mut held) = self.netlink.lock() {
                    *held = socket;
                }
                Ok(out)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the netlink thread failed; using nft");
                Err(Some(format!("the netlink thread failed: {e}")))
            }
        }
    }

    /// The plan over netlink, and how many bans went in as permanent; `Err`: use nft (see
    /// [`NftBackend::with_netlink`]).
    async fn netlink_write(
        &mut self,
        plan: &Plan,
    ) -> Result<(Result<u32, WriteError>, usize), Option<String>> {
        if !self.tools.config.uses_netlink() {
            return Err(None);
        }
        let (messages, made_permanent) = plan_messages(&self.tools.config.table, plan);
        self.tools.runner.own.begin();
        let r = self
            .with_netlink(
                move |s| s.transact(&messages),
                |r| !matches!(r, Err(WriteError::Transport(_))),
            )
            .await;
        self.tools.runner.own.end();
        r.map(|r| (r, made_permanent))
    }

    /// Our four sets over netlink, and how many of their elements are not ours to read;
    /// `Err`: netlink is not in use (see [`NftBackend::with_netlink`]).
    async fn netlink_list(&self) -> Result<Result<Listing, CommandError>, Option<String>> {
        let table = self.tools.config.table.clone();
        self.with_netlink(
            move |s| {
                let mut all = Vec::new();
                let mut foreign = 0;
                for kind in SetKind::ALL {
                    let (elements, f) =
                        s.list(&table, kind)
                            .map_err(|source| CommandError::Netlink {
                                operation: format!("listing of set {}", kind.nft_name()),
                                source,
                            })?;
                    all.extend(elements);
                    foreign += f;
                }
                Ok((all, foreign))
            },
            |r| r.is_ok(),
        )
        .await
    }

    async fn run_document(&self, doc: &Nftables<'_>) -> Result<(), CommandError> {
        let json = serde_json::to_vec(doc).map_err(|e| CommandError::Output {
            command: "nft -j -f -".to_owned(),
            detail: format!("cannot serialise the ruleset document: {e}"),
        })?;
        self.tools
            .runner
            .output(&self.tools.config.nft, &["-j", "-f", "-"], Some(json))
            .await
            .map(|_| ())
    }

    fn table_name(&self) -> Cow<'static, str> {
        Cow::Owned(self.tools.config.table.clone())
    }

    fn setup_document(&self) -> Nftables<'static> {
        let mut cmds = vec![NfObject::CmdObject(NfCmd::Add(NfListObject::Table(
            Table {
                family: NfFamily::INet,
                name: self.table_name(),
                handle: None,
            },
        )))];
        for kind in SetKind::ALL {
            cmds.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Set(
                Box::new(self.set_object(kind)),
            ))));
        }
        // Recreate our chains: an existing base chain cannot be re-added with another
        // priority, and re-adding rules would duplicate them. A plain `add chain` (no
        // hook) is accepted whether or not it exists, so add+flush+delete always works.
        for name in ["input", "forward"] {
            let plain = || {
                NfListObject::Chain(Chain {
                    family: NfFamily::INet,
                    table: self.table_name(),
                    name: Cow::Borrowed(name),
                    ..Chain::default()
                })
            };
            cmds.push(NfObject::CmdObject(NfCmd::Add(plain())));
            cmds.push(NfObject::CmdObject(NfCmd::Flush(
                nftables::schema::FlushObject::Chain(Chain {
                    family: NfFamily::INet,
                    table: self.table_name(),
                    name: Cow::Borrowed(name),
                    ..Chain::default()
                }),
            )));
            cmds.push(NfObject::CmdObject(NfCmd::Delete(plain())));
        }
        let mut hooks = vec![("input", NfHook::Input)];
        if self.tools.config.hook_forward {
            hooks.push(("forward", NfHook::Forward));
        }
        for (name, hook) in hooks {
            cmds.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(
                Chain {
                    family: NfFamily::INet,
                    table: self.table_name(),
                    name: Cow::Borrowed(name),
                    _type: Some(NfChainType::Filter),
                    hook: Some(hook),
                    prio: Some(self.tools.config.priority),
                    policy: Some(NfChainPolicy::Accept),
                    ..Chain::default()
                },
            ))));
            for kind in SetKind::ALL {
                let proto = if kind.is_v6() { "ip6" } else { "ip" };
                let verdict = match self.tools.config.verdict {
                    Verdict::Drop => Statement::Drop(None),
                    Verdict::Reject => Statement::Reject(None),
                };
                let expr = vec![
                    Statement::Match(Match {
                        left: Expression::Named(NamedExpression::Payload(Payload::PayloadField(
                            PayloadField {
                                protocol: Cow::Borrowed(proto),
                                field: Cow::Borrowed("saddr"),
                            },
                        ))),
                        right: Expression::String(Cow::Owned(format!("@{}", kind.nft_name()))),
                        op: Operator::EQ,
                    }),
                    verdict,
                ];
                cmds.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(
                    nftables::schema::Rule {
                        family: NfFamily::INet,
                        table: self.table_name(),
                        chain: Cow::Borrowed(name),
                        expr: Cow::Owned(expr),
                        handle: None,
                        index: None,
                        comment: None,
                    },
                ))));
            }
        }
        document(cmds)
    }

    /// `flush` of our four sets followed by the plan's additions, as one transaction in nft's
    /// own syntax: for 100k elements nft reads it in about 0.5 s, the JSON document in 0.8 s
    /// (the refill is the heal after `nft flush ruleset`). Only our names and formatted
    /// addresses go into it.
    fn refill_script(&self, plan: &Plan) -> (String, usize) {
        use std::fmt::Write;
        let table = &self.tools.config.table;
        let mut script = String::with_capacity(64 + plan.add.len() * 32);
        for kind in SetKind::ALL {
            let _ = writeln!(script, "flush set inet {table} {}", kind.nft_name());
        }
        let mut made_permanent = 0;
        for kind in SetKind::ALL {
            let mut first = true;
            for (target, timeout) in plan.add.iter().filter(|(t, _)| SetKind::of(t) == kind) {
                if first {
                    let _ = write!(script, "add element inet {table} {} {{ ", kind.nft_name());
                    first = false;
                } else {
                    script.push_str(", ");
                }
                if kind.is_net() {
                    let _ = write!(script, "{}/{}", target.network(), target.prefix_len());
                } else {
                    let _ = write!(script, "{}", target.addr());
                }
                match timeout.map(timeout_secs) {
                    Some(s) if s <= MAX_TIMEOUT_SECS => {
                        let _ = write!(script, " timeout {s}s");
                    }
                    Some(_) => made_permanent += 1,
                    None => {}
                }
            }
            if !first {
                script.push_str(" }\n");
            }
        }
        (script, made_permanent)
    }

    /// Our set `kind` as an nft object (used to create and to flush it).
    fn set_object(&self, kind: SetKind) -> Set<'static> {
        let mut flags = HashSet::from([SetFlag::Timeout]);
        if kind.is_net() {
            flags.insert(SetFlag::Interval);
        }
        Set {
            family: NfFamily::INet,
            table: self.table_name(),
            name: Cow::Borrowed(kind.nft_name()),
            handle: None,
            set_type: SetTypeValue::Single(if kind.is_v6() {
                SetType::Ipv6Addr
            } else {
                SetType::Ipv4Addr
            }),
            policy: None,
            flags: Some(flags),
            elem: None,
            timeout: None,
            gc_interval: None,
            size: None,
            comment: None,
        }
    }

    /// The transaction for a plan: per set, `add` (plain) of every removal, `delete` of
    /// every removal, then `add` of every addition. Returns it and how many bans were
    /// too long for an nft timeout and went in as permanent.
    fn batch_document(&self, plan: &Plan) -> (Nftables<'static>, usize) {
        let mut trick: HashMap<SetKind, Vec<Expression<'static>>> = HashMap::new();
        let mut adds: HashMap<SetKind, Vec<Expression<'static>>> = HashMap::new();
        for target in &plan.remove {
            trick
                .entry(SetKind::of(target))
                .or_default()
                .push(value(target));
        }
        let mut made_permanent = 0;
        for (target, timeout) in &plan.add {
            let secs = timeout.map(timeout_secs);
            let elem = match secs {
                Some(s) if s <= MAX_TIMEOUT_SECS => {
                    Expression::Named(NamedExpression::Elem(Elem {
                        val: Box::new(value(target)),
                        timeout: u32::try_from(s).ok(),
                        expires: None,
                        comment: None,
                        counter: None,
                    }))
                }
                Some(_) => {
                    made_permanent += 1;
                    value(target)
                }
                None => value(target),
            };
            adds.entry(SetKind::of(target)).or_default().push(elem);
        }
        let mut cmds = Vec::new();
        let element = |kind: SetKind, elems: Vec<Expression<'static>>| {
            NfListObject::Element(Element {
                family: NfFamily::INet,
                table: self.table_name(),
                name: Cow::Borrowed(kind.nft_name()),
                elem: Cow::Owned(elems),
            })
        };
        for kind in SetKind::ALL {
            if let Some(elems) = trick.remove(&kind) {
                cmds.push(NfObject::CmdObject(NfCmd::Add(element(
                    kind,
                    elems.clone(),
                ))));
                cmds.push(NfObject::CmdObject(NfCmd::Delete(element(kind, elems))));
            }
        }
        for kind in SetKind::ALL {
            if let Some(elems) = adds.remove(&kind) {
                cmds.push(NfObject::CmdObject(NfCmd::Add(element(kind, elems))));
            }
        }
        (document(cmds), made_permanent)
    }
}

fn document(cmds: Vec<NfObject<'static>>) -> Nftables<'static> {
    Nftables {
        objects: Cow::Owned(cmds),
    }
}

/// The set element value for a target: an address, or an address/length prefix.
fn value(target: &IpNet) -> Expression<'static> {
    if SetKind::of(target).is_net() {
        Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(Expression::String(Cow::Owned(target.network().to_string()))),
            len: u32::from(target.prefix_len()),
        }))
    } else {
        Expression::String(Cow::Owned(target.addr().to_string()))
    }
}

/// Elements of our four sets from `nft -j list table inet <table>` output.
fn parse_listing(json: &[u8], table: &str) -> Result<Vec<(IpNet, Option<Duration>)>, String> {
    let doc: Nftables<'static> =
        serde_json::from_slice(json).map_err(|e| format!("invalid nft json: {e}"))?;
    let ours: HashSet<&str> = SetKind::ALL.iter().map(|k| k.nft_name()).collect();
    let mut out = Vec::new();
    for obj in doc.objects.iter() {
        let NfObject::ListObject(NfListObject::Set(set)) = obj else {
            continue;
        };
        if set.table != table || !ours.contains(set.name.as_ref()) {
            continue;
        }
        for e in set.elem.iter().flat_map(|v| v.iter()) {
            match parse_element(e) {
                Some(entry) => out.push(entry),
                None => {
                    tracing::warn!(set = %set.name, element = ?e, "ignoring an nft set element we did not write")
                }
            }
        }
    }
    Ok(out)
}

fn parse_element(e: &Expression<'_>) -> Option<(IpNet, Option<Duration>)> {
    match e {
        Expression::String(s) => Some((IpNet::from(s.parse::<std::net::IpAddr>().ok()?), None)),
        Expression::Named(NamedExpression::Prefix(p)) => {
            let Expression::String(addr) = p.addr.as_ref() else {
                return None;
            };
            let addr: std::net::IpAddr = addr.parse().ok()?;
            let len = u8::try_from(p.len).ok()?;
            Some((IpNet::new(addr, len).ok()?.trunc(), None))
        }
        Expression::Named(NamedExpression::Elem(elem)) => {
            let (target, _) = parse_element(&elem.val)?;
            let remaining = match (elem.expires, elem.timeout) {
                (Some(x), _) => Some(Duration::from_secs(u64::from(x))),
                (None, Some(t)) => Some(Duration::from_secs(u64::from(t))),
                (None, None) => None,
            };
            Some((target, remaining))
        }
        _ => None,
    }
}

/// An error and its sources on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        next = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_is_parsed() {
        let json = br#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "pc", "handle": 1}},
        {"set": {"family": "inet", "name": "addr4", "table": "pc", "type": "ipv4_addr", "handle": 2, "flags": ["timeout"],
           "elem": ["192.0.2.7", {"elem": {"val": "192.0.2.8", "timeout": 600, "expires": 599}}]}},
        {"set": {"family": "inet", "name": "net6", "table": "pc", "type": "ipv6_addr", "handle": 3, "flags": ["interval", "timeout"],
           "elem": [{"prefix": {"addr": "2001:db8::", "len": 64}}, {"elem": {"val": {"prefix": {"addr": "2001:db8:1::", "len": 48}}, "timeout": 60, "expires": 30}}]}},
        {"set": {"family": "inet", "name": "other", "table": "pc", "type": "ipv4_addr", "handle": 4, "elem": ["198.51.100.1"]}}]}"#;
        let got = parse_listing(json, "pc").unwrap();
        let want: Vec<(IpNet, Option<Duration>)> = vec![
            ("192.0.2.7/32".parse().unwrap(), None),
            (
                "192.0.2.8/32".parse().unwrap(),
                Some(Duration::from_secs(599)),
            ),
            ("2001:db8::/64".parse().unwrap(), None),
            (
                "2001:db8:1::/48".parse().unwrap(),
                Some(Duration::from_secs(30)),
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn the_refill_is_nft_syntax_of_our_names_and_addresses() {
        let b = NftBackend::new(FirewallConfig::default()).unwrap();
        let plan = Plan {
            add: vec![
                (
                    "192.0.2.1/32".parse().unwrap(),
                    Some(Duration::from_secs(60)),
                ),
                ("192.0.2.2/32".parse().unwrap(), None),
                (
                    "2001:db8::/64".parse().unwrap(),
                    Some(Duration::from_millis(1500)),
                ),
            ],
            ..Plan::default()
        };
        let (script, permanent) = b.refill_script(&plan);
        assert_eq!(permanent, 0);
        assert_eq!(
            script,
            "flush set inet portcullis addr4\nflush set inet portcullis addr6\n\
             flush set inet portcullis net4\nflush set inet portcullis net6\n\
             add element inet portcullis addr4 { 192.0.2.1 timeout 60s, 192.0.2.2 }\n\
             add element inet portcullis net6 { 2001:db8::/64 timeout 2s }\n"
        );
    }

    #[test]
    fn removals_use_add_then_delete() {
        let b = NftBackend::new(FirewallConfig::default()).unwrap();
        let plan = Plan::from_changes(&[
            Change::Remove {
                target: "192.0.2.2/32".parse().unwrap(),
            },
            Change::Add {
                target: "198.51.100.0/24".parse().unwrap(),
                timeout: Some(Duration::from_millis(2500)),
            },
        ]);
        let (doc, _) = b.batch_document(&plan);
        let json = serde_json::to_value(&doc).unwrap();
        let cmds = json["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0]["add"]["element"]["name"], "addr4");
        assert_eq!(cmds[1]["delete"]["element"]["elem"][0], "192.0.2.2");
        let added = &cmds[2]["add"]["element"];
        assert_eq!(added["name"], "net4");
        assert_eq!(added["elem"][0]["elem"]["timeout"], 3);
        assert_eq!(added["elem"][0]["elem"]["val"]["prefix"]["len"], 24);
    }
}
