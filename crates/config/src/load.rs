//! Reading the files in order, merging them key by key, and resolving the result.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use portcullis_core::Weight;
use portcullis_core::jail::JailConfig;
use toml::Spanned;

use crate::error::ConfigError;
use crate::fleet::FleetSettings;

/// The largest `notify.queue` (each waiting run holds one event's JSON).
const MAX_NOTIFY_QUEUE: u32 = 1_000_000;
use crate::model::{
    Backend, CampaignSettings, Config, DaemonSettings, FilterRef, FirewallSettings, JailSpec,
    JournalSpec, Location, LogFormat, LogLevel, MetricsListen, MetricsSettings, NotifyEvent,
    NotifySettings, SourceSpec, Verdict,
};
use crate::raw::{
    Campaign, Daemon, Firewall, Fleet, Jail, Loc, Located, Metrics, Notify, RawFile, RawFilter,
    RawSource,
};
use crate::{
    DEFAULT_CONFIG, DEFAULT_FILTER_DIR, DEFAULT_METRICS_LISTEN, DEFAULT_SOCKET, DEFAULT_STATE_DIR,
    EMBEDDED_ORIGIN,
};

/// One configuration text and where it came from.
pub(crate) struct Layer {
    /// Shown in errors: the path as given, or `<embedded default>`.
    pub origin: String,
    /// Relative paths in this file are relative to this directory.
    pub dir: Option<PathBuf>,
    pub text: String,
}

impl Layer {
    pub fn embedded() -> Layer {
        Layer {
            origin: EMBEDDED_ORIGIN.to_owned(),
            dir: None,
            text: DEFAULT_CONFIG.to_owned(),
        }
    }

    pub fn named(text: &str, origin: &str) -> Layer {
        Layer {
            origin: origin.to_owned(),
            dir: Path::new(origin)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf),
            text: text.to_owned(),
        }
    }

    pub fn read(path: &Path) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Layer::named(&text, &path.display().to_string()))
    }
}

/// The `*.toml` files of a conf.d directory, sorted by file name. A missing directory has
/// none.
pub(crate) fn conf_d_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(read_err)?.path();
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let hidden = path
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
        if is_toml && !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// All files merged: each key holds the value of the last file that set it.
#[derive(Default)]
struct Merged {
    daemon: Daemon,
    firewall: Firewall,
    notify: Notify,
    metrics: Metrics,
    geoip: crate::raw::GeoIp,
    networks: crate::raw::Networks,
    fleet: Fleet,
    campaign: Campaign,
    defaults: Jail,
    /// By name; the `Loc` is the jail's table in the last file that mentioned it.
    jails: BTreeMap<String, (Jail, Loc)>,
}

/// Turns layers into a [`Config`], keeping them to locate errors.
pub(crate) struct Resolver {
    layers: Vec<Layer>,
}

impl Resolver {
    pub fn new(layers: Vec<Layer>) -> Resolver {
        Resolver { layers }
    }

    pub fn resolve(self) -> Result<Config, ConfigError> {
        let mut merged = Merged::default();
        for (i, layer) in self.layers.iter().enumerate() {
            let raw: RawFile = toml::from_str(&layer.text).map_err(|e| self.toml_error(i, &e))?;
            self.apply(&mut merged, raw, i)?;
        }
        let daemon = self.daemon(&merged.daemon)?;
        let firewall = self.firewall(&merged.firewall)?;
        let notify = self.notify(&merged.notify)?;
        let metrics = self.metrics(&merged.metrics)?;
        let geoip = self.geoip(&merged.geoip);
        let networks = self.networks(&merged.networks)?;
        let mut jails = Vec::new();
        let mut disabled_jails = Vec::new();
        for (name, (jail, at)) in &merged.jails {
            let enabled = value_or(&jail.enabled, &merged.defaults.enabled, true);
            let spec = self.jail(name, jail, at, &merged.defaults)?;
            if enabled {
                jails.push(spec);
            } else {
                disabled_jails.push(name.clone());
            }
        }
        let fleet = self.fleet(&merged.fleet, &jails, &disabled_jails)?;
        let campaign = self.campaign(&merged.campaign, &merged)?;
        Ok(Config {
            daemon,
            firewall,
            notify,
            metrics,
            geoip,
            networks,
            fleet,
            campaign,
            jails,
            disabled_jails,
            files: self.layers.iter().map(|l| l.origin.clone()).collect(),
        })
    }

