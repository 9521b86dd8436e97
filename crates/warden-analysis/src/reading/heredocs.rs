//! The line of a bash here-document (`cat <<EOF; eval "$c"`) as the shell reads it.
//! tree-sitter-bash's scanner reads the delimiter up to the next blank, so `<<EOF;` has the
//! delimiter `EOF;`, no line ends the body, and every later line of the file was text to the
//! rules. Its grammar then takes one statement after the delimiter, through `|`, `|&`, `&&` or
//! `||`: what follows a `;` or a lone `&` was arguments. The shell ends the word at the
//! operator and runs every command of the line.
//!
//! Two byte-for-byte changes make the grammar read the commands, offsets unchanged: a blank
//! next to the operator moves between it and the delimiter (`cat <<EOF; x` is read as
//! `cat<<EOF ; x`), and each `;` or lone `&` of the rest of the line that a command follows
//! becomes `|` (`cat<<EOF | x`): the commands are read, joined as a pipeline they are not.
//! A delimiter joined to its operator with no blank either side (`cat<<EOF;x`) leaves no room,
//! and the grammar reads the bodies of two here-documents started on one line (`cat <<A; cat
//! <<B`) wrong: such a program cannot be read. Nor can one whose here-document never ends, or
//! has a delimiter split over lines, or whose here-document's command is redirected before a
//! command that follows (`cat <<EOF >out; id`: the grammar drops `id`). A `<<` in arithmetic
//! (`$(( ))`, `$[ ]`, `${ }`, an array assignment's subscript) is a shift.

use std::borrow::Cow;

/// Bytes that end a shell word, besides blanks.
const OPERATORS: &[u8] = b";&|<>()";
/// Words after which a separator ends a construct rather than starting a command.
const CLOSING_WORDS: [&[u8]; 8] = [
    b"done", b"fi", b"esac", b"then", b"do", b"else", b"elif", b"}",
];

/// `code` with the lines that start here-documents read as the shell reads them, or why one
/// cannot be.
pub(crate) fn as_read(code: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    if !code.windows(2).any(|w| w == b"<<") {
        return Ok(Cow::Borrowed(code));
    }
    let mut scan = Scan {
        code,
        read: code.to_vec(),
        pending: Vec::new(),
    };
    scan.run()?;
    Ok(if scan.read == code {
        Cow::Borrowed(code)
    } else {
        Cow::Owned(scan.read)
    })
}

struct Scan<'a> {
    code: &'a [u8],
    read: Vec<u8>,
    /// The here-documents started on the current line: their delimiters, and whether their
    /// lines may start with tabs (`<<-`).
    pending: Vec<(Vec<u8>, bool)>,
}

