//! `portcullis top`: a live terminal dashboard over the control socket.
//!
//! Key decision: the state is a pure [`app::App`] (replies and keys in, actions out) drawn
//! into a ratatui `Buffer` by [`render`], so layout and keys are unit-tested on ratatui's
//! `TestBackend`; this loop only polls the daemon (`activity`, every `--interval`), reads
//! keys and runs the ban/unban the keys ask for through the same control commands as the
//! CLI (never `force`: allowlist refusals are the daemon's). One connection per request, so
//! a restarted daemon is picked up again without a restart of `top`.

mod app;
mod render;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use portcullis_control::data::{ActivityData, BanData, UnbanData};
use portcullis_control::{Client, ClientError, Command, ErrorBody, Response};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};

use crate::cli::TopArgs;
use crate::text::chain;
use app::{Action, App};

/// How long one request may take before the dashboard says the daemon does not answer
/// (keys stay responsive between polls, not during one).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Entries per list asked for: more than an 80×24 screen shows, enough for a tall one.
const ROWS: u64 = 50;

/// Run the dashboard until `q`.
pub fn run(args: &TopArgs) -> Result<ExitCode> {
    // The first poll before the terminal is taken: no daemon (or no permission) is the
    // same message and exit code as for the other control commands.
    let first = match request(&args.socket, Command::Activity { limit: Some(ROWS) }) {
        Ok(r) => r,
        Err(Failure::Client(e)) => return Ok(crate::ctl::client_error(&e)),
        Err(Failure::Refused(e)) => anyhow::bail!("the daemon refused activity: {}", e.message),
    };
    let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(colour);
    app.on_activity(
        first
            .data_as::<ActivityData>()
            .map_err(|e| anyhow::anyhow!(e.message))?,
    );
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let result = event_loop(&mut terminal, &mut app, args);
    ratatui::try_restore().context("cannot restore the terminal")?;
    result.map(|()| ExitCode::SUCCESS)
}

fn event_loop(terminal: &mut DefaultTerminal, app: &mut App, args: &TopArgs) -> Result<()> {
    let interval = Duration::from_secs(args.interval);
    let mut next_poll = Instant::now() + interval;
    loop {
        terminal
            .draw(|f| {
                let area = f.area();
                render::draw(app, area, f.buffer_mut());
            })
            .context("cannot draw")?;
        if app.quit {
            return Ok(());
        }
        let wait = next_poll.saturating_duration_since(Instant::now());
        if event::poll(wait).context("cannot read the terminal")? {
            if let Event::Key(key) = event::read().context("cannot read the terminal")?
                && key.kind == KeyEventKind::Press
                && let Some(action) = app.on_key(key)
            {
                let done = act(&args.socket, &action);
                app.on_done(done);
                // Show what the action changed at once.
                next_poll = Instant::now();
            }
            continue;
        }
        match request(&args.socket, Command::Activity { limit: Some(ROWS) }) {
            Ok(r) => match r.data_as::<ActivityData>() {
                Ok(d) => app.on_activity(d),
                Err(e) => app.on_link_error(e.message),
            },
            Err(e) => app.on_link_error(e.to_string()),
        }
        next_poll = Instant::now() + interval;
    }
}

/// Why a request gave no data.
enum Failure {
    /// Could not talk to the daemon.
    Client(ClientError),
    /// The daemon answered with an error.
    Refused(ErrorBody),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Client(e) => f.write_str(&chain(e)),
            Failure::Refused(e) => f.write_str(&e.message),
        }
    }
}

/// One request on a fresh connection; a daemon error is a [`Failure::Refused`].
fn request(socket: &Path, command: Command) -> Result<Response, Failure> {
    let mut client =
        Client::connect_with_timeout(socket, REQUEST_TIMEOUT).map_err(Failure::Client)?;
    let response = client.request(command).map_err(Failure::Client)?;
    match &response.result {
        Ok(_) => Ok(response),
        Err(e) => Err(Failure::Refused(e.clone())),
    }
}

/// Run `action`; the status line's text.
fn act(socket: &Path, action: &Action) -> Result<String, String> {
    match *action {
        Action::Ban(target) => {
            let command = Command::Ban {
                target,
                jail: None,
                duration: None,
                permanent: false,
                force: false,
            };
            let r = request(socket, command).map_err(|e| e.to_string())?;
            let data: BanData = r.data_as().map_err(|e| e.message)?;
            let until = match data.ban.until {
                Some(u) => format!("for {}s", u - data.ban.since),
                None => "permanently".into(),
            };
            Ok(format!("banned {target} in {} {until}", data.ban.jail))
        }
        Action::Unban(target) => {
            let command = Command::Unban {
                target: Some(target),
                jail: None,
                all: false,
            };
            let r = request(socket, command).map_err(|e| e.to_string())?;
            let data: UnbanData = r.data_as().map_err(|e| e.message)?;
            let jails: Vec<&str> = data.removed.iter().map(|b| b.jail.as_str()).collect();
            Ok(format!("unbanned {target} ({})", jails.join(", ")))
        }
    }
}
