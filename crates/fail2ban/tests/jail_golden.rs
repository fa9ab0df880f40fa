//! Jails imported by [`Import::load`] compared with what Fail2Ban's own `JailsReader`
//! streams to its server, on a copy (made at test time, in a temporary directory) of the
//! installed `/etc/fail2ban` plus a `jail.local` that enables several jails with different
//! backends, modes, globs, allowlists and ban-time settings.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use portcullis_config::{Backend, FilterRef, SourceSpec};
use portcullis_fail2ban::{Import, ImportOptions, Severity, parse_seconds};
use serde_json::Value;

const PY_JAILS: &str = r#"
import json, sys
from fail2ban.client.jailsreader import JailsReader
r = JailsReader(basedir=sys.argv[1], force_enable=False)
assert r.read()
r.getOptions()
out = {}
for c in r.convert(allow_no_files=True):
    if c[0] == 'add':
        out[c[1]] = {'backend': c[2], 'failregex': [], 'ignoreregex': [], 'journalmatch': [], 'logpath': [], 'action': [], 'ignoreip': []}
        continue
    if c[0] != 'set' and c[0] != 'multi-set':
        continue
    j = out[c[1]]
    key = c[2]
    if key in ('addfailregex', 'addignoreregex'):
        j[key[3:]] += c[3] if c[0] == 'multi-set' else [c[3]]
    elif key == 'addjournalmatch':
        j['journalmatch'].append(c[3:])
    elif key == 'addlogpath':
        j['logpath'].append(c[3])
    elif key == 'addaction':
        j['action'].append(c[3])
    elif key == 'addignoreip':
        j['ignoreip'] += c[3:]
    elif c[0] == 'set' and len(c) == 4 and key not in ('action',):
        j[key] = c[3]
print(json.dumps(out))
"#;

const JAIL_LOCAL: &str = "\
[DEFAULT]
ignoreip = 127.0.0.1/8 ::1 192.0.2.0/24 2001:db8::1
bantime = 1h

[sshd]
enabled = true
mode = aggressive
logpath = LOGS/auth.log
maxretry = 3

