//! [`LogClock`]: log time as an engine clock that one bad line cannot freeze.

use std::time::Duration;

use crate::time::Time;

/// The engine clock of an offline run (`scan`, `investigate`): the time of the events
/// themselves, with bounded skew, so that a line dated 2099 (or any far-off line) cannot
/// move the clock for the rest of the input. A [`JailEngine`](super::JailEngine) holds its
/// clock at the largest `now` it saw; fed raw log times, one future line would make every
/// later attack "older than `findtime`" and count for nothing.
///
/// # Rules
///
/// Each event time `t` is placed ([`place`](Self::place)); `c` is the clock (the largest
/// trusted time so far) and `skew` the bound ([`DEFAULT_MAX_SKEW`](Self::DEFAULT_MAX_SKEW)):
///
/// 1. **After the input.** No line is newer than its file's last write: a `t` later than the
///    input's reference time (file mtime, or the read time of a journal) plus
///    [`FUTURE_SLACK`] (for time-zone mistakes) is bad time. It is handed to the engine at
///    `c` (it counts, as if read now; dropped if there is no clock yet) and moves nothing.
/// 2. **Jumps need a witness.** A `t` more than `skew` ahead of `c` is *held*: the next
///    event decides. If that one is also more than `skew` ahead of `c` and not more than
///    `skew` before the held time, the stream really moved (a quiet hour, a new file): the
///    held event is handed over at its own time, and the clock follows. Otherwise it was a
///    lone far-off line: bad time, handed over at `c`. A held event still held at the end of
///    the input ([`finish`](Self::finish)) is trusted: nothing comes after it to freeze.
/// 3. **The first event** is held the same way (there is no clock to compare with): the
///    next one confirms it unless it is more than `skew` before it; then the first was the
///    far-off line: bad time, handed over at the witness's time, which starts the clock.
/// 4. **Far past.** A `t` more than `skew` before `c` is bad time too (counted, visible), and
///    is handed over at its own time: the engine holds its clock, so it counts only if it is
///    still inside the window, as an out-of-order line always did.
/// 5. Everything else is trusted and handed over at its own time.
///
/// So on an honest, time-ordered log the engine sees exactly the times it saw before (held
/// events are handed over before the next one, in order), and a forger needs two
/// consecutive events beyond `skew` to move the clock at all.
#[derive(Clone, Debug)]
pub struct LogClock {
    max_skew: Duration,
    /// The latest believable time of the current input (reference + slack).
    horizon: Option<Time>,
    clock: Option<Time>,
    /// The time of the held event, if one is held.
    held: Option<Time>,
    stats: LogClockStats,
}

/// How far a line may be dated after its input's reference time (a wrong time zone shifts
/// times by up to 14 hours).
pub const FUTURE_SLACK: Duration = Duration::from_secs(24 * 3600);

/// Where an event goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Hand it to the engine with this `now` (the engine holds an event dated later than
    /// its clock at the clock).
    Now(Time),
    /// Keep it: the next [`place`](LogClock::place) (or [`finish`](LogClock::finish)) says
    /// where it goes.
    Hold,
    /// Bad time and no clock yet: it cannot be placed; count it and go on.
    Drop,
}

/// What [`LogClock::place`] decided.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Where the event held before goes (hand it over BEFORE this one), if one was held.
    pub released: Option<Time>,
    /// Where this event goes.
    pub this: Placement,
}

/// Events whose time was not believed, by rule.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LogClockStats {
    /// Dated after their input's reference time plus [`FUTURE_SLACK`].
    pub after_input: u64,
    /// A jump ahead that the next event did not confirm.
    pub unconfirmed: u64,
    /// More than the skew before the clock.
    pub past: u64,
}

impl LogClockStats {
    /// All events counted as bad time.
    pub fn total(&self) -> u64 {
        self.after_input + self.unconfirmed + self.past
    }
}

impl LogClock {
    /// The skew beyond which a time needs a witness: a lone forged line within it can move
    /// the clock ahead by at most this much, which shortens windows by at most this much.
    /// Small, because holding an event costs only a copy of it until the next one.
    pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(60);

    /// A clock with no time yet and no reference.
    pub fn new(max_skew: Duration) -> LogClock {
        LogClock {
            max_skew,
            horizon: None,
            clock: None,
            held: None,
            stats: LogClockStats::default(),
        }
    }

