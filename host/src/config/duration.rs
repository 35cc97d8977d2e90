//! heartbeat's time syntax (cluster-glue `cl_get_msec`): a decimal number of
//! seconds, or with an `ms`/`us` suffix, rounded to whole milliseconds.

use std::time::Duration;

/// Why a time value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a number at all.
    #[error("{0:?} is not a duration")]
    NotANumber(String),
    /// A suffix heartbeat does not understand (notably `s`, which it rejects).
    #[error("{0:?} has an unknown unit {1:?} (heartbeat understands no unit = seconds, \"ms\" and \"us\")")]
    BadUnit(String, String),
    /// Too large to represent.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parse a heartbeat time. Plain numbers are seconds, fractions allowed;
/// `ms`/`msec` and `us`/`usec` (any case) select smaller units.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    // cl_get_msec lets atof stop at a second dot; be stricter, since
    // "1.2.3" is always a typo.
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return Err(DurationError::NotANumber(text.to_string()));
    }
    let unit_l = unit.trim_start().to_ascii_lowercase();
    let micros_per_unit: f64 = match unit_l.as_str() {
        "" => 1_000_000.0,
        "ms" | "msec" => 1_000.0,
        "us" | "usec" => 1.0,
        _ => return Err(DurationError::BadUnit(text.to_string(), unit.to_string())),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| DurationError::NotANumber(text.to_string()))?;
    // Round to milliseconds exactly like heartbeat (+0.5 then truncate).
    let ms = (value * micros_per_unit / 1000.0 + 0.5).floor();
    if !ms.is_finite() || ms > (u64::MAX / 2) as f64 {
        return Err(DurationError::TooLarge(text.to_string()));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Print a duration so that [`parse_duration`] reads it back exactly:
/// whole seconds plain, anything else in `ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.checked_rem(1000) == Some(0) {
        format!("{}", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: &str) -> u128 {
        parse_duration(t).unwrap().as_millis()
    }

    #[test]
    fn heartbeat_examples() {
        assert_eq!(ms("1"), 1000);
        assert_eq!(ms("1000ms"), 1000);
        assert_eq!(ms("1000000us"), 1000);
        assert_eq!(ms("0.1"), 100);
        assert_eq!(ms("100ms"), 100);
        assert_eq!(ms("0.001"), 1);
        assert_eq!(ms("499us"), 0);
        assert_eq!(ms("501us"), 1);
        assert_eq!(ms("200MS"), 200);
        assert_eq!(ms("1.5"), 1500);
        assert_eq!(ms(".5"), 500);
    }

    #[test]
    fn rejects_what_heartbeat_rejects() {
        assert!(matches!(
            parse_duration("five"),
            Err(DurationError::NotANumber(_))
        ));
        assert!(matches!(
            parse_duration("5s"),
            Err(DurationError::BadUnit(_, _))
        ));
        assert!(matches!(
            parse_duration("5min"),
            Err(DurationError::BadUnit(_, _))
        ));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("1.2.3").is_err());
    }

    #[test]
    fn format_round_trips() {
        for t in ["1", "200ms", "0", "1500ms", "30"] {
            let d = parse_duration(t).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }
}
