//! The line of a bash here-document (`cat <<EOF >log; eval "$c"`) as the shell reads it.
//! tree-sitter-bash's scanner reads the delimiter up to the next blank, so `<<EOF;` has the
//! delimiter `EOF;`, no line ends the body, and every later line of the file was text to the
//! rules. After the delimiter its grammar takes one statement through `|`, `|&`, `&&` or `||`;
//! after an argument or a redirection (`<<EOF >log`) it takes `&&` or `||` only, and reads
//! the words after a `|` as more of the redirection's file names: what follows was lost. The
//! shell ends the word at the operator, and runs every command of the line.
//!
//! Byte-for-byte changes on the line make the grammar read the commands, lines unchanged:
//! - the operator and delimiter move after the words of their command, where the grammar
//!   reads any separator (`cat <<EOF >log; id` is read as `cat >log <<EOF |id`);
//! - a blank next to an operator joined to the delimiter moves between the two (`cat <<EOF;`
//!   is read as `cat<<EOF ;`);
//! - each `;` or lone `&` of the rest of the line that a command follows becomes `|`: the
//!   commands are read, joined as a pipeline they are not;
//! - of several here-documents started on one line (`cat <<A <<B`), whose bodies follow one
//!   another, only the last stays and the others become blanks: the grammar reads their bodies
//!   as the start of the last one's, which is the same text when their quoting reads it the
//!   same way;
//! - on a line that closes a construct after the here-document (`do cat <<EOF; done`,
//!   `{ cat <<EOF >&2; exit 1; }`), where the grammar reads no body at all, the operators and
//!   the bodies become blanks, but for the bodies' parameter expansions and simple command
//!   substitutions (`bodies.rs`).
//!
//! What cannot be so read makes the program unreadable: an operator joined to the delimiter
//! with no blank to move (`cat<<EOF;id`), bodies of one line read differently (`<<A` holding
//! `$(id)` before `<<'B'`), a delimiter split over lines, a here-document that never ends, and
//! a line continuation in a body that makes or unmakes its end line (bash joins `EO\` and `F`
//! into `EOF`; the grammar does not). A `<<` in arithmetic (`$(( ))`, `$[ ]`, `${ }`, an array
//! assignment's subscript) is a shift.

mod bodies;
mod words;

use std::borrow::Cow;
use std::ops::Range;

use bodies::{blanked, body_end, unended};
use words::{
    closes_after, command_end, command_follows, command_starts, descriptor_start, expansion_end,
    quoted_end, scanner_word_end, shell_word, starts_word, subscript_end, trimmed, OPERATORS,
};

/// `code` with the lines that start here-documents read as the shell reads them, or why one
/// cannot be and where the line that starts it starts: the shell reads and runs the commands
/// before that line first.
pub(crate) fn as_read(code: &[u8]) -> Result<Cow<'_, [u8]>, (String, usize)> {
    if !code.windows(2).any(|w| w == b"<<") {
        return Ok(Cow::Borrowed(code));
    }
    let mut scan = Scan {
        code,
        read: code.to_vec(),
        started: Vec::new(),
        line_started: 0,
        blank_bodies: false,
        bodies_in_case: false,
    };
    if let Err(why) = scan.run() {
        let before = code[..scan.line_started]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        return Err((why, before));
    }
    Ok(if scan.read == code {
        Cow::Borrowed(code)
    } else {
        Cow::Owned(scan.read)
    })
}

/// A here-document started on the line being read.
struct Started {
    /// Its descriptor, operator and delimiter as written (`2<<-'EOF'`).
    written: Range<usize>,
    /// Where its delimiter starts.
    delimiter_start: usize,
    /// The delimiter as the shell reads it, quotes and escapes removed.
    delimiter: Vec<u8>,
    /// Whether tabs that start its lines are removed (`<<-`).
    strip_tabs: bool,
    /// Whether any of the delimiter is quoted: the body is then text, without expansions or
    /// line continuations.
    quoted: bool,
}

