//! What the tests that read Fail2Ban's installed package share: where its files are, its
//! test suite's clock and zone, and the loud skip when the package is missing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use portcullis_core::Time;

/// Fail2Ban's sample logs with their `# failJSON:` annotations (Debian package `fail2ban`).
pub const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";
/// Filters only Fail2Ban's test suite ships.
pub const TEST_CONFIG: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/config";
/// The installed configuration.
pub const CONFIG: &str = "/etc/fail2ban";
/// Fail2Ban's test "now": Sun Aug 14 12:00:00 CEST 2005.
pub const TEST_NOW: Time = Time::from_secs(1_124_013_600);

/// The zone of Fail2Ban's test suite (CET/CEST).
pub fn cet() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0").expect("posix zone")
}

/// Whether the Fail2Ban package is installed; says so loudly when not, and fails with
/// `CI=true`.
pub fn corpus_present() -> bool {
    if Path::new(LOGS).is_dir() && Path::new(CONFIG).join("filter.d").is_dir() {
        return true;
    }
    let msg =
        "FAIL2BAN CORPUS MISSING: install the Debian fail2ban package to run the failJSON tests";
    eprintln!("{msg}");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    false
}

/// The filter file of `name`: the installed one, else the test suite's.
pub fn filter_file(name: &str) -> PathBuf {
    let own = Path::new(CONFIG)
        .join("filter.d")
        .join(format!("{name}.conf"));
    if own.is_file() {
        own
    } else {
        Path::new(TEST_CONFIG)
            .join("filter.d")
            .join(format!("{name}.conf"))
    }
}
