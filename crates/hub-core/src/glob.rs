//! Glob matching for operation ids and namespaces, and the compiled
//! subscription [`Filter`].
//!
//! The glob language is deliberately tiny: `*` matches any run of characters
//! (including none), `?` matches exactly one character, everything else
//! matches itself, case-sensitively. There is no escaping and no character
//! classes. The same matcher serves subscription filters
//! (`"render.*"` on `operation_id`) and the namespace globs of auth tokens
//! (`"team-*"`).
//!
//! [`glob_match`] is iterative (two pointers, backtracking only to the most
//! recent `*`), so it runs in `O(pattern × text)` time in the worst case and
//! linear time for typical patterns, with no recursion and no allocation for
//! ASCII input: a hostile pattern cannot make it exponential. A glob with
//! more literal characters than the text, or whose end after its last `*`
//! is not the text's end, is refused before that loop (64 globs of 256
//! bytes against 128-character ids made every event cost a viewer with
//! such a filter milliseconds).

/// Returns whether `text` matches the glob `pattern`.
///
/// `*` matches any run of characters (including the empty one), `?` exactly
/// one character; everything else is literal. Case-sensitive; characters are
/// Unicode scalar values, so `?` matches one `char`, not one byte.
///
/// ```
/// use hub_core::glob::glob_match;
/// assert!(glob_match("render.*", "render.frame-1"));
/// assert!(glob_match("job-??", "job-42"));
/// assert!(!glob_match("job-??", "job-4"));
/// assert!(glob_match("*", ""));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        match_slices(pattern.as_bytes(), text.as_bytes(), b'*', b'?')
    } else {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        match_slices(&p, &t, '*', '?')
    }
}

/// The matcher proper, over bytes (ASCII) or chars.
///
/// Classic wildcard matching: on a mismatch, retry from the last `*` seen,
/// letting it swallow one more character. Backtracking to earlier stars is
/// never needed: whatever an earlier star could absorb, the last one can too.
fn match_slices<T: Copy + Eq>(p: &[T], t: &[T], star: T, any: T) -> bool {
    // Cheap refusals first (a subscription's globs run against every
    // event): every character but `*` takes one of the text's, and what
    // follows the last `*` must be the text's end, since nothing after it
    // can absorb more. A long hostile glob against a short id ends here.
    if p.iter().filter(|&&c| c != star).count() > t.len() {
        return false;
    }
    if let Some(last) = p.iter().rposition(|&c| c == star) {
        let tail = &p[last + 1..];
        let (head_t, tail_t) = t.split_at(t.len() - tail.len());
        if !tail.iter().zip(tail_t).all(|(&c, &x)| c == any || c == x) {
            return false;
        }
        return match_from_start(&p[..=last], head_t, star, any);
    }
    match_from_start(p, t, star, any)
}

/// The two-pointer matcher (see [`match_slices`]).
fn match_from_start<T: Copy + Eq>(p: &[T], t: &[T], star: T, any: T) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    // (index in p just after the last `*`, index in t that star matched up to)
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == star {
            pi += 1;
            backtrack = Some((pi, ti));
        } else if pi < p.len() && (p[pi] == any || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((star_p, star_t)) = backtrack {
            pi = star_p;
            ti = star_t + 1;
            backtrack = Some((star_p, ti));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == star)
}

/// A compiled subscription filter.
///
/// `operations` are globs on `operation_id` (any one matching is enough),
/// `kinds` are exact values of the operation's `kind` (any one equal is
/// enough). When both lists are non-empty both must match; an empty list
/// matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Globs on `operation_id`; empty means every operation.
    pub operations: Vec<String>,
    /// Exact `kind` values; empty means every kind.
    pub kinds: Vec<String>,
}

impl Filter {
    /// A filter from the optional lists of a `subscribe` message (absent is
    /// the same as empty: matches everything).
    pub fn new(operations: Option<Vec<String>>, kinds: Option<Vec<String>>) -> Self {
        Filter {
            operations: operations.unwrap_or_default(),
            kinds: kinds.unwrap_or_default(),
        }
    }

    /// The bytes of its globs and kinds (what holding it costs, roughly).
    pub fn bytes(&self) -> usize {
        self.operations
            .iter()
            .chain(&self.kinds)
            .map(String::len)
            .sum()
    }

