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
//! is its own name. What the name is assigned is read where it is written
//! (`TOKEN=$GITHUB_TOKEN` reads `GITHUB_TOKEN`), but the value must read nothing of the
//! environment, or it may be the secret again (`GITHUB_TOKEN=$(printenv GITHUB_TOKEN)`, a
//! regression hunt), and so must a loop's words; a program that declares a name reference
//! (`declare -n ref=GITHUB_TOKEN`) may assign the variable by another name, so none of its
//! variables is its own. `read NAME` does not count: it leaves the
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
    if has_nameref(root, code) {
        return false;
    }
    let mut cursor = root.walk();
    let own = root
        .named_children(&mut cursor)
        .any(|statement| match statement.kind() {
            "variable_assignment" => {
                let target = statement.child_by_field_name("name");
                let plain = statement.child(1).is_some_and(|o| o.kind() == "=");
                let value = statement.child_by_field_name("value");
                plain
                    && is_name(target)
                    && value.is_none_or(|v| reads_no_environment(v, code))
                    && (target.is_some_and(|t| t.id() == node.id())
                        || statement.end_byte() <= finding.start)
            }
            "for_statement" => {
                let variable = statement.child_by_field_name("variable");
                let body = statement.child_by_field_name("body");
                let mut words = statement.walk();
                let mut values = statement.children_by_field_name("value", &mut words);
                is_name(variable)
                    && values.all(|v| reads_no_environment(v, code))
                    && (variable.is_some_and(|v| v.id() == node.id())
                        || body.is_some_and(|b| {
                            b.start_byte() <= finding.start && finding.end <= b.end_byte()
                        }))
            }
            _ => false,
        });
    own
}

/// Commands that print nothing of the environment given words that expand none of it: a
/// command substitution of only these (`$(tr -dc 'a-z' </dev/urandom | head -c 16)`, `$(cat
/// input.txt)`) reads no secret of it. Not `env`, `printenv`, `awk` (`ENVIRON`), `sed` (its
/// `e` runs a command), `jq` (`env`), `openssl` (`-pass env:`), a shell or `eval`.
const QUIET_COMMANDS: &[&str] = &[
    "base64",
    "basename",
    "cat",
    "cut",
    "date",
    "dirname",
    "echo",
    "fold",
    "grep",
    "head",
    "ls",
    "md5sum",
    "nproc",
    "od",
    "printf",
    "seq",
    "sha1sum",
    "sha256sum",
    "shuf",
    "sort",
    "tail",
    "tr",
    "uniq",
    "uuidgen",
    "wc",
    "xxd",
];

/// Whether the words `node` reads nothing of the environment: no variable but a positional or
/// special parameter (also as a default, `${1:-16}`), no `${!…}` indirection, no process
/// substitution, and a command substitution only of `QUIET_COMMANDS` given no word that names
/// the environment's file (`/proc/self/environ`) or is a pattern that could.
fn reads_no_environment(node: Node<'_>, code: &[u8]) -> bool {
    let text = |n: Node<'_>| code.get(n.byte_range()).unwrap_or_default();
    let mut cursor = node.walk();
    let mut substitutions = 0usize;
    loop {
        let n = cursor.node();
        let quiet = match n.kind() {
            "variable_name" => text(n).iter().all(u8::is_ascii_digit),
            "expansion" => {
                let mut children = n.walk();
                let indirect = n.children(&mut children).any(|c| c.kind() == "!");
                !indirect
            }
            "process_substitution" => false,
            "command_substitution" => {
                substitutions += 1;
                let words: Vec<u8> = text(n)
                    .iter()
                    .copied()
                    .filter(|b| !matches!(b, b'\'' | b'"' | b'\\'))
                    .collect();
                !words.windows(7).any(|w| w == b"environ")
                    && !words.windows(5).any(|w| w == b"proc/")
            }
            "command_name" => {
                std::str::from_utf8(text(n)).is_ok_and(|name| QUIET_COMMANDS.contains(&name))
            }
            "word" => {
                substitutions == 0 || !text(n).iter().any(|b| matches!(b, b'*' | b'?' | b'['))
            }
            _ => true,
        };
        if !quiet {
            return false;
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node().kind() == "command_substitution" {
                substitutions -= 1;
            }
            if cursor.node().id() == node.id() {
                return true;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return true;
            }
        }
    }
}

/// Whether the program declares a name reference anywhere (`declare -n ref=GITHUB_TOKEN`,
/// `local -n`, `typeset -rn`): an assignment to `ref` then sets another variable, and a
/// variable's own assignment may be one by another name.
fn has_nameref(root: Node<'_>, code: &[u8]) -> bool {
    let text = |n: Node<'_>| code.get(n.byte_range()).unwrap_or_default();
    let declares = |n: Node<'_>| match n.kind() {
        "declaration_command" => true,
        "command" => n.child_by_field_name("name").is_some_and(|c| {
            matches!(
                text(c),
                b"declare" | b"typeset" | b"local" | b"builtin" | b"command"
            )
        }),
        _ => false,
    };
    let is_flag = |w: &[u8]| w.len() > 1 && w[0] == b'-' && w[1] != b'-' && w.contains(&b'n');
    let mut cursor = root.walk();
    loop {
        let n = cursor.node();
        if declares(n) {
            let mut words = n.walk();
            let flag = |c: Node<'_>| {
                let unquoted: Vec<u8> = text(c)
                    .iter()
                    .copied()
                    .filter(|b| !matches!(b, b'\'' | b'"' | b'\\'))
                    .collect();
                is_flag(&unquoted)
            };
            if n.children(&mut words).any(flag) {
                return true;
            }
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return false;
            }
        }
    }
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