    fn apply(&self, merged: &mut Merged, raw: RawFile, layer: usize) -> Result<(), ConfigError> {
        if let Some(d) = raw.daemon {
            merged.daemon.apply(d, layer);
        }
        if let Some(f) = raw.firewall {
            merged.firewall.apply(f, layer);
        }
        if let Some(n) = raw.notify {
            merged.notify.apply(n, layer);
        }
        if let Some(m) = raw.metrics {
            merged.metrics.apply(m, layer);
        }
        if let Some(g) = raw.geoip {
            merged.geoip.apply(g, layer);
        }
        if let Some(n) = raw.networks {
            merged.networks.apply(n, layer);
        }
        if let Some(f) = raw.fleet {
            merged.fleet.apply(f, layer);
        }
        if let Some(c) = raw.campaign {
            merged.campaign.apply(c, layer);
        }
        if let Some(d) = raw.defaults {
            for (key, span) in [
                ("filter", d.filter.as_ref().map(Spanned::span)),
                ("sources", d.sources.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    return Err(self.error(
                        &Loc { layer, span },
                        &format!("defaults.{key}"),
                        "this key belongs in a jail's own table ([jail.NAME])",
                    ));
                }
            }
            merged.defaults.apply(d, layer);
        }
        for (name, table) in raw.jail.unwrap_or_default() {
            let at = Loc {
                layer,
                span: table.span(),
            };
            if name == RESERVED_JAIL {
                return Err(self.error(
                    &at,
                    &format!("jail.{name}"),
                    "the jail name \"fleet\" is reserved for the bans other fleet nodes report",
                ));
            }
            if !valid_jail_name(&name) {
                return Err(self.error(
                    &at,
                    &format!("jail.{name}"),
                    "a jail name is 1 to 32 letters, digits, '_', '-' or '.', starting with a \
                     letter or digit",
                ));
            }
            let entry = merged
                .jails
                .entry(name)
                .or_insert_with(|| (Jail::default(), at.clone()));
            entry.0.apply(table.into_inner(), layer);
            entry.1 = at;
        }
        Ok(())
    }

    fn daemon(&self, d: &Daemon) -> Result<DaemonSettings, ConfigError> {
        if let Some(tz) = &d.timezone
            && jiff::tz::TimeZone::get(&tz.value).is_err()
        {
            return Err(self.error(
                &tz.at,
                "daemon.timezone",
                format!(
                    "unknown time zone {:?} (expected an IANA name such as \"Europe/Berlin\")",
                    tz.value
                ),
            ));
        }
        Ok(DaemonSettings {
            state_dir: self.path_or(&d.state_dir, DEFAULT_STATE_DIR),
            socket: self.path_or(&d.socket, DEFAULT_SOCKET),
            log_level: value_or(&d.log_level, &None, LogLevel::Info),
            log_format: value_or(&d.log_format, &None, LogFormat::Text),
            timezone: d.timezone.as_ref().map(|t| t.value.clone()),
            filter_dir: self.path_or(&d.filter_dir, DEFAULT_FILTER_DIR),
        })
    }

