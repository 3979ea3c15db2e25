//! Namespace globs: `*` matches any run of characters (also none), `?` exactly
//! one character, everything else itself (case-sensitive; there is no escape).
//!
//! Iterative, with a single backtrack point, so it runs in O(pattern × text)
//! worst case and never recurses, whatever a token's `namespaces` claim holds.

/// Whether `text` matches the glob `pattern` as a whole.
///
/// ```
/// use hub_auth::glob_match;
/// assert!(glob_match("team-*", "team-a"));
/// assert!(glob_match("team-?", "team-a"));
/// assert!(!glob_match("team-?", "team-ab"));
/// assert!(glob_match("*", ""));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // After the last `*`: the pattern index just past it and the text index it
    // is currently assumed to have consumed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                pi += 1;
                star = Some((pi, ti));
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn table() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("default", "default", true),
            ("default", "defaults", false),
            ("", "", true),
            ("", "a", false),
            ("team-*", "team-", true),
            ("team-*", "team-a/b", true),
            ("team-*", "team", false),
            ("*-prod", "eu-prod", true),
            ("*-prod", "eu-prod-2", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*b", "abab", true),
            ("a*a*a", "aaa", true),
            ("a*a*a", "aa", false),
            ("?", "é", true),
            ("??", "é", false),
            ("é*", "éa", true),
            ("*é?", "xxéy", true),
            ("ns-?", "ns-1", true),
            ("ns-?", "ns-", false),
            ("**", "x", true),
            ("*?", "", false),
            ("Default", "default", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let text = "a".repeat(2_000);
        let pattern = format!("{}b", "a*".repeat(50));
        assert!(!glob_match(&pattern, &text));
    }
}
