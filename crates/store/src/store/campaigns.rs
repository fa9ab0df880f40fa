//! Campaign alerts (schema 4): one row per campaign, its latest report.

use portcullis_core::Time;
use portcullis_core::campaign::CampaignAlert;
use rusqlite::params;
use serde_json::{Value, json};

use super::Store;
use crate::error::{Context, StoreError};

/// Campaign rows kept at most (the oldest ended ones go first).
pub const MAX_CAMPAIGNS: usize = 1_000;
/// Participants listed in a stored or shown report (the count stays exact).
const LISTED: usize = 10_000;

/// A campaign as stored: its latest report, as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCampaign {
    /// The campaign's id.
    pub id: String,
    /// `campaign` or `user-targeted`.
    pub kind: String,
    /// Its start.
    pub start: Time,
    /// Its end (so far, while active).
    pub end: Time,
    /// Whether it ended.
    pub ended: bool,
    /// How many participants.
    pub participants: u64,
    /// 0 to 1.
    pub confidence: f64,
    /// The whole report ([`campaign_json`]).
    pub json: Value,
}

/// A report as JSON (for the store, `status`, hooks, `scan --json`, `investigate --json`):
/// at most 10 000 participants listed, `participant_count` exact. User names are attacker
/// text: JSON escapes them; show them escaped.
pub fn campaign_json(a: &CampaignAlert) -> Value {
    let listed: Vec<String> = a
        .participants
        .iter()
        .take(LISTED)
        .map(ToString::to_string)
        .collect();
    json!({
        "id": &*a.id,
        "kind": a.kind.as_str(),
        "ended": a.ended,
        "start": a.start.to_string(),
        "end": a.end.to_string(),
        "detected": a.detected.to_string(),
        "participant_count": a.participant_count,
        "participants": listed,
        "new_participants": a.new_participants.len(),
        "users": a.users.iter().map(|(u, n)| json!({"user": &**u, "participants": n})).collect::<Vec<_>>(),
        "failures": a.failures,
        "confidence": (a.confidence * 1000.0).round() / 1000.0,
    })
}

impl Store {
    /// Write the latest report of each campaign of `alerts` (a later report of one id
    /// replaces its row) in one transaction, and keep at most [`MAX_CAMPAIGNS`] rows.
    pub fn save_campaigns(&mut self, alerts: &[CampaignAlert]) -> Result<(), StoreError> {
        const OP: &str = "write campaigns";
        let tx = self.conn.transaction().op(OP)?;
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO campaigns
                     (id, kind, start_us, end_us, ended, participants, confidence, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .op(OP)?;
            for a in alerts {
                up.execute(params![
                    &*a.id,
                    a.kind.as_str(),
                    a.start.as_micros(),
                    a.end.as_micros(),
                    a.ended,
                    i64::try_from(a.participant_count).unwrap_or(i64::MAX),
                    a.confidence,
                    campaign_json(a).to_string(),
                ])
                .op(OP)?;
            }
            tx.execute(
                "DELETE FROM campaigns WHERE id NOT IN
                 (SELECT id FROM campaigns ORDER BY ended ASC, end_us DESC LIMIT ?1)",
                [MAX_CAMPAIGNS as i64],
            )
            .op(OP)?;
        }
        tx.commit().op(OP)
    }

    /// The `limit` campaigns that ended last (active ones first), newest first.
    pub fn recent_campaigns(&self, limit: usize) -> Result<Vec<StoredCampaign>, StoreError> {
        const OP: &str = "read campaigns";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, kind, start_us, end_us, ended, participants, confidence, json
                 FROM campaigns ORDER BY ended ASC, end_us DESC LIMIT ?1",
            )
            .op(OP)?;
        let rows = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, f64>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })
            .op(OP)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, start, end, ended, n, confidence, text) = row.op(OP)?;
            let json = serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(id, error = %e, "unreadable campaign report");
                Value::Null
            });
            out.push(StoredCampaign {
                id,
                kind,
                start: Time::from_micros(start),
                end: Time::from_micros(end),
                ended,
                participants: u64::try_from(n).unwrap_or(0),
                confidence,
                json,
            });
        }
        Ok(out)
    }
}
