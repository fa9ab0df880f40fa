//! The [`Store`]: open, apply decisions, read back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use portcullis_core::Time;
use portcullis_core::event::{Alert, Ban, BanReason, Decision};
use portcullis_core::jail::WindowState;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::codec::{
    BAN_COLUMNS, alert_from_row, alert_to_row, origin_of, reason_to_row, window_from_blob,
    window_to_blob,
};
use crate::error::{Context, StoreError};
use crate::schema;

mod campaigns;
pub use campaigns::{MAX_CAMPAIGNS, StoredCampaign, campaign_json};

/// How long a statement waits for another connection's lock before failing. The daemon is
/// the only writer; this covers an operator's `sqlite3` shell holding a read lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Alerts kept at most by [`Store::prune`], whatever their age, so a flood cannot grow the file.
pub const MAX_ALERTS: i64 = 10_000;

/// History rows kept at most by [`Store::prune`], whatever their age (the newest are kept):
/// twice the 1M bans in force the store is sized for, so a week of floods cannot grow the
/// file without bound (about 60 bytes a row). Escalation forgets the oldest rows first.
pub const MAX_HISTORY: i64 = 2_000_000;

/// Rows one [`Store::prune`] call deletes at most per kind (history, bans, alerts,
/// windows), so a call is bounded (tens of milliseconds) and the ban path, which waits for
/// it, never stalls for long; [`PruneStats::more`] says another call has work left.
pub const PRUNE_BATCH: i64 = 20_000;

/// Free pages one [`Store::maintain`] call hands back to the OS at most (4 KiB each: 16
/// MiB), for the same reason.
pub const VACUUM_PAGES: i64 = 4096;

/// Where a source stopped reading, so a restart resumes there: nothing is lost or counted twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourcePosition {
    /// A log file, identified by device and inode so a rotation is noticed, with a hash of its
    /// first line so a truncated-and-rewritten file (copytruncate) is noticed too.
    File {
        /// `st_dev` of the file read.
        dev: u64,
        /// `st_ino` of the file read.
        ino: u64,
        /// Byte offset just after the last complete line handled.
        offset: u64,
        /// Hash of the file's first line (the hash function is the source's choice).
        first_line_hash: u64,
    },
    /// A systemd journal cursor (opaque text from `sd_journal_get_cursor`).
    Journal {
        /// The cursor of the last entry handled.
        cursor: String,
    },
}

/// An alert as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAlert {
    /// Row id; increases with insertion order.
    pub id: i64,
    /// The jail that raised it, when known (core's `Alert` does not carry one).
    pub jail: Option<String>,
    /// The alert itself.
    pub alert: Alert,
}

/// What [`Store::prune`] removed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Temporary bans whose end had passed.
    pub expired_bans: usize,
    /// History rows older than the kept period.
    pub history_rows: usize,
    /// Alerts older than the kept period or beyond [`MAX_ALERTS`].
    pub alerts: usize,
    /// Windows whose newest entry left the window.
    pub windows: usize,
    /// A batch was full ([`PRUNE_BATCH`]): call again soon, more is due.
    pub more: bool,
}

/// Row counts and file size, for `portcullis status`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Rows in `bans` (expired ones included until the next prune).
    pub bans: u64,
    /// Rows in `history`.
    pub history: u64,
    /// Rows in `positions`.
    pub positions: u64,
    /// Rows in `alerts`.
    pub alerts: u64,
    /// Rows in `windows` (live jail windows).
    pub windows: u64,
    /// Database file size in bytes (`page_count × page_size`, WAL not included).
    pub file_bytes: u64,
}

/// The state database. One per daemon; not `Sync` — call it from one blocking thread.
pub struct Store {
    /// The open connection (WAL, `synchronous=FULL`).
    conn: Connection,
    /// The file, for error messages.
    path: PathBuf,
    /// What [`Store::prune`] keeps and how much one call deletes.
    limits: Limits,
    /// `kernel_sync.bans_version` as written (0 on a read-only store of an older schema).
    bans_version: i64,
    /// A kernel generation to record with the next write, with the `bans_version` it
    /// vouches for (see [`note_kernel_sync`](Store::note_kernel_sync)).
    pending_sync: Option<(u32, i64)>,
}

