//! Drawing the dashboard into a ratatui `Buffer`, laid out for 80×24 (larger terminals get
//! wider columns and more rows). Without colour (`NO_COLOR`) nothing sets a foreground or
//! background: emphasis is bold and reverse video only. Attacker-chosen text (user names in
//! alerts, error messages) is shown through `escape_terminal`.

use portcullis_control::data::{ActivityData, AlertEntry, BanEntry};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Clear, Paragraph, Row, Sparkline, StatefulWidget, Table, TableState, Widget,
    Wrap,
};

use super::app::{App, Ended, Mode, Pane};
use crate::text::escape_terminal;

/// The keys, as the help shows them.
const HELP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "select an address"),
    ("Tab ← →", "switch between failing and bans"),
    ("b", "ban the selected address (asks first)"),
    ("u", "unban the selected address"),
    ("?", "this help (any key closes it)"),
    ("q  Esc", "quit"),
];

/// Draw `app` over `area` of `buf`.
///
/// At 80×24: header 1, sparkline 2, failing and bans share what is left (3 and 2 rows at
/// least), networks | sources 5, breach alerts 3–4 (full width: their lines are long),
/// status 1. A taller terminal gives the alerts up to 5 rows and the tables the rest.
pub fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let empty = ActivityData::default();
    let data = app.data.as_ref().unwrap_or(&empty);
    let most_alerts = if area.height >= 30 { 5 } else { 2 };
    let alert_rows = u16::try_from(data.alerts.len().clamp(1, most_alerts)).unwrap_or(1);
    let [header, spark, failing, bans, bottom, alerts, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(5),
        Constraint::Length(alert_rows + 2),
        Constraint::Length(1),
    ])
    .areas(area);
    let [networks, sources] =
        Layout::horizontal([Constraint::Length(38), Constraint::Fill(1)]).areas(bottom);
    let paint = Paint { colour: app.colour };
    draw_header(app, &paint, header, buf);
    draw_rates(app, &paint, spark, buf);
    draw_failing(app, data, &paint, failing, buf);
    draw_bans(app, data, &paint, bans, buf);
    draw_networks(data, &paint, networks, buf);
    draw_sources(data, &paint, sources, buf);
    draw_alerts(data, &paint, alerts, buf);
    draw_status(app, &paint, status, buf);
    if app.mode == Mode::Help {
        draw_help(&paint, area, buf);
    }
}

/// Styles, colourless when colour is off.
struct Paint {
    colour: bool,
}

impl Paint {
    fn fg(&self, c: Color) -> Style {
        if self.colour {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    fn good(&self) -> Style {
        self.fg(Color::Green)
    }

    fn selected(&self) -> Style {
        let s = Style::default().add_modifier(Modifier::REVERSED);
        if self.colour { s.fg(Color::Yellow) } else { s }
    }

    fn block<'a>(&self, title: String) -> Block<'a> {
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, self.title()))
    }
}

fn draw_header(app: &App, paint: &Paint, area: Rect, buf: &mut Buffer) {
    let mut spans = vec![Span::styled("portcullis top", paint.title())];
    if let Some(d) = &app.data {
        spans.push(Span::raw(format!(
            "  attempts {}  bans {} active, {} decided  failing {}",
            d.attempts, d.bans_total, d.bans_decided, d.failing_total
        )));
    }
    if app.link_error.is_some() {
        // Why is on the status line, which has the room.
        spans.push(Span::styled("  NO ANSWER", paint.bad()));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

fn draw_rates(app: &App, paint: &Paint, area: Rect, buf: &mut Buffer) {
    let width = usize::from(area.width);
    let rates: Vec<u64> = app.rates().collect();
    let shown = &rates[rates.len().saturating_sub(width)..];
    let now = shown.last().copied().unwrap_or(0);
    let peak = shown.iter().copied().max().unwrap_or(0);
    let title = format!(" attempts/s: {now} now, {peak} peak in {}s ", shown.len());
    Sparkline::default()
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title(Span::styled(title, paint.title())),
        )
        .style(paint.fg(Color::Yellow))
        .data(shown)
        .render(area, buf);
}

/// Weighted attempts (thousandths) as `3.5`.
fn attempts(weight: u64) -> String {
    format!("{}.{}", weight / 1000, weight % 1000 / 100)
}

/// A table with its header row, in `block`, marking the row a [`place`] selects.
fn table<'a>(
    rows: Vec<Row<'a>>,
    widths: &[Constraint],
    header: &[&'a str],
    block: Block<'a>,
    paint: &Paint,
) -> Table<'a> {
    Table::new(rows, widths.to_vec())
        .header(Row::new(header.to_vec()).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(block)
        .column_spacing(1)
        .row_highlight_style(paint.selected())
        .highlight_symbol(">")
}

/// Draw `table` over `area` with row `selected` marked.
fn place(table: Table<'_>, selected: Option<usize>, area: Rect, buf: &mut Buffer) {
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, area, buf, &mut state);
}

