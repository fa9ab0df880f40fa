//! The ban length rule: `bantime × factor^(n-1)` capped at `maxtime`, permanent from the
//! `permanent_after`-th ban.

use std::time::Duration;

use super::config::JailConfig;

/// The length of ban number `n` (1-based) of one offender; `None` means permanent.
///
/// Never shrinks as `n` grows, whatever the config says: a factor below 1 (or NaN) counts
/// as 1, and the product is built by repeated multiplication, whose rounding is monotone,
/// rather than by `powi`, whose rounding is not guaranteed to be.
pub(crate) fn ban_length(config: &JailConfig, n: u32) -> Option<Duration> {
    if config.permanent_after.is_some_and(|k| n >= k) {
        return None;
    }
    let max = config.maxtime.as_secs_f64();
    let factor = if config.factor >= 1.0 {
        config.factor
    } else {
        1.0
    };
    let mut secs = config.bantime.as_secs_f64();
    if factor > 1.0 {
        for _ in 1..n {
            if secs >= max {
                break;
            }
            secs *= factor;
        }
    }
    let length = Duration::try_from_secs_f64(secs).unwrap_or(config.maxtime);
    Some(length.min(config.maxtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_then_goes_permanent() {
        let mut c = JailConfig::new("t");
        c.bantime = Duration::from_secs(600);
        c.factor = 2.0;
        c.maxtime = Duration::from_secs(2000);
        c.permanent_after = Some(4);
        let got: Vec<_> = (1..=5).map(|n| ban_length(&c, n)).collect();
        let s = |x| Some(Duration::from_secs(x));
        assert_eq!(got, [s(600), s(1200), s(2000), None, None]);
    }

    #[test]
    fn odd_factors_never_shrink() {
        let mut c = JailConfig::new("t");
        c.permanent_after = None;
        for factor in [0.5, f64::NAN, 1.0, f64::INFINITY] {
            c.factor = factor;
            let lengths: Vec<_> = (1..40).map(|n| ban_length(&c, n)).collect();
            assert!(
                lengths.windows(2).all(|w| w[0] <= w[1]),
                "{factor}: {lengths:?}"
            );
        }
        c.bantime = Duration::ZERO;
        c.factor = f64::INFINITY;
        assert_eq!(ban_length(&c, 1), Some(Duration::ZERO));
        assert_eq!(ban_length(&c, 2), Some(c.maxtime));
    }
}
