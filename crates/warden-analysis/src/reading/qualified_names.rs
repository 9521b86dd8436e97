//! Qualified names as their language reads them: the blanks and comments a language allows
//! around the separators of a name (`java.lang. reflect.Method`, `java.lang/**/.reflect`,
//! `std :: system`, `std :: process :: Command`, Python's `os . system` or `(os # c` then
//! `.system)`, Ruby's `:: File`, PHP's `\ FFI`) are no part of it, but the rules read a name by
//! its text: a hunt imported `java.lang. reflect.Method` graded `none`. Found on the tree (a
//! name node of the language, a separator among its children, something between the separator
//! and the parts beside it), the blanks and comments are moved, as they are, to just after the
//! outermost name node that holds them, so that the name's text is the name and no line before
//! or after it moves. Runs in the analysing process, between parses (`reading.rs`,
//! [`super::parsed`]).
//!
//! A line comment takes its line break along, so it still ends where it did. Only the parts of
//! a name are moved over: an outermost name node ends where its last part ends (a call's
//! arguments come after it), and what follows it is no separator of a name around it, so the
//! moved text lands where nothing reads a name: a second reading finds nothing to move. Not
//! read so: JavaScript's and Go's member accesses, where a line break moved past a name could
//! change how the language ends a statement (their rules read the object and the member
//! apart, which blanks do not hide), and R's `base :: x` (read apart too).

use tree_sitter::{Node, Tree};

use crate::deadline::{self, Deadline};
use crate::Grammar;

/// The kinds of `grammar`'s name nodes, and the separators between their parts.
fn names(grammar: Grammar) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match grammar {
        Grammar::Java => (
            &[
                "scoped_identifier",
                "scoped_type_identifier",
                "field_access",
                "import_declaration",
            ],
            &["."],
        ),
        Grammar::Cpp => (&["qualified_identifier"], &["::"]),
        Grammar::Rust => (
            &[
                "scoped_identifier",
                "scoped_type_identifier",
                "scoped_use_list",
                "use_wildcard",
            ],
            &["::"],
        ),
        Grammar::Php => (&["qualified_name", "namespace_name"], &["\\"]),
        Grammar::Python => (&["attribute", "dotted_name"], &["."]),
        Grammar::Ruby => (&["scope_resolution"], &["::"]),
        _ => return None,
    })
}

/// The text to parse again, when a name of `code`'s tree holds blanks or comments around a
/// separator.
pub(crate) fn reread(
    grammar: Grammar,
    tree: &Tree,
    code: &[u8],
    deadline: Deadline,
) -> Option<Vec<u8>> {
    let (kinds, separators) = names(grammar)?;
    // (gap, where it goes): each gap is a range of filler, moved to just after a name.
    let mut moves: Vec<(std::ops::Range<usize>, usize)> = Vec::new();
    // For each node on the walk's path, by depth: where the outermost name node that holds it
    // ends, through name nodes only, if it is one.
    let mut outermost_end: Vec<Option<usize>> = Vec::new();
    let walked = deadline::walk_with_depth(tree, deadline, |node, depth| {
        outermost_end.truncate(depth);
        let end = kinds.contains(&node.kind()).then(|| {
            let parent = outermost_end.last().copied().flatten();
            parent.unwrap_or_else(|| node.end_byte())
        });
        outermost_end.push(end);
        if let Some(end) = end {
            gaps(node, separators, |gap| moves.push((gap, end)));
        }
        true
    });
    if !walked {
        return None;
    }
    if moves.is_empty() {
        return None;
    }
    moves.sort_by_key(|(gap, _)| gap.start);
    // Gaps are disjoint and in source order; a stable sort keeps each name's gaps in order.
    let mut insertions: Vec<(usize, std::ops::Range<usize>)> =
        moves.iter().map(|(gap, to)| (*to, gap.clone())).collect();
    insertions.sort_by_key(|(to, _)| *to);
    let mut read = Vec::with_capacity(code.len());
    let (mut at, mut next_insertion) = (0, 0);
    for (gap, _) in &moves {
        flush(
            code,
            &mut read,
            &mut at,
            gap.start,
            &insertions,
            &mut next_insertion,
        );
        at = gap.end;
    }
    flush(
        code,
        &mut read,
        &mut at,
        code.len(),
        &insertions,
        &mut next_insertion,
    );
    for (_, gap) in &insertions[next_insertion..] {
        read.extend_from_slice(&code[gap.clone()]);
    }
    (read != code).then_some(read)
}

/// Copies `code[*at..until]` to `read`, with the gaps to insert at each position in it.
fn flush(
    code: &[u8],
    read: &mut Vec<u8>,
    at: &mut usize,
    until: usize,
    insertions: &[(usize, std::ops::Range<usize>)],
    next: &mut usize,
) {
    while let Some((to, gap)) = insertions.get(*next).filter(|(to, _)| *to <= until) {
        let to = (*to).max(*at);
        read.extend_from_slice(&code[*at..to]);
        read.extend_from_slice(&code[gap.clone()]);
        *at = to;
        *next += 1;
    }
    read.extend_from_slice(&code[*at..until.max(*at)]);
    *at = until.max(*at);
}