fn focus_title(app: &App, pane: Pane, title: String) -> String {
    if app.focus == pane {
        format!("[{}]", title.trim())
    } else {
        title
    }
}

fn draw_failing(app: &App, d: &ActivityData, paint: &Paint, area: Rect, buf: &mut Buffer) {
    let rows = d
        .failing
        .iter()
        .map(|f| {
            let near = f.threshold > 0 && f.weight * 5 >= f.threshold * 4;
            let score = format!("{}/{}", attempts(f.weight), attempts(f.threshold));
            Row::new(vec![
                Span::raw(f.addr.to_string()),
                Span::raw(f.jail.clone()),
                Span::styled(score, if near { paint.bad() } else { Style::default() }),
            ])
        })
        .collect();
    let title = focus_title(
        app,
        Pane::Failing,
        format!(" failing ({}) ", d.failing_total),
    );
    let selected = (app.focus == Pane::Failing && !d.failing.is_empty())
        .then(|| app.selected_row(Pane::Failing));
    let table = table(
        rows,
        &[
            Constraint::Fill(1),
            Constraint::Max(12),
            Constraint::Length(9),
        ],
        &["address", "jail", "attempts"],
        paint.block(title),
        paint,
    );
    place(table, selected, area, buf);
}

fn draw_networks(d: &ActivityData, paint: &Paint, area: Rect, buf: &mut Buffer) {
    let rows = d
        .networks
        .iter()
        .map(|n| {
            Row::new(vec![
                n.net.to_string(),
                n.addresses.to_string(),
                attempts(n.weight),
            ])
        })
        .collect();
    let table = table(
        rows,
        &[
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(6),
        ],
        &["network", "addrs", "tries"],
        paint.block(" networks ".into()),
        paint,
    );
    place(table, None, area, buf);
}

/// Seconds as `1h02m`, `4m05s`, `12s`.
fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s >= 86_400 => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn time_left(b: &BanEntry, now: i64) -> String {
    match b.until {
        None => "permanent".into(),
        Some(u) => duration(u - now),
    }
}

fn draw_bans(app: &App, d: &ActivityData, paint: &Paint, area: Rect, buf: &mut Buffer) {
    let row = |b: &BanEntry, left: String| {
        vec![
            b.target.to_string(),
            b.jail.clone(),
            left,
            format!("{} ago", duration(d.now - b.since)),
            format!("#{} {}", b.ban_no, b.reason),
        ]
    };
    let active = d.bans.iter().map(|b| Row::new(row(b, time_left(b, d.now))));
    // Bans that ended while watched, below the active ones, dimmed (no colour needed).
    let ended = app.ended.iter().map(|e| {
        let how = match e.how {
            Ended::Expired => "expired",
            Ended::Lifted => "lifted",
        };
        Row::new(row(&e.ban, how.into())).style(Style::default().add_modifier(Modifier::DIM))
    });
    let rows = active.chain(ended).collect();
    let ended_count = if app.ended.is_empty() {
        String::new()
    } else {
        format!(", {} ended", app.ended.len())
    };
    let title = focus_title(
        app,
        Pane::Bans,
        format!(
            " bans, newest first ({} active{ended_count}) ",
            d.bans_total
        ),
    );
    let selected = (app.focus == Pane::Bans && !(d.bans.is_empty() && app.ended.is_empty()))
        .then(|| app.selected_row(Pane::Bans));
    let table = table(
        rows,
        &[
            Constraint::Fill(1),
            Constraint::Max(12),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(14),
        ],
        &["target", "jail", "left", "since", "ban"],
        paint.block(title),
        paint,
    );
    place(table, selected, area, buf);
}

fn alert_line(a: &AlertEntry, now: i64) -> String {
    let user = a
        .user
        .as_deref()
        .map(|u| format!(" as {}", escape_terminal(u)))
        .unwrap_or_default();
    let failures = if a.failures > 0 {
        format!(" after {} failures", a.failures)
    } else {
        String::new()
    };
    format!(
        "{} ago {} {}{user}{failures}",
        duration(now - a.time),
        a.kind,
        a.addr
    )
}

