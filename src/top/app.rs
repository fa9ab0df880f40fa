//! The dashboard's state: the last `activity` answer, the attempts-per-second history, the
//! focused pane and selection, and what a key does. Pure: replies and keys in, actions out;
//! the loop in `top/mod.rs` does the I/O.

use std::collections::VecDeque;

use portcullis_control::Target;
use portcullis_control::data::{ActivityData, BanEntry};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// How many seconds of attempts per second are kept (the sparkline shows what fits).
pub const RATE_HISTORY: usize = 240;

/// How many bans that ended while `top` watched are kept below the active ones.
pub const RECENT_ENDED: usize = 10;

/// How a ban seen active at the last poll ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Its time was up.
    Expired,
    /// It went before its time: an unban, a flush, a reload that dropped its jail.
    Lifted,
}

/// A ban that ended while `top` watched, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedBan {
    /// The ban as it was last listed.
    pub ban: BanEntry,
    /// How it ended.
    pub how: Ended,
    /// The daemon time of the first poll that no longer listed it.
    pub seen_gone: i64,
}

/// The panes that have a selection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pane {
    /// The failing addresses.
    Failing,
    /// The active bans.
    Bans,
}

impl Pane {
    fn index(self) -> usize {
        match self {
            Pane::Failing => 0,
            Pane::Bans => 1,
        }
    }
}

/// What the keys mean right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Browsing.
    Normal,
    /// `b` was pressed on this target: `y` bans it, anything else does not.
    ConfirmBan(Target),
    /// The key help is shown; any key closes it.
    Help,
}

/// What the loop must ask the daemon for after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `ban TARGET` with the jail's normal ban time, never `--force`: the daemon's
    /// allowlist refusal is shown as it is.
    Ban(Target),
    /// `unban TARGET` in every jail.
    Unban(Target),
}

/// The dashboard's state.
#[derive(Debug)]
pub struct App {
    /// The last answer, `None` before the first.
    pub data: Option<ActivityData>,
    /// Why the last poll failed, until one succeeds again.
    pub link_error: Option<String>,
    /// Bans that ended while watched, newest first, at most [`RECENT_ENDED`].
    pub ended: VecDeque<EndedBan>,
    /// Attempts per second, oldest first, at most [`RATE_HISTORY`].
    rates: VecDeque<u64>,
    /// The daemon time and attempt counter of the last answer, for the rate.
    last_count: Option<(i64, u64)>,
    /// The pane the arrows move in.
    pub focus: Pane,
    /// The selected row per pane, and the target on it (the selection follows the target
    /// when rows move between polls).
    selected: [(usize, Option<Target>); 2],
    /// What keys mean now.
    pub mode: Mode,
    /// The last action's outcome (the daemon's message on refusal), or a prompt.
    pub status: Option<String>,
    /// Whether colour is used (off with `NO_COLOR`).
    pub colour: bool,
    /// Set by `q`: the loop ends.
    pub quit: bool,
}

impl App {
    /// A dashboard with nothing received yet.
    pub fn new(colour: bool) -> App {
        App {
            data: None,
            link_error: None,
            ended: VecDeque::new(),
            rates: VecDeque::new(),
            last_count: None,
            focus: Pane::Failing,
            selected: [(0, None), (0, None)],
            mode: Mode::Normal,
            status: None,
            colour,
            quit: false,
        }
    }

    /// Take a new `activity` answer.
    pub fn on_activity(&mut self, data: ActivityData) {
        match self.last_count {
            // A counter that went down: the daemon restarted; start the rate again.
            Some((_, count)) if data.attempts < count => self.last_count = None,
            Some((at, count)) if data.now > at => {
                let secs = data.now - at;
                let rate = (data.attempts - count) / u64::try_from(secs).unwrap_or(1).max(1);
                let n = usize::try_from(secs)
                    .unwrap_or(RATE_HISTORY)
                    .min(RATE_HISTORY);
                for _ in 0..n {
                    self.rates.push_back(rate);
                }
                while self.rates.len() > RATE_HISTORY {
                    self.rates.pop_front();
                }
            }
            // Two answers within one daemon second: the next one measures from the first.
            Some(_) => {}
            None => {}
        }
        if self
            .last_count
            .is_none_or(|(at, count)| data.now > at || data.attempts < count)
        {
            self.last_count = Some((data.now, data.attempts));
        }
        self.note_ended(&data);
        self.data = Some(data);
        self.link_error = None;
        for pane in [Pane::Failing, Pane::Bans] {
            let targets = self.targets(pane);
            let (row, target) = &mut self.selected[pane.index()];
            if let Some(i) = target.and_then(|t| targets.iter().position(|x| *x == t)) {
                *row = i;
            }
            *row = (*row).min(targets.len().saturating_sub(1));
            *target = targets.get(*row).copied();
        }
    }

