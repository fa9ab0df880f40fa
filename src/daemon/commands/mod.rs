//! The control commands, one per file (mini-redis `cmd/` style).
//!
//! `bans`, `ban`, `unban` and `flush` are pure: they run on the [`JailSet`] at `now` and
//! return the reply's data; the store and firewall work they cause comes out of the set's
//! next commit, which [`handle`] writes before it answers, so a client hears of a ban only
//! once it is durable and the kernel was asked. `status` and `reload` read the world
//! (firewall health, sources, configuration files) and so take the daemon itself.

pub(super) mod activity;
pub(super) mod ban;
pub(super) mod bans;
mod campaigns;
pub(super) mod flush;
mod reload;
mod status;
pub(super) mod unban;

pub(super) use reload::reload;

use portcullis_control::data::{BanEntry, Reply};
use portcullis_control::{Command, ErrorBody, ErrorKind, Target};
use portcullis_core::Time;
use portcullis_core::event::Ban;
use portcullis_core::jail::CommandError;

use super::Daemon;
use super::jail_set::JailSet;

/// Answer one control request.
pub(super) async fn handle(d: &mut Daemon, command: Command) -> Result<Reply, ErrorBody> {
    let now = d.clock.now();
    let mut reply = run(d, command, now).await?;
    // The set works on engine time; a client sees wall time (see `clock`).
    let r = d.clock.read();
    match &mut reply {
        Reply::Bans(data) => {
            data.bans.iter_mut().for_each(|e| r.entry_to_wall(e));
            if !d.geo.is_empty() {
                for e in &data.bans {
                    if let Some(o) = d.geo.lookup(e.target.0.addr()) {
                        data.origins.insert(e.target.to_string(), o);
                    }
                }
                super::log_geo_warnings(&d.geo);
            }
        }
        Reply::Ban(data) => r.entry_to_wall(&mut data.ban),
        Reply::Unban(data) => data.removed.iter_mut().for_each(|e| r.entry_to_wall(e)),
        Reply::Activity(data) => {
            data.now = r.wall_of(Time::from_secs(data.now)).as_secs();
            data.bans.iter_mut().for_each(|e| r.entry_to_wall(e));
        }
        _ => {}
    }
    Ok(reply)
}

async fn run(d: &mut Daemon, command: Command, now: Time) -> Result<Reply, ErrorBody> {
    match command {
        Command::Status { jail } => status::status(d, jail.as_deref())
            .await
            .map(|s| Reply::Status(Box::new(s))),
        Command::Bans { jail, net, limit } => {
            bans::bans(&d.jails, jail.as_deref(), net.map(|t| t.0), limit, now).map(Reply::Bans)
        }
        Command::Ban {
            target,
            jail,
            duration,
            permanent,
            force,
        } => {
            let done = ban::ban(
                &mut d.jails,
                now,
                target,
                jail.as_deref(),
                duration,
                permanent,
                force,
            );
            settle(d, done).await.map(Reply::Ban)
        }
        Command::Unban { target, jail, all } => {
            let done = unban::unban(&mut d.jails, now, target, jail.as_deref(), all);
            settle(d, done).await.map(Reply::Unban)
        }
        Command::Flush { jail } => {
            let done = flush::flush(&mut d.jails, now, jail.as_deref());
            settle(d, done).await.map(Reply::Flush)
        }
        Command::Reload => reload::reload(d).await.map(Reply::Reload),
        Command::Activity { limit } => activity::activity(d, limit).await.map(Reply::Activity),
    }
}

/// Write what a changing command caused (store, then firewall) before its answer goes out;
/// a success whose firewall change failed is reported as such.
async fn settle<T>(d: &mut Daemon, done: Result<T, ErrorBody>) -> Result<T, ErrorBody> {
    d.commit(false).await;
    let data = done?;
    d.firewall_result()?;
    Ok(data)
}

/// The indices of the jails a command names: `jail`, or all of them.
fn selected(set: &JailSet, jail: Option<&str>) -> Result<Vec<usize>, ErrorBody> {
    match jail {
        Some(name) => match set.index_of(name) {
            Some(i) => Ok(vec![i]),
            None => Err(ErrorBody::new(
                ErrorKind::NotFound,
                format!("no jail {name:?}"),
            )),
        },
        None => Ok((0..set.len()).collect()),
    }
}

fn command_error(e: CommandError) -> ErrorBody {
    match e {
        CommandError::Allowlisted { .. } => ErrorBody::new(ErrorKind::Allowlisted, e.to_string()),
        CommandError::NotBanned { .. } => ErrorBody::new(ErrorKind::NotFound, e.to_string()),
        _ => ErrorBody::new(ErrorKind::Other, e.to_string()),
    }
}

fn ban_entry(b: &Ban) -> BanEntry {
    BanEntry {
        target: Target(b.target),
        jail: b.jail.to_string(),
        since: b.since.as_secs(),
        until: b.until.map(Time::as_secs),
        ban_no: b.ban_no,
        reason: match b.reason {
            portcullis_core::event::BanReason::Network { members } => {
                format!("network: {members} members")
            }
            _ => b.reason.kind().to_string(),
        },
        origin: match &b.reason {
            portcullis_core::event::BanReason::Fleet { origin } => Some(origin.to_string()),
            _ => None,
        },
    }
}
