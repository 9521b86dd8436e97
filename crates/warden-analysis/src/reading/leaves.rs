//! The leaves of a syntax tree in source order, for the readings that only the tree can tell
//! (which backslash sits in a string, which `<` is code). A walk with a cursor, no recursion:
//! a tree may be as deep as its input allows.

use tree_sitter::{Node, Tree, TreeCursor};

use crate::deadline::Deadline;

/// The leaves of a tree in source order: its tokens, and its comments.
pub(super) struct Leaves<'t> {
    cursor: TreeCursor<'t>,
    deadline: Deadline,
    visited: u32,
    done: bool,
}

impl<'t> Leaves<'t> {
    /// The leaves of `tree`, until `deadline` passes: past it, the walk ends early, and the
    /// matching after it finds the deadline passed too and grades the analysis partial.
    pub(super) fn of(tree: &'t Tree, deadline: Deadline) -> Leaves<'t> {
        Leaves {
            cursor: tree.walk(),
            deadline,
            visited: 0,
            done: false,
        }
    }
}

impl<'t> Iterator for Leaves<'t> {
    type Item = Node<'t>;

    fn next(&mut self) -> Option<Node<'t>> {
        while !self.done {
            self.visited = self.visited.wrapping_add(1);
            if self.visited & 0xfff == 0 && self.deadline.passed() {
                self.done = true;
                return None;
            }
            let node = self.cursor.node();
            if self.cursor.goto_first_child() {
                continue;
            }
            while !self.cursor.goto_next_sibling() {
                if !self.cursor.goto_parent() {
                    self.done = true;
                    break;
                }
            }
            return Some(node);
        }
        None
    }
}
