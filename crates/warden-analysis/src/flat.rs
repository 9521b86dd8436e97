//! A program's syntax tree copied into arrays, for matching: the rules look at the same
//! children many times (every pattern that can start at a `call` looks at its function and
//! arguments), and moving a tree-sitter cursor over hidden nodes each time costs more than the
//! rest of the matching together. Built in one walk of one cursor.

use std::num::NonZeroU16;
use std::ops::Range;

use tree_sitter::{Node, Tree};

use crate::deadline::Deadline;

/// Nodes copied between two looks at the clock.
const NODES_PER_CLOCK_CHECK: usize = 4096;

/// One node of a [`FlatTree`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlatNode {
    pub(crate) start: u32,
    pub(crate) end: u32,
    /// The line it starts on, from 0.
    pub(crate) row: u32,
    /// Its (public) kind id.
    pub(crate) kind: u16,
    /// The field it is in, within its parent.
    pub(crate) field: Option<NonZeroU16>,
    pub(crate) named: bool,
}

impl FlatNode {
    /// Its bytes in the program.
    pub(crate) fn bytes(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The nodes of a tree in document order (the root is node 0), and each node's children.
#[derive(Debug)]
pub(crate) struct FlatTree {
    pub(crate) nodes: Vec<FlatNode>,
    /// Where node `i`'s children start in `children`; one more entry than nodes.
    child_start: Vec<u32>,
    /// Every node's children, node after node.
    children: Vec<u32>,
}

impl FlatTree {
    /// Copies `tree`; `None` if `deadline` passes first.
    pub(crate) fn build(tree: &Tree, deadline: Deadline) -> Option<FlatTree> {
        let mut nodes = Vec::new();
        let mut parents: Vec<u32> = Vec::new();
        let mut ancestors: Vec<u32> = Vec::new();
        let mut cursor = tree.walk();
        loop {
            let at = nodes.len();
            if at % NODES_PER_CLOCK_CHECK == NODES_PER_CLOCK_CHECK - 1 && deadline.passed() {
                return None;
            }
            nodes.push(flat(cursor.node(), cursor.field_id()));
            parents.push(ancestors.last().copied().unwrap_or(u32::MAX));
            if cursor.goto_first_child() {
                ancestors.push(index(at));
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    return Some(FlatTree::with_parents(nodes, &parents));
                }
                ancestors.pop();
            }
        }
    }

    /// Lays out the children of `nodes`, each node's `parents` entry being its parent's index
    /// (`u32::MAX` for the root).
    fn with_parents(nodes: Vec<FlatNode>, parents: &[u32]) -> FlatTree {
        let mut child_start = vec![0u32; nodes.len() + 1];
        for &parent in parents.iter().filter(|&&p| p != u32::MAX) {
            child_start[parent as usize + 1] += 1;
        }
        for i in 1..child_start.len() {
            child_start[i] += child_start[i - 1];
        }
        let mut filled = child_start.clone();
        let mut children = vec![0u32; parents.len().saturating_sub(1)];
        for (child, &parent) in parents.iter().enumerate().filter(|(_, &p)| p != u32::MAX) {
            let slot = &mut filled[parent as usize];
            children[*slot as usize] = index(child);
            *slot += 1;
        }
        FlatTree {
            nodes,
            child_start,
            children,
        }
    }

    /// The indices of node `i`'s children, in order.
    pub(crate) fn children(&self, i: usize) -> &[u32] {
        &self.children[self.child_start[i] as usize..self.child_start[i + 1] as usize]
    }
}

fn flat(node: Node<'_>, field: Option<NonZeroU16>) -> FlatNode {
    FlatNode {
        start: index(node.start_byte()),
        end: index(node.end_byte()),
        row: index(node.start_position().row),
        kind: node.kind_id(),
        field,
        named: node.is_named(),
    }
}

/// Offsets fit: the analysed input is capped far below 4 GiB (`input.rs`).
fn index(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_consecutive_and_keep_their_fields() {
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&crate::Grammar::Python.language())
            .expect("grammar");
        let code = "os.system('ls')\n";
        let tree = parser.parse(code, None).expect("parses");
        let flat = FlatTree::build(
            &tree,
            crate::deadline::Deadline::after(std::time::Duration::from_secs(5)),
        )
        .expect("in time");
        let language = crate::Grammar::Python.language();
        let kind = |i: usize| language.node_kind_for_id(flat.nodes[i].kind).unwrap_or("?");
        let call = (0..flat.nodes.len())
            .find(|&i| kind(i) == "call")
            .expect("a call");
        let field = |i: usize| {
            let field = flat.nodes[i].field?;
            language.field_name_for_id(field.get())
        };
        let children: Vec<_> = flat
            .children(call)
            .iter()
            .map(|&i| (kind(i as usize), field(i as usize)))
            .collect();
        assert_eq!(
            children,
            [
                ("attribute", Some("function")),
                ("argument_list", Some("arguments"))
            ]
        );
        assert_eq!(&code[flat.nodes[call].bytes()], "os.system('ls')");
        assert_eq!(flat.nodes.len(), tree.root_node().descendant_count());
    }
}
