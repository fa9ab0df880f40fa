//! The dry-run backend: logs what it would do and keeps an in-memory picture of the
//! sets, so `list`, `reconcile` and status stay coherent in `portcullis run --dry-run`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::change::{ApplyReport, Change, Plan};

/// How many elements of one batch are logged one by one before a summary.
const LOG_EACH: usize = 50;

/// Pretends to be a firewall. Touches nothing outside this process.
#[derive(Debug, Default)]
pub struct DryRunBackend {
    /// What the kernel would hold: target → expiry instant (`None` = permanent).
    elements: HashMap<IpNet, Option<Instant>>,
}

impl DryRunBackend {
    /// An empty pretend firewall.
    pub fn new() -> DryRunBackend {
        DryRunBackend::default()
    }

    /// Log the setup that would run.
    pub fn setup(&mut self) {
        tracing::info!("dry run: would create the firewall table, sets and rules");
    }

    /// Log the batch and record it.
    pub fn apply(&mut self, changes: &[Change]) -> ApplyReport {
        let started = Instant::now();
        let plan = Plan::from_changes(changes);
        self.apply_plan(plan, started)
    }

    fn apply_plan(&mut self, plan: Plan, started: Instant) -> ApplyReport {
        self.expire();
        let now = Instant::now();
        for (i, target) in plan.remove.iter().enumerate() {
            if i < LOG_EACH {
                tracing::info!(%target, "dry run: would unban");
            }
            self.elements.remove(target);
        }
        for (i, (target, timeout)) in plan.add.iter().enumerate() {
            if i < LOG_EACH {
                tracing::info!(%target, timeout = ?timeout, "dry run: would ban");
            }
            self.elements.insert(*target, timeout.map(|t| now + t));
        }
        let total = plan.add.len() + plan.remove.len();
        if total > 2 * LOG_EACH {
            tracing::info!(
                bans = plan.add.len(),
                unbans = plan.remove.len(),
                "dry run: would apply one batch"
            );
        }
        plan.into_report(u32::from(total > 0), 0, started)
    }

    /// The pretend sets.
    pub fn list(&self) -> Vec<(IpNet, Option<Duration>)> {
        let now = Instant::now();
        let mut v: Vec<_> = self
            .elements
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| u > now))
            .map(|(t, until)| (*t, until.map(|u| u - now)))
            .collect();
        v.sort_by_key(|(t, _)| *t);
        v
    }

    /// Log and record the difference to `desired`.
    pub fn reconcile(&mut self, desired: &[(IpNet, Option<Duration>)]) -> ApplyReport {
        let started = Instant::now();
        let current: HashMap<_, _> = self.list().into_iter().collect();
        let plan = Plan::reconcile(&current, desired);
        self.apply_plan(plan, started)
    }

    /// Log the teardown that would run.
    pub fn teardown(&mut self, flush: bool) {
        if flush {
            tracing::info!("dry run: would delete the firewall table, sets and rules");
            self.elements.clear();
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        self.elements
            .retain(|_, until| until.is_none_or(|u| u > now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reconciles() {
        let mut d = DryRunBackend::new();
        let a: IpNet = "192.0.2.2/32".parse().unwrap();
        let b: IpNet = "198.51.100.0/24".parse().unwrap();
        let r = d.apply(&[
            Change::Add {
                target: a,
                timeout: Some(Duration::from_secs(60)),
            },
            Change::Add {
                target: b,
                timeout: None,
            },
        ]);
        assert_eq!(r.added, 2);
        let listed = d.list();
        assert_eq!(listed.len(), 2);
        assert!(listed[0].1.is_some_and(|t| t <= Duration::from_secs(60)));
        assert_eq!(listed[1], (b, None));
        let r = d.reconcile(&[(b, None)]);
        assert_eq!((r.added, r.removed), (0, 1));
        assert_eq!(d.list(), vec![(b, None)]);
        d.teardown(true);
        assert!(d.list().is_empty());
    }
}
