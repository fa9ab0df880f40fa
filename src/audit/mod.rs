//! `portcullis audit`: "is the door open?" — which accounts a password logs in from anywhere,
//! root above all, what sshd's `Match` blocks open, key files sshd ignores or others can
//! write, sshd's limits (`MaxAuthTries`, `LoginGraceTime`, `MaxStartups`,
//! `PerSourcePenalties`), and whether portcullis itself runs and protects sshd.
//!
//! Gathering ([`gather`]) takes every path and program as a parameter (`--sshd-config` is
//! `sshd -T -f`, `--root`/`--passwd`/`--shadow` a test tree); the judgement
//! ([`judge::judge`]) is pure; [`output`] prints text or JSON. Exit code 0 = nothing
//! critical or high, 1 = such findings, 2 = error, as `investigate`. docs/audit.md.

mod facts;
mod gather;
pub mod judge;
mod output;

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

pub use facts::Facts;
pub use gather::{Sources, gather, last_key_logins};
use judge::AuditFinding;

use crate::cli::AuditArgs;

/// What `audit --json` prints.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    /// Findings, most serious first.
    pub findings: Vec<AuditFinding>,
    /// What they were judged on.
    pub facts: Facts,
    /// What could not be read.
    pub warnings: Vec<String>,
}

/// Run `audit`.
pub fn run(args: &AuditArgs) -> Result<ExitCode> {
    let sources = Sources::from_args(args)?;
    let (facts, warnings) = gather(&sources)?;
    let findings = judge::judge(&facts);
    let alarming = judge::is_alarming(&findings);
    let report = AuditReport {
        findings,
        facts,
        warnings,
    };
    output::print(&report, args.json)?;
    Ok(if alarming {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The audit findings for `investigate`'s report: the `limit` most serious, or why there are
/// none.
#[derive(Debug, Serialize)]
pub struct AuditSummary {
    /// The most serious findings.
    pub findings: Vec<AuditFinding>,
    /// Findings left out.
    pub more: usize,
    /// Why the audit could not run, or what it could not read.
    pub warnings: Vec<String>,
}

/// Run the audit for `investigate` (its `--sshd-config` and socket).
pub fn summary(sources: &Sources, limit: usize) -> AuditSummary {
    match gather(sources) {
        Ok((facts, warnings)) => {
            let mut findings = judge::judge(&facts);
            let more = findings.len().saturating_sub(limit);
            findings.truncate(limit);
            AuditSummary {
                findings,
                more,
                warnings,
            }
        }
        Err(e) => AuditSummary {
            findings: Vec::new(),
            more: 0,
            warnings: vec![format!("{e:#}")],
        },
    }
}

pub use output::write_summary;
