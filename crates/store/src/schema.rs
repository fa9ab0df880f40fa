//! Schema versions and forward migrations.
//!
//! The version lives in `PRAGMA user_version`, the owner in `PRAGMA application_id`. Migration
//! `MIGRATIONS[i]` takes the file from version `i` to `i + 1`; each step runs in its own
//! immediate transaction that re-reads the version first, so two processes opening the same
//! file at once cannot run a step twice.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// The schema version this build writes. Files with a larger `user_version` are refused.
pub const SCHEMA_VERSION: u32 = 6;

/// `PRAGMA application_id` of a portcullis state file: ASCII "PCLS".
pub(crate) const APPLICATION_ID: i64 = 0x5043_4c53;

/// Version 1. Times are INTEGER microseconds since the Unix epoch (lossless for
/// `portcullis_core::Time`); `bans_readable` shows them as text for operators.
///
/// Indexes are few on purpose: each one is written for every ban of a 100k-ban burst, while
/// expiry and pruning scans run rarely (start, hourly) and take milliseconds without one.
const V1: &str = r#"
CREATE TABLE bans (
    jail          TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    since_us      INTEGER NOT NULL,
    until_us      INTEGER,
    reason        TEXT    NOT NULL,
    reason_value  INTEGER NOT NULL DEFAULT 0,
    ban_no        INTEGER NOT NULL,
    PRIMARY KEY (jail, target)
) WITHOUT ROWID;

CREATE TABLE history (
    id       INTEGER PRIMARY KEY,
    jail     TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    time_us  INTEGER NOT NULL
);
CREATE INDEX history_jail_time ON history(jail, time_us);

CREATE TABLE positions (
    source           TEXT PRIMARY KEY,
    dev              INTEGER,
    ino              INTEGER,
    offset           INTEGER,
    first_line_hash  INTEGER,
    cursor           TEXT,
    updated_us       INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE alerts (
    id        INTEGER PRIMARY KEY,
    time_us   INTEGER NOT NULL,
    jail      TEXT,
    kind      TEXT    NOT NULL,
    addr      TEXT    NOT NULL,
    user      TEXT,
    failures  INTEGER,
    json      TEXT    NOT NULL
);
CREATE INDEX alerts_time ON alerts(time_us);

CREATE VIEW bans_readable AS
SELECT jail, target,
       datetime(since_us / 1000000, 'unixepoch') AS since,
       CASE WHEN until_us IS NULL THEN 'permanent'
            ELSE datetime(until_us / 1000000, 'unixepoch') END AS until,
       ban_no, reason
FROM bans;
"#;

/// Version 2: the jails' live windows (issue 10: a restart must not forgive). One row per
/// (jail, address) whose window holds failures, rewritten with the source positions in the
/// transaction of each burst, so a restart after `kill -9` counts on exactly. `entries` is
/// the window as 16-byte records (time µs i64, weight u32, attempts u32, little endian, oldest
/// first); `until_us` is when its newest entry leaves the window, after which the row is
/// worthless (pruned, and ignored when read). No secondary index: rows are read once per
/// start and pruned every few minutes.
const V2: &str = r#"
CREATE TABLE windows (
    jail      TEXT    NOT NULL,
    addr      TEXT    NOT NULL,
    entries   BLOB    NOT NULL,
    until_us  INTEGER NOT NULL,
    PRIMARY KEY (jail, addr)
) WITHOUT ROWID;
"#;

/// Version 3: the long window of each row (issue 12: slow brute force), `slow` in the same
/// 16-byte records as `entries` (time = the bucket's start, attempts 0). Rows written by
/// version 2 read as an empty long window.
const V3: &str = r#"
ALTER TABLE windows ADD COLUMN slow BLOB NOT NULL DEFAULT x'';
"#;

/// Version 4, fleet (issue 16): the nodes that reported a fleet ban (`origin`, comma-separated; NULL
/// for this node's own bans), and the admins' fleet-wide allowlist (`fleet_allow`: an
/// address allowed stays allowed after a restart, when the stream no longer replays it).
const V_FLEET: &str = r#"
ALTER TABLE bans ADD COLUMN origin TEXT;
CREATE TABLE fleet_allow (
    target    TEXT    PRIMARY KEY,
    since_us  INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 5 (issue 13: a restart that re-sends nothing the kernel has): `bans_version`
/// counts the transactions that changed `bans` by a decision or a command (not the pruning
/// of expired rows: the kernel drops those elements itself); `generation` is the kernel's
/// ruleset generation the daemon read when the bans of `synced_version` were all in the
/// kernel. A restart that finds both unchanged trusts the kernel sets (after a sample).
const V_KERNEL_SYNC: &str = r#"
CREATE TABLE kernel_sync (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    bans_version    INTEGER NOT NULL,
    generation      INTEGER,
    synced_version  INTEGER
);
INSERT INTO kernel_sync (id, bans_version) VALUES (1, 0);
"#;

/// Version 6: site-wide campaign alerts (issue 15.1/15.2), one row per campaign (its
/// latest report; `json` is the whole report as `status` and hooks show it).
const V_CAMPAIGNS: &str = r#"
CREATE TABLE campaigns (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    start_us     INTEGER NOT NULL,
    end_us       INTEGER NOT NULL,
    ended        INTEGER NOT NULL,
    participants INTEGER NOT NULL,
    confidence   REAL    NOT NULL,
    json         TEXT    NOT NULL
);
CREATE INDEX campaigns_end ON campaigns(end_us);
"#;

/// `MIGRATIONS[i]` migrates from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V_FLEET, V_KERNEL_SYNC, V_CAMPAIGNS];

const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION as usize);

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Refuse foreign and newer files; return the version found.
pub(crate) fn check_owner(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let version = user_version(conn).map_err(open_err)?;
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(open_err)?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
        });
    }
    if version > i64::from(SCHEMA_VERSION) {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(open_err)?;
        if objects > 0 {
            return Err(StoreError::Foreign {
                path: path.to_owned(),
            });
        }
    }
    Ok(version)
}

/// Run every pending migration step. Returns how many steps ran (0 when already current).
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    let mut ran = 0;
    for (from, sql) in MIGRATIONS.iter().enumerate() {
        let to = from as u32 + 1;
        let err = |source| StoreError::Migrate {
            path: path.to_owned(),
            to,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let current = user_version(&tx).map_err(err)?;
        if current > i64::from(SCHEMA_VERSION) {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        if current >= i64::from(to) {
            continue;
        }
        tx.execute_batch(sql).map_err(err)?;
        tx.execute_batch(&format!(
            "PRAGMA user_version = {to}; PRAGMA application_id = {APPLICATION_ID};"
        ))
        .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::info!(path = %path.display(), to, "state database migrated");
        ran += 1;
    }
    Ok(ran)
}