impl Started {
    /// Whether `line` ends the body, as both bash and the grammar compare it.
    fn ends_at(&self, line: &[u8]) -> bool {
        let tabs = if self.strip_tabs {
            line.iter().take_while(|&&b| b == b'\t').count()
        } else {
            0
        };
        line[tabs..] == *self.delimiter
    }
}

struct Scan<'a> {
    code: &'a [u8],
    read: Vec<u8>,
    /// The here-documents started on the current line, in order.
    started: Vec<Started>,
    /// Where the first of them starts.
    line_started: usize,
    /// Whether their bodies are read as blanks, the line closing a construct they are in.
    blank_bodies: bool,
    /// Whether that line ends a case item (`;;`): the blanked bodies stand where a pattern goes.
    bodies_in_case: bool,
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
                b'\n' if self.started.is_empty() => i += 1,
                b'\n' => {
                    self.arrange_line()?;
                    i = self.skip_bodies(i + 1)?;
                }
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
        match self.started.first() {
            Some(_) => Err(unended(code, code.len())),
            None => Ok(()),
        }
    }

    /// Notes the here-document whose `<<` is at `at`; where to go on scanning.
    fn here_document(&mut self, at: usize) -> Result<usize, String> {
        let code = self.code;
        if self.started.is_empty() {
            self.line_started = at;
        }
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
        self.started.push(Started {
            written: descriptor_start(code, at)..end,
            delimiter_start: start,
            delimiter,
            strip_tabs,
            quoted: code[start..end]
                .iter()
                .any(|b| matches!(b, b'\'' | b'"' | b'\\')),
        });
        Ok(end)
    }

    /// Rewrites the line that started here-documents, which ends before the first body: all
    /// but the last become blanks, and the last's command is arranged as the grammar reads it.
    fn arrange_line(&mut self) -> Result<(), String> {
        let Some((last, earlier)) = self.started.split_last() else {
            return Ok(());
        };
        for started in earlier {
            self.read[started.written.clone()].fill(b' ');
        }
        let (written, delimiter_start) = (last.written.clone(), last.delimiter_start);
        let code = self.code;
        if closes_after(code, written.end) {
            self.read[written.clone()].fill(b' ');
            self.blank_bodies = true;
            let line = code[written.end..line_end(code, written.end)].trim_ascii_end();
            self.bodies_in_case = [&b";;"[..], b";&"].iter().any(|end| line.ends_with(end));
            return Ok(());
        }
        let (end, separator) = command_end(code, written.end);
        let words = trimmed(code, written.end..end);
        let follows = match separator {
            0 => false,
            1 if code[end] != b'|' => command_follows(code, end + 1),
            _ => true,
        };
        let from = if words.is_empty() || !follows {
            if scanner_word_end(code, delimiter_start) > written.end {
                self.make_room(written.clone())?;
            }
            written.end
        } else {
            self.move_after(written, words, end..end + separator)?
        };
        self.separators(from);
        Ok(())
    }

    /// Moves a blank between the delimiter, which ends `written`, and the operator after it.
    fn make_room(&mut self, written: Range<usize>) -> Result<(), String> {
        let (code, Range { start, end }) = (self.code, written);
        // Not after a descriptor (`cat 2<<EOF`): the digits would join the word before.
        if start > 0 && matches!(code[start - 1], b' ' | b'\t') && code[start] == b'<' {
            self.read[start - 1..end - 1].copy_from_slice(&code[start..end]);
            self.read[end - 1] = b' ';
            return Ok(());
        }
        let operator = code[end..]
            .iter()
            .take_while(|b| OPERATORS.contains(b))
            .count();
        if matches!(code.get(end + operator), Some(b' ' | b'\t')) {
            self.read[end + 1..=end + operator].copy_from_slice(&code[end..end + operator]);
            self.read[end] = b' ';
            return Ok(());
        }
        Err(joined(code, start))
    }

    /// Moves the here-document `written` after the `words` that follow it in its command,
    /// before the `separator` that ends the command, with a blank either side (the blanks
    /// around the words, before the operator, after the separator); where the separator is,
    /// once moved.
    fn move_after(
        &mut self,
        written: Range<usize>,
        words: Range<usize>,
        separator: Range<usize>,
    ) -> Result<usize, String> {
        let code = self.code;
        let blank = |at: usize| matches!(code.get(at), Some(b' ' | b'\t'));
        // A word (not a redirection) must not join the word before the operator.
        let redirection = matches!(code[words.start], b'<' | b'>' | b'&');
        let movable_left = blank(written.start.wrapping_sub(1)) && redirection;
        let after_word = written.start > 0
            && !matches!(
                code[written.start - 1],
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'('
            );
        let spans = [
            (written.start, separator.start),
            (written.start, separator.end + 1),
            (written.start.saturating_sub(1), separator.end + 1),
        ];
        for (start, end) in spans {
            let after_separator = end > separator.start;
            if (start < written.start && !movable_left) || (after_separator && !blank(end - 1)) {
                continue;
            }
            let mut moved = if after_word && !redirection {
                vec![b' ']
            } else {
                Vec::new()
            };
            moved.extend_from_slice(&code[words.clone()]);
            moved.push(b' ');
            moved.extend_from_slice(&code[written.clone()]);
            moved.push(b' ');
            let at = start + moved.len() - 1;
            if after_separator {
                moved.extend_from_slice(&code[separator.clone()]);
            }
            if moved.len() <= end - start {
                moved.resize(end - start, b' ');
                self.read[start..end].copy_from_slice(&moved);
                return Ok(at);
            }
        }
        Err(joined(code, written.start))
    }

    /// Each `;` or lone `&` of the read line from `from` that a command follows becomes `|`,
    /// outside quotes and brackets.
    fn separators(&mut self, from: usize) {
        let (mut i, mut depth) = (from, 0usize);
        while i < self.read.len() && self.read[i] != b'\n' {
            let read = &self.read;
            let next = read.get(i + 1).copied();
            match read[i] {
                b'\\' => i += 1,
                b'\'' => i = quoted_end(read, i, b'\'', read[i - 1] == b'$') - 1,
                b'"' => i = quoted_end(read, i, b'"', true) - 1,
                b'`' => i = quoted_end(read, i, b'`', true) - 1,
                b'(' | b'{' => depth += 1,
                b')' | b'}' if depth == 0 => return,
                b')' | b'}' => depth -= 1,
                b'#' if starts_word(read, i) => return,
                b';' if matches!(next, Some(b';' | b'&')) => return,
                b'&' | b'|' if next == Some(read[i]) => i += 1,
                b'|' | b'<' | b'>' if next == Some(b'&') => i += 1,
                b'&' | b'>' if next == Some(b'>') => i += 1,
                b';' | b'&' if depth == 0 && command_follows(read, i + 1) => self.read[i] = b'|',
                _ => {}
            }
            i += 1;
        }
    }

    /// Past the bodies of the here-documents started on the line before `from`, read as bash
    /// reads them. One whose delimiter never comes cannot be read: bash reads to the end of
    /// the file (with a warning), but the scan may have taken for a here-document what bash
    /// does not, and the grammar would read the rest of the file as its text.
    fn skip_bodies(&mut self, from: usize) -> Result<usize, String> {
        let started = std::mem::take(&mut self.started);
        let blank = std::mem::take(&mut self.blank_bodies);
        let in_case = std::mem::take(&mut self.bodies_in_case);
        let Some(last) = started.last() else {
            return Ok(from);
        };
        let mut at = from;
        for body in &started {
            let merged = !blank && !std::ptr::eq(body, last);
            let end = body_end(self.code, body, at, merged.then_some(last))?;
            if blank {
                let text = blanked(&self.code[at..end], body.quoted, in_case).ok_or_else(|| {
                    format!(
                        "line {}: a here-document in a construct its line closes (`; done`, \
                         `; }}`, `)`) holds a command substitution with quotes, parentheses, a \
                         comment or a here-document in it, or quotes in an expansion, which the \
                         bash grammar cannot read there",
                        line_of(self.code, from - 1)
                    )
                })?;
                self.read[at..end].copy_from_slice(&text);
            }
            at = end;
        }
        Ok(at)
    }
}

