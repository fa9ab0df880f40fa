//! Printing the report: readable text (ANSI colour only on a terminal), JSON, or the HTML
//! model. Every attacker-influenced string (user names, host names, terminal lines, log lines)
//! goes through [`escape_terminal`] on the terminal; JSON escapes control characters itself and
//! the HTML renderer escapes everything.

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};

use anyhow::Result;
use portcullis_core::Time;
use portcullis_report_html::{AddrAttempts, ReportModel, Severity};

use super::{Attacker, Report};
use crate::text::escape_terminal;

/// Print `report` to stdout.
pub fn print(report: &Report, json: bool, tz: &jiff::tz::TimeZone) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        let colour = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        write_text(&mut out, report, &Paint { on: colour }, tz)?;
    }
    out.flush()?;
    Ok(())
}

/// ANSI styling, or none.
struct Paint {
    on: bool,
}

impl Paint {
    fn code(&self, code: &str, text: impl Display) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn heading(&self, text: impl Display) -> String {
        self.code("1;4", text)
    }
    fn red(&self, text: impl Display) -> String {
        self.code("1;31", text)
    }
    fn yellow(&self, text: impl Display) -> String {
        self.code("33", text)
    }
    fn green(&self, text: impl Display) -> String {
        self.code("32", text)
    }
    fn dim(&self, text: impl Display) -> String {
        self.code("2", text)
    }
}

fn opt_time(t: Option<Time>, tz: &jiff::tz::TimeZone) -> String {
    t.map_or_else(|| "-".into(), |t| t.short_in(tz).to_string())
}

fn esc(s: &str) -> String {
    escape_terminal(s).into_owned()
}

fn list(items: &[String], more: usize) -> String {
    let mut s = items.iter().map(|u| esc(u)).collect::<Vec<_>>().join(",");
    if more > 0 {
        s.push_str(&format!(" +{more} more"));
    }
    s
}

fn banned_text(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn write_text(out: &mut impl Write, r: &Report, p: &Paint, tz: &jiff::tz::TimeZone) -> Result<()> {
    let period = match (r.since, r.until) {
        (None, None) => "everything in the logs".to_string(),
        (s, u) => format!("{} .. {}", opt_time(s, tz), opt_time(u, tz)),
    };
    writeln!(
        out,
        "{} on {} at {}; period: {}",
        p.code("1", "portcullis investigate"),
        esc(&r.hostname),
        r.generated.short_in(tz),
        period
    )?;
    let names: Vec<String> = r.sources.iter().map(|s| esc(&s.name)).collect();
    writeln!(
        out,
        "read {} lines from {}; {} failed attempts from {} addresses, {} probes, {} successful logins",
        r.totals.lines,
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        },
        r.totals.failures,
        r.totals.attacking_addresses,
        r.totals.probes,
        r.totals.successes
    )?;

    writeln!(out, "\n{}", p.heading("Findings"))?;
    if r.findings.is_empty() {
        writeln!(out, "  {}", p.green("nothing alarming"))?;
    }
    for f in &r.findings {
        let f = &f.finding;
        let sev = format!("{:<8}", f.severity.as_str().to_uppercase());
        let sev = match f.severity {
            Severity::Critical => p.red(sev),
            Severity::High => p.yellow(sev),
            _ => sev,
        };
        writeln!(
            out,
            "  {sev} {}  [{} {} {}]",
            esc(&f.title),
            f.addr.map_or("-".into(), |a| a.to_string()),
            f.user.as_deref().map_or("-".into(), esc),
            opt_time(f.time, tz)
        )?;
        writeln!(out, "           {}", p.dim(esc(&f.detail)))?;
    }

    if let Some(audit) = &r.audit {
        crate::audit::write_summary(
            out,
            audit,
            &p.heading("Is the door open? (portcullis audit)"),
        )?;
    }

    if let Some(a) = &r.address {
        write_address(out, r, a, p, tz)?;
        return write_warnings(out, r, p);
    }

    writeln!(
        out,
        "\n{} (ports {})",
        p.heading("Now: connections to SSH"),
        r.now
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )?;
    if r.now.connections.is_empty() {
        writeln!(out, "  none")?;
    } else {
        writeln!(
            out,
            "  {:<39} {:>5} {:>5} {:>8}  {:<24} users",
            "address", "conns", "auth", "pre-auth", "states"
        )?;
    }
    for g in &r.now.connections {
        let states: Vec<String> = g.states.iter().map(|(s, n)| format!("{s}:{n}")).collect();
        let auth = if g.authenticated > 0 {
            p.red(format!("{:>5}", g.authenticated))
        } else {
            format!("{:>5}", g.authenticated)
        };
        writeln!(
            out,
            "  {:<39} {:>5} {auth} {:>8}  {:<24} {}",
            g.addr.to_string(),
            g.count,
            g.pre_auth,
            states.join(","),
            list(&g.users, 0)
        )?;
    }
    writeln!(
        out,
        "\n{} (from {})",
        p.heading("Now: logged in"),
        r.now.sessions_from
    )?;
    if r.now.sessions.is_empty() {
        writeln!(out, "  nobody")?;
    }
    for s in &r.now.sessions {
        writeln!(
            out,
            "  {:<16} {:<10} {:<39} since {}  pid {}",
            esc(&s.user),
            esc(&s.line),
            s.addr.map_or_else(|| esc(&s.host), |a| a.to_string()),
            s.since.short_in(tz),
            s.pid
        )?;
    }

    writeln!(
        out,
        "\n{} ({} in the period, newest first)",
        p.heading("Successful logins"),
        r.logins.successful_total
    )?;
    write_logins(out, &r.logins.successful, tz)?;
    if r.logins.failed_total > 0 {
        writeln!(
            out,
            "\n{} ({}, newest first)",
            p.heading("Failed logins in btmp"),
            r.logins.failed_total
        )?;
        for f in &r.logins.failed {
            writeln!(
                out,
                "  {}  {:<16} {:<39} {}",
                f.time.short_in(tz),
                esc(&f.user),
                f.addr.map_or_else(|| esc(&f.host), |a| a.to_string()),
                esc(&f.line)
            )?;
        }
    }

    writeln!(
        out,
        "\n{} (by failed attempts; banned: {})",
        p.heading("Attackers"),
        r.bans_from
    )?;
    if r.attackers.is_empty() {
        writeln!(out, "  none")?;
    } else {
        writeln!(
            out,
            "  {:<39} {:>8} {:>6} {:>3} {:<19}  {:<19}  {:<6} users",
            "address", "attempts", "probes", "ok", "first seen", "last seen", "banned"
        )?;
    }
    for a in &r.attackers {
        write_attacker(out, a, p, tz)?;
    }
    if let Some(o) = &r.origins {
        writeln!(
            out,
            "\n{}",
            p.heading("Where attackers come from (addresses (attempts))")
        )?;
        writeln!(
            out,
            "  by country: {}",
            crate::geo::summary_line(&o.by_country)
        )?;
        writeln!(out, "  by AS:      {}", crate::geo::summary_line(&o.by_asn))?;
    }
    if !r.top_users.is_empty() {
        writeln!(out, "\n{}", p.heading("Most-tried user names"))?;
        let line: Vec<String> = r
            .top_users
            .iter()
            .map(|u| format!("{} {}", esc(&u.user), u.attempts))
            .collect();
        writeln!(out, "  {}", line.join(", "))?;
    }
    if !r.campaigns.is_empty() {
        writeln!(out, "\n{}", p.heading("Campaigns (site-wide)"))?;
        for l in crate::campaigns::human_lines(&r.campaigns) {
            writeln!(out, "  {l}")?;
        }
    }
    write_warnings(out, r, p)
}

