//! The control commands of the CLI (`status`, `bans`, `ban`, `unban`, `reload`, `flush`):
//! one request to the running daemon, its answer printed as text or JSON.
//!
//! Exit codes scripts can rely on: 0 done; 1 the daemon refused (not found, allowlisted,
//! reload failed, …); 2 usage or internal error; 3 the daemon is not running; 4 permission
//! denied.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use portcullis_control::data::{
    BanData, BanEntry, BansData, FlushData, JailStatus, ReloadData, StatusData, UnbanData,
};
use portcullis_control::{Client, ClientError, Command, Response, Target};

use crate::cli::{BanArgs, BansArgs, CtlArgs, FlushArgs, StatusArgs, UnbanArgs};

/// Exit code: the daemon answered with an error.
const EXIT_REFUSED: u8 = 1;
/// Exit code: no daemon on the socket.
const EXIT_NOT_RUNNING: u8 = 3;
/// Exit code: not allowed to talk to the daemon.
const EXIT_DENIED: u8 = 4;

fn send(ctl: &CtlArgs, command: Command) -> Result<Result<Response, ExitCode>> {
    let mut client = match Client::connect(&ctl.socket) {
        Ok(c) => c,
        Err(e) => return Ok(Err(client_error(&e))),
    };
    match client.request(command) {
        Ok(r) => Ok(Ok(r)),
        Err(e) => Ok(Err(client_error(&e))),
    }
}

pub(crate) fn client_error(e: &ClientError) -> ExitCode {
    eprintln!("portcullis: {e}");
    match e {
        ClientError::NotRunning { .. } => ExitCode::from(EXIT_NOT_RUNNING),
        ClientError::PermissionDenied { .. } => ExitCode::from(EXIT_DENIED),
        _ => ExitCode::from(2),
    }
}

/// Print the answer: JSON as is with `--json`, else `text(data)`; daemon errors go to
/// stderr with exit code 1 (4 for permission denied).
fn answer<T: serde::de::DeserializeOwned>(
    ctl: &CtlArgs,
    response: Response,
    text: impl FnOnce(&T) -> String,
) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match &response.result {
        Ok(value) if ctl.json => {
            writeln!(out, "{value}")?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => {
            // The daemon's answer does not have the shape of this command's data.
            let data: T = response
                .data_as()
                .map_err(|e| anyhow::Error::msg(e.message))?;
            write!(out, "{}", text(&data))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if ctl.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"error": {"kind": err.kind.as_str(), "message": err.message}})
                )?;
            }
            eprintln!("portcullis: {}", err.message);
            Ok(ExitCode::from(match err.kind {
                portcullis_control::ErrorKind::PermissionDenied => EXIT_DENIED,
                _ => EXIT_REFUSED,
            }))
        }
    }
}

macro_rules! request {
    ($ctl:expr, $cmd:expr) => {
        match send($ctl, $cmd)? {
            Ok(r) => r,
            Err(code) => return Ok(code),
        }
    };
}

/// `portcullis status [JAIL]`.
pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    let r = request!(
        &args.ctl,
        Command::Status {
            jail: args.jail.clone()
        }
    );
    answer(&args.ctl, r, |d: &StatusData| {
        match (&args.jail, d.jails.as_slice()) {
            (Some(_), [j]) => fail2ban_tree(j),
            _ => overview(d),
        }
    })
}

