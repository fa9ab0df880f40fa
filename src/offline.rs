//! Jails run offline (`scan`, `investigate`): each jail's matcher and its engine, with log
//! time as the engine's clock.

use std::path::Path;

use anyhow::Result;
use portcullis_config::JailSpec;
use portcullis_core::filter::{EventMatcher, LineMatcher, LineOutcome, Stats};
use portcullis_core::jail::{JailEngine, Restored, SuccessVerdict};
use portcullis_core::{Decision, Event, EventKind, Time};
use portcullis_sources::SourceLine;

use crate::filters::{CompiledFilter, Matcher, compile_jails, time_zone};

/// One jail of an offline run: its filter's matcher and a fresh engine.
pub struct OfflineJail {
    matcher: Matcher,
    engine: JailEngine,
}

impl OfflineJail {
    /// A jail for `spec` with a fresh engine (nothing restored).
    pub fn new(spec: &JailSpec, filter: &CompiledFilter) -> OfflineJail {
        OfflineJail {
            matcher: filter.matcher(),
            engine: JailEngine::new(spec.config.clone(), Restored::default()),
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

    /// Give one event to the engine, at the event's own time (log time is the clock). For a
    /// success, returns what the breach rule says of it
    /// ([`JailEngine::judge_success`]: the engine raises its breach alert for exactly these).
    pub fn handle_event(&mut self, ev: &Event) -> Option<SuccessVerdict> {
        let verdict = (ev.kind == EventKind::Success).then(|| {
            self.engine.handle_timeout(ev.time);
            self.engine.judge_success(ev.addr, ev.time)
        });
        self.engine.handle_event(ev.time, ev);
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
