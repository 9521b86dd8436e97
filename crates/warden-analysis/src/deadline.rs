//! The end of an analysis's time budget, counted in the analysing thread's cpu time
//! (`CLOCK_THREAD_CPUTIME_ID`) rather than on the wall clock: the budget bounds the work a
//! hostile program can make the parser and the rules do, and a loaded machine (a busy server,
//! a test suite running beside it) that keeps the thread waiting must not turn an ordinary
//! program into an unparseable one, which grades it differently.

use std::marker::PhantomData;
use std::time::Duration;

use tree_sitter::{Node, Tree};

use nix::time::{clock_gettime, ClockId};

/// A point in this thread's cpu time. Not `Send`: another thread's clock is another count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Duration,
    this_thread: PhantomData<*const ()>,
}

impl Deadline {
    /// `budget` of cpu time from now, for this thread.
    pub(crate) fn after(budget: Duration) -> Deadline {
        Deadline {
            at: thread_cpu_time().saturating_add(budget),
            this_thread: PhantomData,
        }
    }

    /// Whether this thread has used the budget up.
    pub(crate) fn passed(&self) -> bool {
        thread_cpu_time() >= self.at
    }
}

/// The calling thread's cpu time. The clock exists on every Linux; should reading it fail,
/// the budget counts as spent, so an analysis ends (graded unparseable) rather than runs
/// unbounded.
fn thread_cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::MAX, Duration::from)
}

/// Nodes walked between two looks at the clock in [`walk`].
const NODES_PER_CLOCK_CHECK: u32 = 4096;

/// Visits the nodes of `tree` in document order, each with `visit`, which says whether to go
/// into the node's children, looking at the clock every few thousand nodes: a hostile
/// program's tree may hold millions. Returns whether the walk ended before `deadline` passed.
pub(crate) fn walk(
    tree: &Tree,
    deadline: Deadline,
    mut visit: impl FnMut(Node<'_>) -> bool,
) -> bool {
    walk_with_depth(tree, deadline, |node, _| visit(node))
}

/// [`walk`], `visit` also given the node's depth (the root's is 0), counted as the walk goes:
/// a node's ancestors are then known without `Node::parent`, which tree-sitter answers by a
/// walk down from the root (a hunt's 8 KB of `x. ` in Python climbed through 2 700 nested
/// names for each of them, past the budget tenfold), and without the cursor's own depth,
/// which it counts over the cursor's stack.
pub(crate) fn walk_with_depth(
    tree: &Tree,
    deadline: Deadline,
    mut visit: impl FnMut(Node<'_>, usize) -> bool,
) -> bool {
    let mut cursor = tree.walk();
    let (mut visited, mut depth) = (0u32, 0usize);
    loop {
        visited = visited.wrapping_add(1);
        if visited.is_multiple_of(NODES_PER_CLOCK_CHECK) && deadline.passed() {
            return false;
        }
        if visit(cursor.node(), depth) && cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return true;
            }
            depth -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_cpu_not_sleep() {
        let deadline = Deadline::after(Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!deadline.passed(), "sleeping uses no cpu");
        let spin = std::time::Instant::now();
        while !deadline.passed() {
            assert!(
                spin.elapsed() < Duration::from_secs(30),
                "20 ms of cpu never passed"
            );
        }
        assert!(Deadline::after(Duration::ZERO).passed());
    }
}
