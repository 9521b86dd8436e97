//! Human units for limits: byte sizes (`256MiB`) and durations (`2s`, `500ms`).
//!
//! Both parse strictly: a number, an optional unit, nothing else. Ambiguity is an error rather
//! than a guess, because a limit read wrongly is a limit not enforced.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// One kibibyte (1024 bytes).
    pub const KIB: u64 = 1024;
    /// One mebibyte.
    pub const MIB: u64 = 1024 * 1024;
    /// One gibibyte.
    pub const GIB: u64 = 1024 * 1024 * 1024;

    /// A size of `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        Self(n * Self::MIB)
    }

    /// A size of `n` kibibytes.
    pub const fn kib(n: u64) -> Self {
        Self(n * Self::KIB)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

/// Why a size or a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The text is empty or has no leading number.
    #[error("{input:?} is not a number followed by a unit")]
    NoNumber {
        /// The text given.
        input: String,
    },
    /// The unit is not one this parser knows.
    #[error("unknown unit {unit:?} in {input:?} (expected one of {expected})")]
    UnknownUnit {
        /// The text given.
        input: String,
        /// The unit found.
        unit: String,
        /// The units accepted.
        expected: &'static str,
    },
    /// The value does not fit.
    #[error("{input:?} is too large")]
    Overflow {
        /// The text given.
        input: String,
    },
    /// A number of bytes with a fraction (`1.5B`): no limit can hold half a byte, and
    /// rounding it would enforce another limit than the one written.
    #[error("{input:?} is not a whole number of bytes")]
    FractionalBytes {
        /// The text given.
        input: String,
    },
    /// An age reaching back before the system clock's range.
    #[error("{input} ago is before the clock's range")]
    BeforeClock {
        /// The text given.
        input: String,
    },
}

const SIZE_UNITS: &str = "B, KiB, MiB, GiB, TiB, K, M, G, T, KB, MB, GB, TB";
const DURATION_UNITS: &str = "ns, us, ms, s, m, h";