    /// The next events come from an input last written at `reference` (`None`: unknown).
    /// The clock and a held event carry over: rotated files continue each other.
    pub fn set_reference(&mut self, reference: Option<Time>) {
        self.horizon = reference.map(|r| r.saturating_add(FUTURE_SLACK));
    }

    /// The clock: the largest trusted time so far.
    pub fn now(&self) -> Option<Time> {
        self.clock
    }

    /// Counts of bad time so far.
    pub fn stats(&self) -> LogClockStats {
        self.stats
    }

    /// Place an event dated `t` (see the rules on the type).
    pub fn place(&mut self, t: Time) -> Placed {
        if self.horizon.is_some_and(|h| t > h) {
            self.stats.after_input += 1;
            return Placed {
                released: None,
                this: self.clock.map_or(Placement::Drop, Placement::Now),
            };
        }
        let Some(mut clock) = self.clock else {
            return self.place_first(t);
        };
        let released = self.held.take().map(|h| {
            if t > clock.saturating_add(self.max_skew) && t >= h.saturating_sub(self.max_skew) {
                clock = clock.max(h);
                h
            } else {
                self.stats.unconfirmed += 1;
                clock
            }
        });
        self.clock = Some(clock);
        let this = if t > clock.saturating_add(self.max_skew) {
            self.held = Some(t);
            Placement::Hold
        } else {
            if t < clock.saturating_sub(self.max_skew) {
                self.stats.past += 1;
            }
            self.clock = Some(clock.max(t));
            Placement::Now(t)
        };
        Placed { released, this }
    }

    /// `place` before the clock started: the first event is held, its witness decides.
    fn place_first(&mut self, t: Time) -> Placed {
        let Some(h) = self.held.take() else {
            self.held = Some(t);
            return Placed {
                released: None,
                this: Placement::Hold,
            };
        };
        if t < h.saturating_sub(self.max_skew) {
            self.stats.unconfirmed += 1;
            self.clock = Some(t);
            return Placed {
                released: Some(t),
                this: Placement::Now(t),
            };
        }
        self.clock = Some(h);
        let mut placed = self.place(t);
        placed.released = Some(h);
        placed
    }

