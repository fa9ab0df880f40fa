//! The ipset + iptables backend, for hosts without nftables.
//!
//! Four ipsets with timeout support (`<table>4`, `<table>6` of type `hash:ip`,
//! `<table>-net4`, `<table>-net6` of type `hash:net`), one `iptables -w`/`ip6tables -w`
//! rule per set in `INPUT` (and `FORWARD` when enabled), inserted only when `-C` says it
//! is missing. A batch is one `ipset -exist restore` process: `-exist` makes removing an
//! absent element and re-adding a present one (which refreshes its timeout) succeed.
//! ipset has no transactions: if a line fails, the lines before it are applied.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::change::{ApplyReport, Change, ElementCounts, Plan, SetKind, timeout_secs};
use crate::command::Tools;
use crate::config::{FirewallConfig, Verdict};
use crate::error::{
    ApplyError, CommandError, ConfigError, ListError, ReconcileError, SetupError, TeardownError,
};

/// The largest element timeout the kernel's ipset accepts, in seconds
/// (`IPSET_MAX_TIMEOUT`, about 24.8 days). Longer bans go in as permanent elements.
const MAX_TIMEOUT_SECS: u64 = 2_147_483;

/// Upper bound on duplicate rules removed per (chain, set, verdict) at setup/teardown.
const MAX_DUPLICATE_RULES: usize = 64;

/// The ipset + iptables engine. Owns four ipsets and the rules pointing at them.
#[derive(Debug)]
pub struct IpsetBackend {
    /// Configuration, runner, last error.
    tools: Tools,
}

