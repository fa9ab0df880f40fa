//! The daemon's time: a monotonic clock for the engines, wall time at the edges.
//!
//! A wall-clock step must not disable counting: stepped back by a day, a wall-clock engine
//! would hold its clock at the old time and take every new line (dated by the stepped
//! clock) as a day old, counting nothing; stepped forward, it would expire every ban at
//! once. So the engines run on **engine time**: the wall time at start plus the monotonic
//! time elapsed since ([`Instant`]), which no step moves. At the edges it meets wall time:
//!
//! - **In**: a log line's time is a wall time (its writer's clock). It is moved onto engine
//!   time by the current offset (engine − wall), so after a step the lines written since
//!   keep their distance from "now". (Lines written before a step and read after it are off
//!   by the step: a step forward makes them old, a step back puts them at "now".)
//! - **Kernel**: ban timeouts are relative ("this many seconds from now"), taken between two
//!   engine times: a ban lasts its length of real time, whatever the wall clock does.
//! - **Store**: it outlives the process, and the next start anchors engine time at the wall
//!   time of that start, so the store keeps wall times: every time in a commit (ban starts
//!   and ends, alert times, window entries) is moved onto wall time by the offset of the
//!   moment it is written, and what is read back (history, windows of a jail that a reload
//!   adds) is moved onto engine time. A step after a ban was written moves its stored end
//!   by the step for the next run only.
//!
//! The clock reads a [`ClockSource`], so tests step a fake wall clock. `Instant` is
//! `CLOCK_MONOTONIC`: it does not count a suspend, which shows as a forward step of the
//! wall clock and is handled as one.

use std::time::{Duration, Instant};

use portcullis_control::data::BanEntry;
use portcullis_core::event::{Alert, Decision};
use portcullis_core::jail::WindowState;
use portcullis_core::{Event, Time};
use portcullis_sources::wall_clock;

use super::jail_set::JailSet;

/// Where the daemon reads its two clocks.
pub trait ClockSource {
    /// The wall clock (may step).
    fn wall(&self) -> Time;
    /// A monotonic clock: time since an arbitrary origin, never going back.
    fn mono(&self) -> Duration;
}

