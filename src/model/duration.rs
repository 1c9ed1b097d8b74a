//! Go-style durations (`90s`, `72h`, `1h30m`, `87600h`), as Vault and
//! cert-manager write them. Compared after normalising to whole seconds.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration in whole seconds, written in Go syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Duration {
    /// The longest duration Vault (and cert-manager) can hold: Go's
    /// `time.Duration` is an `int64` of nanoseconds, so 9223372036 whole
    /// seconds (2562047h47m16s). Vault refuses a longer one ("multiplication
    /// of durations resulted in overflow"), even when sent as seconds.
    pub const MAX: Duration = Duration(i64::MAX as u64 / 1_000_000_000);

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs)
    }

    /// The duration in seconds.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Whether this is zero (Vault's "use the default").
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Why a duration string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why}; {hint}")]
pub struct DurationError {
    input: String,
    why: &'static str,
    hint: &'static str,
}

const SYNTAX_HINT: &str = "write it Go-style, e.g. 90s, 30m, 72h or 1h30m";

const NANOS_PER_SEC: u128 = 1_000_000_000;

impl DurationError {
    fn syntax(input: &str, why: &'static str) -> Self {
        DurationError {
            input: input.to_string(),
            why,
            hint: SYNTAX_HINT,
        }
    }

    fn too_long(input: &str) -> Self {
        DurationError {
            input: input.to_string(),
            why: "it is longer than Vault can hold (Go durations stop at 2562047h47m16s)",
            hint: "write at most 2562047h; 87600h (10 years) is a long CA lifetime",
        }
    }
}

/// The nanoseconds of one Go-style number (`90`, `1.5`, `.5`) in a unit of
/// `unit` nanoseconds; `None` on overflow. Fraction digits past the
/// nanosecond are dropped, as Go does.
fn scaled(number: &str, unit: u128) -> Result<Option<u128>, &'static str> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err("not a number");
    }
    let mut total: u128 = 0;
    for d in int.bytes() {
        let Some(t) = total
            .checked_mul(10)
            .and_then(|t| t.checked_add(u128::from(d - b'0')))
        else {
            return Ok(None);
        };
        total = t;
    }
    let Some(mut total) = total.checked_mul(unit) else {
        return Ok(None);
    };
    let mut place = unit;
    for d in frac.bytes().take(30) {
        place /= 10;
        total += u128::from(d - b'0') * place;
    }
    Ok(Some(total))
}

/// The nanoseconds of a Go-style duration (and Vault's `d`): the one
/// parser behind [`Duration`]'s `FromStr` and [`parse_std`].
fn nanos(s: &str) -> Result<u128, DurationError> {
    let err = |why| DurationError::syntax(s, why);
    let text = s.trim();
    if text.is_empty() {
        return Err(err("it is empty"));
    }
    if text == "0" {
        return Ok(0);
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("a number needs a unit (s, m, h, d)"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let number = &rest[..num_len];
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            // Not Go, but what Vault accepts and people write.
            "d" => 86400 * NANOS_PER_SEC,
            _ => return Err(err("unknown unit (use s, m, h or d)")),
        };
        let part = scaled(number, unit).map_err(err)?;
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| DurationError::too_long(s))?;
        rest = &rest[unit_len..];
    }
    // Whole seconds, rounded half up, must fit in Go's duration.
    if total.saturating_add(NANOS_PER_SEC / 2) / NANOS_PER_SEC > u128::from(Duration::MAX.0) {
        return Err(DurationError::too_long(s));
    }
    Ok(total)
}

impl FromStr for Duration {
    type Err = DurationError;

    /// Parses a Go-style duration, rounded to the nearest second.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ns = nanos(s)?;
        let secs = (ns + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
        Ok(Duration(
            u64::try_from(secs).map_err(|_| DurationError::too_long(s))?,
        ))
    }
}

