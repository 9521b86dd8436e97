//! A set of destination ports (1 to 65535) kept as disjoint ranges: what the resolver's
//! question (`evaluate.rs`) needs to follow, rule by rule, which ports no earlier rule decided.
//! Taking a range out costs a few B-tree operations however wide it is, and the set never holds
//! more than 32 768 ranges (between two of them lies a port taken out), so reading a policy's
//! rules into it is linear in the rules.

use std::collections::BTreeMap;

/// Ports, as disjoint ranges with a port outside the set between any two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PortSet {
    /// Each range's first port to its last (both included).
    ranges: BTreeMap<u16, u16>,
}

impl PortSet {
    /// Every port, 1 to 65535.
    pub(super) fn all() -> Self {
        Self {
            ranges: BTreeMap::from([(1, u16::MAX)]),
        }
    }

    /// Takes `lo..=hi` out of the set (`lo` at least 1, at most `hi`); the lowest port that was
    /// in the set and is no longer, if any was.
    pub(super) fn take(&mut self, lo: u16, hi: u16) -> Option<u16> {
        let mut lowest = None;
        // A range that starts below `lo` and reaches it keeps its part below.
        if let Some((&first, &last)) = self.ranges.range(..lo).next_back() {
            if last >= lo {
                self.ranges.insert(first, lo - 1);
                self.keep_above(hi, last);
                lowest = Some(lo);
            }
        }
        // Ranges that start within `lo..=hi` go, but for a part above `hi`.
        while let Some((&first, &last)) = self.ranges.range(lo..=hi).next() {
            self.ranges.remove(&first);
            self.keep_above(hi, last);
            lowest = lowest.or(Some(first));
        }
        lowest
    }

    /// Keeps the ports from `hi + 1` to `last`, if there are any.
    fn keep_above(&mut self, hi: u16, last: u16) {
        if last > hi {
            self.ranges.insert(hi + 1, last);
        }
    }

    /// Whether `port` is in the set.
    pub(super) fn contains(&self, port: u16) -> bool {
        self.ranges
            .range(..=port)
            .next_back()
            .is_some_and(|(_, &last)| last >= port)
    }

    /// The lowest port in the set, if any.
    pub(super) fn lowest(&self) -> Option<u16> {
        self.ranges.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set's ports, as ranges.
    fn ranges(set: &PortSet) -> Vec<(u16, u16)> {
        set.ranges.iter().map(|(&a, &b)| (a, b)).collect()
    }

    #[test]
    fn network_ports_taken_out_leave_the_others_in_ranges() {
        let mut set = PortSet::all();
        assert_eq!(set.take(80, 80), Some(80));
        assert_eq!(set.take(443, 443), Some(443));
        assert_eq!(ranges(&set), [(1, 79), (81, 442), (444, 65535)]);
        assert_eq!(set.take(79, 81), Some(79), "across a hole");
        assert_eq!(set.take(80, 80), None, "already out");
        assert!(!set.contains(80) && set.contains(78) && set.contains(82));
        assert_eq!(set.take(1, 500), Some(1));
        assert_eq!(ranges(&set), [(501, 65535)]);
        assert_eq!(set.lowest(), Some(501));
        assert_eq!(set.take(600, 65535), Some(600));
        assert_eq!(set.take(501, 599), Some(501));
        assert_eq!((set.lowest(), set.contains(65535)), (None, false));
        assert_eq!(set.take(1, 65535), None);
    }

    #[test]
    fn network_a_port_set_agrees_with_a_port_by_port_one() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u16| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            u16::try_from(state % u64::from(n)).expect("below n")
        };
        for _ in 0..50 {
            let mut set = PortSet::all();
            let mut every = vec![true; 65536];
            every[0] = false;
            for _ in 0..40 {
                let lo = 1 + next(400);
                let hi = lo + next(60);
                let lowest = (lo..=hi).find(|&p| every[usize::from(p)]);
                assert_eq!(set.take(lo, hi), lowest, "{lo}-{hi}");
                every[usize::from(lo)..=usize::from(hi)].fill(false);
                let probe = 1 + next(500);
                assert_eq!(set.contains(probe), every[usize::from(probe)], "{probe}");
                let first = (1..=u16::MAX).find(|&p| every[usize::from(p)]);
                assert_eq!(set.lowest(), first);
            }
        }
    }
}