/// Splits `"2.5MiB"` into `(2.5 as text, "MiB")`.
fn split_number(input: &str) -> Result<(&str, &str), UnitError> {
    let s = input.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(end);
    // An underscore separates digits (`1_000MiB`), and nothing else: `_64MiB`, `6_.4` and
    // `1_s` were read as numbers.
    let bytes = number.as_bytes();
    let stray_underscore = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'_'
            && !(i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    if number.is_empty() || number.chars().all(|c| c == '.' || c == '_') || stray_underscore {
        return Err(UnitError::NoNumber {
            input: input.to_owned(),
        });
    }
    Ok((number, unit.trim()))
}

/// A decimal text times an integer factor, rounded down (no float rounding), and whether it
/// was whole (nothing rounded away). Digits past the 18th after the point count only for
/// that.
fn scale(input: &str, number: &str, factor: u128) -> Result<(u128, bool), UnitError> {
    let number = number.replace('_', "");
    let (int, frac) = number.split_once('.').unwrap_or((&number, ""));
    let no_number = || UnitError::NoNumber {
        input: input.to_owned(),
    };
    let overflow = || UnitError::Overflow {
        input: input.to_owned(),
    };
    if frac.contains('.') {
        return Err(no_number());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| overflow())?
    };
    let digits = frac
        .chars()
        .map(|c| c.to_digit(10).map(u128::from).ok_or_else(no_number))
        .collect::<Result<Vec<_>, _>>()?;
    let (kept, dropped) = digits.split_at(digits.len().min(18));
    // Below 10^18 and 10^18: times any factor of a unit here (at most 3.6e12 ns in an hour,
    // 2^40 bytes in a TiB) it fits a u128. The fraction as a whole, not digit by digit, so
    // that nothing is lost but what is below the unit (0.3333KiB is 341 bytes, not 340).
    let (numerator, denominator) = kept
        .iter()
        .fold((0u128, 1u128), |(n, d), digit| (n * 10 + digit, d * 10));
    let fraction = numerator.checked_mul(factor).ok_or_else(overflow)?;
    let value = int
        .checked_mul(factor)
        .and_then(|v| v.checked_add(fraction / denominator))
        .ok_or_else(overflow)?;
    let whole = fraction % denominator == 0 && dropped.iter().all(|d| *d == 0);
    Ok((value, whole))
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (number, unit) = split_number(input)?;
        let factor: u128 = match unit {
            "" | "B" | "b" => 1,
            "K" | "k" | "KiB" | "Ki" => 1 << 10,
            "M" | "m" | "MiB" | "Mi" => 1 << 20,
            "G" | "g" | "GiB" | "Gi" => 1 << 30,
            "T" | "t" | "TiB" | "Ti" => 1 << 40,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            _ => {
                return Err(UnitError::UnknownUnit {
                    input: input.to_owned(),
                    unit: unit.to_owned(),
                    expected: SIZE_UNITS,
                })
            }
        };
        let (bytes, whole) = scale(input, number, factor)?;
        if factor == 1 && !whole {
            // A fraction of a larger unit is rounded down to the byte (1.1KiB is 1126 bytes);
            // one of a byte itself is a limit no one can mean.
            return Err(UnitError::FractionalBytes {
                input: input.to_owned(),
            });
        }
        u64::try_from(bytes)
            .map(ByteSize)
            .map_err(|_| UnitError::Overflow {
                input: input.to_owned(),
            })
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(Self::GIB, "GiB"), (Self::MIB, "MiB"), (Self::KIB, "KiB")];
        for (size, name) in units {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{name}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The largest whole number every `f64` below it holds exactly: a number written with a
/// fraction or an exponent (`1.0`, `1e3`) beyond it may have been rounded as it was read.
const EXACT_IN_F64: f64 = 9_007_199_254_740_992.0;

impl<'de> Deserialize<'de> for ByteSize {
    /// Text as [`FromStr`] reads it, or a number of bytes. A visitor rather than an untagged
    /// enum, so that a number with a fraction or a sign is refused saying so, as the same
    /// number as text is, not with serde's "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: text with a unit (256MiB) or a whole number of bytes")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{n} is not a size: it is negative")))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<ByteSize, E> {
                if n.is_sign_negative() && n != 0.0 {
                    Err(E::custom(format!("{n} is not a size: it is negative")))
                } else if n.fract() != 0.0 || !n.is_finite() {
                    Err(E::custom(format!("{n} is not a whole number of bytes")))
                } else if n > EXACT_IN_F64 {
                    Err(E::custom(format!(
                        "{n} is too large for a number with a fraction or an exponent: write it as a whole number or as text"
                    )))
                } else {
                    // Whole and exact (checked above): the cast loses nothing.
                    Ok(ByteSize(n as u64))
                }
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ByteSize, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Parses a duration such as `2s`, `500ms`, `1.5s`, `2m`. A bare number is seconds.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let (number, unit) = split_number(input)?;
    let nanos_per_unit: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "" | "s" | "sec" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(UnitError::UnknownUnit {
                input: input.to_owned(),
                unit: unit.to_owned(),
                expected: DURATION_UNITS,
            })
        }
    };
    // What is below a nanosecond is rounded away: no clock here counts it.
    let (nanos, _) = scale(input, number, nanos_per_unit)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| UnitError::Overflow {
        input: input.to_owned(),
    })?;
    let sub = u32::try_from(nanos % 1_000_000_000).expect("remainder below 1e9 fits in u32");
    Ok(Duration::new(secs, sub))
}

/// The point `input` (an age, [`parse_age`]) before `now`: the `since` of `warden history`,
/// `warden stats` and the server's `/v1/history` and `/v1/stats`, one parser so that the CLI
/// and the server refuse the same ages. One reaching back before the clock's range is
/// refused, not read as "everything".
pub fn parse_since(input: &str, now: SystemTime) -> Result<SystemTime, UnitError> {
    let age = parse_age(input)?;
    now.checked_sub(age).ok_or_else(|| UnitError::BeforeClock {
        input: input.to_owned(),
    })
}

