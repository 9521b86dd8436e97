//! The nodes that hold a node, found by one walk down from the root. tree-sitter keeps no
//! parent links: `Node::parent` walks down from the root to the node every time, so a climb
//! to the root one `parent` at a time costs the tree's depth squared (a hunt nested 8 000
//! `if`s around one `$E` in bash and ran the analysis to its 3 s kill). Runs in the analysing
//! process.

use tree_sitter::Node;

/// The nodes from `root` down to `node`, both included, in that order: the same nodes as
/// `node`'s parents one by one, at the cost of one of them.
pub(crate) fn path<'t>(root: Node<'t>, node: Node<'t>) -> Vec<Node<'t>> {
    let mut path = vec![root];
    let mut at = root;
    while at.id() != node.id() {
        match at.child_with_descendant(node) {
            Some(next) => {
                path.push(next);
                at = next;
            }
            None => break,
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    #[test]
    fn the_path_holds_the_parents_of_the_node() {
        let code = b"if true; then\n  if x; then echo \"$E\"; fi\nfi\n";
        let tree = crate::parse::for_test(Grammar::Bash, code);
        let root = tree.root_node();
        let at = code.iter().position(|&b| b == b'$').expect("a $");
        let node = root.descendant_for_byte_range(at, at + 1).expect("a node");
        let mut parents = vec![node];
        while let Some(parent) = parents.last().and_then(|n| n.parent()) {
            parents.push(parent);
        }
        parents.reverse();
        assert_eq!(path(root, node), parents);
        assert_eq!(path(root, root), [root]);
    }
}
