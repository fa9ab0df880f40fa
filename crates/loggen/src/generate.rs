//! The traffic model and the line writer.
//!
//! A scheduler keeps a few jobs in flight (sshd connections, each with its own pid, plus
//! cron/sudo/kernel noise) and interleaves their lines the way a busy host does. A job is
//! planned in full when it starts (a list of [`Step`]s), so the scheduler knows how many lines
//! it will still write and can stop starting jobs in time to end on exactly `lines` lines
//! with every connection complete and every requested attacker present. The ground truth is
//! tallied line by line as the lines are written, so it describes exactly the bytes produced.

use std::io::Write;

use crate::addr::{self, INJECTED, LEGIT, MAX_ATTACKERS};
use crate::clock::{FIRST_SECOND, Format, Stamp, last_second, push_padded, rfc3339_utc};
use crate::error::{ConfigError, GenerateError};
use crate::rng::Rng;
use crate::truth::{AddressTruth, Breach, GeneratorInfo, Totals, Truth};
use crate::users::{ATTACK_POOL, Account, BREACHABLE, INJECTION_FIRST, ROOT, USERS, index_of};

/// What to generate. `Default` is the benchmark's default mix.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Exact number of lines to write.
    pub lines: u64,
    /// Exact number of distinct attacking addresses (each appears at least once).
    pub attackers: u64,
    /// PRNG seed: the same config and seed give byte-identical output.
    pub seed: u64,
    /// Share of attackers that are IPv6 (0..=1).
    pub ipv6_share: f64,
    /// Target share of lines from other programs (cron, sudo, logind, kernel), 0..=1. The
    /// generator lowers it when the requested attackers need the room.
    pub noise_share: f64,
    /// Time of the first line, Unix seconds (UTC).
    pub start: i64,
    /// Mean time between two lines, microseconds.
    pub mean_gap_us: u64,
    /// Timestamp style of the lines.
    pub format: Format,
    /// Host name written in every line.
    pub host: String,
    /// Number of breaches (an attacker failing, then `Accepted password`).
    pub breaches: u32,
    /// Share of the log (its tail) written after an upgrade to OpenSSH 9.8+, whose
    /// per-connection lines come from `sshd-session[pid]`.
    pub sshd_session_share: f64,
    /// Whether to include attackers whose user names embed other addresses.
    pub injections: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lines: 1_000_000,
            attackers: 2_000,
            seed: 1,
            ipv6_share: 0.2,
            noise_share: 0.4,
            start: 1_795_132_800, // 2026-11-20T00:00:00Z
            mean_gap_us: 250_000,
            format: Format::Syslog,
            host: "gate".to_owned(),
            breaches: 2,
            sshd_session_share: 0.3,
            injections: true,
        }
    }
}

impl Config {
    /// Checks the options without generating anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("ipv6_share", self.ipv6_share),
            ("noise_share", self.noise_share),
            ("sshd_session_share", self.sshd_session_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Share { name, value });
            }
        }
        if self.attackers > MAX_ATTACKERS {
            return Err(ConfigError::AddressSpace(self.attackers));
        }
        if self.attackers > self.lines {
            return Err(ConfigError::TooManyAttackers {
                attackers: self.attackers,
                lines: self.lines,
            });
        }
        // Each line moves the clock by less than two mean gaps, plus up to 6 s before a
        // `message repeated` line (see `emit`): a bound on the last line's time.
        let per_line_us = 2 * i128::from(self.mean_gap_us.max(1)) + 6_000_000;
        let end_us = i128::from(self.start) * 1_000_000 + i128::from(self.lines) * per_line_us;
        if self.start < FIRST_SECOND || end_us > i128::from(last_second()) * 1_000_000 {
            return Err(ConfigError::TimeRange {
                start: self.start,
                lines: self.lines,
            });
        }
        Ok(())
    }
}

/// Writes the log described by `config` to `out` and returns its ground truth.
///
/// `out` receives whole lines only (every `write_all` ends on `\n`), so a writer may split
/// files between calls; wrap it in nothing that re-chunks (no `BufWriter` needed: output is
/// buffered here in 256 KiB blocks).
pub fn generate<W: Write>(config: &Config, out: W) -> Result<Truth, GenerateError> {
    config.validate().map_err(GenerateError::Config)?;
    let mut model = Model::new(config, out);
    model.run()?;
    model.flush()?;
    Ok(model.into_truth())
}

/// The program that writes a line, which decides its `prog[pid]:` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prog {
    Sshd,
    SshdSession,
    Cron,
    Sudo,
    Logind,
    Kernel,
}

/// One line of a job (or `Idle`: a pause that writes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Idle,
    // pre-auth probes
    InvalidUser,
    NotAllowed,
    FailedNone,
    NoIdent,
    KexBannerError,
    BannerInvalid,
    UnableKex,
    UnableHostKey,
    Timeout,
    ClosedBy {
        user: bool,
    },
    ResetBy {
        user: bool,
    },
    ReceivedBye,
    DisconnectedFrom {
        user: bool,
    },
    // attempts and their companion lines
    PamCheckPass,
    PamAuthFailure,
    PamErrorAuth,
    FailedPassword,
    FailedKbdInt,
    /// A key of a legitimate user's agent that is not the accepted one (a try the login on
    /// the same connection retracts).
    FailedPublickey,
    Repeated(u8),
    MaxAttempts,
    TooMany,
    PamMore(u8),
    // success and session
    AcceptedPassword,
    AcceptedPublickey,
    SessionOpened,
    LogindNew(u32),
    ByUser,
    DisconnectedUser,
    SessionClosed,
    LogindLoggedOut(u32),
    LogindRemoved(u32),
    // noise
    CronOpened,
    CronClosed,
    SudoCommand(u8),
    SudoOpened,
    SudoClosed,
    KernelBlock,
    Terminating,
    Listening(bool),
}