impl Scan<'_> {
    /// Walks the program as the shell tokenizes it, well enough to find here-documents:
    /// quotes, escapes, comments, arithmetic (where `<<` is a shift) and the bodies.
    fn run(&mut self) -> Result<(), String> {
        let code = self.code;
        let (mut i, mut arithmetic) = (0, 0usize);
        while i < code.len() {
            match code[i] {
                b'\\' => i += 2,
                b'$' if code[i..].starts_with(b"$[") => i = expansion_end(code, i + 2, b'['),
                b'$' if code[i..].starts_with(b"${") => i = expansion_end(code, i + 2, b'{'),
                b'a'..=b'z' | b'A'..=b'Z' | b'_' if command_starts(code, i) => {
                    i = subscript_end(code, i).unwrap_or(i + 1);
                }
                b'\'' if i > 0 && code[i - 1] == b'$' => i = quoted_end(code, i, b'\'', true),
                b'\'' => i = quoted_end(code, i, b'\'', false),
                b'"' => i = quoted_end(code, i, b'"', true),
                b'#' if starts_word(code, i) => i = line_end(code, i),
                b'\n' => i = self.skip_bodies(i + 1)?,
                b'(' if arithmetic > 0 => (arithmetic, i) = (arithmetic + 1, i + 1),
                b'(' if code[i..].starts_with(b"((") => (arithmetic, i) = (2, i + 2),
                b')' if arithmetic > 0 => (arithmetic, i) = (arithmetic - 1, i + 1),
                b'<' if code[i..].starts_with(b"<<<") => i += 3,
                b'<' if arithmetic == 0 && code[i..].starts_with(b"<<") => {
                    i = self.here_document(i)?;
                }
                _ => i += 1,
            }
        }
        match self.pending.first() {
            Some(_) => Err(unended(code, code.len())),
            None => Ok(()),
        }
    }

    /// Reads the here-document whose `<<` is at `at`; where to go on scanning.
    fn here_document(&mut self, at: usize) -> Result<usize, String> {
        let code = self.code;
        let mut start = at + 2;
        let strip_tabs = code.get(start) == Some(&b'-');
        start += usize::from(strip_tabs);
        while matches!(code.get(start), Some(b' ' | b'\t')) {
            start += 1;
        }
        let (delimiter, end) = shell_word(code, start);
        if delimiter.is_empty() {
            return Ok(start.max(at + 2));
        }
        if code[start..end].contains(&b'\n') {
            // `<<E\` then `OF`: bash removes the line continuation (the delimiter is `EOF`),
            // tree-sitter-bash's scanner does not.
            return Err(format!(
                "line {}: a here-document's delimiter goes on over a line break, which the bash \
                 grammar cannot read",
                line_of(code, at)
            ));
        }
        if !self.pending.is_empty() {
            // The grammar reads the first body as the second's, or the second as commands.
            return Err(format!(
                "line {}: more than one here-document starts on the line, which the bash \
                 grammar cannot read",
                line_of(code, at)
            ));
        }
        self.pending.push((delimiter, strip_tabs));
        let moved = if scanner_word_end(code, start) > end {
            self.make_room(at, end)?
        } else {
            0
        };
        self.separators(end, moved)?;
        Ok(end)
    }

    /// Moves a blank between the delimiter, which ends at `end`, and the operator there; how
    /// many bytes of the operator moved one to the right.
    fn make_room(&mut self, at: usize, end: usize) -> Result<usize, String> {
        let code = self.code;
        // Not before a descriptor (`cat 2<<EOF`): the digits would join the word before.
        if at > 0 && matches!(code[at - 1], b' ' | b'\t') {
            self.read[at - 1..end - 1].copy_from_slice(&code[at..end]);
            self.read[end - 1] = b' ';
            return Ok(0);
        }
        let operator = code[end..]
            .iter()
            .take_while(|b| OPERATORS.contains(b))
            .count();
        if matches!(code.get(end + operator), Some(b' ' | b'\t')) {
            self.read[end + 1..=end + operator].copy_from_slice(&code[end..end + operator]);
            self.read[end] = b' ';
            return Ok(operator);
        }
        let line = line_of(code, at);
        Err(format!(
            "line {line}: a here-document's delimiter is joined to the operator after it with no \
             blank on either side, which the bash grammar cannot read"
        ))
    }

    /// Each `;` or lone `&` between `from` and the end of the line that a command follows
    /// becomes `|`, outside quotes and brackets; the first `moved` bytes were moved one to the
    /// right. After a redirection of the here-document's command (`cat <<EOF >out; id`,
    /// `2>&1 | id`) tree-sitter-bash does not read the command after a `|`, written or made:
    /// such a line cannot be read.
    fn separators(&mut self, from: usize, moved: usize) -> Result<(), String> {
        let code = self.code;
        let (mut i, mut depth) = (from, 0usize);
        // Only a redirection of the here-document's own command, before the first separator,
        // makes the grammar drop what follows (`cat <<EOF; a >x; id` it reads).
        let (mut first, mut redirected) = (true, false);
        let lost = || {
            Err(format!(
                "line {}: a command follows a redirection on a here-document's line, which the \
                 bash grammar cannot read",
                line_of(code, from)
            ))
        };
        while i < code.len() && code[i] != b'\n' {
            let next = code.get(i + 1).copied();
            let previous = code[i - 1];
            match code[i] {
                b'\\' => i += 1,
                b'\'' => i = quoted_end(code, i, b'\'', previous == b'$') - 1,
                b'"' => i = quoted_end(code, i, b'"', true) - 1,
                b'`' => i = quoted_end(code, i, b'`', true) - 1,
                b'(' | b'{' => depth += 1,
                b')' | b'}' if depth == 0 => return Ok(()),
                b')' | b'}' => depth -= 1,
                b'#' if starts_word(code, i) => return Ok(()),
                b'<' if next == Some(b'<') => return Ok(()),
                b';' if next == Some(b';') => return Ok(()),
                b'<' | b'>' => redirected = first,
                b'&' if next == Some(b'>') => redirected = first,
                b'&' if next == Some(b'&') => (i, first, redirected) = (i + 1, false, false),
                b'&' if matches!(previous, b'<' | b'>' | b'|') => i += 1,
                b'|' if next == Some(b'|') => (i, first, redirected) = (i + 1, false, false),
                b'|' if previous == b'>' => {}
                b'|' if redirected && depth == 0 => return lost(),
                b'|' if depth == 0 => first = false,
                b';' | b'&' if depth == 0 && command_follows(code, i + 1) => {
                    if redirected {
                        return lost();
                    }
                    first = false;
                    self.read[i + usize::from(i < from + moved)] = b'|';
                }
                _ => {}
            }
            i += 1;
        }
        Ok(())
    }

    /// Past the bodies of the here-documents started on the line before `from`. One whose
    /// delimiter never comes cannot be read: bash reads to the end of the file (with a
    /// warning), but the scan may have taken for a here-document what bash does not, and the
    /// grammar would read the rest of the file as its text.
    fn skip_bodies(&mut self, mut from: usize) -> Result<usize, String> {
        let code = self.code;
        let start = from;
        for (delimiter, strip_tabs) in std::mem::take(&mut self.pending) {
            loop {
                if from >= code.len() {
                    return Err(unended(code, start));
                }
                let end = line_end(code, from);
                let mut line = &code[from..end];
                if strip_tabs {
                    line = &line[line.iter().take_while(|&&b| b == b'\t').count()..];
                }
                from = (end + 1).min(code.len());
                if line == delimiter.as_slice() {
                    break;
                }
            }
        }
        Ok(from)
    }
}

