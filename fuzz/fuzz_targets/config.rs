//! Configuration loader: never panics on any text, and every error it reports points at a
//! line that exists in the text it blames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_str_named(text, "fuzz.toml") {
        Ok(config) => {
            for jail in &config.jails {
                assert!(jail.config.maxretry.0 > 0);
                assert!(!jail.sources.is_empty());
                assert!(jail.config.bantime <= jail.config.maxtime);
            }
        }
        Err(ConfigError::Invalid { file, line, .. }) if file == "fuzz.toml" => {
            if let Some(line) = line {
                assert!(line >= 1 && line <= text.split('\n').count(), "line {line}");
            }
        }
        Err(ConfigError::Invalid { file, .. }) => {
            panic!("an error blamed {file}, but only the embedded default is under it")
        }
        Err(e) => panic!("unexpected error kind: {e:?}"),
    }
});
