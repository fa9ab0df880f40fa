//! Server-side SVG charts. Every mark sits on whole pixels (integer coordinates) so the page
//! renders crisply and a screenshot's coloured area can be checked against the geometry.

use std::fmt::Write;

use portcullis_core::Time;

use crate::colours;
use crate::escape::{push_escaped, show_controls};
use crate::model::TimeBucket;

/// Width of every chart in CSS pixels (fixed, not scaled, so two fit side by side at 1280).
pub(crate) const WIDTH: u32 = 580;
/// Buckets beyond this are merged pairwise: narrower bars than ~4 px stop being readable.
const MAX_BARS: usize = 120;
/// Bars in the horizontal bar charts.
pub(crate) const MAX_ROWS: usize = 15;
/// Characters of a label shown before it is cut (the full text is in the tooltip).
const LABEL_CHARS: usize = 22;

fn open(out: &mut String, height: u32, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label=""#
    );
    push_escaped(out, label);
    out.push_str("\">");
}

fn text(out: &mut String, x: i64, y: i64, anchor: &str, class: &str, body: &str) {
    let _ = write!(
        out,
        r#"<text x="{x}" y="{y}" text-anchor="{anchor}" class="{class}">"#
    );
    push_escaped(out, body);
    out.push_str("</text>");
}

/// A chart of `height` with nothing to show: "no data" in its middle.
fn no_data(height: u32, label: &str) -> String {
    let mut out = String::new();
    open(&mut out, height, label);
    let (x, y) = (i64::from(WIDTH / 2), i64::from(height / 2));
    text(&mut out, x, y, "middle", "muted", "no data");
    out.push_str("</svg>");
    out
}

/// The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above `v` (at least 1): a round axis maximum.
pub(crate) fn nice_ceiling(v: u64) -> u64 {
    let mut mag: u64 = 1;
    loop {
        for m in [10u64, 20, 25, 50] {
            let c = mag.saturating_mul(m) / 10;
            if c >= v.max(1) {
                return c;
            }
        }
        if mag > u64::MAX / 100 {
            return u64::MAX;
        }
        mag *= 10;
    }
}

/// Scale `v` of `max` to `span` pixels, rounded.
fn scale(v: u64, max: u64, span: u32) -> u32 {
    if max == 0 {
        return 0;
    }
    let px = (u128::from(v) * u128::from(span) * 2 + u128::from(max)) / (u128::from(max) * 2);
    u32::try_from(px.min(u128::from(span))).unwrap_or(span)
}

pub(crate) fn format_time(t: Time, pattern: &str) -> String {
    match t.to_timestamp() {
        Some(ts) => ts.strftime(pattern).to_string(),
        None => t.to_string(),
    }
}

fn merge_buckets(buckets: &[TimeBucket]) -> Vec<TimeBucket> {
    let mut v = buckets.to_vec();
    while v.len() > MAX_BARS {
        v = v
            .chunks(2)
            .map(|pair| TimeBucket {
                start: pair[0].start,
                failures: pair.iter().map(|b| b.failures).sum(),
                successes: pair.iter().map(|b| b.successes).sum(),
            })
            .collect();
    }
    v
}

