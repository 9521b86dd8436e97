//! Whether a bash program may run a variable it assigns a command's name (`SUDO=sudo; $SUDO
//! apt-get`; also as an array, `a=(ev al)`, or by `printf -v e eval` or `read e <<< eval`),
//! for the rules whose match counts only then (`only_if_run`). `MODE=eval` read only as an
//! argument (`python train.py --mode "$MODE"`) runs nothing, and a hunt found it grading
//! ordinary scripts `high`. Runs in the analysing process, after the matching. Files are
//! analysed one by one, and another file of the program may source this one, or this one it,
//! and run the variable where this file does not show it (`source ./lib.sh; $E id`): in a
//! program of several files, a variable another file reads counts (`read_elsewhere.rs`,
//! `RequestFile::among_others`).
//!
//! The answer is "it may" unless every reading of the variable in the file is seen, and none
//! can run its value: the variable is read somewhere (in a program of one file, a file that
//! only assigns it may be sourced by another that runs it, or hand it to a child; in one of
//! several, no other file reads it), it is not exported (`export`, a
//! declaration, `set -a`, an assignment before a command), the file parses without an error,
//! and each `$NAME` or `${NAME…}` is a word of the tree (not in single quotes, a comment or a
//! quoted here-document, which `eval` or a shell may run) that reaches no command's name, no
//! declaration, no other variable or loop variable that may run in turn (followed through a
//! few), and no command that runs its arguments or its input
//! (`eval`, `command`, `exec`, `env`, `xargs`, `sudo`, a shell, `ssh`…; the commands of its
//! pipeline, and a here-document's reader, too). A command substitution passes its text on:
//! `$(echo "$MODE") x` runs it.

use std::ops::Range;

use tree_sitter::{Node, Tree};

use crate::ancestors;
use crate::deadline::Deadline;
use crate::ReadElsewhere;

/// How many variables a value is followed through (`x=$E; y=$x; $y`) before the analysis
/// takes it for one that may run.
const MAX_HOPS: u8 = 4;

/// Commands that run their arguments or their input as a command (or a shell's code).
const RUNNERS: &[&str] = &[
    ".",
    "alias",
    "ash",
    "bash",
    "builtin",
    "busybox",
    "chroot",
    "chrt",
    "command",
    "dash",
    "doas",
    "env",
    "eval",
    "exec",
    "fakeroot",
    "find",
    "firejail",
    "fish",
    "flock",
    "ionice",
    "ksh",
    "ltrace",
    "mksh",
    "nice",
    "nohup",
    "nsenter",
    "numactl",
    "parallel",
    "pkexec",
    "proot",
    "runuser",
    "script",
    "setpriv",
    "setsid",
    "sh",
    "source",
    "ssh",
    "stdbuf",
    "strace",
    "su",
    "sudo",
    "systemd-run",
    "taskset",
    "time",
    "timeout",
    "trap",
    "unbuffer",
    "unshare",
    "watch",
    "xargs",
    "zsh",
];

/// Whether the match at `at` may run: always, unless it sets variables (`NAME=…`, `NAME=(…)`,
/// `printf -v NAME …`, `read NAME <<< …`) that the program never runs (the module's
/// documentation says how that is decided). `elsewhere`: what the program's other files read,
/// if it has any. Past `deadline`, it may: each answer reads the whole program once.
pub(crate) fn may_run(
    tree: &Tree,
    code: &[u8],
    at: Range<usize>,
    elsewhere: Option<&ReadElsewhere>,
    deadline: Deadline,
) -> bool {
    let root = tree.root_node();
    if deadline.passed() {
        return true;
    }
    let Some(setter) = root
        .descendant_for_byte_range(at.start, at.end)
        .filter(|n| n.byte_range() == at)
    else {
        return true;
    };
    let (names, exported) = match setter.kind() {
        "variable_assignment" => {
            let Some(name) = setter.child_by_field_name("name") else {
                return true;
            };
            let before_a_command = setter
                .parent()
                .is_none_or(|p| matches!(p.kind(), "command" | "declaration_command"));
            (vec![&code[name.byte_range()]], before_a_command)
        }
        "command" => (set_by_command(setter, code), false),
        _ => return true,
    };
    let exported = exported
        || names.iter().any(|name| declared(root, code, name))
        || contains(code, b"set -a")
        || contains(code, b"allexport");
    if names.is_empty() || exported || root.has_error() {
        return true;
    }
    names
        .iter()
        .any(|name| runs(root, code, name, elsewhere, 0))
}