    /// The end of the input: where the held event goes, if one is held (trusted: nothing
    /// comes after it).
    pub fn finish(&mut self) -> Option<Time> {
        let h = self.held.take()?;
        self.clock = Some(self.clock.map_or(h, |c| c.max(h)));
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn at(s: i64) -> Time {
        Time::from_secs(T0 + s)
    }

    fn now(t: i64) -> Placement {
        Placement::Now(at(t))
    }

    fn clock() -> LogClock {
        let mut c = LogClock::new(Duration::from_secs(600));
        c.set_reference(Some(at(100_000)));
        c
    }

    fn placed(c: &mut LogClock, t: i64) -> (Option<i64>, Placement) {
        let p = c.place(at(t));
        (p.released.map(|r| r.as_secs() - T0), p.this)
    }

    #[test]
    fn an_honest_ordered_stream_keeps_its_own_times() {
        let mut c = clock();
        // The first waits for a witness.
        assert_eq!(placed(&mut c, 0), (None, Placement::Hold));
        assert_eq!(placed(&mut c, 5), (Some(0), now(5)));
        for t in [5, 60, 500, 1000] {
            assert_eq!(placed(&mut c, t), (None, now(t)));
        }
        assert_eq!(c.stats().total(), 0);
        assert_eq!(c.now(), Some(at(1000)));
    }

    #[test]
    fn a_line_after_the_inputs_last_write_is_bad_time_and_moves_nothing() {
        let mut c = clock();
        // Before any clock: nowhere to put it.
        assert_eq!(placed(&mut c, 100_000 + 86_401), (None, Placement::Drop));
        assert_eq!(placed(&mut c, 0), (None, Placement::Hold));
        assert_eq!(placed(&mut c, 0), (Some(0), now(0)));
        // 2099.
        let far = c.place(Time::from_secs(4_070_908_800));
        assert_eq!(far.this, now(0), "counted at the clock");
        assert_eq!(placed(&mut c, 10), (None, now(10)));
        assert_eq!(c.stats().after_input, 2);
        assert_eq!(c.now(), Some(at(10)));
    }

    #[test]
    fn a_lone_jump_is_bad_time_a_confirmed_one_moves_the_clock() {
        let mut c = clock();
        placed(&mut c, 0);
        placed(&mut c, 0);
        // Forged: 50 000 s ahead (within the horizon), then the stream goes on at 20.
        assert_eq!(placed(&mut c, 50_000), (None, Placement::Hold));
        assert_eq!(
            placed(&mut c, 20),
            (Some(0), now(20)),
            "handed over at the clock"
        );
        assert_eq!(c.stats().unconfirmed, 1);
        assert_eq!(c.now(), Some(at(20)));
        // A quiet hour, then the stream really continues later.
        assert_eq!(placed(&mut c, 3620), (None, Placement::Hold));
        assert_eq!(placed(&mut c, 3625), (Some(3620), now(3625)));
        assert_eq!(c.now(), Some(at(3625)));
        // Growing gaps confirm each other: 2 h, 4 h, 6 h later.
        assert_eq!(placed(&mut c, 7225), (None, Placement::Hold));
        assert_eq!(placed(&mut c, 14_425), (Some(7225), Placement::Hold));
        assert_eq!(placed(&mut c, 21_625), (Some(14_425), Placement::Hold));
        // The end of the input trusts the last held one.
        assert_eq!(c.finish(), Some(at(21_625)));
        assert_eq!(c.finish(), None);
        assert_eq!(c.stats().unconfirmed, 1);
    }

    #[test]
    fn a_jump_beyond_its_witness_is_not_confirmed_by_a_nearer_one() {
        let mut c = clock();
        placed(&mut c, 0);
        placed(&mut c, 0);
        // Forged far ahead, then a real quiet gap of an hour: the witness is far before the
        // held time, so the forged line does not win; the witness is held in its turn.
        assert_eq!(placed(&mut c, 80_000), (None, Placement::Hold));
        assert_eq!(placed(&mut c, 3600), (Some(0), Placement::Hold));
        assert_eq!(placed(&mut c, 3601), (Some(3600), now(3601)));
        assert_eq!(c.now(), Some(at(3601)));
    }

    #[test]
    fn a_far_off_first_line_does_not_start_the_clock() {
        let mut c = clock();
        assert_eq!(placed(&mut c, 50_000), (None, Placement::Hold));
        assert_eq!(
            placed(&mut c, 0),
            (Some(0), now(0)),
            "handed over at the witness"
        );
        assert_eq!(c.stats().unconfirmed, 1);
        assert_eq!(c.now(), Some(at(0)));
        // A lone first event is trusted at the end.
        let mut c = clock();
        assert_eq!(placed(&mut c, 7), (None, Placement::Hold));
        assert_eq!(c.finish(), Some(at(7)));
    }

    #[test]
    fn far_past_lines_are_bad_time_at_their_own_time() {
        let mut c = clock();
        placed(&mut c, 5000);
        placed(&mut c, 5000);
        assert_eq!(placed(&mut c, 4500), (None, now(4500)), "within the skew");
        assert_eq!(placed(&mut c, 0), (None, now(0)));
        assert_eq!(c.stats().past, 1);
        assert_eq!(c.now(), Some(at(5000)));
    }

    /// The offline driver's loop: each event through the clock into an engine, held
    /// events handed over in order; the bans it decided, as (target, since).
    fn drive(events: &[crate::Event]) -> (Vec<(ipnet::IpNet, Time)>, LogClockStats) {
        use crate::Decision;
        use crate::jail::{JailConfig, JailEngine, Restored};
        let mut c = clock();
        let mut engine = JailEngine::new(JailConfig::new("sshd"), Restored::default());
        let mut held: Option<crate::Event> = None;
        let mut bans = Vec::new();
        let mut feed = |engine: &mut JailEngine, now: Time, ev: &crate::Event| {
            engine.handle_event(now, ev);
            while let Some(d) = engine.poll_decision() {
                if let Decision::Ban(b) = d {
                    bans.push((b.target, b.since));
                }
            }
        };
        for ev in events {
            let p = c.place(ev.time);
            if let Some(now) = p.released
                && let Some(h) = held.take()
            {
                feed(&mut engine, now, &h);
            }
            match p.this {
                Placement::Now(now) => feed(&mut engine, now, ev),
                Placement::Hold => held = Some(ev.clone()),
                Placement::Drop => {}
            }
        }
        if let (Some(now), Some(h)) = (c.finish(), held.take()) {
            feed(&mut engine, now, &h);
        }
        (bans, c.stats())
    }

    fn attempt(addr: &str, t: Time) -> crate::Event {
        crate::Event {
            time: t,
            addr: addr.parse().unwrap(),
            kind: crate::EventKind::Attempt,
            weight: crate::Weight::ONE,
            count: 1,
            user: None,
            user_exists: None,
            method: None,
            pid: None,
            rule: 0,
        }
    }

    #[test]
    fn one_line_dated_2099_no_longer_freezes_the_clock() {
        // Issue 10.5: with log time as the raw clock, this line froze the engine in 2099
        // and the attack after it counted for nothing.
        let mut events = vec![attempt("198.51.100.9", at(0))];
        events.push(attempt("203.0.113.1", Time::from_secs(4_070_908_800)));
        events.extend((1..=5).map(|i| attempt("198.51.100.7", at(10 * i))));
        let (bans, stats) = drive(&events);
        assert_eq!(bans.len(), 1, "{bans:?}");
        assert_eq!(
            bans[0].1,
            at(50),
            "banned at the 5th attempt, at its own time"
        );
        assert_eq!(stats.total(), 1);
    }

    use proptest::prelude::*;

    static HAD_BANS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// An honest, time-ordered attack (gaps of any length) gives the bans of raw log
        /// time; one forged line at any place, dated more than the skew away from the
        /// stream (up to the horizon, or beyond it), changes none of them.
        #[test]
        fn one_forged_line_changes_no_ban(
            gaps in prop::collection::vec((0i64..240, 0usize..3), 1..200),
            forged_at in any::<prop::sample::Index>(),
            forged_time in prop_oneof![0i64..200_000, Just(4_070_908_800 - T0)],
            quiet in prop::collection::vec(0i64..20_000, 0..3),
        ) {
            let addrs = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
            let mut t = 0;
            let mut honest = Vec::new();
            for (i, (gap, a)) in gaps.iter().enumerate() {
                t += gap + quiet.get(i % 40).copied().filter(|_| i % 40 == 0).unwrap_or(0);
                honest.push(attempt(addrs[*a], at(t)));
            }
            let mut raw = JailEngineRaw::default();
            for ev in &honest {
                raw.feed(ev);
            }
            let (bans, stats) = drive(&honest);
            prop_assert_eq!(&bans, &raw.bans, "honest stream: the raw-time bans");
            prop_assert_eq!(stats.total(), 0);
            let mut forged = honest.clone();
            let pos = forged_at.index(forged.len() + 1);
            let stream = honest[..pos].iter().map(|e| e.time).max();
            prop_assume!(stream.is_none_or(|c| at(forged_time).since(c) > Duration::from_secs(600)
                || c.since(at(forged_time)) > Duration::from_secs(600)));
            forged.insert(pos, attempt("203.0.113.66", at(forged_time)));
            let (with_forged, _) = drive(&forged);
            let others: Vec<_> = with_forged
                .into_iter()
                .filter(|(target, _)| target.addr().to_string() != "203.0.113.66")
                .collect();
            prop_assert_eq!(others, bans);
            HAD_BANS.fetch_add(u64::from(!raw.bans.is_empty()), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// An engine fed raw log time (the old driver), for comparison on honest input.
    #[derive(Default)]
    struct JailEngineRaw {
        engine: Option<crate::jail::JailEngine>,
        bans: Vec<(ipnet::IpNet, Time)>,
    }

    impl JailEngineRaw {
        fn feed(&mut self, ev: &crate::Event) {
            use crate::jail::{JailConfig, JailEngine, Restored};
            let engine = self.engine.get_or_insert_with(|| {
                JailEngine::new(JailConfig::new("sshd"), Restored::default())
            });
            engine.handle_event(ev.time, ev);
            while let Some(d) = engine.poll_decision() {
                if let crate::Decision::Ban(b) = d {
                    self.bans.push((b.target, b.since));
                }
            }
        }
    }
}