fn joined(code: &[u8], at: usize) -> String {
    format!(
        "line {}: a here-document's delimiter is joined to the operator after it with no \
         blank to move between them, which the bash grammar cannot read",
        line_of(code, at)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(code: &str) -> String {
        match as_read(code.as_bytes()) {
            Ok(read) => String::from_utf8(read.into_owned()).expect("utf-8"),
            Err((why, _)) => why,
        }
    }

    #[test]
    fn a_here_documents_line_is_read_as_the_shell_reads_it() {
        assert_eq!(read("cat <<EOF; id\nx\nEOF\n"), "cat<<EOF | id\nx\nEOF\n");
        assert_eq!(read("cat<<EOF; id\nx\nEOF\n"), "cat<<EOF |id\nx\nEOF\n");
        assert_eq!(read("cat <<EOF>out\nEOF\n"), "cat<<EOF >out\nEOF\n");
        assert!(read("cat 2<<EOF>out\nEOF\n").contains("no blank"));
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
        assert_eq!(
            read("cat <<EOF; a >x; id\nEOF\n"),
            "cat<<EOF | a >x| id\nEOF\n"
        );
        assert_eq!(
            read("cat <<EOF; echo $((1<<2)); id\nEOF\n"),
            "cat<<EOF | echo $((1<<2))| id\nEOF\n"
        );
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
            "cat >out <<EOF | id\nEOF\n",
            "cat <<EOF | while read l; do :; done\n$(date)\nEOF\n",
            "cat <<EOF\ndocker run \\\n  --rm x\nEOF\n",
            "cat <<EOF\nx\\\\\nEOF\n",
            "cat <<'EOF'\nEO\\\nF\nEOF\n",
        ];
        for code in unchanged {
            assert_eq!(read(code), code);
        }
    }

    /// Regression (a hunt after reg2 F4): words after the delimiter were followed by a
    /// command the grammar dropped, so such a line was graded unreadable, ordinary scripts
    /// with it (`cat <<EOF >>log; echo ok`) too.
    #[test]
    fn the_words_after_a_delimiter_move_before_it() {
        let moved = [
            ("cat <<EOF >out; id\nEOF\n", "cat >out <<EOF |id\nEOF\n"),
            ("cat <<EOF >out ; id\nEOF\n", "cat >out <<EOF | id\nEOF\n"),
            ("cat <<EOF>out; id\nEOF\n", "cat>out <<EOF |id\nEOF\n"),
            ("cat <<EOF 2>&1 | id\nEOF\n", "cat 2>&1 <<EOF | id\nEOF\n"),
            (
                "cat 3<<EOF >out && id\nEOF\n",
                "cat >out 3<<EOF && id\nEOF\n",
            ),
            ("cat <<EOF >out || id\nEOF\n", "cat >out <<EOF || id\nEOF\n"),
            (
                "cat <<EOF a b | id; x\nEOF\n",
                "cat a b <<EOF | id| x\nEOF\n",
            ),
            ("cat<<EOF a | id\nEOF\n", "cat a <<EOF |id\nEOF\n"),
            (
                "cat <<-EOF >out ; true; id\n\thi\n\tEOF\n",
                "cat >out <<-EOF | true| id\n\thi\n\tEOF\n",
            ),
        ];
        for (code, read_so) in moved {
            assert_eq!(read(code), read_so, "{code:?}");
        }
        for joined in ["cat <<EOF>out;id\nEOF\n", "cat <<EOF 2>&1|id\nEOF\n"] {
            assert!(read(joined).contains("no blank"), "{joined:?}");
        }
    }

    #[test]
    fn here_documents_started_on_one_line_are_read_as_the_last_one() {
        assert_eq!(
            read("cat <<A <<B\na\nA\nb\nB\n"),
            "cat     <<B\na\nA\nb\nB\n"
        );
        assert_eq!(
            read("cat <<A; cat <<'B' | id\na\nA\n$b\nB\n"),
            "cat    ; cat <<'B' | id\na\nA\n$b\nB\n"
        );
        // The last one's end in an earlier body, or text the two read differently.
        for code in [
            "cat <<A <<B\na\nB\nA\nb\nB\n",
            "cat <<A <<'B'\n$(id)\nA\nb\nB\n",
            "cat <<'A' <<B\n`id`\nA\nb\nB\n",
        ] {
            assert!(read(code).contains("as one"), "{code:?}");
        }
    }

    /// Regression (found with this fix): bash joins `EO\` and `F` in a body whose delimiter is
    /// not quoted, and ends it there; the grammar read on to the next `EOF`, the commands
    /// between as its text. A continuation before `EOF` hid its end likewise.
    #[test]
    fn a_line_continuation_that_makes_or_hides_the_end_cannot_be_read() {
        for code in [
            "cat <<EOF\nEO\\\nF\nid\nEOF\n",
            "cat <<-EOF\n\tE\\\nOF\nid\nEOF\n",
            "cat <<EOF\nx\\\nEOF\nid\nEOF\n",
        ] {
            assert!(read(code).contains("continuation"), "{code:?}");
        }
    }

    /// Regression (found with this fix): a line that closes a construct after the
    /// here-document (`do cat <<EOF; done`) made the grammar read its body as commands, and
    /// `it's` in it as a string that hid the lines after.
    #[test]
    fn a_body_on_a_line_that_closes_a_construct_is_read_as_blanks() {
        assert_eq!(
            read("for f in a; do cat <<EOF; done\nit's $f\nEOF\nid\n"),
            "for f in a; do cat      ; done\n: $f   \n   \nid\n"
        );
        assert_eq!(
            read("{ cat <<'EOF' >&2; exit 1; }\nit's $f\nEOF\n"),
            "{ cat         >&2; exit 1; }\n       \n   \n"
        );
        for code in [
            "(cat <<EOF)\nx\nEOF\n",
            "case a in a) cat <<EOF;; esac\nx\nEOF\n",
            "if true; then cat <<EOF; fi\nx\nEOF\n",
            "x=$(cat <<EOF)\nx\nEOF\n",
        ] {
            assert!(
                read(code).contains("\n \n   \n"),
                "{code:?}: {}",
                read(code)
            );
        }
        assert_eq!(
            read("{ cat <<EOF; }\nat $(date)\nEOF\n"),
            "{ cat      ; }\n: $(date) \n   \n"
        );
        assert_eq!(
            read("case $1 in\n h) cat <<EOF;;\nToday is $(date)\nEOF\n *) :;;\nesac\n"),
            "case $1 in\n h) cat      ;;\n$(date)) ;;     \n   \n *) :;;\nesac\n"
        );
        assert!(read("{ cat <<EOF; }\n$(echo \"it's\")\nEOF\n").contains("command substitution"));
    }

    /// Every rewrite moves bytes within a line or blanks them: findings keep their lines.
    #[test]
    fn a_rewrite_keeps_the_length_and_the_lines() {
        let alphabet = b"<<<>;&|(){}'\"\\$` \n\n\t-EOFA02#=[]";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let lines = |c: &[u8]| c.iter().filter(|&&b| b == b'\n').count();
        for _ in 0..20_000 {
            let mut code = b"cat <<EOF ".to_vec();
            for _ in 0..next() % 50 {
                code.push(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            code.extend_from_slice(b"\nEOF\nA\n");
            if let Ok(read) = as_read(&code) {
                let text = String::from_utf8_lossy(&code);
                assert_eq!(read.len(), code.len(), "{text:?}");
                assert_eq!(lines(&read), lines(&code), "{text:?}");
            }
        }
    }
}
