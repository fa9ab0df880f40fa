//! Running the firewall tools: no shell, a prefix (for `ip netns exec`), stdin, a timeout.
//!
//! Arguments are only our own names, formatted addresses and numbers; log text never
//! reaches a command line or a script.

use std::ffi::OsString;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::FirewallConfig;
use crate::error::{CommandError, ConfigError};
use crate::nft::error_chain;
use crate::watch::OwnWork;

/// How much of a tool's stderr we keep in an error.
const STDERR_KEEP: usize = 2000;

/// What both kernel backends hold: their validated configuration, the runner of their tools,
/// and the last failure of a mutating operation (for `portcullis status`).
#[derive(Debug)]
pub(crate) struct Tools {
    /// Names, hooks, verdict, binaries.
    pub config: FirewallConfig,
    /// Runs the tools with the configured prefix and timeout.
    pub runner: Runner,
    /// The last failure of setup/apply/reconcile/teardown; `None` after a success.
    last_error: Option<String>,
}

impl Tools {
    /// Validate `config` and set up its runner. Touches nothing.
    pub fn new(config: FirewallConfig) -> Result<Tools, ConfigError> {
        config.validate()?;
        let runner = Runner::new(config.command_prefix.clone(), config.command_timeout);
        Ok(Tools {
            config,
            runner,
            last_error: None,
        })
    }

    /// The last error of setup/apply/reconcile/teardown, if the last such call failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Remember how a mutating operation ended.
    pub fn note<E: std::error::Error>(&mut self, err: Option<&E>) {
        self.last_error = err.map(|e| error_chain(e));
    }
}

/// Runs tools with the configured prefix and timeout.
#[derive(Clone, Debug)]
pub(crate) struct Runner {
    /// Words before the tool (e.g. `ip netns exec ns1`); empty normally.
    prefix: Vec<String>,
    /// Kill and report a tool that runs longer than this.
    timeout: Duration,
    /// The processes it started, for the kernel watch to tell our changes from others'.
    pub own: Arc<OwnWork>,
}

/// What a tool that ran to completion produced.
pub(crate) struct Finished {
    /// Exit status (success or not).
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// The start of stderr.
    pub stderr: String,
    /// The command line, for errors.
    pub command: String,
}

impl Finished {
    /// `Ok(stdout)` when the tool succeeded, else the failure as an error.
    pub fn success(self) -> Result<Vec<u8>, CommandError> {
        if self.status.success() {
            Ok(self.stdout)
        } else {
            Err(CommandError::Failed {
                command: self.command,
                status: self.status,
                stderr: self.stderr,
            })
        }
    }
}

impl Runner {
    pub fn new(prefix: Vec<String>, timeout: Duration) -> Runner {
        Runner {
            prefix,
            timeout,
            own: Arc::default(),
        }
    }

    /// `program args` behind the prefix, in the C locale, and its description for errors.
    pub fn command(&self, program: &Path, args: &[&str]) -> (Command, String) {
        let mut words: Vec<OsString> = self.prefix.iter().map(OsString::from).collect();
        words.push(program.as_os_str().to_owned());
        words.extend(args.iter().map(OsString::from));
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]).env("LC_ALL", "C");
        (cmd, describe(&words))
    }

    /// Run `program args…`, feeding `stdin`, and return its result even if it exited
    /// unsuccessfully. Errors only when it could not run or timed out.
    pub async fn run(
        &self,
        program: &Path,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<Finished, CommandError> {
        let (mut cmd, command) = self.command(program, args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| CommandError::Spawn {
            command: command.clone(),
            source,
        })?;
        if let Some(pid) = child.id() {
            self.own.started(pid);
        }
        let pipe = child.stdin.take();
        let feed = async move {
            if let (Some(mut pipe), Some(data)) = (pipe, stdin) {
                pipe.write_all(&data).await?;
                pipe.shutdown().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let work = async { tokio::join!(feed, child.wait_with_output()) };
        let (fed, output) = match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => {
                return Err(CommandError::Timeout {
                    command,
                    after: self.timeout,
                });
            }
        };
        let output = output.map_err(|source| CommandError::Io {
            command: command.clone(),
            source,
        })?;
        let stderr = truncate(&output.stderr);
        if let Err(source) = fed {
            // A tool that dies early closes its stdin; its own error explains more.
            if output.status.success() {
                return Err(CommandError::Io { command, source });
            }
        }
        Ok(Finished {
            status: output.status,
            stdout: output.stdout,
            stderr,
            command,
        })
    }

    /// Run and require success; returns stdout.
    pub async fn output(
        &self,
        program: &Path,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, CommandError> {
        self.run(program, args, stdin).await?.success()
    }
}

fn describe(words: &[OsString]) -> String {
    let mut s = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&w.to_string_lossy());
    }
    s
}

fn truncate(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(STDERR_KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_with_prefix_and_stdin() {
        let r = Runner::new(vec!["env".to_owned()], Duration::from_secs(5));
        let out = r
            .output(Path::new("cat"), &[], Some(b"hello".to_vec()))
            .await
            .unwrap();
        assert_eq!(out, b"hello");
    }

    #[tokio::test]
    async fn failure_keeps_stderr() {
        let r = Runner::new(Vec::new(), Duration::from_secs(5));
        let err = r
            .output(Path::new("sh"), &["-c", "echo boom >&2; exit 3"], None)
            .await
            .unwrap_err();
        match err {
            CommandError::Failed { stderr, status, .. } => {
                assert_eq!(stderr, "boom");
                assert_eq!(status.code(), Some(3));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn timeout_kills() {
        let r = Runner::new(Vec::new(), Duration::from_millis(200));
        let t = std::time::Instant::now();
        let err = r
            .output(Path::new("sleep"), &["5"], None)
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err:?}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn missing_binary_is_spawn_error() {
        let r = Runner::new(Vec::new(), Duration::from_secs(5));
        let err = r
            .output(Path::new("/nonexistent/portcullis-nft"), &[], None)
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Spawn { .. }), "{err:?}");
    }
}
