//! Timestamp parser: never panics, never claims more bytes than it was given, and its
//! per-hour offset cache never changes an answer.
#![no_main]

use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;
use portcullis_core::Time;
use portcullis_core::date::DateParser;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose the reference time, the rest is the line (several lines
    // separated by '\n', so one parser's cache is exercised across them).
    let Some((head, text)) = data.split_first_chunk::<8>() else {
        return;
    };
    let reference = Time::from_micros(i64::from_le_bytes(*head));
    let zones = [
        TimeZone::UTC,
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("valid POSIX TZ string"),
    ];
    for tz in zones {
        let mut cached = DateParser::new(tz.clone());
        for line in text.split(|&b| b == b'\n') {
            let got = cached.parse_prefix(line, reference);
            if let Some((_, used)) = got {
                assert!(
                    used <= line.len(),
                    "consumed {used} of {} bytes",
                    line.len()
                );
                assert!(used > 0);
            }
            let fresh = DateParser::new(tz.clone()).parse_prefix(line, reference);
            assert_eq!(got, fresh, "the offset cache changed the answer");
        }
    }
});