/// The variables a command sets: the name after `printf -v`, every word of `read`, `mapfile`
/// or `readarray` that could name one (an option's value too: a name too many only makes the
/// answer "it may").
fn set_by_command<'c>(command: Node<'_>, code: &'c [u8]) -> Vec<&'c [u8]> {
    let Some(name) = command.child_by_field_name("name") else {
        return Vec::new();
    };
    let mut cursor = command.walk();
    let words: Vec<&[u8]> = command
        .children_by_field_name("argument", &mut cursor)
        .filter(|a| a.kind() == "word")
        .map(|a| &code[a.byte_range()])
        .collect();
    let identifier = |w: &&[u8]| {
        w.first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && w.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    match &code[name.byte_range()] {
        b"printf" => words
            .windows(2)
            .filter(|pair| pair[0] == b"-v")
            .map(|pair| pair[1])
            .take(1)
            .collect(),
        b"read" | b"mapfile" | b"readarray" => words.into_iter().filter(identifier).collect(),
        _ => Vec::new(),
    }
}

/// Whether a reading of `name` in the program may run its value, or is one the tree does not
/// show as a word of its own, or another file reads it; `depth`: how many variables the value
/// went through to get here. A variable no file reads runs nowhere, but in a program of one
/// file, which another file (one a session left) may source.
fn runs(
    root: Node<'_>,
    code: &[u8],
    name: &[u8],
    elsewhere: Option<&ReadElsewhere>,
    depth: u8,
) -> bool {
    if elsewhere.is_some_and(|e| e.reads(name)) {
        return true;
    }
    let mut read = false;
    for dollar in readings(code, name) {
        read = true;
        let Some(token) = root.descendant_for_byte_range(dollar, dollar + 1) else {
            return true;
        };
        let expansion = token.parent().filter(|p| {
            token.start_byte() == dollar
                && matches!(p.kind(), "simple_expansion" | "expansion")
                && p.start_byte() == dollar
        });
        match expansion {
            Some(expansion) if !reaches_a_runner(root, expansion, code, elsewhere, depth) => {}
            _ => return true,
        }
    }
    !read && elsewhere.is_none()
}

/// The offsets of each `$NAME` and `${NAME…}` (`${!NAME}`, `${#NAME}`, `${NAME:-x}`) in `code`,
/// NAME ending there.
fn readings<'a>(code: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..code.len()).filter(move |&i| {
        if code[i] != b'$' {
            return false;
        }
        let mut at = i + 1;
        if code.get(at) == Some(&b'{') {
            at += 1;
            if matches!(code.get(at), Some(b'!' | b'#')) {
                at += 1;
            }
        }
        code[at..].starts_with(name)
            && code
                .get(at + name.len())
                .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
    })
}

/// Whether `name` is a word of a declaration anywhere (`export NAME`, `declare -x NAME`,
/// `readonly NAME`): its value may then reach a child process.
fn declared(root: Node<'_>, code: &[u8], name: &[u8]) -> bool {
    (0..code.len()).any(|i| {
        let word = code[i..].starts_with(name)
            && (i == 0 || !(code[i - 1].is_ascii_alphanumeric() || b"_${".contains(&code[i - 1])))
            && code
                .get(i + name.len())
                .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
        word && {
            root.descendant_for_byte_range(i, i + name.len())
                .is_some_and(|node| {
                    ancestors::path(root, node)
                        .iter()
                        .any(|n| n.kind() == "declaration_command")
                })
        }
    })
}