/// Stacked bars: failures (bottom) and successes (top) per time bucket.
pub(crate) fn time_chart(buckets: &[TimeBucket]) -> String {
    const H: u32 = 280;
    const LEFT: u32 = 56;
    const TOP: u32 = 20;
    const PLOT_W: u32 = WIDTH - LEFT - 12;
    const PLOT_H: u32 = 220;
    let buckets = merge_buckets(buckets);
    if buckets.is_empty() {
        return no_data(H, "attempts over time");
    }
    let mut out = String::new();
    open(&mut out, H, "attempts over time");
    let n = buckets.len() as u32;
    let slot = (PLOT_W / n).max(1);
    let gap = if slot >= 4 { slot / 4 } else { 0 };
    let bar_w = slot - gap;
    let max = buckets
        .iter()
        .map(|b| b.failures + b.successes)
        .max()
        .unwrap_or(0);
    let ymax = nice_ceiling(max);
    let base = TOP + PLOT_H;
    for k in 0..=4u32 {
        let y = base - PLOT_H * k / 4;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y}.5" x2="{}" y2="{y}.5" stroke="#dee2e6"/>"##,
            LEFT + n * slot
        );
        let v = ymax.saturating_mul(u64::from(k)) / 4;
        text(
            &mut out,
            i64::from(LEFT - 6),
            i64::from(y + 4),
            "end",
            "axis",
            &v.to_string(),
        );
    }
    for (i, b) in buckets.iter().enumerate() {
        let x = LEFT + i as u32 * slot + gap / 2;
        // A non-zero count never vanishes: failures get at least 1 px, successes 2 px
        // (one success can be the breach), at the cost of slight overstatement.
        let hf = scale(b.failures, ymax, PLOT_H).max(u32::from(b.failures > 0));
        let hs = scale(b.failures + b.successes, ymax, PLOT_H)
            .saturating_sub(hf)
            .max(if b.successes > 0 { 2 } else { 0 });
        let total = hf + hs;
        out.push_str("<g class=\"bucket\"><title>");
        push_escaped(
            &mut out,
            &format!(
                "{}: {} failures, {} successes",
                format_time(b.start, "%Y-%m-%d %H:%M UTC"),
                b.failures,
                b.successes
            ),
        );
        out.push_str("</title>");
        for (height, top, class, colour) in [
            (hf, base - hf, "bar fail", colours::TIME_FAILURES),
            (hs, base - total, "bar ok", colours::TIME_SUCCESSES),
        ] {
            if height > 0 {
                let _ = write!(
                    out,
                    r#"<rect class="{class}" x="{x}" y="{top}" width="{bar_w}" height="{height}" fill="{colour}"/>"#
                );
            }
        }
        out.push_str("</g>");
    }
    // Legend, top right, as marks of the same colours.
    for (i, (colour, name)) in [
        (colours::TIME_FAILURES, "failures"),
        (colours::TIME_SUCCESSES, "successes"),
    ]
    .into_iter()
    .enumerate()
    {
        let x = WIDTH - 170 + i as u32 * 85;
        let _ = write!(
            out,
            r#"<rect class="key" x="{x}" y="2" width="10" height="10" fill="{colour}"/>"#
        );
        text(&mut out, i64::from(x + 14), 11, "start", "axis", name);
    }
    // About five time labels under the axis.
    let every = (buckets.len().div_ceil(5)).max(1);
    for (i, b) in buckets.iter().enumerate().step_by(every) {
        let x = LEFT + i as u32 * slot + slot / 2;
        text(
            &mut out,
            i64::from(x),
            i64::from(base + 18),
            "middle",
            "axis",
            &format_time(b.start, "%m-%d %H:%M"),
        );
    }
    out.push_str("</svg>");
    out
}

/// One row of a horizontal bar chart.
pub(crate) struct Row<'a> {
    /// Shown at the left, cut to [`LABEL_CHARS`].
    pub label: &'a str,
    /// The value the bar stands for.
    pub value: u64,
}

