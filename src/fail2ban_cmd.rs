//! `portcullis import-fail2ban`: read a Fail2Ban configuration (`portcullis-fail2ban`) and
//! write portcullis TOML whose jails run Fail2Ban's filter files, plus a report of
//! everything not carried over; optionally copy the bans in force from Fail2Ban's database.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result};
use portcullis_core::Time;
use portcullis_core::event::{Ban, BanReason, Decision};
use portcullis_fail2ban::{FAIL2BAN_DB, Import, ImportOptions, Severity, active_bans};

/// Flags of `import-fail2ban`.
#[derive(Debug, clap::Args)]
pub struct ImportFail2BanArgs {
    /// The Fail2Ban configuration directory.
    #[arg(value_name = "DIR", default_value = "/etc/fail2ban")]
    pub dir: PathBuf,
    /// Write OUT/portcullis.toml and OUT/fail2ban-import-report.txt (default: print the TOML
    /// on stdout and the report on stderr).
    #[arg(long, value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// Resolve host names in `ignoreip` now and allowlist their addresses (default: report
    /// them as not carried).
    #[arg(long)]
    pub resolve_hostnames: bool,
    /// Also copy the bans in force from Fail2Ban's SQLite database into portcullis's state
    /// database (the daemon puts them in the firewall when it starts).
    #[arg(long)]
    pub import_bans: bool,
    /// Fail2Ban's database (with --import-bans).
    #[arg(long, value_name = "FILE", default_value = FAIL2BAN_DB)]
    pub fail2ban_db: PathBuf,
    /// portcullis's state directory (`state.db` inside), with --import-bans.
    #[arg(long, value_name = "DIR", env = "PORTCULLIS_STATE_DIR", default_value = portcullis_config::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// Run the import; exit 0 when the configuration was read (the report says what was not
/// carried over), an error when it could not be.
pub fn run(args: &ImportFail2BanArgs) -> Result<ExitCode> {
    let options = ImportOptions {
        resolve_hostnames: args.resolve_hostnames,
    };
    let import = Import::load(&args.dir, &options).with_context(|| {
        format!(
            "cannot import the Fail2Ban configuration in {}",
            args.dir.display()
        )
    })?;
    let toml = import.to_toml();
    let mut report = import.report.to_string();
    let not_carried = import.report.with_severity(Severity::NotCarried).count();
    let approximated = import.report.with_severity(Severity::Approximated).count();
    let summary = format!(
        "imported {} jail(s) ({}), {} disabled; {not_carried} setting(s) not carried, {approximated} approximated\n",
        import.config.jails.len(),
        import
            .config
            .jails
            .iter()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        import.config.disabled_jails.len(),
    );
    if args.import_bans {
        report.push_str(&import_bans(args)?);
    }
    match &args.out {
        Some(out) => {
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let config = out.join("portcullis.toml");
            std::fs::write(&config, &toml)
                .with_context(|| format!("cannot write {}", config.display()))?;
            let report_path = out.join("fail2ban-import-report.txt");
            std::fs::write(&report_path, format!("{report}{summary}"))
                .with_context(|| format!("cannot write {}", report_path.display()))?;
            print!("{report}{summary}");
            println!("wrote {} and {}", config.display(), report_path.display());
        }
        None => {
            print!("{toml}");
            eprint!("{report}{summary}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Copy Fail2Ban's bans in force into the state database; a line per ban for the report.
fn import_bans(args: &ImportFail2BanArgs) -> Result<String> {
    let now_secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (bans, bad) =
        active_bans(&args.fail2ban_db, now_secs).context("cannot read Fail2Ban's bans")?;
    let mut lines = String::new();
    for ip in &bad {
        lines.push_str(&format!(
            "NOT CARRIED: ban of {ip:?}: not an address or network\n"
        ));
    }
    let decisions: Vec<Decision> = bans
        .iter()
        .map(|b| {
            Decision::Ban(Ban {
                target: b.target,
                jail: b.jail.clone().into_boxed_str(),
                since: Time::from_secs(b.since),
                until: b.until.map(Time::from_secs),
                ban_no: b.bancount,
                reason: BanReason::Restored,
            })
        })
        .collect();
    let db = args.state_dir.join("state.db");
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create {}", args.state_dir.display()))?;
    let mut store = portcullis_store::Store::open(&db)
        .with_context(|| format!("cannot open the state database {}", db.display()))?;
    store
        .apply(&decisions, Time::from_secs(now_secs))
        .context("cannot store the imported bans")?;
    lines.push_str(&format!(
        "note: imported {} ban(s) in force from {} into {}\n",
        decisions.len(),
        args.fail2ban_db.display(),
        db.display()
    ));
    Ok(lines)
}
