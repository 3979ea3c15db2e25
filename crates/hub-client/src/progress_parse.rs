//! Turning a program's output into progress (used by `progress-hub run`).
//!
//! Recognised, in this order: a user regex (named groups `percent`,
//! `current`, `total`, or else the first group as a percentage), tqdm bars
//! (`45%|████▌     | 45/100 [00:01<00:01, 30.00it/s]`), percentages (`42%`,
//! `42.5 %`; the last one on the line wins), and counts (`12/300`,
//! `12 of 300`). Pure: no IO, no clock.

use regex::Regex;
use std::sync::OnceLock;

use crate::error::ClientError;

/// What one line said.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Parsed {
    /// Percentage, 0..=100.
    pub percent: Option<f64>,
    /// Units done.
    pub current: Option<f64>,
    /// Total units.
    pub total: Option<f64>,
}

/// A line parser, optionally with a user pattern.
#[derive(Debug, Clone, Default)]
pub struct ProgressParser {
    pattern: Option<Regex>,
}

fn tqdm() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(\d{1,3}(?:\.\d+)?)%\|[^|]*\|\s*(\d+(?:\.\d+)?)([kMG]?)/(\d+(?:\.\d+)?)([kMG]?)",
        )
        .expect("static regex")
    })
}

fn percent() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(\d{1,3}(?:\.\d+)?)\s?%").expect("static regex"))
}

fn count() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(^|[^\d/.])(\d+)\s*(?:/|\bof\b)\s*(\d+)($|[^\d/.])").expect("static regex")
    })
}

fn scaled(num: &str, suffix: &str) -> Option<f64> {
    let v: f64 = num.parse().ok()?;
    let k = match suffix {
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        _ => 1.0,
    };
    Some(v * k)
}

fn pct(v: f64) -> Option<f64> {
    (v.is_finite() && (0.0..=100.0).contains(&v)).then_some(v)
}

impl ProgressParser {
    /// The built-in rules only.
    pub fn new() -> Self {
        ProgressParser { pattern: None }
    }

    /// The built-in rules plus `pattern`, tried first.
    pub fn with_pattern(pattern: &str) -> Result<Self, ClientError> {
        Ok(ProgressParser {
            pattern: Some(Regex::new(pattern)?),
        })
    }

    /// Whether `line` can hold progress at all: always with a user
    /// pattern; for the built-in rules, only with a digit before a `%`,
    /// or digits on both sides of a `/` or an `of`. A byte scan with no
    /// allocation, much cheaper than [`parse_line`](Self::parse_line),
    /// which finds nothing in a line it rejects (no false negatives).
    pub fn may_hold_progress(&self, line: &str) -> bool {
        if self.pattern.is_some() {
            return true;
        }
        // The digit next to a mark, past any whitespace (`\s` in the rules).
        fn digit(mut chars: impl Iterator<Item = char>) -> bool {
            chars
                .find(|c| !c.is_whitespace())
                .is_some_and(|c| c.is_ascii_digit())
        }
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            // `%`, `/` and `o` are ASCII: `i` is a character boundary.
            let found = match b {
                b'%' => digit(line[..i].chars().rev()),
                b'/' => digit(line[..i].chars().rev()) && digit(line[i + 1..].chars()),
                b'o' if bytes.get(i + 1) == Some(&b'f') => {
                    digit(line[..i].chars().rev()) && digit(line[i + 2..].chars())
                }
                _ => false,
            };
            if found {
                return true;
            }
        }
        false
    }

    /// Parse one line (split output on `\n` and `\r` before calling).
    pub fn parse_line(&self, line: &str) -> Option<Parsed> {
        if let Some(p) = self.pattern.as_ref().and_then(|re| user(re, line)) {
            return Some(p);
        }
        if let Some(c) = tqdm().captures(line) {
            let current = scaled(&c[2], &c[3]);
            let total = scaled(&c[4], &c[5]);
            return Some(Parsed {
                percent: c[1].parse().ok().and_then(pct),
                current,
                total,
            });
        }
        if let Some(v) = percent()
            .captures_iter(line)
            .filter_map(|c| c[1].parse().ok().and_then(pct))
            .last()
        {
            return Some(Parsed {
                percent: Some(v),
                ..Default::default()
            });
        }
        for c in count().captures_iter(line) {
            let (Ok(cur), Ok(tot)) = (c[2].parse::<f64>(), c[3].parse::<f64>()) else {
                continue;
            };
            if tot > 0.0 && cur <= tot {
                return Some(Parsed {
                    percent: pct(cur / tot * 100.0),
                    current: Some(cur),
                    total: Some(tot),
                });
            }
        }
        None
    }
}