[nginx-http-auth]
enabled = true
logpath = LOGS/*.log
banaction = nftables-multiport

[dovecot]
enabled = true
backend = systemd
bantime.increment = true
bantime.maxtime = 1w

[postfix]
enabled = true
logpath = LOGS/mail.log
failregex = %(known/failregex)s
            ^extra <HOST>$
bantime = -1

[recidive]
enabled = true
logpath = LOGS/auth.log
";

fn texts(v: &[portcullis_fail2ban::Located]) -> Vec<String> {
    v.iter().map(|l| l.text.clone()).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().expect("string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn imported_jails_match_fail2bans_jails_reader() {
    let Some(etc) = common::fail2ban_dir() else {
        return;
    };
    let logs = ["auth.log", "a.log", "b.log", "mail.log"];
    let (_tmp, dir) = common::scratch_config(&etc, JAIL_LOCAL, &logs);

    let python = common::python_json(PY_JAILS, &[dir.to_str().expect("utf-8")]);
    let import = Import::load(&dir, &ImportOptions::default()).expect("import");
    println!("{}", import.report);

    // Every enabled Fail2Ban jail but recidive becomes a portcullis jail.
    let mut want_names: Vec<&String> = python.as_object().expect("object").keys().collect();
    want_names.retain(|n| *n != "recidive");
    want_names.sort();
    let names: Vec<&String> = import.config.jails.iter().map(|j| &j.name).collect();
    assert_eq!(names, want_names);
    assert!(
        import.config.disabled_jails.len() > 50,
        "the other jail.conf jails are disabled"
    );

    let mut checked = 0;
    for (spec, details) in import.config.jails.iter().zip(&import.jails) {
        let want = &python[spec.name.as_str()];
        let name = &spec.name;
        assert_eq!(
            details.backend,
            want["backend"].as_str().expect("backend"),
            "{name}"
        );
        assert_eq!(
            texts(&details.filter.failregex),
            strings(&want["failregex"]),
            "{name} failregex"
        );
        assert_eq!(
            texts(&details.filter.ignoreregex),
            strings(&want["ignoreregex"]),
            "{name} ignoreregex"
        );
        assert_eq!(
            details.filter.prefregex.as_ref().map(|l| l.text.clone()),
            want.get("prefregex")
                .and_then(Value::as_str)
                .map(str::to_owned),
            "{name} prefregex"
        );
        assert_eq!(
            details.filter.datepattern.as_ref().map(|l| l.text.clone()),
            want.get("datepattern")
                .and_then(Value::as_str)
                .map(str::to_owned),
            "{name} datepattern"
        );
        let journal: Vec<Vec<String>> = details
            .filter
            .journalmatch
            .iter()
            .map(|m| m.words.clone())
            .collect();
        let want_journal: Vec<Vec<String>> = want["journalmatch"]
            .as_array()
            .expect("array")
            .iter()
            .map(strings)
            .collect();
        assert_eq!(journal, want_journal, "{name} journalmatch");
        let maxretry = want["maxretry"].as_u64().expect("maxretry") as u32;
        assert_eq!(spec.config.maxretry.0, maxretry * 1000, "{name} maxretry");
        let findtime = parse_seconds(want["findtime"].as_str().expect("findtime")).expect("time");
        assert_eq!(
            spec.config.findtime,
            Duration::from_secs_f64(findtime),
            "{name} findtime"
        );
        let bantime = parse_seconds(want["bantime"].as_str().expect("bantime")).expect("time");
        if bantime < 0.0 {
            assert_eq!(
                spec.config.permanent_after,
                Some(1),
                "{name}: bantime -1 is permanent"
            );
        } else {
            assert_eq!(
                spec.config.bantime,
                Duration::from_secs_f64(bantime),
                "{name} bantime"
            );
        }
        // Sources: the log files Fail2Ban would watch, or the journal with its matches.
        if details.backend.starts_with("systemd") {
            let SourceSpec::Journal(j) = &spec.sources[0] else {
                panic!("{name}: journal source")
            };
            let flat: Vec<String> = want_journal.join(&"+".to_owned());
            assert_eq!(j.matches, flat, "{name} journal matches");
        } else {
            let mut got: Vec<PathBuf> = spec
                .sources
                .iter()
                .map(|s| match s {
                    SourceSpec::File { path } => path.clone(),
                    other => panic!("{name}: unexpected source {other:?}"),
                })
                .collect();
            let mut want_paths: Vec<PathBuf> = strings(&want["logpath"])
                .into_iter()
                .map(PathBuf::from)
                .collect();
            got.sort();
            want_paths.sort();
            assert_eq!(got, want_paths, "{name} logpath");
        }
        for ip in strings(&want["ignoreip"]) {
            let net: ipnet::IpNet = ip
                .parse::<ipnet::IpNet>()
                .or_else(|_| ip.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .expect("address");
            assert!(
                spec.config.allowlist.contains(&net.trunc()),
                "{name}: {ip} allowlisted"
            );
        }
        let actions: Vec<String> = details.actions.iter().map(|a| a.name.clone()).collect();
        assert_eq!(actions, strings(&want["action"]), "{name} actions");
        // The filter reference re-resolves to the same filter.
        let FilterRef::Fail2Ban { path, args } = &spec.filter else {
            panic!("{name}: fail2ban filter")
        };
        let again = portcullis_fail2ban::FilterDef::load_file(path, args).expect("filter reloads");
        assert_eq!(again.failregex, details.filter.failregex, "{name} reload");
        checked += 1;
    }
    assert_eq!(checked, 4);

    // Policy mapping.
    let jail = |n: &str| import.config.jail(n).expect("jail");
    assert_eq!(
        jail("sshd").config.factor,
        1.0,
        "no bantime.increment: no escalation"
    );
    assert_eq!(
        jail("dovecot").config.factor,
        2.0,
        "default formula doubles"
    );
    assert_eq!(
        jail("dovecot").config.maxtime,
        Duration::from_secs(7 * 86_400)
    );
    for j in &import.config.jails {
        assert_eq!(
            j.config.permanent_after,
            Some(if j.name == "postfix" { 1 } else { 5 }),
            "{} recidive",
            j.name
        );
        assert!(j.config.history >= Duration::from_secs(86_400));
        assert_eq!(j.config.v6_net_threshold, None);
    }
    let FilterRef::Fail2Ban { args, .. } = &jail("sshd").filter else {
        panic!()
    };
    assert!(args.contains(&("mode".to_owned(), "aggressive".to_owned())));
    let FilterRef::Fail2Ban { args, .. } = &jail("dovecot").filter else {
        panic!()
    };
    assert!(args.contains(&("logtype".to_owned(), "journal".to_owned())));
    let postfix = &import
        .jails
        .iter()
        .find(|j| j.name == "postfix")
        .expect("postfix")
        .filter;
    assert_eq!(
        postfix.failregex.last().map(|l| l.text.as_str()),
        Some("^extra <HOST>$")
    );
    assert_eq!(
        import.config.firewall.backend,
        Backend::Auto,
        "iptables and nftables mixed"
    );
    // The report says what was not carried, naming files and lines.
    let report = import.report.to_string();
    assert!(
        report.contains("[recidive] recidive: not run as a jail"),
        "{report}"
    );
    assert!(
        import
            .report
            .with_severity(Severity::Approximated)
            .any(|e| e.key == "port")
    );
    assert!(
        import.report.entries.iter().any(|e| e.key == "logpath"
            && e.message.contains("glob expanded")
            && e.origin
                .as_ref()
                .is_some_and(|o| o.file.ends_with("jail.local") && o.line == 13)),
        "{report}"
    );
    let by_key: BTreeMap<&str, usize> =
        import
            .report
            .entries
            .iter()
            .fold(BTreeMap::new(), |mut m, e| {
                *m.entry(e.key.as_str()).or_default() += 1;
                m
            });
    eprintln!("report entries by key: {by_key:?}");
}