    fn firewall(&self, f: &Firewall) -> Result<FirewallSettings, ConfigError> {
        let table = f
            .table
            .as_ref()
            .map_or_else(|| "portcullis".to_owned(), |t| t.value.clone());
        if let Some(t) = &f.table
            && !valid_table_name(&t.value)
        {
            return Err(self.error(
                &t.at,
                "firewall.table",
                format!(
                    "expected 1 to 20 letters, digits, '_' or '-' (not starting with '-'), got {:?}",
                    t.value
                ),
            ));
        }
        Ok(FirewallSettings {
            backend: value_or(&f.backend, &None, Backend::Auto),
            table,
            priority: value_or(&f.priority, &None, -10),
            verdict: value_or(&f.verdict, &None, Verdict::Drop),
            hook_forward: value_or(&f.hook_forward, &None, false),
            flush_on_stop: value_or(&f.flush_on_stop, &None, false),
            netlink: value_or(&f.netlink, &None, true),
        })
    }

    fn metrics(&self, m: &Metrics) -> Result<MetricsSettings, ConfigError> {
        let listen = match &m.listen {
            None => MetricsListen::Tcp(DEFAULT_METRICS_LISTEN),
            Some(l) => MetricsListen::parse(&l.value)
                .map_err(|why| self.error(&l.at, "metrics.listen", why))?,
        };
        Ok(MetricsSettings {
            enabled: value_or(&m.enabled, &None, false),
            listen,
        })
    }

    fn geoip(&self, g: &crate::raw::GeoIp) -> crate::model::GeoIpSettings {
        use crate::model::GeoIpDatabases as Db;
        let directory = self.path_or(&g.directory, crate::DEFAULT_GEOIP_DIR);
        let databases = match g.databases.as_ref().map(|d| &d.value) {
            None | Some(crate::raw::GeoIpDatabases::Auto) => Db::Auto,
            Some(crate::raw::GeoIpDatabases::Off) => Db::Off,
            Some(crate::raw::GeoIpDatabases::Files(files)) => {
                Db::Files(files.iter().map(|f| directory.join(f)).collect())
            }
        };
        crate::model::GeoIpSettings {
            directory,
            databases,
        }
    }

    fn networks(
        &self,
        n: &crate::raw::Networks,
    ) -> Result<crate::model::NetworkSettings, ConfigError> {
        let count = |v: &Option<Located<crate::raw::CountOrFalse>>,
                     key: &str,
                     default: Option<u32>|
         -> Result<Option<u32>, ConfigError> {
            match v {
                None => Ok(default),
                Some(l) => match l.value.0 {
                    Some(k) if k < 2 => Err(self.error(
                        &l.at,
                        key,
                        format!("expected at least 2 (a network of one member is that member), or false, got {k}"),
                    )),
                    k => Ok(k),
                },
            }
        };
        let prefix = |v: &Option<Located<u8>>,
                      key: &str,
                      range: std::ops::RangeInclusive<u8>,
                      default: u8| {
            match v {
                None => Ok(default),
                Some(l) if range.contains(&l.value) => Ok(l.value),
                Some(l) => Err(self.error(
                    &l.at,
                    key,
                    format!(
                        "expected a prefix length from {} to {}, got {}",
                        range.start(),
                        range.end(),
                        l.value
                    ),
                )),
            }
        };
        let v4_prefix = prefix(&n.v4_prefix, "networks.v4_prefix", 8..=31, 24)?;
        let v6_prefix = prefix(&n.v6_prefix, "networks.v6_prefix", 16..=127, 48)?;
        let v4_widest = prefix(
            &n.v4_widest,
            "networks.v4_widest",
            8..=v4_prefix,
            16.min(v4_prefix),
        )?;
        let v6_widest = prefix(
            &n.v6_widest,
            "networks.v6_widest",
            16..=v6_prefix,
            32.min(v6_prefix),
        )?;
        Ok(crate::model::NetworkSettings {
            threshold: count(&n.threshold, "networks.threshold", None)?,
            v4_prefix,
            v6_prefix,
            widen_after: count(&n.widen_after, "networks.widen_after", Some(4))?,
            widen_bits: prefix(&n.widen_bits, "networks.widen_bits", 1..=16, 8)?,
            v4_widest,
            v6_widest,
            asn_threshold: count(&n.asn_threshold, "networks.asn_threshold", None)?,
            bantime: n
                .bantime
                .as_ref()
                .map_or(std::time::Duration::from_secs(86_400), |b| b.value.0),
        })
    }

