//! Reading the bans in force from Fail2Ban's SQLite database
//! (`/var/lib/fail2ban/fail2ban.sqlite3`, table `bans(jail, ip, timeofban, bantime,
//! bancount, data)`), opened read-only.

use std::path::{Path, PathBuf};

use ipnet::IpNet;

/// Fail2Ban's default database.
pub const FAIL2BAN_DB: &str = "/var/lib/fail2ban/fail2ban.sqlite3";

/// One ban in force in Fail2Ban's database (the latest row of its jail and address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fail2BanBan {
    /// The jail that banned it.
    pub jail: String,
    /// The address (/32 or /128) or network.
    pub target: IpNet,
    /// Unix seconds when the ban started.
    pub since: i64,
    /// Unix seconds when it ends; `None`: permanent (`bantime` negative).
    pub until: Option<i64>,
    /// Fail2Ban's ban count of the address (1 for a first ban).
    pub bancount: u32,
}

/// Why Fail2Ban's database could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BanDbError {
    /// SQLite refused (missing file, not a Fail2Ban database, locked).
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// The bans in force at `now` (Unix seconds), one per jail and address (the latest);
/// rows whose `ip` is not an address or network are returned in the second list, verbatim.
pub fn active_bans(db: &Path, now: i64) -> Result<(Vec<Fail2BanBan>, Vec<String>), BanDbError> {
    let err = |source| BanDbError::Sqlite {
        path: db.to_path_buf(),
        source,
    };
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    let mut stmt = conn
        .prepare(
            "SELECT jail, ip, timeofban, bantime, bancount FROM bans b \
             WHERE timeofban = (SELECT max(timeofban) FROM bans WHERE jail = b.jail AND ip = b.ip) \
             AND (bantime < 0 OR timeofban + bantime > ?1) ORDER BY jail, timeofban",
        )
        .map_err(err)?;
    let rows = stmt
        .query_map([now], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .map_err(err)?;
    let mut bans = Vec::new();
    let mut bad = Vec::new();
    for row in rows {
        let (jail, ip, since, bantime, bancount) = row.map_err(err)?;
        let ip = ip.unwrap_or_default();
        let target = ip
            .parse::<IpNet>()
            .map(|n| n.trunc())
            .or_else(|_| ip.parse::<std::net::IpAddr>().map(IpNet::from));
        let Ok(target) = target else {
            bad.push(ip);
            continue;
        };
        bans.push(Fail2BanBan {
            jail,
            target,
            since,
            until: (bantime >= 0).then(|| since.saturating_add(bantime)),
            bancount: u32::try_from(bancount.unwrap_or(1).max(1)).unwrap_or(u32::MAX),
        });
    }
    Ok((bans, bad))
}
