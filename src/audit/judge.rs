//! The judgement: [`Facts`] in, [`AuditFinding`]s out, most serious first. Pure: no files,
//! no commands, no clock (`today` is in the facts), so every rule is tested on built facts.
//!
//! Each finding says why it matters, the `sshd_config` line that fixes it and where to put
//! it (sshd keeps the *first* value it reads, so the line that sets it now must change), and
//! whether it is safe to apply now: whether everyone who logs in today still can afterwards
//! (a key that the logs show was used, a key never seen used, or no key at all).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

use ipnet::IpNet;
use portcullis_host::accounts::PasswordState;
use portcullis_host::sshd_effective::EffectiveConfig;
use portcullis_report_html::Severity;
use serde::Serialize;

use super::facts::{Account, DaemonState, Facts, FirewallState, MatchEval};

/// `MaxAuthTries` above this is flagged (sshd's default is 6).
const MAX_AUTH_TRIES_OK: u32 = 6;
/// `MaxAuthTries` recommended.
const MAX_AUTH_TRIES_FIX: u32 = 3;
/// `LoginGraceTime` above this many seconds is flagged (default 120).
const GRACE_OK_SECS: u64 = 60;
/// OpenSSH release that added `PerSourcePenalties`.
const PENALTIES_SINCE: (u32, u32) = (9, 8);

/// Which rule raised a finding: a stable name for `--json` readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// `sshd -T` failed: nothing about sshd could be judged.
    SshdUnreadable,
    /// root can log in with a password from anywhere.
    RootPasswordLogin,
    /// An account with an empty password can log in (`PermitEmptyPasswords yes`).
    EmptyPasswordLogin,
    /// `StrictModes no` and a key file others can write: anyone can add a key.
    KeyFileWritableByOthers,
    /// Accounts other than root can log in with a password from anywhere.
    PasswordLogin,
    /// A `Match Address` block allows passwords for addresses outside the allowlist.
    MatchAllowsPasswords,
    /// An account other than root has uid 0: a second root (a classic backdoor).
    SecondRoot,
    /// portcullis is not running.
    PortcullisNotRunning,
    /// The daemon runs without a jail reading sshd.
    PortcullisNoSshdJail,
    /// Its firewall table or sets are missing, or its backend fails.
    PortcullisFirewall,
    /// A source of the sshd jail fails (missing log, journalctl dying): it reads nothing.
    PortcullisSourceError,
    /// The daemon only logs (`--dry-run`).
    PortcullisDryRun,
    /// A key file sshd ignores under `StrictModes` (its owner's key logins fail).
    KeyFileIgnored,
    /// An account has an empty password (sshd refuses it; other services may not).
    EmptyPassword,
    /// `MaxAuthTries` above the default.
    MaxAuthTries,
    /// `LoginGraceTime` long or unlimited.
    LoginGraceTime,
    /// `MaxStartups` / `PerSourceMaxStartups` let one address hold many unauthenticated
    /// connections.
    MaxStartups,
    /// `PerSourcePenalties` off, unavailable, or its exempt list differs from the allowlist.
    PerSourcePenalties,
    /// root may log in (`PermitRootLogin yes`) though no password works today.
    RootLoginPermitted,
    /// A `Match Address` block allows passwords for allowlisted addresses.
    MatchAllowsPasswordsAllowlisted,
    /// Where sshd listens.
    Listening,
}

/// Whether a fix can be applied now without locking anyone out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Yes: everyone affected has a way in that the fix keeps (seen used in the logs).
    Yes,
    /// Not yet: someone would lose access; do what the reason says first.
    No,
    /// Probably: a way in exists but was not seen used; try it in a second session first.
    Check,
}

/// "Safe to apply now", with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Safety {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, naming users, key files and the login that proves a key works.
    pub why: String,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditFinding {
    /// The rule.
    pub kind: AuditKind,
    /// How serious.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// Why it matters, with the evidence.
    pub why: String,
    /// The `sshd_config` lines that fix it (empty when the fix is not a config line).
    pub fix: Vec<String>,
    /// Where the lines go.
    pub fix_where: Option<String>,
    /// Shell commands that fix it (file modes), when the fix is not a config line.
    pub commands: Vec<String>,
    /// Whether the fix is safe to apply now (`None`: nothing to apply).
    pub safe_now: Option<Safety>,
}

impl AuditFinding {
    fn new(kind: AuditKind, severity: Severity, title: String, why: String) -> AuditFinding {
        AuditFinding {
            kind,
            severity,
            title,
            why,
            fix: Vec::new(),
            fix_where: None,
            commands: Vec::new(),
            safe_now: None,
        }
    }
}

/// Whether any finding is critical or high: exit code 1, as `investigate`.
pub fn is_alarming(found: &[AuditFinding]) -> bool {
    found.iter().any(|f| f.severity <= Severity::High)
}

/// Judge the facts.
pub fn judge(facts: &Facts) -> Vec<AuditFinding> {
    let mut out = Vec::new();
    portcullis_findings(facts, &mut out);
    let global = match &facts.sshd.global {
        Ok(g) => g,
        Err(e) => {
            out.push(AuditFinding::new(
                AuditKind::SshdUnreadable,
                Severity::High,
                "sshd's effective configuration could not be read".into(),
                format!("{e}; nothing about sshd was judged"),
            ));
            sort(&mut out);
            return out;
        }
    };
    let j = Judge { facts, global };
    j.root(&mut out);
    j.passwords(&mut out);
    j.empty_passwords(&mut out);
    j.match_blocks(&mut out);
    j.key_files(&mut out);
    j.limits(&mut out);
    j.penalties(&mut out);
    j.listening(&mut out);
    j.second_roots(&mut out);
    sort(&mut out);
    out
}

fn sort(out: &mut [AuditFinding]) {
    out.sort_by_key(|a| (a.severity, a.kind));
}

struct Judge<'a> {
    facts: &'a Facts,
    global: &'a EffectiveConfig,
}

/// How an account can prove who it is with a key.
enum KeyWay {
    /// A key file sshd reads, and the logs show a key login.
    Used(String),
    /// A key file sshd reads; no key login in the logs.
    Present(String),
    /// Keys in a file sshd ignores (StrictModes).
    Ignored(String),
    /// Keys may come from `AuthorizedKeysCommand`: cannot tell.
    Command,
    /// `PubkeyAuthentication no`: no key logs in.
    PubkeyOff,
    /// None.
    NoKey,
}

