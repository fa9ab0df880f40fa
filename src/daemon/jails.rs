//! A jail's line side as the daemon runs it: its filter and one line matcher per source it
//! reads. Its events go to the jail's engine in the [`JailSet`](super::jail_set::JailSet).

use std::collections::HashMap;

use anyhow::{Context, Result};
use portcullis_config::JailSpec;
use portcullis_core::{Event, EventKind};
use portcullis_sources::SourceLine;

use crate::pipeline::{AnyMatcher, JailFilter};

/// One configured jail's filter at run time.
pub struct LiveJail {
    /// The configuration it was built from (its sources are started from it).
    pub spec: JailSpec,
    /// One matcher per source index: each source has its own date cache and attempt merging.
    matchers: HashMap<usize, AnyMatcher>,
    /// A compiled filter (native or Fail2Ban) to make matchers from.
    filter: JailFilter,
    tz: jiff::tz::TimeZone,
}

impl LiveJail {
    /// A jail's filter side; matchers are made per source on its first line.
    pub fn new(spec: JailSpec, filter: JailFilter, tz: jiff::tz::TimeZone) -> LiveJail {
        LiveJail {
            spec,
            matchers: HashMap::new(),
            filter,
            tz,
        }
    }

    /// Match one line from source `source`: `events` gets what it says (cleared first).
    pub fn feed(
        &mut self,
        source: usize,
        line: &SourceLine,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let matcher = match self.matchers.get_mut(&source) {
            Some(m) => m,
            None => {
                let m = self
                    .filter
                    .matcher(&self.tz)
                    .with_context(|| format!("jail {}", self.spec.name))?;
                self.matchers.entry(source).or_insert(m)
            }
        };
        events.clear();
        match &line.journal {
            Some(fields) => {
                let program = fields
                    .identifier
                    .as_deref()
                    .and_then(|b| std::str::from_utf8(b).ok());
                let time = fields.realtime.unwrap_or(line.read_at);
                matcher.feed_record(time, program, fields.pid, &line.bytes, events);
            }
            None => {
                matcher.feed_line(&line.bytes, line.read_at, events);
            }
        }
        for ev in events.iter().filter(|ev| ev.kind == EventKind::Success) {
            tracing::info!(jail = %self.spec.name, addr = %ev.addr, user = ?ev.user, "successful login");
        }
        Ok(())
    }
}
