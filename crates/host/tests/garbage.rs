//! Hostile or corrupt input never panics the parsers: btmp holds attacker-typed names,
//! and a damaged file must give an error or partial data, not a crash.

use std::path::Path;

use portcullis_host::{classify_title, parse_proc_net_tcp, parse_ssh_ports, parse_utmp};
use proptest::prelude::*;

proptest! {
    #[test]
    fn utmp_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let f = parse_utmp(&bytes);
        prop_assert_eq!(f.records.len() * 384 + f.truncated_bytes, bytes.len());
        let _ = portcullis_host::logins(&f.records);
    }

    #[test]
    fn proc_net_tcp_text(text in "[0-9A-Fa-f: \\n]{0,400}|\\PC{0,200}") {
        let _ = parse_proc_net_tcp(&text);
    }

    #[test]
    fn sshd_config_text(text in "((Port|ListenAddress|Include|Match|#)[ =]{0,2}[\\[\\]0-9a-f:.*?/ ]{0,30}\\n){0,10}|\\PC{0,200}") {
        // Include is not followed by parse_ssh_ports, so no file is read.
        let _ = parse_ssh_ports(&text, Path::new("fuzz"));
    }

    #[test]
    fn titles(text in "(sshd|sshd-session|sshd-auth)?(: )?\\PC{0,60}") {
        let _ = classify_title(&text);
    }
}
