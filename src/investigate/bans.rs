//! Whether portcullis bans an address now, and its ban history: asked from the running
//! daemon over its socket, else read from its state database opened read-only.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_control::data::BansData;
use portcullis_control::{Client, Command};
use portcullis_core::Time;
use portcullis_store::Store;
use serde::Serialize;

use crate::text::chain;

/// One ban in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActiveBan {
    /// Banned address or network.
    pub target: IpNet,
    /// Jail holding it.
    pub jail: String,
    /// Start.
    #[serde(with = "portcullis_host::time_serde")]
    pub since: Time,
    /// End; `None` = permanent.
    #[serde(with = "portcullis_host::time_serde::option")]
    pub until: Option<Time>,
    /// Escalation step.
    pub ban_no: u32,
}

/// One past ban from the store's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PastBan {
    /// Jail.
    pub jail: String,
    /// Banned address or network.
    pub target: IpNet,
    /// When the ban was decided.
    #[serde(with = "portcullis_host::time_serde")]
    pub time: Time,
}

/// What is known about bans.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BanView {
    /// `daemon`, `store` or `unknown`: where the active bans come from.
    pub from: &'static str,
    /// Bans in force now (empty when unknown).
    pub active: Vec<ActiveBan>,
    /// Why nothing is known, or what failed on the way.
    pub notes: Vec<String>,
}

impl BanView {
    /// Whether `addr` is banned now; `None` when no daemon or store could be asked.
    pub fn banned(&self, addr: IpAddr) -> Option<bool> {
        (self.from != "unknown").then(|| self.active.iter().any(|b| b.target.contains(&addr)))
    }

    /// The active bans covering `addr`.
    pub fn covering(&self, addr: IpAddr) -> Vec<ActiveBan> {
        self.active
            .iter()
            .filter(|b| b.target.contains(&addr))
            .cloned()
            .collect()
    }
}

/// Ask the daemon at `socket`; if it does not answer, read `state_db` if it exists.
pub fn look_up(socket: &Path, state_db: &Path, now: Time) -> BanView {
    let mut view = BanView {
        from: "unknown",
        ..BanView::default()
    };
    match from_daemon(socket) {
        Ok(active) => {
            view.from = "daemon";
            view.active = active;
            return view;
        }
        Err(e) => view.notes.push(e),
    }
    if !state_db.exists() {
        view.notes
            .push(format!("no state database at {}", state_db.display()));
        return view;
    }
    match Store::open_read_only(state_db).and_then(|s| s.bans_in_force(now)) {
        Ok(bans) => {
            view.from = "store";
            view.active = bans
                .into_iter()
                .map(|b| ActiveBan {
                    target: b.target,
                    jail: b.jail.to_string(),
                    since: b.since,
                    until: b.until,
                    ban_no: b.ban_no,
                })
                .collect();
        }
        Err(e) => view.notes.push(chain(&e)),
    }
    view
}

fn from_daemon(socket: &Path) -> Result<Vec<ActiveBan>, String> {
    let mut client = Client::connect_with_timeout(socket, Duration::from_secs(3))
        .map_err(|e| format!("daemon: {}", chain(&e)))?;
    let response = client
        .request(Command::Bans {
            jail: None,
            net: None,
            limit: None,
        })
        .map_err(|e| format!("daemon: {}", chain(&e)))?;
    let data: BansData = response
        .data_as()
        .map_err(|e| format!("daemon: {}", e.message))?;
    Ok(data
        .bans
        .into_iter()
        .map(|b| ActiveBan {
            target: b.target.0,
            jail: b.jail,
            since: Time::from_secs(b.since),
            until: b.until.map(Time::from_secs),
            ban_no: b.ban_no,
        })
        .collect())
}

/// The ban history of `addr` from the state database, if there is one.
pub fn history(state_db: &Path, addr: IpAddr) -> Result<Vec<PastBan>, String> {
    if !state_db.exists() {
        return Ok(Vec::new());
    }
    let store = Store::open_read_only(state_db).map_err(|e| chain(&e))?;
    let rows = store.history_of(addr).map_err(|e| chain(&e))?;
    Ok(rows
        .into_iter()
        .map(|(jail, target, time)| PastBan { jail, target, time })
        .collect())
}