/// Parses an age, how long ago something happened: [`parse_duration`]'s units, and whole days
/// (`30d`) and weeks (`2w`), which retention periods are counted in.
pub fn parse_age(input: &str) -> Result<Duration, UnitError> {
    let days = |n: &str, per: u64| -> Result<Duration, UnitError> {
        let n: u64 = n.trim().parse().map_err(|_| UnitError::NoNumber {
            input: input.to_owned(),
        })?;
        let secs = n
            .checked_mul(per * 86_400)
            .ok_or_else(|| UnitError::Overflow {
                input: input.to_owned(),
            })?;
        Ok(Duration::from_secs(secs))
    };
    if let Some(n) = input.strip_suffix('d') {
        days(n, 1)
    } else if let Some(n) = input.strip_suffix('w') {
        days(n, 7)
    } else {
        parse_duration(input).map_err(|e| match e {
            // An age also takes days and weeks: say so.
            UnitError::UnknownUnit { input, unit, .. } => UnitError::UnknownUnit {
                input,
                unit,
                expected: AGE_UNITS,
            },
            other => other,
        })
    }
}

const AGE_UNITS: &str = "ns, us, ms, s, m, h, d, w";

/// Formats a duration the way [`parse_duration`] reads it back (`1500ms`, `2s`).
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else if d.as_nanos().is_multiple_of(1_000) {
        format!("{}us", d.as_micros())
    } else {
        // Below a microsecond: `0us` would not read back as the same (or any valid) limit.
        format!("{}ns", d.as_nanos())
    }
}

