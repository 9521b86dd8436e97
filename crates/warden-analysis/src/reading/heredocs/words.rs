//! The words and operators of a here-document's line as the shell reads them, well enough to
//! find where a command, a quote, an expansion or a delimiter ends.

use std::ops::Range;

/// Bytes that end a shell word, besides blanks.
pub(super) const OPERATORS: &[u8] = b";&|<>()";
/// Words after which a separator ends a construct rather than starting a command.
const CLOSING_WORDS: [&[u8]; 8] = [
    b"done", b"fi", b"esac", b"then", b"do", b"else", b"elif", b"}",
];

/// Where a here-document's descriptor starts (`2<<EOF`), or its `<<` at `at` without one:
/// digits are a descriptor when they make the whole word.
pub(super) fn descriptor_start(code: &[u8], at: usize) -> usize {
    let digits = code[..at]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let start = at - digits;
    let word_starts = start == 0
        || matches!(
            code[start - 1],
            b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'('
        );
    if digits > 0 && word_starts {
        start
    } else {
        at
    }
}

/// Where the command whose words go on at `from` ends, and the length of the separator there:
/// 1 or 2 (`;`, `&`, `|`, `&&`, `||`, `|&`), 0 where no command follows (the end of the line,
/// a comment, a closing bracket, `;;`, a line break inside brackets).
pub(super) fn command_end(code: &[u8], from: usize) -> (usize, usize) {
    let (mut i, mut depth) = (from, 0usize);
    while i < code.len() && code[i] != b'\n' {
        let next = code.get(i + 1).copied();
        match code[i] {
            b'\\' => i += 1,
            b'\'' => i = quoted_end(code, i, b'\'', code[i - 1] == b'$') - 1,
            b'"' => i = quoted_end(code, i, b'"', true) - 1,
            b'`' => i = quoted_end(code, i, b'`', true) - 1,
            b'(' | b'{' => depth += 1,
            b')' | b'}' if depth == 0 => return (i, 0),
            b')' | b'}' => depth -= 1,
            b'#' if starts_word(code, i) => return (i, 0),
            _ if depth > 0 => {}
            b';' if matches!(next, Some(b';' | b'&')) => return (i, 0),
            b'&' | b'|' if next == Some(code[i]) => return (i, 2),
            b'|' if next == Some(b'&') => return (i, 2),
            b'<' | b'>' if matches!(next, Some(b'&' | b'|')) => i += 1,
            b'&' if next == Some(b'>') => i += 1,
            b';' | b'&' | b'|' => return (i, 1),
            _ => {}
        }
        i += 1;
    }
    (i.min(code.len()), 0)
}

/// `range` without the blanks at either end.
pub(super) fn trimmed(code: &[u8], range: Range<usize>) -> Range<usize> {
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let text = &code[range.clone()];
    let start = text.iter().take_while(|b| blank(b)).count();
    let end = text.len() - text[start..].iter().rev().take_while(|b| blank(b)).count();
    range.start + start..range.start + end
}

/// The index after the quote that closes the one at `at` (escapes count with `escapes`).
pub(super) fn quoted_end(code: &[u8], at: usize, quote: u8, escapes: bool) -> usize {
    let mut i = at + 1;
    while i < code.len() && code[i] != quote {
        i += if escapes && code[i] == b'\\' { 2 } else { 1 };
    }
    (i + 1).min(code.len())
}

/// Past a `$[ … ]` or `${ … }` whose text starts at `from` (after the opening bracket), where
/// `<<` is a shift or text: at its closing bracket on the same line (nested `[ ]` counted for
/// `$[`). Where a quote, a command substitution or a line break comes first, only past the
/// opening: the scan reads on as before, and a shift it takes for a here-document leaves one
/// that never ends, which cannot be read.
pub(super) fn expansion_end(code: &[u8], from: usize, open: u8) -> usize {
    let close = if open == b'[' { b']' } else { b'}' };
    let mut depth = 0usize;
    for (i, &b) in code.iter().enumerate().skip(from) {
        match b {
            b'\n' | b'\'' | b'"' | b'`' | b'\\' => return from,
            b'(' if code[i - 1] == b'$' => return from,
            _ if b == open && open == b'[' => depth += 1,
            _ if b == close && depth == 0 => return i + 1,
            _ if b == close => depth -= 1,
            _ => {}
        }
    }
    from
}

/// Whether the word at `at` is where a command starts: the first of the file or of its line,
/// or after `;`, `&`, `|` or `(`. Assignments are read there.
pub(super) fn command_starts(code: &[u8], at: usize) -> bool {
    let before = code[..at]
        .iter()
        .rev()
        .find(|&&b| !matches!(b, b' ' | b'\t'));
    if at > 0
        && !matches!(
            code[at - 1],
            b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'('
        )
    {
        return false;
    }
    matches!(before, None | Some(b'\n' | b';' | b'&' | b'|' | b'('))
}

