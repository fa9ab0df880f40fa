//! Every shipped Fail2Ban `.conf` file parsed by [`IniFile`] and by Python's
//! `RawConfigParser(inline_comment_prefixes=(';',), strict=False, interpolation=None)`:
//! sections, keys and values must be identical.

mod common;

use portcullis_fail2ban::IniFile;
use serde_json::json;

const PY_DUMP: &str = r#"
import configparser, json, sys
out = {}
for path in sys.argv[1:]:
    p = configparser.RawConfigParser(inline_comment_prefixes=(';',), strict=False, interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            p.read_file(f, path)
        d = {'DEFAULT': dict(p._defaults)}
        for name, sec in p._sections.items():
            d[name] = dict(sec)
        out[path] = d
    except Exception as e:
        out[path] = {'error': type(e).__name__}
print(json.dumps(out))
"#;

#[test]
fn every_shipped_conf_file_matches_python_configparser() {
    let Some(dir) = common::fail2ban_dir() else {
        return;
    };
    let mut files = common::conf_files(&dir);
    for sub in ["filter.d", "action.d", "jail.d"] {
        files.extend(common::conf_files(&dir.join(sub)));
    }
    assert!(
        files.len() > 150,
        "expected the full Debian set, found {}",
        files.len()
    );
    let names: Vec<&str> = files
        .iter()
        .map(|p| p.to_str().expect("utf-8 path"))
        .collect();
    let python = common::python_json(PY_DUMP, &names);
    let mut agree = 0;
    let mut differ = Vec::new();
    for path in &names {
        let want = &python[*path];
        let got = match std::fs::read_to_string(path) {
            Ok(text) => match IniFile::parse(&text, path) {
                Ok(f) => common::ini_json(&f),
                Err(e) => json!({ "error": e.to_string() }),
            },
            Err(e) => json!({ "error": e.to_string() }),
        };
        if &got == want {
            agree += 1;
        } else {
            differ.push(format!("{path}:\n  rust:   {got}\n  python: {want}"));
        }
    }
    eprintln!(
        "ini golden: {agree}/{} files identical to Python configparser",
        names.len()
    );
    assert!(
        differ.is_empty(),
        "{} files differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}
