//! Source-encoding cookies: a comment on a program's first or second line that names the
//! codec its interpreter decodes the file with (Python's PEP 263, Ruby's magic comment). A codec
//! that is not ASCII-transparent reads other code than the grammar's bytes: UTF-7 and Python's
//! escape codecs turn `+AAo-` or `\n` in a comment into a line break, and in Shift_JIS a lead
//! byte takes the `\` after it, so a `"` the grammar reads as escaped ends a Ruby string. The
//! analysis decodes none of them: a program that names one cannot be read.

use crate::Grammar;

/// The codecs a line names, `None` for one named in a form the analysis cannot read.
type NamesOnLine = fn(&[u8]) -> Vec<Option<String>>;

/// Why `code` cannot be read as its language reads it, if it names a source encoding the
/// analysis does not decode.
pub(crate) fn undecoded(grammar: Grammar, code: &[u8]) -> Option<String> {
    let (names, read): (NamesOnLine, fn(&str) -> bool) = match grammar {
        Grammar::Python => (
            |line| python_cookie(line).map(Some).into_iter().collect(),
            python_reads_as_is,
        ),
        Grammar::Ruby => (ruby_cookies, ruby_reads_as_is),
        _ => return None,
    };
    let code = code.strip_prefix(b"\xef\xbb\xbf").unwrap_or(code);
    if grammar == Grammar::Ruby {
        let first = split_line(code, false).0;
        if let Some(why) = ruby_shebang_encodings(first)
            .into_iter()
            .find_map(|name| match name {
                None => Some("its `#!` line's -K option".to_owned()),
                Some(name) if !ruby_reads_as_is(&name) => Some(format!("{name:?}")),
                Some(_) => None,
            })
        {
            return Some(format!(
                "line 1 names the source encoding {why} on its `#!` line, which the analysis \
                 does not decode"
            ));
        }
    }
    // CPython reads its source with universal newlines before it looks for the cookie, so a
    // lone `\r` ends line 1 there; Ruby ends a line only at `\n`.
    let lone_cr_ends = grammar == Grammar::Python;
    let (first, rest) = split_line(code, lone_cr_ends);
    // Line 2 counts after a line that is only a comment or blank (CPython's tokenizer; Ruby
    // after a `#!` line, which is a comment).
    let second = rest
        .filter(|_| comment_or_blank(first))
        .map(|rest| split_line(rest, lone_cr_ends).0);
    let line_numbers = 1..;
    line_numbers
        .zip([first].into_iter().chain(second))
        .find_map(|(number, line)| {
            names(line).into_iter().find_map(|name| match name {
                None => Some(format!(
                    "line {number} names a source encoding in a form the analysis cannot read"
                )),
                Some(name) if !read(&name) => Some(format!(
                    "line {number} names the source encoding {name:?}, which the analysis does \
                     not decode"
                )),
                Some(_) => None,
            })
        })
}

/// The first line of `code` without its line break, and the text after that break if there is
/// one: `\r\n` and `\n` end a line, and so does a lone `\r` when `lone_cr_ends`.
fn split_line(code: &[u8], lone_cr_ends: bool) -> (&[u8], Option<&[u8]>) {
    let Some(end) = code
        .iter()
        .position(|&b| b == b'\n' || (lone_cr_ends && b == b'\r'))
    else {
        return (code, None);
    };
    let next = if code[end..].starts_with(b"\r\n") {
        end + 2
    } else {
        end + 1
    };
    (&code[..end], Some(&code[next..]))
}

fn comment_or_blank(line: &[u8]) -> bool {
    let rest = line.trim_ascii_start();
    rest.is_empty() || rest[0] == b'#'
}

/// The comment that is alone on `line`, from its `#`.
fn comment(line: &[u8]) -> Option<&[u8]> {
    let start = line
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\x0c'))?;
    (line[start] == b'#').then(|| &line[start..])
}

