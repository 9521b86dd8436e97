//! PHP's double-quoted strings and heredocs as PHP reads them: `\x73`, `\163` and `\u{73}` are
//! `s` there (a hunt called `"\x73ystem"("id")` and `$f = "sh\x65ll_exec"; $f("id")`, graded
//! `none`). Only the tree tells a double-quoted string from a single-quoted one or a nowdoc,
//! where a backslash is itself, so the escapes are found on the tree and the text is parsed
//! again (`reading.rs`, [`super::parsed`]). Runs in the analysing process, between parses.
//!
//! An escape is translated when it stands for an ASCII letter, digit or `_`, a name's
//! character: anything else (a quote, `$`, `{`, a line break) would change how the string
//! parses. Each translation removes a backslash, so the readings end.

use tree_sitter::Tree;

use super::leaves::Leaves;
use super::lengthens_escape;
use crate::deadline::Deadline;

/// The text to parse again, when a double-quoted string or a heredoc of `code`'s tree holds an
/// escape of a name's character.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !code.contains(&b'\\') {
        return None;
    }
    let mut read = Vec::with_capacity(code.len());
    let (mut copied, mut translated) = (0, false);
    for leaf in Leaves::of(tree, deadline) {
        let in_string = leaf
            .parent()
            .is_some_and(|p| matches!(p.kind(), "encapsed_string" | "heredoc_body"));
        if leaf.kind() != "escape_sequence" || !in_string {
            continue;
        }
        let (start, end) = (leaf.start_byte(), leaf.end_byte());
        let Some(c) = name_character(&code[start..end]) else {
            continue;
        };
        read.extend_from_slice(&code[copied..start]);
        if lengthens_escape(&read, c) {
            read.extend_from_slice(&code[start..end]);
        } else {
            read.push(c);
            translated = true;
        }
        copied = end;
    }
    read.extend_from_slice(&code[copied..]);
    translated.then_some(read)
}

/// The character `escape` stands for, when it is a name's: `\xH` or `\xHH`, an octal `\N` to
/// `\NNN` (PHP keeps the low byte of a larger one, `\563` is `s`, with a warning), `\u{H…}`.
fn name_character(escape: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(escape.strip_prefix(b"\\")?).ok()?;
    let value = if let Some(hex) = text.strip_prefix('x') {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Some(braced) = text.strip_prefix("u{") {
        u32::from_str_radix(braced.strip_suffix('}')?, 16).ok()?
    } else if text.bytes().all(|b| (b'0'..=b'7').contains(&b)) && !text.is_empty() {
        u32::from_str_radix(text, 8).ok()? & 0xff
    } else {
        return None;
    };
    u8::try_from(value)
        .ok()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use crate::Grammar;
    use std::time::Duration;

    /// `code` as PHP reads it: re-read and parsed again until nothing changes.
    fn php_reads(code: &str) -> String {
        let deadline = Deadline::after(Duration::from_secs(60));
        let language = Grammar::Php.language();
        let mut code = code.as_bytes().to_vec();
        loop {
            let tree = parse(&language, &code, deadline).expect("parsed");
            match reread(&tree, &code, deadline) {
                Some(read) => code = read,
                None => return String::from_utf8(code).expect("utf-8"),
            }
        }
    }

    #[test]
    fn escapes_of_name_characters_are_read_in_double_quotes_and_heredocs() {
        assert_eq!(
            php_reads(r#"<?php "\x73ystem"("id"); $f = "sh\145ll_\u{65}xec";"#),
            r#"<?php "system"("id"); $f = "shell_exec";"#
        );
        assert_eq!(php_reads(r#"<?php "\563y\x5Fx";"#), r#"<?php "sy_x";"#);
        assert_eq!(
            php_reads("<?php $s = <<<EOT\n\\x73y{$a}\nEOT;\n"),
            "<?php $s = <<<EOT\nsy{$a}\nEOT;\n"
        );
    }

    #[test]
    fn other_escapes_and_other_strings_stay_as_they_are() {
        for code in [
            // Single quotes and nowdocs keep their backslashes.
            "<?php '\\x73ystem'; $h = <<<'E'\n\\x41\nE;\n",
            // Escapes of other characters: a quote, `$`, a line break, a byte 1.
            r#"<?php "\x22 \x24a \n \x0a \1 \u{1F600}";"#,
            // An escape after an escaped backslash is read: here, there is none.
            r#"<?php "\\x73";"#,
        ] {
            assert_eq!(php_reads(code), code);
        }
        // A digit written after an escape left as it was would lengthen it.
        assert_eq!(
            php_reads(r#"<?php "\1\x32 \x4\x31""#),
            r#"<?php "\1\x32 \x4\x31""#
        );
        assert_eq!(php_reads(r#"<?php "\\\x73""#), r#"<?php "\\s""#);
    }
}