impl<'a> Judge<'a> {
    fn cfg(&self, user: &str) -> &'a EffectiveConfig {
        self.facts.sshd.per_user.get(user).unwrap_or(self.global)
    }

    fn account(&self, name: &str) -> Option<&'a Account> {
        self.facts.accounts.iter().find(|a| a.name() == name)
    }

    /// The ways a password logs `a` in under `cfg` (empty: none).
    fn password_ways(&self, a: &Account, cfg: &EffectiveConfig) -> Vec<&'static str> {
        if !account_can_log_in(a, self.facts.today) || !user_allowed(cfg, a.name()) {
            return Vec::new();
        }
        // sshd applies PermitRootLogin to uid 0, whatever the name.
        if a.passwd.uid == 0 && cfg.get("permitrootlogin") != Some("yes") {
            return Vec::new();
        }
        password_methods(cfg)
    }

    /// Accounts a password logs in from `remote`, with how; `password` decides which
    /// password states count (a hash, or an empty one).
    fn password_users(
        &self,
        per_user: Option<&BTreeMap<String, EffectiveConfig>>,
        state: fn(Option<PasswordState>) -> bool,
    ) -> Vec<(&'a Account, Vec<&'static str>)> {
        self.facts
            .accounts
            .iter()
            .filter(|a| state(a.password()))
            .filter_map(|a| {
                let cfg = per_user
                    .and_then(|m| m.get(a.name()))
                    .unwrap_or_else(|| self.cfg(a.name()));
                let ways = self.password_ways(a, cfg);
                (!ways.is_empty()).then_some((a, ways))
            })
            .collect()
    }

    fn key_way(&self, a: &Account) -> KeyWay {
        let cfg = self.cfg(a.name());
        if cfg.get("pubkeyauthentication") == Some("no") {
            return KeyWay::PubkeyOff;
        }
        let strict = cfg.get("strictmodes") != Some("no");
        let usable: Vec<_> = a
            .key_files
            .iter()
            .filter(|k| k.exists && k.keys > 0 && (k.problems.is_empty() || !strict))
            .collect();
        if let Some(k) = usable.first() {
            let file = format!("{} ({})", k.path.display(), plural(k.keys, "key"));
            return match &a.last_key_login {
                Some(l) => KeyWay::Used(format!(
                    "{}'s key in {file} was used to log in on {} from {} ({}: 'Accepted \
                     publickey for {}')",
                    a.name(),
                    l.time.short_utc(),
                    l.addr,
                    l.source,
                    a.name()
                )),
                None => KeyWay::Present(format!(
                    "{} has {file} but the logs read show no key login of {}{}",
                    a.name(),
                    a.name(),
                    wtmp_note(a)
                )),
            };
        }
        if let Some(k) = a.key_files.iter().find(|k| k.exists && k.keys > 0) {
            return KeyWay::Ignored(format!(
                "{}'s {} is ignored by sshd (StrictModes): {}",
                a.name(),
                k.path.display(),
                problems_text(k)
            ));
        }
        if cfg
            .get("authorizedkeyscommand")
            .is_some_and(|c| c != "none")
        {
            return KeyWay::Command;
        }
        KeyWay::NoKey
    }

    /// Whether taking passwords away from `users` keeps them able to log in.
    fn safety_without_passwords(&self, users: &[&Account]) -> Safety {
        let mut no = Vec::new();
        let mut check = Vec::new();
        let mut yes = Vec::new();
        for a in users {
            match self.key_way(a) {
                KeyWay::Used(t) => yes.push(t),
                KeyWay::Present(t) => check.push(t),
                KeyWay::Command => check.push(format!(
                    "{}'s keys may come from AuthorizedKeysCommand, which audit cannot see",
                    a.name()
                )),
                KeyWay::Ignored(t) => no.push(format!("{t}: fix the modes first")),
                KeyWay::PubkeyOff => no.push(format!(
                    "PubkeyAuthentication no for {}: no key logs in at all; enable it (and \
                     add a key) first",
                    a.name()
                )),
                KeyWay::NoKey => no.push(format!(
                    "no key for {}: add one first (ssh-copy-id {}@HOST from your machine){}",
                    a.name(),
                    a.name(),
                    wtmp_note(a)
                )),
            }
        }
        if !no.is_empty() {
            if users.iter().any(|a| a.name() == "root") && users.len() == 1 {
                no.push(
                    "or log in as another user with a key and use sudo/su instead of root".into(),
                );
            }
            Safety {
                verdict: Verdict::No,
                why: join_all(&[no, check, yes]),
            }
        } else if !check.is_empty() {
            check.push("log in with the key in a second session before applying".into());
            Safety {
                verdict: Verdict::Check,
                why: join_all(&[check, yes]),
            }
        } else {
            let mut why = yes;
            why.push("the change keeps that access".into());
            Safety {
                verdict: Verdict::Yes,
                why: why.join("; "),
            }
        }
    }

    /// Where a global keyword's line goes: the line that sets it now, else above any Match.
    fn fix_where(&self, keyword: &str) -> String {
        let lines: Vec<_> = self
            .facts
            .sshd
            .lines
            .iter()
            .filter(|l| same_keyword(&l.keyword, keyword) && l.in_match.is_none())
            .collect();
        let main = self.facts.sshd.config_path.display();
        match lines.first() {
            Some(first) => {
                let mut s = format!(
                    "replace line {} (`{} {}`): sshd keeps the first value it reads",
                    first.location(),
                    first.keyword,
                    first.value
                );
                let later: Vec<String> = lines[1..].iter().map(|l| l.location()).collect();
                if !later.is_empty() {
                    let _ = write!(s, "; the later lines {} have no effect", later.join(", "));
                }
                s
            }
            None => format!(
                "add it to {main} before any Match block (no line of it or its Includes \
                 sets it now)"
            ),
        }
    }

    fn root(&self, out: &mut Vec<AuditFinding>) {
        let cfg = self.cfg("root");
        let permit = cfg.get("permitrootlogin").unwrap_or("?");
        let Some(root) = self.account("root") else {
            return;
        };
        let ways = self.password_ways(root, cfg);
        let remote = self.facts.sshd.remote;
        let fix = vec!["PermitRootLogin prohibit-password".to_string()];
        let pw = root.password();
        if !ways.is_empty() && pw != Some(PasswordState::Locked) && pw != Some(PasswordState::Empty)
        {
            let known = if pw.is_none() {
                " (root's password state is unknown: /etc/shadow was not read; assumed set)"
            } else {
                ""
            };
            let mut f = AuditFinding::new(
                AuditKind::RootPasswordLogin,
                Severity::Critical,
                "root can log in with a password from anywhere".into(),
                format!(
                    "PermitRootLogin yes with {} for a client at {remote}, and root has a \
                     password{known}: every brute-force guess is a guess at the one account \
                     that owns the host",
                    ways.join(" and ")
                ),
            );
            f.fix = fix;
            f.fix_where = Some(self.fix_where("permitrootlogin"));
            f.safe_now = Some(self.safety_without_passwords(&[root]));
            out.push(f);
        } else if permit == "yes" {
            let why = if ways.is_empty() {
                "no password method is enabled for root"
            } else {
                "root's password is locked or empty (sshd refuses empty passwords here)"
            };
            let mut f = AuditFinding::new(
                AuditKind::RootLoginPermitted,
                Severity::Low,
                "PermitRootLogin yes, though no password logs root in today".into(),
                format!(
                    "{why}; a password set or a method enabled later would open root to \
                     guessing at once"
                ),
            );
            f.fix = fix;
            f.fix_where = Some(self.fix_where("permitrootlogin"));
            f.safe_now = Some(Safety {
                verdict: Verdict::Yes,
                why: "prohibit-password only refuses passwords, which do not log root in today"
                    .into(),
            });
            out.push(f);
        }
    }

    fn passwords(&self, out: &mut Vec<AuditFinding>) {
        let users: Vec<_> = self
            .password_users(None, has_password)
            .into_iter()
            .filter(|(a, _)| a.name() != "root")
            .collect();
        if users.is_empty() {
            return;
        }
        let remote = self.facts.sshd.remote;
        let names: Vec<&str> = users.iter().map(|(a, _)| a.name()).collect();
        let mut methods: Vec<&str> = users.iter().flat_map(|(_, w)| w.clone()).collect();
        methods.sort_unstable();
        methods.dedup();
        let mut f = AuditFinding::new(
            AuditKind::PasswordLogin,
            Severity::High,
            format!(
                "{} can log in with a password from anywhere",
                list_names(&names)
            ),
            format!(
                "{} for a client at {remote}; each of these accounts has a password and a \
                 login shell, so a guessed password is a shell on this host",
                methods.join(" and ")
            ),
        );
        let mut wh = Vec::new();
        if methods.contains(&"password") {
            f.fix.push("PasswordAuthentication no".into());
            wh.push(format!(
                "PasswordAuthentication: {}",
                self.fix_where("passwordauthentication")
            ));
        }
        if methods.contains(&KBD_PAM) {
            f.fix.push("KbdInteractiveAuthentication no".into());
            wh.push(format!(
                "KbdInteractiveAuthentication: {}",
                self.fix_where("kbdinteractiveauthentication")
            ));
        }
        f.fix_where = Some(wh.join("; "));
        let accounts: Vec<&Account> = users.iter().map(|(a, _)| *a).collect();
        f.safe_now = Some(self.safety_without_passwords(&accounts));
        out.push(f);
    }

    fn empty_passwords(&self, out: &mut Vec<AuditFinding>) {
        let empty: Vec<&Account> = self
            .facts
            .accounts
            .iter()
            .filter(|a| a.password() == Some(PasswordState::Empty))
            .filter(|a| account_can_log_in(a, self.facts.today))
            .collect();
        if empty.is_empty() {
            return;
        }
        let open: Vec<&Account> = empty
            .iter()
            .copied()
            .filter(|a| {
                let cfg = self.cfg(a.name());
                cfg.is_yes("permitemptypasswords") && !self.password_ways(a, cfg).is_empty()
            })
            .collect();
        let names: Vec<&str> = empty.iter().map(|a| a.name()).collect();
        let cmds = names.iter().map(|n| format!("passwd -l {n}")).collect();
        if !open.is_empty() {
            let open_names: Vec<&str> = open.iter().map(|a| a.name()).collect();
            let mut f = AuditFinding::new(
                AuditKind::EmptyPasswordLogin,
                Severity::Critical,
                format!(
                    "{} can log in over SSH with no password at all",
                    list_names(&open_names)
                ),
                "PermitEmptyPasswords yes and the account's password field is empty: the first \
                 try of any scanner gets in"
                    .into(),
            );
            f.fix = vec!["PermitEmptyPasswords no".into()];
            f.fix_where = Some(self.fix_where("permitemptypasswords"));
            f.commands = cmds;
            f.safe_now = Some(Safety {
                verdict: Verdict::Yes,
                why: "an empty password is no one's access worth keeping; set a password or a \
                      key for the account if it is used"
                    .into(),
            });
            out.push(f);
        } else {
            let mut f = AuditFinding::new(
                AuditKind::EmptyPassword,
                Severity::Medium,
                format!("{} has an empty password", list_names(&names)),
                "sshd refuses empty passwords (PermitEmptyPasswords no), but the console, su \
                 and other PAM services may not (Debian's pam_unix has nullok)"
                    .into(),
            );
            f.commands = cmds;
            f.safe_now = Some(Safety {
                verdict: Verdict::Yes,
                why: "locking an empty password takes no working SSH access away".into(),
            });
            out.push(f);
        }
    }

    fn match_blocks(&self, out: &mut Vec<AuditFinding>) {
        // Passwords the global evaluation for `remote` already reports are not repeated.
        let globally: Vec<&str> = self
            .password_users(None, has_password)
            .iter()
            .map(|(a, _)| a.name())
            .collect();
        for m in &self.facts.sshd.match_evals {
            let users: Vec<(&Account, Vec<&str>)> = self
                .password_users(Some(&m.per_user), has_password)
                .into_iter()
                .filter(|(a, _)| !globally.contains(&a.name()))
                .collect();
            if users.is_empty() {
                continue;
            }
            out.push(self.match_finding(m, &users));
        }
    }

    fn match_finding(&self, m: &MatchEval, users: &[(&Account, Vec<&str>)]) -> AuditFinding {
        let names: Vec<&str> = users.iter().map(|(a, _)| a.name()).collect();
        let net: Option<IpNet> = m
            .pattern
            .parse()
            .ok()
            .or_else(|| m.pattern.parse::<IpAddr>().ok().map(IpNet::from));
        let allow = &self.facts.portcullis.allowlist;
        // A LocalPort block is judged for `remote`: anyone, not allowlisted.
        let inside = m.lport.is_none()
            && match net {
                Some(n) => allow.iter().any(|a| a.contains(&n)),
                None => allow.iter().any(|a| a.contains(&m.addr)),
            };
        let whom = match m.lport {
            Some(p) => format!("on port {p} from anywhere"),
            None => format!("from {}", m.pattern),
        };
        let block = format!("Match {} ({})", m.line.value, m.line.location());
        let accounts: Vec<&Account> = users.iter().map(|(a, _)| *a).collect();
        let setters: Vec<String> = self
            .facts
            .sshd
            .lines
            .iter()
            .filter(|l| {
                l.in_match.as_deref() == Some(m.line.value.as_str())
                    && matches!(
                        l.keyword.as_str(),
                        "passwordauthentication"
                            | "kbdinteractiveauthentication"
                            | "permitrootlogin"
                            | "authenticationmethods"
                    )
            })
            .map(|l| format!("{} (`{} {}`)", l.location(), l.keyword, l.value))
            .collect();
        let mut f = if inside {
            AuditFinding::new(
                AuditKind::MatchAllowsPasswordsAllowlisted,
                Severity::Low,
                format!(
                    "{} allows password logins of {} from {}, inside the allowlist",
                    m.line.location(),
                    list_names(&names),
                    m.pattern
                ),
                format!(
                    "{block}: clients from {} may guess passwords, and portcullis never bans \
                     an allowlisted address, so their guesses are unlimited",
                    m.pattern
                ),
            )
        } else {
            AuditFinding::new(
                AuditKind::MatchAllowsPasswords,
                Severity::High,
                format!(
                    "{} allows password logins of {} {whom}{}",
                    m.line.location(),
                    list_names(&names),
                    if m.lport.is_none() {
                        ", outside the allowlist"
                    } else {
                        ""
                    }
                ),
                match m.lport {
                    Some(p) => format!(
                        "{block}: passwords work for any client connecting to port {p} \
                         (evaluated for {})",
                        m.addr
                    ),
                    None => format!(
                        "{block}: passwords work for clients in {} (evaluated for {}), which \
                         portcullis' allowlist does not cover",
                        m.pattern, m.addr
                    ),
                },
            )
        };
        f.fix = vec!["PasswordAuthentication no".into()];
        f.fix_where = Some(if setters.is_empty() {
            format!("inside {block}")
        } else {
            format!("inside {block}, replacing {}", setters.join(", "))
        });
        f.safe_now = Some(self.safety_without_passwords(&accounts));
        f
    }

    fn key_files(&self, out: &mut Vec<AuditFinding>) {
        for a in &self.facts.accounts {
            if !account_can_log_in(a, self.facts.today) {
                continue;
            }
            let cfg = self.cfg(a.name());
            let strict = cfg.get("strictmodes") != Some("no");
            for k in a
                .key_files
                .iter()
                .filter(|k| k.exists && !k.problems.is_empty())
            {
                // Under StrictModes no, a sticky world-writable directory (/tmp) lets no one
                // replace the file: only the other problems let others add a key.
                if !strict && k.problems.iter().all(|p| p.sticky) {
                    continue;
                }
                let mut cmds: Vec<String> = Vec::new();
                for p in k.problems.iter().filter(|p| p.what != "not a regular file") {
                    let cmd = if p.what.starts_with("owned by") {
                        format!("chown {} {}", a.name(), p.path.display())
                    } else {
                        format!("chmod go-w {}", p.path.display())
                    };
                    if !cmds.contains(&cmd) {
                        cmds.push(cmd);
                    }
                }
                let mut f = if strict {
                    AuditFinding::new(
                        AuditKind::KeyFileIgnored,
                        Severity::Medium,
                        format!("sshd ignores {}'s {}", a.name(), k.path.display()),
                        format!(
                            "{}; under StrictModes sshd reads no key from it, so key logins of \
                             {} fail (a password, if allowed, is then the only way in)",
                            problems_text(k),
                            a.name()
                        ),
                    )
                } else {
                    let mut f = AuditFinding::new(
                        AuditKind::KeyFileWritableByOthers,
                        Severity::Critical,
                        format!(
                            "others can add a key to {}'s {}",
                            a.name(),
                            k.path.display()
                        ),
                        format!(
                            "{}; with StrictModes no sshd accepts any key written there: \
                             whoever can write it can log in as {}",
                            problems_text(k),
                            a.name()
                        ),
                    );
                    f.fix = vec!["StrictModes yes".into()];
                    f.fix_where = Some(format!(
                        "{} (after fixing the modes)",
                        self.fix_where("strictmodes")
                    ));
                    f
                };
                f.commands = cmds;
                f.safe_now = Some(Safety {
                    verdict: Verdict::Yes,
                    why: format!(
                        "removing write access of group and others (and giving the file to \
                         {}) is what sshd needs to read it; no one's own access changes",
                        a.name()
                    ),
                });
                out.push(f);
            }
        }
    }

    fn limits(&self, out: &mut Vec<AuditFinding>) {
        let g = self.global;
        if let Some(n) = g.get("maxauthtries").and_then(|v| v.parse::<u32>().ok())
            && n > MAX_AUTH_TRIES_OK
        {
            let mut f = AuditFinding::new(
                AuditKind::MaxAuthTries,
                Severity::Medium,
                format!("MaxAuthTries {n}: {n} guesses per connection"),
                format!(
                    "sshd's default is {MAX_AUTH_TRIES_OK}; every connection may try {n} \
                     passwords or keys before sshd drops it"
                ),
            );
            f.fix = vec![format!("MaxAuthTries {MAX_AUTH_TRIES_FIX}")];
            f.fix_where = Some(self.fix_where("maxauthtries"));
            f.safe_now = Some(Safety {
                verdict: Verdict::Check,
                why: format!(
                    "a client that offers more than {MAX_AUTH_TRIES_FIX} keys from its agent \
                     fails before reaching the right one: use IdentitiesOnly/IdentityFile on \
                     such clients (ssh -v shows the keys offered)"
                ),
            });
            out.push(f);
        }
        if let Some(secs) = g.get("logingracetime").and_then(|v| v.parse::<u64>().ok())
            && (secs == 0 || secs > GRACE_OK_SECS)
        {
            let (sev, title, why) = if secs == 0 {
                (
                    Severity::Medium,
                    "LoginGraceTime 0: unauthenticated connections never time out".to_string(),
                    "a client may hold a connection open before authenticating forever, so a \
                     few addresses fill MaxStartups and lock everyone out; 0 was the \
                     advice against CVE-2024-6387 (regreSSHion) for unpatched sshd"
                        .to_string(),
                )
            } else {
                (
                    Severity::Low,
                    format!("LoginGraceTime {secs}s"),
                    format!(
                        "each unauthenticated connection holds a MaxStartups slot for up to \
                         {secs} s; 30 s is enough for a person typing a password"
                    ),
                )
            };
            let mut f = AuditFinding::new(AuditKind::LoginGraceTime, sev, title, why);
            f.fix = vec!["LoginGraceTime 30".into()];
            f.fix_where = Some(self.fix_where("logingracetime"));
            f.safe_now = Some(Safety {
                verdict: if secs == 0 {
                    Verdict::Check
                } else {
                    Verdict::Yes
                },
                why: if secs == 0 {
                    "only with an sshd that has the CVE-2024-6387 fix (OpenSSH 9.8, or your \
                     distribution's patched package, e.g. Debian 12's 1:9.2p1-2+deb12u3); \
                     otherwise keep 0"
                        .into()
                } else {
                    "sessions already logged in are not affected".into()
                },
            });
            out.push(f);
        }
        let startups = g.get("maxstartups").unwrap_or("10:30:100");
        let full = startups
            .rsplit(':')
            .next()
            .and_then(|v| v.parse::<u64>().ok());
        let per_source = g.get("persourcemaxstartups").unwrap_or("none");
        let mut problems = Vec::new();
        if !startups.contains(':') {
            problems.push(format!(
                "MaxStartups {startups} has no random early drop: once {startups} \
                 connections wait, every new one is refused outright"
            ));
        } else if full.is_some_and(|n| n > 100) {
            problems.push(format!(
                "MaxStartups {startups} lets {} unauthenticated connections wait at once",
                full.unwrap_or(0)
            ));
        }
        if per_source == "none" {
            problems.push(
                "PerSourceMaxStartups none: one address may take every MaxStartups slot and \
                 lock everyone else out"
                    .into(),
            );
        }
        if !problems.is_empty() {
            let mut f = AuditFinding::new(
                AuditKind::MaxStartups,
                Severity::Low,
                "one address can fill sshd's unauthenticated connection slots".into(),
                problems.join("; "),
            );
            if !startups.contains(':') || full.is_some_and(|n| n > 100) {
                f.fix.push("MaxStartups 10:30:100".into());
            }
            if per_source == "none" {
                f.fix.push("PerSourceMaxStartups 10".into());
            }
            let mut wh = Vec::new();
            for line in &f.fix {
                let kw = line.split(' ').next().unwrap_or("").to_ascii_lowercase();
                wh.push(format!("{}: {}", line, self.fix_where(&kw)));
            }
            f.fix_where = Some(wh.join("; "));
            f.safe_now = Some(Safety {
                verdict: Verdict::Yes,
                why: "it limits connections still waiting to authenticate, never sessions".into(),
            });
            out.push(f);
        }
    }

    fn penalties(&self, out: &mut Vec<AuditFinding>) {
        let version = match &self.facts.sshd.version {
            Ok(v) => v,
            Err(_) => return,
        };
        if !version.at_least(PENALTIES_SINCE.0, PENALTIES_SINCE.1) {
            out.push(AuditFinding::new(
                AuditKind::PerSourcePenalties,
                Severity::Low,
                format!(
                    "PerSourcePenalties: not available in this version ({}.{})",
                    version.major, version.minor
                ),
                format!(
                    "sshd's own per-address penalties came with OpenSSH {}.{}; {} has none, so \
                     portcullis is the only thing slowing an address down",
                    PENALTIES_SINCE.0, PENALTIES_SINCE.1, version.text
                ),
            ));
            return;
        }
        let g = self.global;
        let pen = g.get("persourcepenalties").unwrap_or("yes");
        if pen == "no" {
            let mut f = AuditFinding::new(
                AuditKind::PerSourcePenalties,
                Severity::Medium,
                "PerSourcePenalties no: sshd's own penalty box is off".into(),
                "sshd could refuse an address that fails authentication or crashes it \
                 for a while by itself, before any log is read"
                    .into(),
            );
            f.fix = vec!["PerSourcePenalties yes".into()];
            f.fix_where = Some(self.fix_where("persourcepenalties"));
            f.safe_now = Some(Safety {
                verdict: Verdict::Check,
                why: "addresses that fail often (monitoring, NAT of a whole office) may get \
                      penalised: add them to PerSourcePenaltyExemptList first"
                    .into(),
            });
            out.push(f);
            return;
        }
        let exempt: Vec<IpNet> = g
            .all("persourcepenaltyexemptlist")
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|s| {
                s.parse::<IpNet>()
                    .ok()
                    .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        let allow: Vec<IpNet> = self
            .facts
            .portcullis
            .allowlist
            .iter()
            .copied()
            .filter(|n| !n.addr().is_loopback())
            .collect();
        let missing: Vec<String> = allow
            .iter()
            .filter(|n| !exempt.iter().any(|e| e.contains(*n)))
            .map(ToString::to_string)
            .collect();
        let extra: Vec<String> = exempt
            .iter()
            .filter(|e| !e.addr().is_loopback() && !allow.iter().any(|n| n.contains(*e)))
            .map(ToString::to_string)
            .collect();
        if missing.is_empty() && extra.is_empty() {
            return;
        }
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!(
                "portcullis never bans {} but sshd may penalise it",
                missing.join(", ")
            ));
        }
        if !extra.is_empty() {
            why.push(format!(
                "sshd exempts {} that portcullis' allowlist does not cover (portcullis may \
                 ban it)",
                extra.join(", ")
            ));
        }
        let mut f = AuditFinding::new(
            AuditKind::PerSourcePenalties,
            Severity::Low,
            "PerSourcePenaltyExemptList and portcullis' allowlist differ".into(),
            why.join("; "),
        );
        let mut all: Vec<String> = exempt.iter().map(ToString::to_string).collect();
        for m in &missing {
            if !all.contains(m) {
                all.push(m.clone());
            }
        }
        if !missing.is_empty() {
            f.fix = vec![format!("PerSourcePenaltyExemptList {}", all.join(","))];
            f.fix_where = Some(self.fix_where("persourcepenaltyexemptlist"));
            f.safe_now = Some(Safety {
                verdict: Verdict::Yes,
                why: "exempting more addresses only makes sshd penalise fewer".into(),
            });
        }
        out.push(f);
    }

    fn second_roots(&self, out: &mut Vec<AuditFinding>) {
        for a in self
            .facts
            .accounts
            .iter()
            .filter(|a| a.passwd.uid == 0 && a.name() != "root")
        {
            let pw = match a.password() {
                Some(PasswordState::Usable) => "has a password",
                Some(PasswordState::Empty) => "has an empty password",
                Some(PasswordState::Locked) => "has a locked password",
                None => "has a password state audit could not read",
            };
            let mut f = AuditFinding::new(
                AuditKind::SecondRoot,
                Severity::High,
                format!("{} has uid 0: a second root", a.name()),
                format!(
                    "{} {pw} and the shell {}; an extra uid-0 account is a classic backdoor, \
                     and logs name it, not root",
                    a.name(),
                    a.passwd.shell
                ),
            );
            f.commands = vec![format!(
                "userdel {} (after checking who made it and why)",
                a.name()
            )];
            f.safe_now = Some(Safety {
                verdict: Verdict::Check,
                why: "make sure nothing (a script, a person) logs in as it first".into(),
            });
            out.push(f);
        }
    }

    fn listening(&self, out: &mut Vec<AuditFinding>) {
        let listen = self.global.all("listenaddress");
        if listen.is_empty() {
            return;
        }
        let wildcard = listen
            .iter()
            .any(|l| l.starts_with("0.0.0.0:") || l.starts_with("[::]:"));
        let mut why = if wildcard {
            "every address of the host, on every network it is attached to; a ListenAddress \
             per address narrows that (not judged: audit cannot know which networks you need)"
                .to_string()
        } else {
            "only these addresses".to_string()
        };
        match &self.facts.sshd.listening_now {
            Ok(now) if now.is_empty() => why.push_str(
                "; nothing listens on these ports now (sshd not running, or running with \
                 another configuration)",
            ),
            Ok(now) => {
                let now: Vec<String> = now.iter().map(ToString::to_string).collect();
                let _ = write!(why, "; listening now: {}", now.join(", "));
            }
            Err(_) => {}
        }
        out.push(AuditFinding::new(
            AuditKind::Listening,
            Severity::Low,
            format!("sshd listens on {}", listen.join(", ")),
            why,
        ));
    }
}