fn write_attacker(
    out: &mut impl Write,
    a: &Attacker,
    p: &Paint,
    tz: &jiff::tz::TimeZone,
) -> Result<()> {
    let ok = if a.successes > 0 {
        p.red(format!("{:>3}", a.successes))
    } else {
        format!("{:>3}", a.successes)
    };
    writeln!(
        out,
        "  {:<39} {:>8} {:>6} {ok} {:<19}  {:<19}  {:<6} {}",
        a.addr.to_string(),
        a.attempts,
        a.probes,
        opt_time(a.first_seen, tz),
        opt_time(a.last_seen, tz),
        banned_text(a.banned),
        list(&a.users, a.more_users)
    )?;
    if let Some(o) = &a.origin {
        writeln!(
            out,
            "  {:<39} {} {}",
            "",
            p.dim(esc(o.country_label())),
            p.dim(esc(&o.asn_label()))
        )?;
    }
    Ok(())
}

fn write_logins(
    out: &mut impl Write,
    rows: &[portcullis_report_html::LoginRow],
    tz: &jiff::tz::TimeZone,
) -> Result<()> {
    if rows.is_empty() {
        writeln!(out, "  none")?;
    }
    for l in rows {
        writeln!(
            out,
            "  {}  {:<16} {:<39} {:<20} {:<14} {}",
            l.time.short_in(tz),
            esc(&l.user),
            l.addr.map_or("-".into(), |a| a.to_string()),
            l.method.as_deref().map_or("-".into(), esc),
            esc(&l.source),
            esc(&l.note)
        )?;
    }
    Ok(())
}

