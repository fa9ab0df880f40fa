//! Loading, merging and validating configurations through the public API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_config::{
    Backend, Config, ConfigError, FilterRef, JournalSpec, LogLevel, SourceSpec, Verdict,
};
use portcullis_core::Weight;
use portcullis_core::jail::JailConfig;

fn invalid(result: Result<Config, ConfigError>) -> (String, Option<usize>, Option<String>, String) {
    match result {
        Err(ConfigError::Invalid {
            file,
            line,
            key,
            message,
        }) => (file, line, key, message),
        other => panic!("expected an invalid-config error, got {other:?}"),
    }
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().expect("test literal is a network")
}

#[test]
fn embedded_default_protects_sshd() {
    let c = Config::embedded_default().unwrap();
    assert_eq!(c.jails.len(), 1);
    let sshd = c.jail("sshd").unwrap();
    assert_eq!(sshd.filter, FilterRef::Named("sshd".into()));
    assert_eq!(sshd.sources, vec![SourceSpec::Auto]);
    // The embedded [defaults] spell out JailConfig::new's values (the slow signals on).
    assert_eq!(sshd.config, JailConfig::new("sshd"));
    assert!(sshd.config.long_window.is_some() && sshd.config.max_users.is_some());
    assert_eq!(c.firewall.backend, Backend::Auto);
    assert_eq!(c.firewall.verdict, Verdict::Drop);
    assert_eq!(c.firewall.table, "portcullis");
    assert_eq!(c.firewall.priority, -10);
    assert!(!c.firewall.flush_on_stop);
    assert!(c.firewall.netlink);
    assert_eq!(c.daemon.state_dir, PathBuf::from("/var/lib/portcullis"));
    assert_eq!(
        c.daemon.socket,
        PathBuf::from("/run/portcullis/control.sock")
    );
    assert_eq!(c.daemon.log_level, LogLevel::Info);
    assert_eq!(c.daemon.log_format, portcullis_config::LogFormat::Text);
    assert_eq!(c.daemon.timezone, None);
    assert_eq!(c.files, vec!["<embedded default>".to_string()]);
}

#[test]
fn a_full_file_sets_every_key() {
    let text = r#"
[daemon]
state_dir = "/tmp/pc/state"
socket = "/tmp/pc/sock"
log_level = "debug"
timezone = "UTC"
filter_dir = "filters"

[firewall]
backend = "ipset"
table = "pc_test"
priority = 5
verdict = "reject"
hook_forward = true
flush_on_stop = true
netlink = false

[defaults]
maxretry = 2.5
findtime = "1h30m"
bantime = 60
bantime_factor = 1
maxtime = "2w"
permanent_after = false
history = "30d"
allowlist = ["192.0.2.0/24", "2001:db8::1", "198.51.100.7/24"]
v6_net_threshold = false
v6_prefix = 48
breach_after = false
protect_after_success = false
protect_budget = 7
alert_root_login = false
slow_maxretry = 12.5
slow_findtime = "3d"
max_users = 9

[jail.sshd]
sources = [
  { file = "/var/log/auth.log" },
  { journal = { matches = ["SYSLOG_IDENTIFIER=sshd", "+", "_COMM=sshd"], directory = "j" } },
  "auto",
]

[jail.web]
filter = "./web-filter.toml"
maxretry = 10
"#;
    let c = Config::from_str_named(text, "/etc/pc/portcullis.toml").unwrap();
    assert_eq!(c.daemon.state_dir, PathBuf::from("/tmp/pc/state"));
    assert_eq!(c.daemon.log_level, LogLevel::Debug);
    assert_eq!(c.daemon.timezone.as_deref(), Some("UTC"));
    assert_eq!(c.daemon.filter_dir, PathBuf::from("/etc/pc/filters"));
    assert_eq!(c.firewall.backend, Backend::Ipset);
    assert_eq!(c.firewall.table, "pc_test");
    assert_eq!(c.firewall.priority, 5);
    assert_eq!(c.firewall.verdict, Verdict::Reject);
    assert!(c.firewall.hook_forward && c.firewall.flush_on_stop);
    assert!(!c.firewall.netlink);

    let sshd = &c.jail("sshd").unwrap();
    let j = &sshd.config;
    assert_eq!(j.maxretry, Weight(2500));
    assert_eq!(j.findtime, Duration::from_secs(5400));
    assert_eq!(j.bantime, Duration::from_secs(60));
    assert_eq!(j.factor, 1.0);
    assert_eq!(j.maxtime, Duration::from_secs(14 * 86_400));
    assert_eq!(j.permanent_after, None);
    assert_eq!(j.history, Duration::from_secs(30 * 86_400));
    // Host bits are cleared; loopback is always added.
    assert_eq!(
        j.allowlist,
        vec![
            net("192.0.2.0/24"),
            net("2001:db8::1/128"),
            net("198.51.100.0/24"),
            net("127.0.0.0/8"),
            net("::1/128"),
        ]
    );
    assert_eq!(j.v6_net_threshold, None);
    assert_eq!(j.v6_prefix, 48);
    assert_eq!(j.breach_after, None);
    assert_eq!(j.protect_after_success, None);
    assert_eq!(j.protect_budget, 7);
    assert!(!j.alert_root_login);
    assert_eq!(
        j.long_window,
        Some((Weight(12_500), Duration::from_secs(3 * 86_400)))
    );
    assert_eq!(j.max_users, Some(9));
    assert_eq!(
        sshd.sources,
        vec![
            SourceSpec::File {
                path: "/var/log/auth.log".into()
            },
            SourceSpec::Journal(JournalSpec {
                matches: vec![
                    "SYSLOG_IDENTIFIER=sshd".into(),
                    "+".into(),
                    "_COMM=sshd".into()
                ],
                directory: Some("/etc/pc/j".into()),
                file: None,
                senders: Default::default(),
            }),
            SourceSpec::Auto,
        ]
    );

    let web = c.jail("web").unwrap();
    assert_eq!(web.config.name, "web");
    assert_eq!(web.config.maxretry, Weight(10_000));
    // Inherited from [defaults].
    assert_eq!(web.config.bantime, Duration::from_secs(60));
    assert_eq!(
        web.filter,
        FilterRef::File(PathBuf::from("/etc/pc/./web-filter.toml"))
    );
    assert_eq!(web.filter_at.line, 45);
    assert_eq!(web.filter_at.key, "jail.web.filter");
    assert_eq!(web.sources, vec![SourceSpec::Auto]);
}

