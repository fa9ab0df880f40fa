//! A failregex crafted to backtrack catastrophically is cut off by the match limit: the
//! line reports an engine error and the filter goes on with the next line.

use portcullis_core::Time;
use portcullis_pcre2::{Fail2BanFilter, FilterOptions, SearchError, UseDns};

#[test]
fn catastrophic_backtracking_is_cut_off_and_the_next_line_still_matches() {
    let opts = FilterOptions {
        failregex: vec![r"^(a+)+ from <HOST>$".into()],
        usedns: UseDns::No,
        datepattern: Some("{NONE}".into()),
        ..FilterOptions::default()
    };
    let mut f = Fail2BanFilter::new(&opts, jiff::tz::TimeZone::UTC, 2026).unwrap();
    let evil = format!("{}! from 192.0.2.1", "a".repeat(4000));
    let started = std::time::Instant::now();
    let r = f.process_line(&evil, Time::from_secs(1_700_000_000));
    assert!(r.failures.is_empty());
    assert!(
        matches!(r.errors.as_slice(), [SearchError::MatchLimit { .. }]),
        "expected one match-limit error, got {:?}",
        r.errors
    );
    // Not a timing assertion on speed, only a guard that the search was bounded at all.
    assert!(started.elapsed().as_secs() < 30);
    let ok = f.process_line("aaa from 192.0.2.2", Time::from_secs(1_700_000_000));
    assert!(ok.errors.is_empty());
    assert_eq!(ok.failures.len(), 1);
    assert_eq!(ok.failures[0].id.as_deref(), Some("192.0.2.2"));
}
