//! Human-friendly units in the config file: byte sizes (`"64KiB"`) and durations (`"120s"`).
//!
//! Both are parsed by small hand-written functions so the accepted spellings are exactly the
//! ones documented in `tapline.example.toml`, and a wrong one gets a message listing them.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Spellings accepted for a byte size, quoted in error messages.
const SIZE_HINT: &str = "a number of bytes or a string like \"64KiB\", \"4MiB\", \"1GiB\", \
                         \"512KB\" or \"100B\"";

/// Spellings accepted for a duration, quoted in error messages.
const DURATION_HINT: &str = "a string like \"500ms\", \"120s\", \"2m\" or \"1h\"";

/// Size units, longest suffix first so `"KiB"` is tried before `"B"`.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("b", 1),
];

/// Binary units used when displaying a size, largest first.
const DISPLAY_UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
];

/// A number of bytes, written in the file as an integer or a string such as `"64KiB"`.
///
/// Binary suffixes (`KiB`, `MiB`, `GiB`, `TiB`) are powers of 1024, decimal ones (`KB`, `MB`,
/// `GB`, `TB`) powers of 1000, `B` is bytes; suffixes are case-insensitive and may follow
/// the number after a space. Displays in the largest binary unit that divides it exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` kibibytes.
    pub const fn kib(n: u64) -> Self {
        Self(n << 10)
    }

    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }

    /// `n` gibibytes.
    pub const fn gib(n: u64) -> Self {
        Self(n << 30)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &(name, unit) in DISPLAY_UNITS {
            if self.0 != 0 && self.0.is_multiple_of(unit) {
                return write!(f, "{}{name}", self.0 / unit);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    /// Parses `"4MiB"`, `"512 KB"`, `"100B"` or a bare `"1024"`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid size {text:?}: expected {SIZE_HINT}");
        let trimmed = text.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, suffix) = trimmed.split_at(digits_end);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let suffix = suffix.trim_start().to_ascii_lowercase();
        let unit = if suffix.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| *name == suffix)
                .map(|&(_, unit)| unit)
                .ok_or_else(bad)?
        };
        number
            .checked_mul(unit)
            .map(ByteSize)
            .ok_or_else(|| format!("size {text:?} is too large (more than 2^64 bytes)"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SIZE_HINT)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses a duration: a whole number followed by `ms`, `s`, `m` or `h` (`"120s"`, `"500ms"`).
///
/// # Errors
///
/// A message quoting the text and listing the accepted spellings.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected {DURATION_HINT}");
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, suffix) = trimmed.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds_per = match suffix.trim_start() {
        "ms" => return Ok(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    number
        .checked_mul(seconds_per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {text:?} is too large"))
}

/// Formats a duration in the largest unit of [`parse_duration`] that divides it exactly.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        0 => "0s".to_owned(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}

/// `#[serde(with = "crate::units::duration")]` for a [`Duration`] written as `"120s"`.
pub(crate) mod duration {
    use super::*;

    /// Deserializes a duration string with [`parse_duration`].
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(DURATION_HINT)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map_err(E::custom)
            }
        }

        d.deserialize_str(DurationVisitor)
    }

    /// Serializes a duration with [`format_duration`].
    pub(crate) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_every_documented_spelling() {
        let cases = [
            ("64KiB", 64 << 10),
            ("4MiB", 4 << 20),
            ("1GiB", 1 << 30),
            ("2TiB", 2 << 40),
            ("512KB", 512_000),
            ("3MB", 3_000_000),
            ("1GB", 1_000_000_000),
            ("100B", 100),
            ("100", 100),
            ("4 mib", 4 << 20),
            (" 8kib ", 8 << 10),
            ("0B", 0),
        ];
        for (text, bytes) in cases {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_rejected_with_the_accepted_spellings() {
        for text in [
            "",
            "KiB",
            "4 potatoes",
            "-1MiB",
            "1.5GiB",
            "4MiBs",
            "4 M i B",
            "0x10",
        ] {
            let err = text.parse::<ByteSize>().unwrap_err();
            assert!(err.contains("expected a number of bytes"), "{text}: {err}");
        }
        let err = "20000000TiB".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("too large"), "{err}");
        let err = "99999999999999999999".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("invalid size"), "{err}");
    }

    #[test]
    fn sizes_display_in_the_largest_exact_binary_unit() {
        assert_eq!(ByteSize::mib(4).to_string(), "4MiB");
        assert_eq!(ByteSize::kib(1536).to_string(), "1536KiB");
        assert_eq!(ByteSize::gib(1).to_string(), "1GiB");
        assert_eq!(ByteSize(512_000).to_string(), "500KiB");
        assert_eq!(ByteSize(100).to_string(), "100B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }

    #[test]
    fn durations_parse_and_format() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("120s", Duration::from_secs(120)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            (" 30 s ", Duration::from_secs(30)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        for text in ["", "120", "soon", "1.5s", "2 minutes", "-1s", "1d", "10S"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("invalid duration"), "{text}: {err}");
        }
        assert!(parse_duration("99999999999999999h").is_err());
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    }
}
