//! The engine choice: nftables, ipset + iptables, or dry run, as one enum.

use std::fmt;
use std::time::Duration;

use ipnet::IpNet;

use crate::change::{ApplyReport, Change, ElementCounts};
use crate::config::FirewallConfig;
use crate::dry_run::DryRunBackend;
use crate::error::{
    ApplyError, ConfigError, DetectError, ListError, ReconcileError, SetupError, TeardownError,
};
use crate::ipset::IpsetBackend;
use crate::nft::{NftBackend, error_chain};
use crate::watch::KernelWatch;

/// Bans looked up in the kernel before a restart trusts an unchanged generation.
pub const INTACT_SAMPLE: usize = 64;

/// The kernel firewall portcullis drives. One variant per engine; every operation takes
/// a whole batch so the caller never pays one process per ban.
#[derive(Debug)]
pub enum Firewall {
    /// nftables: table `inet <table>`, one transaction per batch.
    Nft(NftBackend),
    /// ipset + iptables/ip6tables, for hosts without nftables.
    Ipset(IpsetBackend),
    /// Logs what it would do and touches nothing (`--dry-run`).
    DryRun(DryRunBackend),
}

impl Firewall {
    /// Pick the engine that works here: nftables when `nft list tables` succeeds, else
    /// ipset + iptables when `ipset list -n` and `iptables -S INPUT` succeed.
    pub async fn detect(config: FirewallConfig) -> Result<Firewall, DetectError> {
        let nft = NftBackend::new(config.clone())?;
        let nft_err = match nft.probe().await {
            Ok(()) => return Ok(Firewall::Nft(nft)),
            Err(e) => e,
        };
        let ipset = IpsetBackend::new(config)?;
        match ipset.probe().await {
            Ok(()) => Ok(Firewall::Ipset(ipset)),
            Err(e) => Err(DetectError::NoBackend {
                nft: Box::new(nft_err),
                ipset: Box::new(e),
            }),
        }
    }

    /// The nftables engine, without probing.
    pub fn nft(config: FirewallConfig) -> Result<Firewall, ConfigError> {
        Ok(Firewall::Nft(NftBackend::new(config)?))
    }

    /// The ipset + iptables engine, without probing.
    pub fn ipset(config: FirewallConfig) -> Result<Firewall, ConfigError> {
        Ok(Firewall::Ipset(IpsetBackend::new(config)?))
    }

    /// The dry-run engine.
    pub fn dry_run() -> Firewall {
        Firewall::DryRun(DryRunBackend::new())
    }

