//! Sharing one byte budget among many histories: the level each is cut to.
//!
//! The hub holds every namespace's retained events in memory for replay,
//! and `max_history_bytes` bounds them together. When they hold more, each
//! namespace above a common level is cut down to it (its oldest events
//! go), and namespaces below the level keep everything: a namespace that
//! writes a lot gives up its own history first, never a quiet neighbour's.

/// The highest level `L` such that cutting every size above `L` down to
/// `L` leaves at most `target` in all (`Σ min(size, L) ≤ target`); the
/// largest size (nothing is cut) when the sizes already fit.
pub fn water_level(sizes: &[usize], target: usize) -> usize {
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    let mut left = target;
    let n = sorted.len();
    for (i, &size) in sorted.iter().enumerate() {
        let rest = n - i;
        // Every size from here on is at least `size`: a level of `size`
        // costs `size` for each of them.
        match size.checked_mul(rest) {
            Some(all) if all <= left => left -= size,
            _ => return left / rest,
        }
    }
    sorted.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn held(sizes: &[usize], level: usize) -> usize {
        sizes.iter().map(|&s| s.min(level)).sum()
    }

    #[test]
    fn examples() {
        assert_eq!(water_level(&[], 10), 0);
        assert_eq!(water_level(&[3, 4], 10), 4, "fits: nothing is cut");
        assert_eq!(water_level(&[100, 10], 60), 50, "the big one gives way");
        assert_eq!(water_level(&[100, 100], 60), 30);
        assert_eq!(water_level(&[100, 10, 1], 12), 5);
        assert_eq!(water_level(&[100], 0), 0);
    }

    proptest! {
        /// The level keeps the total within the target, and is the highest
        /// such level: one more byte would not fit (unless nothing is cut).
        #[test]
        fn the_level_fits_and_is_the_highest(
            sizes in proptest::collection::vec(0usize..1_000_000, 0..50),
            target in 0usize..5_000_000,
        ) {
            let level = water_level(&sizes, target);
            let max = sizes.iter().copied().max().unwrap_or(0);
            if held(&sizes, max) <= target {
                prop_assert_eq!(level, max);
            } else {
                prop_assert!(held(&sizes, level) <= target);
                prop_assert!(held(&sizes, level + 1) > target);
            }
        }

        /// Huge sizes do not overflow.
        #[test]
        fn huge_sizes(sizes in proptest::collection::vec(any::<usize>(), 1..8), target in any::<usize>()) {
            let level = water_level(&sizes, target);
            let held: u128 = sizes.iter().map(|&s| s.min(level) as u128).sum();
            let max = *sizes.iter().max().unwrap();
            prop_assert!(held <= target as u128 || level == max);
        }
    }
}