/// Horizontal bars, one per row (at most [`MAX_ROWS`]), labels on the left.
pub(crate) fn bar_chart(rows: &[Row<'_>], colour: &str, what: &str) -> String {
    const ROW_H: u32 = 24;
    const BAR_H: u32 = 16;
    const LABEL_W: u32 = 180;
    const BAR_SPAN: u32 = WIDTH - LABEL_W - 70;
    let rows = &rows[..rows.len().min(MAX_ROWS)];
    let h = (rows.len() as u32).max(2) * ROW_H + 16;
    if rows.is_empty() {
        return no_data(h, what);
    }
    let mut out = String::new();
    open(&mut out, h, what);
    let max = rows.iter().map(|r| r.value).max().unwrap_or(0);
    for (i, r) in rows.iter().enumerate() {
        let y = 8 + i as u32 * ROW_H;
        let w = scale(r.value, max, BAR_SPAN).max(u32::from(r.value > 0));
        out.push_str("<g class=\"row\"><title>");
        push_escaped(&mut out, &format!("{}: {} {what}", r.label, r.value));
        out.push_str("</title>");
        // Cut what will be seen (control characters spelled out), not the raw text.
        let seen = show_controls(r.label);
        let shown: String = if seen.chars().count() > LABEL_CHARS {
            seen.chars().take(LABEL_CHARS - 1).chain(['…']).collect()
        } else {
            seen
        };
        text(
            &mut out,
            i64::from(LABEL_W - 8),
            i64::from(y + BAR_H - 3),
            "end",
            "label",
            &shown,
        );
        let _ = write!(
            out,
            r#"<rect class="bar" x="{LABEL_W}" y="{y}" width="{w}" height="{BAR_H}" fill="{colour}"/>"#
        );
        text(
            &mut out,
            i64::from(LABEL_W + w + 6),
            i64::from(y + BAR_H - 3),
            "start",
            "value",
            &r.value.to_string(),
        );
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

/// Donut geometry, shared with the screenshot test through `donut_arc_area`.
const DONUT_CX: u32 = 130;
const DONUT_R: u32 = 80;
const DONUT_STROKE: u32 = 36;

/// Pixel area a donut arc covering `part` of `total` paints (for the screenshot test).
#[cfg(test)]
pub(crate) fn donut_arc_area(part: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let outer = f64::from(DONUT_R + DONUT_STROKE / 2);
    let inner = f64::from(DONUT_R - DONUT_STROKE / 2);
    std::f64::consts::PI * (outer * outer - inner * inner) * part as f64 / total as f64
}

/// Successes vs failures as a donut with a legend.
pub(crate) fn donut(failures: u64, successes: u64) -> String {
    const H: u32 = 260;
    let cy = H / 2;
    let total = failures + successes;
    let mut out = String::new();
    open(&mut out, H, "successes vs failures");
    let c = 2.0 * std::f64::consts::PI * f64::from(DONUT_R);
    let _ = write!(
        out,
        r##"<circle cx="{DONUT_CX}" cy="{cy}" r="{DONUT_R}" fill="none" stroke="#e9ecef" stroke-width="{DONUT_STROKE}"/>"##
    );
    if total > 0 {
        let f_len = c * failures as f64 / total as f64;
        let s_len = c - f_len;
        // Start at 12 o'clock, failures clockwise, then successes.
        for (len, offset, colour, class) in [
            (f_len, 0.0, colours::DONUT_FAILURES, "arc fail"),
            (s_len, -f_len, colours::DONUT_SUCCESSES, "arc ok"),
        ] {
            if len <= 0.0 {
                continue;
            }
            let _ = write!(
                out,
                r#"<circle class="{class}" cx="{DONUT_CX}" cy="{cy}" r="{DONUT_R}" fill="none" stroke="{colour}" stroke-width="{DONUT_STROKE}" stroke-dasharray="{len:.3} {c:.3}" stroke-dashoffset="{offset:.3}" transform="rotate(-90 {DONUT_CX} {cy})"/>"#
            );
        }
    }
    let pct = |v: u64| {
        if total == 0 {
            "0%".to_owned()
        } else {
            format!("{:.1}%", v as f64 * 100.0 / total as f64)
        }
    };
    text(
        &mut out,
        i64::from(DONUT_CX),
        i64::from(cy + 6),
        "middle",
        "big",
        &total.to_string(),
    );
    let lx = DONUT_CX + DONUT_R + DONUT_STROKE + 40;
    for (i, (colour, name, v)) in [
        (colours::DONUT_FAILURES, "failed attempts", failures),
        (colours::DONUT_SUCCESSES, "successful logins", successes),
    ]
    .into_iter()
    .enumerate()
    {
        let y = cy - 30 + i as u32 * 40;
        let _ = write!(
            out,
            r#"<rect class="key" x="{lx}" y="{y}" width="14" height="14" fill="{colour}"/>"#
        );
        text(
            &mut out,
            i64::from(lx + 22),
            i64::from(y + 12),
            "start",
            "legend",
            &format!("{name}: {v} ({})", pct(v)),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        let got: Vec<u64> = [0, 1, 3, 7, 10, 11, 21, 26, 51, 999, 1001]
            .iter()
            .map(|&v| nice_ceiling(v))
            .collect();
        assert_eq!(got, [1, 1, 5, 10, 10, 20, 25, 50, 100, 1000, 2000]);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn scaling_rounds_and_clamps() {
        assert_eq!(scale(1, 2, 100), 50);
        assert_eq!(scale(1, 3, 100), 33);
        assert_eq!(scale(2, 3, 100), 67);
        assert_eq!(scale(5, 0, 100), 0);
        assert_eq!(scale(u64::MAX, u64::MAX, 100), 100);
    }

    #[test]
    fn many_buckets_are_merged() {
        let b: Vec<TimeBucket> = (0..300)
            .map(|i| TimeBucket {
                start: Time::from_secs(i * 60),
                failures: 1,
                successes: 0,
            })
            .collect();
        let m = merge_buckets(&b);
        assert!(m.len() <= MAX_BARS);
        assert_eq!(m.iter().map(|b| b.failures).sum::<u64>(), 300);
        let svg = time_chart(&b);
        assert_eq!(svg.matches("class=\"bar fail\"").count(), m.len());
    }

    #[test]
    fn stacked_heights_add_up() {
        let svg = time_chart(&[TimeBucket {
            start: Time::EPOCH,
            failures: 3,
            successes: 1,
        }]);
        // ymax = 5 over 220 px: total 176 px, failures 132, successes 44.
        assert!(svg.contains(r##"height="132" fill="#e03131""##), "{svg}");
        assert!(svg.contains(r##"height="44" fill="#2f9e44""##), "{svg}");
    }

    #[test]
    fn empty_charts_say_so() {
        assert!(time_chart(&[]).contains("no data"));
        assert!(bar_chart(&[], "#000", "x").contains("no data"));
        assert!(donut(0, 0).contains(">0<"));
    }
}
