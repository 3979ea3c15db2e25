//! Short human formats for the table: durations, rates, truncation.

/// A duration in whole units, at most two of them: `45s`, `3m05s`, `2h07m`, `3d04h`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..=86_399 => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3_600),
    }
}

/// Seconds (an ETA) as [`duration_ms`]; `—` when unknown or absurd.
pub fn eta(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if (0.0..1e9).contains(&s) => duration_ms((s * 1000.0).round() as u64),
        _ => "—".to_owned(),
    }
}

/// A rate in percent per second: `2.5%/s`, `0.03%/s`; `—` when unknown.
pub fn rate(pct_per_s: Option<f64>) -> String {
    match pct_per_s {
        Some(r) if r.is_finite() && r >= 1000.0 => "999+%/s".to_owned(),
        Some(r) if r.is_finite() && r >= 10.0 => format!("{r:.0}%/s"),
        Some(r) if r.is_finite() && r >= 0.1 => format!("{r:.1}%/s"),
        Some(r) if r.is_finite() && r > 0.0 => format!("{r:.2}%/s"),
        Some(r) if r.is_finite() => "0%/s".to_owned(),
        _ => "—".to_owned(),
    }
}

/// A count per second for the status bar: `153/s`, `1.2k/s`.
pub fn per_second(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        "—".to_owned()
    } else if v >= 10_000.0 {
        format!("{:.0}k/s", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.1}k/s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}/s")
    } else {
        format!("{v:.1}/s")
    }
}

/// `text` cut to at most `width` characters, ending in `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// `text` cut to `width` characters in the middle (`Render Man…frame #1`):
/// the start says what it is, the end which one.
pub fn fit_middle(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width || width < 8 {
        return fit(text, width);
    }
    let tail = (width - 1) / 2;
    let head = width - 1 - tail;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(count - tail));
    out
}

/// The first line of `text`, tabs as spaces (one table cell never wraps).
pub fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or("").replace('\t', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_middle_keeps_both_ends() {
        let a = fit_middle("Render Mandelbrot frame #1", 19);
        let b = fit_middle("Render Mandelbrot frame #2", 19);
        assert_eq!(a.chars().count(), 19);
        assert_ne!(a, b);
        assert!(a.starts_with("Render Ma") && a.ends_with("frame #1"), "{a}");
        assert_eq!(fit_middle("short", 19), "short");
        assert_eq!(fit_middle("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn durations_use_two_units_at_most() {
        assert_eq!(duration_ms(0), "0s");
        assert_eq!(duration_ms(45_900), "45s");
        assert_eq!(duration_ms(185_000), "3m05s");
        assert_eq!(duration_ms(7_620_000), "2h07m");
        assert_eq!(duration_ms(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
    }

    #[test]
    fn rates_and_etas() {
        assert_eq!(rate(Some(2.54)), "2.5%/s");
        assert_eq!(rate(Some(0.031)), "0.03%/s");
        assert_eq!(rate(Some(12.4)), "12%/s");
        assert_eq!(rate(None), "—");
        assert_eq!(rate(Some(10_000.0)), "999+%/s");
        assert_eq!(eta(Some(65.4)), "1m05s");
        assert_eq!(eta(Some(f64::INFINITY)), "—");
        assert_eq!(per_second(1530.0), "1.5k/s");
        assert_eq!(per_second(3.25), "3.2/s");
    }

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("abc", 0), "");
    }
}