/// Formats a duration for a person, in its largest whole unit (`24h`, `10min`, `90s`,
/// `10ms`), as docs/cli.md's tables write limits; [`parse_duration`] reads it back.
/// [`format_duration`] keeps seconds, which stored and exported values are written in.
pub fn format_duration_human(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return format_duration(d);
    }
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}min", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Serde adapter for `Duration` fields written as human text (`with = "crate::units::human_duration"`).
pub mod human_duration {
    use super::{format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `2s` / `500ms`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Reads `2s` / `500ms`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `Option<Duration>` fields written as human text.
pub mod human_duration_opt {
    use super::{format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `2s` / `500ms`, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads `2s` / `500ms`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Serde adapter for `Duration` fields of the configuration, written as an age ([`parse_age`]:
/// `30d`, `2w`, `12h`, `500ms`), so that every duration of `warden.toml` takes the same units.
pub mod human_age {
    use super::parse_age;
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    /// Writes `2s` / `500ms`, as durations are written.
    pub use super::human_duration::serialize;

    /// Reads `30d` / `2w` / `12h` / `500ms`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_age(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `Option<Duration>` fields written as an age ([`parse_age`]: `30d`, `2w`,
/// `12h`).
pub mod human_age_opt {
    use super::parse_age;
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    /// Writes `2s` / `500ms`, or nothing, as durations are written.
    pub use super::human_duration_opt::serialize;

    /// Reads `30d` / `2w` / `12h`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| parse_age(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression hunt L4: `{"memory": 1.5}` was refused with `data did not match any variant
    /// of untagged enum Raw`, where `"1.5"` says it is not a whole number of bytes.
    #[test]
    fn a_size_given_as_a_number_is_refused_for_what_is_wrong_with_it() {
        let read = |json: &str| serde_json::from_str::<ByteSize>(json).map_err(|e| e.to_string());
        for (json, why) in [
            ("1.5", "1.5 is not a whole number of bytes"),
            ("268435456.5", "268435456.5 is not a whole number of bytes"),
            ("-1", "-1 is not a size: it is negative"),
            ("-1.5", "-1.5 is not a size: it is negative"),
            ("1e300", "too large"),
            (
                "true",
                "a size: text with a unit (256MiB) or a whole number of bytes",
            ),
            ("\"1.5\"", "\"1.5\" is not a whole number of bytes"),
        ] {
            let message = read(json).expect_err(json);
            assert!(message.contains(why), "{json}: {message}");
        }
        for (json, bytes) in [
            ("0", 0),
            ("268435456", 268_435_456),
            ("268435456.0", 268_435_456),
            ("1e3", 1000),
            ("18446744073709551615", u64::MAX),
            ("\"256MiB\"", 256 << 20),
        ] {
            assert_eq!(read(json), Ok(ByteSize(bytes)), "{json}");
        }
    }

    /// Hunt lim 4: an underscore anywhere in a number was dropped, so `_64MiB`, `6_4MiB`'s
    /// kin `64_MiB` and `1_s` were sizes and durations. It separates digits only.
    #[test]
    fn an_underscore_separates_digits_and_nothing_else() {
        assert_eq!("1_024KiB".parse::<ByteSize>(), Ok(ByteSize(1 << 20)));
        assert_eq!(parse_duration("1_000ms"), Ok(Duration::from_secs(1)));
        for size in ["_64MiB", "64_MiB", "6__4MiB", "1_.5MiB", "1._5MiB", "_"] {
            assert!(size.parse::<ByteSize>().is_err(), "{size}");
        }
        for duration in ["1_s", "_1s", "1__0s"] {
            assert!(parse_duration(duration).is_err(), "{duration}");
        }
    }

    #[test]
    fn ages_take_days_and_weeks() {
        assert_eq!(parse_age("2d"), Ok(Duration::from_secs(2 * 86_400)));
        // Hunt cli 7: the server read an age before the clock's range as everything, the
        // CLI refused it.
        let now = SystemTime::now();
        assert_eq!(
            super::parse_since("1h", now),
            Ok(now - Duration::from_secs(3600))
        );
        assert_eq!(
            super::parse_since("18446744073709551615s", now)
                .expect_err("before the clock")
                .to_string(),
            "18446744073709551615s ago is before the clock's range"
        );
        assert_eq!(parse_age("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(90 * 60)));
        assert!(parse_age("1.5d").is_err());
        assert!(parse_age("soon").is_err());
        // Bug hunt: the error listed only the units of a duration.
        let wrong = parse_age("1y").expect_err("no such unit").to_string();
        assert!(wrong.contains("d, w"), "{wrong}");
    }

    #[test]
    fn sizes_parse_binary_and_decimal_units() {
        let cases = [
            ("256MiB", 256 << 20),
            ("256M", 256 << 20),
            ("1GiB", 1 << 30),
            ("1.5KiB", 1536),
            // Rounded down to the byte, the fraction taken as a whole.
            ("1.1KiB", 1126),
            ("0.3333KiB", 341),
            ("1.0B", 1),
            ("100", 100),
            ("10B", 10),
            ("1MB", 1_000_000),
            (" 64 KiB ", 64 << 10),
        ];
        for (text, bytes) in cases {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
    }

    #[test]
    fn sizes_reject_garbage() {
        for text in [
            "",
            "MiB",
            "12 parsecs",
            "-1M",
            "1.2.3M",
            "99999999999999999999T",
        ] {
            assert!(text.parse::<ByteSize>().is_err(), "{text} should not parse");
        }
        // Bug hunt (net, finding 4): a fraction of a byte was floored in silence
        // (`1.0000001B` read as 1B).
        for text in ["1.0000001B", "1.5", "0.5b", "1.0000000000000000001B"] {
            assert_eq!(
                text.parse::<ByteSize>(),
                Err(UnitError::FractionalBytes {
                    input: text.to_owned()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn sizes_display_in_the_largest_exact_unit() {
        assert_eq!(ByteSize::mib(256).to_string(), "256MiB");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
        assert_eq!(ByteSize(1 << 30).to_string(), "1GiB");
    }

    #[test]
    fn durations_parse() {
        let cases = [
            ("2s", Duration::from_secs(2)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("3", Duration::from_secs(3)),
            ("250us", Duration::from_micros(250)),
        ];
        for (text, d) in cases {
            assert_eq!(parse_duration(text), Ok(d), "{text}");
        }
        for text in ["", "s", "2 fortnights", "-1s", "1e3s"] {
            assert!(parse_duration(text).is_err(), "{text} should not parse");
        }
    }

    #[test]
    fn durations_round_trip_through_text() {
        for d in [
            Duration::from_secs(2),
            Duration::from_millis(1500),
            Duration::from_micros(7),
            // Bug hunt: 0.0009ms was written back as 0us, which an import refuses.
            Duration::from_nanos(900),
            Duration::from_secs(90),
            Duration::from_secs(600),
            Duration::from_secs(86400),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
            assert_eq!(parse_duration(&format_duration_human(d)), Ok(d));
        }
    }

    /// Bug hunt (docs, finding 13): a range was `10ms..=86400s` and a session's bound `600s`
    /// where docs/cli.md and the configuration say `24h` and `10m`.
    #[test]
    fn durations_are_shown_to_people_in_their_largest_whole_unit() {
        for (d, text) in [
            (Duration::from_millis(10), "10ms"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(600), "10min"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(86400), "24h"),
        ] {
            assert_eq!(format_duration_human(d), text);
        }
    }
}