/// Parses a Go-style duration to the nanosecond, for settings finer than
/// [`Duration`]'s whole seconds (the watch debounce): `500ms`, `1.5s`,
/// `2m`. The same syntax and limits as [`Duration`]'s `FromStr`.
pub fn parse_std(s: &str) -> Result<std::time::Duration, DurationError> {
    let ns = nanos(s)?;
    let secs = u64::try_from(ns / NANOS_PER_SEC).map_err(|_| DurationError::too_long(s))?;
    // Below one second: always fits.
    let sub = u32::try_from(ns % NANOS_PER_SEC).unwrap_or(0);
    Ok(std::time::Duration::new(secs, sub))
}

impl fmt::Display for Duration {
    /// The shortest Go-style form: `72h`, `1h30m`, `90s` -> `1m30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 % 3600 / 60, self.0 % 60);
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A Go-style duration: 90s, 30m, 72h, 1h30m, 87600h.",
            "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h|d))+$|^0$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        for (text, secs) in [
            ("90s", 90),
            ("72h", 259_200),
            ("1h30m", 5400),
            ("87600h", 315_360_000),
            ("1m", 60),
            ("0", 0),
            ("0s", 0),
            ("1.5h", 5400),
            ("2d", 172_800),
        ] {
            assert_eq!(text.parse::<Duration>().unwrap().as_secs(), secs, "{text}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for text in ["", "72", "h", "10y", "1h-3m", "abc", "1.2.3s", ".h"] {
            let err = text.parse::<Duration>().unwrap_err();
            assert!(err.to_string().contains("Go-style"), "{text}: {err}");
        }
    }

    /// Regression: `999999999h` passed validate and failed in apply with
    /// "multiplication of durations resulted in overflow".
    #[test]
    fn durations_longer_than_go_can_hold_are_refused() {
        assert_eq!(Duration::MAX.as_secs(), 9_223_372_036);
        assert_eq!(Duration::MAX.to_string(), "2562047h47m16s");
        for ok in ["2562047h", "2562047h47m16s", "9223372036s"] {
            assert!(ok.parse::<Duration>().is_ok(), "{ok}");
        }
        for text in ["999999999h", "2562048h", "9223372037s", "106752d"] {
            let err = text.parse::<Duration>().unwrap_err().to_string();
            assert!(err.contains("longer than Vault can hold"), "{text}: {err}");
            assert!(err.contains("write at most 2562047h"), "{text}: {err}");
        }
    }

    #[test]
    fn parses_to_the_nanosecond_for_finer_settings() {
        use std::time::Duration as Std;
        for (text, want) in [
            ("500ms", Std::from_millis(500)),
            ("300ms", Std::from_millis(300)),
            ("1.5s", Std::from_millis(1500)),
            ("2m", Std::from_secs(120)),
            ("1h30m", Std::from_secs(5400)),
            ("250us", Std::from_micros(250)),
            ("7ns", Std::from_nanos(7)),
            ("0", Std::ZERO),
        ] {
            assert_eq!(parse_std(text), Ok(want), "{text}");
        }
        for text in ["", "ms", "1y", "1..5s", ".s", "500"] {
            let err = parse_std(text).unwrap_err().to_string();
            assert!(err.contains("Go-style"), "{text}: {err}");
        }
        assert!(
            parse_std("9999999999999999999999999999999999999999h")
                .unwrap_err()
                .to_string()
                .contains("longer than Vault can hold")
        );
    }

    /// Whole seconds are the nearest ones: what Vault is sent.
    #[test]
    fn rounds_to_the_nearest_second() {
        for (text, secs) in [
            ("500ms", 1),
            ("499ms", 0),
            ("1.5s", 2),
            (".5m", 30),
            ("1.s", 1),
        ] {
            assert_eq!(text.parse::<Duration>().unwrap().as_secs(), secs, "{text}");
        }
    }

    #[test]
    fn displays_shortest_form() {
        assert_eq!(Duration::from_secs(259_200).to_string(), "72h");
        assert_eq!(Duration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(Duration::from_secs(90).to_string(), "1m30s");
        assert_eq!(Duration::from_secs(0).to_string(), "0s");
    }
}