/// The index after the quote that closes the one at `at` (escapes count with `escapes`).
fn quoted_end(code: &[u8], at: usize, quote: u8, escapes: bool) -> usize {
    let mut i = at + 1;
    while i < code.len() && code[i] != quote {
        i += if escapes && code[i] == b'\\' { 2 } else { 1 };
    }
    (i + 1).min(code.len())
}

fn unended(code: &[u8], at: usize) -> String {
    format!(
        "line {}: a here-document's delimiter never comes before the end of the file, so the \
         analysis cannot tell where its text ends",
        line_of(code, at.saturating_sub(1))
    )
}

/// Past a `$[ … ]` or `${ … }` whose text starts at `from` (after the opening bracket), where
/// `<<` is a shift or text: at its closing bracket on the same line (nested `[ ]` counted for
/// `$[`). Where a quote, a command substitution or a line break comes first, only past the
/// opening: the scan reads on as before, and a shift it takes for a here-document leaves one
/// that never ends, which cannot be read.
fn expansion_end(code: &[u8], from: usize, open: u8) -> usize {
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
fn command_starts(code: &[u8], at: usize) -> bool {
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
fn subscript_end(code: &[u8], at: usize) -> Option<usize> {
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

fn line_of(code: &[u8], at: usize) -> usize {
    code[..at].iter().filter(|&&b| b == b'\n').count() + 1
}

fn line_end(code: &[u8], from: usize) -> usize {
    code[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(code.len(), |p| from + p)
}

/// Whether a `#` at `at` starts a comment: it starts a word.
fn starts_word(code: &[u8], at: usize) -> bool {
    at == 0 || matches!(code[at - 1], b' ' | b'\t' | b'\n') || OPERATORS.contains(&code[at - 1])
}

/// The delimiter the shell reads from `start` (quotes and escapes removed), and where it ends:
/// at a blank or an operator outside quotes.
fn shell_word(code: &[u8], start: usize) -> (Vec<u8>, usize) {
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
fn scanner_word_end(code: &[u8], start: usize) -> usize {
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
fn command_follows(code: &[u8], from: usize) -> bool {
    let start = from
        + code[from..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
    let word_end = start
        + code[start..]
            .iter()
            .take_while(|b| !b.is_ascii_whitespace() && !OPERATORS.contains(b))
            .count();
    match code.get(start) {
        None | Some(b'\n' | b'\r' | b'#' | b')' | b'}' | b';' | b'&' | b'|') => false,
        _ => !CLOSING_WORDS.contains(&&code[start..word_end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(code: &str) -> String {
        match as_read(code.as_bytes()) {
            Ok(read) => String::from_utf8(read.into_owned()).expect("utf-8"),
            Err(why) => why,
        }
    }

    #[test]
    fn a_here_documents_line_is_read_as_the_shell_reads_it() {
        assert_eq!(read("cat <<EOF; id\nx\nEOF\n"), "cat<<EOF | id\nx\nEOF\n");
        assert_eq!(read("cat<<EOF; id\nx\nEOF\n"), "cat<<EOF |id\nx\nEOF\n");
        assert_eq!(read("cat <<EOF>out\nEOF\n"), "cat<<EOF >out\nEOF\n");
        assert!(read("cat 2<<EOF>out\n").contains("no blank"));
        assert_eq!(
            read("cat <<'E F'& id; ls\nE F\n"),
            "cat <<'E F'| id| ls\nE F\n"
        );
        assert_eq!(
            read("cat <<EOF && id; ls &\nEOF\n"),
            "cat <<EOF && id| ls &\nEOF\n"
        );
        assert_eq!(
            read("cat <<EOF | id \"a;b\" 'c&d' $(e; f)\nEOF\n"),
            "cat <<EOF | id \"a;b\" 'c&d' $(e; f)\nEOF\n"
        );
        assert!(read("cat<<EOF;id\n").contains("no blank"));
        assert!(read("cat <<EOF >out; id\nEOF\n").contains("redirection"));
        assert!(read("cat <<EOF 2>&1 | id\nEOF\n").contains("redirection"));
        assert_eq!(
            read("cat <<EOF; a >x; id\nEOF\n"),
            "cat<<EOF | a >x| id\nEOF\n"
        );
        assert_eq!(
            read("cat <<EOF >out && id\nEOF\n"),
            "cat <<EOF >out && id\nEOF\n"
        );
        assert!(read("cat <<A; cat <<B\na\nA\nb\nB\n").contains("more than one"));
        // A here-document that never ends cannot be read, wherever bash would read it.
        assert!(read("cat <<E\\\nOF\nx\nEOF\n").contains("line break"));
        assert!(read("cat <<'E\nF'\nx\nE\nF\n").contains("line break"));
        assert!(read("cat <<EOF\nx\n").contains("never comes"));
        assert!(read("cat <<EOF\nx\nEOF \n").contains("never comes"));
        assert!(read("echo a[1<<2]=5\n").contains("never comes"));
        assert!(read("x=1 a[1<<2]=5\n").contains("never comes"));
        // A body is text, a shift is arithmetic, a here-string is neither.
        let unchanged = [
            "cat <<EOF\na; b & c <<X;\nEOF\n",
            "echo $((1<<2)); x=1\n",
            "echo $[1<<2] ${x[1<<0]} ${v:1<<0:3} ${x:-a<<b}\n",
            "a[1<<2]=5; (b[1 << 2]+=1)\n",
            "cat <<EOF\r\nx\r\nEOF\r\n",
            "cat <<<\"$x\"; id\n",
            "cat <<EOF # a; b\nEOF\n",
        ];
        for code in unchanged {
            assert_eq!(read(code), code);
        }
    }
}