/// Calls `found` with each non-empty range between a separator child of `node` and the parts
/// of the name beside it (comments, which are extras, count as filler).
fn gaps(node: Node<'_>, separators: &[&str], mut found: impl FnMut(std::ops::Range<usize>)) {
    let mut cursor = node.walk();
    let parts: Vec<Node<'_>> = node
        .children(&mut cursor)
        .filter(|c| !c.is_extra())
        .collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_named() || !separators.contains(&part.kind()) {
            continue;
        }
        if let Some(before) = i.checked_sub(1).map(|j| parts[j]) {
            // `1 .real` in Python: joined, `1.` would be a float.
            if is_number(before) {
                continue;
            }
            if before.end_byte() < part.start_byte() {
                found(before.end_byte()..part.start_byte());
            }
        }
        if let Some(after) = parts.get(i + 1) {
            if part.end_byte() < after.start_byte() {
                found(part.end_byte()..after.start_byte());
            }
        }
    }
}

/// Whether `node` is a number literal, which a separator after it would join.
fn is_number(node: Node<'_>) -> bool {
    let kind = node.kind();
    kind.contains("integer") || kind.contains("float") || kind.contains("number")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(grammar: Grammar, code: &str) -> (String, usize) {
        let reread: fn(&Tree, &[u8], Deadline) -> Option<Vec<u8>> = match grammar {
            Grammar::Java => |t, c, d| reread(Grammar::Java, t, c, d),
            Grammar::Cpp => |t, c, d| reread(Grammar::Cpp, t, c, d),
            Grammar::Rust => |t, c, d| reread(Grammar::Rust, t, c, d),
            Grammar::Php => |t, c, d| reread(Grammar::Php, t, c, d),
            Grammar::Python => |t, c, d| reread(Grammar::Python, t, c, d),
            Grammar::Ruby => |t, c, d| reread(Grammar::Ruby, t, c, d),
            _ => |_, _, _| None,
        };
        crate::reading::read_until_still(grammar, reread, code)
    }

    #[test]
    fn blanks_and_comments_in_a_name_go_after_it() {
        assert_eq!(
            read(
                Grammar::Java,
                "import java.lang. reflect.Method;\nclass A {}\n"
            ),
            ("import java.lang.reflect.Method; \nclass A {}\n".into(), 1)
        );
        assert_eq!(
            read(Grammar::Java, "import java.lang/**/.reflect .*;\n"),
            ("import java.lang.reflect.*;/**/ \n".into(), 1)
        );
        assert_eq!(
            read(
                Grammar::Java,
                "class A { void f() { java.lang // c\n . Runtime . getRuntime(); } }\n"
            ),
            (
                "class A { void f() { java.lang.Runtime // c\n   . getRuntime(); } }\n".into(),
                1
            )
        );
        assert_eq!(
            read(Grammar::Cpp, "int main() { std :: system(\"id\"); }\n"),
            ("int main() { std::system  (\"id\"); }\n".into(), 1)
        );
        assert_eq!(
            read(Grammar::Rust, "use std :: process :: Command;\n"),
            ("use std::process::Command    ;\n".into(), 1)
        );
        assert_eq!(
            read(Grammar::Python, "x = (os # c\n .system)('id')\n"),
            ("x = (os.system # c\n )('id')\n".into(), 1)
        );
        assert_eq!(
            read(Grammar::Ruby, ":: File.read('/etc/passwd')\n"),
            ("::File .read('/etc/passwd')\n".into(), 1)
        );
        assert_eq!(
            read(Grammar::Php, "<?php \\ FFI::cdef('x');\n"),
            ("<?php \\FFI ::cdef('x');\n".into(), 1)
        );
    }

    /// Regression hunt "ana" 10: each name node looked for its outermost name through
    /// `Node::parent`, which tree-sitter answers by a walk down from the root: 8 KB of `x. ` in
    /// Python (2 700 names, each inside the next) ran past the 200 ms budget to the 3 s kill.
    /// The walk knows each node's outer names as it goes; this many took hours.
    #[test]
    fn a_long_chain_of_names_is_read_in_one_walk() {
        let code = "x. ".repeat(20_000) + "x\n";
        let read_as = "x.".repeat(20_000) + "x" + &" ".repeat(20_000) + "\n";
        assert_eq!(read(Grammar::Python, &code), (read_as, 1));
    }

    #[test]
    fn names_without_blanks_and_other_languages_are_left_alone() {
        for (grammar, code) in [
            (
                Grammar::Java,
                "import java.util.List;\nclass A { int x = a.b.c; }\n",
            ),
            (
                Grammar::Java,
                "class A { void f() { x\n  .map(y)\n  .filter(z); } }\n",
            ),
            (
                Grammar::Python,
                "import os.path\nx = df.groupby('a').agg(f)\n",
            ),
            (Grammar::Javascript, "p\n  .then(f)\n  .catch(g);\n"),
            (
                Grammar::Go,
                "package main\nfunc main() { exec . Command(\"id\") }\n",
            ),
        ] {
            let (text, passes) = read(grammar, code);
            assert_eq!(passes, 0, "{code:?} read as {text:?}");
        }
    }
}
