//! A simulated jail: a fake clock from a fixed epoch, scripted events and a decision log.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use crate::event::{Decision, Event, EventKind, Weight};
use crate::jail::{Command, CommandError, JailConfig, JailEngine, Restored};
use crate::time::Time;

/// The simulation's time zero: 2026-01-01T00:00:00Z.
pub(crate) const EPOCH: Time = Time::from_secs(1_767_225_600);

/// `EPOCH + secs`.
pub(crate) fn at(secs: i64) -> Time {
    Time::from_micros(EPOCH.as_micros() + secs * 1_000_000)
}

/// Minutes as a `Duration`.
pub(crate) fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// An event of `kind` from `addr` at `time`, weight one, count one.
pub(crate) fn event(kind: EventKind, addr: &str, time: Time) -> Event {
    Event {
        time,
        addr: ip(addr),
        kind,
        weight: if matches!(kind, EventKind::Attempt | EventKind::Probe) {
            Weight::ONE
        } else {
            Weight::ZERO
        },
        count: 1,
        user: None,
        user_exists: None,
        method: None,
        pid: None,
        rule: 0,
    }
}

pub(crate) fn attempt(addr: &str, time: Time) -> Event {
    event(EventKind::Attempt, addr, time)
}

/// A failed attempt naming `user`.
pub(crate) fn attempt_as(addr: &str, user: &str, time: Time) -> Event {
    Event {
        user: Some(user.into()),
        ..attempt(addr, time)
    }
}

pub(crate) fn success(addr: &str, user: &str, time: Time) -> Event {
    Event {
        user: Some(user.into()),
        ..event(EventKind::Success, addr, time)
    }
}

/// The brief's `handle(event, now) -> Vec<Decision>`: one event in, everything it caused out.
pub(crate) fn handle(engine: &mut JailEngine, event: &Event, now: Time) -> Vec<Decision> {
    engine.handle_event(now, event);
    drain(engine)
}

/// The brief's `tick(now) -> Vec<Decision>`.
pub(crate) fn tick(engine: &mut JailEngine, now: Time) -> Vec<Decision> {
    engine.handle_timeout(now);
    drain(engine)
}

pub(crate) fn drain(engine: &mut JailEngine) -> Vec<Decision> {
    std::iter::from_fn(|| engine.poll_decision()).collect()
}

/// One jail driven by a fake clock that jumps to the next scripted event or deadline,
/// whichever comes first (like quinn-proto's test `Pair`).
pub(crate) struct Sim {
    pub(crate) engine: JailEngine,
    /// The fake clock.
    pub(crate) now: Time,
    /// Events still to deliver, in delivery order; each is delivered at its own time (as
    /// `scan` does) or at `now` if that is later.
    script: VecDeque<Event>,
    /// Every decision with the clock when it came out.
    pub(crate) log: Vec<(Time, Decision)>,
}

impl Sim {
    pub(crate) fn new(config: JailConfig) -> Sim {
        Sim::restored(config, Restored::default())
    }

    pub(crate) fn restored(config: JailConfig, restored: Restored) -> Sim {
        Sim {
            engine: JailEngine::new(config, restored),
            now: EPOCH,
            script: VecDeque::new(),
            log: Vec::new(),
        }
    }

    /// Queues an event.
    pub(crate) fn push(&mut self, event: Event) -> &mut Sim {
        self.script.push_back(event);
        self
    }

    /// Queues `n` attempts from `addr`, `every` seconds apart from `start`.
    pub(crate) fn attempts(&mut self, addr: &str, start: i64, every: i64, n: usize) -> &mut Sim {
        for i in 0..n {
            self.push(attempt(addr, at(start + every * i as i64)));
        }
        self
    }

    /// Runs one step: the next event or the next deadline. `false` when idle.
    pub(crate) fn step(&mut self) -> bool {
        let next_event = self.script.front().map(|e| e.time.max(self.now));
        let deadline = self.engine.poll_timeout().map(|t| t.max(self.now));
        match (next_event, deadline) {
            (Some(e), d) if d.is_none_or(|d| e <= d) => {
                let event = self.script.pop_front().expect("peeked");
                self.now = e;
                self.engine.handle_event(self.now, &event);
            }
            (_, Some(d)) => {
                self.now = d;
                self.engine.handle_timeout(self.now);
            }
            (Some(_), None) => unreachable!("the first arm takes it"),
            (None, None) => return false,
        }
        self.collect();
        true
    }

    /// Runs to idle (no events left, no deadline pending).
    pub(crate) fn drive(&mut self) {
        self.drive_bounded(100_000);
    }

    /// Runs to idle, panicking after `max_steps` (a livelock: a deadline that never passes).
    pub(crate) fn drive_bounded(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            if !self.step() {
                return;
            }
        }
        panic!(
            "simulation still busy after {max_steps} steps (now {})",
            self.now
        );
    }

    /// Runs the script's events and deadlines up to `t`, then sets the clock to `t`.
    pub(crate) fn run_until(&mut self, t: Time) {
        loop {
            let next_event = self.script.front().map(|e| e.time.max(self.now));
            let deadline = self.engine.poll_timeout();
            let next = match (next_event, deadline) {
                (Some(e), Some(d)) => e.min(d),
                (a, b) => match a.or(b) {
                    Some(x) => x,
                    None => break,
                },
            };
            if next > t || !self.step() {
                break;
            }
        }
        self.now = self.now.max(t);
        self.engine.handle_timeout(self.now);
        self.collect();
    }

    /// An administrator's command at the current clock.
    pub(crate) fn command(&mut self, cmd: Command) -> Result<(), CommandError> {
        let r = self.engine.handle_command(self.now, cmd);
        self.collect();
        r
    }

    fn collect(&mut self) {
        while let Some(d) = self.engine.poll_decision() {
            self.log.push((self.now, d));
        }
    }

    /// The bans in the log, in order.
    pub(crate) fn bans(&self) -> Vec<(Time, crate::event::Ban)> {
        self.log
            .iter()
            .filter_map(|(t, d)| match d {
                Decision::Ban(b) => Some((*t, b.clone())),
                _ => None,
            })
            .collect()
    }

    /// The unbans in the log: (clock, target, reason).
    pub(crate) fn unbans(&self) -> Vec<(Time, ipnet::IpNet, crate::event::UnbanReason)> {
        self.log
            .iter()
            .filter_map(|(t, d)| match d {
                Decision::Unban { target, reason, .. } => Some((*t, *target, *reason)),
                _ => None,
            })
            .collect()
    }

    /// The alerts in the log.
    pub(crate) fn alerts(&self) -> Vec<crate::event::Alert> {
        self.log
            .iter()
            .filter_map(|(_, d)| match d {
                Decision::Alert(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }
}