    /// `"nftables"`, `"ipset"` or `"dry-run"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Firewall::Nft(_) => "nftables",
            Firewall::Ipset(_) => "ipset",
            Firewall::DryRun(_) => "dry-run",
        }
    }

    /// Create our table/sets/chains (or sets/rules). Idempotent: run it at every start.
    pub async fn setup(&mut self) -> Result<(), SetupError> {
        match self {
            Firewall::Nft(b) => b.setup().await,
            Firewall::Ipset(b) => b.setup().await,
            Firewall::DryRun(b) => {
                b.setup();
                Ok(())
            }
        }
    }

    /// Apply a batch: every change of one call in one transaction (nft) or one
    /// `ipset restore`. The last change per target wins; removing an absent element is
    /// fine.
    pub async fn apply(&mut self, changes: &[Change]) -> Result<ApplyReport, ApplyError> {
        match self {
            Firewall::Nft(b) => b.apply(changes).await,
            Firewall::Ipset(b) => b.apply(changes).await,
            Firewall::DryRun(b) => Ok(b.apply(changes)),
        }
    }

    /// What the kernel sets hold: each target with its remaining time (`None` =
    /// permanent). Addresses come back as /32 or /128.
    pub async fn list(&self) -> Result<Vec<(IpNet, Option<Duration>)>, ListError> {
        match self {
            Firewall::Nft(b) => b.list().await,
            Firewall::Ipset(b) => b.list().await,
            Firewall::DryRun(b) => Ok(b.list()),
        }
    }

    /// Make the kernel sets hold exactly `desired` (from the store at start): missing
    /// elements added, stale ones removed, wrong timeouts replaced, in one transaction.
    pub async fn reconcile(
        &mut self,
        desired: &[(IpNet, Option<Duration>)],
    ) -> Result<ApplyReport, ReconcileError> {
        match self {
            Firewall::Nft(b) => b.reconcile(desired).await,
            Firewall::Ipset(b) => b.reconcile(desired).await,
            Firewall::DryRun(b) => Ok(b.reconcile(desired)),
        }
    }

    /// The kernel's ruleset generation where the backend has one (nftables over netlink):
    /// it changes with every committed transaction of anyone's, so an unchanged value
    /// means the sets are as the last transaction left them.
    pub async fn generation(&self) -> Option<u32> {
        match self {
            Firewall::Nft(b) => b.generation().await,
            Firewall::Ipset(_) | Firewall::DryRun(_) => None,
        }
    }

    /// [`reconcile`](Self::reconcile), unless the caller knows the kernel sets hold
    /// `desired` (`intact`: the ruleset generation and the store are what they were after
    /// the last transaction it checked, see the daemon's start). Then up to
    /// [`INTACT_SAMPLE`] of the bans are looked up one by one (point lookups, no listing);
    /// all present: nothing is sent (`Ok(None)`); one missing or a lookup failing: the full
    /// reconcile, as without `intact`.
    pub async fn reconcile_unless_intact(
        &mut self,
        desired: &[(IpNet, Option<Duration>)],
        intact: bool,
    ) -> Result<Option<ApplyReport>, ReconcileError> {
        if intact
            && let Firewall::Nft(b) = self
            && b.sample_present(desired, INTACT_SAMPLE).await
        {
            return Ok(None);
        }
        self.reconcile(desired).await.map(Some)
    }

    /// At stop: leave everything (`flush == false`, the default: bans hold while the
    /// daemon is down) or delete our table/rules/sets.
    pub async fn teardown(&mut self, flush: bool) -> Result<(), TeardownError> {
        match self {
            Firewall::Nft(b) => b.teardown(flush).await,
            Firewall::Ipset(b) => b.teardown(flush).await,
            Firewall::DryRun(b) => {
                b.teardown(flush);
                Ok(())
            }
        }
    }

    /// A watch that reports changes others make to our part of the kernel (see
    /// [`KernelWatch`]); `None` for the dry run. Needs a tokio runtime.
    pub fn watch(&self) -> Option<KernelWatch> {
        match self {
            Firewall::Nft(b) => Some(b.watch()),
            Firewall::Ipset(b) => Some(KernelWatch::ipset(b.config().clone())),
            Firewall::DryRun(_) => None,
        }
    }

    /// The last failed setup/apply/reconcile/teardown, if the last such call failed.
    fn last_error(&self) -> Option<String> {
        match self {
            Firewall::Nft(b) => b.last_error().map(str::to_owned),
            Firewall::Ipset(b) => b.last_error().map(str::to_owned),
            Firewall::DryRun(_) => None,
        }
    }

    /// The firewall's health at a cost that does not grow with the sets (for `status`):
    /// nftables: our table, sets and rules are there (a terse listing, no element fetched)
    /// and the counts are `in_force`, what the daemon put there; ipset: the counts the
    /// kernel's set headers give, and the rules are there. The counts are `None` when our
    /// structure is missing (the kernel watch heals it).
    pub async fn check(&self, in_force: ElementCounts) -> Health {
        let (counts, check_error) = match self {
            Firewall::Nft(b) => match b.missing().await {
                None => (Some(in_force), None),
                Some(m) => (None, Some(format!("missing from the kernel: {m}"))),
            },
            Firewall::Ipset(b) => match b.check().await {
                Ok((counts, None)) => (Some(counts), None),
                Ok((_, Some(m))) => (None, Some(format!("missing from the kernel: {m}"))),
                Err(e) => (None, Some(error_chain(&e))),
            },
            Firewall::DryRun(_) => (Some(in_force), None),
        };
        let last_error = self.last_error();
        Health {
            backend: self.backend_name(),
            counts,
            last_error: last_error.or(check_error),
        }
    }

    /// A full status for diagnostics: engine, element counts read from the kernel now (a
    /// listing of every element), and the last error.
    pub async fn health(&self) -> Health {
        let (counts, list_error) = match self.list().await {
            Ok(v) => (Some(ElementCounts::of(&v)), None),
            Err(e) => (None, Some(error_chain(&e))),
        };
        let last_error = self.last_error();
        Health {
            backend: self.backend_name(),
            counts,
            last_error: last_error.or(list_error),
        }
    }
}

/// Firewall status for `portcullis status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// `"nftables"`, `"ipset"` or `"dry-run"`.
    pub backend: &'static str,
    /// Elements per set; `None` when the sets could not be read.
    pub counts: Option<ElementCounts>,
    /// The last failed operation (or the listing failure), if any.
    pub last_error: Option<String>,
}

impl Health {
    /// Whether the firewall is usable and the last operation succeeded.
    pub fn is_ok(&self) -> bool {
        self.counts.is_some() && self.last_error.is_none()
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.backend)?;
        if let Some(c) = &self.counts {
            write!(
                f,
                ": {} addresses ({} IPv4, {} IPv6), {} networks ({} IPv4, {} IPv6)",
                c.addr4 + c.addr6,
                c.addr4,
                c.addr6,
                c.net4 + c.net6,
                c.net4,
                c.net6
            )?;
        }
        if let Some(e) = &self.last_error {
            write!(f, "; last error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dry_run_health() {
        let mut fw = Firewall::dry_run();
        fw.setup().await.unwrap();
        fw.apply(&[Change::Add {
            target: "2001:db8::/64".parse().unwrap(),
            timeout: None,
        }])
        .await
        .unwrap();
        let h = fw.health().await;
        assert!(h.is_ok());
        assert_eq!(
            h.to_string(),
            "dry-run: 0 addresses (0 IPv4, 0 IPv6), 1 networks (0 IPv4, 1 IPv6)"
        );
    }

    #[tokio::test]
    async fn detect_fails_cleanly_without_tools() {
        let config = FirewallConfig {
            nft: "/nonexistent/nft".into(),
            ipset: "/nonexistent/ipset".into(),
            ..FirewallConfig::default()
        };
        let err = Firewall::detect(config).await.unwrap_err();
        assert!(matches!(err, DetectError::NoBackend { .. }), "{err:?}");
    }
}
