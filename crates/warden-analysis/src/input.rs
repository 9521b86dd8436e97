//! Screening a program before it is parsed: input too large, binary data, invalid UTF-8 or
//! brackets nested beyond reason are graded without spending a parse on them
//! (docs/analysis.md#unparseable-input).

use warden_core::ThreatLevel;

/// Programs larger than this are not parsed.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Programs whose brackets nest deeper than this are not parsed: no program written by a
/// person does it, and compilers and interpreters have limits of their own well below it
/// (CPython's is 200).
pub const MAX_NESTING: usize = 256;
/// How much of the start of a program decides whether it is binary.
const SNIFFED_BYTES: usize = 8192;

/// The level of a program that cannot be analysed (binary, too large, too deep, unparseable,
/// past the time budget): nothing vouches for it, and what it hides may be anything the rules
/// grade `high` or `critical`, so it is graded as the highest that still runs (`auto` runs it
/// isolated). `medium` let a fork bomb that `critical` refuses, or native code that `high`
/// isolates, run in the native sandbox behind one NUL byte or a comment of 257 brackets.
pub const UNPARSEABLE_LEVEL: ThreatLevel = ThreatLevel::High;
/// The level of a program that is not valid UTF-8 but otherwise parses: odd, analysed anyway.
pub const INVALID_UTF8_LEVEL: ThreatLevel = ThreatLevel::Low;

/// What screening decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Screen {
    /// Nothing but whitespace: nothing to analyse.
    Empty,
    /// Parse it; if it is not valid UTF-8, the note says where.
    Parse { invalid_utf8: Option<String> },
    /// Do not parse it, for this reason.
    Refuse(String),
}

/// Screens `code`.
pub(crate) fn screen(code: &[u8]) -> Screen {
    if code.len() > MAX_INPUT_BYTES {
        return Screen::Refuse(format!(
            "{} bytes: larger than the {} bytes analysed",
            code.len(),
            MAX_INPUT_BYTES
        ));
    }
    if code.iter().all(u8::is_ascii_whitespace) {
        return Screen::Empty;
    }
    if is_binary(code) {
        return Screen::Refuse("binary data, not source code".into());
    }
    let depth = bracket_depth(code);
    if depth > MAX_NESTING {
        return Screen::Refuse(format!(
            "brackets nested more than {MAX_NESTING} levels deep"
        ));
    }
    let invalid_utf8 = std::str::from_utf8(code).err().map(|e| {
        let at = e.valid_up_to();
        let line = code[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("not valid UTF-8 (line {line}, byte {at})")
    });
    Screen::Parse { invalid_utf8 }
}

/// A NUL byte, or more than an eighth of the first bytes neither text nor UTF-8.
fn is_binary(code: &[u8]) -> bool {
    let head = &code[..code.len().min(SNIFFED_BYTES)];
    if head.contains(&0) {
        return true;
    }
    let mut odd = 0;
    let mut rest = head;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                odd += text.bytes().filter(|&b| is_control(b)).count();
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                odd += valid.iter().filter(|&&b| is_control(b)).count();
                // The bad sequence, or the cut at the end of `head`, counts once per byte.
                let bad = e.error_len().unwrap_or(after.len());
                odd += bad;
                rest = &after[bad..];
            }
        }
    }
    odd * 8 > head.len()
}

/// A control character that text does not contain (tab, newlines, form feed and escape do).
fn is_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1b)) || b == 0x7f
}

/// The deepest nesting of `(`, `[` and `{`, counted over the raw bytes: strings and comments
/// count too, which only matters for programs that no person writes.
fn bracket_depth(code: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for &b in code {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_parsed() {
        assert_eq!(
            screen(b"print('h\xc3\xa9')\n"),
            Screen::Parse { invalid_utf8: None }
        );
        assert_eq!(screen(b" \n\t"), Screen::Empty);
        assert_eq!(screen(b""), Screen::Empty);
    }

    #[test]
    fn latin1_text_is_parsed_with_a_note() {
        let Screen::Parse {
            invalid_utf8: Some(note),
        } = screen(b"x = 1\n# caf\xe9\n")
        else {
            panic!("expected a note");
        };
        assert_eq!(note, "not valid UTF-8 (line 2, byte 11)");
    }

    #[test]
    fn binary_deep_and_large_inputs_are_refused() {
        assert!(matches!(
            screen(b"\x7fELF\x02\x01\x01\x00"),
            Screen::Refuse(_)
        ));
        assert!(matches!(screen(&[0xff; 64]), Screen::Refuse(_)));
        assert!(matches!(screen(&[b'('; 300]), Screen::Refuse(_)));
        assert!(matches!(
            screen(&vec![b'a'; MAX_INPUT_BYTES + 1]),
            Screen::Refuse(_)
        ));
        assert!(matches!(screen(&[b'('; 200]), Screen::Parse { .. }));
    }
}
