//! Fail2Ban's own sample corpus: every `# failJSON:` case under
//! `fail2ban/tests/files/logs/<filter>` of the installed Debian package, run through the
//! filter of `/etc/fail2ban/filter.d` (read at test time, never copied), checked the way
//! Fail2Ban's `samplestestcase.py` checks it: match or not, host/failure id, time (in the
//! test suite's CET/CEST zone, "now" = 2005-08-14 12:00 CEST), user, users, attempts.

use std::collections::HashMap;
use std::path::Path;

use portcullis_core::Time;
use portcullis_pcre2::{Fail2BanFilter, Failure, Value, load_filter, normalize};
use serde_json::Value as Json;

mod common;
use common::{LOGS, TEST_NOW, cet, filter_file};

/// One filter variant (a `filterOptions` entry).
struct Variant {
    opts: HashMap<String, String>,
    filter: Fail2BanFilter,
}

/// `name == 'sshd'`, `opts.get('mode') != 'aggressive'`, … (the forms the corpus uses).
fn eval(expr: &str, name: &str, opts: &HashMap<String, String>) -> bool {
    let expr = expr.replace(' ', "");
    let (lhs, rhs, eq) = if let Some((l, r)) = expr.split_once("==") {
        (l.to_owned(), r.to_owned(), true)
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l.to_owned(), r.to_owned(), false)
    } else {
        panic!("unsupported constraint {expr:?}");
    };
    let rhs = rhs.trim_matches(['\'', '"']);
    let value = if lhs == "name" {
        Some(name.to_owned())
    } else if let Some(k) = lhs
        .strip_prefix("opts.get('")
        .and_then(|k| k.strip_suffix("')"))
    {
        opts.get(k).cloned()
    } else {
        panic!("unsupported constraint {expr:?}");
    };
    (value.as_deref() == Some(rhs)) == eq
}