    /// The bans of the last answer that `data` no longer lists. Only when both answers list
    /// every active ban (no more than the request's limit): a ban that merely fell off a cut
    /// list has not ended.
    fn note_ended(&mut self, data: &ActivityData) {
        let Some(old) = &self.data else { return };
        let complete = |d: &ActivityData| d.bans.len() as u64 >= d.bans_total;
        if !complete(old) || !complete(data) {
            return;
        }
        let same = |a: &BanEntry, b: &BanEntry| {
            a.target == b.target && a.jail == b.jail && a.since == b.since
        };
        for gone in old
            .bans
            .iter()
            .rev()
            .filter(|b| !data.bans.iter().any(|n| same(b, n)))
        {
            let how = match gone.until {
                Some(u) if u <= data.now => Ended::Expired,
                _ => Ended::Lifted,
            };
            self.ended.push_front(EndedBan {
                ban: gone.clone(),
                how,
                seen_gone: data.now,
            });
        }
        self.ended.truncate(RECENT_ENDED);
    }

    /// A poll failed (daemon gone, timeout): keep the last answer on screen, say why.
    pub fn on_link_error(&mut self, message: String) {
        self.link_error = Some(message);
    }

    /// The outcome of an action, for the status line.
    pub fn on_done(&mut self, outcome: Result<String, String>) {
        self.status = Some(match outcome {
            Ok(m) => m,
            Err(m) => format!("refused: {m}"),
        });
    }

