//! `unban TARGET|--all [--jail J]`: lift a ban, or every ban.

use ipnet::IpNet;
use portcullis_control::data::UnbanData;
use portcullis_control::{ErrorBody, ErrorKind, Target};
use portcullis_core::Time;
use portcullis_core::event::Ban;
use portcullis_core::jail::Command;

use super::{ban_entry, selected};
use crate::daemon::jail_set::JailSet;

/// Lift the ban of exactly `target` (or with `all`, every ban) in `jail`, or in every jail
/// when `None`: then also the bans the store holds for jails no longer configured. The
/// offenders' history is kept. Nothing lifted is `not_found`.
pub fn unban(
    set: &mut JailSet,
    now: Time,
    target: Option<Target>,
    jail: Option<&str>,
    all: bool,
) -> Result<UnbanData, ErrorBody> {
    let jails = selected(set, jail)?;
    let target: Option<IpNet> = target.map(|t| t.0);
    let mut removed: Vec<Ban> = Vec::new();
    if all || target.is_some() {
        for idx in jails {
            let (before, cmd): (Vec<Ban>, Command) = match target {
                Some(t) if !all => (
                    set.engine(idx).active_ban(t).into_iter().collect(),
                    Command::Unban { target: t },
                ),
                _ => {
                    let mut bans: Vec<Ban> = set.engine(idx).active_bans().collect();
                    bans.sort_by_key(|b| b.target);
                    (bans, Command::UnbanAll)
                }
            };
            if set.handle_command(idx, now, cmd).is_ok() {
                let engine = set.engine(idx);
                removed.extend(
                    before
                        .into_iter()
                        .filter(|b| engine.active_ban(b.target).is_none()),
                );
            }
        }
        if jail.is_none() {
            removed.extend(set.lift_orphans(now, if all { None } else { target }));
        }
        // A network: the network bans of ours inside it too (the parts it was carved
        // into around allowlisted addresses, the narrower ones a wider one replaced), and
        // its members are counted afresh.
        if let Some(net) = target.filter(|t| !all && t.prefix_len() < t.max_prefix_len()) {
            let wanted = selected(set, jail)?;
            for (part, idx) in set.network_bans_within(net) {
                if part == net || !wanted.contains(&idx) {
                    continue;
                }
                let before = set.engine(idx).active_ban(part);
                if set
                    .handle_command(idx, now, Command::Unban { target: part })
                    .is_ok()
                {
                    removed.extend(before);
                }
            }
            set.forget_network_members(net);
        }
    }
    if removed.is_empty() {
        let what = target.map_or("anything".to_string(), |t| Target(t).to_string());
        return Err(ErrorBody::new(
            ErrorKind::NotFound,
            format!("{what} is not banned"),
        ));
    }
    Ok(UnbanData {
        removed: removed.iter().map(ban_entry).collect(),
    })
}