/// The system's clocks.
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl ClockSource for SystemClock {
    fn wall(&self) -> Time {
        wall_clock()
    }
    fn mono(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// Engine time anchored at the wall time of the start.
pub struct DaemonClock<S: ClockSource = SystemClock> {
    source: S,
    wall_at_start: Time,
    mono_at_start: Duration,
}

/// One reading of both clocks, so that one step of the loop converts consistently.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Engine time now: what the engines get as `now`.
    pub engine: Time,
    /// Wall time now.
    pub wall: Time,
}

impl<S: ClockSource> DaemonClock<S> {
    /// Engine time starts at the wall time now.
    pub fn new(source: S) -> DaemonClock<S> {
        DaemonClock {
            wall_at_start: source.wall(),
            mono_at_start: source.mono(),
            source,
        }
    }

    /// Engine time now.
    pub fn now(&self) -> Time {
        self.wall_at_start
            .saturating_add(self.source.mono().saturating_sub(self.mono_at_start))
    }

    /// Both clocks now.
    pub fn read(&self) -> Reading {
        let engine = self.now();
        Reading {
            engine,
            wall: self.source.wall(),
        }
    }
}

impl Reading {
    /// engine − wall, in microseconds, rounded to whole seconds: zero until the wall clock
    /// steps. Read raw, the two clocks differ by a few microseconds from one reading to the
    /// next, and a failure and the success after it, logged in the same second and read in
    /// two batches, could land in the wrong order (no breach found). Log times have whole
    /// seconds; steps are seconds or more.
    fn offset(&self) -> i64 {
        let raw = self
            .engine
            .as_micros()
            .saturating_sub(self.wall.as_micros());
        let second = 1_000_000;
        raw.saturating_add(raw.signum() * second / 2) / second * second
    }

    /// A wall time (a log line's, a stored one) on engine time.
    pub fn engine_of(&self, wall: Time) -> Time {
        Time::from_micros(wall.as_micros().saturating_add(self.offset()))
    }

    /// An engine time on wall time.
    pub fn wall_of(&self, engine: Time) -> Time {
        Time::from_micros(engine.as_micros().saturating_sub(self.offset()))
    }

    /// A decision of the engines with its times on wall time (for the store, the log, the
    /// hooks).
    pub fn decision_to_wall(&self, d: &Decision) -> Decision {
        let mut d = d.clone();
        match &mut d {
            Decision::Ban(b) => {
                b.since = self.wall_of(b.since);
                b.until = b.until.map(|u| self.wall_of(u));
            }
            Decision::Unban { .. } => {}
            Decision::Alert(Alert::Breach { time, .. } | Alert::RootLogin { time, .. }) => {
                *time = self.wall_of(*time);
            }
        }
        d
    }

    /// A window's times moved by `f`.
    fn window_with(w: &mut WindowState, f: impl Fn(Time) -> Time) {
        for e in w.entries.iter_mut().chain(w.slow.iter_mut()) {
            e.time = f(e.time);
        }
        if !w.entries.is_empty() || !w.slow.is_empty() {
            w.until = f(w.until);
        }
    }

    /// A window of an engine on wall time (for the store).
    pub fn window_to_wall(&self, w: &mut WindowState) {
        Reading::window_with(w, |t| self.wall_of(t));
    }

    /// A stored window on engine time.
    pub fn window_to_engine(&self, w: &mut WindowState) {
        Reading::window_with(w, |t| self.engine_of(t));
    }

    /// A ban as a client sees it: on wall time.
    pub fn entry_to_wall(&self, e: &mut BanEntry) {
        e.since = self.wall_of(Time::from_secs(e.since)).as_secs();
        e.until = e.until.map(|u| self.wall_of(Time::from_secs(u)).as_secs());
    }
}

/// What the loop does with the events one line of jail `idx` made: their log (wall) times
/// onto engine time, then into the jail at engine time now.
pub fn hand_events(set: &mut JailSet, idx: usize, now: Reading, events: &mut [Event]) {
    for ev in events.iter_mut() {
        ev.time = now.engine_of(ev.time);
    }
    set.handle_events(idx, now.engine, events);
}

#[cfg(test)]
pub mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    /// A wall clock the test steps, and a monotonic one it advances.
    #[derive(Clone, Default)]
    pub struct FakeClock {
        wall: Rc<Cell<i64>>,
        mono: Rc<Cell<u64>>,
    }

    impl FakeClock {
        pub fn at(wall_secs: i64) -> FakeClock {
            let c = FakeClock::default();
            c.wall.set(wall_secs * 1_000_000);
            c
        }
        /// Real time passes: both clocks move.
        pub fn pass(&self, secs: u64) {
            self.mono.set(self.mono.get() + secs * 1_000_000);
            self.wall.set(self.wall.get() + secs as i64 * 1_000_000);
        }
        /// The wall clock steps (NTP, an operator); the monotonic clock does not.
        pub fn step(&self, secs: i64) {
            self.wall.set(self.wall.get() + secs * 1_000_000);
        }
    }

    impl ClockSource for FakeClock {
        fn wall(&self) -> Time {
            Time::from_micros(self.wall.get())
        }
        fn mono(&self) -> Duration {
            Duration::from_micros(self.mono.get())
        }
    }

    #[test]
    fn microsecond_jitter_between_readings_moves_no_log_time() {
        let r = |engine: i64, wall: i64| Reading {
            engine: Time::from_micros(engine),
            wall: Time::from_micros(wall),
        };
        let line = Time::from_secs(1_800_000_000);
        for jitter in [-3, -1, 0, 1, 2, 499_999] {
            let now = r(1_900_000_000_000_000 + jitter, 1_900_000_000_000_000);
            assert_eq!(now.engine_of(line), line, "jitter {jitter} µs");
        }
        // A real step is kept, to the second.
        let stepped = r(1_900_000_000_000_000, 1_900_000_000_000_000 - 3_600_000_002);
        assert_eq!(
            stepped.engine_of(line),
            line.saturating_add(Duration::from_secs(3600))
        );
    }

    #[test]
    fn engine_time_ignores_wall_steps_and_the_edges_convert() {
        let fake = FakeClock::at(1_800_000_000);
        let clock = DaemonClock::new(fake.clone());
        assert_eq!(clock.now(), Time::from_secs(1_800_000_000));
        fake.pass(10);
        let r = clock.read();
        assert_eq!(r.engine, r.wall, "no step: the same");
        assert_eq!(r.engine_of(Time::from_secs(5)), Time::from_secs(5));
        fake.step(-86_400);
        fake.pass(5);
        let r = clock.read();
        assert_eq!(
            r.engine,
            Time::from_secs(1_800_000_015),
            "a step back moves nothing"
        );
        // A line written now carries the stepped wall time: on engine time it is now.
        assert_eq!(r.engine_of(r.wall), r.engine);
        assert_eq!(r.wall_of(r.engine), r.wall);
        fake.step(2 * 86_400);
        let r = clock.read();
        assert_eq!(
            r.engine,
            Time::from_secs(1_800_000_015),
            "nor does a step forward"
        );
        assert_eq!(r.engine_of(r.wall), r.engine);
        let mut e = BanEntry {
            target: portcullis_control::Target::parse("192.0.2.1").expect("target"),
            jail: "sshd".into(),
            since: 1_800_000_015,
            until: Some(1_800_000_615),
            ban_no: 1,
            reason: "threshold".into(),
            origin: None,
        };
        r.entry_to_wall(&mut e);
        assert_eq!(
            (e.since, e.until),
            (1_800_086_415, Some(1_800_087_015)),
            "a client sees wall times"
        );
    }

    /// The loop's time handling (`process_batch`, the deadline, `commit`) around a real
    /// `JailSet`, with the wall clock stepped back a day mid-attack and forward two days
    /// while banned. With wall time as the engines' clock (before issue 10.5) the lines
    /// after the step back were a day "old" and counted for nothing, and the step forward
    /// expired the ban at once.
    #[test]
    fn a_wall_clock_step_back_and_forward_neither_stops_counting_nor_ends_bans() {
        use portcullis_core::jail::JailConfig;
        use portcullis_core::{EventKind, Weight};

        use crate::daemon::jail_set::JailInit;

        let fake = FakeClock::at(1_800_000_000);
        let clock = DaemonClock::new(fake.clone());
        let mut set = JailSet::new(
            vec![JailInit {
                config: JailConfig::new("sshd"),
                history: Vec::new(),
                windows: Vec::new(),
            }],
            Vec::new(),
            clock.now(),
        );
        // sshd logs a failure now, dated by the (stepped) wall clock; the loop reads it.
        let attack = |set: &mut JailSet| {
            let r = clock.read();
            let mut ev = Event {
                time: r.wall,
                addr: "198.51.100.7".parse().expect("addr"),
                kind: EventKind::Attempt,
                weight: Weight::ONE,
                count: 1,
                user: Some("root".into()),
                user_exists: None,
                method: None,
                pid: None,
                rule: 0,
            };
            hand_events(set, 0, r, std::slice::from_mut(&mut ev));
            set.poll_commit(r.engine)
        };
        for _ in 0..3 {
            fake.pass(10);
            assert!(attack(&mut set).is_none());
        }
        fake.step(-86_400);
        fake.pass(10);
        assert!(attack(&mut set).is_none(), "4 of 5");
        fake.pass(10);
        let commit = attack(&mut set).expect("the 5th failure is a ban");
        let ban = match &commit.decisions[..] {
            [Decision::Ban(b)] => b.clone(),
            other => panic!("expected one ban, got {other:?}"),
        };
        assert_eq!(
            ban.until.map(|u| u.since(ban.since)),
            Some(Duration::from_secs(600))
        );
        // The store gets it on wall time: it starts at the (stepped) wall time now.
        let r = clock.read();
        let Decision::Ban(stored) = r.decision_to_wall(&commit.decisions[0]) else {
            unreachable!()
        };
        assert_eq!(stored.since, r.wall);
        assert_eq!(
            stored.until,
            Some(r.wall.saturating_add(Duration::from_secs(600)))
        );

        // Two days forward: the ban does not end before its 10 minutes of real time.
        fake.step(2 * 86_400);
        fake.pass(60);
        set.handle_timeout(clock.now());
        assert!(set.poll_commit(clock.now()).is_none(), "ended early");
        assert!(
            set.engine(0)
                .banned_by("198.51.100.7".parse().expect("addr"))
                .is_some()
        );
        let wait = set.poll_timeout().map(|t| t.since(clock.now()));
        assert_eq!(
            wait,
            Some(Duration::from_secs(540)),
            "the loop sleeps the rest of it"
        );
        fake.pass(540);
        set.handle_timeout(clock.now());
        let commit = set.poll_commit(clock.now()).expect("the expiry");
        assert!(matches!(commit.decisions[..], [Decision::Unban { .. }]));
    }
}