impl Step {
    fn writes_line(self) -> bool {
        self != Step::Idle
    }

    /// Whether the sshd line of this step carries the job's address (counted or not).
    fn names_addr(self) -> bool {
        !matches!(
            self,
            Step::Idle
                | Step::PamCheckPass
                | Step::KexBannerError
                | Step::SessionOpened
                | Step::SessionClosed
                | Step::Terminating
                | Step::Listening(_)
                | Step::LogindNew(_)
                | Step::LogindLoggedOut(_)
                | Step::LogindRemoved(_)
        )
    }
}

/// What a line contributes to the truth.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    attempts: u32,
    probes: u32,
    success: bool,
    names_user: bool,
    failure_line: bool,
}

/// The job's role, recorded on its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Attacker,
    Legit,
    Breach,
    Noise,
}

/// The generated host's own address (destination of kernel firewall lines).
const HOST_V4: &str = "192.0.2.1";
/// Marks a job without an address.
const NO_ADDR: u32 = u32::MAX;
/// `systemd-logind`'s pid for the whole log.
const LOGIND_PID: u32 = 612;
/// The listening sshd before and after the upgrade.
const LISTENER_OLD: u32 = 811;
const LISTENER_NEW: u32 = 3_141;

#[derive(Debug)]
struct Job {
    prog: Prog,
    pid: u32,
    addr: u32,
    port: u16,
    user: u16,
    /// sshd words this user as `invalid user`.
    invalid: bool,
    role: Role,
    steps: Vec<Step>,
    next: usize,
    /// Lines still to write.
    left: u64,
    /// A line of this connection counted (as the filter keeps it per connection).
    counted: bool,
    /// A line naming a user counted this connection's first attempt: its first failed
    /// try counts no more.
    credit: bool,
    /// Log time (µs) at which the job wrote the first line of an attempt whose `Failed …`
    /// line is still to come. sshd writes those lines within its PAM delay (2–3 s), and the
    /// filter merges them only within a short window, so the scheduler finishes such a
    /// group first once it is [`GROUP_URGENT_US`] old.
    group_since: Option<i64>,
}

impl Job {
    /// The counting rule per connection, written down independently of the filter: a
    /// connection that names a user before authentication counts one attempt even if it
    /// makes no failed try (a user-name scanner on a key-only server), and never more than
    /// its failed tries otherwise. So a pre-auth line naming a user is an attempt when it is
    /// the connection's first counted line and nothing after that; the first failed try
    /// after such a line is already counted; `message repeated` lines count as they are.
    fn per_connection(&mut self, step: Step, mut t: Tally) -> Tally {
        let user_line = t.names_user && t.probes > 0 && t.attempts == 0;
        if user_line {
            t.probes = 0;
            t.attempts = u32::from(!self.counted);
            self.credit |= !self.counted;
            self.counted = true;
        } else if t.attempts > 0 || t.failure_line {
            if t.attempts > 0 && !matches!(step, Step::Repeated(_)) && self.credit {
                t.attempts -= 1;
                self.credit = false;
            }
            self.counted = true;
        }
        t
    }
}

/// Per-address running truth.
#[derive(Debug, Clone, Default)]
struct Acc {
    attempts: u64,
    probes: u64,
    successes: u64,
    users: Vec<u16>,
    first_us: i64,
    last_us: i64,
    order: u32,
    seen: bool,
    breach: bool,
    legit: bool,
}

const SUDO_COMMANDS: [&str; 4] = [
    "/usr/bin/apt update",
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/journalctl -u ssh",
    "/usr/sbin/nft list ruleset",
];

/// Age (µs) at which an open attempt group is finished before anything else.
const GROUP_URGENT_US: i64 = 1_000_000;
/// Largest gap (µs) between two lines while an attempt group is open, so a group never
/// spans more than a few seconds whatever `mean_gap_us` is.
const GROUP_GAP_US: u64 = 400_000;

/// Average lines of an sshd job before measurements exist.
const INITIAL_JOB_LINES: f64 = 6.0;

struct Model<'c, W: Write> {
    cfg: &'c Config,
    out: W,
    buf: Vec<u8>,
    rng: Rng,
    stamp: Stamp,
    now_us: i64,
    /// Address text by index: attackers first, then the legit clients.
    addrs: Vec<Box<str>>,
    acc: Vec<Acc>,
    /// Publickey fingerprints by legit client index.
    fingerprints: Vec<String>,
    jobs: Vec<Job>,
    spare_steps: Vec<Vec<Step>>,
    // counters
    written: u64,
    pending: u64,
    committed_total: u64,
    committed_noise: u64,
    sshd_jobs: u64,
    sshd_job_lines: u64,
    unseen_next: u64,
    next_pid: u32,
    next_session: u32,
    concurrency: usize,
    upgraded: bool,
    breaches_done: u32,
    injections_done: u16,
    order: u32,
    totals: Totals,
    breaches: Vec<Breach>,
}

impl<'c, W: Write> Model<'c, W> {
    fn new(cfg: &'c Config, out: W) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let mut addrs = addr::attackers(cfg.attackers, cfg.ipv6_share, &mut rng);
        addrs.extend(LEGIT.iter().map(|(_, _, a)| Box::<str>::from(*a)));
        let fingerprints = LEGIT
            .iter()
            .map(|_| {
                const B64: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                (0..43).map(|_| char::from(*rng.pick(B64))).collect()
            })
            .collect();
        let acc = vec![Acc::default(); addrs.len()];
        Model {
            cfg,
            out,
            buf: Vec::with_capacity(1 << 19),
            stamp: Stamp::new(cfg.format),
            now_us: cfg.start * 1_000_000,
            next_pid: 1_000 + rng.below(5_000) as u32,
            rng,
            addrs,
            acc,
            fingerprints,
            jobs: Vec::new(),
            spare_steps: Vec::new(),
            written: 0,
            pending: 0,
            committed_total: 0,
            committed_noise: 0,
            sshd_jobs: 0,
            sshd_job_lines: 0,
            unseen_next: 0,
            next_session: 1,
            concurrency: 3,
            upgraded: false,
            breaches_done: 0,
            injections_done: 0,
            order: 0,
            totals: Totals::default(),
            breaches: Vec::new(),
        }
    }