/// A password hash, or unknown (shadow unreadable: assumed set).
fn has_password(p: Option<PasswordState>) -> bool {
    matches!(p, Some(PasswordState::Usable) | None)
}

const KBD_PAM: &str = "keyboard-interactive (PAM)";

/// The password methods `cfg` enables: `password`, keyboard-interactive through PAM; none
/// when `AuthenticationMethods` asks for something besides a password in every list.
fn password_methods(cfg: &EffectiveConfig) -> Vec<&'static str> {
    let mut ways = Vec::new();
    let pam = cfg.is_yes("usepam");
    let allowed_alone = |m: &str| {
        let am = cfg.get("authenticationmethods").unwrap_or("any");
        am == "any"
            || am.split_whitespace().any(|list| {
                list.split(',')
                    .all(|x| x == m || (m == "keyboard-interactive" && x.starts_with(m)))
            })
    };
    if cfg.is_yes("passwordauthentication") && allowed_alone("password") {
        ways.push("password");
    }
    if cfg.is_yes("kbdinteractiveauthentication") && pam && allowed_alone("keyboard-interactive") {
        ways.push(KBD_PAM);
    }
    ways
}

/// Shell usable, account and password not expired (unknown shadow: assumed not).
fn account_can_log_in(a: &Account, today: i64) -> bool {
    a.passwd.shell_usable()
        && a.shadow
            .as_ref()
            .is_none_or(|s| !s.account_expired(today) && !s.password_dead(today))
}

