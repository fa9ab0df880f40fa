//! Conversions between core types and table rows.

use std::net::IpAddr;

use portcullis_core::Time;
use portcullis_core::event::{Alert, BanReason, Weight};
use portcullis_core::jail::WindowEntry;

/// `(reason, reason_value)` columns of a ban.
pub(crate) fn reason_to_row(reason: &BanReason) -> (&'static str, i64) {
    match reason {
        BanReason::Threshold { score } => ("threshold", i64::from(score.0)),
        BanReason::SlowThreshold { score } => ("slow", i64::from(score.0)),
        BanReason::UserNames { users } => ("users", i64::from(*users)),
        BanReason::Aggregate { members } => ("aggregate", i64::from(*members)),
        BanReason::Network { members } => ("network", i64::from(*members)),
        BanReason::Campaign { participants } => ("campaign", i64::from(*participants)),
        BanReason::Targeted { participants } => ("targeted", i64::from(*participants)),
        BanReason::Manual => ("manual", 0),
        BanReason::Restored => ("restored", 0),
        BanReason::Fleet { .. } => ("fleet", 0),
    }
}

/// The `origin` column of a ban: the reporting fleet nodes, for fleet bans only.
pub(crate) fn origin_of(reason: &BanReason) -> Option<&str> {
    match reason {
        BanReason::Fleet { origin } => Some(origin),
        _ => None,
    }
}

/// The reason from its columns. Unknown names (from a newer minor version) read as
/// `Restored`, which is what the ban is to this process anyway.
pub(crate) fn reason_from_row(name: &str, value: i64, origin: Option<String>) -> BanReason {
    let value = u32::try_from(value).unwrap_or(u32::MAX);
    match name {
        "threshold" => BanReason::Threshold {
            score: Weight(value),
        },
        "slow" => BanReason::SlowThreshold {
            score: Weight(value),
        },
        "users" => BanReason::UserNames { users: value },
        "aggregate" => BanReason::Aggregate { members: value },
        "network" => BanReason::Network { members: value },
        "campaign" => BanReason::Campaign {
            participants: value,
        },
        "targeted" => BanReason::Targeted {
            participants: value,
        },
        "manual" => BanReason::Manual,
        "fleet" => BanReason::Fleet {
            origin: origin.unwrap_or_default().into_boxed_str(),
        },
        _ => BanReason::Restored,
    }
}

/// Columns of a `bans` row, in the order `store::ban_from_row` reads them.
pub(crate) const BAN_COLUMNS: &str =
    "jail, target, since_us, until_us, reason, reason_value, ban_no, origin";

/// Columns of an `alerts` row: time, kind, addr, user, failures, json.
pub(crate) struct AlertRow {
    pub time_us: i64,
    pub kind: &'static str,
    pub addr: String,
    pub user: Option<String>,
    pub failures: Option<i64>,
    pub json: String,
}

pub(crate) fn alert_to_row(alert: &Alert, jail: Option<&str>) -> AlertRow {
    let (time, kind, addr, user, failures) = match alert {
        Alert::Breach {
            addr,
            user,
            failures,
            time,
        } => (
            *time,
            "breach",
            *addr,
            user.as_deref(),
            Some(i64::from(*failures)),
        ),
        Alert::RootLogin { addr, time } => (*time, "root_login", *addr, Some("root"), None),
    };
    let json = serde_json::json!({
        "kind": kind,
        "time": time.to_string(),
        "jail": jail,
        "addr": addr.to_string(),
        "user": user,
        "failures": failures,
    })
    .to_string();
    AlertRow {
        time_us: time.as_micros(),
        kind,
        addr: addr.to_string(),
        user: user.map(str::to_owned),
        failures,
        json,
    }
}

pub(crate) fn alert_from_row(
    time_us: i64,
    kind: &str,
    addr: &str,
    user: Option<String>,
    failures: Option<i64>,
) -> Option<Alert> {
    let addr: IpAddr = addr.parse().ok()?;
    let time = Time::from_micros(time_us);
    match kind {
        "breach" => Some(Alert::Breach {
            addr,
            user: user.map(String::into_boxed_str),
            failures: failures.and_then(|f| u32::try_from(f).ok()).unwrap_or(0),
            time,
        }),
        "root_login" => Some(Alert::RootLogin { addr, time }),
        _ => None,
    }
}

/// Bytes of one window entry in the `entries` blob.
const ENTRY_BYTES: usize = 16;

/// The `entries` blob of a window: per entry time µs (i64), weight (u32), attempts (u32),
/// little endian.
pub(crate) fn window_to_blob(entries: &[WindowEntry], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(entries.len() * ENTRY_BYTES);
    for e in entries {
        out.extend_from_slice(&e.time.as_micros().to_le_bytes());
        out.extend_from_slice(&e.weight.0.to_le_bytes());
        out.extend_from_slice(&e.attempts.to_le_bytes());
    }
}

/// The entries of a blob; `None` when its length is not a whole number of entries.
pub(crate) fn window_from_blob(blob: &[u8]) -> Option<Vec<WindowEntry>> {
    if !blob.len().is_multiple_of(ENTRY_BYTES) {
        return None;
    }
    blob.chunks_exact(ENTRY_BYTES)
        .map(|c| {
            Some(WindowEntry {
                time: Time::from_micros(i64::from_le_bytes(c[0..8].try_into().ok()?)),
                weight: Weight(u32::from_le_bytes(c[8..12].try_into().ok()?)),
                attempts: u32::from_le_bytes(c[12..16].try_into().ok()?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_columns() {
        for r in [
            BanReason::Threshold { score: Weight(5) },
            BanReason::SlowThreshold { score: Weight(20) },
            BanReason::UserNames { users: 6 },
            BanReason::Aggregate { members: 4 },
            BanReason::Network { members: 3 },
            BanReason::Manual,
            BanReason::Fleet {
                origin: "a,b".into(),
            },
        ] {
            let (name, value) = reason_to_row(&r);
            let origin = origin_of(&r).map(str::to_string);
            assert_eq!(reason_from_row(name, value, origin), r);
        }
        assert_eq!(
            reason_to_row(&BanReason::Network { members: 3 }),
            ("network", 3)
        );
    }
}
