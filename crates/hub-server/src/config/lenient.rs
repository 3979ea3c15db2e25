//! Lenient field readers: flags and environment variables arrive as text
//! ("10", "12345"), TOML as typed values; numeric settings accept both,
//! text settings accept a number as its text (a secret may be all digits,
//! and figment reads such a variable as a number; in the TOML file a text
//! setting must be a string, checked before these readers run),
//! switches accept `true`/`false`, `1`/`0`, `yes`/`no` and `on`/`off`
//! (`PROGRESS_HUB_MEMORY=1`), and lists are comma-separated text or, in
//! TOML, an array of strings.

use serde::de::{Deserializer, Error};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrScalar {
    Text(String),
    Num(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl TextOrScalar {
    /// The value as text (a number as its digits).
    fn into_text(self) -> String {
        match self {
            TextOrScalar::Text(s) => s,
            TextOrScalar::Num(n) => n.to_string(),
            TextOrScalar::Int(n) => n.to_string(),
            TextOrScalar::Float(f) => f.to_string(),
            TextOrScalar::Bool(b) => b.to_string(),
        }
    }
}

/// A whole number, from a number or its text.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = match TextOrScalar::deserialize(d)? {
        TextOrScalar::Num(n) => return Ok(n),
        TextOrScalar::Text(s) => s,
        other => other.into_text(),
    };
    text.trim()
        .parse()
        .map_err(|_| D::Error::custom(format!("expected a whole number, found `{text}`")))
}

/// A whole number that fits a `usize`.
pub fn usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = u64(d)?;
    usize::try_from(n).map_err(|_| D::Error::custom(format!("{n} is too large")))
}

/// A whole number that fits a `u32`.
pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u64(d)?;
    u32::try_from(n).map_err(|_| D::Error::custom(format!("{n} is too large")))
}

/// Optional text; a number is taken as its text.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<TextOrScalar>::deserialize(d)?.map(TextOrScalar::into_text))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Switch {
    Bool(bool),
    Num(u64),
    Text(String),
}

/// A switch, from a boolean, 0 or 1, or their usual words.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let unknown = |v: &dyn std::fmt::Display| {
        D::Error::custom(format!(
            "expected true or false (or 1/0, yes/no, on/off), found `{v}`"
        ))
    };
    match Switch::deserialize(d)? {
        Switch::Bool(b) => Ok(b),
        Switch::Num(0) => Ok(false),
        Switch::Num(1) => Ok(true),
        Switch::Num(n) => Err(unknown(&n)),
        Switch::Text(s) => switch_word(&s).ok_or_else(|| unknown(&s)),
    }
}

/// A switch written as a word: true/false, 1/0, yes/no, on/off (any case,
/// spaces around ignored); None for anything else. Settings and the SSE
/// `conflate` parameter read switches this one way.
pub fn switch_word(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrText {
    List(Vec<String>),
    Text(String),
}

/// A list as comma-separated text: from such text, or from an array of
/// strings (TOML), joined with commas.
pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_list(d)?.unwrap_or_default())
}

/// An optional list, as [`list`].
pub fn opt_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<ListOrText>::deserialize(d)
        .map_err(|_| D::Error::custom("expected comma-separated text or an array of strings"))?;
    Ok(value.map(|v| match v {
        ListOrText::List(items) => items.join(","),
        ListOrText::Text(s) => s,
    }))
}

/// Durations: text like `500ms`, `10s`, `2m`, `1h 30m` (humantime), or the
/// number 0 (an environment variable `=0` reads as a number). Another bare
/// number is refused, as on the command line: it needs a unit. So is a
/// duration so long that adding it to a timestamp could overflow.
pub mod duration {
    use super::TextOrScalar;
    use serde::de::{Deserializer, Error};
    use serde::{Deserialize, Serializer};
    use std::time::Duration;

    /// The longest duration taken (about 146 million years: far past any
    /// sensible setting, and safe to add to a millisecond timestamp).
    pub const MAX: Duration = Duration::from_millis(u64::MAX / 4);

    /// Reads a duration (see the module).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let parsed = match TextOrScalar::deserialize(d)? {
            TextOrScalar::Num(0) => Duration::ZERO,
            TextOrScalar::Num(n) => {
                return Err(D::Error::custom(format!(
                    "`{n}` has no unit: expected a duration like 500ms, 10s or 2m"
                )))
            }
            other => {
                let s = other.into_text();
                humantime_serde::re::humantime::parse_duration(s.trim()).map_err(|e| {
                    D::Error::custom(format!(
                        "`{s}` is not a duration ({e}): expected one like 500ms, 10s or 2m"
                    ))
                })?
            }
        };
        if parsed > MAX {
            return Err(D::Error::custom("too long a duration"));
        }
        Ok(parsed)
    }

    /// Writes a duration as humantime text.
    pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        humantime_serde::serialize(v, s)
    }
}
