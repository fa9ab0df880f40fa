//! A jail's line side as the daemon runs it: its compiled filter and one matcher per source
//! it reads. Its events go to the jail's engine in the [`JailSet`](super::jail_set::JailSet).

use std::collections::HashMap;

use portcullis_config::JailSpec;
use portcullis_core::filter::{EventMatcher, Stats};
use portcullis_core::{Event, EventKind};
use portcullis_sources::SourceLine;

use crate::filters::{CompiledFilter, Matcher};

/// One configured jail's filter at run time.
pub struct LiveJail {
    /// The configuration it was built from (its sources are started from it).
    pub spec: JailSpec,
    /// One matcher per source index: each source has its own date cache and attempt merging.
    matchers: HashMap<usize, Matcher>,
    /// The filter, compiled once per configuration load; matchers are forked from it.
    filter: CompiledFilter,
    /// Events its matchers produced since this load, by kind (attempt, probe, success,
    /// info), for the metrics.
    pub events_by_kind: [u64; 4],
}

impl LiveJail {
    /// A jail's filter side; matchers are made per source on its first line.
    pub fn new(spec: JailSpec, filter: CompiledFilter) -> LiveJail {
        LiveJail {
            spec,
            matchers: HashMap::new(),
            filter,
            events_by_kind: [0; 4],
        }
    }

    /// The line counters of all its matchers together.
    pub fn line_stats(&self) -> Stats {
        let mut all = Stats::default();
        for m in self.matchers.values() {
            all.add(m.stats());
        }
        all
    }

    /// The line counters of its matcher for source `source`, if it has read from it.
    pub fn source_stats(&self, source: usize) -> Option<&Stats> {
        self.matchers.get(&source).map(|m| m.stats())
    }

    /// Match one line from source `source`: `events` gets what it says (cleared first).
    pub fn feed(&mut self, source: usize, line: &SourceLine, events: &mut Vec<Event>) {
        let filter = &self.filter;
        let matcher = self
            .matchers
            .entry(source)
            .or_insert_with(|| filter.matcher());
        events.clear();
        matcher.feed_source_line(line, events);
        for ev in events.iter() {
            let k = match ev.kind {
                EventKind::Attempt => 0,
                EventKind::Probe => 1,
                EventKind::Success => {
                    tracing::info!(jail = %self.spec.name, addr = %ev.addr, user = ?ev.user, "successful login");
                    2
                }
                EventKind::Info => 3,
            };
            self.events_by_kind[k] += 1;
        }
    }
}