/// `AllowUsers` / `DenyUsers` by user name (patterns with `@host` are judged by their user
/// part; groups are not judged).
fn user_allowed(cfg: &EffectiveConfig, user: &str) -> bool {
    let matches = |pat: &str| {
        let u = pat.split('@').next().unwrap_or(pat);
        wildcard(u.as_bytes(), user.as_bytes())
    };
    let words = |key: &str| -> Vec<String> {
        cfg.all(key)
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_string))
            .collect()
    };
    if words("denyusers")
        .iter()
        .any(|p| !p.contains('@') && matches(p))
    {
        return false;
    }
    let allow = words("allowusers");
    allow.is_empty() || allow.iter().any(|p| matches(p))
}

fn wildcard(pat: &[u8], text: &[u8]) -> bool {
    match (pat.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pat[1..], text) || (!text.is_empty() && wildcard(pat, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pat[1..], &text[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&pat[1..], &text[1..]),
        _ => false,
    }
}

/// Whether config keyword `written` sets `keyword` (sshd -T's name): old names count, such
/// as `ChallengeResponseAuthentication` for `KbdInteractiveAuthentication`.
fn same_keyword(written: &str, keyword: &str) -> bool {
    const ALIASES: &[(&str, &str)] = &[
        (
            "challengeresponseauthentication",
            "kbdinteractiveauthentication",
        ),
        ("pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms"),
    ];
    written == keyword
        || ALIASES
            .iter()
            .any(|(old, new)| written == *old && keyword == *new)
}

/// ` (wtmp: last remote login …)`, or nothing.
fn wtmp_note(a: &Account) -> String {
    match &a.last_remote_login {
        Some(l) => format!(
            " (wtmp: {} last logged in on {} from {}; wtmp does not record how)",
            a.name(),
            l.time.short_utc(),
            l.addr
        ),
        None => String::new(),
    }
}

fn problems_text(k: &portcullis_host::key_files::KeyFile) -> String {
    k.problems
        .iter()
        .map(|p| format!("{} is {} (mode {:04o})", p.path.display(), p.what, p.mode))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_all(parts: &[Vec<String>]) -> String {
    parts
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}

fn list_names(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut s = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        let _ = write!(s, " and {} more", names.len() - SHOWN);
    }
    s
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn portcullis_findings(facts: &Facts, out: &mut Vec<AuditFinding>) {
    let p = &facts.portcullis;
    match &p.daemon {
        DaemonState::NotRunning { why } => {
            let mut f = AuditFinding::new(
                AuditKind::PortcullisNotRunning,
                Severity::High,
                "portcullis is not running: nothing bans brute-force addresses".into(),
                why.clone(),
            );
            f.commands = vec!["systemctl enable --now portcullis".into()];
            f.safe_now = Some(Safety {
                verdict: Verdict::Yes,
                why: "loopback and the configured allowlist are never banned".into(),
            });
            out.push(f);
        }
        DaemonState::Unknown { why } => out.push(AuditFinding::new(
            AuditKind::PortcullisNotRunning,
            Severity::Medium,
            "whether portcullis runs is unknown".into(),
            format!("its control socket could not be asked: {why}"),
        )),
        DaemonState::Running {
            dry_run,
            jails,
            backend,
            backend_healthy,
            source_errors,
            ..
        } => {
            if !source_errors.is_empty() {
                out.push(AuditFinding::new(
                    AuditKind::PortcullisSourceError,
                    Severity::High,
                    "portcullis' sshd jail cannot read its log".into(),
                    format!(
                        "{}: failed logins there are not counted",
                        source_errors.join("; ")
                    ),
                ));
            }
            if !jails.iter().any(|j| j.contains("ssh")) {
                let mut f = AuditFinding::new(
                    AuditKind::PortcullisNoSshdJail,
                    Severity::High,
                    "portcullis runs, but no jail reads sshd's log".into(),
                    format!(
                        "its jails are {}; failed SSH logins are counted by none of them",
                        if jails.is_empty() {
                            "none".to_string()
                        } else {
                            jails.join(", ")
                        }
                    ),
                );
                f.commands = vec![
                    "enable [jail.sshd] in /etc/portcullis/portcullis.toml, then \
                     systemctl reload portcullis"
                        .into(),
                ];
                out.push(f);
            }
            if *dry_run {
                out.push(AuditFinding::new(
                    AuditKind::PortcullisDryRun,
                    Severity::Medium,
                    "portcullis runs with --dry-run: it decides bans and applies none".into(),
                    "no firewall rule is written".into(),
                ));
            } else if !backend_healthy {
                out.push(AuditFinding::new(
                    AuditKind::PortcullisFirewall,
                    Severity::High,
                    format!("portcullis' firewall backend ({backend}) is failing"),
                    "its last firewall transaction failed: bans may not be in the kernel (see \
                     portcullis status)"
                        .into(),
                ));
            }
        }
    }
    // Not running: that finding says it all; dry run: no table is expected.
    let quiet = matches!(
        p.daemon,
        DaemonState::Running { dry_run: true, .. } | DaemonState::NotRunning { .. }
    );
    match &p.firewall {
        FirewallState::Missing { what } if !quiet => {
            let mut f = AuditFinding::new(
                AuditKind::PortcullisFirewall,
                Severity::High,
                format!("portcullis' firewall is not in the kernel ({what} missing)"),
                "without it no ban drops a packet".into(),
            );
            f.commands = vec!["systemctl restart portcullis".into()];
            out.push(f);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use portcullis_core::Time;
    use portcullis_host::accounts::{PasswdEntry, ShadowEntry};
    use portcullis_host::key_files::{KeyFile, PermProblem};
    use portcullis_host::sshd_effective::{ConfigLine, SshdVersion};

    use super::super::facts::{KeyLogin, PortcullisFacts, SshdFacts};
    use super::*;

    const TODAY: i64 = 20_400;

    fn base_cfg() -> EffectiveConfig {
        let mut c = EffectiveConfig::default();
        for (k, v) in [
            ("permitrootlogin", "prohibit-password"),
            ("passwordauthentication", "no"),
            ("kbdinteractiveauthentication", "no"),
            ("usepam", "yes"),
            ("permitemptypasswords", "no"),
            ("pubkeyauthentication", "yes"),
            ("strictmodes", "yes"),
            ("authenticationmethods", "any"),
            ("authorizedkeyscommand", "none"),
            ("maxauthtries", "6"),
            ("logingracetime", "30"),
            ("maxstartups", "10:30:100"),
            ("persourcemaxstartups", "10"),
        ] {
            c.set(k, v);
        }
        c
    }

    fn account(name: &str, uid: u32, pw: PasswordState, keys: usize) -> Account {
        let home = if name == "root" {
            PathBuf::from("/root")
        } else {
            PathBuf::from(format!("/home/{name}"))
        };
        Account {
            key_files: vec![KeyFile {
                path: home.join(".ssh/authorized_keys"),
                exists: keys > 0,
                keys,
                problems: Vec::new(),
                error: None,
            }],
            passwd: PasswdEntry {
                name: name.into(),
                uid,
                gid: uid,
                home,
                shell: "/bin/bash".into(),
            },
            shadow: Some(ShadowEntry {
                name: name.into(),
                password: pw,
                last_change: Some(20_000),
                max_days: Some(99_999),
                inactive_days: None,
                expire_day: None,
            }),
            last_key_login: None,
            last_remote_login: None,
        }
    }

    fn used(a: &mut Account) {
        a.last_key_login = Some(KeyLogin {
            time: Time::from_secs(1_764_000_000),
            addr: "192.0.2.10".parse().unwrap(),
            source: "/var/log/auth.log".into(),
        });
    }

    fn facts(cfg: EffectiveConfig, accounts: Vec<Account>) -> Facts {
        Facts {
            today: TODAY,
            sshd: SshdFacts {
                config_path: "/etc/ssh/sshd_config".into(),
                version: Ok(SshdVersion {
                    major: 9,
                    minor: 9,
                    text: "OpenSSH_9.9p1".into(),
                }),
                global: Ok(cfg),
                remote: "203.0.113.77".parse().unwrap(),
                per_user: BTreeMap::new(),
                match_evals: Vec::new(),
                lines: Vec::new(),
                errors: Vec::new(),
                listening_now: Ok(Vec::new()),
            },
            accounts,
            no_shell_accounts: 0,
            shadow_error: None,
            portcullis: PortcullisFacts {
                allowlist: vec!["127.0.0.0/8".parse().unwrap()],
                daemon: DaemonState::Running {
                    version: "0.1.0".into(),
                    dry_run: false,
                    jails: vec!["sshd".into()],
                    backend: "nftables".into(),
                    backend_healthy: true,
                    source_errors: Vec::new(),
                },
                firewall: FirewallState::Present {
                    what: "nft table inet portcullis".into(),
                },
            },
        }
    }

    fn kinds(f: &Facts) -> Vec<AuditKind> {
        judge(f).iter().map(|x| x.kind).collect()
    }

    fn find(f: &Facts, kind: AuditKind) -> AuditFinding {
        judge(f)
            .into_iter()
            .find(|x| x.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} in {:#?}", judge(f)))
    }

    fn line(file: &str, n: usize, kw: &str, value: &str, m: Option<&str>) -> ConfigLine {
        ConfigLine {
            file: PathBuf::from(file),
            line: n,
            keyword: kw.into(),
            value: value.into(),
            in_match: m.map(str::to_string),
        }
    }

    #[test]
    fn hardened_host_has_no_alarm() {
        let f = facts(
            base_cfg(),
            vec![account("root", 0, PasswordState::Locked, 1)],
        );
        let found = judge(&f);
        assert!(!is_alarming(&found), "{found:#?}");
        // Only the "penalties agree" case stays silent; 9.9 has them and the lists agree.
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn root_password_with_a_used_key_is_safe_to_close() {
        let mut cfg = base_cfg();
        cfg.set("permitrootlogin", "yes")
            .set("passwordauthentication", "yes");
        let mut root = account("root", 0, PasswordState::Usable, 1);
        used(&mut root);
        let mut f = facts(cfg, vec![root]);
        f.sshd.lines = vec![
            line(
                "/etc/ssh/sshd_config.d/50-x.conf",
                3,
                "permitrootlogin",
                "yes",
                None,
            ),
            line("/etc/ssh/sshd_config", 33, "permitrootlogin", "no", None),
        ];
        let r = find(&f, AuditKind::RootPasswordLogin);
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.fix, ["PermitRootLogin prohibit-password"]);
        let wh = r.fix_where.unwrap();
        assert!(
            wh.contains("50-x.conf:3") && wh.contains("first value"),
            "{wh}"
        );
        assert!(
            wh.contains("/etc/ssh/sshd_config:33 have no effect"),
            "{wh}"
        );
        let s = r.safe_now.unwrap();
        assert_eq!(s.verdict, Verdict::Yes, "{}", s.why);
        assert!(s.why.contains("was used to log in on"), "{}", s.why);
        assert!(s.why.contains("192.0.2.10"), "{}", s.why);
        assert!(is_alarming(&judge(&f)));
    }

    #[test]
    fn root_password_without_a_key_is_not_safe_yet() {
        let mut cfg = base_cfg();
        cfg.set("permitrootlogin", "yes")
            .set("passwordauthentication", "yes");
        let mut root = account("root", 0, PasswordState::Usable, 0);
        root.last_remote_login = Some(KeyLogin {
            time: Time::from_secs(1_764_000_000),
            addr: "198.51.100.3".parse().unwrap(),
            source: "wtmp".into(),
        });
        let f = facts(cfg.clone(), vec![root]);
        let s = find(&f, AuditKind::RootPasswordLogin).safe_now.unwrap();
        assert_eq!(s.verdict, Verdict::No);
        assert!(
            s.why.contains("no key for root: add one first"),
            "{}",
            s.why
        );
        assert!(s.why.contains("wtmp: root last logged in on"), "{}", s.why);
        // A key never seen used: check it first.
        let f = facts(
            cfg.clone(),
            vec![account("root", 0, PasswordState::Usable, 2)],
        );
        let s = find(&f, AuditKind::RootPasswordLogin).safe_now.unwrap();
        assert_eq!(s.verdict, Verdict::Check, "{}", s.why);
        // A key in a file sshd ignores is no key.
        let mut root = account("root", 0, PasswordState::Usable, 1);
        root.key_files[0].problems.push(PermProblem {
            path: "/root/.ssh".into(),
            what: "writable by others".into(),
            mode: 0o777,
            uid: 0,
            sticky: false,
        });
        used(&mut root);
        let f = facts(cfg.clone(), vec![root]);
        let s = find(&f, AuditKind::RootPasswordLogin).safe_now.unwrap();
        assert_eq!(s.verdict, Verdict::No, "{}", s.why);
        assert!(s.why.contains("ignored by sshd"), "{}", s.why);
        assert!(kinds(&f).contains(&AuditKind::KeyFileIgnored));
    }

    #[test]
    fn root_locked_or_keys_only_is_a_low_note() {
        let mut cfg = base_cfg();
        cfg.set("permitrootlogin", "yes")
            .set("passwordauthentication", "yes");
        let f = facts(cfg, vec![account("root", 0, PasswordState::Locked, 1)]);
        let r = find(&f, AuditKind::RootLoginPermitted);
        assert_eq!(r.severity, Severity::Low);
        assert!(r.why.contains("locked"));
        assert!(!kinds(&f).contains(&AuditKind::RootPasswordLogin));
        let mut cfg = base_cfg();
        cfg.set("permitrootlogin", "yes");
        let f = facts(cfg, vec![account("root", 0, PasswordState::Usable, 1)]);
        assert!(
            find(&f, AuditKind::RootLoginPermitted)
                .why
                .contains("no password method")
        );
    }

    #[test]
    fn prohibit_password_root_is_closed() {
        let mut cfg = base_cfg();
        cfg.set("passwordauthentication", "yes");
        let f = facts(cfg, vec![account("root", 0, PasswordState::Usable, 0)]);
        let k = kinds(&f);
        assert!(!k.contains(&AuditKind::RootPasswordLogin), "{k:?}");
        assert!(!k.contains(&AuditKind::RootLoginPermitted), "{k:?}");
    }

    #[test]
    fn user_passwords_and_who_would_be_locked_out() {
        let mut cfg = base_cfg();
        cfg.set("passwordauthentication", "yes");
        let mut alice = account("alice", 1000, PasswordState::Usable, 1);
        used(&mut alice);
        let bob = account("bob", 1001, PasswordState::Usable, 0);
        let mut locked = account("carol", 1002, PasswordState::Locked, 0);
        locked.passwd.shell = "/bin/bash".into();
        let mut nologin = account("svc", 1003, PasswordState::Usable, 0);
        nologin.passwd.shell = "/usr/sbin/nologin".into();
        let mut expired = account("old", 1004, PasswordState::Usable, 0);
        if let Some(s) = &mut expired.shadow {
            s.expire_day = Some(TODAY - 1);
        }
        let f = facts(cfg, vec![alice, bob, locked, nologin, expired]);
        let p = find(&f, AuditKind::PasswordLogin);
        assert_eq!(p.severity, Severity::High);
        assert_eq!(
            p.title,
            "alice, bob can log in with a password from anywhere"
        );
        assert_eq!(p.fix, ["PasswordAuthentication no"]);
        let s = p.safe_now.unwrap();
        assert_eq!(s.verdict, Verdict::No);
        assert!(s.why.contains("no key for bob"), "{}", s.why);
        assert!(s.why.contains("alice's key"), "{}", s.why);
    }

    #[test]
    fn keys_switched_off_are_no_way_in() {
        let mut cfg = base_cfg();
        cfg.set("permitrootlogin", "yes")
            .set("passwordauthentication", "yes")
            .set("pubkeyauthentication", "no");
        let mut root = account("root", 0, PasswordState::Usable, 1);
        used(&mut root);
        let s = find(&facts(cfg, vec![root]), AuditKind::RootPasswordLogin)
            .safe_now
            .unwrap();
        assert_eq!(s.verdict, Verdict::No);
        assert!(
            s.why.contains("PubkeyAuthentication no for root"),
            "{}",
            s.why
        );
    }

    #[test]
    fn a_second_uid_0_account() {
        let mut cfg = base_cfg();
        cfg.set("passwordauthentication", "yes");
        let toor = account("toor", 0, PasswordState::Usable, 0);
        let f = facts(cfg.clone(), vec![toor.clone()]);
        let k = kinds(&f);
        assert!(k.contains(&AuditKind::SecondRoot), "{k:?}");
        // PermitRootLogin prohibit-password covers it too: not a password login.
        assert!(!k.contains(&AuditKind::PasswordLogin), "{k:?}");
        cfg.set("permitrootlogin", "yes");
        let k = kinds(&facts(cfg, vec![toor]));
        assert!(k.contains(&AuditKind::PasswordLogin), "{k:?}");
    }

    #[test]
    fn old_keyword_names_are_where_to_fix() {
        let mut cfg = base_cfg();
        cfg.set("kbdinteractiveauthentication", "yes");
        let mut f = facts(cfg, vec![account("alice", 1000, PasswordState::Usable, 0)]);
        f.sshd.lines = vec![line(
            "/etc/ssh/sshd_config",
            62,
            "challengeresponseauthentication",
            "yes",
            None,
        )];
        let p = find(&f, AuditKind::PasswordLogin);
        let wh = p.fix_where.unwrap();
        assert!(wh.contains("/etc/ssh/sshd_config:62"), "{wh}");
    }

    #[test]
    fn keyboard_interactive_through_pam_is_a_password() {
        let mut cfg = base_cfg();
        cfg.set("kbdinteractiveauthentication", "yes");
        let mut alice = account("alice", 1000, PasswordState::Usable, 1);
        used(&mut alice);
        let f = facts(cfg.clone(), vec![alice.clone()]);
        let p = find(&f, AuditKind::PasswordLogin);
        assert_eq!(p.fix, ["KbdInteractiveAuthentication no"]);
        assert!(p.why.contains("keyboard-interactive (PAM)"));
        assert_eq!(p.safe_now.unwrap().verdict, Verdict::Yes);
        // Without PAM keyboard-interactive asks no password on Linux.
        cfg.set("usepam", "no");
        assert!(
            !kinds(&facts(cfg.clone(), vec![alice.clone()])).contains(&AuditKind::PasswordLogin)
        );
        // A key required besides the password: not a password login.
        let mut cfg = base_cfg();
        cfg.set("passwordauthentication", "yes")
            .set("authenticationmethods", "publickey,password");
        assert!(
            !kinds(&facts(cfg.clone(), vec![alice.clone()])).contains(&AuditKind::PasswordLogin)
        );
        cfg.set("authenticationmethods", "publickey,password password");
        assert!(kinds(&facts(cfg, vec![alice])).contains(&AuditKind::PasswordLogin));
    }

    #[test]
    fn allow_and_deny_users() {
        let mut cfg = base_cfg();
        cfg.set("passwordauthentication", "yes")
            .set("allowusers", "ad*");
        let accts = vec![
            account("admin", 1000, PasswordState::Usable, 0),
            account("bob", 1001, PasswordState::Usable, 0),
        ];
        let p = find(&facts(cfg.clone(), accts.clone()), AuditKind::PasswordLogin);
        assert!(p.title.starts_with("admin can"), "{}", p.title);
        cfg.set("denyusers", "admin");
        assert!(!kinds(&facts(cfg, accts)).contains(&AuditKind::PasswordLogin));
    }

    #[test]
    fn per_user_match_evaluation_is_used() {
        let mut f = facts(
            base_cfg(),
            vec![account("alice", 1000, PasswordState::Usable, 0)],
        );
        let mut alice_cfg = base_cfg();
        alice_cfg.set("passwordauthentication", "yes");
        f.sshd.per_user.insert("alice".into(), alice_cfg);
        assert!(kinds(&f).contains(&AuditKind::PasswordLogin));
    }

    #[test]
    fn empty_passwords() {
        let mut cfg = base_cfg();
        cfg.set("passwordauthentication", "yes")
            .set("permitemptypasswords", "yes");
        let accts = vec![account("guest", 1005, PasswordState::Empty, 0)];
        let e = find(
            &facts(cfg.clone(), accts.clone()),
            AuditKind::EmptyPasswordLogin,
        );
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.fix, ["PermitEmptyPasswords no"]);
        assert_eq!(e.commands, ["passwd -l guest"]);
        cfg.set("permitemptypasswords", "no");
        let e = find(&facts(cfg, accts), AuditKind::EmptyPassword);
        assert_eq!(e.severity, Severity::Medium);
    }

    #[test]
    fn match_block_opening_passwords_for_an_address() {
        let mut f = facts(
            base_cfg(),
            vec![
                account("root", 0, PasswordState::Locked, 1),
                account("alice", 1000, PasswordState::Usable, 0),
            ],
        );
        let mline = line(
            "/etc/ssh/sshd_config",
            40,
            "match",
            "Address 198.51.100.0/24",
            None,
        );
        f.sshd.lines = vec![
            mline.clone(),
            line(
                "/etc/ssh/sshd_config",
                41,
                "passwordauthentication",
                "yes",
                Some("Address 198.51.100.0/24"),
            ),
        ];
        let mut open = base_cfg();
        open.set("passwordauthentication", "yes");
        let per_user: BTreeMap<String, EffectiveConfig> = [
            ("root".to_string(), open.clone()),
            ("alice".to_string(), open),
        ]
        .into();
        f.sshd.match_evals = vec![MatchEval {
            line: mline,
            pattern: "198.51.100.0/24".into(),
            addr: "198.51.100.1".parse().unwrap(),
            lport: None,
            per_user,
        }];
        let m = find(&f, AuditKind::MatchAllowsPasswords);
        assert_eq!(m.severity, Severity::High);
        assert!(
            m.title.contains("alice") && !m.title.contains("root"),
            "{}",
            m.title
        );
        assert!(m.fix_where.as_deref().unwrap().contains("sshd_config:41"));
        assert_eq!(m.safe_now.unwrap().verdict, Verdict::No);
        // Not a global password login.
        assert!(!kinds(&f).contains(&AuditKind::PasswordLogin));
        // The same network allowlisted: a low note.
        f.portcullis
            .allowlist
            .push("198.51.100.0/24".parse().unwrap());
        let m = find(&f, AuditKind::MatchAllowsPasswordsAllowlisted);
        assert_eq!(m.severity, Severity::Low);
        // A LocalPort block: anyone on that port, allowlist or not.
        f.sshd.match_evals[0].pattern = "port 2222".into();
        f.sshd.match_evals[0].addr = f.sshd.remote;
        f.sshd.match_evals[0].lport = Some(2222);
        let m = find(&f, AuditKind::MatchAllowsPasswords);
        assert_eq!(m.severity, Severity::High);
        assert!(
            m.title.contains("on port 2222 from anywhere"),
            "{}",
            m.title
        );
    }

    #[test]
    fn key_file_modes() {
        let mut alice = account("alice", 1000, PasswordState::Locked, 1);
        alice.key_files[0].problems.push(PermProblem {
            path: "/home/alice/.ssh/authorized_keys".into(),
            what: "writable by others".into(),
            mode: 0o666,
            uid: 1000,
            sticky: false,
        });
        alice.key_files[0].problems.push(PermProblem {
            path: "/home/alice".into(),
            what: "owned by uid 1001".into(),
            mode: 0o755,
            uid: 1001,
            sticky: false,
        });
        let f = facts(base_cfg(), vec![alice.clone()]);
        let k = find(&f, AuditKind::KeyFileIgnored);
        assert_eq!(k.severity, Severity::Medium);
        assert_eq!(
            k.commands,
            [
                "chmod go-w /home/alice/.ssh/authorized_keys",
                "chown alice /home/alice"
            ]
        );
        let mut cfg = base_cfg();
        cfg.set("strictmodes", "no");
        let k = find(
            &facts(cfg.clone(), vec![alice]),
            AuditKind::KeyFileWritableByOthers,
        );
        assert_eq!(k.severity, Severity::Critical);
        assert_eq!(k.fix, ["StrictModes yes"]);
        // A key file under /tmp (sticky, world-writable): sshd's StrictModes would refuse it,
        // but with StrictModes no nobody else can replace it.
        let mut tmp = account("bob", 1001, PasswordState::Locked, 1);
        tmp.key_files[0].problems.push(PermProblem {
            path: "/tmp".into(),
            what: "writable by others".into(),
            mode: 0o1777,
            uid: 0,
            sticky: true,
        });
        let f = facts(cfg, vec![tmp.clone()]);
        assert!(!kinds(&f).contains(&AuditKind::KeyFileWritableByOthers));
        let f = facts(base_cfg(), vec![tmp]);
        assert!(kinds(&f).contains(&AuditKind::KeyFileIgnored));
    }

    #[test]
    fn limits() {
        let mut cfg = base_cfg();
        cfg.set("maxauthtries", "10")
            .set("logingracetime", "0")
            .set("maxstartups", "50")
            .set("persourcemaxstartups", "none");
        let f = facts(cfg, Vec::new());
        let m = find(&f, AuditKind::MaxAuthTries);
        assert_eq!(
            (m.severity, m.fix[0].as_str()),
            (Severity::Medium, "MaxAuthTries 3")
        );
        let g = find(&f, AuditKind::LoginGraceTime);
        assert_eq!(g.severity, Severity::Medium);
        assert!(g.why.contains("CVE-2024-6387"));
        assert_eq!(g.safe_now.unwrap().verdict, Verdict::Check);
        let s = find(&f, AuditKind::MaxStartups);
        assert_eq!(s.fix, ["MaxStartups 10:30:100", "PerSourceMaxStartups 10"]);
        let mut cfg = base_cfg();
        cfg.set("logingracetime", "120");
        let g = find(&facts(cfg, Vec::new()), AuditKind::LoginGraceTime);
        assert_eq!(g.severity, Severity::Low);
        assert_eq!(g.fix, ["LoginGraceTime 30"]);
    }

    #[test]
    fn penalties_by_version_and_allowlist() {
        let mut f = facts(base_cfg(), Vec::new());
        f.sshd.version = Ok(SshdVersion {
            major: 9,
            minor: 2,
            text: "OpenSSH_9.2p1".into(),
        });
        let p = find(&f, AuditKind::PerSourcePenalties);
        assert!(
            p.title.contains("not available in this version (9.2)"),
            "{}",
            p.title
        );
        assert!(p.fix.is_empty());

        let mut f = facts(base_cfg(), Vec::new());
        f.portcullis.allowlist.push("192.0.2.0/24".parse().unwrap());
        if let Ok(g) = &mut f.sshd.global {
            g.set("persourcepenalties", "crash:90 authfail:5");
            g.set("persourcepenaltyexemptlist", "198.51.100.5");
        }
        let p = find(&f, AuditKind::PerSourcePenalties);
        assert!(
            p.why.contains("portcullis never bans 192.0.2.0/24"),
            "{}",
            p.why
        );
        assert!(p.why.contains("sshd exempts 198.51.100.5/32"), "{}", p.why);
        assert_eq!(
            p.fix,
            ["PerSourcePenaltyExemptList 198.51.100.5/32,192.0.2.0/24"]
        );
        if let Ok(g) = &mut f.sshd.global {
            g.set("persourcepenalties", "no");
        }
        assert_eq!(
            find(&f, AuditKind::PerSourcePenalties).severity,
            Severity::Medium
        );
    }

    #[test]
    fn portcullis_itself() {
        let mut f = facts(base_cfg(), Vec::new());
        f.portcullis.daemon = DaemonState::NotRunning {
            why: "no daemon at /run/portcullis/control.sock".into(),
        };
        f.portcullis.firewall = FirewallState::Missing {
            what: "nft table inet portcullis".into(),
        };
        assert_eq!(kinds(&f), [AuditKind::PortcullisNotRunning]);
        assert!(is_alarming(&judge(&f)));
        f.portcullis.daemon = DaemonState::Running {
            version: "0.1.0".into(),
            dry_run: false,
            jails: vec!["nginx-http-auth".into()],
            backend: "nftables".into(),
            backend_healthy: false,
            source_errors: Vec::new(),
        };
        f.portcullis.firewall = FirewallState::Present {
            what: "nft table inet portcullis".into(),
        };
        let k = kinds(&f);
        assert!(k.contains(&AuditKind::PortcullisNoSshdJail), "{k:?}");
        assert!(k.contains(&AuditKind::PortcullisFirewall), "{k:?}");
        // Running, table flushed away.
        if let DaemonState::Running {
            backend_healthy,
            jails,
            ..
        } = &mut f.portcullis.daemon
        {
            *backend_healthy = true;
            *jails = vec!["sshd".into()];
        }
        f.portcullis.firewall = FirewallState::Missing {
            what: "nft table inet portcullis".into(),
        };
        assert_eq!(kinds(&f), [AuditKind::PortcullisFirewall]);
        f.portcullis.daemon = DaemonState::Running {
            version: "0.1.0".into(),
            dry_run: true,
            jails: vec!["sshd".into()],
            backend: "nftables".into(),
            backend_healthy: true,
            source_errors: vec!["file:/var/log/auth.log: No such file or directory".into()],
        };
        f.portcullis.firewall = FirewallState::Missing {
            what: "nft table inet portcullis".into(),
        };
        assert_eq!(
            kinds(&f),
            [
                AuditKind::PortcullisSourceError,
                AuditKind::PortcullisDryRun
            ]
        );
    }

    #[test]
    fn unreadable_sshd_and_listening() {
        let mut f = facts(base_cfg(), Vec::new());
        f.sshd.global = Err("sshd: no hostkeys available -- exiting.".into());
        let s = find(&f, AuditKind::SshdUnreadable);
        assert_eq!(s.severity, Severity::High);
        let mut cfg = base_cfg();
        cfg.push("listenaddress", "0.0.0.0:22")
            .push("listenaddress", "[::]:22");
        let mut f = facts(cfg, Vec::new());
        let l = find(&f, AuditKind::Listening);
        assert!(l.why.contains("every address"));
        assert!(
            l.why.contains("nothing listens on these ports now"),
            "{}",
            l.why
        );
        f.sshd.listening_now = Ok(vec!["0.0.0.0:22".parse().unwrap()]);
        let l = find(&f, AuditKind::Listening);
        assert!(l.why.contains("listening now: 0.0.0.0:22"), "{}", l.why);
        let _ = Path::new("/");
    }

    #[test]
    fn unknown_shadow_assumes_a_password() {
        let mut cfg = base_cfg();
        cfg.set("permitrootlogin", "yes")
            .set("passwordauthentication", "yes");
        let mut root = account("root", 0, PasswordState::Usable, 0);
        root.shadow = None;
        let r = find(&facts(cfg, vec![root]), AuditKind::RootPasswordLogin);
        assert!(r.why.contains("unknown"), "{}", r.why);
    }
}