/// The codec a line names to CPython (`get_coding_spec`): in a comment alone on its line, the
/// first `coding`, in lower case (CPython compares bytes, so `Coding=` and `CODING:` are
/// text), then `:` or `=`, blanks and a name of letters, digits, `-`, `_` and `.`.
fn python_cookie(line: &[u8]) -> Option<String> {
    let comment = comment(line)?;
    (0..comment.len()).find_map(|i| {
        let rest = comment[i..].strip_prefix(b"coding")?;
        let value = rest
            .strip_prefix(b":")
            .or_else(|| rest.strip_prefix(b"="))?;
        let value = &value[value
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count()..];
        let len = value
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            .count();
        (len > 0).then(|| String::from_utf8_lossy(&value[..len]).into_owned())
    })
}

/// Every codec a line may name to Ruby, `None` for a value the analysis cannot read: in a
/// comment alone on its line, each `coding` in any case, blanks, `:` or `=`, blanks and a value
/// (`set_file_encoding`; `parser_magic_comment` also reads `# coding : x`, the emacs form
/// `-*- encoding: x -*-` and a value in double quotes). Every reading is kept, the magic
/// comment's value (up to a blank, `;` or `"`) and the fallback's name (letters, digits, `-`
/// and `_`), so that none is missed.
fn ruby_cookies(line: &[u8]) -> Vec<Option<String>> {
    let Some(comment) = comment(line) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for i in 0..comment.len() {
        if !comment[i..]
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"coding"))
        {
            continue;
        }
        let rest = skip_ruby_spaces(&comment[i + 6..]);
        let Some(value) = rest.strip_prefix(b":").or_else(|| rest.strip_prefix(b"=")) else {
            continue;
        };
        let value = skip_ruby_spaces(value);
        if let Some(quoted) = value.strip_prefix(b"\"") {
            // Ruby keeps a backslash in the name, which then names no encoding it knows: the
            // analysis does not guess.
            let close = quoted.iter().position(|&b| b == b'"' || b == b'\\');
            names.push(
                close
                    .filter(|&end| quoted[end] == b'"' && end > 0)
                    .map(|end| String::from_utf8_lossy(&quoted[..end]).into_owned()),
            );
            continue;
        }
        let magic = value
            .iter()
            .take_while(|&&b| !(b == b'"' || b == b';' || b.is_ascii_whitespace()))
            .count();
        let fallback = value
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            .count();
        for len in [magic, fallback] {
            names.push((len > 0).then(|| String::from_utf8_lossy(&value[..len]).into_owned()));
        }
    }
    names
}

/// The encodings a Ruby `#!` line sets with Ruby's own switches, which Ruby obeys on its
/// script's first line when it holds `ruby` (`load_file_internal`, the switches after the
/// first ` -` past `ruby`): `-K<code>` sets the source encoding (`-Ks` Shift_JIS, as
/// Windows-31J, `-Ke` EUC-JP; `-Ku` UTF-8 and `-Kn`/`-Ka` binary are read as they are; any
/// other code, `None`), and `-E`/`--encoding` (with `:` between an external and an internal
/// one) are each checked too. A hunt hid a `require` inside what the grammar read as a string
/// with `#!/usr/bin/ruby -Ks` (a lead byte took the `\` before the closing quote), graded
/// `low`.
fn ruby_shebang_encodings(line: &[u8]) -> Vec<Option<String>> {
    let Some(line) = line.strip_prefix(b"#!") else {
        return Vec::new();
    };
    let line = String::from_utf8_lossy(line);
    let Some(at) = line.find("ruby") else {
        return Vec::new();
    };
    let Some(switches) = line[at..].find(" -").map(|i| &line[at + i + 1..]) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut words = switches.split_ascii_whitespace();
    let each_part = |names: &mut Vec<Option<String>>, value: &str| {
        names.extend(
            value
                .split(':')
                .filter(|part| !part.is_empty())
                .map(|part| Some(part.to_owned())),
        );
    };
    while let Some(word) = words.next() {
        if let Some(long) = word.strip_prefix("--") {
            let (option, value) = long.split_once('=').unwrap_or((long, ""));
            if matches!(
                option,
                "encoding" | "external-encoding" | "internal-encoding"
            ) {
                let value = if value.is_empty() {
                    words.next().unwrap_or("")
                } else {
                    value
                };
                each_part(&mut names, value);
            }
            continue;
        }
        let Some(cluster) = word.strip_prefix('-') else {
            continue;
        };
        // Single-letter switches in a cluster (`-wKs`), up to one that takes the rest of the
        // word as its argument (`-rlib`, `-I dir`).
        let mut letters = cluster.char_indices();
        while let Some((i, letter)) = letters.next() {
            match letter {
                'K' => {
                    let Some((_, code)) = letters.next() else {
                        break;
                    };
                    names.push(match code.to_ascii_lowercase() {
                        's' => Some("Windows-31J".to_owned()),
                        'e' => Some("EUC-JP".to_owned()),
                        'u' => Some("UTF-8".to_owned()),
                        'n' | 'a' => Some("ASCII-8BIT".to_owned()),
                        _ => None,
                    });
                }
                'E' => {
                    let value = &cluster[i + 1..];
                    let value = if value.is_empty() {
                        words.next().unwrap_or("")
                    } else {
                        value
                    };
                    each_part(&mut names, value);
                    break;
                }
                '0' | 'C' | 'F' | 'I' | 'T' | 'W' | 'e' | 'i' | 'r' | 'x' => break,
                _ => {}
            }
        }
    }
    names
}

