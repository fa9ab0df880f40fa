//! portcullis-firewall: puts bans into the kernel firewall (nftables, or ipset + iptables)
//! and reads them back.
//!
//! Key decision: batches, not calls. Every [`Firewall::apply`] is one nfnetlink batch of
//! set elements (`nfnl`, no process, no JSON; `nft -j -f -` is the reported fallback and
//! does the table/chain/set setup) or one `ipset -exist restore`; temporary bans are kernel elements with
//! timeouts that expire by themselves, and [`Firewall::reconcile`] makes the kernel agree
//! with the store at start. Only our own table (or our own sets and rules) is touched;
//! tools run without a shell, with a timeout, and their arguments are our names and
//! formatted addresses, never log text. A [`KernelWatch`] notices within a second when
//! someone else deletes our table, rules, sets or elements, so the daemon can heal them.
#![deny(missing_docs)]

mod change;
mod command;
mod config;
mod dry_run;
mod error;
mod firewall;
mod ipset;
mod netlink;
mod nfnl;
mod nft;
mod watch;

pub use change::{ApplyReport, Change, ElementCounts, RejectReason, Rejected, timeout_at};
pub use config::{FirewallConfig, Verdict};
pub use dry_run::DryRunBackend;
pub use error::{
    ApplyError, CommandError, ConfigError, DetectError, ListError, ReconcileError, SetupError,
    TeardownError,
};
pub use firewall::{Firewall, Health, INTACT_SAMPLE};
pub use ipset::IpsetBackend;
pub use nft::NftBackend;
pub use watch::{KernelEvent, KernelWatch, PROBE_INTERVAL};
