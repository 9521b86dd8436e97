//! Whether a Python module's use of a builtin's name (`exec`, `eval`, `compile`) reads the
//! module's own binding of that name, not the builtin, for the rules whose match of such a
//! name counts only then (`unless_bound`): `with ThreadPoolExecutor(4) as exec: exec.map(…)`,
//! `eval = evaluate(preds, gold); print(eval)` and `def compile(src): …; compile("a b")` run no
//! code, and a hunt found each graded `high`. Runs in the analysing process, after the matching.
//!
//! What the name is bound to does not matter: `exec = V; exec(code)` runs what `f = V; f(code)`
//! runs, and `V` is read by the rules where it is written (`exec = __builtins__.exec` is
//! `python.hidden_names`). What matters is that the binding is in effect where the name is
//! used, so a binding counts only when it surely is: a statement of the module's top level
//! (not inside an `if`, a `try`, a function or a class), which runs before anything after it
//! (it binds or the program stops): a `def` or `class` of that name, an assignment to it (also
//! in a chain, `a = exec = …`), a `with … as` it (also for the `with`'s body), an import as it;
//! a top-level `for` over it binds it only in its body (an empty loop binds nothing). The use
//! must come after the binding in the text: a function defined before it may be called before
//! it. Nothing counts in a module that may unbind the name, which gives the builtin back: a
//! `del` of it, a `global` or `nonlocal` of it, an `except … as` it (Python deletes that name
//! after the handler), or a look at the module's namespace (`globals`, `vars`, `locals`,
//! `delattr`, `__dict__`, `__main__`, `sys.modules`), or an import of `*`, which may bind the
//! builtin again (`from builtins import *`).

use std::collections::HashMap;
use std::ops::Range;

use tree_sitter::{Node, Tree};

use crate::deadline::{self, Deadline};

/// Names whose presence anywhere may reach the module's namespace and unbind a name.
const NAMESPACE_NAMES: &[&[u8]] = &[
    b"globals",
    b"vars",
    b"locals",
    b"delattr",
    b"__dict__",
    b"__main__",
    b"modules",
];

/// Statements inside which the name's presence may unbind it.
const UNBINDING: &[&str] = &[
    "delete_statement",
    "global_statement",
    "nonlocal_statement",
    "except_clause",
    "except_group_clause",
];

/// The module's own bindings of names, found once per name.
#[derive(Default)]
pub(crate) struct OwnBindings {
    /// For each name asked about, where the module's binding is surely in effect.
    in_effect: HashMap<Vec<u8>, Vec<Range<usize>>>,
}

impl OwnBindings {
    /// Whether the finding at `finding` (an identifier, or a call of one) is one of `names`
    /// read where the module's own binding of it is surely in effect.
    pub(crate) fn hides(
        &mut self,
        tree: &Tree,
        code: &[u8],
        finding: Range<usize>,
        names: &[String],
        deadline: Deadline,
    ) -> bool {
        let Some(name) = name_of(tree, code, &finding) else {
            return false;
        };
        if !names.iter().any(|n| n.as_bytes() == name) {
            return false;
        }
        let ranges = self
            .in_effect
            .entry(name.to_vec())
            .or_insert_with(|| in_effect(tree, code, name, deadline));
        ranges
            .iter()
            .any(|r| r.start <= finding.start && finding.end <= r.end)
    }
}

/// The name a finding reads: the identifier it is, or the identifier it calls.
fn name_of<'c>(tree: &Tree, code: &'c [u8], finding: &Range<usize>) -> Option<&'c [u8]> {
    let node = tree
        .root_node()
        .named_descendant_for_byte_range(finding.start, finding.end)
        .filter(|n| n.byte_range() == *finding)?;
    let name = match node.kind() {
        "identifier" => node,
        "call" => node
            .child_by_field_name("function")
            .filter(|f| f.kind() == "identifier")?,
        _ => return None,
    };
    code.get(name.byte_range())
}

/// Where the module's own binding of `name` is surely in effect; nowhere when the module may
/// unbind it, does not parse, or the deadline passes.
fn in_effect(tree: &Tree, code: &[u8], name: &[u8], deadline: Deadline) -> Vec<Range<usize>> {
    let root = tree.root_node();
    if root.kind() != "module" || root.has_error() || may_unbind(tree, code, name, deadline) {
        return Vec::new();
    }
    let text = |node: Node<'_>| code.get(node.byte_range()).unwrap_or_default();
    let is_name =
        |node: Option<Node<'_>>| node.is_some_and(|n| n.kind() == "identifier" && text(n) == name);
    let after = |node: Node<'_>| node.end_byte()..code.len();
    let mut ranges = Vec::new();
    let mut cursor = root.walk();
    for statement in root.named_children(&mut cursor) {
        match statement.kind() {
            "function_definition" | "class_definition"
                if is_name(statement.child_by_field_name("name")) =>
            {
                ranges.push(after(statement));
            }
            "decorated_definition" => {
                let definition = statement.child_by_field_name("definition");
                if is_name(definition.and_then(|d| d.child_by_field_name("name"))) {
                    ranges.push(after(statement));
                }
            }
            "expression_statement" => {
                let mut assignment = statement.named_child(0);
                while let Some(a) = assignment.filter(|a| a.kind() == "assignment") {
                    if is_name(a.child_by_field_name("left"))
                        && a.child_by_field_name("right").is_some()
                    {
                        ranges.push(after(statement));
                        break;
                    }
                    assignment = a.child_by_field_name("right");
                }
            }
            "with_statement" => {
                if let Some(alias) = with_alias(statement, &is_name) {
                    ranges.push(alias.end_byte()..code.len());
                }
            }
            "import_statement" | "import_from_statement" if imports_as(statement, &is_name) => {
                ranges.push(after(statement));
            }
            "for_statement" if is_name(statement.child_by_field_name("left")) => {
                if let Some(body) = statement.child_by_field_name("body") {
                    ranges.push(body.byte_range());
                }
            }
            _ => {}
        }
    }
    ranges
}