    /// Whether an operation with this id and kind passes the filter.
    ///
    /// ```
    /// use hub_core::glob::Filter;
    /// let f = Filter { operations: vec!["render.*".into()], kinds: vec!["gpu".into()] };
    /// assert!(f.matches("render.1", "gpu"));
    /// assert!(!f.matches("render.1", "cpu"));
    /// assert!(!f.matches("encode.1", "gpu"));
    /// assert!(Filter::default().matches("anything", "any"));
    /// ```
    pub fn matches(&self, operation_id: &str, kind: &str) -> bool {
        let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind);
        if !kind_ok {
            return false;
        }
        if self.operations.is_empty() {
            return true;
        }
        let t = operation_id.as_bytes();
        if operation_id.is_ascii() && t.len() < 128 {
            // Every operation id is ASCII and at most 128 long: match all
            // the globs against one table of where each byte occurs.
            return Positions::with(t, |pos| {
                self.operations.iter().any(|glob| pos.matches(glob))
            });
        }
        self.operations
            .iter()
            .any(|glob| glob_match(glob, operation_id))
    }

    /// Whether the filter lets everything through (no kinds, and no
    /// operation globs or one of them is `*`), so callers can skip
    /// per-event matching.
    pub fn is_all(&self) -> bool {
        self.kinds.is_empty()
            && (self.operations.is_empty()
                || self
                    .operations
                    .iter()
                    .any(|g| !g.is_empty() && g.chars().all(|c| c == '*')))
    }
}

/// Where each byte occurs in an ASCII text shorter than 128 bytes (bit `i`
/// of entry `c` set when the text's byte `i` is `c`), for matching many
/// globs against one text in time linear in each glob: the set of text
/// positions a pattern prefix can reach is one `u128`, and each pattern
/// character moves it with a shift and a mask. (The two-pointer matcher
/// is `O(pattern × text)` on globs like `*??…?x*`, which 64 globs in a
/// viewer's filter ran against every operation of a namespace.)
struct Positions {
    table: [u128; 128],
    len: usize,
}

thread_local! {
    /// One table per thread, zero between uses (each use clears the
    /// entries it set), so no 2 KiB clearing per match.
    static POSITIONS: std::cell::RefCell<Positions> =
        const { std::cell::RefCell::new(Positions { table: [0; 128], len: 0 }) };
}

impl Positions {
    /// Runs `f` with the positions of `text` (ASCII, shorter than 128).
    fn with<R>(text: &[u8], f: impl FnOnce(&Positions) -> R) -> R {
        debug_assert!(text.is_ascii() && text.len() < 128);
        POSITIONS.with(|cell| {
            let Ok(mut pos) = cell.try_borrow_mut() else {
                // Re-entered (never, today): a table of its own.
                let mut own = Positions {
                    table: [0; 128],
                    len: 0,
                };
                own.fill(text);
                return f(&own);
            };
            pos.fill(text);
            let r = f(&pos);
            for &b in text {
                pos.table[usize::from(b)] = 0;
            }
            r
        })
    }

    fn fill(&mut self, text: &[u8]) {
        self.len = text.len();
        for (i, &b) in text.iter().enumerate() {
            self.table[usize::from(b & 0x7f)] |= 1u128 << i;
        }
    }

