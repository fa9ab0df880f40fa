//! portcullis-store: the daemon's durable state (active bans, offender history, source
//! positions, the jails' live windows, alerts) in one SQLite file.
//!
//! Key decision: every batch of decisions (with the source positions and changed windows of
//! its burst) is one SQLite transaction in WAL mode with
//! `synchronous=FULL`, so a ban is on disk before [`Store::apply`] returns and a crash at any
//! moment leaves a prefix of the committed batches, never a torn one. The schema is versioned
//! with `PRAGMA user_version` and migrated forward at open; a newer file is refused.
#![deny(missing_docs)]

mod codec;
mod error;
mod schema;
mod store;

pub use error::StoreError;
pub use schema::SCHEMA_VERSION;
pub use store::{
    Limits, MAX_ALERTS, MAX_HISTORY, Maintenance, PRUNE_BATCH, PruneStats, SourcePosition, Store,
    StoreStats, StoredAlert, VACUUM_PAGES,
};
pub use store::{MAX_CAMPAIGNS, StoredCampaign, campaign_json};
