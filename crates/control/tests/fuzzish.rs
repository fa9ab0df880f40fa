//! `decode_request` never panics, and what it accepts re-encodes to the same request.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use portcullis_control::{Request, decode_request};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(&bytes);
    }

    #[test]
    fn json_like_text_never_panics_and_accepted_requests_round_trip(
        cmd in prop::sample::select(vec!["status", "bans", "ban", "unban", "reload", "flush", "x"]),
        v in prop::sample::select(vec!["1", "2", "0", "-1", "1.0", "\"1\"", "null"]),
        id in prop::sample::select(vec!["0", "1", "18446744073709551615", "18446744073709551616", "-5", "\"7\""]),
        target in prop::sample::select(vec!["\"192.0.2.1\"", "\"192.0.2.9/24\"", "\"2001:db8::1\"", "\"::ffff:1.2.3.4\"", "\"bad\"", "7", "null"]),
        extra in prop::sample::select(vec!["", ",\"jail\":\"sshd\"", ",\"jail\":\"\"", ",\"duration\":60", ",\"duration\":0", ",\"permanent\":true", ",\"all\":true", ",\"force\":1", ",\"zzz\":1"]),
    ) {
        let line = format!("{{\"v\":{v},\"id\":{id},\"cmd\":\"{cmd}\",\"target\":{target}{extra}}}\n");
        if let Ok(req) = decode_request(line.as_bytes()) {
            let again: Request = decode_request(&req.to_line()).unwrap();
            prop_assert_eq!(again, req);
        }
    }
}