#[test]
fn later_layers_override_per_key_and_per_jail() {
    let main = "[defaults]\nmaxretry = 3\nbantime = \"1h\"\n[jail.sshd]\nfindtime = \"20m\"\n";
    let drop_in = "[jail.sshd]\nmaxretry = 7\n[firewall]\nverdict = \"reject\"\n";
    let c = Config::from_texts(&[(main, "main.toml"), (drop_in, "conf.d/10-x.toml")]).unwrap();
    let sshd = &c.jail("sshd").unwrap().config;
    assert_eq!(sshd.maxretry, Weight(7000), "the drop-in's jail key wins");
    assert_eq!(
        sshd.findtime,
        Duration::from_secs(1200),
        "main's jail key stays"
    );
    assert_eq!(
        sshd.bantime,
        Duration::from_secs(3600),
        "main's default applies"
    );
    assert_eq!(
        c.jail("sshd").unwrap().filter,
        FilterRef::Named("sshd".into())
    );
    assert_eq!(c.firewall.verdict, Verdict::Reject);
    assert_eq!(
        c.firewall.backend,
        Backend::Auto,
        "untouched keys keep the default"
    );
}

#[test]
fn a_jail_can_be_disabled_by_a_later_file() {
    let c = Config::from_texts(&[("[jail.sshd]\nenabled = false\n", "conf.d/off.toml")]).unwrap();
    assert!(c.jails.is_empty());
    // The built-in service jails the embedded default leaves off are listed too.
    assert!(c.disabled_jails.contains(&"sshd".to_string()));
    assert!(c.disabled_jails.contains(&"dovecot".to_string()));
    assert!(c.disabled_jails.contains(&"postfix-sasl".to_string()));
}

#[test]
fn load_reads_main_then_conf_d_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("portcullis.toml");
    std::fs::write(&main, "[defaults]\nmaxretry = 4\n").unwrap();
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    std::fs::write(conf_d.join("20-late.toml"), "[jail.sshd]\nmaxretry = 9\n").unwrap();
    std::fs::write(
        conf_d.join("10-early.toml"),
        "[jail.sshd]\nmaxretry = 8\nbantime = \"2h\"\n[jail.other]\nfilter = \"x\"\n",
    )
    .unwrap();
    // Not *.toml, or hidden: ignored.
    std::fs::write(conf_d.join("99-broken.toml.bak"), "garbage [").unwrap();
    std::fs::write(conf_d.join(".hidden.toml"), "garbage [").unwrap();

    let c = Config::load(Some(&main), Some(&conf_d)).unwrap();
    let sshd = &c.jail("sshd").unwrap().config;
    assert_eq!(sshd.maxretry, Weight(9000));
    assert_eq!(sshd.bantime, Duration::from_secs(7200));
    assert_eq!(c.jail("other").unwrap().config.maxretry, Weight(4000));
    assert_eq!(c.files.len(), 4);
    assert!(c.files[1].ends_with("portcullis.toml"));
    assert!(c.files[2].ends_with("10-early.toml"));
    assert!(c.files[3].ends_with("20-late.toml"));

    // An error in a drop-in names that file.
    std::fs::write(
        conf_d.join("30-bad.toml"),
        "[jail.sshd]\n\nbantime = \"soon\"\n",
    )
    .unwrap();
    let err = Config::load(Some(&main), Some(&conf_d)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("30-bad.toml:3: jail.sshd.bantime: "),
        "{text}"
    );

    // Missing conf.d is fine; a missing main file is not.
    assert!(Config::load(Some(&main), Some(&dir.path().join("nope"))).is_ok());
    let err = Config::load(Some(&dir.path().join("missing.toml")), None).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(Config::load(None, None).is_ok());
}