/// The `as` target of `with_statement` that is the name, if any.
fn with_alias<'t>(
    statement: Node<'t>,
    is_name: &impl Fn(Option<Node<'t>>) -> bool,
) -> Option<Node<'t>> {
    let mut found = None;
    let mut cursor = statement.walk();
    for clause in statement.named_children(&mut cursor) {
        if clause.kind() != "with_clause" {
            continue;
        }
        let mut items = clause.walk();
        for item in clause.named_children(&mut items) {
            let value = item.child_by_field_name("value");
            let Some(pattern) = value.filter(|v| v.kind() == "as_pattern") else {
                continue;
            };
            let target = pattern.child_by_field_name("alias");
            let identifier = target.and_then(|t| match t.kind() {
                "as_pattern_target" => t.named_child(0),
                _ => Some(t),
            });
            if is_name(identifier) {
                found = Some(pattern);
            }
        }
    }
    found
}

/// Whether an import statement binds the name (`import x as name`, `from m import name`).
fn imports_as<'t>(statement: Node<'t>, is_name: &impl Fn(Option<Node<'t>>) -> bool) -> bool {
    let mut cursor = statement.walk();
    let names: Vec<Node<'t>> = statement
        .children_by_field_name("name", &mut cursor)
        .collect();
    names.into_iter().any(|imported| match imported.kind() {
        "aliased_import" => is_name(imported.child_by_field_name("alias")),
        "dotted_name" if statement.kind() == "import_from_statement" => {
            imported.named_child_count() == 1 && is_name(imported.named_child(0))
        }
        _ => false,
    })
}

/// Whether the module may unbind `name`: the name inside a `del`, a `global` or `nonlocal`,
/// an `except` clause, any look at the module's namespace, or an import of `*` (which may
/// bind the builtin again: `from builtins import *`). True if the deadline passes.
fn may_unbind(tree: &Tree, code: &[u8], name: &[u8], deadline: Deadline) -> bool {
    let mut found = false;
    let mut kinds: Vec<&str> = Vec::new();
    let finished = deadline::walk_with_depth(tree, deadline, |node, depth| {
        kinds.truncate(depth);
        kinds.push(node.kind());
        found |= node.kind() == "wildcard_import";
        if node.kind() == "identifier" {
            let text = code.get(node.byte_range()).unwrap_or_default();
            found |= NAMESPACE_NAMES.contains(&text)
                || text == name && kinds.iter().any(|k| UNBINDING.contains(k));
        }
        !found
    });
    found || !finished
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    /// Whether each use of `name` at `marker` (its byte offset) is hidden.
    fn hidden(code: &str, name: &str, nth: usize) -> bool {
        let tree = crate::parse::for_test(Grammar::Python, code.as_bytes());
        let start = code
            .match_indices(name)
            .nth(nth)
            .map(|(i, _)| i)
            .expect("the use");
        let finding = start..start + name.len();
        OwnBindings::default().hides(
            &tree,
            code.as_bytes(),
            finding,
            &[name.to_owned()],
            Deadline::after(std::time::Duration::from_secs(5)),
        )
    }

    #[test]
    fn a_top_level_binding_before_the_use_hides_the_builtin() {
        assert!(hidden(
            "def compile(s):\n    return s\nprint(compile)\n",
            "compile",
            1
        ));
        assert!(hidden("eval = 1\nprint(eval)\n", "eval", 1));
        assert!(hidden("a = eval = 1\nprint(eval)\n", "eval", 1));
        assert!(hidden("with f() as exec:\n    exec.map(g)\n", "exec", 1));
        assert!(hidden(
            "with f() as exec:\n    pass\nprint(exec)\n",
            "exec",
            1
        ));
        assert!(hidden("from m import exec\nprint(exec)\n", "exec", 1));
        assert!(hidden("import m as exec\nprint(exec)\n", "exec", 1));
        assert!(hidden("for exec in xs:\n    print(exec)\n", "exec", 1));
    }

    #[test]
    fn a_binding_that_may_not_be_in_effect_hides_nothing() {
        assert!(!hidden("print(eval)\neval = 1\n", "eval", 0));
        assert!(!hidden("if x:\n    eval = 1\nprint(eval)\n", "eval", 1));
        assert!(!hidden("def f():\n    eval = 1\nprint(eval)\n", "eval", 1));
        assert!(!hidden("class C:\n    eval = 1\nprint(eval)\n", "eval", 1));
        assert!(!hidden(
            "try:\n    eval = 1\nexcept E:\n    pass\nprint(eval)\n",
            "eval",
            1
        ));
        assert!(!hidden("eval = 1\ndel eval\nprint(eval)\n", "eval", 2));
        assert!(!hidden(
            "eval = 1\ndef f():\n    global eval\n    del eval\nf()\nprint(eval)\n",
            "eval",
            3
        ));
        assert!(!hidden(
            "eval = 1\ntry:\n    pass\nexcept E as eval:\n    pass\nprint(eval)\n",
            "eval",
            2
        ));
        assert!(!hidden(
            "eval = 1\nglobals().pop('eval')\nprint(eval)\n",
            "eval",
            2
        ));
        assert!(!hidden(
            "for exec in xs:\n    pass\nprint(exec)\n",
            "exec",
            1
        ));
        assert!(!hidden(
            "def f():\n    print(exec)\nexec = 1\nf()\n",
            "exec",
            0
        ));
        assert!(!hidden("exec: int\nprint(exec)\n", "exec", 1));
    }
}