/// `status JAIL` in the layout of `fail2ban-client status JAIL`, so scripts that scrape it
/// work with the program's name swapped (`--json` is the documented interface).
fn fail2ban_tree(j: &JailStatus) -> String {
    let (files, journals): (Vec<&str>, Vec<&str>) = {
        let keys = j.sources.iter().map(|s| s.key.as_str());
        let files = keys
            .clone()
            .filter_map(|k| k.strip_prefix("file:"))
            .collect();
        let journals = keys.filter_map(|k| k.strip_prefix("journal:")).collect();
        (files, journals)
    };
    let mut s = format!("Status for the jail: {}\n|- Filter\n", j.name);
    s += &format!("|  |- Currently failed:\t{}\n", j.failing);
    s += &format!("|  |- Total failed:\t{}\n", j.attempts);
    match (files.is_empty(), journals.is_empty()) {
        (false, false) => {
            s += &format!("|  |- File list:\t{}\n", files.join(" "));
            s += &format!("|  `- Journal matches:\t{}\n", journals.join(" + "));
        }
        (true, false) => s += &format!("|  `- Journal matches:\t{}\n", journals.join(" + ")),
        _ => s += &format!("|  `- File list:\t{}\n", files.join(" ")),
    }
    s += "`- Actions\n";
    s += &format!("   |- Currently banned:\t{}\n", j.active_bans);
    s += &format!("   |- Total banned:\t{}\n", j.total_bans);
    s += &format!("   `- Banned IP list:\t{}\n", j.banned.join(" "));
    if j.banned_omitted > 0 {
        // Past Fail2Ban's tree, so its scrapers still read the lines above.
        s += &format!(
            "(the newest {} of {} bans; all of them: portcullis bans --jail {})\n",
            j.banned.len(),
            j.active_bans,
            j.name
        );
    }
    s
}

