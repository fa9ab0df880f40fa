//! `ban TARGET [--jail J] [--for D | --permanent] [--force]`: a manual ban in one jail.

use std::time::Duration;

use portcullis_control::data::BanData;
use portcullis_control::{ErrorBody, ErrorKind, Target};
use portcullis_core::Time;
use portcullis_core::jail::{Command, MAX_BAN_DURATION};

use super::{ban_entry, command_error, selected};
use crate::daemon::jail_set::JailSet;

/// Ban `target` in `jail` (default: the first jail) for `duration` seconds, permanently, or
/// by the jail's escalation rule; an allowlisted target only with `force`. A duration beyond
/// [`MAX_BAN_DURATION`] is a permanent ban, and the reply's note says so. A target the
/// jail already bans gets the new ban instead.
pub fn ban(
    set: &mut JailSet,
    now: Time,
    target: Target,
    jail: Option<&str>,
    duration: Option<u64>,
    permanent: bool,
    force: bool,
) -> Result<BanData, ErrorBody> {
    let idx = match jail {
        Some(_) => selected(set, jail)?[0],
        None if set.is_empty() => {
            return Err(ErrorBody::new(ErrorKind::NotFound, "no jail configured"));
        }
        None => 0,
    };
    let note = duration
        .filter(|&d| !permanent && d > MAX_BAN_DURATION.as_secs())
        .map(|d| {
            format!(
                "{d} s is longer than the kernel can time ({} s, about {} years): banned \
                 permanently",
                MAX_BAN_DURATION.as_secs(),
                MAX_BAN_DURATION.as_secs() / (365 * 86_400)
            )
        });
    let cmd = Command::Ban {
        target: target.0,
        duration: duration.map(Duration::from_secs),
        permanent,
        force,
    };
    set.handle_command(idx, now, cmd).map_err(command_error)?;
    let ban = set
        .engine(idx)
        .active_ban(target.0)
        .ok_or_else(|| ErrorBody::new(ErrorKind::Internal, "ban not recorded"))?;
    Ok(BanData {
        ban: ban_entry(&ban),
        note,
    })
}
