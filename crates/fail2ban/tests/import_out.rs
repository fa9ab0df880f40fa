//! The TOML an import writes loads with portcullis's own configuration loader into the same
//! jails, and Fail2Ban's ban database is read back.

mod common;

use portcullis_config::{Config, FilterRef};
use portcullis_fail2ban::{Import, ImportOptions, active_bans};

const JAIL_LOCAL: &str = "\
[DEFAULT]
ignoreip = 127.0.0.1/8 ::1 198.51.100.7 localhost no-such-host.invalid
[sshd]
enabled = true
logpath = LOGS/auth.log
bantime.increment = true
bantime.multipliers = 1 2 4 8 16
[dovecot]
enabled = true
backend = systemd
[recidive]
enabled = true
logpath = LOGS/auth.log
";

#[test]
fn written_toml_loads_into_the_same_jails() {
    let Some(etc) = common::fail2ban_dir() else {
        return;
    };
    let (tmp, dir) = common::scratch_config(&etc, JAIL_LOCAL, &["auth.log"]);
    let import = Import::load(&dir, &ImportOptions::default()).expect("import");
    let text = import.to_toml();
    // Host names are reported, not resolved, unless asked.
    let unresolved = import
        .report
        .entries
        .iter()
        .filter(|e| e.key == "ignoreip" && e.message.contains("not resolved"))
        .count();
    assert_eq!(
        unresolved,
        2 * 3,
        "two names in three enabled jails (recidive too)"
    );
    let resolving = Import::load(
        &dir,
        &ImportOptions {
            resolve_hostnames: true,
        },
    )
    .expect("import");
    let sshd = &resolving.config.jail("sshd").expect("sshd").config;
    assert!(
        resolving
            .report
            .entries
            .iter()
            .any(|e| e.message.contains("host name localhost resolved once"))
    );
    assert!(
        resolving
            .report
            .entries
            .iter()
            .any(|e| e.message.contains("no-such-host.invalid does not resolve"))
    );
    assert!(
        sshd.allowlist
            .iter()
            .any(|n| n.contains(&std::net::IpAddr::from([127, 0, 0, 1])))
    );
    println!("{text}");

    // The filter tables name the Fail2Ban filter file and its arguments.
    let table: toml::Table = text.parse().expect("valid TOML");
    for spec in &import.config.jails {
        let FilterRef::Fail2Ban { path, args } = &spec.filter else {
            panic!("fail2ban filter")
        };
        let filter = &table["jail"][spec.name.as_str()]["filter"];
        assert_eq!(filter["fail2ban"].as_str(), path.to_str());
        for (k, v) in args {
            assert_eq!(
                filter["args"][k.as_str()].as_str(),
                Some(v.as_str()),
                "{} {k}",
                spec.name
            );
        }
    }
    // The written file loads with portcullis's own loader (Config::load, as the daemon
    // reads /etc/portcullis/portcullis.toml), Fail2Ban filter tables included.
    let written = tmp.path().join("portcullis.toml");
    std::fs::write(&written, &text).expect("write toml");
    let loaded = Config::load(Some(&written), None).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let names: Vec<&str> = loaded.jails.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["dovecot", "sshd"]);
    for spec in &import.config.jails {
        let got = loaded.jail(&spec.name).expect("jail");
        assert_eq!(got.config, spec.config, "{}", spec.name);
        assert_eq!(got.sources, spec.sources, "{}", spec.name);
        let (FilterRef::Fail2Ban { path: gp, args: ga }, FilterRef::Fail2Ban { path, args }) =
            (&got.filter, &spec.filter)
        else {
            panic!("{}: not a Fail2Ban filter: {:?}", spec.name, got.filter)
        };
        assert_eq!(gp, path, "{}", spec.name);
        let (mut ga, mut args) = (ga.clone(), args.clone());
        ga.sort();
        args.sort();
        assert_eq!(ga, args, "{}", spec.name);
    }
    let sshd = &import.config.jail("sshd").expect("sshd").config;
    assert_eq!(sshd.factor, 2.0, "1 2 4 8 16 is doubling");
    assert_eq!(sshd.maxtime, sshd.bantime * 16);
    assert_eq!(sshd.permanent_after, Some(5), "recidive: 5 bans in a day");
    assert!(
        sshd.allowlist
            .contains(&"198.51.100.7/32".parse().expect("net"))
    );
    assert_eq!(loaded.firewall.backend, import.config.firewall.backend);
}

const PY_MAKE_DB: &str = r#"
import sys, time
from fail2ban.server.database import Fail2BanDb
db = Fail2BanDb(sys.argv[1])
now = int(sys.argv[2])
cur = db._db.cursor()
for j in ('sshd', 'recidive'):
    cur.execute("INSERT INTO jails(name, enabled) VALUES (?, 1)", (j,))
rows = [
    ('sshd', '192.0.2.1', now - 100, 600, 1),       # in force
    ('sshd', '192.0.2.2', now - 1000, 600, 1),      # expired
    ('sshd', '192.0.2.3', now - 5000, 600, 1),      # older row, superseded below
    ('sshd', '192.0.2.3', now - 10, 1200, 2),       # in force, second ban
    ('recidive', '2001:db8::5', now - 10, -1, 3),   # permanent
    ('sshd', 'not-an-ip', now - 10, 600, 1),
]
cur.executemany("INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES (?,?,?,?,?,'{}')", rows)
db._db.commit()
print('{}')
"#;

#[test]
fn active_bans_come_from_fail2bans_database() {
    let Some(_) = common::fail2ban_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("fail2ban.sqlite3");
    let now = 1_800_000_000i64;
    common::python_json(PY_MAKE_DB, &[db.to_str().expect("utf-8"), &now.to_string()]);
    let (bans, bad) = active_bans(&db, now).expect("read");
    let got: Vec<(String, String, Option<i64>, u32)> = bans
        .iter()
        .map(|b| (b.jail.clone(), b.target.to_string(), b.until, b.bancount))
        .collect();
    assert_eq!(
        got,
        [
            ("recidive".to_owned(), "2001:db8::5/128".to_owned(), None, 3),
            (
                "sshd".to_owned(),
                "192.0.2.1/32".to_owned(),
                Some(now + 500),
                1
            ),
            (
                "sshd".to_owned(),
                "192.0.2.3/32".to_owned(),
                Some(now + 1190),
                2
            ),
        ]
    );
    assert_eq!(bad, ["not-an-ip"]);
    assert!(active_bans(&tmp.path().join("missing.sqlite3"), now).is_err());
}