    /// `[fleet]` (see `crate::fleet` for the rules each key follows).
    fn fleet(
        &self,
        f: &Fleet,
        jails: &[JailSpec],
        disabled: &[String],
    ) -> Result<FleetSettings, ConfigError> {
        crate::fleet::resolve(
            f,
            jails,
            disabled,
            |at, key, why| self.error(at, key, why),
            |v| self.path(&v.value, v.at.layer),
        )
    }

    fn campaign(&self, c: &Campaign, merged: &Merged) -> Result<CampaignSettings, ConfigError> {
        use portcullis_core::campaign::{CampaignConfig, TargetedConfig};
        let defaults = CampaignConfig::default();
        let positive = |v: &Option<Located<f64>>, key: &str, default: f64, zero_ok: bool| match v {
            None => Ok(default),
            Some(l) if l.value.is_finite() && (l.value > 0.0 || zero_ok && l.value == 0.0) => {
                Ok(l.value)
            }
            Some(l) => Err(self.error(
                &l.at,
                key,
                format!(
                    "expected a finite number {} 0, got {}",
                    if zero_ok { "≥" } else { ">" },
                    l.value
                ),
            )),
        };
        let count = |v: &Option<Located<u32>>, key: &str, default: u32, min: u32, max: u32| match v
        {
            None => Ok(default),
            Some(l) if (min..=max).contains(&l.value) => Ok(l.value),
            Some(l) => Err(self.error(
                &l.at,
                key,
                format!("expected {min} to {max}, got {}", l.value),
            )),
        };
        let threshold = positive(
            &c.threshold,
            "campaign.threshold",
            defaults.threshold,
            false,
        )?;
        let drift = positive(&c.drift, "campaign.drift", defaults.drift, true)?;
        let min_participants = count(
            &c.min_participants,
            "campaign.min_participants",
            10,
            2,
            1_000_000,
        )?;
        let max_tries = count(
            &c.max_tries,
            "campaign.max_tries",
            defaults.max_tries,
            1,
            1000,
        )?;
        let max_addresses = count(
            &c.max_addresses,
            "campaign.max_addresses",
            200_000,
            1_000,
            10_000_000,
        )?;
        let targeted_min = count(
            &c.targeted_min_addresses,
            "campaign.targeted_min_addresses",
            10,
            2,
            1_000_000,
        )?;
        let bin = c.bin.as_ref().map_or(defaults.bin, |b| b.value.0);
        if let Some(b) = &c.bin
            && (b.value.0 < Duration::from_secs(1) || b.value.0 > Duration::from_secs(86400))
        {
            return Err(self.error(&b.at, "campaign.bin", "expected 1s to 1d"));
        }
        let learn = c
            .learn
            .as_ref()
            .map_or(Duration::from_secs(86400), |l| l.value.0);
        let learn_bins =
            u32::try_from(learn.as_secs().div_ceil(bin.as_secs().max(1))).unwrap_or(u32::MAX);
        let jails = match &c.jails {
            None => vec!["sshd".to_owned()],
            Some(l) => {
                if l.value.is_empty() {
                    return Err(self.error(
                        &l.at,
                        "campaign.jails",
                        "expected at least one jail name (to switch detection off, set \
                         campaign.enabled = false)",
                    ));
                }
                for name in &l.value {
                    if !merged.jails.contains_key(name) {
                        return Err(self.error(
                            &l.at,
                            "campaign.jails",
                            format!("no jail called {name:?} is configured"),
                        ));
                    }
                }
                l.value.clone()
            }
        };
        Ok(CampaignSettings {
            enabled: value_or(&c.enabled, &None, true),
            jails,
            campaign: CampaignConfig {
                bin,
                threshold,
                drift,
                learn_bins,
                min_participants: min_participants as usize,
                max_tries,
                max_addresses: max_addresses as usize,
                ..defaults
            },
            ban: c.ban.as_ref().and_then(|b| b.value.0),
            targeted: value_or(&c.targeted, &None, true).then(|| TargetedConfig {
                window: c
                    .targeted_window
                    .as_ref()
                    .map_or(Duration::from_secs(86400), |w| w.value.0),
                min_addresses: targeted_min as usize,
                ..TargetedConfig::default()
            }),
            targeted_ban: c.targeted_ban.as_ref().and_then(|b| b.value.0),
        })
    }

