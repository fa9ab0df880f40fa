//! `flush [--jail J]`: lift every ban of one jail (or all) and forget its counted failures.

use portcullis_control::ErrorBody;
use portcullis_control::data::FlushData;
use portcullis_core::Time;
use portcullis_core::jail::Command;

use super::selected;
use crate::daemon::jail_set::JailSet;

/// Lift every ban of `jail` and forget its windows; offenders' history stays. With no jail:
/// every configured jail, the bans the store holds for jails no longer configured, and the
/// kernel sets are rewritten to what is left (so an element no ban accounts for goes too).
pub fn flush(set: &mut JailSet, now: Time, jail: Option<&str>) -> Result<FlushData, ErrorBody> {
    let mut removed = 0u64;
    for idx in selected(set, jail)? {
        removed += set.engine(idx).ban_count() as u64;
        // Neither can be refused.
        let _ = set.handle_command(idx, now, Command::UnbanAll);
        let _ = set.handle_command(idx, now, Command::Flush);
    }
    if jail.is_none() {
        removed += set.lift_orphans(now, None).len() as u64;
        set.resync_firewall();
    }
    Ok(FlushData { removed })
}
