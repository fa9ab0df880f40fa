//! One error type per operation; all of them end in a [`CommandError`] when a tool failed.

use std::process::ExitStatus;
use std::time::Duration;

/// Running one firewall tool (`nft`, `ipset`, `iptables`) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The program could not be started (missing binary, permissions).
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line, for the log.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Feeding stdin or reading the output failed.
    #[error("i/o with `{command}` failed")]
    Io {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The program ran longer than `command_timeout` and was killed.
    #[error("`{command}` did not finish within {after:?}")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit that was hit.
        after: Duration,
    },
    /// The program exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// The start of what it wrote to stderr.
        stderr: String,
    },
    /// Writing or reading set elements over netlink failed.
    #[error("netlink {operation} failed")]
    Netlink {
        /// What was being done.
        operation: String,
        /// The kernel's answer or the socket error.
        #[source]
        source: std::io::Error,
    },
    /// The program succeeded but printed something we cannot read.
    #[error("cannot parse the output of `{command}`: {detail}")]
    Output {
        /// The command line.
        command: String,
        /// What was wrong.
        detail: String,
    },
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The table name would not be a safe nft/ipset identifier.
    #[error(
        "invalid firewall table name {name:?}: use 1-20 ASCII letters, digits, '_' or '-', not starting with '-'"
    )]
    TableName {
        /// The rejected name.
        name: String,
    },
    /// A zero command timeout would fail every command.
    #[error("firewall command timeout must be above zero")]
    ZeroTimeout,
    /// A zero-capacity ipset cannot hold a ban.
    #[error("ipset maxelem must be above zero")]
    ZeroMaxelem,
}

/// Choosing a backend failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Neither `nft` nor `ipset` + `iptables` work here.
    #[error("no usable firewall: nft: {nft}; ipset/iptables: {ipset}")]
    NoBackend {
        /// Why nft was not usable.
        nft: Box<CommandError>,
        /// Why ipset + iptables were not usable.
        ipset: Box<CommandError>,
    },
}

/// Creating our table, sets, chains or rules failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A tool failed.
    #[error("firewall setup failed")]
    Command(#[from] CommandError),
}

/// Applying a batch of changes failed; nothing of the batch is in the kernel (nft), or a
/// prefix of it may be (ipset, which has no transactions).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The transaction was refused or the tool failed.
    #[error("applying {changes} firewall change(s) failed")]
    Command {
        /// How many changes the batch held.
        changes: usize,
        /// Why.
        #[source]
        source: CommandError,
    },
    /// Reading the kernel sets (for the exact retry) failed.
    #[error("reading the firewall sets for the retry failed")]
    List(#[from] ListError),
}

/// Reading the kernel sets failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// A tool failed (for example the table does not exist: run setup first).
    #[error("listing the firewall sets failed")]
    Command(#[from] CommandError),
}

/// Bringing the kernel sets in line with the desired bans failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// Reading the current sets failed.
    #[error("reconcile could not read the firewall sets")]
    List(#[from] ListError),
    /// Writing the difference failed.
    #[error("reconcile could not apply the difference")]
    Apply(#[from] ApplyError),
}

/// Removing our table, rules or sets failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TeardownError {
    /// A tool failed.
    #[error("firewall teardown failed")]
    Command(#[from] CommandError),
}