    /// Whether the whole text matches `glob`: `reach` holds the text
    /// positions the glob's prefix so far can end at.
    fn matches(&self, glob: &str) -> bool {
        let n = self.len;
        let inside: u128 = (1u128 << n) - 1; // positions holding a byte
        let upto_end: u128 = inside | (1u128 << n); // 0..=n
        let mut reach: u128 = 1;
        for &c in glob.as_bytes() {
            reach = match c {
                b'*' => {
                    // Any run: every position from the first reached on.
                    let first = reach & reach.wrapping_neg();
                    !(first - 1) & upto_end
                }
                b'?' => (reach & inside) << 1,
                // A byte of a non-ASCII character never matches ASCII text.
                c if c.is_ascii() => (reach & self.table[usize::from(c)]) << 1,
                _ => 0,
            };
            if reach == 0 {
                return false;
            }
        }
        reach >> n & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Obviously-correct (exponential) reference matcher.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|skip| reference(&p[1..], &t[skip..])),
            Some('?') => !t.is_empty() && reference(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && reference(&p[1..], &t[1..]),
        }
    }

    fn reference_str(p: &str, t: &str) -> bool {
        let p: Vec<char> = p.chars().collect();
        let t: Vec<char> = t.chars().collect();
        reference(&p, &t)
    }

    #[test]
    fn literals_and_wildcards() {
        let cases = [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "abc", true),
            ("**", "abc", true),
            ("?", "", false),
            ("?", "a", true),
            ("?", "ab", false),
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("abc", "ABC", false),
            ("a*c", "ac", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("*.log", "x.log", true),
            ("*.log", "x.log.1", false),
            ("render.*", "render.", true),
            ("render.*", "render", false),
            ("a*b*c", "aXbYbZc", true),
            ("a?c*", "abcdef", true),
            ("*a?", "xxab", true),
            ("*a?", "xxa", false),
            ("team-*", "team-core", true),
            ("team-*", "teams", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p:?} vs {t:?}");
            assert_eq!(reference_str(p, t), want, "reference {p:?} vs {t:?}");
        }
    }

    #[test]
    fn question_mark_is_one_char_not_one_byte() {
        assert!(glob_match("?", "é"));
        assert!(glob_match("caf?", "café"));
        assert!(glob_match("*é", "café"));
        assert!(!glob_match("??", "é"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        // No clock in this crate: an exponential matcher would simply never
        // finish here (C(10000, 6) splits), a linear one takes microseconds.
        let text = "a".repeat(10_000);
        assert!(!glob_match("*a*a*a*a*a*a*b", &text));
        assert!(glob_match("*a*a*a*a*a*a*", &text));
        assert!(!glob_match("*aaaaaaaaaaaaaaaaaaaab", &text));
        let mut long = text.clone();
        long.push('b');
        assert!(glob_match("*a*a*a*a*a*a*b", &long));
        for _ in 0..100 {
            assert!(!glob_match("*a*a*a*a*a*a*b", &text));
        }
    }

    #[test]
    fn hostile_globs_cost_one_step_per_character() {
        // `*??…?#*` against 127-character ids: quadratic for a two-pointer
        // matcher, one shift per glob character here.
        let hostile = format!("*{}#*", "?".repeat(120));
        let f = Filter::new(Some(vec![hostile; 64]), None);
        let id = "a".repeat(127);
        for _ in 0..1_000 {
            assert!(!f.matches(&id, "k"));
        }
        let mut hit = "a".repeat(126);
        hit.push('#');
        assert!(
            Filter::new(Some(vec![format!("*{}#*", "?".repeat(120))]), None).matches(&hit, "k")
        );
        // Exactly 128 characters: the two-pointer matcher, same answers.
        let f = Filter::new(Some(vec!["a*?b".into()]), None);
        assert!(f.matches(&format!("{}b", "a".repeat(127)), "k"));
        assert!(!f.matches(&"a".repeat(128), "k"));
    }

    #[test]
    fn filter_semantics() {
        let all = Filter::default();
        assert!(all.is_all());
        assert!(all.matches("x", "y"));
        assert_eq!(Filter::new(None, None), all);

        let star = Filter::new(Some(vec!["*".into()]), None);
        assert!(star.is_all());
        let ops = Filter::new(Some(vec!["render.*".into(), "job-?".into()]), None);
        assert!(!ops.is_all());
        assert!(ops.matches("render.a", "k"));
        assert!(ops.matches("job-1", "k"));
        assert!(!ops.matches("job-12", "k"));

        let kinds = Filter::new(None, Some(vec!["gpu".into(), "cpu".into()]));
        assert!(!kinds.is_all());
        assert!(kinds.matches("x", "cpu"));
        assert!(!kinds.matches("x", "CPU"));

        let both = Filter::new(Some(vec!["a*".into()]), Some(vec!["k".into()]));
        assert!(both.matches("ab", "k"));
        assert!(!both.matches("ab", "j"));
        assert!(!both.matches("ba", "k"));
    }

    proptest! {
        #[test]
        fn agrees_with_reference(p in "[ab*?]{0,8}", t in "[abc]{0,10}") {
            prop_assert_eq!(glob_match(&p, &t), reference_str(&p, &t));
        }

        #[test]
        fn agrees_with_reference_unicode(p in "[aé*?]{0,6}", t in "[aéb]{0,8}") {
            prop_assert_eq!(glob_match(&p, &t), reference_str(&p, &t));
        }

        /// The position table agrees with the reference, texts up to its
        /// 127-byte bound included.
        #[test]
        fn position_table_agrees_with_reference(
            p in "[ab*?é]{0,12}",
            t in "[abc]{0,12}",
            long in 115usize..128,
        ) {
            let f = Filter::new(Some(vec![p.clone()]), None);
            prop_assert_eq!(f.matches(&t, "k"), reference_str(&p, &t));
            let long_t: String = t.chars().cycle().take(if t.is_empty() { 0 } else { long }).collect();
            prop_assert_eq!(f.matches(&long_t, "k"), glob_match(&p, &long_t), "{} vs {}", p, long_t);
        }

        #[test]
        fn text_matches_itself_and_star(t in "[a-z.:-]{0,20}") {
            prop_assert!(glob_match(&t, &t));
            prop_assert!(glob_match("*", &t));
            let prefix: String = t.chars().take(3).collect();
            let pattern = format!("{prefix}*");
            prop_assert!(glob_match(&pattern, &t));
        }
    }
}