/// `status`: the daemon, its firewall and store, alerts, and every jail.
fn overview(d: &StatusData) -> String {
    {
        let mut s = format!(
            "portcullis {} (pid {}), up {}s{}\nfirewall: {} {}{}\n",
            d.version,
            d.pid,
            d.uptime_secs,
            if d.dry_run {
                ", DRY RUN (no firewall changes)"
            } else {
                ""
            },
            d.backend.name,
            if d.backend.healthy { "ok" } else { "UNHEALTHY" },
            d.backend
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        if !d.store.healthy {
            s += &format!(
                "state database: FAILING for {}s ({} failed writes): {}; {} decisions in force but not yet durable\n",
                d.store.failing_secs,
                d.store.failed_writes,
                d.store.error.as_deref().unwrap_or("?"),
                d.store.unsaved_decisions
            );
        }
        if let Some(f) = &d.fleet {
            s += &crate::fleet_cmd::status_line(f);
        }
        let h = &d.hooks;
        if h.delivered + h.failed + h.dropped + h.waiting > 0 {
            s += &format!(
                "hooks: {} delivered, {} failed, {} dropped (queue full), {} waiting\n",
                h.delivered, h.failed, h.dropped, h.waiting
            );
        }
        if let Some(n) = &d.networks {
            s += &format!(
                "networks: {} network bans in force ({})\n",
                n.network_bans, n.rules
            );
        }
        if let Some(g) = &d.geoip {
            for w in &g.warnings {
                s += &format!("{}\n", crate::text::escape_terminal(w));
            }
            if !g.databases.is_empty() {
                s += &format!(
                    "geoip: {}\n",
                    crate::text::escape_terminal(&g.databases.join(", "))
                );
            }
            if g.counted > 0 {
                let line = |rows: &[portcullis_core::origin::OriginCount]| {
                    rows.iter()
                        .map(|r| {
                            format!("{} {}", crate::text::escape_terminal(&r.label), r.addresses)
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                s += &format!("  banned by country: {}\n", line(&g.bans_by_country));
                s += &format!("  banned by AS: {}\n", line(&g.bans_by_asn));
            }
        }
        for a in &d.alerts {
            s += &format!(
                "ALERT {} {} from {} user {}{}\n",
                fmt_secs(a.time),
                a.kind,
                a.addr,
                crate::text::escape_terminal(a.user.as_deref().unwrap_or("?")),
                if a.failures > 0 {
                    format!(" after {} failures", a.failures)
                } else {
                    String::new()
                }
            );
        }
        s += &campaign_lines(&d.campaigns);
        for j in &d.jails {
            s += &format!(
                "jail {}: {} active bans, {} bans since start, {} failed attempts\n",
                j.name, j.active_bans, j.total_bans, j.attempts
            );
            let l = &j.lines;
            s += &format!(
                "  lines: {} read, {} matched, {} ignored, {} not understood (no known timestamp and header), {} bad, {} cut by their writer\n",
                l.read, l.matched, l.ignored, l.unparsed, l.bad, l.cut
            );
            for src in &j.sources {
                s += &format!(
                    "  source {}: {} lines, {}{}{}\n",
                    src.key,
                    src.lines,
                    src.position,
                    if src.untrusted > 0 {
                        format!(
                            ", {} entries not believed (sender not vouched for)",
                            src.untrusted
                        )
                    } else {
                        String::new()
                    },
                    src.error
                        .as_deref()
                        .map(|e| format!(" (error: {e})"))
                        .unwrap_or_default()
                );
            }
        }
        s
    }
}

/// `status`'s campaign lines: the baseline, then each campaign in progress and lately ended.
fn campaign_lines(c: &portcullis_control::data::CampaignStatus) -> String {
    if !c.enabled {
        return String::new();
    }
    let mut s = format!(
        "campaigns: baseline {}; {} addresses tracked; {} participants banned, {} spared (allowlist, login protection)\n",
        if c.baseline.is_empty() {
            "off"
        } else {
            &c.baseline
        },
        c.tracked_addresses,
        c.banned,
        c.spared
    );
    for (label, list) in [("ACTIVE", &c.active), ("ended", &c.recent)] {
        for a in list {
            s += &format!("  {}\n", campaign_line(label, a));
        }
    }
    s
}

/// One campaign report (the store's JSON) on one line; user names escaped.
pub(crate) fn campaign_line(label: &str, a: &serde_json::Value) -> String {
    let users: Vec<String> = a["users"]
        .as_array()
        .map(|u| {
            u.iter()
                .take(5)
                .map(|x| {
                    crate::text::escape_terminal(x["user"].as_str().unwrap_or("?")).into_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{label} {} {} {} .. {}: {} participants, {} failures, users {}, confidence {}",
        a["kind"].as_str().unwrap_or("?"),
        a["id"].as_str().unwrap_or("?"),
        a["start"].as_str().unwrap_or("?"),
        a["end"].as_str().unwrap_or("?"),
        a["participant_count"],
        a["failures"],
        if users.is_empty() {
            "-".to_owned()
        } else {
            users.join(",")
        },
        a["confidence"]
    )
}

fn ban_line(b: &BanEntry) -> String {
    let until = match b.until {
        None => "permanent".to_string(),
        Some(u) => format!("until {}", fmt_secs(u)),
    };
    let origin = b
        .origin
        .as_deref()
        .map(|o| format!(" origin {}", crate::text::escape_terminal(o)))
        .unwrap_or_default();
    format!(
        "{:<40} {:<10} ban #{:<3} {:<9} since {} {}{origin}\n",
        b.target.to_string(),
        b.jail,
        b.ban_no,
        b.reason,
        fmt_secs(b.since),
        until
    )
}

fn fmt_secs(s: i64) -> String {
    jiff::Timestamp::from_second(s)
        .map_or_else(|_| s.to_string(), |t| t.to_string().replace('T', " "))
}

/// `portcullis bans [--jail J]`.
pub fn bans(args: &BansArgs) -> Result<ExitCode> {
    let r = request!(
        &args.ctl,
        Command::Bans {
            jail: args.jail.clone(),
            net: match args.net.as_deref().map(Target::parse).transpose() {
                Ok(net) => net,
                Err(e) => {
                    eprintln!("portcullis: --net: {e}");
                    return Ok(ExitCode::from(2));
                }
            },
            limit: args.limit,
        }
    );
    answer(&args.ctl, r, |d: &BansData| {
        if d.bans.is_empty() {
            return "no active bans\n".to_string();
        }
        let mut s: String = d
            .bans
            .iter()
            .map(|b| {
                let line = ban_line(b);
                match d.origins.get(&b.target.to_string()) {
                    Some(o) => format!(
                        "{}  {} {}\n",
                        line.trim_end(),
                        crate::text::escape_terminal(o.country_label()),
                        crate::text::escape_terminal(&o.asn_label())
                    ),
                    None => line,
                }
            })
            .collect();
        let more = d.total.saturating_sub(d.bans.len() as u64);
        if more > 0 {
            s += &format!("... and {more} more ({} in all)\n", d.total);
        }
        s
    })
}

/// `portcullis ban ADDR|CIDR [--jail J] [--for D | --permanent] [--force]`.
pub fn ban(args: &BanArgs) -> Result<ExitCode> {
    let target = Target::parse(&args.target).map_err(anyhow::Error::msg)?;
    let duration = match &args.duration {
        Some(d) => Some(
            portcullis_core::time::parse_duration(d)
                .with_context(|| format!("--for {d}"))?
                .as_secs(),
        ),
        None => None,
    };
    let r = request!(
        &args.ctl,
        Command::Ban {
            target,
            jail: args.jail.clone(),
            duration,
            permanent: args.permanent,
            force: args.force,
        }
    );
    answer(&args.ctl, r, |d: &BanData| {
        let note = d.note.as_deref().map(|n| format!("note: {n}\n"));
        format!("banned {}{}", ban_line(&d.ban), note.unwrap_or_default())
    })
}

/// `portcullis unban ADDR|CIDR|--all [--jail J]`.
pub fn unban(args: &UnbanArgs) -> Result<ExitCode> {
    let target = match &args.target {
        Some(t) => Some(Target::parse(t).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let r = request!(
        &args.ctl,
        Command::Unban {
            target,
            jail: args.jail.clone(),
            all: args.all
        }
    );
    answer(&args.ctl, r, |d: &UnbanData| {
        if d.removed.is_empty() {
            return "nothing was banned\n".to_string();
        }
        d.removed
            .iter()
            .map(|b| format!("unbanned {}", ban_line(b)))
            .collect()
    })
}

/// `portcullis reload`.
pub fn reload(ctl: &CtlArgs) -> Result<ExitCode> {
    let r = request!(ctl, Command::Reload);
    answer(ctl, r, |d: &ReloadData| {
        let mut s = format!("reloaded; jails: {}\n", d.jails.join(", "));
        for w in &d.warnings {
            s += &format!("warning: {w}\n");
        }
        s
    })
}

/// `portcullis flush [--jail J]`.
pub fn flush(args: &FlushArgs) -> Result<ExitCode> {
    let r = request!(
        &args.ctl,
        Command::Flush {
            jail: args.jail.clone()
        }
    );
    answer(&args.ctl, r, |d: &FlushData| {
        format!("removed {} bans\n", d.removed)
    })
}

#[cfg(test)]
mod status_tree_tests {
    use super::*;

    #[test]
    fn the_tree_keeps_fail2bans_shape_and_hints_when_bans_are_left_out() {
        let mut j = JailStatus {
            name: "sshd".into(),
            active_bans: 2,
            total_bans: 2,
            banned: vec!["192.0.2.1".into(), "192.0.2.2".into()],
            ..Default::default()
        };
        let small = fail2ban_tree(&j);
        assert!(
            small.ends_with("   `- Banned IP list:\t192.0.2.1 192.0.2.2\n"),
            "{small}"
        );
        j.active_bans = 1_000_000;
        j.banned_omitted = 999_998;
        let big = fail2ban_tree(&j);
        assert!(
            big.contains("   `- Banned IP list:\t192.0.2.1 192.0.2.2\n"),
            "{big}"
        );
        assert!(
            big.ends_with(
                "(the newest 2 of 1000000 bans; all of them: portcullis bans --jail sshd)\n"
            ),
            "{big}"
        );
    }
}
