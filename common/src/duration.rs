//! The one duration syntax of stilts, for grids, TOML/JSON config files (coordinator, etcd,
//! worker), command-line flags and environment variables.
//!
//! A duration is one or more `<number><unit>` parts, spaces allowed around units; the number
//! may have a decimal fraction; units are `ms`, `s`, `m` (minutes), `h` and `d`:
//! `"250ms"`, `"30s"`, `"1.5m"`, `"1h30m"`, `"1h 30m"`, `"2d"`. [`format`] writes that syntax
//! back (`"1h30m"`, `"250ms"`).
//!
//! A bare number has no unit. Two older forms are kept for files and scripts that already use
//! them, each with the meaning it always had:
//! - in a config file, an integer (`reaper_period = 250`, `startup_wait_ms = 600`) counts
//!   **milliseconds**;
//! - in a string of a config file (`acquire_wait = "5"`) or on a flag that counted seconds
//!   (`--lease-ttl 30`, `--election-ttl 5`, `stilts health --timeout 5`), it counts **seconds**
//!   ([`parse_or_seconds`]).
//!
//! Grids refuse a bare number (they always did): write the unit.

use std::fmt;
use std::time::Duration;

/// The units, in the order [`format`] writes them, with their length in nanoseconds.
const UNITS: [(&str, u128); 5] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// What is wrong with a duration's text; its message quotes the text and shows how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    /// What is wrong, e.g. `has a number without a unit`.
    pub reason: &'static str,
}

impl DurationError {
    fn new(text: &str, reason: &'static str) -> Self {
        Self {
            text: text.to_string(),
            reason,
        }
    }
}

/// An example of the syntax, for error messages.
pub const EXAMPLE: &str =
    "write it as \"30s\", \"250ms\", \"1.5m\" or \"1h30m\" (units ms, s, m, h, d)";

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "duration {:?} {}: {EXAMPLE}", self.text, self.reason)
    }
}

impl std::error::Error for DurationError {}

/// Parses the duration syntax; a bare number (no unit) is refused.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    parse_with(text, None)
}

/// [`parse`], but a bare number (`"30"`) counts seconds: the older form of the worker's config
/// strings and of the flags that counted seconds.
pub fn parse_or_seconds(text: &str) -> Result<Duration, DurationError> {
    parse_with(text, Some(1_000_000_000))
}

fn parse_with(text: &str, bare_unit_ns: Option<u128>) -> Result<Duration, DurationError> {
    let err = |reason| DurationError::new(text, reason);
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err("is empty"));
    }
    if let Some(unit) = bare_unit_ns
        && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        let ns = part_ns(rest, unit)
            .map_err(|r| err(if r == MALFORMED { "is not a number" } else { r }))?;
        return to_duration(ns).ok_or_else(|| err(TOO_LARGE));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(err("does not start with a number"));
        }
        let number = &rest[..number_len];
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "" => return Err(err("has a number without a unit")),
            u => UNITS
                .iter()
                .find(|(name, _)| *name == u)
                .map(|(_, ns)| *ns)
                .ok_or_else(|| err("has an unknown unit"))?,
        };
        let ns = part_ns(number, unit).map_err(err)?;
        total = total.checked_add(ns).ok_or_else(|| err(TOO_LARGE))?;
        rest = rest[unit_len..].trim_start();
    }
    to_duration(total).ok_or_else(|| err(TOO_LARGE))
}

const MALFORMED: &str = "has a malformed number";
const TOO_LARGE: &str = "is too large";

/// `number` (digits with at most one `.`, digits on at least one side) times `unit_ns`,
/// exact to the nanosecond.
fn part_ns(number: &str, unit_ns: u128) -> Result<u128, &'static str> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(MALFORMED);
    }
    // Only ASCII digits are left: a failed parse is an overflow.
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| TOO_LARGE)?
    };
    let mut ns = whole.checked_mul(unit_ns).ok_or(TOO_LARGE)?;
    // Digits past the 18th are below a nanosecond for every unit: drop them.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().map_err(|_| MALFORMED)?;
        ns = ns
            .checked_add(digits * unit_ns / 10u128.pow(fraction.len() as u32))
            .ok_or(TOO_LARGE)?;
    }
    Ok(ns)
}

fn to_duration(ns: u128) -> Option<Duration> {
    let secs = u64::try_from(ns / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (ns % 1_000_000_000) as u32))
}

/// Writes `d` in the syntax [`parse`] reads: its largest units first (`"1h30m"`, `"90ms"`,
/// `"0s"`); below a millisecond, a fraction of `ms` (`"0.25ms"`).
pub fn format(d: Duration) -> String {
    let mut ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (name, unit) in UNITS {
        let n = ns / unit;
        ns %= unit;
        if name == "ms" && ns != 0 {
            let fraction = format!("{ns:06}");
            out.push_str(&format!("{n}.{}ms", fraction.trim_end_matches('0')));
        } else if n != 0 {
            out.push_str(&format!("{n}{name}"));
        }
    }
    out
}