#[test]
fn unknown_keys_are_rejected_with_file_line_key() {
    let (file, line, key, msg) = invalid(Config::from_str_named(
        "[jail.sshd]\nmaxretry = 3\nbantme = \"1h\"\n",
        "portcullis.toml",
    ));
    assert_eq!(file, "portcullis.toml");
    assert_eq!(line, Some(3));
    assert_eq!(key.as_deref(), Some("jail.sshd.bantme"));
    assert!(msg.contains("bantme"), "{msg}");

    let (_, line, key, _) = invalid(Config::from_str_named("\n[firewal]\nx = 1\n", "p.toml"));
    assert_eq!(line, Some(2));
    assert_eq!(key.as_deref(), Some("firewal"));

    let (_, line, key, _) = invalid(Config::from_str_named(
        "[daemon]\nsocket = \"/s\"\npid_file = \"/p\"\n",
        "p.toml",
    ));
    assert_eq!((line, key.as_deref()), (Some(3), Some("daemon.pid_file")));

    let (_, line, key, msg) = invalid(Config::from_str_named(
        "[jail.sshd]\nsources = [{ journal = { match = [] } }]\n",
        "p.toml",
    ));
    assert_eq!(line, Some(2));
    assert!(key.unwrap().starts_with("jail.sshd.sources[0]"));
    assert!(msg.contains("match"), "{msg}");
}

#[test]
fn error_display_is_file_line_key_message() {
    let err =
        Config::from_str_named("# c\n[jail.sshd]\nmaxretry = 0\n", "portcullis.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "portcullis.toml:3: jail.sshd.maxretry: expected a positive number of attempts \
         (at most 4000000), got 0"
    );
    assert_eq!(err.line(), Some(3));
    assert_eq!(err.key(), Some("jail.sshd.maxretry"));
}

#[test]
fn bad_values_name_line_and_key() {
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "[defaults]\nfindtime = \"10x\"\n",
            2,
            "defaults.findtime",
            "unknown duration unit",
        ),
        (
            "[defaults]\nfindtime = 0\n",
            2,
            "defaults.findtime",
            "longer than zero",
        ),
        (
            "[jail.sshd]\nbantime = -1\n",
            2,
            "jail.sshd.bantime",
            "permanent_after",
        ),
        (
            "[jail.sshd]\nbantime = \"-1\"\n",
            2,
            "jail.sshd.bantime",
            "negative",
        ),
        (
            "[jail.sshd]\nmaxretry = -2\n",
            2,
            "jail.sshd.maxretry",
            "positive",
        ),
        (
            "[jail.sshd]\nmaxretry = \"five\"\n",
            2,
            "jail.sshd.maxretry",
            "positive number",
        ),
        (
            "[jail.sshd]\nbantime_factor = 0.5\n",
            2,
            "jail.sshd.bantime_factor",
            "from 1",
        ),
        (
            "[jail.sshd]\npermanent_after = 0\n",
            2,
            "jail.sshd.permanent_after",
            "or false",
        ),
        (
            "[jail.sshd]\npermanent_after = true\n",
            2,
            "jail.sshd.permanent_after",
            "or false",
        ),
        (
            "[jail.sshd]\nv6_prefix = 129\n",
            2,
            "jail.sshd.v6_prefix",
            "1 to 128",
        ),
        (
            "[jail.sshd]\nprotect_budget = 0\n",
            2,
            "jail.sshd.protect_budget",
            "1 to 1000",
        ),
        (
            "[jail.sshd]\nmax_users = 1\n",
            2,
            "jail.sshd.max_users",
            "2 to 64",
        ),
        (
            "[defaults]\nmax_users = true\n",
            2,
            "defaults.max_users",
            "or false",
        ),
        (
            "[jail.sshd]\nslow_maxretry = -1\n",
            2,
            "jail.sshd.slow_maxretry",
            "positive number of attempts, or false",
        ),
        (
            "[jail.sshd]\nfindtime = \"1h\"\n\nslow_findtime = \"30m\"\n",
            4,
            "jail.sshd.slow_findtime",
            "must be longer than findtime",
        ),
        (
            "[defaults]\nslow_maxretry = 4\n",
            2,
            "defaults.slow_maxretry",
            "must be larger than maxretry",
        ),
        (
            "[jail.sshd]\nallowlist = [\n  \"192.0.2.0/24\",\n  \"10.0.0.300\",\n]\n",
            4,
            "jail.sshd.allowlist[1]",
            "10.0.0.300",
        ),
        (
            "[defaults]\nallowlist = [\"192.0.2.0/33\"]\n",
            2,
            "defaults.allowlist[0]",
            "CIDR",
        ),
        (
            "[jail.sshd]\nsources = [\"/var/log/auth.log\"]\n",
            2,
            "jail.sshd.sources[0]",
            "file =",
        ),
        (
            "[jail.sshd]\nsources = [{ journal = { matches = [\"sshd\"] } }]\n",
            2,
            "jail.sshd.sources[0].journal.matches[0]",
            "FIELD=value",
        ),
        (
            "[jail.sshd]\nsources = []\n",
            2,
            "jail.sshd.sources",
            "at least one",
        ),
        (
            "[jail.sshd]\nfilter = \"bad name!\"\n",
            2,
            "jail.sshd.filter",
            "filter name",
        ),
        (
            "[firewall]\nbackend = \"pf\"\n",
            2,
            "firewall.backend",
            "pf",
        ),
        (
            "[firewall]\nverdict = \"accept\"\n",
            2,
            "firewall.verdict",
            "accept",
        ),
        (
            "[firewall]\ntable = \"bad table\"\n",
            2,
            "firewall.table",
            "20 letters",
        ),
        (
            "[daemon]\ntimezone = \"Mars/Olympus\"\n",
            2,
            "daemon.timezone",
            "unknown time zone",
        ),
        (
            "[daemon]\nlog_level = \"loud\"\n",
            2,
            "daemon.log_level",
            "loud",
        ),
        (
            "[daemon]\nlog_format = \"xml\"\n",
            2,
            "daemon.log_format",
            "xml",
        ),
        (
            "[defaults]\nfilter = \"sshd\"\n",
            2,
            "defaults.filter",
            "jail",
        ),
        ("[jail.\"a b\"]\nmaxretry = 1\n", 1, "jail.a b", "jail name"),
        (
            "[jail.sshd]\nbantime = \"2w\"\n",
            2,
            "jail.sshd.bantime",
            "longer than maxtime",
        ),
        (
            "[jail.sshd]\nmaxtime = \"1m\"\n",
            2,
            "jail.sshd.maxtime",
            "longer than maxtime",
        ),
    ];
    for (text, want_line, want_key, want_msg) in cases {
        let (file, line, key, msg) = invalid(Config::from_str_named(text, "t.toml"));
        assert_eq!(file, "t.toml", "{text}");
        assert_eq!(line, Some(*want_line), "{text}: {msg}");
        assert_eq!(key.as_deref(), Some(*want_key), "{text}: {msg}");
        assert!(
            msg.contains(want_msg),
            "{text}: message {msg:?} lacks {want_msg:?}"
        );
    }
}