/// The bounds [`Store::prune`] and [`Store::maintain`] work to (the defaults are the
/// constants; tests shrink them to exercise the policy at small sizes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// History rows kept at most ([`MAX_HISTORY`]).
    pub max_history: i64,
    /// Rows deleted at most per kind and call ([`PRUNE_BATCH`]).
    pub prune_batch: i64,
    /// Free pages handed back at most per call ([`VACUUM_PAGES`]).
    pub vacuum_pages: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_history: MAX_HISTORY,
            prune_batch: PRUNE_BATCH,
            vacuum_pages: VACUUM_PAGES,
        }
    }
}

/// What one [`Store::maintain`] step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Free pages are left for another step.
    pub more: bool,
    /// A reader (an operator's `sqlite3`, a backup) kept the WAL from being folded in and
    /// truncated; the step did not wait for it, and a later one retries.
    pub checkpoint_blocked: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if missing) the database at `path` and migrate it to
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION). The parent directory must exist.
    ///
    /// Refuses a file written by a newer portcullis ([`StoreError::TooNew`]) and an SQLite
    /// file of another program ([`StoreError::Foreign`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_owned();
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let version = schema::check_owner(&conn, &path)?;
        if version == 0 {
            // Must precede the first table; lets `maintain` hand free pages back to the OS.
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
                .map_err(open_err)?;
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "state database is not in WAL mode");
        }
        // FULL: a commit is fsynced before it returns, so "reported banned" means "on disk"
        // even across a power loss, not only a process crash.
        // cache_size: 32 MiB ceiling (allocated only as used) so a 100k-ban transaction
        // (~11 MB of WAL) does not spill pages to the WAL twice; not more, as a daemon
        // tracking 1M addresses fills it with window rows (issue 13: ≤ 256 MiB in all).
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA cache_size = -32768;")
            .map_err(open_err)?;
        schema::migrate(&mut conn, &path)?;
        let bans_version = read_bans_version(&conn);
        Ok(Store {
            conn,
            path,
            limits: Limits::default(),
            bans_version,
            pending_sync: None,
        })
    }

    /// Open an existing database without writing anything (no creation, no migration, no
    /// WAL switch), for `portcullis investigate` reading beside a running daemon. Refuses a
    /// foreign or newer file like [`open`](Store::open); an older schema is read as is.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_owned();
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        schema::check_owner(&conn, &path)?;
        let bans_version = read_bans_version(&conn);
        Ok(Store {
            conn,
            path,
            limits: Limits::default(),
            bans_version,
            pending_sync: None,
        })
    }

    /// The bans in force at `now`, oldest first, without deleting expired rows (works on a
    /// read-only store).
    pub fn bans_in_force(&self, now: Time) -> Result<Vec<Ban>, StoreError> {
        select_bans(
            &self.conn,
            "WHERE until_us IS NULL OR until_us > ?1",
            &[&now.as_micros()],
        )
    }

    /// Every recorded ban (history row) of a target that contains `addr`, in any jail, oldest
    /// first, as `(jail, target, time)`.
    pub fn history_of(
        &self,
        addr: std::net::IpAddr,
    ) -> Result<Vec<(String, IpNet, Time)>, StoreError> {
        const OP: &str = "read history";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT jail, target, time_us FROM history ORDER BY time_us, id")
            .op(OP)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .op(OP)?;
        let mut out = Vec::new();
        for row in rows {
            let (jail, target, time) = row.op(OP)?;
            if let Ok(net) = target.parse::<IpNet>()
                && net.contains(&addr)
            {
                out.push((jail, net, Time::from_micros(time)));
            }
        }
        Ok(out)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open file (always [`SCHEMA_VERSION`](crate::SCHEMA_VERSION)
    /// after a successful open).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .op("read the schema version")
    }

    /// Apply a burst of decisions from any jails in one durable transaction.
    ///
    /// `Ban` replaces the active ban of its (jail, target) and adds a history row at the ban's
    /// `since` (except `BanReason::Restored`, which is not a new offence); `Unban` deletes the
    /// active ban; `Alert` adds an alerts row with no jail. Returns after the commit is fsynced.
    pub fn apply(&mut self, decisions: &[Decision], now: Time) -> Result<(), StoreError> {
        self.apply_with_positions::<&str>(decisions, &[], now)
    }

    /// [`apply`](Store::apply) and [`save_positions`](Store::save_positions) in ONE
    /// transaction: after a crash the stored positions never run ahead of (or behind) the bans
    /// decided from the lines before them.
    pub fn apply_with_positions<K: AsRef<str>>(
        &mut self,
        decisions: &[Decision],
        positions: &[(K, SourcePosition)],
        now: Time,
    ) -> Result<(), StoreError> {
        self.apply_burst::<K, &str>(decisions, positions, &[], now)
    }

    /// One burst of the daemon in ONE durable transaction: the decisions, the source
    /// positions read up to it, and the jail windows that changed, as `(jail, window)` (an
    /// empty window deletes the row). After a crash the stored windows are exactly those of
    /// the lines before the stored positions, so nothing is counted twice or forgotten.
    pub fn apply_burst<K: AsRef<str>, J: AsRef<str>>(
        &mut self,
        decisions: &[Decision],
        positions: &[(K, SourcePosition)],
        windows: &[(J, WindowState)],
        now: Time,
    ) -> Result<(), StoreError> {
        const OP: &str = "write decisions";
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .op(OP)?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO bans
                     (jail, target, since_us, until_us, reason, reason_value, ban_no, origin)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .op(OP)?;
            let mut history = tx
                .prepare_cached("INSERT INTO history (jail, target, time_us) VALUES (?1, ?2, ?3)")
                .op(OP)?;
            let mut unban = tx
                .prepare_cached("DELETE FROM bans WHERE jail = ?1 AND target = ?2")
                .op(OP)?;
            let mut alert_stmt = tx
                .prepare_cached(
                    "INSERT INTO alerts (time_us, jail, kind, addr, user, failures, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .op(OP)?;
            let mut target_text = String::new();
            for decision in decisions {
                match decision {
                    Decision::Ban(ban) => {
                        write_target(&mut target_text, &ban.target);
                        let (reason, reason_value) = reason_to_row(&ban.reason);
                        upsert
                            .execute(params![
                                &*ban.jail,
                                target_text,
                                ban.since.as_micros(),
                                ban.until.map(Time::as_micros),
                                reason,
                                reason_value,
                                i64::from(ban.ban_no),
                                origin_of(&ban.reason),
                            ])
                            .op(OP)?;
                        // A restored ban is not a new offence; a fleet ban is another node's.
                        if !matches!(ban.reason, BanReason::Restored | BanReason::Fleet { .. }) {
                            history
                                .execute(params![&*ban.jail, target_text, ban.since.as_micros()])
                                .op(OP)?;
                        }
                    }
                    Decision::Unban { target, jail, .. } => {
                        write_target(&mut target_text, target);
                        unban.execute(params![&**jail, target_text]).op(OP)?;
                    }
                    Decision::Alert(alert) => {
                        let row = alert_to_row(alert, None);
                        alert_stmt
                            .execute(params![
                                row.time_us,
                                Option::<&str>::None,
                                row.kind,
                                row.addr,
                                row.user,
                                row.failures,
                                row.json,
                            ])
                            .op(OP)?;
                    }
                }
            }
            write_positions(&tx, positions, now)?;
            write_windows(&tx, windows)?;
            if let Some((generation, version)) = self.pending_sync {
                tx.execute(
                    "UPDATE kernel_sync SET generation = ?1, synced_version = ?2",
                    params![i64::from(generation), version],
                )
                .op(OP)?;
            }
            if !decisions.is_empty() {
                bump_bans_version(&tx).op(OP)?;
            }
        }
        tx.commit().op(OP)?;
        self.pending_sync = None;
        self.bans_version += i64::from(!decisions.is_empty());
        Ok(())
    }

    /// Remembers that the kernel's ruleset generation is `generation` while every ban
    /// change written so far is in the kernel; recorded with the next write
    /// ([`apply_burst`](Store::apply_burst)). The caller asks only when no firewall work
    /// failed since.
    pub fn note_kernel_sync(&mut self, generation: u32) {
        self.pending_sync = Some((generation, self.bans_version));
    }

    /// Whether a [`note_kernel_sync`](Store::note_kernel_sync) waits for a write.
    pub fn sync_pending(&self) -> bool {
        self.pending_sync.is_some()
    }

    /// Whether the kernel sets are as the last recorded sync left them: the kernel's
    /// generation is still `generation` and no ban changed in the store since.
    pub fn kernel_in_sync(&self, generation: u32) -> Result<bool, StoreError> {
        let row: Option<(Option<i64>, Option<i64>, i64)> = self
            .conn
            .query_row(
                "SELECT generation, synced_version, bans_version FROM kernel_sync",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .op("read kernel sync")?;
        Ok(matches!(row, Some((Some(g), Some(v), now))
            if g == i64::from(generation) && v == now))
    }

    /// The windows of `jail` still live at `now` (their newest entry within the window), in
    /// address order. A row that cannot be read (bad address or blob) is skipped with a
    /// warning rather than failing the restore.
    pub fn windows(&self, jail: &str, now: Time) -> Result<Vec<WindowState>, StoreError> {
        const OP: &str = "read windows";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT addr, entries, until_us, slow FROM windows
                 WHERE jail = ?1 AND until_us > ?2 ORDER BY addr",
            )
            .op(OP)?;
        let rows = stmt
            .query_map(params![jail, now.as_micros()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .op(OP)?;
        let mut out = Vec::new();
        for row in rows {
            let (addr, blob, until, slow_blob) = row.op(OP)?;
            match (
                addr.parse(),
                window_from_blob(&blob),
                window_from_blob(&slow_blob),
            ) {
                (Ok(addr), Some(entries), Some(slow)) => out.push(WindowState {
                    addr,
                    entries,
                    slow,
                    until: Time::from_micros(until),
                }),
                _ => tracing::warn!(%addr, jail, "skipping unreadable window row"),
            }
        }
        Ok(out)
    }

    /// The bans in force at `now`, oldest first. Expired rows are deleted first. A row whose
    /// target cannot be parsed is skipped with a warning rather than failing the restore.
    pub fn active_bans(&self, now: Time) -> Result<Vec<Ban>, StoreError> {
        self.conn
            .execute(
                "DELETE FROM bans WHERE until_us IS NOT NULL AND until_us <= ?1",
                [now.as_micros()],
            )
            .op("delete expired bans")?;
        select_bans(&self.conn, "", &[])
    }

    /// Bans of `jail` decided at or after `since`, oldest first: the offender history the
    /// jail engine needs for escalation after a restart.
    pub fn history(&self, jail: &str, since: Time) -> Result<Vec<(IpNet, Time)>, StoreError> {
        const OP: &str = "read history";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT target, time_us FROM history WHERE jail = ?1 AND time_us >= ?2
                 ORDER BY time_us, id",
            )
            .op(OP)?;
        let rows = stmt
            .query_map(params![jail, since.as_micros()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .op(OP)?;
        let mut out = Vec::new();
        for row in rows {
            let (target, time) = row.op(OP)?;
            match target.parse::<IpNet>() {
                Ok(net) => out.push((net, Time::from_micros(time))),
                Err(_) => {
                    tracing::warn!(%target, jail, "skipping history row with unparseable target")
                }
            }
        }
        Ok(out)
    }

    /// Forget the history of `target` (in `jail`, or in every jail), so its next ban starts
    /// again at ban number 1. Returns the rows removed.
    pub fn forget_history(
        &mut self,
        jail: Option<&str>,
        target: IpNet,
    ) -> Result<usize, StoreError> {
        let target = target.to_string();
        match jail {
            Some(jail) => self.conn.execute(
                "DELETE FROM history WHERE jail = ?1 AND target = ?2",
                params![jail, target],
            ),
            None => self
                .conn
                .execute("DELETE FROM history WHERE target = ?1", [target]),
        }
        .op("delete history")
    }

    /// Store source positions (upsert by key: the file path or journal id), in one durable
    /// transaction.
    pub fn save_positions<K: AsRef<str>>(
        &mut self,
        positions: &[(K, SourcePosition)],
        now: Time,
    ) -> Result<(), StoreError> {
        self.apply_with_positions(&[], positions, now)
    }

    /// The stored position of one source.
    pub fn load_position(&self, key: &str) -> Result<Option<SourcePosition>, StoreError> {
        self.conn
            .query_row(
                "SELECT dev, ino, offset, first_line_hash, cursor FROM positions WHERE source = ?1",
                [key],
                read_position,
            )
            .optional()
            .op("read a source position")
            .map(Option::flatten)
    }

    /// Every stored position with its key and last update time, for `portcullis status`.
    pub fn positions(&self) -> Result<Vec<(String, SourcePosition, Time)>, StoreError> {
        const OP: &str = "read source positions";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT dev, ino, offset, first_line_hash, cursor, source, updated_us
                 FROM positions ORDER BY source",
            )
            .op(OP)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    read_position(r)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .op(OP)?;
        let mut out = Vec::new();
        for row in rows {
            if let (Some(pos), key, updated) = row.op(OP)? {
                out.push((key, pos, Time::from_micros(updated)));
            }
        }
        Ok(out)
    }

    /// Delete the position of a source that no longer exists in the config.
    pub fn remove_position(&mut self, key: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM positions WHERE source = ?1", [key])
            .map(|n| n > 0)
            .op("delete a source position")
    }

    /// The `limit` most recent alerts, newest first.
    pub fn recent_alerts(&self, limit: usize) -> Result<Vec<StoredAlert>, StoreError> {
        const OP: &str = "read alerts";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, time_us, jail, kind, addr, user, failures FROM alerts
                 ORDER BY time_us DESC, id DESC LIMIT ?1",
            )
            .op(OP)?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })
            .op(OP)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, time_us, jail, kind, addr, user, failures) = row.op(OP)?;
            match alert_from_row(time_us, &kind, &addr, user, failures) {
                Some(alert) => out.push(StoredAlert { id, jail, alert }),
                None => tracing::warn!(id, kind, "skipping unreadable alert row"),
            }
        }
        Ok(out)
    }

    /// Remove the active ban of `target` in `jail` (or in every jail when `None`), for
    /// `portcullis unban`. Returns the bans removed, so the caller can lift them in the
    /// firewall; history is kept (see [`forget_history`](Store::forget_history)).
    pub fn remove_ban(
        &mut self,
        jail: Option<&str>,
        target: IpNet,
    ) -> Result<Vec<Ban>, StoreError> {
        let target_text = target.to_string();
        let tx = self.conn.transaction().op("remove a ban")?;
        let removed = {
            match jail {
                Some(jail) => select_bans(
                    &tx,
                    "WHERE jail = ?1 AND target = ?2",
                    &[&jail, &target_text],
                ),
                None => select_bans(&tx, "WHERE target = ?1", &[&target_text]),
            }?
        };
        match jail {
            Some(jail) => tx.execute(
                "DELETE FROM bans WHERE jail = ?1 AND target = ?2",
                params![jail, target_text],
            ),
            None => tx.execute("DELETE FROM bans WHERE target = ?1", [&target_text]),
        }
        .op("remove a ban")?;
        bump_bans_version(&tx).op("remove a ban")?;
        tx.commit().op("remove a ban")?;
        self.bans_version += 1;
        Ok(removed)
    }

    /// The fleet-wide allowlist admins published (`portcullis fleet allow`), oldest first.
    pub fn fleet_allows(&self) -> Result<Vec<IpNet>, StoreError> {
        const OP: &str = "read the fleet allowlist";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT target FROM fleet_allow ORDER BY since_us, target")
            .op(OP)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).op(OP)?;
        let mut out = Vec::new();
        for row in rows {
            match row.op(OP)?.parse::<IpNet>() {
                Ok(net) => out.push(net),
                Err(e) => tracing::warn!("skipping fleet_allow row: {e}"),
            }
        }
        Ok(out)
    }

    /// Add `target` to the fleet-wide allowlist (idempotent), durably.
    pub fn add_fleet_allow(&mut self, target: IpNet, now: Time) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO fleet_allow (target, since_us) VALUES (?1, ?2)",
                params![target.to_string(), now.as_micros()],
            )
            .map(drop)
            .op("add to the fleet allowlist")
    }

    /// Remove every active ban (`portcullis flush`, `unban --all`). Returns how many.
    pub fn clear_bans(&mut self) -> Result<usize, StoreError> {
        let tx = self.conn.transaction().op("clear bans")?;
        let n = tx.execute("DELETE FROM bans", []).op("clear bans")?;
        bump_bans_version(&tx).op("clear bans")?;
        tx.commit().op("clear bans")?;
        self.bans_version += 1;
        Ok(n)
    }

    /// Delete expired bans, history older than `now - history_keep` or beyond the newest
    /// [`MAX_HISTORY`] rows, alerts older than that or beyond the newest [`MAX_ALERTS`], and
    /// windows that ran out: at most [`PRUNE_BATCH`] rows of each per call, in one
    /// transaction ([`PruneStats::more`]: call again). Run it periodically (e.g. every few
    /// minutes, sooner while `more`).
    pub fn prune(&mut self, now: Time, history_keep: Duration) -> Result<PruneStats, StoreError> {
        const OP: &str = "prune";
        let Limits {
            max_history,
            prune_batch,
            ..
        } = self.limits;
        let cutoff = now.saturating_sub(history_keep).as_micros();
        let now_us = now.as_micros();
        let tx = self.conn.transaction().op(OP)?;
        // Bans: the engines unban what expires (those deletes ride in the bursts); this is
        // what is left of a stop. A scan of `bans`, stopped after a batch.
        let expired_bans = tx
            .execute(
                "DELETE FROM bans WHERE (jail, target) IN (SELECT jail, target FROM bans
                 WHERE until_us IS NOT NULL AND until_us <= ?1 LIMIT ?2)",
                params![now_us, prune_batch],
            )
            .op(OP)?;
        // History by age, per jail along the (jail, time_us) index (the jails found by a
        // skip scan of it), then beyond the newest MAX_HISTORY rows (ids grow with time).
        let jails: Vec<String> = {
            let mut stmt = tx
                .prepare_cached(
                    "WITH RECURSIVE j(name) AS (
                         SELECT min(jail) FROM history
                         UNION ALL
                         SELECT (SELECT min(jail) FROM history WHERE jail > j.name) FROM j
                         WHERE j.name IS NOT NULL)
                     SELECT name FROM j WHERE name IS NOT NULL",
                )
                .op(OP)?;
            let rows = stmt.query_map([], |r| r.get(0)).op(OP)?;
            rows.collect::<Result<_, _>>().op(OP)?
        };
        let mut history_rows = 0;
        for jail in &jails {
            let left = prune_batch - history_rows as i64;
            if left <= 0 {
                break;
            }
            history_rows += tx
                .prepare_cached(
                    "DELETE FROM history WHERE id IN (SELECT id FROM history
                     WHERE jail = ?1 AND time_us < ?2 LIMIT ?3)",
                )
                .op(OP)?
                .execute(params![jail, cutoff, left])
                .op(OP)?;
        }
        let over_cap = tx
            .execute(
                "DELETE FROM history WHERE id IN (SELECT id FROM history
                 WHERE id <= (SELECT max(id) FROM history) - ?1 ORDER BY id LIMIT ?2)",
                params![max_history, prune_batch],
            )
            .op(OP)?;
        let mut alerts = tx
            .execute(
                "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts
                 WHERE time_us < ?1 LIMIT ?2)",
                params![cutoff, prune_batch],
            )
            .op(OP)?;
        alerts += tx
            .execute(
                "DELETE FROM alerts WHERE id NOT IN
                 (SELECT id FROM alerts ORDER BY time_us DESC, id DESC LIMIT ?1)",
                [MAX_ALERTS],
            )
            .op(OP)?;
        let windows = tx
            .execute(
                "DELETE FROM windows WHERE (jail, addr) IN (SELECT jail, addr FROM windows
                 WHERE until_us <= ?1 LIMIT ?2)",
                params![now_us, prune_batch],
            )
            .op(OP)?;
        tx.commit().op(OP)?;
        let full = |n: usize| n as i64 >= prune_batch;
        Ok(PruneStats {
            expired_bans,
            history_rows: history_rows + over_cap,
            alerts,
            windows,
            more: full(expired_bans)
                || full(history_rows)
                || full(over_cap)
                || full(alerts)
                || full(windows),
        })
    }

    /// Give free pages back to the OS (incremental vacuum, at most [`VACUUM_PAGES`] per
    /// call) and fold the WAL into the main file (truncating checkpoint), so the database
    /// stays small. Cheap when there is nothing to do; run it after [`prune`](Store::prune).
    ///
    /// Never waits for another connection's lock (the ban path waits for this step): for
    /// its duration the busy timeout is zero, so a reader holding a snapshot leaves the
    /// checkpoint undone ([`Maintenance::checkpoint_blocked`]) and another writer makes the
    /// step fail at once (`SQLITE_BUSY`); either way a later step retries.
    pub fn maintain(&mut self) -> Result<Maintenance, StoreError> {
        const OP: &str = "vacuum and checkpoint";
        self.conn.busy_timeout(Duration::ZERO).op(OP)?;
        let step = self.maintain_step();
        let restored = self.conn.busy_timeout(BUSY_TIMEOUT).op(OP);
        let step = step?;
        restored?;
        Ok(step)
    }

    fn maintain_step(&mut self) -> Result<Maintenance, StoreError> {
        const OP: &str = "vacuum and checkpoint";
        // incremental_vacuum returns one row per freed page; step through them all.
        let mut stmt = self
            .conn
            .prepare(&format!(
                "PRAGMA incremental_vacuum({})",
                self.limits.vacuum_pages
            ))
            .op(OP)?;
        let mut rows = stmt.query([]).op(OP)?;
        while rows.next().op(OP)?.is_some() {}
        drop(rows);
        drop(stmt);
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .op(OP)?;
        // analysis_limit bounds the ANALYZE that optimize may run to a sample per index.
        self.conn
            .execute_batch("PRAGMA analysis_limit = 400; PRAGMA optimize")
            .op(OP)?;
        // (busy, WAL frames, frames checkpointed): busy = 1 when a reader blocked it.
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .op(OP)?;
        Ok(Maintenance {
            more: free > 0,
            checkpoint_blocked: busy != 0,
        })
    }

    /// Replace the bounds of [`prune`](Store::prune) and [`maintain`](Store::maintain).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Row counts and file size.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        const OP: &str = "count rows";
        let count = |table: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| u64::try_from(n).unwrap_or(0))
                .op(OP)
        };
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .op(OP)?;
        let page_size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .op(OP)?;
        Ok(StoreStats {
            bans: count("bans")?,
            history: count("history")?,
            positions: count("positions")?,
            alerts: count("alerts")?,
            windows: count("windows")?,
            file_bytes: u64::try_from(pages.saturating_mul(page_size)).unwrap_or(0),
        })
    }

    /// `PRAGMA integrity_check`: `Ok(())` when the file is sound, otherwise SQLite's report.
    pub fn integrity_check(&self) -> Result<Result<(), String>, StoreError> {
        let report: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .op("check integrity")?;
        Ok(if report == "ok" { Ok(()) } else { Err(report) })
    }
}