/// `text` after the blanks Ruby's `ISSPACE` skips.
fn skip_ruby_spaces(text: &[u8]) -> &[u8] {
    let blanks = text
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .count();
    &text[blanks..]
}

/// Whether CPython decodes a source with this codec as UTF-8, ASCII or Latin-1, whose ASCII
/// bytes are themselves: `get_normal_name`'s spellings, else the codec registry's aliases
/// after `encodings.normalize_encoding`.
fn python_reads_as_is(name: &str) -> bool {
    let head: String = name
        .chars()
        .take(12)
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let normal = ["utf-8", "latin-1", "iso-8859-1", "iso-latin-1"];
    if normal
        .iter()
        .any(|n| head == *n || head.starts_with(&format!("{n}-")))
    {
        return true;
    }
    let mut normalized = String::new();
    for word in name.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
        if !word.is_empty() {
            if !normalized.is_empty() {
                normalized.push('_');
            }
            normalized.push_str(&word.to_ascii_lowercase());
        }
    }
    const AS_IS: [&str; 33] = [
        "utf_8",
        "u8",
        "utf",
        "utf8",
        "utf8_ucs2",
        "utf8_ucs4",
        "cp65001",
        "ascii",
        "646",
        "ansi_x3.4_1968",
        "ansi_x3_4_1968",
        "ansi_x3.4_1986",
        "cp367",
        "csascii",
        "ibm367",
        "iso646_us",
        "iso_646.irv_1991",
        "iso_ir_6",
        "us",
        "us_ascii",
        "latin_1",
        "8859",
        "cp819",
        "csisolatin1",
        "ibm819",
        "iso8859",
        "iso8859_1",
        "iso_8859_1",
        "iso_8859_1_1987",
        "iso_ir_100",
        "l1",
        "latin",
        "latin1",
    ];
    AS_IS.contains(&normalized.as_str()) || AS_IS.contains(&normalized.replace('.', "_").as_str())
}

