//! A jail as the daemon runs it: its engine plus one line matcher per source it reads.

use std::collections::HashMap;

use anyhow::Result;
use portcullis_config::JailSpec;
use portcullis_core::jail::{JailEngine, Restored};
use portcullis_core::{Event, EventKind, Time};
use portcullis_sources::SourceLine;

use crate::filters::{CompiledFilter, Matcher};

/// One configured jail at run time.
pub struct LiveJail {
    /// The configuration it was built from (compared on reload to keep unchanged jails).
    pub spec: JailSpec,
    /// The sans-IO engine.
    pub engine: JailEngine,
    /// One matcher per source index: each source has its own date cache and attempt merging.
    matchers: HashMap<usize, Matcher>,
    /// The compiled filter (native or Fail2Ban) matchers are made from.
    filter: CompiledFilter,
    /// Whole failed attempts seen since start (for `status`).
    pub attempts: u64,
    /// Bans decided since start.
    pub total_bans: u64,
}

impl LiveJail {
    /// A jail with a fresh engine restored from the store's state.
    pub fn new(spec: JailSpec, filter: CompiledFilter, restored: Restored) -> LiveJail {
        let engine = JailEngine::new(spec.config.clone(), restored);
        LiveJail {
            spec,
            engine,
            matchers: HashMap::new(),
            filter,
            attempts: 0,
            total_bans: 0,
        }
    }

    /// Keep the old engine (windows, bans, history) under a new spec/filter: used by reload;
    /// a changed policy is applied to the engine in place.
    pub fn with_engine(spec: JailSpec, filter: CompiledFilter, old: LiveJail) -> LiveJail {
        let mut engine = old.engine;
        if old.spec.config != spec.config {
            engine.reconfigure(spec.config.clone());
        }
        LiveJail {
            spec,
            engine,
            matchers: HashMap::new(),
            filter,
            attempts: old.attempts,
            total_bans: old.total_bans,
        }
    }

    /// The jail's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Feed one line from source `source` and hand its events to the engine at `now`.
    pub fn feed(
        &mut self,
        source: usize,
        line: &SourceLine,
        now: Time,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let filter = &self.filter;
        let matcher = self
            .matchers
            .entry(source)
            .or_insert_with(|| filter.matcher());
        events.clear();
        matcher.feed_source_line(line, events);
        for ev in events.iter() {
            if ev.kind == EventKind::Attempt {
                self.attempts += u64::from(ev.count);
            }
            if matches!(ev.kind, EventKind::Success) {
                tracing::info!(jail = %self.spec.name, addr = %ev.addr, user = ?ev.user, "successful login");
            }
            self.engine.handle_event(now, ev);
        }
        Ok(())
    }
}