fn build(name: &str, opts: &HashMap<String, String>) -> Fail2BanFilter {
    let args: Vec<(String, String)> = opts
        .iter()
        .filter(|(k, _)| !k.starts_with("test."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut o = load_filter(&filter_file(name), &args).unwrap_or_else(|e| panic!("{name}: {e}"));
    o.check_all = true;
    Fail2BanFilter::new(&o, cet(), 2005).unwrap_or_else(|e| panic!("{name} {opts:?}: {e}"))
}

fn json_str(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Local CET/CEST time `YYYY-MM-DDTHH:MM:SS[.f]` → instant (Python's `time.mktime`).
fn local_time(t: &str) -> Time {
    // strptime("%Y-%m-%dT%H:%M:%S[.%f]") accepts one-digit fields.
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let n: Vec<i64> = whole
        .split(['-', 'T', ':'])
        .map(|x| x.parse().expect("number"))
        .collect();
    assert_eq!(n.len(), 6, "time {t:?}");
    let micros: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}")[..6].parse().expect("fraction")
    };
    let dt = jiff::civil::DateTime::new(
        n[0] as i16,
        n[1] as i8,
        n[2] as i8,
        n[3] as i8,
        n[4] as i8,
        n[5] as i8,
        (micros * 1000) as i32,
    )
    .unwrap_or_else(|e| panic!("time {t:?}: {e}"));
    let ts = cet()
        .to_ambiguous_timestamp(dt)
        .compatible()
        .expect("local time");
    Time::from(ts)
}

fn check(case: &serde_json::Map<String, Json>, found: &[Failure]) -> Result<(), String> {
    let want = case.get("match").and_then(Json::as_bool).unwrap_or(false);
    if found.is_empty() {
        return if want {
            Err("line not matched when it should have been".into())
        } else {
            Ok(())
        };
    }
    if !want {
        return Err(format!(
            "line matched when it should not have (regex {})",
            found[0].regex
        ));
    }
    if found.len() != 1 {
        return Err(format!(
            "several regexes matched: {:?}",
            found.iter().map(|f| f.regex).collect::<Vec<_>>()
        ));
    }
    let f = &found[0];
    for (k, v) in case {
        if matches!(k.as_str(), "time" | "match" | "desc" | "constraint") {
            continue;
        }
        let got: Option<Json> = match (k.as_str(), f.fields.get(k.as_str())) {
            (_, Some(Value::Text(s))) => Some(Json::String(s.clone())),
            (_, Some(Value::Users(u))) => Some(Json::Array(
                u.iter().map(|s| Json::String(s.clone())).collect(),
            )),
            (_, Some(Value::Lines(l))) => Some(Json::Array(
                l.iter().map(|s| Json::String(s.clone())).collect(),
            )),
            (_, Some(Value::Flag)) => Some(Json::Bool(true)),
            ("host", None) => f.id.clone().map(Json::String),
            ("attempts", None) => Some(Json::from(match f.fields.get("matches") {
                Some(Value::Lines(l)) => l.len(),
                _ => 0,
            })),
            _ => None,
        };
        let same = match (&got, v) {
            (Some(Json::Array(a)), Json::Array(b)) => {
                let mut a: Vec<String> = a.iter().map(json_str).collect();
                let mut b: Vec<String> = b.iter().map(json_str).collect();
                a.sort();
                b.sort();
                a == b
            }
            (None, Json::Null) => true,
            // Fail2Ban compares addresses as addresses (`IPAddr.__eq__`), not as text.
            (Some(Json::String(g)), Json::String(w)) if k == "host" => {
                let (a, b) = (normalize(g, None, None), normalize(w, None, None));
                g == w || (a.1.is_some() && a == b)
            }
            (Some(g), v) => g == v,
            (None, _) => false,
        };
        if !same {
            return Err(format!("{k}: expected {v}, got {got:?}"));
        }
    }
    if let Some(t) = case.get("time").and_then(Json::as_str) {
        let want = local_time(t);
        if f.time != Some(want) {
            return Err(format!("time: expected {t} ({want}), got {:?}", f.time));
        }
    }
    Ok(())
}

/// Runs the corpus of filter `name`; returns (cases passed, failures as messages).
fn run_corpus(name: &str) -> (usize, Vec<String>) {
    let mut files = vec![name.to_owned()];
    let mut variants: Vec<Variant> = Vec::new();
    let mut common: serde_json::Map<String, Json> = serde_json::Map::new();
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut i = 0;
    while i < files.len() {
        let path = Path::new(LOGS).join(&files[i]);
        i += 1;
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut lines = text.split('\n').enumerate();
        let mut ignore_block = false;
        while let Some((n, line)) = lines.next() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let meta = line.trim_start_matches('#');
            let meta = meta.strip_prefix(' ').unwrap_or(meta);
            let (kind, payload) = match meta.split_once(':') {
                Some((k @ ("failJSON" | "fileOptions" | "filterOptions" | "addFILE"), p))
                    if line.starts_with('#') =>
                {
                    (k, p)
                }
                _ if ignore_block || line.starts_with('#') || line.trim().is_empty() => continue,
                // A line without a case must not match (and still feeds multi-line state).
                _ => ("plain", ""),
            };
            let data: Json = if kind == "plain" {
                Json::Object(serde_json::Map::new())
            } else {
                serde_json::from_str(payload.trim()).unwrap_or_else(|e| panic!("{name}:{n}: {e}"))
            };
            match kind {
                "fileOptions" => {
                    common = data.as_object().cloned().unwrap_or_default();
                    continue;
                }
                "filterOptions" => {
                    variants.clear();
                    ignore_block = false;
                    let list = match data {
                        Json::Array(a) => a,
                        o => vec![o],
                    };
                    for o in list {
                        let mut opts = common.clone();
                        opts.extend(o.as_object().cloned().unwrap_or_default());
                        let opts: HashMap<String, String> =
                            opts.iter().map(|(k, v)| (k.clone(), json_str(v))).collect();
                        if let Some(c) = opts.get("test.condition") {
                            ignore_block = !eval(c, name, &opts);
                        }
                        if !ignore_block {
                            let filter = build(name, &opts);
                            variants.push(Variant { opts, filter });
                        }
                    }
                    continue;
                }
                "addFILE" => {
                    files.push(json_str(&data));
                    continue;
                }
                _ => {}
            }
            let next = if kind == "plain" {
                line
            } else {
                match lines.next() {
                    Some((_, next)) => next,
                    None => break,
                }
            };
            if ignore_block {
                continue;
            }
            let case = data.as_object().cloned().unwrap_or_default();
            if variants.is_empty() {
                let opts = HashMap::new();
                variants.push(Variant {
                    filter: build(name, &opts),
                    opts,
                });
            }
            let next = next.strip_suffix('\r').unwrap_or(next);
            for v in &mut variants {
                if let Some(c) = case.get("constraint").and_then(Json::as_str)
                    && !eval(c, name, &v.opts)
                {
                    continue;
                }
                let result = if v.opts.get("logtype").map(String::as_str) == Some("journal") {
                    let msg = format!(
                        "{}{next}",
                        v.opts.get("test.prefix-line").map_or("", String::as_str)
                    );
                    v.filter.process_message(&msg, TEST_NOW)
                } else {
                    v.filter.process_line(next, TEST_NOW)
                };
                assert!(
                    result.errors.is_empty(),
                    "{name}: search errors {:?}",
                    result.errors
                );
                let found: Vec<Failure> = result
                    .failures
                    .into_iter()
                    .filter(|f| !f.is_nofail())
                    .collect();
                match check(&case, &found) {
                    Ok(()) => passed += 1,
                    Err(e) => failures.push(format!(
                        "{}:{} {:?}: {e}\n    line: {next}",
                        files[i - 1],
                        n + 2,
                        v.opts
                    )),
                }
            }
        }
    }
    (passed, failures)
}

fn corpus_test(name: &str) {
    if !common::corpus_present() {
        return;
    }
    let (passed, failures) = run_corpus(name);
    println!(
        "failJSON {name}: {passed} passed, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases failed:\n{}",
        failures.len(),
        passed + failures.len(),
        failures.join("\n")
    );
    assert!(passed > 0, "{name}: no case ran");
}

// Not listed: zzz-generic-example and zzz-sshd-obsolete-multiline, test-only filters of
// Fail2Ban's source tree whose `before = ../../../../../../../config/filter.d/common.conf`
// points outside the installed package (their include cannot be found there).
macro_rules! corpus {
    ($($test:ident => $name:literal,)*) => {
        $( #[test] fn $test() { corpus_test($name); } )*
    };
}

corpus! {
    f_3proxy => "3proxy", apache_auth => "apache-auth", apache_badbots => "apache-badbots",
    apache_botsearch => "apache-botsearch", apache_fakegooglebot => "apache-fakegooglebot",
    apache_modsecurity => "apache-modsecurity", apache_nohome => "apache-nohome",
    apache_noscript => "apache-noscript", apache_overflows => "apache-overflows",
    apache_pass => "apache-pass", apache_shellshock => "apache-shellshock", assp => "assp",
    asterisk => "asterisk", bitwarden => "bitwarden", centreon => "centreon",
    counter_strike => "counter-strike", courier_auth => "courier-auth", courier_smtp => "courier-smtp",
    cyrus_imap => "cyrus-imap", directadmin => "directadmin", domino_smtp => "domino-smtp",
    dovecot => "dovecot", dropbear => "dropbear", drupal_auth => "drupal-auth",
    ejabberd_auth => "ejabberd-auth", exim_spam => "exim-spam", exim => "exim",
    freeswitch => "freeswitch", froxlor_auth => "froxlor-auth", gitlab => "gitlab", grafana => "grafana",
    groupoffice => "groupoffice", gssftpd => "gssftpd", guacamole => "guacamole",
    haproxy_http_auth => "haproxy-http-auth", horde => "horde", kerio => "kerio",
    lighttpd_auth => "lighttpd-auth", mongodb_auth => "mongodb-auth", monit => "monit",
    monitorix => "monitorix", mssql_auth => "mssql-auth", murmur => "murmur", mysqld_auth => "mysqld-auth",
    nagios => "nagios", named_refused => "named-refused", nginx_bad_request => "nginx-bad-request",
    nginx_botsearch => "nginx-botsearch", nginx_http_auth => "nginx-http-auth",
    nginx_limit_req => "nginx-limit-req", nsd => "nsd", openhab => "openhab", openwebmail => "openwebmail",
    oracleims => "oracleims", pam_generic => "pam-generic", perdition => "perdition",
    php_url_fopen => "php-url-fopen", phpmyadmin_syslog => "phpmyadmin-syslog", portsentry => "portsentry",
    postfix => "postfix", proftpd => "proftpd", pure_ftpd => "pure-ftpd", qmail => "qmail",
    recidive => "recidive", roundcube_auth => "roundcube-auth", scanlogd => "scanlogd",
    screensharingd => "screensharingd", selinux_ssh => "selinux-ssh", sendmail_auth => "sendmail-auth",
    sendmail_reject => "sendmail-reject", sieve => "sieve", slapd => "slapd", softethervpn => "softethervpn",
    sogo_auth => "sogo-auth", solid_pop3d => "solid-pop3d", squid => "squid", squirrelmail => "squirrelmail",
    sshd => "sshd", stunnel => "stunnel", suhosin => "suhosin", tine20 => "tine20",
    traefik_auth => "traefik-auth", uwimap_auth => "uwimap-auth", vsftpd => "vsftpd",
    webmin_auth => "webmin-auth", wuftpd => "wuftpd", xinetd_fail => "xinetd-fail",
    znc_adminlog => "znc-adminlog", zoneminder => "zoneminder",
}
