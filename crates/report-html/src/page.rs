//! The page: header, verdict, charts, then tables.

use std::fmt::Write;
use std::net::IpAddr;

use portcullis_core::Time;
use portcullis_host::SshState;

use crate::chart::{self, Row};
use crate::colours;
use crate::escape::push_escaped;
use crate::model::{ReportModel, Severity};

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;padding:20px 24px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#212529;background:#f8f9fa}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #dee2e6;padding-bottom:4px}
h3{font-size:14px;margin:0 0 8px;color:#495057}
.meta{color:#6c757d;margin-bottom:14px}
.verdict{padding:12px 16px;border-radius:6px;margin:12px 0;font-weight:600}
.verdict.alarm{background:#fff0f0;border:1px solid #ffa8a8;color:#a61e1e}
.verdict.calm{background:#ebfbee;border:1px solid #8ce99a;color:#1b5e20}
.verdict ul{margin:6px 0 0;padding-left:20px;font-weight:400}
.stats{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.stat{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:8px 14px;min-width:140px}
.stat b{display:block;font-size:20px}
.grid{display:grid;grid-template-columns:repeat(2,604px);gap:16px}
.card{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:10px 11px}
svg.chart{display:block}
svg text{font-size:12px;fill:#343a40}
svg text.axis{fill:#6c757d;font-size:11px}
svg text.muted{fill:#adb5bd;font-size:14px}
svg text.big{font-size:22px;font-weight:700}
svg text.label{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dee2e6}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e9ecef;vertical-align:top}
th{background:#f1f3f5;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;overflow-wrap:anywhere}
td.addr{white-space:nowrap}
svg text.legend{font-size:13px}
.sev{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.sev.critical{background:#c92a2a}.sev.high{background:#e8590c}.sev.medium{background:#f59f00}.sev.low{background:#868e96}
.auth{color:#c92a2a;font-weight:600}
.empty{color:#868e96;font-style:italic}
"#;

/// Render the whole report as one self-contained HTML document.
pub fn render_html(model: &ReportModel) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    // No network, no script: the page may hold only what is inline.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    push_escaped(&mut out, &model.title);
    out.push_str("</title><style>");
    out.push_str(CSS);
    out.push_str("</style></head><body>\n<h1>");
    push_escaped(&mut out, &model.title);
    out.push_str("</h1><div class=\"meta\">host <b>");
    push_escaped(&mut out, &model.hostname);
    out.push_str("</b> · generated ");
    push_escaped(&mut out, &long_time(model.generated));
    out.push_str(" · period ");
    push_escaped(&mut out, &period(model.since, model.until));
    out.push_str("</div>\n");

    verdict(&mut out, model);
    stats(&mut out, model);
    charts(&mut out, model);
    findings(&mut out, model);
    campaigns(&mut out, model);
    now(&mut out, model);
    logins(&mut out, model);
    attackers(&mut out, model);
    out.push_str("</body></html>\n");
    out
}

fn long_time(t: Time) -> String {
    format!("{} UTC", t.short_utc())
}

fn opt_time(t: Option<Time>) -> String {
    t.map(long_time).unwrap_or_else(|| "–".into())
}

fn period(since: Option<Time>, until: Option<Time>) -> String {
    match (since, until) {
        (None, None) => "all logs".into(),
        (s, u) => format!("{} → {}", opt_time(s), opt_time(u)),
    }
}

fn opt_addr(a: Option<IpAddr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_else(|| "–".into())
}

/// `<td>` with escaped text; `class` may be empty.
fn td(out: &mut String, class: &str, text: &str) {
    if class.is_empty() {
        out.push_str("<td>");
    } else {
        let _ = write!(out, "<td class=\"{class}\">");
    }
    push_escaped(out, text);
    out.push_str("</td>");
}

fn table_head(out: &mut String, class: &str, cols: &[&str]) {
    let _ = write!(out, "<table class=\"{class}\"><thead><tr>");
    for c in cols {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr></thead><tbody>");
}

fn empty(out: &mut String, text: &str) {
    let _ = write!(out, "<p class=\"empty\">{text}</p>");
}

fn verdict(out: &mut String, m: &ReportModel) {
    let serious: Vec<_> = m
        .findings
        .iter()
        .filter(|f| f.severity <= Severity::High)
        .collect();
    if serious.is_empty() {
        out.push_str("<div class=\"verdict calm\">Nothing alarming found");
        if !m.findings.is_empty() {
            let _ = write!(out, " ({} minor findings below)", m.findings.len());
        }
        out.push_str(".</div>\n");
        return;
    }
    let _ = write!(
        out,
        "<div class=\"verdict alarm\">{} serious finding{}<ul>",
        serious.len(),
        if serious.len() == 1 { "" } else { "s" }
    );
    for f in serious.iter().take(5) {
        out.push_str("<li>");
        push_escaped(out, &f.title);
        if let Some(a) = f.addr {
            out.push_str(" — ");
            push_escaped(out, &a.to_string());
        }
        if let Some(u) = &f.user {
            out.push_str(" as <code>");
            push_escaped(out, u);
            out.push_str("</code>");
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></div>\n");
}

fn stats(out: &mut String, m: &ReportModel) {
    let authenticated: usize = m.connections.iter().map(|c| c.authenticated).sum();
    let conns: usize = m.connections.iter().map(|c| c.count).sum();
    out.push_str("<div class=\"stats\">");
    for (label, value) in [
        ("failed attempts", m.totals.failures.to_string()),
        ("successful logins", m.totals.successes.to_string()),
        ("attacking addresses", m.top_addrs.len().to_string()),
        ("findings", m.findings.len().to_string()),
        (
            "SSH connections now",
            format!("{conns} ({authenticated} authenticated)"),
        ),
        ("sessions now", m.sessions.len().to_string()),
    ] {
        let _ = write!(out, "<div class=\"stat\"><b>{value}</b>{label}</div>");
    }
    out.push_str("</div>\n");
}

fn charts(out: &mut String, m: &ReportModel) {
    out.push_str("<div class=\"grid\">");
    let per = match m.bucket_secs {
        0 => String::new(),
        60 => " (per minute)".into(),
        3600 => " (per hour)".into(),
        86400 => " (per day)".into(),
        s => format!(" (per {s} s)"),
    };
    let _ = write!(
        out,
        "<div class=\"card\" id=\"chart-time\"><h3>Attempts over time{per}</h3>"
    );
    out.push_str(&chart::time_chart(&m.buckets));
    out.push_str("</div><div class=\"card\" id=\"chart-outcome\"><h3>Successes vs failures</h3>");
    out.push_str(&chart::donut(m.totals.failures, m.totals.successes));
    out.push_str("</div><div class=\"card\" id=\"chart-addrs\"><h3>Top attacking addresses</h3>");
    let addr_text: Vec<String> = m.top_addrs.iter().map(|a| a.addr.to_string()).collect();
    let rows: Vec<Row<'_>> = m
        .top_addrs
        .iter()
        .zip(&addr_text)
        .map(|(a, t)| Row {
            label: t,
            value: a.attempts,
        })
        .collect();
    out.push_str(&chart::bar_chart(&rows, colours::ADDRS, "failed attempts"));
    out.push_str("</div><div class=\"card\" id=\"chart-users\"><h3>Most-tried user names</h3>");
    let rows: Vec<Row<'_>> = m
        .top_users
        .iter()
        .map(|u| Row {
            label: &u.user,
            value: u.attempts,
        })
        .collect();
    out.push_str(&chart::bar_chart(&rows, colours::USERS, "attempts"));
    out.push_str("</div>");
    // Only with GeoIP data: no database, no empty charts.
    for (id, title, bars, colour) in [
        (
            "chart-countries",
            "Attacking addresses by country",
            &m.by_country,
            colours::COUNTRIES,
        ),
        (
            "chart-asns",
            "Attacking addresses by autonomous system",
            &m.by_asn,
            colours::ASNS,
        ),
    ] {
        if bars.is_empty() {
            continue;
        }
        let _ = write!(out, "<div class=\"card\" id=\"{id}\"><h3>{title}</h3>");
        let rows: Vec<Row<'_>> = bars
            .iter()
            .map(|b| Row {
                label: &b.label,
                value: b.addresses,
            })
            .collect();
        out.push_str(&chart::bar_chart(&rows, colour, "addresses"));
        out.push_str("</div>");
    }
    out.push_str("</div>\n");
}

fn findings(out: &mut String, m: &ReportModel) {
    out.push_str("<h2 id=\"findings\">Findings</h2>");
    if m.findings.is_empty() {
        empty(out, "No findings.");
        return;
    }
    table_head(
        out,
        "findings",
        &[
            "Severity",
            "Finding",
            "Address",
            "User",
            "Failures before",
            "Time",
            "Detail",
        ],
    );
    for f in &m.findings {
        let sev = f.severity.as_str();
        let _ = write!(out, "<tr><td><span class=\"sev {sev}\">{sev}</span></td>");
        td(out, "", &f.title);
        td(out, "mono addr", &opt_addr(f.addr));
        td(out, "mono", f.user.as_deref().unwrap_or("–"));
        td(out, "num", &f.failures.to_string());
        td(out, "", &opt_time(f.time));
        td(out, "mono", &f.detail);
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn now(out: &mut String, m: &ReportModel) {
    out.push_str("<h2 id=\"now\">Now: connections to the SSH ports</h2>");
    if m.connections.is_empty() {
        empty(out, "No connections.");
    } else {
        table_head(
            out,
            "connections",
            &[
                "Remote address",
                "Connections",
                "States",
                "Authenticated",
                "Pre-auth",
                "Users",
            ],
        );
        for c in &m.connections {
            out.push_str("<tr>");
            td(out, "mono addr", &c.addr.to_string());
            td(out, "num", &c.count.to_string());
            let states: Vec<String> = c.states.iter().map(|(s, n)| format!("{s} {n}")).collect();
            td(out, "", &states.join(", "));
            td(
                out,
                if c.authenticated > 0 {
                    "num auth"
                } else {
                    "num"
                },
                &c.authenticated.to_string(),
            );
            td(out, "num", &c.pre_auth.to_string());
            let mut users: Vec<String> = Vec::new();
            for conn in &c.connections {
                if let SshState::Authenticated { user, tty } = &conn.ssh {
                    users.push(format!("{user}@{}", tty.as_deref().unwrap_or("notty")));
                }
            }
            for u in &c.users {
                if !users.iter().any(|x| x.starts_with(&format!("{u}@"))) {
                    users.push(format!("{u} (pre-auth)"));
                }
            }
            td(out, "mono", &users.join(", "));
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<h2 id=\"sessions\">Now: logged in (utmp)</h2>");
    if m.sessions.is_empty() {
        empty(out, "Nobody is logged in.");
        return;
    }
    table_head(out, "sessions", &["User", "Line", "From", "Since", "PID"]);
    for s in &m.sessions {
        out.push_str("<tr>");
        td(out, "mono", &s.user);
        td(out, "mono", &s.line);
        let from = match (s.addr, s.host.is_empty()) {
            (Some(a), _) if s.host.is_empty() || s.host == a.to_string() => a.to_string(),
            (Some(a), _) => format!("{} ({a})", s.host),
            (None, true) => "local".into(),
            (None, false) => s.host.clone(),
        };
        td(out, "mono", &from);
        td(out, "", &long_time(s.since));
        td(out, "num", &s.pid.to_string());
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

/// The short campaigns section (docs/campaigns.md); absent when there is none.
fn campaigns(out: &mut String, m: &ReportModel) {
    if m.campaigns.is_empty() {
        return;
    }
    out.push_str("<h2 id=\"campaigns\">Campaigns (site-wide)</h2>");
    table_head(
        out,
        "campaigns",
        &[
            "Kind",
            "Start",
            "End",
            "Participants",
            "Users targeted",
            "Confidence",
        ],
    );
    for c in &m.campaigns {
        out.push_str("<tr>");
        td(out, "", &c.kind);
        td(out, "", &long_time(c.start));
        let end = if c.active {
            format!("{} (still active)", long_time(c.end))
        } else {
            long_time(c.end)
        };
        td(out, "", &end);
        td(out, "num", &c.participants.to_string());
        td(out, "mono", &c.users.join(", "));
        td(out, "num", &format!("{:.2}", c.confidence));
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn logins(out: &mut String, m: &ReportModel) {
    out.push_str("<h2 id=\"logins\">Recent successful logins</h2>");
    if m.logins.is_empty() {
        empty(out, "No logins recorded.");
        return;
    }
    table_head(
        out,
        "logins",
        &["Time", "User", "From", "Method", "Source", "Note"],
    );
    for l in &m.logins {
        out.push_str("<tr>");
        td(out, "", &long_time(l.time));
        td(out, "mono", &l.user);
        td(out, "mono addr", &opt_addr(l.addr));
        td(out, "", l.method.as_deref().unwrap_or("–"));
        td(out, "", &l.source);
        td(out, "", &l.note);
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn attackers(out: &mut String, m: &ReportModel) {
    out.push_str("<h2 id=\"attackers\">Attackers</h2>");
    if m.top_addrs.is_empty() {
        empty(out, "No failed attempts.");
        return;
    }
    let geo = m
        .top_addrs
        .iter()
        .any(|a| a.country.is_some() || a.asn.is_some());
    let mut head = vec![
        "Address",
        "Failed attempts",
        "Successes",
        "First seen",
        "Last seen",
        "Users tried",
        "Banned",
    ];
    if geo {
        head.extend(["Country", "AS"]);
    }
    table_head(out, "attackers", &head);
    for a in &m.top_addrs {
        out.push_str("<tr>");
        td(out, "mono addr", &a.addr.to_string());
        td(out, "num", &a.attempts.to_string());
        td(
            out,
            if a.successes > 0 { "num auth" } else { "num" },
            &a.successes.to_string(),
        );
        td(out, "", &opt_time(a.first_seen));
        td(out, "", &opt_time(a.last_seen));
        td(out, "mono", &a.users.join(", "));
        let banned = match a.banned {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        td(out, "", banned);
        if geo {
            td(out, "", a.country.as_deref().unwrap_or("-"));
            td(out, "", a.asn.as_deref().unwrap_or("-"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}