fn draw_alerts(d: &ActivityData, paint: &Paint, area: Rect, buf: &mut Buffer) {
    let lines: Vec<Line> = if d.alerts.is_empty() {
        vec![Line::styled("none", paint.good())]
    } else {
        d.alerts
            .iter()
            .map(|a| Line::styled(alert_line(a, d.now), paint.bad()))
            .collect()
    };
    Paragraph::new(lines)
        .block(paint.block(format!(" breach alerts ({}) ", d.alerts.len())))
        .render(area, buf);
}

fn draw_sources(d: &ActivityData, paint: &Paint, area: Rect, buf: &mut Buffer) {
    let room = usize::from(area.height.saturating_sub(2)).max(1);
    let (shown, more) = if d.sources.len() > room {
        d.sources.split_at(room - 1)
    } else {
        (&d.sources[..], &[][..])
    };
    let mut lines: Vec<Line> = shown
        .iter()
        .map(|s| {
            let key = s.key.strip_prefix("file:").unwrap_or(&s.key);
            let width = usize::from(area.width.saturating_sub(2));
            let key = escape_terminal(key);
            if let Some(e) = &s.error {
                // The file name, then as much of the error as fits (cut by the pane).
                return Line::from(vec![
                    Span::styled(" ERROR ", paint.bad()),
                    Span::raw(tail(&key, SHORT_PATH)),
                    Span::styled(format!(" {}", escape_terminal(e)), paint.bad()),
                ]);
            }
            let lag = s
                .lag_bytes
                .map(|b| format!(" lag {b}B"))
                .unwrap_or_default();
            let counts = format!(" ok {} lines{lag} ", s.lines);
            let room = width.saturating_sub(counts.chars().count());
            Line::from(vec![
                Span::styled(" ok", paint.good()),
                Span::raw(counts[3..].to_string()),
                Span::raw(tail(&key, room)),
            ])
        })
        .collect();
    if !more.is_empty() {
        let failing = more.iter().filter(|s| s.error.is_some()).count();
        let style = if failing > 0 {
            paint.bad()
        } else {
            Style::default()
        };
        lines.push(Line::styled(
            format!(" +{} more, {failing} with errors", more.len()),
            style,
        ));
    }
    Paragraph::new(lines)
        .block(paint.block(format!(" sources ({}) ", d.sources.len())))
        .render(area, buf);
}

/// How much of a failing source's path is shown before its error.
const SHORT_PATH: usize = 18;

/// `text` cut to its last `room` characters behind `…` when longer (a path's file name is
/// what tells sources apart).
fn tail(text: &str, room: usize) -> String {
    let len = text.chars().count();
    if len <= room {
        return text.to_string();
    }
    let keep = room.saturating_sub(1);
    let mut out = String::from("…");
    out.extend(text.chars().skip(len - keep));
    out
}

fn draw_status(app: &App, paint: &Paint, area: Rect, buf: &mut Buffer) {
    let line = match (&app.mode, &app.link_error, &app.status) {
        (Mode::ConfirmBan(_), _, Some(s)) => Line::styled(s.clone(), paint.bad()),
        (_, Some(e), _) => Line::styled(format!("NO ANSWER: {}", escape_terminal(e)), paint.bad()),
        (_, None, Some(s)) => Line::raw(escape_terminal(s).into_owned()),
        (_, None, None) => Line::raw("Tab pane  ↑↓ select  b ban  u unban  ? help  q quit"),
    };
    Paragraph::new(line).render(area, buf);
}

