//! portcullis-geoip: the country and autonomous system of an address, read from
//! MaxMind-format (`.mmdb`) databases: GeoLite2/GeoIP2 Country, City and ASN, DB-IP Lite
//! (country, city, ASN) and IPinfo Lite (and IPinfo's older `country_asn`), each with its
//! own field names ([`layout`]).
//!
//! Key decision: a database that cannot be used is a warning naming its path, never an
//! error: the caller shows the warnings, and every lookup simply knows less. No database is
//! no warning and no cost. Files are read whole into memory (no `mmap`: no `unsafe`, and a
//! file replaced by `geoipupdate` under a running reader cannot fault it), at most
//! [`MAX_FILE_BYTES`] each; answers are cached per address in a bounded map
//! ([`CACHE_ENTRIES`]), so memory stays bounded whatever the addresses.
#![deny(missing_docs)]

pub mod layout;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::IpNet;
use portcullis_core::origin::Origin;

/// geoipupdate's default directory; used when the configuration names no databases.
pub const DEFAULT_DIR: &str = "/var/lib/GeoIP";

/// The file names looked for in the directory when no databases are named (GeoLite2 and
/// GeoIP2 as geoipupdate writes them, DB-IP Lite and IPinfo Lite as downloaded). Earlier
/// names answer first.
pub const KNOWN_FILES: &[&str] = &[
    "GeoIP2-City.mmdb",
    "GeoIP2-Country.mmdb",
    "GeoLite2-City.mmdb",
    "GeoLite2-Country.mmdb",
    "dbip-city-lite.mmdb",
    "dbip-country-lite.mmdb",
    "GeoIP2-ASN.mmdb",
    "GeoLite2-ASN.mmdb",
    "dbip-asn-lite.mmdb",
    "ipinfo_lite.mmdb",
    "country_asn.mmdb",
];

/// The largest database file read (GeoLite2-City is about 60 MiB).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// Addresses whose answer is cached; when full, the cache starts over (a burst of new
/// addresses costs lookups again, never memory).
pub const CACHE_ENTRIES: usize = 16_384;

/// Which databases to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// No GeoIP at all.
    Off,
    /// Every [`KNOWN_FILES`] name present in this directory; none present is silent.
    Discover(PathBuf),
    /// These files, in order; a missing or unreadable one is a warning.
    Files(Vec<PathBuf>),
}

/// One open database.
struct Database {
    path: PathBuf,
    reader: maxminddb::Reader<Vec<u8>>,
    /// The first lookup error, once reported (a corrupt data section: the database is then
    /// no longer asked).
    broken: bool,
}

/// The databases in use and the per-address cache. `Sync`: the daemon shares one.
pub struct GeoIp {
    dbs: Mutex<Vec<Database>>,
    cache: Mutex<HashMap<IpAddr, Option<Origin>>>,
    /// Warnings not yet taken by [`take_warnings`](Self::take_warnings).
    warnings: Mutex<Vec<String>>,
    /// Every problem so far (kept for `status`).
    problems: Mutex<Vec<String>>,
    count: usize,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("databases", &self.paths())
            .finish()
    }
}

impl Default for GeoIp {
    fn default() -> GeoIp {
        GeoIp::none()
    }
}

impl GeoIp {
    /// No database: every lookup answers `None`.
    pub fn none() -> GeoIp {
        GeoIp {
            dbs: Mutex::new(Vec::new()),
            cache: Mutex::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
            problems: Mutex::new(Vec::new()),
            count: 0,
        }
    }

