//! Randomly assembled INI texts (tricky fragments: comments, `;` with and without a space
//! before it, indentation, blank lines inside values, duplicate keys and sections, `=` and
//! `:`, DEFAULT, CRLF) parsed by [`IniFile`] and by Python's configparser: same result or
//! both an error. The generator is seeded, so a failure reproduces.

mod common;

use portcullis_fail2ban::IniFile;

const PY_PARSE: &str = r#"
import configparser, json, sys
out = []
for text in json.load(open(sys.argv[1])):
    p = configparser.RawConfigParser(inline_comment_prefixes=(';',), strict=False, interpolation=None)
    try:
        p.read_string(text, 'x.conf')
        d = {'DEFAULT': dict(p._defaults)}
        for name, sec in p._sections.items():
            d[name] = dict(sec)
        out.append(d)
    except Exception as e:
        out.append({'error': type(e).__name__})
print(json.dumps(out))
"#;

/// xorshift64*: small, seeded, good enough to pick fragments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const LINES: &[&str] = &[
    "[Definition]",
    "[DEFAULT]",
    "[INCLUDES]",
    "  [Indented]",
    "[a]b] tail",
    "[Definition?family=inet6]",
    "key = value",
    "Key = Other",
    "failregex = ^a <HOST>$",
    "failregex:^colon",
    "x=y=z",
    "empty =",
    "k = v ; comment",
    "k2 = v;no comment",
    "k3 = a\t; tab comment",
    "; full comment",
    "# hash comment",
    "   # indented hash",
    "    continued line",
    "\tcontinued with tab",
    "        ^deeper <HOST>",
    "",
    "",
    "   ",
    "  indented = key",
    "url = http://x:80/;y",
    "spaces   =   around   ",
    "ünï = cödé",
];

/// Lines configparser rejects; rare, so most documents are valid.
const BAD_LINES: &[&str] = &["no delimiter", "= no key", ": no key"];

fn random_doc(rng: &mut Rng) -> String {
    let n = 1 + (rng.next() % 14) as usize;
    let newline = if rng.next().is_multiple_of(5) {
        "\r\n"
    } else {
        "\n"
    };
    let mut doc = String::new();
    if !rng.next().is_multiple_of(4) {
        doc.push_str("[Definition]");
        doc.push_str(newline);
    }
    for _ in 0..n {
        let line = if rng.next().is_multiple_of(40) {
            rng.pick(BAD_LINES)
        } else {
            rng.pick(LINES)
        };
        doc.push_str(line);
        doc.push_str(newline);
    }
    doc
}

#[test]
fn random_ini_texts_parse_like_python() {
    let Some(_) = common::fail2ban_dir() else {
        return;
    };
    let mut rng = Rng(0x5EED_F2B0_C0FF_EE01);
    let docs: Vec<String> = (0..3000).map(|_| random_doc(&mut rng)).collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("docs.json");
    std::fs::write(&input, serde_json::to_vec(&docs).expect("json")).expect("write");
    let python = common::python_json(PY_PARSE, &[input.to_str().expect("utf-8")]);
    let python = python.as_array().expect("array");
    let mut errors_agreed = 0;
    for (doc, want) in docs.iter().zip(python) {
        match IniFile::parse(doc, "x.conf") {
            Ok(f) => assert_eq!(&common::ini_json(&f), want, "document:\n{doc:?}"),
            Err(e) => {
                assert!(
                    want.get("error").is_some(),
                    "we reject, Python accepts:\n{doc:?}\n{e}\n{want}"
                );
                errors_agreed += 1;
            }
        }
    }
    eprintln!(
        "{} random documents identical ({errors_agreed} rejected by both)",
        docs.len()
    );
}
