//! The daemon's TOML configuration: an embedded default, `portcullis.toml` and `conf.d/*.toml`
//! merged key by key (later files win), resolved into jails, firewall and daemon settings.
//!
//! Key decision: every value keeps the file and byte span it came from until it has been
//! checked, so every error names FILE:LINE and the dotted KEY, and single values (durations,
//! CIDRs, counts) are checked while they are deserialized. Library code reads only the paths
//! it is given.
#![deny(missing_docs)]

mod doc;
mod error;
mod fleet;
mod load;
mod model;
mod raw;

use std::path::Path;

pub use doc::{ConfigDoc, DocItem, DocSection};
pub use error::ConfigError;
pub use fleet::{FleetCredentials, FleetSettings, valid_node_name};
pub use model::{
    Backend, CampaignSettings, Config, DaemonSettings, FilterRef, FirewallSettings, GeoIpDatabases,
    GeoIpSettings, JailSpec, JournalSenders, JournalSpec, Location, LogFormat, LogLevel,
    MetricsListen, MetricsSettings, NetworkSettings, NotifyEvent, NotifySettings, SERVICE_SOURCES,
    SSHD_JOURNAL_MATCHES, SSHD_LOG_FILES, SSHD_SOURCES, ServiceSources, SourceSpec, Verdict,
    service_sources,
};

use load::{Layer, Resolver};

/// The embedded default configuration (an sshd jail on `auto` sources, `auto` backend); it is
/// always the first layer, and documents every key.
pub const DEFAULT_CONFIG: &str = include_str!("../default.toml");
/// How the embedded default is named in errors and [`Config::files`].
pub const EMBEDDED_ORIGIN: &str = "<embedded default>";
/// The main configuration file the daemon reads when no `--config` is given (if it exists).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/portcullis/portcullis.toml";
/// The drop-in directory read after the main file.
pub const DEFAULT_CONF_D: &str = "/etc/portcullis/conf.d";
/// Default `daemon.state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/portcullis";
/// Default `daemon.socket`.
pub const DEFAULT_SOCKET: &str = "/run/portcullis/control.sock";
/// Default `metrics.listen`: loopback only, the Fail2Ban exporter's port.
pub const DEFAULT_METRICS_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9191),
);
/// Default `geoip.directory`: where geoipupdate writes.
pub const DEFAULT_GEOIP_DIR: &str = "/var/lib/GeoIP";
/// Default `daemon.filter_dir`.
pub const DEFAULT_FILTER_DIR: &str = "/etc/portcullis/filter.d";

impl Config {
    /// Load the embedded default, then `main` (it must exist when given), then the `*.toml`
    /// files of `conf_d` in file-name order (a missing directory is fine). Relative paths in
    /// a file are relative to that file's directory.
    pub fn load(main: Option<&Path>, conf_d: Option<&Path>) -> Result<Config, ConfigError> {
        let mut layers = vec![Layer::embedded()];
        if let Some(main) = main {
            layers.push(Layer::read(main)?);
        }
        if let Some(dir) = conf_d {
            for file in load::conf_d_files(dir)? {
                layers.push(Layer::read(&file)?);
            }
        }
        Resolver::new(layers).resolve()
    }

    /// The embedded default with `text` on top; `origin` names it in errors (relative paths
    /// in it are relative to `origin`'s directory, if it has one).
    pub fn from_str_named(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::from_texts(&[(text, origin)])
    }

    /// The embedded default with several texts on top, in order: `(text, origin)` pairs, as
    /// if they were the main file and conf.d files.
    pub fn from_texts(texts: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut layers = vec![Layer::embedded()];
        layers.extend(
            texts
                .iter()
                .map(|(text, origin)| Layer::named(text, origin)),
        );
        Resolver::new(layers).resolve()
    }

    /// The embedded default alone.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Resolver::new(vec![Layer::embedded()]).resolve()
    }
}
