//! Every shipped `filter.d/*.conf` resolved by [`FilterDef`] and by Fail2Ban's own Python
//! `FilterReader` (read, getOptions, convert): prefregex, failregex, ignoreregex,
//! datepattern, maxlines and journalmatch must be identical. A few filters are also checked
//! with arguments (`sshd[mode=…]`) and with a systemd backend (`logtype=journal`).

mod common;

use std::path::Path;

use portcullis_fail2ban::FilterDef;
use serde_json::{Map, Value, json};

/// For each `name|args-json|backend` argument: what Fail2Ban's reader streams to its server,
/// reduced to the filter's options.
const PY_FILTERS: &str = r#"
import json, sys
from fail2ban.client.filterreader import FilterReader
out = {}
for spec in sys.argv[1:]:
    name, args, backend = spec.split('|', 2)
    try:
        r = FilterReader(name, 'jail', json.loads(args), share_config={}, basedir='/etc/fail2ban')
        if not r.read():
            out[spec] = {'error': 'not read'}
            continue
        if backend:
            r.applyAutoOptions(backend)
        r.getOptions({})
        d = {'failregex': [], 'ignoreregex': [], 'journalmatch': []}
        for cmd in r.convert():
            if cmd[0] == 'multi-set':
                d[cmd[2][3:]] += cmd[3]
            elif cmd[2] in ('addfailregex', 'addignoreregex'):
                d[cmd[2][3:]].append(cmd[3])
            elif cmd[2] == 'addjournalmatch':
                d['journalmatch'].append(cmd[3:])
            elif cmd[2] == 'maxlines':
                d['maxlines'] = int(cmd[3])
            else:
                d[cmd[2]] = cmd[3] if cmd[3] != '' else None
        out[spec] = d
    except Exception as e:
        out[spec] = {'error': type(e).__name__ + ': ' + str(e)}
print(json.dumps(out))
"#;

fn rust_filter(dir: &Path, name: &str, args: &[(String, String)], backend: &str) -> Value {
    let loaded = if backend.is_empty() {
        FilterDef::load(dir, name, args)
    } else {
        FilterDef::load_for_backend(dir, name, args, backend)
    };
    let f = match loaded {
        Ok(f) => f,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let mut d = Map::new();
    let texts = |v: &[portcullis_fail2ban::Located]| {
        json!(v.iter().map(|l| l.text.clone()).collect::<Vec<_>>())
    };
    d.insert("failregex".into(), texts(&f.failregex));
    d.insert("ignoreregex".into(), texts(&f.ignoreregex));
    d.insert(
        "journalmatch".into(),
        json!(
            f.journalmatch
                .iter()
                .map(|m| m.words.clone())
                .collect::<Vec<_>>()
        ),
    );
    for (key, value) in [
        ("prefregex", &f.prefregex),
        ("datepattern", &f.datepattern),
        ("usedns", &f.usedns),
    ] {
        if let Some(v) = value {
            d.insert(key.into(), json!(v.text));
        } else if f.options.contains_key(key) {
            d.insert(key.into(), Value::Null);
        }
    }
    if let Some((n, _)) = f.maxlines {
        d.insert("maxlines".into(), json!(n));
    }
    Value::Object(d)
}

/// Filter name, arguments, backend (empty: none).
type Spec = (String, Vec<(String, String)>, String);

#[test]
fn every_shipped_filter_resolves_like_fail2bans_filter_reader() {
    let Some(dir) = common::fail2ban_dir() else {
        return;
    };
    let mut specs: Vec<Spec> = common::conf_files(&dir.join("filter.d"))
        .iter()
        .map(|p| {
            (
                p.file_stem().expect("stem").to_string_lossy().into_owned(),
                vec![],
                String::new(),
            )
        })
        .collect();
    assert!(
        specs.len() > 80,
        "expected the full Debian filter set, found {}",
        specs.len()
    );
    let with = |name: &str, args: &[(&str, &str)], backend: &str| {
        (
            name.to_owned(),
            args.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>(),
            backend.to_owned(),
        )
    };
    for mode in ["normal", "ddos", "extra", "aggressive"] {
        specs.push(with("sshd", &[("mode", mode)], ""));
    }
    specs.push(with("sshd", &[("publickey", "invalid")], "systemd"));
    specs.push(with("sshd", &[], "systemd"));
    specs.push(with("sshd", &[], "pyinotify"));
    specs.push(with("postfix", &[("mode", "aggressive")], ""));
    specs.push(with("dovecot", &[], "systemd"));
    specs.push(with("recidive", &[("_jailname", "myjail")], ""));
    let keys: Vec<String> = specs
        .iter()
        .map(|(name, args, backend)| {
            let args: Map<String, Value> =
                args.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            format!("{name}|{}|{backend}", Value::Object(args))
        })
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let python = common::python_json(PY_FILTERS, &key_refs);
    let mut agree = 0;
    let mut differ = Vec::new();
    for ((name, args, backend), key) in specs.iter().zip(&keys) {
        let want = &python[key.as_str()];
        let got = rust_filter(&dir, name, args, backend);
        // Include-only files (selinux-common) fail in Fail2Ban too: both must fail.
        let both_fail = want.get("error").is_some() && got.get("error").is_some();
        if both_fail {
            eprintln!(
                "both fail on {key}:\n  rust:   {}\n  python: {}",
                got["error"], want["error"]
            );
        }
        if both_fail || &got == want {
            agree += 1;
        } else {
            differ.push(format!("{key}:\n  rust:   {got}\n  python: {want}"));
        }
    }
    eprintln!(
        "filter golden: {agree}/{} filter resolutions identical to Fail2Ban's FilterReader",
        specs.len()
    );
    assert!(
        differ.is_empty(),
        "{} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}
