//! `portcullis dist-files DIR` (hidden): the files the Debian package ships that are made
//! from the binary itself, so they always match it — `man/portcullis.8` (every subcommand
//! and its options, from the clap definitions), `man/portcullis.toml.5` and the commented
//! `portcullis.toml` (both from the embedded default, through `ConfigDoc`), and the bash, zsh
//! and fish completions. `packaging/build-deb.sh` runs it on the release binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use portcullis_config::{ConfigDoc, DocItem};

use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct DistFilesArgs {
    /// Directory to write into (created if missing): man/, completions/, portcullis.toml.
    pub dir: PathBuf,
}

pub fn run(args: &DistFilesArgs) -> Result<ExitCode> {
    let man = args.dir.join("man");
    let completions = args.dir.join("completions");
    for dir in [&man, &completions] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write(&man.join("portcullis.8"), &portcullis_8()?)?;
    let doc = ConfigDoc::embedded();
    write(&man.join("portcullis.toml.5"), &portcullis_toml_5(&doc))?;
    write(&args.dir.join("portcullis.toml"), &doc.commented_conffile())?;
    // The names Debian's completion loaders look for.
    for (shell, name) in [
        (Shell::Bash, "portcullis"),
        (Shell::Zsh, "_portcullis"),
        (Shell::Fish, "portcullis.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "portcullis", &mut out);
        write(&completions.join(name), &String::from_utf8_lossy(&out))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn render(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let mut out = Vec::new();
    f(&mut out).context("rendering the man page")?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `portcullis(8)`: clap_mangen's title, synopsis and description of the whole command,
/// then one subsection per visible subcommand with its synopsis, description and options.
fn portcullis_8() -> Result<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let top = Man::new(cmd.clone())
        .section("8")
        .manual("System Administration");
    let mut page = String::new();
    page.push_str(&render(|w| top.render_title(w))?);
    page.push_str(&render(|w| top.render_name_section(w))?);
    page.push_str(&render(|w| top.render_synopsis_section(w))?);
    page.push_str(&render(|w| top.render_description_section(w))?);
    page.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        if name == "help" {
            continue;
        }
        page.push_str(&format!(".SS \"portcullis {name}\"\n"));
        let man = Man::new(sub.clone());
        // Each part renders as its own `.SH` section; here they are paragraphs of one
        // subsection, so the heading line is dropped.
        let parts = [
            render(|w| man.render_synopsis_section(w))?,
            render(|w| man.render_description_section(w))?,
            render(|w| man.render_options_section(w))?,
        ];
        for part in parts {
            for line in part.lines().filter(|l| !l.starts_with(".SH")) {
                page.push_str(line);
                page.push('\n');
            }
            page.push_str(".PP\n");
        }
    }
    let mut tail = Roff::new();
    tail.control("SH", ["EXIT STATUS"])
        .text([roman(
            "0 done; 1 the daemon refused (not found, allowlisted, reload failed) or, for \
             investigate and audit, something is alarming; 2 usage or internal error; 3 daemon not \
             running; 4 permission denied (the control socket is root-only).",
        )])
        .control("SH", ["FILES"]);
    for (path, what) in [
        (
            "/etc/portcullis/portcullis.toml",
            "main configuration file, read on top of the embedded default",
        ),
        (
            "/etc/portcullis/conf.d/*.toml",
            "drop-in files, read after the main file in file-name order",
        ),
        (
            "/var/lib/portcullis/state.db",
            "bans, offender history, source positions, live windows, alerts (SQLite)",
        ),
        ("/run/portcullis/control.sock", "control socket (root only)"),
    ] {
        tail.control("TP", [])
            .text([italic(path)])
            .text([roman(what)]);
    }
    tail.control("SH", ["SEE ALSO"]).text([
        bold("portcullis.toml"),
        roman("(5), "),
        bold("systemctl"),
        roman("(1), "),
        bold("nft"),
        roman("(8), "),
        bold("ipset"),
        roman("(8)"),
    ]);
    page.push_str(&tail.to_roff());
    Ok(page)
}

/// A line kept as it is: indented by two spaces or more (examples, aligned lists), or a
/// commented-out setting such as `timezone = "UTC"` (a key with no default value).
fn verbatim(line: &str) -> bool {
    line.starts_with("  ")
        || line.split_once(" = ").is_some_and(|(key, _)| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
}

/// A comment block as man page paragraphs: plain lines are joined and filled,
/// [`verbatim`] lines are kept as they are. `sep` goes between paragraphs: `PP`, or `IP` to
/// stay indented under a `.TP` tag.
fn paragraphs(roff: &mut Roff, lines: &[String], sep: &str) {
    let mut i = 0;
    let mut first = true;
    while i < lines.len() {
        if lines[i].is_empty() {
            i += 1;
            continue;
        }
        if !first {
            roff.control(sep, []);
        }
        first = false;
        if verbatim(&lines[i]) {
            roff.control("RS", []).control("nf", []);
            while i < lines.len() && verbatim(&lines[i]) {
                roff.text([roman(lines[i].trim_start())]);
                i += 1;
            }
            roff.control("fi", []).control("RE", []);
        } else {
            let mut text = Vec::new();
            while i < lines.len() && !lines[i].is_empty() && !verbatim(&lines[i]) {
                text.push(lines[i].trim());
                i += 1;
            }
            roff.text([roman(text.join(" "))]);
        }
    }
}

/// `portcullis.toml(5)`: the embedded default, table by table, each key with its default
/// value and its comment.
fn portcullis_toml_5(doc: &ConfigDoc) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "PORTCULLIS.TOML",
            "5",
            "",
            &format!("portcullis {version}"),
            "File Formats",
        ],
    )
    .control("SH", ["NAME"])
    .text([roman(
        "portcullis.toml - configuration of the portcullis daemon",
    )])
    .control("SH", ["SYNOPSIS"])
    .text([italic("/etc/portcullis/portcullis.toml")])
    .control("br", [])
    .text([italic("/etc/portcullis/conf.d/*.toml")])
    .control("SH", ["DESCRIPTION"]);
    paragraphs(&mut roff, &doc.preamble, "PP");
    roff.control("PP", []).text([
        roman("The package installs "),
        italic("/etc/portcullis/portcullis.toml"),
        roman(
            " with every key below commented out: remove the # of a table line and of a key \
             to change it. Errors name the file, line and key; ",
        ),
        bold("systemctl reload portcullis"),
        roman(" applies a change, or keeps the running configuration when the file is wrong."),
    ]);
    roff.control("SH", ["KEYS"]);
    for section in &doc.sections {
        roff.control("SS", [format!("[{}]", section.name).as_str()]);
        paragraphs(&mut roff, &section.doc, "PP");
        for item in &section.items {
            match item {
                DocItem::Key { key, value, doc } => {
                    roff.control("TP", [])
                        .text([bold(key.as_str()), roman(format!(" = {value}"))]);
                    if doc.is_empty() {
                        roff.text([roman("(default value)")]);
                    } else {
                        paragraphs(&mut roff, doc, "IP");
                    }
                }
                DocItem::Note(lines) => {
                    roff.control("PP", []);
                    paragraphs(&mut roff, lines, "PP");
                }
            }
        }
    }
    roff.control("SH", ["SEE ALSO"])
        .text([bold("portcullis"), roman("(8)")]);
    roff.to_roff()
}