    /// Open what `selection` names. Problems (a named file missing, any file unreadable,
    /// too large or not a MaxMind DB) become warnings naming the path, taken with
    /// [`take_warnings`](Self::take_warnings); the databases that did open are used.
    pub fn open(selection: &Selection) -> GeoIp {
        let paths = match selection {
            Selection::Off => Vec::new(),
            Selection::Discover(dir) => discover(dir),
            Selection::Files(files) => files.clone(),
        };
        let mut dbs = Vec::new();
        let mut warnings = Vec::new();
        for path in paths {
            match open_one(&path) {
                Ok(reader) => dbs.push(Database {
                    path,
                    reader,
                    broken: false,
                }),
                Err(why) => {
                    warnings.push(format!(
                        "geoip: {}: {why}; addresses are shown without what it would tell",
                        path.display()
                    ));
                }
            }
        }
        GeoIp {
            count: dbs.len(),
            dbs: Mutex::new(dbs),
            cache: Mutex::new(HashMap::new()),
            problems: Mutex::new(warnings.clone()),
            warnings: Mutex::new(warnings),
        }
    }

    /// Whether no database is in use (lookups answer `None` at no cost).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The databases in use, in the order they are asked, each with its `database_type`
    /// (`GeoLite2-Country`, `DBIP-ASN-Lite (compat=GeoLite2-ASN)`, `ipinfo_lite`, …).
    pub fn paths(&self) -> Vec<(PathBuf, String)> {
        lock(&self.dbs)
            .iter()
            .filter(|d| !d.broken)
            .map(|d| (d.path.clone(), d.reader.metadata().database_type.clone()))
            .collect()
    }

    /// Warnings since the last call (databases that could not be opened, a lookup that
    /// found a database corrupt), each naming the file.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.warnings))
    }

    /// Every problem since the databases were opened (those [`take_warnings`]
    /// (Self::take_warnings) handed out too), for a status display.
    pub fn problems(&self) -> Vec<String> {
        lock(&self.problems).clone()
    }

    /// Where `ip` comes from; `None` when no database knows anything of it. Cached.
    pub fn lookup(&self, ip: IpAddr) -> Option<Origin> {
        if self.count == 0 {
            return None;
        }
        let ip = canonical(ip);
        if let Some(hit) = lock(&self.cache).get(&ip) {
            return hit.clone();
        }
        let found = self.ask(ip).0;
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(ip, found.clone());
        found
    }

    /// The autonomous system of `ip` and the network its database record covers (the
    /// announced prefix, in GeoLite2-ASN, DB-IP and IPinfo layouts). Not cached: for the
    /// rare network decision, not for listing.
    pub fn asn_network(&self, ip: IpAddr) -> Option<(u32, IpNet)> {
        if self.count == 0 {
            return None;
        }
        self.ask(canonical(ip)).1
    }

    /// Ask every database in order; the first to know a field wins it.
    fn ask(&self, ip: IpAddr) -> (Option<Origin>, Option<(u32, IpNet)>) {
        let mut origin = Origin::default();
        let mut asn_net = None;
        let mut dbs = lock(&self.dbs);
        for db in dbs.iter_mut().filter(|d| !d.broken) {
            if ip.is_ipv6() && db.reader.metadata().ip_version == 4 {
                continue;
            }
            match layout::read(&db.reader, ip) {
                Ok(Some((rec, net))) => {
                    let had_asn = origin.asn.is_some();
                    layout::merge(&mut origin, rec);
                    if !had_asn && let (Some(asn), Some(net)) = (origin.asn, net) {
                        asn_net = Some((asn, net));
                    }
                }
                Ok(None) => {}
                Err(why) => {
                    db.broken = true;
                    let w = format!(
                        "geoip: {}: {why}; this database is no longer asked",
                        db.path.display()
                    );
                    lock(&self.problems).push(w.clone());
                    lock(&self.warnings).push(w);
                }
            }
        }
        ((!origin.is_empty()).then_some(origin), asn_net)
    }
}

/// The [`KNOWN_FILES`] present in `dir`, in that order (none, or no directory: empty).
pub fn discover(dir: &Path) -> Vec<PathBuf> {
    KNOWN_FILES
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect()
}

fn open_one(path: &Path) -> Result<maxminddb::Reader<Vec<u8>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_FILE_BYTES} read",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    maxminddb::Reader::from_source(bytes).map_err(|e| format!("not a MaxMind DB: {e}"))
}

/// IPv4-mapped IPv6 looked up as IPv4, as events carry it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A poisoned lock only means a panic elsewhere; the data (a cache, a list) is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