    /// Attempts per second, oldest first.
    pub fn rates(&self) -> impl ExactSizeIterator<Item = u64> + DoubleEndedIterator + '_ {
        self.rates.iter().copied()
    }

    /// The selected row of `pane`.
    pub fn selected_row(&self, pane: Pane) -> usize {
        self.selected[pane.index()].0
    }

    /// The target on the selected row of the focused pane.
    pub fn selected_target(&self) -> Option<Target> {
        let targets = self.targets(self.focus);
        targets.get(self.selected_row(self.focus)).copied()
    }

    /// The targets listed in `pane`, in row order.
    fn targets(&self, pane: Pane) -> Vec<Target> {
        let Some(d) = &self.data else {
            return Vec::new();
        };
        match pane {
            Pane::Failing => d
                .failing
                .iter()
                .map(|f| Target(ipnet::IpNet::from(f.addr)))
                .collect(),
            Pane::Bans => d
                .bans
                .iter()
                .chain(self.ended.iter().map(|e| &e.ban))
                .map(|b| b.target)
                .collect(),
        }
    }

    fn move_selection(&mut self, down: bool) {
        let len = self.targets(self.focus).len();
        let (row, _) = self.selected[self.focus.index()];
        let row = if down {
            (row + 1).min(len.saturating_sub(1))
        } else {
            row.saturating_sub(1)
        };
        let target = self.targets(self.focus).get(row).copied();
        self.selected[self.focus.index()] = (row, target);
    }

    /// What a key does; an action for the daemon when it asks for one.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return None;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Help => None,
            Mode::ConfirmBan(target) => {
                if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                    self.status = Some(format!("banning {target}…"));
                    Some(Action::Ban(target))
                } else {
                    self.status = Some(format!("{target} not banned"));
                    None
                }
            }
            Mode::Normal => self.on_normal_key(key.code),
        }
    }

    fn on_normal_key(&mut self, code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Char('?') | KeyCode::Char('h') => self.mode = Mode::Help,
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right => {
                self.focus = match self.focus {
                    Pane::Failing => Pane::Bans,
                    Pane::Bans => Pane::Failing,
                };
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(true),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(false),
            KeyCode::Char('b') => match self.selected_target() {
                Some(t) => {
                    self.status = Some(format!("ban {t}? y to confirm, any other key cancels"));
                    self.mode = Mode::ConfirmBan(t);
                }
                None => self.status = Some("nothing selected".into()),
            },
            KeyCode::Char('u') => match self.selected_target() {
                Some(t) => {
                    self.status = Some(format!("unbanning {t}…"));
                    return Some(Action::Unban(t));
                }
                None => self.status = Some("nothing selected".into()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_control::data::{BanEntry, FailingEntry};

    fn key(c: char) -> KeyEvent {
        KeyEvent::from(KeyCode::Char(c))
    }

    fn failing(addr: &str, weight: u64) -> FailingEntry {
        FailingEntry {
            jail: "sshd".into(),
            addr: addr.parse().expect("test address"),
            weight,
            threshold: 5000,
        }
    }

    fn ban(target: &str) -> BanEntry {
        BanEntry {
            target: Target::parse(target).expect("test target"),
            jail: "sshd".into(),
            since: 1000,
            until: Some(1600),
            ban_no: 1,
            reason: "threshold".into(),
            origin: None,
        }
    }

    fn data(now: i64, attempts: u64) -> ActivityData {
        ActivityData {
            now,
            attempts,
            failing: vec![failing("192.0.2.1", 3000), failing("192.0.2.2", 1000)],
            bans: vec![ban("198.51.100.7")],
            ..ActivityData::default()
        }
    }

    #[test]
    fn the_counter_becomes_attempts_per_second() {
        let mut app = App::new(false);
        app.on_activity(data(100, 10));
        assert_eq!(app.rates().count(), 0);
        app.on_activity(data(101, 25));
        app.on_activity(data(101, 26)); // same second: measured with the next one
        app.on_activity(data(103, 35));
        assert_eq!(app.rates().collect::<Vec<_>>(), vec![15, 5, 5]);
        // A daemon restart (counter lower) restarts the measurement, no negative rate.
        app.on_activity(data(104, 2));
        app.on_activity(data(105, 4));
        assert_eq!(app.rates().collect::<Vec<_>>(), vec![15, 5, 5, 2]);
        for i in 0..1000 {
            app.on_activity(data(106 + i, 4));
        }
        assert_eq!(app.rates().count(), RATE_HISTORY);
    }

    #[test]
    fn bans_that_leave_a_complete_list_are_kept_as_expired_or_lifted() {
        let mut app = App::new(false);
        let mut d = data(100, 0);
        d.bans.push(ban("198.51.100.8"));
        d.bans_total = 2;
        app.on_activity(d);
        // .7 lifted before its time (until 1600), .8 still there.
        let mut d = data(101, 0);
        d.bans = vec![ban("198.51.100.8")];
        d.bans_total = 1;
        app.on_activity(d);
        assert_eq!(app.ended.len(), 1);
        assert_eq!(
            app.ended[0].ban.target,
            Target::parse("198.51.100.7").expect("t")
        );
        assert_eq!(app.ended[0].how, Ended::Lifted);
        assert_eq!(app.ended[0].seen_gone, 101);
        // .8 goes at its end time: expired, listed first.
        let mut d = data(1600, 0);
        d.bans.clear();
        app.on_activity(d);
        assert_eq!(app.ended[0].how, Ended::Expired);
        assert_eq!(app.ended[1].how, Ended::Lifted);
        // Ended bans can be selected (b bans them again); the selection followed .7.
        app.on_key(KeyEvent::from(KeyCode::Tab));
        assert_eq!(app.selected_target(), Target::parse("198.51.100.7").ok());
        app.on_key(key('k'));
        assert_eq!(app.selected_target(), Target::parse("198.51.100.8").ok());
        // A cut list (more active than listed): a ban missing from it has not ended.
        let mut app = App::new(false);
        let mut d = data(100, 0);
        d.bans_total = 5;
        app.on_activity(d);
        let mut d = data(101, 0);
        d.bans = vec![ban("198.51.100.9")];
        d.bans_total = 5;
        app.on_activity(d);
        assert!(app.ended.is_empty());
        // At most RECENT_ENDED are kept.
        let mut app = App::new(false);
        for i in 0..(RECENT_ENDED as i64 + 5) {
            let mut d = data(100 + 2 * i, 0);
            d.bans = vec![ban(&format!("203.0.113.{i}"))];
            d.bans_total = 1;
            app.on_activity(d);
        }
        assert_eq!(app.ended.len(), RECENT_ENDED);
    }

    #[test]
    fn selection_moves_and_follows_its_target_across_polls() {
        let mut app = App::new(false);
        app.on_activity(data(100, 0));
        assert_eq!(app.selected_target(), Target::parse("192.0.2.1").ok());
        app.on_key(key('j'));
        app.on_key(key('j')); // stays on the last row
        assert_eq!(app.selected_target(), Target::parse("192.0.2.2").ok());
        // The next poll lists it first: the selection goes with it.
        let mut d = data(101, 0);
        d.failing.reverse();
        app.on_activity(d);
        assert_eq!(app.selected_row(Pane::Failing), 0);
        assert_eq!(app.selected_target(), Target::parse("192.0.2.2").ok());
        app.on_key(KeyEvent::from(KeyCode::Tab));
        assert_eq!(app.selected_target(), Target::parse("198.51.100.7").ok());
        // The selected ban is gone from a list that was cut (more active than listed): the
        // selection stays in range.
        let mut d = data(102, 0);
        d.bans.clear();
        d.bans_total = 3;
        app.on_activity(d);
        assert_eq!(app.selected_target(), None);
        assert_eq!(app.on_key(key('u')), None);
        assert_eq!(app.status.as_deref(), Some("nothing selected"));
    }

    #[test]
    fn ban_asks_first_and_unban_does_not() {
        let mut app = App::new(false);
        app.on_activity(data(100, 0));
        let t = Target::parse("192.0.2.1").expect("target");
        assert_eq!(app.on_key(key('b')), None);
        assert_eq!(app.mode, Mode::ConfirmBan(t));
        assert_eq!(app.on_key(key('n')), None, "anything but y cancels");
        assert_eq!(app.mode, Mode::Normal);
        app.on_key(key('b'));
        assert_eq!(app.on_key(key('y')), Some(Action::Ban(t)));
        assert_eq!(app.on_key(key('u')), Some(Action::Unban(t)));
        app.on_done(Err("192.0.2.1 is allowlisted".into()));
        assert_eq!(
            app.status.as_deref(),
            Some("refused: 192.0.2.1 is allowlisted")
        );
        app.on_key(key('?'));
        assert_eq!(app.mode, Mode::Help);
        assert_eq!(app.on_key(key('q')), None, "a key closes the help first");
        assert!(!app.quit);
        app.on_key(key('q'));
        assert!(app.quit);
    }
}
