//! `portcullis`: the command-line front end and daemon driver.
//!
//! This crate only parses flags, wires the libraries together and prints; the detection logic
//! lives in `portcullis-core`.

mod cli;
mod logfiles;
mod pipeline;
mod scan;
mod text;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Scan(args) => scan::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("portcullis: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
