//! A shell script that hands itself to another interpreter: its first lines run `exec
//! python3 "$0" "$@"` (pip's relocatable launcher starts `'''exec' "$(dirname …)/python3" "$0"
//! "$@"`, a line that is shell and a Python string at once), and the rest of the file is the
//! other language's code. The shell never reads past an `exec` that replaces it, so the rules
//! of bash, reading the rest as shell, found it unparseable (`high`) where it is an ordinary
//! program. Runs in the analysing process, after the bash parse.
//!
//! The file is then two programs: the shell's lines up to the `exec` (the rest blanked,
//! offsets and lines kept), read as bash, and the whole file read as the interpreter's
//! language, as the interpreter reads it (its rules see the Python that runs; a Python that
//! does not parse is graded as any such program). Only an `exec` that the shell must reach
//! counts: a command of the program's top level (not in a condition, a list, a function or in
//! the background) once the shell's lines before it parse without an error, naming an
//! interpreter that has rules and passing it the script itself (`$0`).

use std::borrow::Cow;

use tree_sitter::{Node, Tree};

use crate::deadline::Deadline;
use crate::parse;
use crate::Grammar;

/// A script that hands itself over at an `exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handover {
    /// The language id of the interpreter the script runs itself with.
    pub(crate) language: &'static str,
    /// Where the shell stops reading: the end of the `exec`'s line.
    pub(crate) cut: usize,
}

/// The handover in `code` (bash, as read, parsed as `tree`), if it has one with code after it.
pub(crate) fn handover(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Handover> {
    let exec = first_exec(tree.root_node(), code)?;
    let language = interpreter_of(exec, code)?;
    let line_end = code[exec.end_byte()..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(code.len(), |i| exec.end_byte() + i + 1);
    if code[line_end..].iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let shell = blanked_from(code, line_end);
    let alone = parse::parse(&Grammar::Bash.language(), &shell, deadline).ok()?;
    let root = alone.root_node();
    let again = root.descendant_for_byte_range(exec.start_byte(), exec.end_byte())?;
    (!root.has_error() && reached(again, exec)).then_some(Handover {
        language,
        cut: line_end,
    })
}

/// `code` with every byte from `cut` on but its line breaks made a blank: the shell's lines
/// alone, offsets and lines kept.
pub(crate) fn blanked_from(code: &[u8], cut: usize) -> Vec<u8> {
    let mut shell = code.to_vec();
    for byte in &mut shell[cut..] {
        if *byte != b'\n' {
            *byte = b' ';
        }
    }
    shell
}

/// The first command named `exec` with an argument, in the order of the text.
fn first_exec<'t>(root: Node<'t>, code: &[u8]) -> Option<Node<'t>> {
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if node.kind() == "command"
            && node
                .child_by_field_name("name")
                .is_some_and(|n| &code[n.byte_range()] == b"exec")
            && node.child_by_field_name("argument").is_some()
        {
            return Some(node);
        }
        if cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return None;
            }
        }
    }
}

/// Whether `exec` (the same command as `first`, in the tree of the shell's lines alone) runs
/// whenever the script does: a statement of the top level, not in the background.
fn reached(exec: Node<'_>, first: Node<'_>) -> bool {
    if exec.kind() != "command" || exec.byte_range() != first.byte_range() {
        return false;
    }
    let statement = match exec.parent() {
        Some(p) if p.kind() == "redirected_statement" => p,
        _ => exec,
    };
    statement.parent().is_some_and(|p| p.kind() == "program")
        && statement.next_sibling().is_none_or(|s| s.kind() != "&")
}

/// The language id of the interpreter that `exec` runs with the script itself (`$0`) as an
/// argument, if warden has rules for it.
fn interpreter_of(exec: Node<'_>, code: &[u8]) -> Option<&'static str> {
    let mut cursor = exec.walk();
    let words: Vec<Cow<'_, str>> = exec
        .children_by_field_name("argument", &mut cursor)
        .map(|a| String::from_utf8_lossy(&code[a.byte_range()]))
        .collect();
    let unquoted = |w: &str| w.replace(['"', '\''], "");
    if !words
        .iter()
        .any(|w| matches!(unquoted(w).as_str(), "$0" | "${0}"))
    {
        return None;
    }
    let mut programs = words
        .iter()
        .map(|w| unquoted(w))
        .filter(|w| !w.starts_with('-') && !w.contains('='))
        .map(|w| w.rsplit('/').next().unwrap_or_default().to_owned());
    let mut program = programs.next()?;
    if program == "env" {
        program = programs.next()?;
    }
    language_of(&program)
}

/// The language id of an interpreter's program name (`python3.11`, `node`), among those with
/// rules.
fn language_of(program: &str) -> Option<&'static str> {
    let version = |rest: &str| rest.chars().all(|c| c.is_ascii_digit() || c == '.');
    match program {
        p if p.strip_prefix("python").is_some_and(version) => Some("python"),
        "node" | "nodejs" => Some("javascript"),
        p if p.strip_prefix("ruby").is_some_and(version) => Some("ruby"),
        p if p.strip_prefix("php").is_some_and(version) => Some("php"),
        "Rscript" => Some("r"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn handover_of(code: &str) -> Option<Handover> {
        let deadline = Deadline::after(Duration::from_secs(60));
        let tree = parse::parse(&Grammar::Bash.language(), code.as_bytes(), deadline).ok()?;
        handover(&tree, code.as_bytes(), deadline)
    }

    #[test]
    fn a_script_that_execs_an_interpreter_on_itself_hands_over() {
        let launcher =
            "#!/bin/sh\nexec \"$(dirname -- \"$0\")/python3\" \"$0\" \"$@\"\n' '''\nimport sys\n";
        let found = handover_of(launcher).expect("a handover");
        assert_eq!(found.language, "python");
        assert_eq!(
            String::from_utf8(blanked_from(launcher.as_bytes(), found.cut)).expect("utf-8"),
            "#!/bin/sh\nexec \"$(dirname -- \"$0\")/python3\" \"$0\" \"$@\"\n     \n          \n"
        );
        let env = "#!/bin/sh\nexec /usr/bin/env node \"$0\" \"$@\" 2>&1\nconsole.log(1)\n";
        assert_eq!(handover_of(env).map(|h| h.language), Some("javascript"));
    }

    #[test]
    fn an_exec_the_shell_may_not_reach_hands_nothing_over() {
        for code in [
            // Nothing after it.
            "#!/bin/sh\nexec python3 \"$0\" \"$@\"\n",
            // Not the script itself, or no interpreter with rules.
            "exec python3 -m pydoc \"$@\"\nimport x\n",
            "exec perl -x \"$0\"\nuse strict;\n",
            // Conditional, in the background, after a line that does not parse.
            "[ -n \"$X\" ] && exec python3 \"$0\"\nimport os\n",
            "if true; then exec python3 \"$0\"; fi\nimport os\n",
            "exec python3 \"$0\" &\nimport os\n",
            "f() { exec python3 \"$0\"; }\nimport os\n",
            "echo )\nexec python3 \"$0\"\nimport os\n",
        ] {
            assert_eq!(handover_of(code), None, "{code:?}");
        }
    }
}
