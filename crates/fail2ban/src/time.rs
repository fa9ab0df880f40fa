//! Fail2Ban time strings (`MyTime.str2seconds`): `600`, `10m`, `1h 30m`, `1d12h`, `-1`,
//! `1year-6mo`; units s, m, h, d, w, mo, y and their long forms, case-insensitive. A month
//! is a year / 12 and a year 365.25 days, as in Fail2Ban.

/// Seconds per unit name (every spelling Fail2Ban's unit patterns accept).
fn unit_seconds(unit: &str) -> Option<f64> {
    const DAY: f64 = 86_400.0;
    const YEAR: f64 = (365.0 * 3.0 + 366.0) * DAY / 4.0;
    let u = unit.to_ascii_lowercase();
    Some(match u.as_str() {
        "s" | "ss" | "se" | "sec" | "second" | "seconds" => 1.0,
        "m" | "mm" | "mi" | "min" | "minute" | "minutes" => 60.0,
        "h" | "hh" | "ho" | "hou" | "hour" | "hours" => 3_600.0,
        "d" | "dd" | "da" | "day" | "days" => DAY,
        "w" | "ww" | "we" | "wee" | "week" | "weeks" => 7.0 * DAY,
        "mo" | "mon" | "month" | "months" => YEAR / 12.0,
        "y" | "yy" | "ye" | "yea" | "year" | "years" => YEAR,
        _ => return None,
    })
}

/// Parse a Fail2Ban time string into seconds (negative values are kept: `-1` means
/// "forever" for `bantime`). Terms are summed; `+`/`-` between terms, or whitespace (an
/// implicit `+`). Full Python expressions beyond that are rejected.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let bad = || format!("expected a Fail2Ban time such as 600, 10m, 1h 30m or -1, found {text:?}");
    let mut total = 0.0;
    let mut chars = text.trim().chars().peekable();
    let mut terms = 0;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut sign = 1.0;
        if first == '+' || first == '-' {
            if first == '-' {
                sign = -1.0;
            }
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        }
        let mut number = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut unit = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphabetic() {
                unit.push(c);
                chars.next();
            } else {
                break;
            }
        }
        let scale = if unit.is_empty() {
            1.0
        } else {
            unit_seconds(&unit).ok_or_else(bad)?
        };
        total += sign * value * scale;
        terms += 1;
    }
    if terms == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail2ban_time_strings() {
        for (text, want) in [
            ("600", 600.0),
            ("10m", 600.0),
            ("1h 30m", 5_400.0),
            ("0d 1h 30m", 5_400.0),
            ("1hour+30min", 5_400.0),
            ("1d12h", 129_600.0),
            ("1w", 604_800.0),
            ("-1", -1.0),
            ("1year-6mo", 15_778_800.0),
            ("6 months", 15_778_800.0),
            ("2.5h", 9_000.0),
            ("1 H", 3_600.0),
        ] {
            assert_eq!(parse_seconds(text), Ok(want), "{text}");
        }
        for bad in ["", "soon", "10 parsecs", "1h*2"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
