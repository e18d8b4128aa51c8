//! Durations on the command line: `0s`, `90s`, `5m`, `1h`, `30d` (one number, one unit).

use crate::{Error, Result};

/// Parses `<n><unit>` with unit `s`, `m`, `h` or `d` into seconds.
pub fn parse_secs(s: &str) -> Result<i64> {
    let s = s.trim();
    let bad = || {
        Error::Config(format!(
            "invalid duration {s:?}: use a whole number and a unit, e.g. 90s, 5m, 1h, 30d"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// The clap value parser for duration flags.
pub fn clap_secs(s: &str) -> std::result::Result<i64, String> {
    parse_secs(s).map_err(|e| e.to_string())
}

/// Seconds as the largest whole unit (`2d`, `90s`), for messages.
pub fn fmt_secs(secs: i64) -> String {
    for (unit, m) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs != 0 && secs % m == 0 {
            return format!("{}{unit}", secs / m);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_secs("0s").unwrap(), 0);
        assert_eq!(parse_secs("90s").unwrap(), 90);
        assert_eq!(parse_secs("5m").unwrap(), 300);
        assert_eq!(parse_secs("1h").unwrap(), 3_600);
        assert_eq!(parse_secs(" 30d ").unwrap(), 2_592_000);
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for s in [
            "",
            "5",
            "m",
            "-5m",
            "5 m",
            "1.5h",
            "5w",
            "99999999999999999999d",
        ] {
            assert!(parse_secs(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn formats_with_the_largest_unit() {
        assert_eq!(fmt_secs(0), "0s");
        assert_eq!(fmt_secs(90), "90s");
        assert_eq!(fmt_secs(300), "5m");
        assert_eq!(fmt_secs(86_400 * 365), "365d");
    }
}