fn user(re: &Regex, line: &str) -> Option<Parsed> {
    let c = re.captures(line)?;
    let num = |name: &str| {
        c.name(name)
            .and_then(|m| m.as_str().trim().parse::<f64>().ok())
    };
    let mut p = Parsed {
        percent: num("percent").and_then(pct),
        current: num("current"),
        total: num("total"),
    };
    if p.percent.is_none() && p.current.is_none() {
        let first = c.iter().skip(1).flatten().next().or_else(|| c.get(0))?;
        p.percent = first
            .as_str()
            .trim()
            .trim_end_matches('%')
            .parse()
            .ok()
            .and_then(pct);
    }
    if p.percent.is_none() {
        if let (Some(cur), Some(tot)) = (p.current, p.total) {
            if tot > 0.0 {
                p.percent = pct(cur / tot * 100.0);
            }
        }
    }
    (p.percent.is_some() || p.current.is_some()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The prefilter never hides a line the rules would read.
        #[test]
        fn the_prefilter_has_no_false_negatives(line in "[0-9a-z %/.|\u{a0}\t]{0,40}") {
            let parser = ProgressParser::new();
            if parser.parse_line(&line).is_some() {
                prop_assert!(parser.may_hold_progress(&line), "{:?}", line);
            }
        }
    }

    fn p(percent: Option<f64>, current: Option<f64>, total: Option<f64>) -> Option<Parsed> {
        Some(Parsed {
            percent,
            current,
            total,
        })
    }

    #[test]
    fn built_in_rules() {
        let table: &[(&str, Option<Parsed>)] = &[
            ("42%", p(Some(42.0), None, None)),
            ("progress: 42.5 % done", p(Some(42.5), None, None)),
            ("Downloading... 10% then 20%", p(Some(20.0), None, None)),
            ("100%", p(Some(100.0), None, None)),
            ("250% faster", None),
            ("12/300", p(Some(4.0), Some(12.0), Some(300.0))),
            ("file 3 of 4", p(Some(75.0), Some(3.0), Some(4.0))),
            ("[7/7] Linking", p(Some(100.0), Some(7.0), Some(7.0))),
            ("date 2024/01/02", None),
            ("path a/1/2/b", None),
            ("ratio 9/3", None),
            (
                " 45%|████▌     | 45/100 [00:01<00:01, 30.00it/s]",
                p(Some(45.0), Some(45.0), Some(100.0)),
            ),
            (
                "train:  12%|█▏        | 1.2k/10k [00:10<01:13, 120it/s]",
                p(Some(12.0), Some(1200.0), Some(10000.0)),
            ),
            ("no numbers here", None),
            ("", None),
            ("version 1.2.3", None),
        ];
        let parser = ProgressParser::new();
        for (line, want) in table {
            assert_eq!(parser.parse_line(line), *want, "line {line:?}");
            if want.is_some() {
                assert!(parser.may_hold_progress(line), "prefilter {line:?}");
            }
        }
        for line in [
            "no numbers here",
            "INFO processed record 12 of batch",
            "",
            "a/b",
            "50 %s",
        ] {
            let expect = line.contains("50 %");
            assert_eq!(parser.may_hold_progress(line), expect, "{line:?}");
        }
    }

    #[test]
    fn user_patterns() {
        let named =
            ProgressParser::with_pattern(r"step (?P<current>\d+) total (?P<total>\d+)").unwrap();
        assert_eq!(
            named.parse_line("step 5 total 20"),
            p(Some(25.0), Some(5.0), Some(20.0))
        );
        let first = ProgressParser::with_pattern(r"PROGRESS=(\d+(?:\.\d+)?)").unwrap();
        assert_eq!(first.parse_line("PROGRESS=33.3"), p(Some(33.3), None, None));
        // Falls back to the built-in rules when the pattern does not match.
        assert_eq!(first.parse_line("50%"), p(Some(50.0), None, None));
        let pctname = ProgressParser::with_pattern(r"at (?P<percent>\d+) pct").unwrap();
        assert_eq!(pctname.parse_line("at 7 pct"), p(Some(7.0), None, None));
        assert!(ProgressParser::with_pattern("(unclosed").is_err());
    }
}
