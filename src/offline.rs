//! Jails run offline (`scan`, `investigate`): each jail's matcher and its engine, with log
//! time as the engine's clock, placed by core's [`LogClock`] so that one line dated far off
//! (2099, say) cannot freeze the clock and make every later attack count for nothing.

use std::path::Path;

use anyhow::Result;
use portcullis_config::JailSpec;
use portcullis_core::filter::{EventMatcher, LineMatcher, LineOutcome, Stats};
use portcullis_core::jail::{
    JailEngine, LogClock, LogClockStats, Placement, Restored, SuccessVerdict,
};
use portcullis_core::{Decision, Event, EventKind, Time};
use portcullis_sources::SourceLine;

use crate::filters::{CompiledFilter, Matcher, compile_jails, time_zone};

/// One jail of an offline run: its filter's matcher, a fresh engine and the log clock that
/// places each event's time.
pub struct OfflineJail {
    matcher: Matcher,
    engine: JailEngine,
    clock: LogClock,
    /// The event the clock holds back until the next one confirms its time.
    held: Option<Event>,
}

impl OfflineJail {
    /// A jail for `spec` with a fresh engine (nothing restored).
    pub fn new(spec: &JailSpec, filter: &CompiledFilter) -> OfflineJail {
        OfflineJail {
            matcher: filter.matcher(),
            engine: JailEngine::new(spec.config.clone(), Restored::default()),
            clock: LogClock::new(LogClock::DEFAULT_MAX_SKEW),
            held: None,
        }
    }

    /// The jail's name.
    pub fn name(&self) -> &str {
        &self.engine.config().name
    }

    /// The id of rule `idx` of this jail's filter.
    pub fn rule_name(&self, idx: u16) -> &str {
        self.matcher.rule_name(idx)
    }

    /// Match one line; `reference` is the read time (year reference and fallback time).
    pub fn feed_line(&mut self, line: &[u8], reference: Time, out: &mut Vec<Event>) -> LineOutcome {
        self.matcher.feed_line(line, reference, out)
    }

    /// Match one line as a source delivered it (a journal record or a raw line).
    pub fn feed_source_line(&mut self, line: &SourceLine, out: &mut Vec<Event>) -> LineOutcome {
        self.matcher.feed_source_line(line, out)
    }

    /// The next lines come from an input last written at `reference` (a file's mtime, the
    /// read time of the journal): no line of it is believed to be newer (see [`LogClock`]).
    pub fn begin_input(&mut self, reference: Time) {
        self.clock.set_reference(Some(reference));
    }

    /// Give one event to the engine at the time the log clock places it (its own time,
    /// unless that is not believable). `handed` is called for each event the engine takes
    /// now, in order: usually just `ev`; a held event first, when `ev` decides where it
    /// goes; none when `ev` itself is held. For a success it gets what the breach rule says
    /// of it ([`JailEngine::judge_success`]: the engine raises its breach alert for exactly
    /// these).
    pub fn handle_event(
        &mut self,
        ev: &Event,
        mut handed: impl FnMut(&Event, Option<SuccessVerdict>),
    ) {
        let placed = self.clock.place(ev.time);
        // Take the held event only when the clock releases it: a line the clock does not
        // believe (dated after the input) releases nothing, and the held event stays held.
        if let Some(now) = placed.released
            && let Some(held) = self.held.take()
        {
            let verdict = self.feed(now, &held);
            handed(&held, verdict);
        }
        match placed.this {
            Placement::Now(now) => {
                let verdict = self.feed(now, ev);
                handed(ev, verdict);
            }
            Placement::Hold => self.held = Some(ev.clone()),
            Placement::Drop => {}
        }
    }

    /// The end of the input for the matcher: the events it still holds back (a connection's
    /// tentative try that no later line settled) go to `out`, to be handled like a line's.
    /// Call before [`finish`](Self::finish).
    pub fn finish_matching(&mut self, out: &mut Vec<Event>) {
        self.matcher.finish(out);
    }

    /// The end of the input: the engine takes the event still held, if any.
    pub fn finish(&mut self, mut handed: impl FnMut(&Event, Option<SuccessVerdict>)) {
        if let (Some(now), Some(held)) = (self.clock.finish(), self.held.take()) {
            let verdict = self.feed(now, &held);
            handed(&held, verdict);
        }
    }

    /// Events whose time the log clock did not believe, by rule.
    pub fn bad_time(&self) -> LogClockStats {
        self.clock.stats()
    }

    fn feed(&mut self, now: Time, ev: &Event) -> Option<SuccessVerdict> {
        let verdict = (ev.kind == EventKind::Success).then(|| {
            self.engine.handle_timeout(now);
            self.engine.judge_success(ev.addr, ev.time)
        });
        self.engine.handle_event(now, ev);
        verdict
    }

    /// The next decision, if any.
    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.engine.poll_decision()
    }

    /// Line counters of the filter.
    pub fn stats(&self) -> &Stats {
        self.matcher.stats()
    }

    /// The jail's matcher when its filter is native (`scan` matches on worker threads).
    pub fn native_matcher(&self) -> Option<&LineMatcher> {
        self.matcher.native()
    }
}

/// The jails of every enabled jail (or only `only`) of the TOML configuration at
/// `config_path` (the embedded default without one), or of the Fail2Ban configuration in
/// `fail2ban_dir` when given; `tz` is `--timezone`.
pub fn load_jails(
    config_path: Option<&Path>,
    fail2ban_dir: Option<&Path>,
    only: Option<&str>,
    tz: Option<&str>,
) -> Result<Vec<OfflineJail>> {
    let config = match fail2ban_dir {
        Some(dir) => crate::config::load_fail2ban_offline(dir)?,
        None => crate::config::load_offline(config_path)?,
    };
    let tz = time_zone(tz, &config)?;
    Ok(compile_jails(&config, only, &tz)?
        .iter()
        .map(|(spec, filter)| OfflineJail::new(spec, filter))
        .collect())
}