    fn notify(&self, n: &Notify) -> Result<NotifySettings, ConfigError> {
        let exec = n.exec.as_ref().map_or_else(Vec::new, |e| e.value.clone());
        if let Some(e) = &n.exec {
            for (i, argv) in e.value.iter().enumerate() {
                if !argv.first().is_some_and(|p| p.starts_with('/')) {
                    return Err(self.error(
                        &e.at,
                        &format!("notify.exec[{i}]"),
                        "expected an argv list whose first word is an absolute program path \
                         (it is run directly, never through a shell)",
                    ));
                }
            }
        }
        let webhooks = n
            .webhooks
            .as_ref()
            .map_or_else(Vec::new, |w| w.value.clone());
        if let Some(w) = &n.webhooks {
            for (i, url) in w.value.iter().enumerate() {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(self.error(
                        &w.at,
                        &format!("notify.webhooks[{i}]"),
                        format!("expected an http:// or https:// URL, got {url:?}"),
                    ));
                }
            }
        }
        let queue = match &n.queue {
            Some(q) if q.value == 0 || q.value > MAX_NOTIFY_QUEUE => {
                return Err(self.error(
                    &q.at,
                    "notify.queue",
                    format!("expected 1 to {MAX_NOTIFY_QUEUE} waiting hook runs"),
                ));
            }
            Some(q) => q.value as usize,
            None => 1024,
        };
        Ok(NotifySettings {
            exec,
            webhooks,
            events: n.events.as_ref().map_or_else(
                || {
                    vec![
                        NotifyEvent::Breach,
                        NotifyEvent::RootLogin,
                        NotifyEvent::PermanentBan,
                        NotifyEvent::Campaign,
                    ]
                },
                |e| e.value.clone(),
            ),
            timeout: n
                .timeout
                .as_ref()
                .map_or(std::time::Duration::from_secs(5), |t| t.value.0),
            retries: n.retries.as_ref().map_or(3, |r| r.value),
            queue,
        })
    }

    fn jail(&self, name: &str, j: &Jail, at: &Loc, d: &Jail) -> Result<JailSpec, ConfigError> {
        let mut c = JailConfig::new(name);
        // Each setting: the jail's own key, else [defaults], else JailConfig::new's value.
        macro_rules! pick {
            ($field:ident) => {
                pick(name, stringify!($field), &j.$field, &d.$field)
            };
        }
        if let Some((v, _)) = pick!(maxretry) {
            c.maxretry = v.value.0;
        }
        if let Some((v, _)) = pick!(findtime) {
            c.findtime = v.value.0;
        }
        let bantime = pick!(bantime);
        if let Some((v, _)) = &bantime {
            c.bantime = v.value.0;
        }
        if let Some((v, _)) = pick!(bantime_factor) {
            c.factor = v.value.0;
        }
        let maxtime = pick!(maxtime);
        if let Some((v, _)) = &maxtime {
            c.maxtime = v.value.0;
        }
        if let Some((v, _)) = pick!(permanent_after) {
            c.permanent_after = v.value.0;
        }
        if let Some((v, _)) = pick!(history) {
            c.history = v.value.0;
        }
        if let Some((v, _)) = pick!(allowlist) {
            c.allowlist = v.value.iter().map(|n| n.0).collect();
        }
        // Loopback is always allowlisted: banning it only locks out local tools.
        let loopback = [
            IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
            IpNet::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
        ];
        for lo in loopback.into_iter().flatten() {
            if !c.allowlist.iter().any(|n| n.contains(&lo)) {
                c.allowlist.push(lo);
            }
        }
        if let Some((v, _)) = pick!(v6_net_threshold) {
            c.v6_net_threshold = v.value.0;
        }
        if let Some((v, _)) = pick!(v6_prefix) {
            c.v6_prefix = v.value.0;
        }
        if let Some((v, _)) = pick!(breach_after) {
            c.breach_after = v.value.0;
        }
        if let Some((v, _)) = pick!(protect_after_success) {
            c.protect_after_success = v.value.0;
        }
        if let Some((v, _)) = pick!(protect_budget) {
            c.protect_budget = v.value.0;
        }
        if let Some((v, _)) = pick!(alert_root_login) {
            c.alert_root_login = v.value;
        }
        if let Some((v, _)) = pick!(max_users) {
            c.max_users = v.value.0;
        }
        // The long window: slow_maxretry = false switches it off; either key alone keeps the
        // other's default (20 attempts, 1 day).
        let slow_maxretry = pick!(slow_maxretry);
        let slow_findtime = pick!(slow_findtime);
        let (default_max, default_findtime) = c.long_window.unwrap_or((
            Weight(20 * Weight::ONE.0),
            std::time::Duration::from_secs(86_400),
        ));
        c.long_window = match &slow_maxretry {
            Some((v, _)) => v.value.0,
            None => Some(default_max),
        }
        .map(|max| {
            let findtime = slow_findtime
                .as_ref()
                .map_or(default_findtime, |(v, _)| v.value.0);
            (max, findtime)
        });
        if let Some((max, findtime)) = c.long_window {
            // A long window is longer and larger than the short one, or it is not "slow":
            // blame the slow key written (else the jail).
            let blame = |which: &Option<(&Located<_>, String)>| match which {
                Some((l, key)) => (l.at.clone(), key.clone()),
                None => (at.clone(), format!("jail.{name}")),
            };
            if findtime <= c.findtime {
                let (loc, key) = match &slow_findtime {
                    Some((l, key)) => (l.at.clone(), key.clone()),
                    None => blame(&slow_maxretry),
                };
                return Err(self.error(
                    &loc,
                    &key,
                    format!(
                        "slow_findtime ({}) must be longer than findtime ({}): the long window \
                         counts slow attacks the short one misses (slow_maxretry = false \
                         switches it off)",
                        secs(findtime),
                        secs(c.findtime)
                    ),
                ));
            }
            let embedded = |which: &Option<(&Located<_>, String)>| {
                which.as_ref().is_none_or(|(l, _)| {
                    self.layers
                        .get(l.at.layer)
                        .is_some_and(|layer| layer.origin == EMBEDDED_ORIGIN)
                })
            };
            if max <= c.maxretry && embedded(&slow_maxretry) {
                // The shipped 20 under a maxretry the user raised to 20 or more: the long
                // window would ban first, so it is off for this jail (set slow_maxretry to
                // keep one).
                c.long_window = None;
            } else if max <= c.maxretry {
                let (loc, key) = blame(&slow_maxretry);
                return Err(self.error(
                    &loc,
                    &key,
                    format!(
                        "slow_maxretry ({max}) must be larger than maxretry ({}): otherwise the \
                         long window bans before the short one can (slow_maxretry = false \
                         switches it off)",
                        c.maxretry
                    ),
                ));
            }
        }
        if c.bantime > c.maxtime {
            // Point at the one written last (the more specific one on a tie): that is the
            // edit that made them conflict. The message says where the other one is.
            let rank = |v: &Option<(&Located<_>, String)>| {
                v.as_ref()
                    .map(|(l, key)| (l.at.layer, key.starts_with("jail.")))
            };
            let (blame, other, other_name) = if rank(&bantime) >= rank(&maxtime) {
                (&bantime, &maxtime, "maxtime")
            } else {
                (&maxtime, &bantime, "bantime")
            };
            let other_at = match other {
                Some((l, key)) => self.location(&l.at, key.clone()).to_string(),
                None => "the built-in default".to_owned(),
            };
            let (loc, key) = match blame {
                Some((l, key)) => (&l.at, key.clone()),
                None => (at, format!("jail.{name}")),
            };
            return Err(self.error(
                loc,
                &key,
                format!(
                    "bantime ({}) is longer than maxtime ({}), the cap of every ban \
                     ({other_name} is set at {other_at})",
                    secs(c.bantime),
                    secs(c.maxtime)
                ),
            ));
        }

        let (filter, filter_at) = match &j.filter {
            Some(f) => {
                let key = format!("jail.{name}.filter");
                let name_value = match &f.value {
                    RawFilter::Name(n) => n,
                    RawFilter::Fail2Ban { path, args } => {
                        let filter = FilterRef::Fail2Ban {
                            path: self.path(path, f.at.layer),
                            args: args.clone(),
                        };
                        return Ok(JailSpec {
                            name: name.to_owned(),
                            config: c,
                            filter,
                            filter_at: self.location(&f.at, key),
                            sources: self.sources(name, j)?,
                        });
                    }
                };
                let filter = self.filter_ref(name_value, f.at.layer).ok_or_else(|| {
                    self.error(
                        &f.at,
                        &key,
                        format!(
                            "expected a filter name (letters, digits, '_', '-') or a path to a \
                             .toml file, got {name_value:?}"
                        ),
                    )
                })?;
                (filter, self.location(&f.at, key))
            }
            None => (
                FilterRef::Named(name.to_owned()),
                self.location(at, format!("jail.{name}")),
            ),
        };
        Ok(JailSpec {
            name: name.to_owned(),
            config: c,
            filter,
            filter_at,
            sources: self.sources(name, j)?,
        })
    }

    fn sources(&self, name: &str, j: &Jail) -> Result<Vec<SourceSpec>, ConfigError> {
        Ok(match &j.sources {
            Some(s) if s.value.is_empty() => {
                return Err(self.error(
                    &s.at,
                    &format!("jail.{name}.sources"),
                    "expected at least one source (\"auto\" lets the daemon choose)",
                ));
            }
            Some(s) => s.value.iter().map(|r| self.source(r, s.at.layer)).collect(),
            None => vec![SourceSpec::Auto],
        })
    }

    fn filter_ref(&self, value: &str, layer: usize) -> Option<FilterRef> {
        if value.contains('/') || value.ends_with(".toml") {
            Some(FilterRef::File(self.path(value, layer)))
        } else if !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Some(FilterRef::Named(value.to_owned()))
        } else {
            None
        }
    }

    fn source(&self, raw: &RawSource, layer: usize) -> SourceSpec {
        match raw {
            RawSource::Auto => SourceSpec::Auto,
            RawSource::File(p) => SourceSpec::File {
                path: self.path(p, layer),
            },
            RawSource::Journal(j) => SourceSpec::Journal(JournalSpec {
                matches: j.matches.iter().map(|m| m.0.clone()).collect(),
                directory: j.directory.as_ref().map(|p| self.path(p, layer)),
                file: j.file.as_ref().map(|p| self.path(p, layer)),
                senders: j.senders,
            }),
        }
    }

    /// `value` made absolute against the directory of the file that wrote it.
    fn path(&self, value: &str, layer: usize) -> PathBuf {
        let p = Path::new(value);
        match &self.layers[layer].dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn path_or(&self, v: &Option<Located<String>>, default: &str) -> PathBuf {
        v.as_ref().map_or_else(
            || PathBuf::from(default),
            |v| self.path(&v.value, v.at.layer),
        )
    }

    fn location(&self, at: &Loc, key: String) -> Location {
        let layer = &self.layers[at.layer];
        Location {
            file: layer.origin.clone(),
            line: line_of(&layer.text, at.span.start),
            key,
        }
    }

    fn error(&self, at: &Loc, key: &str, message: impl fmt::Display) -> ConfigError {
        let layer = &self.layers[at.layer];
        ConfigError::Invalid {
            file: layer.origin.clone(),
            line: Some(line_of(&layer.text, at.span.start)),
            key: Some(key.to_owned()),
            message: message.to_string(),
        }
    }

    /// A TOML or schema error of one file, with the key found from the error's span.
    fn toml_error(&self, layer: usize, e: &toml::de::Error) -> ConfigError {
        let l = &self.layers[layer];
        let span = e.span();
        ConfigError::Invalid {
            file: l.origin.clone(),
            line: span.as_ref().map(|s| line_of(&l.text, s.start)),
            key: span.and_then(|s| key_path_at(&l.text, &s)),
            message: e.message().trim_end().replace('\n', "; "),
        }
    }
}

