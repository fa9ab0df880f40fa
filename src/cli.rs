//! Command-line syntax (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Intrusion prevention: reads auth logs, bans brute-force addresses in the kernel firewall,
/// and tells you whether anyone got in.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay log files offline through the whole pipeline (log time is the clock).
    Scan(ScanArgs),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Log files, plain or .gz, in any order; rotated sets are read oldest first.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Configuration file (default: the embedded sshd configuration).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only run this jail.
    #[arg(long, value_name = "JAIL")]
    pub jail: Option<String>,
    /// Print a JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Show every event and decision for one address, with the line that caused it.
    #[arg(long, value_name = "ADDR")]
    pub explain: Option<String>,
    /// Time zone for timestamps without an offset (IANA name; default: the system's).
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Rows in the human table (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}