/// Past the subscript of an array assignment (`a[1<<2]=5`, `a[i]+=1`) at `at`, where bash reads
/// the brackets as arithmetic; `None` when the word is not one (`echo a[1<<2]` starts a
/// here-document).
pub(super) fn subscript_end(code: &[u8], at: usize) -> Option<usize> {
    let name = code[at..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    if code.get(at + name) != Some(&b'[') {
        return None;
    }
    let end = expansion_end(code, at + name + 1, b'[');
    let closed = end > at + name + 1;
    let assigned = code[end..].starts_with(b"=") || code[end..].starts_with(b"+=");
    (closed && assigned).then_some(end)
}

/// Whether a `#` at `at` starts a comment: it starts a word.
pub(super) fn starts_word(code: &[u8], at: usize) -> bool {
    at == 0 || matches!(code[at - 1], b' ' | b'\t' | b'\n') || OPERATORS.contains(&code[at - 1])
}

/// The delimiter the shell reads from `start` (quotes and escapes removed), and where it ends:
/// at a blank or an operator outside quotes.
pub(super) fn shell_word(code: &[u8], start: usize) -> (Vec<u8>, usize) {
    let (mut word, mut i) = (Vec::new(), start);
    while let Some(&b) = code.get(i) {
        match b {
            // Not at `\r`: bash reads a CRLF script's delimiter as `EOF\r`, and its end line too.
            b' ' | b'\t' | b'\n' => break,
            _ if OPERATORS.contains(&b) => break,
            b'\\' => {
                word.extend(code.get(i + 1));
                i += 2;
            }
            b'\'' | b'"' => {
                let end = quoted_end(code, i, b, b == b'"');
                let inner_end = if code.get(end - 1) == Some(&b) && end - 1 > i {
                    end - 1
                } else {
                    end
                };
                word.extend_from_slice(&code[i + 1..inner_end]);
                i = end;
            }
            _ => {
                word.push(b);
                i += 1;
            }
        }
    }
    (word, i.min(code.len()))
}

/// Where tree-sitter-bash's scanner ends the delimiter that starts at `start`: at the closing
/// quote of a quoted one, else at the next blank (its `advance_word`).
pub(super) fn scanner_word_end(code: &[u8], start: usize) -> usize {
    if let Some(&quote @ (b'\'' | b'"')) = code.get(start) {
        let close = code[start + 1..]
            .iter()
            .position(|&b| b == quote || b == b'\r' || b == b'\n');
        return close.map_or(code.len(), |p| start + 1 + p + 1);
    }
    let mut i = start;
    while i < code.len() && !code[i].is_ascii_whitespace() && code[i] != 0x0b {
        i += if code[i] == b'\\' { 2 } else { 1 };
    }
    i.min(code.len())
}

/// Whether a command follows a separator that ends at `from`: not the end of the line, a
/// comment, a closing bracket or a word that closes a construct.
pub(super) fn command_follows(code: &[u8], from: usize) -> bool {
    match &code[next_word(code, from)] {
        [] | [b'\n' | b'\r' | b'#' | b')' | b'}' | b';' | b'&' | b'|', ..] => false,
        word => !CLOSING_WORDS.contains(&word),
    }
}

/// Whether the line closes a construct after the here-document whose delimiter ends at `from`
/// (`{ cat <<EOF >&2; exit 1; }`, `do cat <<EOF; done`, `(cat <<EOF)`, `cat <<EOF;;`), not
/// one it opens after it (`cat <<EOF | while read l; do :; done`). The grammar reads a body
/// only where the line ends after the here-document's command and what it joins through `|`,
/// `&&` and `||`; elsewhere it recovers in ways that read the body as commands, and a quote
/// in it (`it's`) as a string that hides the lines after.
pub(super) fn closes_after(code: &[u8], mut from: usize) -> bool {
    let mut open = 0usize;
    loop {
        let mut word = next_word(code, from);
        match &code[word.clone()] {
            b"}" | b")" => return true,
            b"if" | b"while" | b"until" | b"for" | b"case" | b"select" => open += 1,
            b"then" | b"do" | b"else" | b"elif" | b"fi" | b"done" | b"esac" if open == 0 => {
                return true
            }
            b"fi" | b"done" | b"esac" => open -= 1,
            b"then" | b"do" | b"else" | b"elif" => {}
            _ => word.end = word.start,
        }
        // A command may follow a keyword on the line (`do echo`).
        from = word.end;
        let (end, separator) = command_end(code, from);
        match code.get(end) {
            // A case item's pattern, or its end.
            Some(b')') if separator == 0 && open > 0 => from = end + 1,
            Some(b';') if separator == 0 && open > 0 => from = end + 2,
            Some(b')' | b'}' | b';') if separator == 0 => return true,
            _ if separator == 0 => return false,
            _ => from = end + separator,
        }
    }
}

/// Where the word, or the operator's first byte, that starts after the blanks at `from` is.
pub(super) fn next_word(code: &[u8], from: usize) -> Range<usize> {
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let start = (from
        + code[from.min(code.len())..]
            .iter()
            .take_while(|b| blank(b))
            .count())
    .min(code.len());
    let len = code[start..]
        .iter()
        .take_while(|b| !b.is_ascii_whitespace() && !OPERATORS.contains(b))
        .count();
    start..(start + len.max(1)).min(code.len())
}
