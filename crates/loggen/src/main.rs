//! `portcullis-loggen`: writes a deterministic sshd auth.log and its ground truth.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use portcullis_loggen::{
    Config, Format, SiteConfig, Truth, generate, generate_site, parse_start, write_rotated,
};

/// Timestamp style of the generated lines.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// `Nov 20 00:00:01 host sshd[1234]: msg`
    Syslog,
    /// `2026-11-20T00:00:01.123456+00:00 host sshd[1234]: msg`
    Rfc3339,
}

/// Generate a realistic, deterministic sshd auth.log with exact ground truth.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Exact number of lines to write.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Exact number of distinct attacking addresses (each appears at least once).
    #[arg(long, default_value_t = 2_000)]
    attackers: u64,
    /// PRNG seed; the same options and seed give byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of attackers that are IPv6 (2001:db8::/32).
    #[arg(long, default_value_t = 0.2)]
    ipv6_share: f64,
    /// Target share of lines from other programs (cron, sudo, logind, kernel).
    #[arg(long, default_value_t = 0.4)]
    noise_share: f64,
    /// Time of the first line (UTC), YYYY-MM-DDTHH:MM:SSZ.
    #[arg(long, default_value = "2026-11-20T00:00:00Z")]
    start: String,
    /// Mean time between lines, milliseconds.
    #[arg(long, default_value_t = 250)]
    mean_gap_ms: u64,
    /// Timestamp style.
    #[arg(long, value_enum, default_value_t = FormatArg::Syslog)]
    format: FormatArg,
    /// Host name in every line.
    #[arg(long, default_value = "gate")]
    host: String,
    /// Number of breaches (failures, then `Accepted password`).
    #[arg(long, default_value_t = 2)]
    breaches: u32,
    /// Share of the log (its tail) logged as `sshd-session[pid]` (OpenSSH 9.8+).
    #[arg(long, default_value_t = 0.3)]
    sshd_session_share: f64,
    /// Leave out attackers whose user names embed other addresses.
    #[arg(long)]
    no_injections: bool,
    /// Write the ground truth (JSON) to this file.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Write the log to this file instead of stdout.
    #[arg(long, conflicts_with = "gzip_rotate")]
    out: Option<PathBuf>,
    /// Write a logrotate-style set into this directory instead
    /// (auth.log.N.gz … auth.log.2.gz, auth.log.1, auth.log).
    #[arg(long)]
    gzip_rotate: Option<PathBuf>,
    /// Number of files of the rotated set.
    #[arg(long, default_value_t = 5)]
    rotate_parts: u32,
    /// Site mode (issue 15): this many days of a whole site's traffic (legitimate users and
    /// their typos, background scanners) instead of `--lines`; RFC 3339 stamps.
    #[arg(long)]
    site_days: Option<u32>,
    /// Site mode: legitimate users.
    #[arg(long, default_value_t = 40)]
    site_users: u32,
    /// Site mode: new background scanner addresses per hour.
    #[arg(long, default_value_t = 3.0)]
    scanners_per_hour: f64,
    /// Site mode: addresses of a distributed campaign (0: none).
    #[arg(long, default_value_t = 0)]
    campaign_addrs: u32,
    /// Site mode: 1 to this many tries per campaign address.
    #[arg(long, default_value_t = 3)]
    campaign_tries: u32,
    /// Site mode: the campaign starts this many hours in.
    #[arg(long, default_value_t = 168)]
    campaign_start_hour: u32,
    /// Site mode: the campaign lasts this many hours.
    #[arg(long, default_value_t = 72)]
    campaign_hours: u32,
    /// Site mode: the campaign targets this existing account only.
    #[arg(long)]
    campaign_user: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("portcullis-loggen: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(days) = args.site_days {
        let cfg = SiteConfig {
            start: parse_start(&args.start)?,
            days,
            users: args.site_users,
            scanners_per_hour: args.scanners_per_hour,
            campaign_addrs: args.campaign_addrs,
            campaign_tries: args.campaign_tries,
            campaign_start_hour: args.campaign_start_hour,
            campaign_hours: args.campaign_hours,
            campaign_user: args.campaign_user.clone(),
            seed: args.seed,
            host: args.host.clone(),
            ..SiteConfig::default()
        };
        let truth = match &args.out {
            Some(path) => {
                let file = File::create(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                generate_site(&cfg, BufWriter::new(file))?
            }
            None => generate_site(&cfg, BufWriter::new(io::stdout().lock()))?,
        };
        if let Some(path) = &args.truth {
            let mut w = BufWriter::new(File::create(path)?);
            serde_json::to_writer_pretty(&mut w, &truth)?;
            w.write_all(b"\n")?;
            w.flush()?;
        }
        return Ok(());
    }
    let config = {
        let mut c = Config::default();
        c.lines = args.lines;
        c.attackers = args.attackers;
        c.seed = args.seed;
        c.ipv6_share = args.ipv6_share;
        c.noise_share = args.noise_share;
        c.start = parse_start(&args.start)?;
        c.mean_gap_us = args.mean_gap_ms.saturating_mul(1_000);
        c.format = match args.format {
            FormatArg::Syslog => Format::Syslog,
            FormatArg::Rfc3339 => Format::Rfc3339,
        };
        c.host = args.host;
        c.breaches = args.breaches;
        c.sshd_session_share = args.sshd_session_share;
        c.injections = !args.no_injections;
        c
    };
    config.validate()?;
    let truth = if let Some(dir) = &args.gzip_rotate {
        let (truth, set) = write_rotated(&config, dir, args.rotate_parts)?;
        for f in &set.files {
            eprintln!("wrote {}", f.display());
        }
        truth
    } else if let Some(path) = &args.out {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        generate(&config, file)?
    } else {
        let stdout = io::stdout().lock();
        match generate(&config, stdout) {
            Ok(t) => t,
            // `… | head` closes the pipe: not an error worth a message.
            Err(portcullis_loggen::GenerateError::Write(e))
                if e.kind() == io::ErrorKind::BrokenPipe =>
            {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(path) = &args.truth {
        write_truth(path, &truth).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn write_truth(path: &PathBuf, truth: &Truth) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut w, truth)?;
    w.write_all(b"\n")?;
    w.flush()
}