/// The jail's own value of a key, else the defaults' one, with the dotted key it came from.
fn pick<'a, T>(
    jail: &str,
    key: &str,
    own: &'a Option<Located<T>>,
    defaults: &'a Option<Located<T>>,
) -> Option<(&'a Located<T>, String)> {
    match (own, defaults) {
        (Some(v), _) => Some((v, format!("jail.{jail}.{key}"))),
        (None, Some(v)) => Some((v, format!("defaults.{key}"))),
        (None, None) => None,
    }
}

fn value_or<T: Copy>(own: &Option<Located<T>>, fallback: &Option<Located<T>>, default: T) -> T {
    own.as_ref()
        .or(fallback.as_ref())
        .map_or(default, |v| v.value)
}

fn secs(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs())
}

/// The jail name the daemon gives bans other fleet nodes reported.
const RESERVED_JAIL: &str = "fleet";

fn valid_jail_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn valid_table_name(name: &str) -> bool {
    (1..=20).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// 1-based line of byte offset `at`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted path of the most specific key or value whose span contains `span`
/// (`jail.sshd.allowlist[1]`); `None` if the text does not parse or nothing contains it.
pub(crate) fn key_path_at(text: &str, span: &Range<usize>) -> Option<String> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best: Option<(usize, String)> = None;
    walk_table(doc.get_ref(), span, "", &mut best);
    best.map(|(_, path)| path)
}

fn walk_table(
    table: &toml::de::DeTable<'_>,
    span: &Range<usize>,
    prefix: &str,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        consider(&key.span(), span, &path, best);
        walk_value(value, span, path, best);
    }
}

fn walk_value(
    value: &Spanned<toml::de::DeValue<'_>>,
    span: &Range<usize>,
    path: String,
    best: &mut Option<(usize, String)>,
) {
    consider(&value.span(), span, &path, best);
    match value.get_ref() {
        toml::de::DeValue::Table(t) => walk_table(t, span, &path, best),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_value(item, span, format!("{path}[{i}]"), best);
            }
        }
        _ => {}
    }
}

fn consider(
    node: &Range<usize>,
    span: &Range<usize>,
    path: &str,
    best: &mut Option<(usize, String)>,
) {
    let contains = node.start <= span.start && span.end <= node.end && node.start < node.end;
    let size = node.end - node.start;
    if contains && best.as_ref().is_none_or(|(s, _)| size <= *s) {
        *best = Some((size, path.to_owned()));
    }
}
