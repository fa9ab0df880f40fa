//! Jails: the sans-IO engine that turns events into ban decisions.

mod config;

pub use config::JailConfig;
