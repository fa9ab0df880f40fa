//! The typed split of the native matcher: lines matched out of order by forked
//! `UnmergedMatcher`s, then settled in file order by one `AttemptMerger`, count exactly like
//! one `LineMatcher` reading in order.

use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, AttemptMerger, Filter, LineMatcher, Unmerged};
use portcullis_core::{Event, Time};

fn matcher() -> LineMatcher {
    let f = Filter::from_toml(
        filter::builtin("sshd").expect("builtin sshd"),
        "builtin:sshd",
    )
    .expect("compiles");
    LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).expect("matcher")
}

fn read_time() -> Time {
    Time::from_secs(1_795_597_200)
}

/// An attempt logged on two lines (pam_unix then `Failed password`) split across the two
/// halves, a lone closer, a `message repeated` line and a line of another pid.
const LINES: &[&str] = &[
    "Nov 25 08:00:00 h sshd[10]: Failed password for root from 192.0.2.1 port 1 ssh2",
    "Nov 25 08:00:01 h sshd[11]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root",
    "Nov 25 08:00:02 h sshd[12]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root",
    // Boundary between the two halves: the closer below must merge with pid 11's line.
    "Nov 25 08:00:03 h sshd[11]: Failed password for root from 192.0.2.1 port 2 ssh2",
    "Nov 25 08:00:04 h sshd[10]: message repeated 3 times: [ Failed password for root from 192.0.2.1 port 1 ssh2]",
    "Nov 25 08:00:05 h sshd[12]: Failed password for root from 192.0.2.1 port 3 ssh2",
    "Nov 25 08:00:06 h sshd[13]: Failed password for root from 192.0.2.1 port 4 ssh2",
];

fn counts(events: &[Event]) -> Vec<u32> {
    events.iter().map(|e| e.count).collect()
}

#[test]
fn forked_halves_merged_in_order_count_like_one_matcher() {
    let mut whole = matcher();
    let mut expected = Vec::new();
    for l in LINES {
        whole.feed_line(l.as_bytes(), read_time(), &mut expected);
    }
    // pam_unix lines are tentative (0): the Failed line of their connection counts.
    assert_eq!(counts(&expected), [1, 0, 0, 1, 3, 1, 1]);

    let template = matcher();
    let (mut a, mut b) = (
        template.unmerged().expect("fork"),
        template.unmerged().expect("fork"),
    );
    let (mut second, mut first): (Vec<Unmerged>, Vec<Unmerged>) = (Vec::new(), Vec::new());
    // The later half first: order of matching must not matter.
    for l in &LINES[3..] {
        b.feed_line(l.as_bytes(), read_time(), &mut second);
    }
    for l in &LINES[..3] {
        a.feed_line(l.as_bytes(), read_time(), &mut first);
    }
    let mut merger = AttemptMerger::new();
    let mut got: Vec<Event> = Vec::new();
    for u in first.into_iter().chain(second) {
        merger.settle(u, &mut got);
    }
    assert_eq!(got, expected);
    assert_eq!(a.stats().matched + b.stats().matched, whole.stats().matched);
}
