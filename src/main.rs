//! `portcullis`: the command-line front end and daemon driver.
//!
//! This crate only parses flags, wires the libraries together and prints; the detection logic
//! lives in `portcullis-core`.

mod audit;
mod campaigns;
mod cli;
mod config;
mod ctl;
mod daemon;
mod dist_files;
mod fail2ban_cmd;
mod filters;
mod fleet_cmd;
mod geo;
mod investigate;
mod logfiles;
mod offline;
mod scan;
mod tally;
mod test_filter;
mod text;
mod top;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Run(args) => daemon::run(&args),
        cli::Command::Scan(args) => scan::run(&args),
        cli::Command::Status(args) => ctl::status(&args),
        cli::Command::Bans(args) => ctl::bans(&args),
        cli::Command::Ban(args) => ctl::ban(&args),
        cli::Command::Unban(args) => ctl::unban(&args),
        cli::Command::Reload(args) => ctl::reload(&args),
        cli::Command::Flush(args) => ctl::flush(&args),
        cli::Command::Top(args) => top::run(&args),
        cli::Command::TestFilter(args) => test_filter::run(&args),
        cli::Command::Investigate(args) => investigate::run(&args),
        cli::Command::Audit(args) => audit::run(&args),
        cli::Command::ImportFail2ban(args) => fail2ban_cmd::run(&args),
        cli::Command::Fleet(args) => fleet_cmd::run(&args),
        cli::Command::DistFiles(args) => dist_files::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("portcullis: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
