//! Whether a bash variable's name is the script's own variable there, not one it reads from
//! its environment, for the rules that read a variable's name as a sign of what the program
//! reads (`unless_assigned`: a variable named like a secret). A hunt found a tokenizer's `for
//! TOKEN in $(cat input.txt)` graded `high` as reading a token. Runs in the analysing process,
//! after the matching.
//!
//! An assignment replaces the environment's value for good (`unset` does not bring it back),
//! so a name is the script's own after a plain assignment `NAME=…` (not `NAME+=…`, which keeps
//! the value) that is a statement of the script's top level (not inside an `if`, a loop, a
//! function, a subshell or a pipeline), and the assignment's own name is none either; a
//! top-level `for NAME in …` is the loop's in its body (an empty loop assigns nothing), and so
//! is its own name. What the name is assigned does not matter: it is read where it is written
//! (`TOKEN=$GITHUB_TOKEN` reads `GITHUB_TOKEN`). `read NAME` does not count: it leaves the
//! value as it was when its input is closed (`exec <&-`).

use std::ops::Range;

use tree_sitter::{Node, Tree};

/// Whether the `variable_name` at `finding` names the script's own variable there.
pub(crate) fn is_own(tree: &Tree, code: &[u8], finding: Range<usize>) -> bool {
    let root = tree.root_node();
    let Some(node) = root
        .named_descendant_for_byte_range(finding.start, finding.end)
        .filter(|n| n.kind() == "variable_name" && n.byte_range() == finding)
    else {
        return false;
    };
    if root.kind() != "program" {
        return false;
    }
    let text = |n: Node<'_>| code.get(n.byte_range()).unwrap_or_default();
    let name = text(node);
    let is_name =
        |n: Option<Node<'_>>| n.is_some_and(|n| n.kind() == "variable_name" && text(n) == name);
    let mut cursor = root.walk();
    let own = root
        .named_children(&mut cursor)
        .any(|statement| match statement.kind() {
            "variable_assignment" => {
                let target = statement.child_by_field_name("name");
                let plain = statement.child(1).is_some_and(|o| o.kind() == "=");
                plain
                    && is_name(target)
                    && (target.is_some_and(|t| t.id() == node.id())
                        || statement.end_byte() <= finding.start)
            }
            "for_statement" => {
                let variable = statement.child_by_field_name("variable");
                let body = statement.child_by_field_name("body");
                is_name(variable)
                    && (variable.is_some_and(|v| v.id() == node.id())
                        || body.is_some_and(|b| {
                            b.start_byte() <= finding.start && finding.end <= b.end_byte()
                        }))
            }
            _ => false,
        });
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    /// Whether the `nth` occurrence of `name` in `code` is the script's own variable.
    fn own(code: &str, name: &str, nth: usize) -> bool {
        let tree = crate::parse::for_test(Grammar::Bash, code.as_bytes());
        let start = code
            .match_indices(name)
            .nth(nth)
            .map(|(i, _)| i)
            .expect("the use");
        is_own(&tree, code.as_bytes(), start..start + name.len())
    }

    #[test]
    fn a_top_level_assignment_or_loop_makes_the_variable_the_scripts() {
        assert!(own("PASSWORD=x\necho \"$PASSWORD\"\n", "PASSWORD", 0));
        assert!(own("PASSWORD=x\necho \"$PASSWORD\"\n", "PASSWORD", 1));
        assert!(own(
            "for TOKEN in a b; do\n  echo \"$TOKEN\"\ndone\n",
            "TOKEN",
            0
        ));
        assert!(own(
            "for TOKEN in a b; do\n  echo \"$TOKEN\"\ndone\n",
            "TOKEN",
            1
        ));
    }

    #[test]
    fn a_variable_that_may_hold_the_environments_value_is_not_the_scripts() {
        assert!(!own("echo \"$PASSWORD\"\nPASSWORD=x\n", "PASSWORD", 0));
        assert!(!own("PASSWORD=\"$PASSWORD\"\n", "PASSWORD", 1));
        assert!(!own("PASSWORD+=x\necho \"$PASSWORD\"\n", "PASSWORD", 1));
        assert!(!own(
            "if false; then PASSWORD=x; fi\necho \"$PASSWORD\"\n",
            "PASSWORD",
            1
        ));
        assert!(!own(
            "f() { PASSWORD=x; }\necho \"$PASSWORD\"\n",
            "PASSWORD",
            1
        ));
        assert!(!own("(PASSWORD=x)\necho \"$PASSWORD\"\n", "PASSWORD", 1));
        assert!(!own(
            "read -r PASSWORD\necho \"$PASSWORD\"\n",
            "PASSWORD",
            1
        ));
        assert!(!own(
            "for TOKEN in; do :; done\necho \"$TOKEN\"\n",
            "TOKEN",
            1
        ));
        assert!(!own("f() { echo \"$TOKEN\"; }\nf\nTOKEN=x\n", "TOKEN", 0));
    }
}
