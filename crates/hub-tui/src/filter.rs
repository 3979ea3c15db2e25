//! Which operations the list shows: a state filter (cycled with `s`) and a
//! text filter (`/`): a case-insensitive substring of the name or id, or a
//! glob (`*` any run, `?` one character) when the text has a wildcard.

use crate::op::{OpState, OpStatus};

/// The state filter, cycled with `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    /// Every operation.
    #[default]
    All,
    /// Running or stalled.
    Active,
    /// Exactly this state.
    Only(OpStatus),
}

impl StateFilter {
    /// The next filter in the cycle.
    pub fn next(self) -> StateFilter {
        use OpStatus::*;
        match self {
            StateFilter::All => StateFilter::Active,
            StateFilter::Active => StateFilter::Only(Running),
            StateFilter::Only(Running) => StateFilter::Only(Stalled),
            StateFilter::Only(Stalled) => StateFilter::Only(Failed),
            StateFilter::Only(Failed) => StateFilter::Only(Canceled),
            StateFilter::Only(Canceled) => StateFilter::Only(Completed),
            StateFilter::Only(_) => StateFilter::All,
        }
    }

    /// Whether an operation in `status` passes.
    pub fn accepts(self, status: OpStatus) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::Active => matches!(status, OpStatus::Running | OpStatus::Stalled),
            StateFilter::Only(s) => s == status,
        }
    }

    /// Label for the title bar.
    pub fn label(self) -> &'static str {
        match self {
            StateFilter::All => "all",
            StateFilter::Active => "active",
            StateFilter::Only(s) => s.as_str(),
        }
    }
}

/// A compiled text filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextFilter {
    pattern: Vec<char>,
    glob: bool,
}

impl TextFilter {
    /// Compiles `text` (empty matches everything).
    pub fn new(text: &str) -> Self {
        let lower = text.trim().to_lowercase();
        TextFilter {
            glob: lower.contains(['*', '?']),
            pattern: lower.chars().collect(),
        }
    }

    /// Whether the filter is empty.
    pub fn is_empty(&self) -> bool {
        self.pattern.is_empty()
    }

    /// Whether the operation's name or id passes.
    pub fn accepts(&self, op: &OpState) -> bool {
        self.is_empty() || self.matches(&op.name) || self.matches(&op.operation_id)
    }

    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.to_lowercase().chars().collect();
        if self.glob {
            glob_match(&self.pattern, &text)
        } else {
            text.windows(self.pattern.len()).any(|w| w == self.pattern)
        }
    }
}

/// Iterative glob matching with one backtrack point (linear-ish, no recursion).
pub(crate) fn glob_match(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: &str, name: &str) -> OpState {
        OpState::new(id, name, 0)
    }

    #[test]
    fn substring_is_case_insensitive_on_name_or_id() {
        let f = TextFilter::new("FRAME");
        assert!(f.accepts(&op("render.1", "Render frame 1")));
        assert!(!f.accepts(&op("import.1", "Import users")));
        assert!(TextFilter::new("render.").accepts(&op("render.1", "x")));
        assert!(TextFilter::new("").accepts(&op("a", "b")));
    }

    #[test]
    fn globs_match_the_whole_text() {
        let f = TextFilter::new("render.*");
        assert!(f.accepts(&op("render.42", "Frame")));
        assert!(!f.accepts(&op("prerender.42", "Frame")));
        assert!(TextFilter::new("*frame ?").accepts(&op("x", "Render frame 7")));
        assert!(!TextFilter::new("*frame ?").accepts(&op("x", "Render frame 17")));
        assert!(TextFilter::new("a*b*c").accepts(&op("axxbyyc", "")));
    }

    #[test]
    fn the_state_filter_cycles_back_to_all() {
        let mut f = StateFilter::All;
        let mut seen = vec![f];
        for _ in 0..7 {
            f = f.next();
            seen.push(f);
        }
        assert_eq!(seen.first(), seen.last());
        assert!(StateFilter::Active.accepts(OpStatus::Stalled));
        assert!(!StateFilter::Active.accepts(OpStatus::Failed));
    }
}