/// Whether the value of `expansion` may reach a command's name, or a command that runs its
/// arguments or its input. A value given to another variable (`x=$E`, `for m in "${a[@]}"`)
/// reaches one where that variable may run, followed through at most [`MAX_HOPS`] variables.
fn reaches_a_runner(
    root: Node<'_>,
    expansion: Node<'_>,
    code: &[u8],
    elsewhere: Option<&ReadElsewhere>,
    depth: u8,
) -> bool {
    // Past a command that runs nothing: only its output goes on, to a pipeline or a
    // substitution.
    let mut output_only = false;
    let path = ancestors::path(root, expansion);
    for pair in path.windows(2).rev() {
        let (parent, node) = (pair[0], pair[1]);
        match parent.kind() {
            "command_name" => return true,
            "command" if !output_only => {
                if runs_arguments(parent, code) {
                    return true;
                }
                output_only = true;
            }
            "redirected_statement" => {
                let reader = parent.child_by_field_name("body");
                if reader.is_none_or(|body| body.kind() != "command" || runs_arguments(body, code))
                    || commands_after_a_here_document(parent)
                {
                    return true;
                }
                output_only = true;
            }
            "pipeline" => {
                let mut cursor = parent.walk();
                let runner = parent.named_children(&mut cursor).any(|stage| {
                    let stage = match stage.kind() {
                        "redirected_statement" => stage.child_by_field_name("body"),
                        _ => Some(stage),
                    };
                    stage.is_none_or(|s| s.kind() != "command" || runs_arguments(s, code))
                });
                if runner {
                    return true;
                }
            }
            "command_substitution" | "process_substitution" => output_only = false,
            "test_command" | "case_item" | "case_statement" => output_only = true,
            "variable_assignment" | "for_statement" if !output_only => {
                return passed_on(root, parent, node, code).is_none_or(|name| {
                    depth >= MAX_HOPS || runs(root, code, name, elsewhere, depth + 1)
                });
            }
            "declaration_command" | "ERROR" if !output_only => return true,
            _ => {}
        }
    }
    !output_only
}

/// The variable a value in `child` of `setter` (an assignment or a `for` loop) is given to,
/// when it is its value and the variable stays in this shell (an assignment before a command
/// is exported to it): `None` where the analysis cannot say.
fn passed_on<'c>(
    root: Node<'_>,
    setter: Node<'_>,
    child: Node<'_>,
    code: &'c [u8],
) -> Option<&'c [u8]> {
    let (name, value) = match setter.kind() {
        "variable_assignment" => ("name", "value"),
        _ => ("variable", "value"),
    };
    let mut cursor = setter.walk();
    let is_value = setter
        .children_by_field_name(value, &mut cursor)
        .any(|v| v.id() == child.id());
    let exported = setter.kind() == "variable_assignment"
        && setter
            .parent()
            .is_none_or(|p| matches!(p.kind(), "command" | "declaration_command"));
    if !is_value || exported {
        return None;
    }
    let name = &code[setter.child_by_field_name(name)?.byte_range()];
    (!declared(root, code, name)).then_some(name)
}

/// Whether a here-document of `statement` has commands on its line (`cat <<EOF | bash`),
/// which tree-sitter-bash puts inside the redirection.
fn commands_after_a_here_document(statement: Node<'_>) -> bool {
    let mut cursor = statement.walk();
    let redirects: Vec<Node<'_>> = statement
        .children_by_field_name("redirect", &mut cursor)
        .collect();
    let mut heredocs = redirects
        .into_iter()
        .filter(|r| r.kind() == "heredoc_redirect");
    heredocs.any(|redirect| {
        let mut cursor = redirect.walk();
        let mut parts = redirect.named_children(&mut cursor);
        parts.any(|part| !(part.kind().starts_with("heredoc_") || part.kind() == "file_redirect"))
    })
}

/// Whether `command` may run its arguments: its name is one of [`RUNNERS`] (by its last path
/// component), or not a plain word.
fn runs_arguments(command: Node<'_>, code: &[u8]) -> bool {
    let Some(name) = command.child_by_field_name("name") else {
        return true;
    };
    let name = &code[name.byte_range()];
    let plain = name
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"_-+./".contains(b));
    let last = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    !plain || RUNNERS.iter().any(|r| r.as_bytes() == last)
}

fn contains(code: &[u8], text: &[u8]) -> bool {
    code.windows(text.len()).any(|w| w == text)
}
