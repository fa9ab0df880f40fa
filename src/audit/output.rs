//! Printing the audit: text (ANSI colour only on a terminal, every string escaped) or JSON.

use std::io::{self, IsTerminal, Write};

use anyhow::Result;
use portcullis_report_html::Severity;

use super::facts::{DaemonState, FirewallState};
use super::judge::{AuditFinding, Verdict};
use super::{AuditReport, AuditSummary};
use crate::text::escape_terminal;

/// Print `report` to stdout.
pub fn print(report: &AuditReport, json: bool) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        let colour = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        write_text(&mut out, report, colour)?;
    }
    out.flush()?;
    Ok(())
}

fn esc(s: &str) -> String {
    escape_terminal(s).into_owned()
}

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn write_text(out: &mut impl Write, r: &AuditReport, colour: bool) -> Result<()> {
    let f = &r.facts;
    let version = match &f.sshd.version {
        Ok(v) => esc(&v.text),
        Err(e) => format!("unknown ({})", esc(e)),
    };
    writeln!(
        out,
        "{} of {} ({version}), as seen by a client at {}",
        paint(colour, "1", "portcullis audit"),
        esc(&f.sshd.config_path.display().to_string()),
        f.sshd.remote
    )?;
    let daemon = match &f.portcullis.daemon {
        DaemonState::Running {
            version,
            jails,
            dry_run,
            ..
        } => format!(
            "running {} (jails: {}{})",
            esc(version),
            esc(&jails.join(", ")),
            if *dry_run { ", dry run" } else { "" }
        ),
        DaemonState::NotRunning { .. } => "not running".into(),
        DaemonState::Unknown { why } => format!("unknown ({})", esc(why)),
    };
    let firewall = match &f.portcullis.firewall {
        FirewallState::Present { what } => format!("{} present", esc(what)),
        FirewallState::Missing { what } => format!("{} missing", esc(what)),
        FirewallState::Unknown { why } => format!("unknown ({})", esc(why)),
    };
    writeln!(
        out,
        "{} accounts with a login shell ({} without); portcullis: {daemon}; firewall: {firewall}",
        f.accounts.len(),
        f.no_shell_accounts
    )?;
    writeln!(out)?;
    if r.findings.is_empty() {
        writeln!(
            out,
            "  {}",
            paint(colour, "32", "the door is closed: nothing found")
        )?;
    }
    for (i, finding) in r.findings.iter().enumerate() {
        write_finding(out, i + 1, finding, colour)?;
    }
    if !r.warnings.is_empty() {
        writeln!(out, "\n{}", paint(colour, "1;4", "Warnings"))?;
        for w in &r.warnings {
            writeln!(out, "  {}", esc(w))?;
        }
    }
    Ok(())
}

fn severity_text(s: Severity, colour: bool) -> String {
    let t = format!("{:<8}", s.as_str().to_uppercase());
    match s {
        Severity::Critical => paint(colour, "1;31", &t),
        Severity::High => paint(colour, "33", &t),
        _ => t,
    }
}

fn write_finding(out: &mut impl Write, n: usize, f: &AuditFinding, colour: bool) -> Result<()> {
    writeln!(
        out,
        "{n:>2}. {} {}",
        severity_text(f.severity, colour),
        esc(&f.title)
    )?;
    writeln!(out, "    why:   {}", esc(&f.why))?;
    for line in &f.fix {
        writeln!(out, "    fix:   {}", paint(colour, "1", &esc(line)))?;
    }
    if let Some(w) = &f.fix_where {
        writeln!(out, "    where: {}", esc(w))?;
    }
    for c in &f.commands {
        writeln!(out, "    run:   {}", esc(c))?;
    }
    if let Some(s) = &f.safe_now {
        let v = match s.verdict {
            Verdict::Yes => paint(colour, "32", "yes"),
            Verdict::No => paint(colour, "1;31", "NO"),
            Verdict::Check => paint(colour, "33", "check first"),
        };
        writeln!(out, "    safe to apply now: {v} - {}", esc(&s.why))?;
    }
    writeln!(out)?;
    Ok(())
}

/// The audit section of `investigate`'s text report.
pub fn write_summary(out: &mut impl Write, s: &AuditSummary, heading: &str) -> io::Result<()> {
    writeln!(out, "\n{heading}")?;
    if s.findings.is_empty() && s.warnings.is_empty() {
        writeln!(out, "  nothing found")?;
    }
    for f in &s.findings {
        let safe = match f.safe_now.as_ref().map(|x| x.verdict) {
            Some(Verdict::Yes) => "; safe to apply now",
            Some(Verdict::No) => "; not safe yet (see portcullis audit)",
            Some(Verdict::Check) => "; check first (see portcullis audit)",
            None => "",
        };
        let fix = if f.fix.is_empty() {
            f.commands.join("; ")
        } else {
            f.fix.join("; ")
        };
        writeln!(
            out,
            "  {} {}",
            severity_text(f.severity, false),
            esc(&f.title)
        )?;
        if !fix.is_empty() {
            writeln!(out, "           fix: {}{safe}", esc(&fix))?;
        }
    }
    if s.more > 0 {
        writeln!(out, "  … {} more: portcullis audit", s.more)?;
    }
    for w in &s.warnings {
        writeln!(out, "  (audit: {})", esc(w))?;
    }
    Ok(())
}