fn draw_help(paint: &Paint, area: Rect, buf: &mut Buffer) {
    let width = 56.min(area.width);
    let height = (HELP.len() as u16 + 4).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>10}  "), paint.title()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "Bans use the jail's ban time; allowlisted addresses are refused.",
    ));
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(paint.block(" keys ".into()))
        .render(popup, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_control::Target;
    use portcullis_control::data::{FailingEntry, NetworkEntry, SourceActivity};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn sample() -> ActivityData {
        let now = 1_800_000_000;
        ActivityData {
            now,
            attempts: 1234,
            bans_decided: 9,
            failing_total: 3,
            failing: vec![
                FailingEntry {
                    jail: "sshd".into(),
                    addr: "203.0.113.77".parse().expect("addr"),
                    weight: 4000,
                    threshold: 5000,
                },
                FailingEntry {
                    jail: "sshd".into(),
                    addr: "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"
                        .parse()
                        .expect("addr"),
                    weight: 1500,
                    threshold: 5000,
                },
            ],
            networks: vec![NetworkEntry {
                jail: "sshd".into(),
                net: Target::parse("203.0.113.0/24").expect("net"),
                addresses: 2,
                weight: 5000,
            }],
            bans_total: 2,
            bans: vec![
                BanEntry {
                    target: Target::parse("198.51.100.7").expect("t"),
                    jail: "sshd".into(),
                    since: now - 65,
                    until: Some(now + 535),
                    ban_no: 1,
                    reason: "threshold".into(),
                    origin: None,
                },
                BanEntry {
                    target: Target::parse("2001:db8::/64").expect("t"),
                    jail: "sshd".into(),
                    since: now - 4000,
                    until: None,
                    ban_no: 3,
                    reason: "aggregate".into(),
                    origin: None,
                },
            ],
            alerts: vec![AlertEntry {
                kind: "breach".into(),
                time: now - 30,
                addr: "192.0.2.66".into(),
                user: Some("ad\u{1b}[31mmin".into()),
                failures: 12,
            }],
            sources: vec![SourceActivity {
                key: "file:/var/log/auth.log".into(),
                jails: vec!["sshd".into()],
                lines: 98765,
                lag_bytes: Some(0),
                error: None,
            }],
        }
    }

    fn render(app: &App) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
        terminal
            .draw(|f| {
                let area = f.area();
                draw(app, area, f.buffer_mut())
            })
            .expect("draw");
        terminal.backend().buffer().clone()
    }

    fn text(buf: &Buffer) -> String {
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    fn app(colour: bool) -> App {
        let mut app = App::new(colour);
        let mut d = sample();
        d.attempts = 1200;
        d.now -= 1;
        app.on_activity(d);
        app.on_activity(sample());
        app
    }

    #[test]
    fn every_pane_fits_in_80_by_24() {
        let buf = render(&app(false));
        let screen = text(&buf);
        // Shown with --nocapture, to look at.
        println!("{screen}");
        for want in [
            "portcullis top",
            "attempts/s: 34 now",
            "203.0.113.77",
            "4.0/5.0",
            // The longest IPv6 address fits its column.
            "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe",
            "203.0.113.0/24",
            "198.51.100.7",
            "8m55s",
            "permanent",
            "1m05s ago",
            "breach 192.0.2.66 as ad\\x1b[31mmin after 12 failures",
            "/var/log/auth.log",
            "98765 lines lag 0B",
            "q quit",
        ] {
            assert!(screen.contains(want), "{want:?} missing from\n{screen}");
        }
        // The selection marker is on the first failing address.
        assert!(screen.contains(">203.0.113.77"), "{screen}");
    }

    #[test]
    fn a_long_source_path_keeps_its_file_name_and_errors_show() {
        let mut a = app(false);
        let d = a.data.as_mut().expect("data");
        d.sources.push(SourceActivity {
            key: "file:/srv/containers/very-long-name/rootfs/var/log/nginx/error.log".into(),
            jails: vec!["nginx-http-auth".into()],
            lines: 7,
            lag_bytes: None,
            error: Some("cannot open: Permission denied".into()),
        });
        let screen = text(&render(&a));
        assert!(
            screen.contains("ERROR …g/nginx/error.log cannot open"),
            "{screen}"
        );
        assert_eq!(tail("abcdef", 4), "…def");
        assert_eq!(tail("abc", 4), "abc");
    }

    #[test]
    fn an_ended_ban_is_listed_below_the_active_ones() {
        let mut a = app(false);
        let mut d = sample();
        let gone = d.bans.remove(0);
        d.bans_total = 1;
        d.now += 1;
        a.on_activity(d);
        let screen = text(&render(&a));
        assert!(screen.contains("(1 active, 1 ended)"), "{screen}");
        let row = screen
            .lines()
            .find(|l| l.contains(&gone.target.to_string()))
            .unwrap_or_default();
        assert!(row.contains("lifted"), "{screen}");
    }

    #[test]
    fn no_colour_sets_no_colour_and_colour_does() {
        let plain = render(&app(false));
        for cell in plain.content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
        }
        let coloured = render(&app(true));
        assert!(
            coloured.content().iter().any(|c| c.fg != Color::Reset),
            "colour mode should use colour"
        );
    }

    #[test]
    fn help_and_prompts_draw_over_the_dashboard() {
        let mut a = app(false);
        a.mode = Mode::Help;
        let screen = text(&render(&a));
        assert!(screen.contains("ban the selected address"), "{screen}");
        let mut a = app(false);
        a.on_key(ratatui::crossterm::event::KeyEvent::from(
            ratatui::crossterm::event::KeyCode::Char('b'),
        ));
        let screen = text(&render(&a));
        assert!(
            screen.contains("ban 203.0.113.77? y to confirm"),
            "{screen}"
        );
        let mut a = app(false);
        a.on_link_error("portcullis is not running".into());
        let screen = text(&render(&a));
        assert!(
            screen.contains("NO ANSWER: portcullis is not running"),
            "{screen}"
        );
    }
}
