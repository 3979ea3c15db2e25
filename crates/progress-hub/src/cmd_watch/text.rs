//! Producer text made safe for one terminal line: control characters
//! (C0, DEL, C1), the Unicode line and paragraph separators and the bidi
//! embeddings, overrides and isolates are written as escapes (`\n`, `\r`,
//! `\t`, `\u{1b}`), so a message can neither start a line of its own nor
//! send the terminal a control sequence. Ordinary Unicode is kept.

use std::borrow::Cow;

/// Whether `c` must not reach a line-mode output as it is.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'            // C0, with \n \r \t \e
        | '\u{7f}'..='\u{9f}'         // DEL and C1 (\u{9b} is CSI)
        | '\u{2028}' | '\u{2029}'     // line and paragraph separators
        | '\u{202a}'..='\u{202e}'     // bidi embeddings and overrides
        | '\u{2066}'..='\u{2069}') // bidi isolates
}

/// `s` with every [unsafe](is_unsafe) character escaped: `\n`, `\r`,
/// `\t`, else `\u{hex}` (as Rust writes them). Borrowed when nothing is.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A JSON text (as serde_json writes it) with the unsafe characters it
/// leaves raw (DEL, C1, separators, bidi controls; it escapes C0 itself)
/// written as `\uXXXX` escapes: the same JSON value, but safe on a
/// terminal. They can only occur inside strings, where the escape means
/// the same character.
pub fn json_safe(json: String) -> String {
    if !json.chars().any(is_unsafe) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_unicode_kept() {
        assert!(matches!(escape("frame 42 – ok ✓ 日本"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb\r\tc\u{1b}[31m"), "a\\nb\\r\\tc\\u{1b}[31m");
        assert_eq!(
            escape("\u{0}\u{7f}\u{85}\u{9b}"),
            "\\u{0}\\u{7f}\\u{85}\\u{9b}"
        );
        assert_eq!(
            escape("x\u{2028}y\u{2029}\u{202a}\u{202e}\u{2066}\u{2069}"),
            "x\\u{2028}y\\u{2029}\\u{202a}\\u{202e}\\u{2066}\\u{2069}"
        );
        // Neighbours of the ranges stay.
        assert_eq!(
            escape("\u{a0}\u{2027}\u{202f}\u{2065}\u{206a} é"),
            "\u{a0}\u{2027}\u{202f}\u{2065}\u{206a} é"
        );
        assert!(!escape("\n\u{2028}").contains(['\n', '\u{2028}']));
    }

    #[test]
    fn json_stays_the_same_value() {
        let v = serde_json::json!({"message": "a\u{9b}31m\u{202e}b\u{7f}\n\u{2028}", "n": 1});
        let text = json_safe(v.to_string());
        assert!(!text.chars().any(is_unsafe), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        let plain = serde_json::json!({"m": "ok ✓"}).to_string();
        assert_eq!(json_safe(plain.clone()), plain);
    }
}