    fn run(&mut self) -> Result<(), GenerateError> {
        let total = self.cfg.lines;
        while self.written < total {
            if self.written.is_multiple_of(512) {
                self.concurrency = 1 + self.rng.below(6) as usize;
            }
            let room = total - self.written - self.pending;
            if room > 0 && (self.jobs.len() < self.concurrency || self.jobs.is_empty()) {
                self.start_job(room);
            }
            if !self.jobs.is_empty() {
                let i = self
                    .urgent_job()
                    .unwrap_or_else(|| self.rng.below(self.jobs.len() as u64) as usize);
                self.advance(i)?;
            }
        }
        Ok(())
    }

    /// The job with the oldest attempt group older than [`GROUP_URGENT_US`], if any.
    fn urgent_job(&self) -> Option<usize> {
        self.jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| j.group_since.map(|t| (t, i)))
            .filter(|&(t, _)| self.now_us - t >= GROUP_URGENT_US)
            .min()
            .map(|(_, i)| i)
    }

    fn alloc_pid(&mut self) -> u32 {
        self.next_pid += 1 + self.rng.below(40) as u32;
        if self.next_pid > 4_000_000 {
            self.next_pid = 1_000 + self.rng.below(1_000) as u32;
        }
        self.next_pid
    }

    fn unseen(&self) -> u64 {
        self.cfg.attackers - self.unseen_next
    }

    /// Starts one job that fits in `room` lines while leaving one line for each attacker not
    /// yet seen. Always starts something when `room > 0`.
    fn start_job(&mut self, room: u64) {
        let cfg = self.cfg;
        let unseen = self.unseen();
        let progress = self.written as f64 / cfg.lines as f64;
        let mut steps = self.spare_steps.pop().unwrap_or_default();
        steps.clear();

        // One-off events at fixed points of the log.
        if !self.upgraded
            && cfg.sshd_session_share > 0.0
            && progress >= 1.0 - cfg.sshd_session_share
        {
            self.upgraded = true;
            steps.extend([
                Step::Terminating,
                Step::Listening(false),
                Step::Listening(true),
            ]);
            if room >= 3 + unseen {
                let pid = LISTENER_OLD;
                self.push_job(Prog::Sshd, pid, NO_ADDR, 0, 0, false, Role::Noise, steps);
                return;
            }
            steps.clear();
        }
        let breach_due = self.breaches_done < cfg.breaches
            && progress >= f64::from(self.breaches_done + 1) / f64::from(cfg.breaches + 1);
        if breach_due && self.try_breach(room, &mut steps) {
            return;
        }
        let injection_due = cfg.injections
            && cfg.lines >= 1_000
            && self.injections_done < 4
            && progress >= 0.15 + 0.2 * f64::from(self.injections_done);
        if injection_due && self.try_injection(room, &mut steps) {
            return;
        }

        let want_noise = (self.committed_noise as f64)
            < cfg.noise_share * self.committed_total as f64
            && cfg.noise_share > 0.0;
        if want_noise && unseen < room {
            let len = self.plan_noise(&mut steps, room - unseen);
            if len > 0 {
                return self.push_noise(steps);
            }
            steps.clear();
        }

        // An sshd job: pick the attacker first.
        let avg = if self.sshd_jobs == 0 {
            INITIAL_JOB_LINES
        } else {
            self.sshd_job_lines as f64 / self.sshd_jobs as f64
        };
        let est_jobs_left = ((room as f64) * (1.0 - cfg.noise_share) / avg).max(1.0);
        let p_unseen = (unseen as f64 / est_jobs_left).min(1.0);
        let seen = self.unseen_next;
        let pick_unseen = unseen > 0 && (seen == 0 || self.rng.chance(p_unseen.max(0.02)));
        let legit = !pick_unseen && self.rng.chance(0.02);
        if legit {
            let l = self.rng.below(LEGIT.len() as u64) as u32;
            let len = self.plan_legit(l, &mut steps);
            if len + unseen <= room {
                let addr = cfg.attackers as u32 + l;
                let user = index_of(LEGIT[l as usize].0);
                return self.push_sshd(addr, user, false, Role::Legit, steps, false);
            }
            steps.clear();
        }
        let attacker = if pick_unseen {
            self.unseen_next
        } else if seen > 0 {
            // Heavy tail: low indexes (the persistent attackers) come back far more often.
            let u = self.rng.unit();
            ((u * u * u) * seen as f64) as u64
        } else {
            // No attackers at all (`attackers == 0`): only legit traffic and noise.
            let len = self.plan_noise(&mut steps, room);
            if len == 0 || !self.rng.chance(0.9) {
                steps.clear();
                let l = self.rng.below(LEGIT.len() as u64) as u32;
                let len = self.plan_legit(l, &mut steps);
                if len <= room {
                    let addr = cfg.attackers as u32 + l;
                    let user = index_of(LEGIT[l as usize].0);
                    return self.push_sshd(addr, user, false, Role::Legit, steps, false);
                }
                steps.clear();
                self.plan_noise(&mut steps, room);
            }
            return self.push_noise(steps);
        };
        let (user, invalid) = self.plan_attack(&mut steps);
        let len = count_lines(&steps);
        let need = if pick_unseen { unseen - 1 } else { unseen };
        if len + need <= room {
            return self.push_sshd(
                attacker as u32,
                user,
                invalid,
                Role::Attacker,
                steps,
                pick_unseen,
            );
        }
        // Does not fit: a one-line scan from an attacker not yet seen, or one line of noise.
        steps.clear();
        if unseen > 0 {
            steps.push(
                *self
                    .rng
                    .pick(&[Step::NoIdent, Step::UnableKex, Step::Timeout]),
            );
            let next = self.unseen_next;
            self.push_sshd(next as u32, ROOT, false, Role::Attacker, steps, true);
        } else if !want_noise && seen > 0 {
            steps.push(
                *self
                    .rng
                    .pick(&[Step::NoIdent, Step::UnableKex, Step::Timeout]),
            );
            self.push_sshd(attacker as u32, ROOT, false, Role::Attacker, steps, false);
        } else if self.plan_noise(&mut steps, room) > 0 {
            self.push_noise(steps);
        } else {
            // room >= 1 always holds here, and a kernel line is one line.
            steps.push(Step::KernelBlock);
            self.push_noise(steps);
        }
    }

    fn try_breach(&mut self, room: u64, steps: &mut Vec<Step>) -> bool {
        let seen = self.unseen_next;
        let unseen = self.unseen();
        let (attacker, fresh) = if seen > 0 {
            (self.rng.below(seen.min(50)), false)
        } else if unseen > 0 {
            (0, true)
        } else {
            self.breaches_done = self.cfg.breaches;
            return false;
        };
        let user = *self.rng.pick(&BREACHABLE);
        let pam = self.rng.chance(0.6);
        for _ in 0..self.rng.range(3, 5) {
            if pam {
                steps.push(Step::PamAuthFailure);
            }
            steps.push(Step::FailedPassword);
        }
        steps.extend([Step::AcceptedPassword, Step::SessionOpened]);
        let session = self.next_session;
        steps.push(Step::LogindNew(session));
        steps.extend([Step::Idle, Step::Idle, Step::ByUser, Step::DisconnectedUser]);
        steps.extend([
            Step::SessionClosed,
            Step::LogindLoggedOut(session),
            Step::LogindRemoved(session),
        ]);
        let need = if fresh { unseen - 1 } else { unseen };
        if count_lines(steps) + need > room {
            steps.clear();
            return false;
        }
        self.next_session += 1;
        self.breaches_done += 1;
        let taken = std::mem::take(steps);
        self.push_sshd(attacker as u32, user, false, Role::Breach, taken, fresh);
        true
    }

    fn try_injection(&mut self, room: u64, steps: &mut Vec<Step>) -> bool {
        let seen = self.unseen_next;
        let unseen = self.unseen();
        let (attacker, fresh) = if seen > 0 {
            (self.rng.below(seen), false)
        } else if unseen > 0 {
            (0, true)
        } else {
            self.injections_done = 4;
            return false;
        };
        let user = INJECTION_FIRST + self.injections_done;
        steps.push(Step::InvalidUser);
        for _ in 0..self.rng.range(1, 3) {
            steps.push(Step::FailedPassword);
        }
        steps.push(Step::ClosedBy { user: true });
        let need = if fresh { unseen - 1 } else { unseen };
        if count_lines(steps) + need > room {
            steps.clear();
            return false;
        }
        self.injections_done += 1;
        let taken = std::mem::take(steps);
        self.push_sshd(attacker as u32, user, true, Role::Attacker, taken, fresh);
        true
    }

    /// Plans a password-guessing or scanning connection; returns (user, invalid).
    fn plan_attack(&mut self, steps: &mut Vec<Step>) -> (u16, bool) {
        let rng = &mut self.rng;
        if rng.chance(0.35) {
            // A scanner: one connection, no password.
            match rng.below(8) {
                0 => steps.push(Step::NoIdent),
                1 => steps.extend([Step::KexBannerError, Step::BannerInvalid]),
                2 => steps.push(Step::UnableKex),
                3 => steps.push(Step::UnableHostKey),
                4 => steps.push(Step::Timeout),
                5 => steps.push(Step::ClosedBy { user: false }),
                6 => steps.extend([Step::ReceivedBye, Step::DisconnectedFrom { user: false }]),
                _ => steps.push(Step::ResetBy { user: false }),
            }
            return (ROOT, false);
        }
        let user = if rng.chance(0.35) {
            ROOT
        } else {
            rng.below(u64::from(ATTACK_POOL)) as u16
        };
        let account = USERS[user as usize].1;
        let invalid = account != Account::Valid;
        match account {
            Account::Unknown => steps.push(Step::InvalidUser),
            Account::NotAllowed => steps.push(Step::NotAllowed),
            Account::Valid => {}
        }
        if rng.chance(0.05) {
            steps.push(Step::FailedNone);
        }
        // Invalid user followed by nothing but a disconnect: a probe-only connection.
        if invalid && rng.chance(0.15) {
            steps.push(Step::ClosedBy { user: true });
            return (user, invalid);
        }
        let tries = *rng.pick(&[1u8, 1, 2, 2, 3, 3, 4, 5, 6, 6, 6, 6]);
        let kbd = rng.chance(0.15);
        let pam = match account {
            Account::Valid => rng.chance(0.6),
            Account::Unknown => rng.chance(0.25),
            Account::NotAllowed => false,
        };
        let check_pass = account == Account::Unknown && rng.chance(0.5);
        let mut done = 0u8;
        while done < tries {
            if pam {
                if check_pass {
                    steps.push(Step::PamCheckPass);
                }
                steps.push(Step::PamAuthFailure);
            }
            if kbd {
                steps.extend([Step::PamErrorAuth, Step::FailedKbdInt]);
                done += 1;
            } else {
                steps.push(Step::FailedPassword);
                done += 1;
                if !pam && done < tries && rng.chance(0.12) {
                    let n = rng.range(1, u64::from(tries - done)) as u8;
                    steps.push(Step::Repeated(n));
                    done += n;
                }
            }
        }
        let pam_count = if pam { tries } else { 0 };
        if tries == 6 {
            steps.extend([Step::MaxAttempts, Step::TooMany]);
        } else {
            match rng.below(20) {
                0..=9 => steps.push(Step::ClosedBy { user: true }),
                10..=16 => steps.extend([Step::ReceivedBye, Step::DisconnectedFrom { user: true }]),
                _ => steps.push(Step::ResetBy { user: true }),
            }
        }
        if pam_count > 1 {
            steps.push(Step::PamMore(pam_count - 1));
        }
        (user, invalid)
    }

    fn plan_legit(&mut self, l: u32, steps: &mut Vec<Step>) -> u64 {
        let rng = &mut self.rng;
        let deploy = LEGIT[l as usize].0 == "deploy";
        let password = !deploy && rng.chance(0.3);
        if password && rng.chance(0.15) {
            // A typo first: one honest failed attempt.
            steps.extend([Step::PamAuthFailure, Step::FailedPassword]);
        } else if password && rng.chance(0.2) {
            // pam_unix fails before an LDAP/SSSD module lets the user in: no attempt.
            steps.push(Step::PamAuthFailure);
        } else if !password && rng.chance(0.2) {
            // The agent offers other keys first: no attempt.
            for _ in 0..rng.range(1, 4) {
                steps.push(Step::FailedPublickey);
            }
        }
        steps.push(if password {
            Step::AcceptedPassword
        } else {
            Step::AcceptedPublickey
        });
        steps.push(Step::SessionOpened);
        let session = self.next_session;
        self.next_session += 1;
        steps.push(Step::LogindNew(session));
        for _ in 0..rng.range(2, 12) {
            steps.push(Step::Idle);
        }
        steps.extend([Step::ByUser, Step::DisconnectedUser, Step::SessionClosed]);
        steps.extend([Step::LogindLoggedOut(session), Step::LogindRemoved(session)]);
        count_lines(steps)
    }

    /// Plans a noise job of at most `max` lines; returns its line count (0: nothing fits).
    fn plan_noise(&mut self, steps: &mut Vec<Step>, max: u64) -> u64 {
        let roll = self.rng.below(20);
        if roll < 11 && max >= 2 {
            steps.extend([Step::CronOpened, Step::Idle, Step::CronClosed]);
        } else if roll < 15 && max >= 3 {
            let c = self.rng.below(SUDO_COMMANDS.len() as u64) as u8;
            steps.extend([
                Step::SudoCommand(c),
                Step::SudoOpened,
                Step::Idle,
                Step::SudoClosed,
            ]);
        } else if max >= 1 {
            steps.push(Step::KernelBlock);
        }
        count_lines(steps)
    }

    fn push_noise(&mut self, steps: Vec<Step>) {
        let (prog, pid) = match steps.first() {
            Some(Step::CronOpened) => (Prog::Cron, self.alloc_pid()),
            Some(Step::SudoCommand(_)) => (Prog::Sudo, 0),
            _ => (Prog::Kernel, 0),
        };
        let addr = if self.unseen_next > 0 && self.rng.chance(0.7) {
            self.rng.below(self.unseen_next) as u32
        } else {
            NO_ADDR
        };
        let port = self.rng.range(1024, 65535) as u16;
        self.push_job(
            prog,
            pid,
            addr,
            port,
            index_of("alice"),
            false,
            Role::Noise,
            steps,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push_sshd(
        &mut self,
        addr: u32,
        user: u16,
        invalid: bool,
        role: Role,
        steps: Vec<Step>,
        fresh: bool,
    ) {
        if fresh {
            self.unseen_next += 1;
        }
        let prog = if self.upgraded {
            Prog::SshdSession
        } else {
            Prog::Sshd
        };
        let pid = self.alloc_pid();
        let port = self.rng.range(1024, 65535) as u16;
        self.sshd_jobs += 1;
        self.sshd_job_lines += count_lines(&steps);
        self.push_job(prog, pid, addr, port, user, invalid, role, steps);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_job(
        &mut self,
        prog: Prog,
        pid: u32,
        addr: u32,
        port: u16,
        user: u16,
        invalid: bool,
        role: Role,
        steps: Vec<Step>,
    ) {
        let left = count_lines(&steps);
        self.pending += left;
        self.committed_total += left;
        if role == Role::Noise {
            self.committed_noise += left;
        }
        self.jobs.push(Job {
            prog,
            pid,
            addr,
            port,
            user,
            invalid,
            role,
            steps,
            next: 0,
            left,
            group_since: None,
            counted: false,
            credit: false,
        });
    }

    /// Writes the next step of job `i` (and a `message repeated` that must follow it
    /// immediately); retires the job when it is done.
    fn advance(&mut self, i: usize) -> Result<(), GenerateError> {
        loop {
            let job = &self.jobs[i];
            let Some(&step) = job.steps.get(job.next) else {
                break;
            };
            self.jobs[i].next += 1;
            if step.writes_line() {
                self.emit(i, step)?;
            }
            let job = &self.jobs[i];
            if !matches!(job.steps.get(job.next), Some(Step::Repeated(_))) {
                break;
            }
        }
        let job = &self.jobs[i];
        if job.next >= job.steps.len() {
            let mut done = self.jobs.swap_remove(i);
            done.steps.clear();
            self.spare_steps.push(done.steps);
        }
        Ok(())
    }

    fn emit(&mut self, i: usize, step: Step) -> Result<(), GenerateError> {
        let mut span = 2 * self.cfg.mean_gap_us.max(1);
        if self.jobs.iter().any(|j| j.group_since.is_some()) {
            span = span.min(GROUP_GAP_US);
        }
        self.now_us += self.rng.below(span) as i64;
        match step {
            Step::PamCheckPass | Step::PamAuthFailure | Step::PamErrorAuth => {
                let job = &mut self.jobs[i];
                job.group_since.get_or_insert(self.now_us);
            }
            Step::FailedPassword | Step::FailedKbdInt | Step::AcceptedPassword => {
                self.jobs[i].group_since = None
            }
            _ => {}
        }
        if let Step::Repeated(_) = step {
            self.now_us += self.rng.range(1_000_000, 6_000_000) as i64;
        }
        let job = &self.jobs[i];
        let tally = render(
            &mut self.buf,
            &mut self.stamp,
            self.now_us,
            &self.cfg.host,
            job,
            step,
            &self.addrs,
            &self.fingerprints,
            self.cfg.start,
        );
        let tally = self.jobs[i].per_connection(step, tally);
        let job = &self.jobs[i];
        let prog = line_prog(job, step).0;
        let (addr, user, role) = (job.addr, job.user, job.role);
        self.jobs[i].left -= 1;
        self.pending -= 1;
        self.written += 1;
        self.totals.lines += 1;
        match prog {
            Prog::Sshd => self.totals.sshd_lines += 1,
            Prog::SshdSession => {
                self.totals.sshd_lines += 1;
                self.totals.sshd_session_lines += 1;
            }
            _ => self.totals.noise_lines += 1,
        }
        if tally.failure_line {
            self.totals.failure_lines += 1;
        }
        let sshd_addr = matches!(prog, Prog::Sshd | Prog::SshdSession) && step.names_addr();
        if sshd_addr && addr != NO_ADDR && role != Role::Noise {
            self.tally(addr, user, role, step, tally);
        }
        if self.buf.len() >= 1 << 18 {
            self.flush()?;
        }
        Ok(())
    }

    fn tally(&mut self, addr: u32, user: u16, role: Role, step: Step, t: Tally) {
        let now = self.now_us;
        let acc = &mut self.acc[addr as usize];
        if !acc.seen {
            acc.seen = true;
            acc.first_us = now;
            acc.order = self.order;
            self.order += 1;
        }
        acc.last_us = now;
        acc.attempts += u64::from(t.attempts);
        acc.probes += u64::from(t.probes);
        self.totals.attempts += u64::from(t.attempts);
        self.totals.probes += u64::from(t.probes);
        if t.names_user
            && let Err(pos) = acc.users.binary_search(&user)
        {
            acc.users.insert(pos, user);
        }
        match role {
            Role::Legit => acc.legit = true,
            Role::Breach => acc.breach = true,
            _ => {}
        }
        if t.success {
            acc.successes += 1;
            self.totals.successes += 1;
            if role == Role::Breach && step == Step::AcceptedPassword {
                self.breaches.push(Breach {
                    addr: self.addrs[addr as usize].to_string(),
                    user: USERS[user as usize].0.to_owned(),
                    failures_before: acc.attempts,
                    time: micros_text(now),
                });
            }
        }
    }

    fn flush(&mut self) -> Result<(), GenerateError> {
        if !self.buf.is_empty() {
            self.out
                .write_all(&self.buf)
                .map_err(GenerateError::Write)?;
            self.buf.clear();
        }
        self.out.flush().map_err(GenerateError::Write)
    }

    fn into_truth(mut self) -> Truth {
        let mut order: Vec<usize> = (0..self.acc.len()).filter(|&i| self.acc[i].seen).collect();
        order.sort_by_key(|&i| self.acc[i].order);
        let addresses: Vec<AddressTruth> = order
            .into_iter()
            .map(|i| {
                let a = &self.acc[i];
                AddressTruth {
                    addr: self.addrs[i].to_string(),
                    role: if a.breach {
                        "breach"
                    } else if a.legit {
                        "legit"
                    } else {
                        "attacker"
                    }
                    .to_owned(),
                    attempts: a.attempts,
                    probes: a.probes,
                    successes: a.successes,
                    users: {
                        let mut names: Vec<String> = a
                            .users
                            .iter()
                            .map(|&u| USERS[u as usize].0.to_owned())
                            .collect();
                        names.sort_unstable();
                        names
                    },
                    first_seen: micros_text(a.first_us),
                    last_seen: micros_text(a.last_us),
                }
            })
            .collect();
        self.totals.addresses = addresses.len() as u64;
        let cfg = self.cfg;
        Truth {
            generator: GeneratorInfo {
                version: 1,
                seed: cfg.seed,
                lines: cfg.lines,
                attackers: cfg.attackers,
                ipv6_share: cfg.ipv6_share,
                noise_share: cfg.noise_share,
                start: rfc3339_utc(cfg.start),
                format: match cfg.format {
                    Format::Syslog => "syslog",
                    Format::Rfc3339 => "rfc3339",
                }
                .to_owned(),
                host: cfg.host.clone(),
            },
            totals: std::mem::take(&mut self.totals),
            addresses,
            breaches: std::mem::take(&mut self.breaches),
            injected: if self.injections_done > 0 {
                INJECTED.iter().map(|s| (*s).to_owned()).collect()
            } else {
                Vec::new()
            },
        }
    }
}

fn count_lines(steps: &[Step]) -> u64 {
    steps.iter().filter(|s| s.writes_line()).count() as u64
}

/// `2026-11-20T00:00:01.123456Z`.
fn micros_text(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let base = rfc3339_utc(secs);
    format!(
        "{}.{:06}Z",
        &base[..base.len() - 1],
        us.rem_euclid(1_000_000)
    )
}

fn put(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(s.as_bytes());
}

fn put_u(b: &mut Vec<u8>, n: u64) {
    push_padded(b, n, 1);
}

/// `invalid user U` / `U`, as in `Failed password for …`.
fn for_user(b: &mut Vec<u8>, job: &Job) {
    if job.invalid {
        put(b, "invalid user ");
    }
    put(b, USERS[job.user as usize].0);
}

/// `authenticating user U ` / `invalid user U `, as in `Connection closed by …`.
fn by_user(b: &mut Vec<u8>, job: &Job) {
    put(
        b,
        if job.invalid {
            "invalid user "
        } else {
            "authenticating user "
        },
    );
    put(b, USERS[job.user as usize].0);
    b.push(b' ');
}

fn ip_port(b: &mut Vec<u8>, addr: &str, port: u16) {
    put(b, addr);
    put(b, " port ");
    put_u(b, u64::from(port));
}

/// ` from ADDR port N ssh2`: how sshd ends a line about an authentication method
/// (`Failed …`, `Accepted …`, `maximum authentication attempts exceeded …`).
fn from_ssh2(b: &mut Vec<u8>, addr: &str, port: u16) {
    put(b, " from ");
    ip_port(b, addr, port);
    put(b, " ssh2");
}

/// Writes one whole line for `step` of `job` and says what it counts for.
#[allow(clippy::too_many_arguments)]
fn render(
    b: &mut Vec<u8>,
    stamp: &mut Stamp,
    now_us: i64,
    host: &str,
    job: &Job,
    step: Step,
    addrs: &[Box<str>],
    fingerprints: &[String],
    start: i64,
) -> Tally {
    stamp.push(b, now_us);
    put(b, host);
    let (prog, pid) = line_prog(job, step);
    match prog {
        Prog::Sshd => put(b, " sshd["),
        Prog::SshdSession => put(b, " sshd-session["),
        Prog::Cron => put(b, " CRON["),
        Prog::Logind => put(b, " systemd-logind["),
        Prog::Sudo => put(b, " sudo:"),
        Prog::Kernel => put(b, " kernel: "),
    }
    if !matches!(prog, Prog::Sudo | Prog::Kernel) {
        put_u(b, u64::from(pid));
        put(b, "]: ");
    }
    let addr: &str = if job.addr == NO_ADDR {
        "198.18.0.0"
    } else {
        &addrs[job.addr as usize]
    };
    let port = job.port;
    let user = USERS[job.user as usize].0;
    let mut t = Tally::default();
    let probe = Tally {
        probes: 1,
        ..Tally::default()
    };
    let probe_user = Tally {
        probes: 1,
        names_user: true,
        ..Tally::default()
    };
    match step {
        Step::Idle => {}
        Step::InvalidUser => {
            put(b, "Invalid user ");
            put(b, user);
            put(b, " from ");
            ip_port(b, addr, port);
            t = probe_user;
        }
        Step::NotAllowed => {
            put(b, "User ");
            put(b, user);
            put(b, " from ");
            put(b, addr);
            put(
                b,
                " not allowed because none of user's groups are listed in AllowGroups",
            );
            t = probe_user;
        }
        Step::FailedNone => {
            put(b, "Failed none for ");
            for_user(b, job);
            from_ssh2(b, addr, port);
            t = probe_user;
        }
        Step::NoIdent => {
            put(b, "Did not receive identification string from ");
            ip_port(b, addr, port);
            t = probe;
        }
        Step::KexBannerError => {
            put(
                b,
                "error: kex_exchange_identification: banner line contains invalid characters",
            );
        }
        Step::BannerInvalid => {
            put(b, "banner exchange: Connection from ");
            ip_port(b, addr, port);
            put(b, ": invalid format");
            t = probe;
        }
        Step::UnableKex | Step::UnableHostKey => {
            put(b, "Unable to negotiate with ");
            ip_port(b, addr, port);
            put(
                b,
                if step == Step::UnableKex {
                    ": no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1 [preauth]"
                } else {
                    ": no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]"
                },
            );
            t = probe;
        }
        Step::Timeout => {
            put(b, "fatal: Timeout before authentication for ");
            ip_port(b, addr, port);
            t = probe;
        }
        Step::ClosedBy { user: with } | Step::ResetBy { user: with } => {
            put(
                b,
                if matches!(step, Step::ClosedBy { .. }) {
                    "Connection closed by "
                } else {
                    "Connection reset by "
                },
            );
            if with {
                by_user(b, job);
            }
            ip_port(b, addr, port);
            put(b, " [preauth]");
            t = if with { probe_user } else { probe };
        }
        Step::ReceivedBye => {
            put(b, "Received disconnect from ");
            ip_port(b, addr, port);
            put(b, ":11: Bye Bye [preauth]");
            t = probe;
        }
        Step::DisconnectedFrom { user: with } => {
            put(b, "Disconnected from ");
            if with {
                by_user(b, job);
            }
            ip_port(b, addr, port);
            put(b, " [preauth]");
            t = if with { probe_user } else { probe };
        }
        Step::PamCheckPass => put(b, "pam_unix(sshd:auth): check pass; user unknown"),
        Step::PamAuthFailure => {
            put(
                b,
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=",
            );
            put(b, addr);
            if !job.invalid {
                put(b, "  user=");
                put(b, user);
            }
            t.failure_line = true;
        }
        Step::PamErrorAuth => {
            put(b, "error: PAM: Authentication failure for ");
            if job.invalid {
                put(b, "illegal user ");
            }
            put(b, user);
            put(b, " from ");
            put(b, addr);
            t.failure_line = true;
        }
        Step::FailedPassword | Step::FailedKbdInt | Step::Repeated(_) => {
            let n = if let Step::Repeated(n) = step {
                put(b, "message repeated ");
                put_u(b, u64::from(n));
                put(b, " times: [ ");
                u32::from(n)
            } else {
                1
            };
            put(
                b,
                if step == Step::FailedKbdInt {
                    "Failed keyboard-interactive/pam for "
                } else {
                    "Failed password for "
                },
            );
            for_user(b, job);
            from_ssh2(b, addr, port);
            if matches!(step, Step::Repeated(_)) {
                b.push(b']');
            }
            t = Tally {
                attempts: n,
                names_user: true,
                failure_line: true,
                ..Tally::default()
            };
        }
        Step::FailedPublickey => {
            put(b, "Failed publickey for ");
            put(b, user);
            from_ssh2(b, addr, port);
            put(b, ": ED25519 SHA256:");
            // Another legitimate user's key: not this one's.
            let legit = (job.addr as usize).saturating_sub(addrs.len() - LEGIT.len());
            let other = fingerprints.get((legit + 1) % fingerprints.len().max(1));
            put(b, other.map_or("", String::as_str));
            // A try the login on this connection retracts: names the user, counts nothing.
            t = Tally {
                names_user: true,
                ..Tally::default()
            };
        }
        Step::MaxAttempts => {
            put(b, "error: maximum authentication attempts exceeded for ");
            for_user(b, job);
            from_ssh2(b, addr, port);
            put(b, " [preauth]");
        }
        Step::TooMany => {
            put(b, "Disconnecting ");
            by_user(b, job);
            ip_port(b, addr, port);
            put(b, ": Too many authentication failures [preauth]");
        }
        Step::PamMore(n) => {
            put(b, "PAM ");
            put_u(b, u64::from(n));
            put(
                b,
                " more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=",
            );
            put(b, addr);
            if !job.invalid {
                put(b, "  user=");
                put(b, user);
            }
        }
        Step::AcceptedPassword | Step::AcceptedPublickey => {
            put(
                b,
                if step == Step::AcceptedPassword {
                    "Accepted password for "
                } else {
                    "Accepted publickey for "
                },
            );
            put(b, user);
            from_ssh2(b, addr, port);
            if step == Step::AcceptedPublickey {
                put(b, ": ED25519 SHA256:");
                let legit = (job.addr as usize).saturating_sub(addrs.len() - LEGIT.len());
                put(b, fingerprints.get(legit).map_or("", String::as_str));
            }
            t = Tally {
                success: true,
                names_user: true,
                ..Tally::default()
            };
        }
        Step::SessionOpened => {
            put(b, "pam_unix(sshd:session): session opened for user ");
            put(b, user);
            put(b, "(uid=");
            put_u(b, u64::from(uid_of(user)));
            put(b, ") by (uid=0)");
        }
        Step::LogindNew(n) => {
            put(b, "New session ");
            put_u(b, u64::from(n));
            put(b, " of user ");
            put(b, user);
            b.push(b'.');
        }
        Step::ByUser => {
            put(b, "Received disconnect from ");
            ip_port(b, addr, port);
            put(b, ":11: disconnected by user");
        }
        Step::DisconnectedUser => {
            put(b, "Disconnected from user ");
            put(b, user);
            b.push(b' ');
            ip_port(b, addr, port);
        }
        Step::SessionClosed => {
            put(b, "pam_unix(sshd:session): session closed for user ");
            put(b, user);
        }
        Step::LogindLoggedOut(n) => {
            put(b, "Session ");
            put_u(b, u64::from(n));
            put(b, " logged out. Waiting for processes to exit.");
        }
        Step::LogindRemoved(n) => {
            put(b, "Removed session ");
            put_u(b, u64::from(n));
            b.push(b'.');
        }
        Step::CronOpened => put(
            b,
            "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
        ),
        Step::CronClosed => put(b, "pam_unix(cron:session): session closed for user root"),
        Step::SudoCommand(c) => {
            put(
                b,
                "    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=",
            );
            put(b, SUDO_COMMANDS[usize::from(c) % SUDO_COMMANDS.len()]);
        }
        Step::SudoOpened => put(
            b,
            " pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        ),
        Step::SudoClosed => put(b, " pam_unix(sudo:session): session closed for user root"),
        Step::KernelBlock => {
            let uptime = now_us - start * 1_000_000 + 86_400_000_000;
            b.push(b'[');
            put_u(b, (uptime / 1_000_000) as u64);
            b.push(b'.');
            push_padded(b, (uptime % 1_000_000) as u64, 6);
            put(
                b,
                "] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=",
            );
            put(
                b,
                if addr.contains(':') {
                    "198.18.0.0"
                } else {
                    addr
                },
            );
            put(b, " DST=");
            put(b, HOST_V4);
            put(
                b,
                " LEN=44 TOS=0x00 PREC=0x00 TTL=242 ID=54321 PROTO=TCP SPT=",
            );
            put_u(b, u64::from(port));
            put(b, " DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0");
        }
        Step::Terminating => put(b, "Received signal 15; terminating."),
        Step::Listening(v6) => put(
            b,
            if v6 {
                "Server listening on :: port 22."
            } else {
                "Server listening on 0.0.0.0 port 22."
            },
        ),
    }
    b.push(b'\n');
    t
}

/// The program and pid a step's line is written under (logind lines inside an sshd job,
/// the new listener after an upgrade).
fn line_prog(job: &Job, step: Step) -> (Prog, u32) {
    match step {
        Step::LogindNew(_) | Step::LogindLoggedOut(_) | Step::LogindRemoved(_) => {
            (Prog::Logind, LOGIND_PID)
        }
        Step::Listening(_) => (Prog::Sshd, LISTENER_NEW),
        _ => (job.prog, job.pid),
    }
}

fn uid_of(user: &str) -> u32 {
    LEGIT
        .iter()
        .find(|(n, _, _)| *n == user)
        .map_or(1001 + user.len() as u32, |(_, uid, _)| *uid)
}
