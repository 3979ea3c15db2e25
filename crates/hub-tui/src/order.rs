//! The list's row order: operations that pass the filters, children right
//! under their parent (indented), siblings sorted by state then start time.
//! A pure function of the operations and the filters; the model caches its
//! result and rebuilds it only when something that affects it changed.

use crate::filter::{StateFilter, TextFilter};
use crate::op::{OpEntry, OpState, StatusLook};
use std::collections::{HashMap, HashSet};

/// One row of the list: an operation and its nesting depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRef {
    /// Operation id.
    pub id: String,
    /// 0 for top-level rows, 1 for children, ...
    pub depth: u16,
}

/// Deepest nesting drawn (deeper children are drawn at this depth).
const MAX_DEPTH: u16 = 8;

/// The visible rows, in display order. Children of a filtered-out parent
/// become top-level rows; parent cycles are broken (each member once).
pub fn build(
    ops: &HashMap<String, OpEntry>,
    state_filter: StateFilter,
    text_filter: &TextFilter,
) -> Vec<RowRef> {
    let visible: HashSet<&str> = ops
        .values()
        .filter(|e| state_filter.accepts(e.state.state) && text_filter.accepts(&e.state))
        .map(|e| e.state.operation_id.as_str())
        .collect();
    let mut roots: Vec<&OpState> = Vec::new();
    let mut children: HashMap<&str, Vec<&OpState>> = HashMap::new();
    for id in &visible {
        let s = &ops[*id].state;
        match s.parent_id.as_deref() {
            Some(p) if p != s.operation_id && visible.contains(p) => {
                children.entry(p).or_default().push(s)
            }
            _ => roots.push(s),
        }
    }
    sort_siblings(&mut roots);
    for list in children.values_mut() {
        sort_siblings(list);
    }
    let mut order = Vec::with_capacity(visible.len());
    let mut placed: HashSet<&str> = HashSet::with_capacity(visible.len());
    let mut stack: Vec<(&OpState, u16)> = roots.iter().rev().map(|s| (*s, 0)).collect();
    loop {
        while let Some((s, depth)) = stack.pop() {
            if !placed.insert(s.operation_id.as_str()) {
                continue;
            }
            order.push(RowRef {
                id: s.operation_id.clone(),
                depth,
            });
            if let Some(kids) = children.get(s.operation_id.as_str()) {
                let d = (depth + 1).min(MAX_DEPTH);
                stack.extend(kids.iter().rev().map(|k| (*k, d)));
            }
        }
        // Parent cycles have no root: place their members as roots.
        let mut rest: Vec<&OpState> = visible
            .iter()
            .filter(|id| !placed.contains(**id))
            .map(|id| &ops[*id].state)
            .collect();
        if rest.is_empty() {
            break;
        }
        sort_siblings(&mut rest);
        stack.push((rest[0], 0));
    }
    order
}

/// Live operations oldest first (rows stay put as new ones arrive);
/// finished ones newest first.
fn sort_siblings(list: &mut [&OpState]) {
    list.sort_by(|a, b| {
        a.state.rank().cmp(&b.state.rank()).then_with(|| {
            let t = if a.state.is_terminal() {
                b.started_at.cmp(&a.started_at)
            } else {
                a.started_at.cmp(&b.started_at)
            };
            t.then_with(|| a.operation_id.cmp(&b.operation_id))
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::OpStatus;

    fn ops(list: &[(&str, Option<&str>, OpStatus, u64)]) -> HashMap<String, OpEntry> {
        list.iter()
            .map(|(id, parent, state, t)| {
                let mut s = OpState::new(id, id, *t);
                s.parent_id = parent.map(str::to_owned);
                s.state = *state;
                (id.to_string(), OpEntry::new(s))
            })
            .collect()
    }

    fn ids(rows: &[RowRef]) -> Vec<(String, u16)> {
        rows.iter().map(|r| (r.id.clone(), r.depth)).collect()
    }

    #[test]
    fn children_follow_parents_and_states_sort_first() {
        use OpStatus::*;
        let m = ops(&[
            ("done", None, Completed, 1),
            ("p", None, Running, 5),
            ("p.b", Some("p"), Running, 7),
            ("p.a", Some("p"), Running, 6),
            ("old", None, Running, 2),
            ("bad", None, Failed, 3),
        ]);
        let rows = build(&m, StateFilter::All, &TextFilter::default());
        let got = ids(&rows);
        let want: Vec<(String, u16)> = [
            ("old", 0),
            ("p", 0),
            ("p.a", 1),
            ("p.b", 1),
            ("bad", 0),
            ("done", 0),
        ]
        .iter()
        .map(|(i, d)| (i.to_string(), *d))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn parent_cycles_and_self_parents_are_drawn_once() {
        use OpStatus::*;
        let m = ops(&[
            ("a", Some("b"), Running, 1),
            ("b", Some("a"), Running, 2),
            ("s", Some("s"), Running, 3),
        ]);
        let rows = build(&m, StateFilter::All, &TextFilter::default());
        let want: Vec<(String, u16)> = [("s", 0), ("a", 0), ("b", 1)]
            .iter()
            .map(|(i, d)| (i.to_string(), *d))
            .collect();
        assert_eq!(ids(&rows), want);
    }
}