/// Whether Ruby reads a source in this encoding as its bytes: UTF-8, US-ASCII, binary,
/// ISO-8859-1 or Windows-1252 under their names (Ruby refuses encodings that are not
/// ASCII-compatible, so only multi-byte ones such as Shift_JIS can hide anything).
fn ruby_reads_as_is(name: &str) -> bool {
    const AS_IS: [&str; 15] = [
        "utf-8",
        "cp65001",
        "utf8-mac",
        "utf-8-mac",
        "utf-8-hfs",
        "us-ascii",
        "ascii",
        "ansi_x3.4-1968",
        "646",
        "ascii-8bit",
        "binary",
        "iso-8859-1",
        "iso8859-1",
        "windows-1252",
        "cp1252",
    ];
    AS_IS.iter().any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_where_the_interpreters_look() {
        assert_eq!(
            python_cookie(b"# -*- coding: utf-7 -*-"),
            Some("utf-7".into())
        );
        assert_eq!(
            python_cookie(b"  # vim: set fileencoding=utf_7 :"),
            Some("utf_7".into())
        );
        assert_eq!(
            python_cookie(b"# Coding=utf-8, coding=utf-7"),
            Some("utf-7".into())
        );
        assert_eq!(python_cookie(b"# coding: \r"), None);
        assert_eq!(python_cookie(b"x = 1 # coding: utf-7"), None);
        let shift_jis = Some("Shift_JIS".to_string());
        assert_eq!(
            ruby_cookies(b"# encoding:\tShift_JIS"),
            [shift_jis.clone(), shift_jis.clone()]
        );
        assert_eq!(ruby_cookies(b"# coding : \"Shift_JIS\""), [shift_jis]);
        assert_eq!(ruby_cookies(b"# coding: \"Shift\\_JIS\""), [None]);
        assert_eq!(ruby_cookies(b"# coding: \r"), [None, None]);
        assert!(ruby_cookies(b"x = 1 # coding: utf-7").is_empty());
        let python = |code: &[u8]| undecoded(Grammar::Python, code);
        assert!(python(b"#!/usr/bin/python\n# coding: utf-7\n").is_some());
        assert!(python(b"import os\n# coding: utf-7\n").is_none());
        assert!(python(b"\n\n# coding: utf-7\n").is_none());
        assert!(python(b"\r# coding: utf-7\r").is_some());
        assert!(python(b"\r\n\r# coding: utf-7\r").is_none());
        assert!(undecoded(Grammar::Ruby, b"# encoding: Shift_JIS\n").is_some());
        assert!(undecoded(Grammar::Ruby, b"# encoding: UTF-8\n").is_none());
        assert!(undecoded(Grammar::Rust, b"// coding: utf-7\n").is_none());
    }

    #[test]
    fn a_ruby_shebang_lines_encoding_switches_are_read() {
        let ruby = |code: &[u8]| undecoded(Grammar::Ruby, code);
        for code in [
            &b"#!/usr/bin/ruby -Ks\nx = 1\n"[..],
            b"#!/usr/bin/env ruby -w -Ke\n",
            b"#!/usr/bin/ruby -wKs\n",
            b"#!/usr/bin/ruby -Kx\n",
            b"#!/usr/bin/ruby --encoding=Shift_JIS\n",
            b"#!/usr/bin/ruby --encoding Shift_JIS\n",
            b"#!/usr/bin/ruby -E utf-8:Shift_JIS\n",
            b"#!/usr/bin/ruby -Eeuc-jp\n",
            b"\xef\xbb\xbf#!/usr/bin/ruby -Ks\n",
        ] {
            assert!(ruby(code).is_some(), "{:?}", String::from_utf8_lossy(code));
        }
        for code in [
            &b"#!/usr/bin/ruby -Ku\n"[..],
            b"#!/usr/bin/ruby -Kn -w\n",
            b"#!/usr/bin/ruby -rERB -I/opt/Env -w\n",
            b"#!/usr/bin/ruby --encoding=UTF-8\n",
            b"#!/usr/bin/ruby\n",
            b"#!/bin/sh -Ks\n",
            b"#!/usr/bin/ruby\n#!/usr/bin/ruby -Ks\n",
            b"x = 1 # -Ks\n",
        ] {
            assert!(ruby(code).is_none(), "{:?}", String::from_utf8_lossy(code));
        }
    }

    #[test]
    fn codec_names_are_normalised_as_the_interpreters_do() {
        for name in [
            "utf-8",
            "UTF8",
            "utf_8",
            "utf-8-sig",
            "u8",
            "cp65001",
            "Latin-1",
            "latin1",
            "ISO-8859-1",
            "iso_8859_1",
            "iso-latin-1",
            "L1",
            "us-ascii",
            "ASCII",
            "646",
            "ansi_x3.4_1968",
            "ANSI_X3.4-1968",
        ] {
            assert!(python_reads_as_is(name), "{name}");
        }
        for name in [
            "utf-7",
            "utf_16",
            "unicode_escape",
            "raw-unicode-escape",
            "euc-jp",
            "cp1252",
            "rot13",
            "shift_jis",
        ] {
            assert!(!python_reads_as_is(name), "{name}");
        }
        assert!(ruby_reads_as_is("BINARY"));
        assert!(!ruby_reads_as_is("Windows-31J"));
    }
}
