//! The batch loop of the sources that wait for input (the file tail and the journal): one
//! place keeps the [`LineSource`] contract for both, and each source supplies only its steps.

use std::time::{Duration, Instant};

use crate::error::ReadError;
use crate::line::{LineSource, ReadStatus, SourceLine};
use crate::stop::StopHandle;

/// The steps of a source that waits for input. Public only inside this crate's private
/// module (a sealed trait): other crates see the [`LineSource`] it gives, not the steps.
pub trait WaitingSource: Send {
    /// The handle checked before every step.
    fn stop(&self) -> &StopHandle;
    /// Called once the stop handle fired, before `Stopped` is returned.
    fn on_stop(&mut self) {}
    /// Append up to `room` lines that can be had without waiting.
    fn take_ready(&mut self, out: &mut Vec<SourceLine>, room: usize) -> Result<(), ReadError>;
    /// The input ended: once nothing is ready, the batch ends as [`ReadStatus::Finished`].
    fn finished(&self) -> bool {
        false
    }
    /// Wait at most `left` (never zero) for input, or do the work that brings it (a rescan,
    /// a restart); the loop then takes what is ready again.
    fn wait_for_input(&mut self, left: Duration) -> Result<(), ReadError>;
    /// See [`LineSource::untrusted`].
    fn untrusted(&self) -> u64 {
        0
    }
}

/// The batch: returns as soon as a step appended lines (or `max` is 0), `Finished` when the
/// input ended with nothing left, and `Live` with no lines once `timeout` is spent.
impl<S: WaitingSource> LineSource for S {
    fn read_batch(
        &mut self,
        out: &mut Vec<SourceLine>,
        max: usize,
        timeout: Duration,
    ) -> Result<ReadStatus, ReadError> {
        let deadline = Instant::now() + timeout;
        let start = out.len();
        loop {
            if self.stop().is_stopped() {
                self.on_stop();
                return Ok(ReadStatus::Stopped);
            }
            self.take_ready(out, max.saturating_sub(out.len() - start))?;
            if out.len() > start || max == 0 {
                return Ok(ReadStatus::Live);
            }
            if self.finished() {
                return Ok(ReadStatus::Finished);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(ReadStatus::Live);
            }
            self.wait_for_input(left)?;
        }
    }

    fn untrusted(&self) -> u64 {
        WaitingSource::untrusted(self)
    }

    fn stop_handle(&self) -> StopHandle {
        self.stop().clone()
    }
}