fn write_address(
    out: &mut impl Write,
    r: &Report,
    a: &super::AddressReport,
    p: &Paint,
    tz: &jiff::tz::TimeZone,
) -> Result<()> {
    writeln!(out, "\n{}", p.heading(format!("Address {}", a.addr)))?;
    let s = &a.summary;
    writeln!(
        out,
        "  {} failed attempts, {} probes, {} successful logins; first seen {}, last seen {}",
        s.attempts,
        s.probes,
        s.successes,
        opt_time(s.first_seen, tz),
        opt_time(s.last_seen, tz)
    )?;
    let banned = match a.banned {
        Some(true) => p.red("banned now"),
        Some(false) => "not banned now".into(),
        None => format!("ban state unknown ({})", r.bans_from),
    };
    writeln!(out, "  {banned}")?;
    for b in &a.bans_active {
        writeln!(
            out,
            "    ban #{} in {} of {} since {} until {}",
            b.ban_no,
            esc(&b.jail),
            b.target,
            b.since.short_in(tz),
            b.until
                .map_or("permanent".into(), |t| t.short_in(tz).to_string())
        )?;
    }
    if !a.ban_history.is_empty() {
        writeln!(out, "  ban history:")?;
        for h in &a.ban_history {
            writeln!(
                out,
                "    {}  {} in {}",
                h.time.short_in(tz),
                h.target,
                esc(&h.jail)
            )?;
        }
    }
    writeln!(out, "\n{}", p.heading("Attempts per user"))?;
    if a.attempts_per_user.is_empty() {
        writeln!(out, "  none")?;
    }
    for u in &a.attempts_per_user {
        writeln!(out, "  {:>8}  {}", u.attempts, esc(&u.user))?;
    }
    writeln!(out, "\n{}", p.heading("Now"))?;
    match &a.connections {
        Some(g) => {
            let states: Vec<String> = g.states.iter().map(|(s, n)| format!("{s}:{n}")).collect();
            writeln!(
                out,
                "  {} connections ({} authenticated, {} pre-auth; {}) users {}",
                g.count,
                g.authenticated,
                g.pre_auth,
                states.join(","),
                list(&g.users, 0)
            )?;
        }
        None => writeln!(out, "  no connections to the SSH ports")?,
    }
    for s in &a.sessions {
        writeln!(
            out,
            "  {} logged in on {} since {} (pid {})",
            p.red(esc(&s.user)),
            esc(&s.line),
            s.since.short_in(tz),
            s.pid
        )?;
    }
    writeln!(out, "\n{}", p.heading("Successful logins"))?;
    write_logins(out, &a.logins, tz)?;
    writeln!(out, "\n{} ({})", p.heading("Log lines"), a.lines.len())?;
    for l in &a.lines {
        writeln!(
            out,
            "  {}  {}",
            p.dim(l.time.short_in(tz).to_string()),
            esc(&l.line)
        )?;
    }
    if a.lines_dropped > 0 {
        writeln!(out, "  … {} more lines not shown", a.lines_dropped)?;
    }
    Ok(())
}

fn write_warnings(out: &mut impl Write, r: &Report, p: &Paint) -> Result<()> {
    if !r.warnings.is_empty() {
        writeln!(out, "\n{}", p.heading("Warnings"))?;
        for w in &r.warnings {
            writeln!(out, "  {}", esc(w))?;
        }
    }
    Ok(())
}

/// The HTML page's model.
pub fn html_model(r: &Report) -> ReportModel {
    let title = match &r.address {
        Some(a) => format!("portcullis investigate {}", a.addr),
        None => "portcullis investigate".to_string(),
    };
    ReportModel {
        title,
        hostname: r.hostname.clone(),
        generated: r.generated,
        since: r.since,
        until: r.until,
        bucket_secs: r.buckets.0,
        buckets: r.buckets.1.clone(),
        top_addrs: r
            .attackers
            .iter()
            .map(|a| AddrAttempts {
                addr: a.addr,
                attempts: a.attempts,
                successes: a.successes,
                first_seen: a.first_seen,
                last_seen: a.last_seen,
                users: a.users.clone(),
                banned: a.banned,
                country: a
                    .origin
                    .as_ref()
                    .and_then(|o| o.country.clone().or_else(|| o.country_name.clone())),
                asn: a
                    .origin
                    .as_ref()
                    .filter(|o| o.asn.is_some() || o.org.is_some())
                    .map(|o| o.asn_label()),
            })
            .collect(),
        top_users: r.top_users.clone(),
        totals: portcullis_report_html::Totals {
            failures: r.totals.failures,
            successes: r.totals.successes,
        },
        findings: r.findings.iter().map(|f| f.finding.clone()).collect(),
        sessions: r.now.sessions.clone(),
        connections: r.now.connections.clone(),
        logins: r.logins.successful.clone(),
        by_country: r
            .origins
            .as_ref()
            .map_or_else(Vec::new, |o| bars(&o.by_country)),
        // Addresses no ASN database knows are one bar only when some are known.
        by_asn: r
            .origins
            .as_ref()
            .filter(|o| o.by_asn.iter().any(|c| c.label != "unknown"))
            .map_or_else(Vec::new, |o| bars(&o.by_asn)),
        campaigns: r
            .campaigns
            .iter()
            .map(|c| portcullis_report_html::CampaignRow {
                kind: c.kind.as_str().to_owned(),
                id: c.id.to_string(),
                start: c.start,
                end: c.end,
                active: !c.ended,
                participants: c.participant_count as u64,
                users: c.users.iter().take(5).map(|(u, _)| u.to_string()).collect(),
                confidence: c.confidence,
            })
            .collect(),
    }
}

fn bars(rows: &[crate::geo::OriginCount]) -> Vec<portcullis_report_html::OriginBar> {
    rows.iter()
        .map(|r| portcullis_report_html::OriginBar {
            label: r.label.clone(),
            addresses: r.addresses,
            attempts: r.attempts,
        })
        .collect()
}