impl IpsetBackend {
    /// A backend for `config`. Touches nothing until [`IpsetBackend::setup`].
    pub fn new(config: FirewallConfig) -> Result<IpsetBackend, ConfigError> {
        Ok(IpsetBackend {
            tools: Tools::new(config)?,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FirewallConfig {
        &self.tools.config
    }

    /// The sets' element counts from their headers (`ipset list -t`, no element fetched) and
    /// what of the sets and iptables rules is missing, if anything.
    pub async fn check(&self) -> Result<(ElementCounts, Option<String>), CommandError> {
        crate::watch::ipset_check(&self.tools.runner, &self.tools.config).await
    }

    /// The last error of setup/apply/reconcile/teardown, if the last such call failed.
    pub fn last_error(&self) -> Option<&str> {
        self.tools.last_error()
    }

    /// The ipset name for a set kind.
    pub(crate) fn set_name(&self, kind: SetKind) -> String {
        set_name(&self.tools.config.table, kind)
    }

    /// Whether `ipset list -n` and `iptables -w -S INPUT` work (used by detection).
    pub async fn probe(&self) -> Result<(), CommandError> {
        self.tools
            .runner
            .output(&self.tools.config.ipset, &["list", "-n"], None)
            .await?;
        self.tools
            .runner
            .output(&self.tools.config.iptables, &["-w", "-S", "INPUT"], None)
            .await?;
        Ok(())
    }

    /// Create the sets (if missing) and make exactly one rule per set and hooked chain
    /// exist, with the configured verdict. Idempotent; elements stay.
    pub async fn setup(&mut self) -> Result<(), SetupError> {
        let r = self.setup_inner().await;
        self.tools.note(r.as_ref().err());
        r.map_err(SetupError::from)
    }

    async fn setup_inner(&self) -> Result<(), CommandError> {
        let mut script = String::new();
        for kind in SetKind::ALL {
            let _ = writeln!(
                script,
                "create {} {} family {} timeout 0 maxelem {}",
                self.set_name(kind),
                if kind.is_net() { "hash:net" } else { "hash:ip" },
                if kind.is_v6() { "inet6" } else { "inet" },
                self.tools.config.ipset_maxelem
            );
        }
        self.restore(script).await?;
        let wanted = self.tools.config.verdict;
        for chain in ["INPUT", "FORWARD"] {
            let hooked = chain == "INPUT" || self.tools.config.hook_forward;
            for kind in SetKind::ALL {
                for verdict in [Verdict::Drop, Verdict::Reject] {
                    if hooked && verdict == wanted {
                        self.ensure_rule(chain, kind, verdict).await?;
                    } else {
                        self.remove_rule(chain, kind, verdict).await?;
                    }
                }
            }
        }
        Ok(())
    }

    fn rule_args(
        &self,
        op: &'static str,
        chain: &'static str,
        kind: SetKind,
        verdict: Verdict,
    ) -> Vec<String> {
        vec![
            "-w".into(),
            op.into(),
            chain.into(),
            "-m".into(),
            "set".into(),
            "--match-set".into(),
            self.set_name(kind),
            "src".into(),
            "-j".into(),
            match verdict {
                Verdict::Drop => "DROP",
                Verdict::Reject => "REJECT",
            }
            .into(),
        ]
    }

    fn tables_binary(&self, kind: SetKind) -> &PathBuf {
        if kind.is_v6() {
            &self.tools.config.ip6tables
        } else {
            &self.tools.config.iptables
        }
    }

    /// Whether the rule exists (`-C` exits 1 when it does not).
    async fn rule_present(
        &self,
        chain: &'static str,
        kind: SetKind,
        verdict: Verdict,
    ) -> Result<bool, CommandError> {
        let args = self.rule_args("-C", chain, kind, verdict);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let done = self
            .tools
            .runner
            .run(self.tables_binary(kind), &argv, None)
            .await?;
        match done.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => done.success().map(|_| false),
        }
    }

    /// Feed `script` to one `ipset -exist restore` (the batch; see the module docs).
    async fn restore(&self, script: String) -> Result<Vec<u8>, CommandError> {
        let ipset = &self.tools.config.ipset;
        let stdin = Some(script.into_bytes());
        self.tools
            .runner
            .output(ipset, &["-exist", "restore"], stdin)
            .await
    }

    /// Run `iptables -w <op> <rule>` (`-I` inserts, `-D` deletes), failing when it fails.
    async fn change_rule(
        &self,
        op: &'static str,
        chain: &'static str,
        kind: SetKind,
        verdict: Verdict,
    ) -> Result<(), CommandError> {
        let args = self.rule_args(op, chain, kind, verdict);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tools
            .runner
            .output(self.tables_binary(kind), &argv, None)
            .await?;
        Ok(())
    }

    async fn ensure_rule(
        &self,
        chain: &'static str,
        kind: SetKind,
        verdict: Verdict,
    ) -> Result<(), CommandError> {
        if !self.rule_present(chain, kind, verdict).await? {
            self.change_rule("-I", chain, kind, verdict).await?;
        }
        Ok(())
    }

    async fn remove_rule(
        &self,
        chain: &'static str,
        kind: SetKind,
        verdict: Verdict,
    ) -> Result<(), CommandError> {
        for _ in 0..MAX_DUPLICATE_RULES {
            if !self.rule_present(chain, kind, verdict).await? {
                break;
            }
            self.change_rule("-D", chain, kind, verdict).await?;
        }
        Ok(())
    }

    /// Apply a batch with one `ipset -exist restore`.
    pub async fn apply(&mut self, changes: &[Change]) -> Result<ApplyReport, ApplyError> {
        let started = Instant::now();
        let plan = Plan::from_changes(changes);
        let r = self.apply_plan(plan, changes.len(), started).await;
        self.tools.note(r.as_ref().err());
        r
    }

    async fn apply_plan(
        &self,
        plan: Plan,
        changes: usize,
        started: Instant,
    ) -> Result<ApplyReport, ApplyError> {
        let (mut transactions, mut made_permanent) = (0, 0);
        if !plan.is_empty() {
            let (script, permanent) = self.batch_script(&plan);
            self.restore(script)
                .await
                .map_err(|source| ApplyError::Command { changes, source })?;
            transactions = 1;
            made_permanent = permanent;
        }
        Ok(plan.into_report(transactions, made_permanent, started))
    }

    /// `del` lines for removals (skipped for replaced targets: `-exist add` updates them in
    /// place, with no window where the address is unbanned), then `add` lines.
    fn batch_script(&self, plan: &Plan) -> (String, usize) {
        let mut script = String::with_capacity(plan.add.len() * 48 + plan.remove.len() * 40);
        let re_added: HashSet<&IpNet> = plan.add.iter().map(|(t, _)| t).collect();
        for target in &plan.remove {
            if !re_added.contains(target) {
                let _ = writeln!(
                    script,
                    "del {} {}",
                    self.set_name(SetKind::of(target)),
                    element(target)
                );
            }
        }
        let mut made_permanent = 0;
        for (target, timeout) in &plan.add {
            let secs = match timeout.map(timeout_secs) {
                None => 0,
                Some(s) if s > MAX_TIMEOUT_SECS => {
                    made_permanent += 1;
                    0
                }
                Some(s) => s,
            };
            let _ = writeln!(
                script,
                "add {} {} timeout {secs}",
                self.set_name(SetKind::of(target)),
                element(target)
            );
        }
        (script, made_permanent)
    }

    /// Every element of our four sets with its remaining time (`None` = permanent).
    pub async fn list(&self) -> Result<Vec<(IpNet, Option<Duration>)>, ListError> {
        let mut out = Vec::new();
        for kind in SetKind::ALL {
            let name = self.set_name(kind);
            let text = self
                .tools
                .runner
                .output(
                    &self.tools.config.ipset,
                    &["list", &name, "-output", "save"],
                    None,
                )
                .await?;
            parse_save(&String::from_utf8_lossy(&text), &name, &mut out);
        }
        Ok(out)
    }

    /// Make the sets hold exactly `desired` (one `ipset -exist restore`).
    pub async fn reconcile(
        &mut self,
        desired: &[(IpNet, Option<Duration>)],
    ) -> Result<ApplyReport, ReconcileError> {
        let started = Instant::now();
        let r = async {
            let current: HashMap<_, _> = self.list().await?.into_iter().collect();
            let plan = Plan::reconcile(&current, desired);
            let n = plan.add.len() + plan.remove.len();
            Ok(self.apply_plan(plan, n, started).await?)
        }
        .await;
        self.tools.note(r.as_ref().err());
        r
    }

    /// At stop: with `flush`, delete our rules and destroy our sets; without, leave
    /// everything in place so bans hold while the daemon is down.
    pub async fn teardown(&mut self, flush: bool) -> Result<(), TeardownError> {
        if !flush {
            return Ok(());
        }
        let r = async {
            let names = self
                .tools
                .runner
                .output(&self.tools.config.ipset, &["list", "-n"], None)
                .await?;
            let names = String::from_utf8_lossy(&names);
            let existing: HashSet<&str> = names.lines().map(str::trim).collect();
            // A rule can only name an existing set (and `-C` fails on a missing one).
            let ours: Vec<SetKind> = SetKind::ALL
                .into_iter()
                .filter(|k| existing.contains(self.set_name(*k).as_str()))
                .collect();
            for chain in ["INPUT", "FORWARD"] {
                for kind in &ours {
                    for verdict in [Verdict::Drop, Verdict::Reject] {
                        self.remove_rule(chain, *kind, verdict).await?;
                    }
                }
            }
            for kind in ours {
                let name = self.set_name(kind);
                self.tools
                    .runner
                    .output(&self.tools.config.ipset, &["destroy", &name], None)
                    .await?;
            }
            Ok::<(), CommandError>(())
        }
        .await;
        self.tools.note(r.as_ref().err());
        r.map_err(TeardownError::from)
    }
}

/// An ipset element: the bare address for /32 and /128, `net/len` otherwise.
/// The ipset name of our set `kind` for table name `t`.
pub(crate) fn set_name(t: &str, kind: SetKind) -> String {
    match kind {
        SetKind::Addr4 => format!("{t}4"),
        SetKind::Addr6 => format!("{t}6"),
        SetKind::Net4 => format!("{t}-net4"),
        SetKind::Net6 => format!("{t}-net6"),
    }
}

fn element(target: &IpNet) -> String {
    if SetKind::of(target).is_net() {
        target.to_string()
    } else {
        target.addr().to_string()
    }
}

/// `add <set> <addr>[/len] [timeout N] …` lines of `ipset save` output for set `name`.
fn parse_save(text: &str, name: &str, out: &mut Vec<(IpNet, Option<Duration>)>) {
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some("add") || words.next() != Some(name) {
            continue;
        }
        let Some(value) = words.next() else { continue };
        let target = match value.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(_) => match value.parse::<std::net::IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    tracing::warn!(set = name, line, "ignoring an ipset element we cannot read");
                    continue;
                }
            },
        };
        let mut remaining = None;
        while let Some(w) = words.next() {
            if w == "timeout" {
                remaining = words
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|&n| n > 0)
                    .map(Duration::from_secs);
            }
        }
        out.push((target, remaining));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_output_is_parsed() {
        let text = "create pc4 hash:ip family inet hashsize 1024 maxelem 1000000 timeout 0 bucketsize 12 initval 0x25d1dd57\n\
                    add pc4 192.0.2.9 timeout 49\n\
                    add pc4 192.0.2.10 timeout 0\n\
                    add pc-net4 10.0.0.0/24 timeout 3\n";
        let mut out = Vec::new();
        parse_save(text, "pc4", &mut out);
        assert_eq!(
            out,
            vec![
                (
                    "192.0.2.9/32".parse().unwrap(),
                    Some(Duration::from_secs(49))
                ),
                ("192.0.2.10/32".parse().unwrap(), None),
            ]
        );
        let mut nets = Vec::new();
        parse_save(text, "pc-net4", &mut nets);
        assert_eq!(
            nets,
            vec![("10.0.0.0/24".parse().unwrap(), Some(Duration::from_secs(3)))]
        );
    }

    #[test]
    fn batch_script_lines() {
        let b = IpsetBackend::new(FirewallConfig {
            table: "pc".into(),
            ..FirewallConfig::default()
        })
        .unwrap();
        let current: HashMap<IpNet, Option<Duration>> = [(
            "192.0.2.3/32".parse().unwrap(),
            Some(Duration::from_secs(5)),
        )]
        .into_iter()
        .collect();
        let mut plan = Plan::reconcile(
            &current,
            &[
                ("192.0.2.3/32".parse().unwrap(), None),
                (
                    "2001:db8::/64".parse().unwrap(),
                    Some(Duration::from_secs(100_000_000)),
                ),
            ],
        );
        plan.remove.push("192.0.2.4/32".parse().unwrap());
        let (script, permanent) = b.batch_script(&plan);
        assert_eq!(
            script,
            "del pc4 192.0.2.4\nadd pc4 192.0.2.3 timeout 0\nadd pc-net6 2001:db8::/64 timeout 0\n"
        );
        assert_eq!(permanent, 1);
    }
}