#[test]
fn toml_syntax_errors_name_file_and_line() {
    let (file, line, _, msg) = invalid(Config::from_str_named(
        "[defaults]\nmaxretry = 3\nfindtime = \"10m\n",
        "broken.toml",
    ));
    assert_eq!(file, "broken.toml");
    assert_eq!(line, Some(3));
    assert!(!msg.is_empty());
}

#[test]
fn inherited_values_are_reported_where_they_were_written() {
    // bantime comes from [defaults] in main.toml; the jail's maxtime in the drop-in is
    // shorter: the error points at the later edit and names where the other value is.
    let err = Config::from_texts(&[
        ("[defaults]\n\nbantime = \"3d\"\n", "main.toml"),
        ("[jail.sshd]\nmaxtime = \"2d\"\n", "conf.d/a.toml"),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "conf.d/a.toml:2: jail.sshd.maxtime: bantime (259200s) is longer than maxtime \
         (172800s), the cap of every ban (bantime is set at main.toml:3: defaults.bantime)"
    );
}

#[test]
fn filter_refs_and_relative_paths() {
    let c = Config::from_str_named(
        "[jail.a]\nfilter = \"custom\"\n[jail.b]\nfilter = \"/abs/f.toml\"\n[jail.c]\n\
         sources = [{ file = \"logs/c.log\" }]\n",
        "/etc/x/portcullis.toml",
    )
    .unwrap();
    let a = c.jail("a").unwrap();
    assert_eq!(a.filter, FilterRef::Named("custom".into()));
    assert_eq!(
        a.filter.user_path(Path::new("/etc/portcullis/filter.d")),
        PathBuf::from("/etc/portcullis/filter.d/custom.toml")
    );
    assert_eq!(
        c.jail("b").unwrap().filter,
        FilterRef::File("/abs/f.toml".into())
    );
    let jc = c.jail("c").unwrap();
    assert_eq!(
        jc.filter,
        FilterRef::Named("c".into()),
        "defaults to the jail's name"
    );
    assert_eq!(jc.filter_at.line, 5);
    assert_eq!(
        jc.sources,
        vec![SourceSpec::File {
            path: "/etc/x/logs/c.log".into()
        }]
    );
}

#[test]
fn default_toml_documents_every_key() {
    // Every key the schema accepts appears (set or commented) in the embedded default.
    for key in [
        "state_dir",
        "socket",
        "log_level",
        "timezone",
        "filter_dir",
        "backend",
        "table",
        "priority",
        "verdict",
        "hook_forward",
        "flush_on_stop",
        "netlink",
        "enabled",
        "maxretry",
        "findtime",
        "bantime",
        "bantime_factor",
        "maxtime",
        "permanent_after",
        "history",
        "allowlist",
        "v6_net_threshold",
        "v6_prefix",
        "breach_after",
        "protect_after_success",
        "protect_budget",
        "alert_root_login",
        "filter",
        "sources",
        "journal",
        "matches",
        "directory",
        "listen",
    ] {
        assert!(
            portcullis_config::DEFAULT_CONFIG.contains(&format!("{key} =")),
            "default.toml does not document {key}"
        );
    }
}

#[test]
fn fail2ban_filter_tables_name_a_file_relative_to_their_config_and_keep_args() {
    let dir = tempfile::tempdir().expect("tmp");
    let main = dir.path().join("portcullis.toml");
    std::fs::write(
        &main,
        "[jail.sshd]\nfilter = { fail2ban = \"f2b/filter.d/sshd.conf\", args = { mode = \"aggressive\", maxlines = 2, logtype = \"file\" } }\n\
         [jail.web]\nfilter = { fail2ban = \"/etc/fail2ban/filter.d/nginx-http-auth.conf\" }\nsources = [{ file = \"/var/log/nginx/error.log\" }]\n",
    )
    .expect("write");
    let config = Config::load(Some(&main), None).expect("loads");
    let sshd = config.jail("sshd").expect("sshd");
    assert_eq!(
        sshd.filter,
        FilterRef::Fail2Ban {
            path: dir.path().join("f2b/filter.d/sshd.conf"),
            // By key: a TOML table has no order, and Fail2Ban's arguments do not depend on it.
            args: vec![
                ("logtype".to_owned(), "file".to_owned()),
                ("maxlines".to_owned(), "2".to_owned()),
                ("mode".to_owned(), "aggressive".to_owned()),
            ],
        }
    );
    assert_eq!(sshd.filter_at.line, 2);
    assert_eq!(sshd.filter_at.key, "jail.sshd.filter");
    let web = config.jail("web").expect("web");
    assert_eq!(
        web.filter,
        FilterRef::Fail2Ban {
            path: PathBuf::from("/etc/fail2ban/filter.d/nginx-http-auth.conf"),
            args: Vec::new(),
        }
    );
}

#[test]
fn bad_fail2ban_filter_tables_name_file_line_and_key() {
    for (text, line, key, needle) in [
        (
            "[jail.sshd]\n# c\nfilter = { fail2ban = \"\" }\n",
            3,
            "jail.sshd.filter",
            "empty string",
        ),
        (
            "[jail.sshd]\nfilter = { args = { mode = \"normal\" } }\n",
            2,
            "jail.sshd.filter",
            "needs `fail2ban = \"PATH\"`",
        ),
        (
            "[jail.sshd]\n\nfilter = { fail2ban = \"x.conf\", mdoe = \"normal\" }\n",
            3,
            "jail.sshd.filter",
            "mdoe",
        ),
        (
            "[jail.sshd]\nfilter = { fail2ban = \"x.conf\", args = { mode = [1] } }\n",
            2,
            "jail.sshd.filter.args.mode",
            "argument value",
        ),
        (
            "[jail.sshd]\nfilter = { fail2ban = 3 }\n",
            2,
            "jail.sshd.filter.fail2ban",
            "",
        ),
    ] {
        let (file, got_line, got_key, message) = invalid(Config::from_str_named(
            text,
            "/etc/portcullis/portcullis.toml",
        ));
        assert_eq!(file, "/etc/portcullis/portcullis.toml", "{text}");
        assert_eq!(got_line, Some(line), "{text}: {message}");
        assert_eq!(got_key.as_deref(), Some(key), "{text}: {message}");
        assert!(message.contains(needle), "{text}: {message}");
    }
}

/// One line turns on a built-in service jail: the filter of its name, `auto` sources that
/// mean the service's own log file and journal unit.
fn service_jail(name: &str, log_file: &str, journal: &[&str]) {
    let c = Config::embedded_default().expect("embedded default");
    assert!(c.jail(name).is_none(), "{name} is off by default");
    let c = Config::from_str_named(&format!("[jail.{name}]\nenabled = true\n"), "user.toml")
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let j = c.jail(name).unwrap_or_else(|| panic!("{name} not loaded"));
    assert_eq!(j.filter, FilterRef::Named(name.into()));
    assert!(portcullis_core::filter::builtin(name).is_some(), "{name}");
    assert_eq!(j.sources, vec![SourceSpec::Auto]);
    let s = portcullis_config::service_sources(&j.filter);
    assert_eq!(s.log_files[0], log_file, "{name}");
    assert_eq!(s.journal_matches, journal, "{name}");
    assert_eq!(c.jails.len(), 2, "{name}: sshd and {name}");
}

#[test]
fn one_line_enables_dovecot() {
    service_jail(
        "dovecot",
        "/var/log/mail.log",
        &["_SYSTEMD_UNIT=dovecot.service"],
    );
}

#[test]
fn one_line_enables_postfix_sasl() {
    service_jail(
        "postfix-sasl",
        "/var/log/mail.log",
        &[
            "_SYSTEMD_UNIT=postfix@-.service",
            "_SYSTEMD_UNIT=postfix.service",
        ],
    );
}

#[test]
fn one_line_enables_each_web_and_ftp_jail() {
    for (name, file) in [
        ("nginx-http-auth", "/var/log/nginx/error.log"),
        ("nginx-botsearch", "/var/log/nginx/error.log"),
        ("apache-auth", "/var/log/apache2/error.log"),
        ("apache-badbots", "/var/log/apache2/access.log"),
        ("vsftpd", "/var/log/vsftpd.log"),
        ("proftpd", "/var/log/proftpd/proftpd.log"),
    ] {
        service_jail(name, file, &[]);
    }
    // Their defaults: bots are banned sooner than password guessers.
    let c = Config::from_str_named(
        "[jail.nginx-botsearch]\nenabled = true\n[jail.apache-badbots]\nenabled = true\n",
        "user.toml",
    )
    .expect("loads");
    let bots = c.jail("nginx-botsearch").expect("jail");
    let agents = c.jail("apache-badbots").expect("jail");
    assert_eq!(
        (bots.config.maxretry, agents.config.maxretry),
        (Weight(2000), Weight(1000))
    );
}

#[test]
fn metrics_are_off_by_default_on_loopback() {
    let c = Config::embedded_default().unwrap();
    assert!(!c.metrics.enabled);
    assert_eq!(
        c.metrics.listen,
        portcullis_config::MetricsListen::Tcp("127.0.0.1:9191".parse().unwrap())
    );
}

#[test]
fn metrics_listen_takes_an_address_or_a_unix_socket() {
    let c = Config::from_str_named(
        "[metrics]\nenabled = true\nlisten = \"[::1]:9300\"\n",
        "portcullis.toml",
    )
    .unwrap();
    assert!(c.metrics.enabled);
    assert_eq!(
        c.metrics.listen,
        portcullis_config::MetricsListen::Tcp("[::1]:9300".parse().unwrap())
    );
    let c = Config::from_str_named(
        "[metrics]\nlisten = \"unix:/run/portcullis/metrics.sock\"\n",
        "portcullis.toml",
    )
    .unwrap();
    assert_eq!(
        c.metrics.listen,
        portcullis_config::MetricsListen::Unix(PathBuf::from("/run/portcullis/metrics.sock"))
    );
    assert_eq!(
        c.metrics.listen.to_string(),
        "unix:/run/portcullis/metrics.sock"
    );
}

#[test]
fn bad_metrics_settings_name_file_line_and_key() {
    for (text, key, needle) in [
        (
            "[metrics]\n\nlisten = \"localhost\"\n",
            "metrics.listen",
            "ADDRESS:PORT",
        ),
        (
            "[metrics]\n\nlisten = \"unix:relative.sock\"\n",
            "metrics.listen",
            "absolute",
        ),
        ("[metrics]\n\nenabled = \"yes\"\n", "metrics.enabled", ""),
        ("[metrics]\n\nport = 9191\n", "metrics", "port"),
    ] {
        let err = Config::from_str_named(text, "m.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("m.toml:3: "), "{text:?}: {shown}");
        assert!(shown.contains(key), "{text:?}: {shown}");
        assert!(shown.contains(needle), "{text:?}: {shown}");
    }
}

#[test]
fn geoip_defaults_to_geoipupdates_directory_and_takes_files_or_false() {
    use portcullis_config::GeoIpDatabases;
    let c = Config::embedded_default().unwrap();
    assert_eq!(c.geoip.directory, PathBuf::from("/var/lib/GeoIP"));
    assert_eq!(c.geoip.databases, GeoIpDatabases::Auto);
    let c = Config::from_str_named(
        "[geoip]\ndirectory = \"/srv/geo\"\ndatabases = [\"GeoLite2-ASN.mmdb\", \"/abs/x.mmdb\"]\n",
        "/etc/p/g.toml",
    )
    .unwrap();
    assert_eq!(
        c.geoip.databases,
        GeoIpDatabases::Files(vec![
            PathBuf::from("/srv/geo/GeoLite2-ASN.mmdb"),
            PathBuf::from("/abs/x.mmdb")
        ])
    );
    let c = Config::from_str_named("[geoip]\ndatabases = false\n", "g.toml").unwrap();
    assert_eq!(c.geoip.databases, GeoIpDatabases::Off);
}

#[test]
fn bad_geoip_and_networks_settings_name_file_line_and_key() {
    for (text, key, needle) in [
        (
            "[geoip]\n\ndatabases = []\n",
            "geoip.databases",
            "empty list",
        ),
        (
            "[geoip]\n\ndatabases = \"x.mmdb\"\n",
            "geoip.databases",
            "[\"x.mmdb\"]",
        ),
        ("[geoip]\n\ndatabases = true\n", "geoip.databases", "auto"),
        ("[geoip]\n\npath = \"x\"\n", "geoip", "path"),
        (
            "[networks]\n\nthreshold = 1\n",
            "networks.threshold",
            "at least 2",
        ),
        (
            "[networks]\n\nthreshold = \"many\"\n",
            "networks.threshold",
            "",
        ),
        (
            "[networks]\n\nv4_prefix = 33\n",
            "networks.v4_prefix",
            "8 to 31",
        ),
        (
            "[networks]\nv4_prefix = 20\nv4_widest = 22\n",
            "networks.v4_widest",
            "8 to 20",
        ),
        (
            "[networks]\n\nv6_prefix = 8\n",
            "networks.v6_prefix",
            "16 to 127",
        ),
        (
            "[networks]\n\nwiden_bits = 0\n",
            "networks.widen_bits",
            "1 to 16",
        ),
        (
            "[networks]\n\nasn_threshold = 0\n",
            "networks.asn_threshold",
            "",
        ),
        (
            "[networks]\n\nbantime = \"0s\"\n",
            "networks.bantime",
            "zero",
        ),
    ] {
        let err = Config::from_str_named(text, "n.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("n.toml:3: "), "{text:?}: {shown}");
        assert!(shown.contains(key), "{text:?}: {shown}");
        assert!(shown.contains(needle), "{text:?}: {shown}");
    }
}

#[test]
fn campaign_detection_is_on_with_alerts_only_by_default() {
    let c = Config::embedded_default().unwrap();
    assert!(c.campaign.enabled);
    assert_eq!(c.campaign.jails, ["sshd"]);
    assert_eq!(c.campaign.ban, None);
    assert_eq!(c.campaign.targeted_ban, None);
    assert_eq!(c.campaign.campaign.learn_bins, 24);
    assert_eq!(
        c.campaign.campaign,
        portcullis_core::campaign::CampaignConfig::default()
    );
    let t = c.campaign.targeted.as_ref().expect("targeted on");
    assert_eq!(t.min_addresses, 10);
    let c = Config::from_str_named(
        "[campaign]\nban = \"2d\"\nthreshold = 5\ndrift = 0\ntargeted = false\nlearn = \"3d\"\n",
        "c.toml",
    )
    .unwrap();
    assert_eq!(
        c.campaign.ban,
        Some(std::time::Duration::from_secs(2 * 86400))
    );
    assert_eq!(c.campaign.campaign.threshold, 5.0);
    assert_eq!(c.campaign.campaign.drift, 0.0);
    assert_eq!(c.campaign.campaign.learn_bins, 72);
    assert!(c.campaign.targeted.is_none());
}

#[test]
fn bad_campaign_settings_name_file_line_and_key() {
    for (text, key, needle) in [
        ("[campaign]\n\nthreshold = 0\n", "campaign.threshold", "> 0"),
        ("[campaign]\n\ndrift = -1.0\n", "campaign.drift", "≥ 0"),
        (
            "[campaign]\n\nmin_participants = 1\n",
            "campaign.min_participants",
            "2 to",
        ),
        (
            "[campaign]\n\nmax_addresses = 10\n",
            "campaign.max_addresses",
            "1000 to",
        ),
        (
            "[campaign]\n\ntargeted_min_addresses = 0\n",
            "campaign.targeted_min_addresses",
            "2 to",
        ),
        (
            "[campaign]\n\njails = [\"nope\"]\n",
            "campaign.jails",
            "nope",
        ),
        (
            "[campaign]\n\njails = []\n",
            "campaign.jails",
            "at least one",
        ),
        ("[campaign]\n\nban = true\n", "campaign.ban", ""),
        ("[campaign]\n\nlearn = \"0s\"\n", "campaign.learn", ""),
        ("[campaign]\n\nwindow = 3\n", "campaign", "window"),
        ("[campaign]\n\nbin = \"2d\"\n", "campaign.bin", "1s to 1d"),
    ] {
        let err = Config::from_str_named(text, "m.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("m.toml:3: "), "{text:?}: {shown}");
        assert!(shown.contains(key), "{text:?}: {shown}");
        assert!(shown.contains(needle), "{text:?}: {shown}");
    }
}

#[test]
fn networks_are_off_by_default_and_validated_together() {
    let c = Config::embedded_default().unwrap();
    assert_eq!(c.networks.threshold, None);
    assert_eq!((c.networks.v4_prefix, c.networks.v6_prefix), (24, 48));
    assert_eq!((c.networks.v4_widest, c.networks.v6_widest), (16, 32));
    assert_eq!(c.networks.widen_after, Some(4));
    let c = Config::from_str_named(
        "[networks]\nthreshold = 3\nwiden_after = false\nasn_threshold = 10\nbantime = \"2h\"\n",
        "n.toml",
    )
    .unwrap();
    assert_eq!(c.networks.threshold, Some(3));
    assert_eq!(c.networks.widen_after, None);
    assert_eq!(c.networks.asn_threshold, Some(10));
    assert_eq!(c.networks.bantime, Duration::from_secs(7200));
}

#[test]
fn the_fleet_is_off_by_default_and_reads_every_key() {
    let c = Config::embedded_default().unwrap();
    assert!(!c.fleet.enabled);
    assert_eq!(c.fleet, portcullis_config::FleetSettings::default());
    let c = Config::from_str_named(
        "[fleet]\nenabled = true\nservers = [\"nats://203.0.113.1:4222\", \"tls://nats.example:4222\"]\n\
         node = \"web-1\"\nprefix = \"acme.pc\"\nstream = \"BANS\"\nnkey_seed_file = \"/etc/portcullis/node.seed\"\n\
         tls_cert = \"/etc/c.pem\"\ntls_key = \"/etc/k.pem\"\ntls_ca = \"/etc/ca.pem\"\njails = [\"sshd\"]\n\
         members = [\"203.0.113.0/24\"]\nprotected = [\"192.0.2.7\"]\nmax_ban = \"2h\"\n\
         permanent_after_nodes = false\nrate = 5\nqueue = 100\n",
        "portcullis.toml",
    )
    .unwrap();
    let f = &c.fleet;
    assert!(f.enabled);
    assert_eq!(f.servers.len(), 2);
    assert_eq!(f.node.as_deref(), Some("web-1"));
    assert_eq!((f.prefix.as_str(), f.stream.as_str()), ("acme.pc", "BANS"));
    assert_eq!(
        f.credentials.nkey_seed_file.as_deref(),
        Some(std::path::Path::new("/etc/portcullis/node.seed"))
    );
    assert!(f.credentials.creds_file.is_none() && f.credentials.tls_key.is_some());
    assert_eq!(f.jails, vec!["sshd".to_string()]);
    assert_eq!(
        f.members,
        vec!["203.0.113.0/24".parse::<ipnet::IpNet>().unwrap()]
    );
    assert_eq!(
        f.protected,
        vec!["192.0.2.7/32".parse::<ipnet::IpNet>().unwrap()]
    );
    assert_eq!(f.max_ban, std::time::Duration::from_secs(7200));
    assert_eq!((f.permanent_after_nodes, f.rate, f.queue), (None, 5, 100));
}

#[test]
fn bad_fleet_settings_name_file_line_and_key() {
    for (text, key, needle) in [
        ("[fleet]\n\nservers = []\n", "fleet.servers", "at least one"),
        (
            "[fleet]\n\nservers = [\"http://x:4222\"]\n",
            "fleet.servers[0]",
            "nats://",
        ),
        ("[fleet]\n\nnode = \"a.b\"\n", "fleet.node", "node name"),
        (
            "[fleet]\n\nprefix = \"a..b\"\n",
            "fleet.prefix",
            "subject tokens",
        ),
        (
            "[fleet]\n\nstream = \"a b\"\n",
            "fleet.stream",
            "stream name",
        ),
        (
            "[fleet]\nnkey_seed_file = \"/a\"\ncreds_file = \"/b\"\n",
            "fleet.creds_file",
            "not both",
        ),
        (
            "[fleet]\n\ntls_key = \"/k\"\n",
            "fleet.tls_key",
            "certificate",
        ),
        (
            "[fleet]\n\njails = [\"nope\"]\n",
            "fleet.jails[0]",
            "no jail",
        ),
        ("[fleet]\n\nrate = 0\n", "fleet.rate", "at least 1"),
        ("[fleet]\n\nqueue = 0\n", "fleet.queue", "queued reports"),
        (
            "[fleet]\n\npermanent_after_nodes = 1\n",
            "fleet.permanent_after_nodes",
            "2 or more",
        ),
        ("[fleet]\n\nmax_ban = \"0s\"\n", "fleet.max_ban", ""),
        ("[fleet]\n\nservrs = []\n", "fleet.servrs", "unknown field"),
        ("[jail.fleet]\n\n\n", "jail.fleet", "reserved"),
    ] {
        let err = Config::from_str_named(text, "f.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("f.toml:"), "{text:?}: {shown}");
        assert!(shown.contains(key), "{text:?}: {shown}");
        assert!(shown.contains(needle), "{text:?}: {shown}");
        // The offending key's line (the table's for a reserved jail name).
        let line = if key == "jail.fleet" { 1 } else { 3 };
        assert!(
            shown.starts_with(&format!("f.toml:{line}:")),
            "{text:?}: {shown}"
        );
    }
}