/// Bans matching `filter` (a `WHERE …` clause or empty), oldest first. Works on a
/// connection or an open transaction.
fn select_bans(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Ban>, StoreError> {
    const OP: &str = "read bans";
    // No ORDER BY: SQLite's sorter costs more than sorting the decoded bans (start of a
    // daemon with 100k bans, issue 13). Each row is decoded from borrowed column values:
    // one allocation per ban (its jail name), not four strings.
    let sql = format!("SELECT {BAN_COLUMNS} FROM bans {filter}");
    let mut stmt = conn.prepare_cached(&sql).op(OP)?;
    let mut rows = stmt.query(args).op(OP)?;
    let mut bans = Vec::new();
    let mut jail_name: Box<str> = Box::from("");
    while let Some(r) = rows.next().op(OP)? {
        if let Some(ban) = ban_from_row(r, &mut jail_name).op(OP)? {
            bans.push(ban);
        }
    }
    bans.sort_unstable_by(|a, b| (a.since, &a.jail, a.target).cmp(&(b.since, &b.jail, b.target)));
    Ok(bans)
}

/// One `bans` row (columns [`BAN_COLUMNS`]) as a ban, `None` (logged) when its target is
/// not a network. `jail` is the last jail name seen, reused when the row names it again.
fn ban_from_row(r: &rusqlite::Row<'_>, jail: &mut Box<str>) -> rusqlite::Result<Option<Ban>> {
    let text = |i: usize| -> rusqlite::Result<&str> {
        r.get_ref(i)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    let name = text(0)?;
    if &**jail != name {
        *jail = Box::from(name);
    }
    let target_text = text(1)?;
    let Ok(target) = target_text.parse::<IpNet>() else {
        tracing::warn!(target = %target_text, jail = %name, "skipping ban row with unparseable target");
        return Ok(None);
    };
    let since_us: i64 = r.get(2)?;
    let until_us: Option<i64> = r.get(3)?;
    let reason_value: i64 = r.get(5)?;
    let ban_no: i64 = r.get(6)?;
    let origin: Option<String> = r.get(7)?;
    Ok(Some(Ban {
        target,
        jail: jail.clone(),
        since: Time::from_micros(since_us),
        until: until_us.map(Time::from_micros),
        ban_no: u32::try_from(ban_no).unwrap_or(0),
        reason: crate::codec::reason_from_row(text(4)?, reason_value, origin),
    }))
}

fn write_target(buf: &mut String, target: &IpNet) {
    use std::fmt::Write;
    buf.clear();
    let _ = write!(buf, "{target}");
}

fn write_positions<K: AsRef<str>>(
    conn: &Connection,
    positions: &[(K, SourcePosition)],
    now: Time,
) -> Result<(), StoreError> {
    const OP: &str = "write source positions";
    if positions.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO positions
             (source, dev, ino, offset, first_line_hash, cursor, updated_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .op(OP)?;
    for (key, pos) in positions {
        // u64 values are stored bit-for-bit in SQLite's signed INTEGER.
        let (dev, ino, offset, hash, cursor) = match pos {
            SourcePosition::File {
                dev,
                ino,
                offset,
                first_line_hash,
            } => (
                Some(*dev as i64),
                Some(*ino as i64),
                Some(*offset as i64),
                Some(*first_line_hash as i64),
                None,
            ),
            SourcePosition::Journal { cursor } => (None, None, None, None, Some(cursor.as_str())),
        };
        stmt.execute(params![
            key.as_ref(),
            dev,
            ino,
            offset,
            hash,
            cursor,
            now.as_micros()
        ])
        .op(OP)?;
    }
    Ok(())
}

/// `kernel_sync.bans_version`, 0 when the table is missing (a read-only older file).
fn read_bans_version(conn: &Connection) -> i64 {
    conn.query_row("SELECT bans_version FROM kernel_sync", [], |r| r.get(0))
        .unwrap_or(0)
}

/// One more transaction changed `bans` (see schema version 5).
fn bump_bans_version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute("UPDATE kernel_sync SET bans_version = bans_version + 1", [])
}

/// Upsert the changed windows (delete the emptied ones).
fn write_windows<J: AsRef<str>>(
    conn: &Connection,
    windows: &[(J, WindowState)],
) -> Result<(), StoreError> {
    const OP: &str = "write windows";
    if windows.is_empty() {
        return Ok(());
    }
    let mut upsert = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO windows (jail, addr, entries, until_us, slow)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .op(OP)?;
    let mut delete = conn
        .prepare_cached("DELETE FROM windows WHERE jail = ?1 AND addr = ?2")
        .op(OP)?;
    let mut addr = String::new();
    let mut blob = Vec::new();
    let mut slow_blob = Vec::new();
    for (jail, w) in windows {
        {
            use std::fmt::Write;
            addr.clear();
            let _ = write!(addr, "{}", w.addr);
        }
        if w.entries.is_empty() && w.slow.is_empty() {
            delete.execute(params![jail.as_ref(), addr]).op(OP)?;
        } else {
            window_to_blob(&w.entries, &mut blob);
            window_to_blob(&w.slow, &mut slow_blob);
            upsert
                .execute(params![
                    jail.as_ref(),
                    addr,
                    blob,
                    w.until.as_micros(),
                    slow_blob
                ])
                .op(OP)?;
        }
    }
    Ok(())
}

/// A position from columns `dev, ino, offset, first_line_hash, cursor` (0..=4).
fn read_position(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<SourcePosition>> {
    let cursor: Option<String> = r.get(4)?;
    if let Some(cursor) = cursor {
        return Ok(Some(SourcePosition::Journal { cursor }));
    }
    let dev: Option<i64> = r.get(0)?;
    let ino: Option<i64> = r.get(1)?;
    let offset: Option<i64> = r.get(2)?;
    let hash: Option<i64> = r.get(3)?;
    Ok(match (dev, ino, offset, hash) {
        (Some(dev), Some(ino), Some(offset), Some(hash)) => Some(SourcePosition::File {
            dev: dev as u64,
            ino: ino as u64,
            offset: offset as u64,
            first_line_hash: hash as u64,
        }),
        _ => None,
    })
}