/// Serde `with` module for a [`Duration`] field of a config file: written as text ([`format`]),
/// read from text ([`parse_or_seconds`]) or from an integer count of milliseconds (the older
/// form). An `Option<Duration>` field uses [`serde::option`].
pub mod serde {
    use std::time::Duration;

    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"30s\", \"250ms\", \"1.5m\" or \"1h30m\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_millis(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_millis)
                .map_err(|_| E::custom(format!("duration {v} is negative: {}", super::EXAMPLE)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse_or_seconds(v).map_err(E::custom)
        }
    }

    /// The same for `Option<Duration>` (absent or none = `None`).
    pub mod option {
        use std::time::Duration;

        use serde::de::Deserializer;
        use serde::ser::Serializer;
        use serde::{Deserialize, Serialize};

        #[derive(Serialize, Deserialize)]
        #[serde(transparent)]
        struct Wrapped(#[serde(with = "super")] Duration);

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            d.map(Wrapped).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn every_form_the_project_writes_parses() {
        for (text, want) in [
            ("250ms", ms(250)),
            ("20ms", ms(20)),
            ("10s", ms(10_000)),
            ("90s", ms(90_000)),
            ("1.5m", ms(90_000)),
            ("5m", ms(300_000)),
            ("1m", ms(60_000)),
            ("6h", ms(6 * 3_600_000)),
            ("1h30m", ms(5_400_000)),
            ("1h 30m", ms(5_400_000)),
            ("1.5h", ms(5_400_000)),
            ("2d", ms(172_800_000)),
            (" 1d ", ms(86_400_000)),
            ("0.5s", ms(500)),
            (".5s", ms(500)),
            ("1s500ms", ms(1_500)),
            ("0s", Duration::ZERO),
            ("0.0001ms", Duration::from_nanos(100)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text:?}");
            assert_eq!(parse_or_seconds(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn a_bare_number_is_seconds_only_where_asked() {
        assert_eq!(parse_or_seconds("3"), Ok(ms(3_000)));
        assert_eq!(parse_or_seconds("30"), Ok(ms(30_000)));
        assert_eq!(parse_or_seconds("1.5"), Ok(ms(1_500)));
        let e = parse("30").unwrap_err();
        assert_eq!(e.reason, "has a number without a unit");
        assert_eq!(
            e.to_string(),
            "duration \"30\" has a number without a unit: write it as \"30s\", \"250ms\", \
             \"1.5m\" or \"1h30m\" (units ms, s, m, h, d)"
        );
    }

    #[test]
    fn malformed_text_is_refused_with_the_reason() {
        for (text, reason) in [
            ("", "is empty"),
            ("  ", "is empty"),
            ("h", "does not start with a number"),
            ("s", "does not start with a number"),
            ("3 weeks", "has an unknown unit"),
            ("6 hours", "has an unknown unit"),
            ("1h30", "has a number without a unit"),
            ("1..5s", "has a malformed number"),
            (".s", "has a malformed number"),
            ("-1s", "does not start with a number"),
            ("99999999999999999999s", "is too large"),
            ("999999999999999999999999999999999999999d", "is too large"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.reason, reason, "{text:?}");
            assert_eq!(e.text, text);
            assert!(e.to_string().contains("\"30s\""), "{e}");
        }
        assert_eq!(
            parse_or_seconds("1.2.3").unwrap_err().reason,
            "is not a number"
        );
    }

    #[test]
    fn format_writes_what_parse_reads() {
        for (d, text) in [
            (ms(250), "250ms"),
            (ms(30_000), "30s"),
            (ms(90_000), "1m30s"),
            (ms(5_400_000), "1h30m"),
            (ms(86_400_000 + 1), "1d1ms"),
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(250_000), "0.25ms"),
            (Duration::new(1, 1), "1s0.000001ms"),
        ] {
            assert_eq!(format(d), text);
            assert_eq!(parse(text), Ok(d), "{text}");
        }
    }

    #[derive(Debug, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
    struct Fields {
        #[serde(with = "super::serde")]
        a: Duration,
        #[serde(default, with = "super::serde::option")]
        b: Option<Duration>,
    }

    #[test]
    fn config_files_take_text_or_integer_milliseconds() {
        let f: Fields = toml::from_str("a = \"1h30m\"\nb = \"1.5m\"").unwrap();
        assert_eq!(
            f,
            Fields {
                a: ms(5_400_000),
                b: Some(ms(90_000))
            }
        );
        let f: Fields = toml::from_str("a = 250").unwrap();
        assert_eq!(
            f,
            Fields {
                a: ms(250),
                b: None
            }
        );
        let f: Fields = toml::from_str("a = \"5\"").unwrap();
        assert_eq!(f.a, ms(5_000));
        let back: Fields = toml::from_str(&toml::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert_eq!(
            serde_json::to_string(&Fields {
                a: ms(90_000),
                b: Some(ms(20))
            })
            .unwrap(),
            r#"{"a":"1m30s","b":"20ms"}"#
        );
        let e = toml::from_str::<Fields>("a = \"3 weeks\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a = \"3 weeks\""), "names the field: {e}");
        assert!(e.contains("has an unknown unit"), "{e}");
        assert!(e.contains("\"1h30m\""), "shows an example: {e}");
        let e = toml::from_str::<Fields>("a = -5").unwrap_err().to_string();
        assert!(e.contains("duration -5 is negative"), "{e}");
    }
}
