//! The bodies of bash here-documents: where each ends as bash reads it, and the text that
//! stands for one the grammar cannot read in place.

use super::{line_end, line_of, Started};

/// Past the body of `body` that starts at `from`. Bash joins a line that ends with an odd
/// number of backslashes to the next in a body whose delimiter is not quoted, and compares
/// the joined line with the delimiter; the grammar compares each line. The body of an earlier
/// here-document of the line (`<<A <<B`) is read by the grammar as the start of the `last`
/// one's: it must not hold the last one's end, nor text that the two read differently.
pub(super) fn body_end(
    code: &[u8],
    body: &Started,
    from: usize,
    last: Option<&Started>,
) -> Result<usize, String> {
    let (mut at, mut joined) = (from, None::<Vec<u8>>);
    loop {
        if at >= code.len() {
            return Err(unended(code, from));
        }
        let end = line_end(code, at);
        let line = &code[at..end];
        if let Some(last) = last {
            let expands = |b: &u8| matches!(b, b'$' | b'`' | b'\\');
            if last.ends_at(line) || (body.quoted != last.quoted && line.iter().any(expands)) {
                return Err(format!(
                    "line {}: here-documents started on one line hold text the bash grammar \
                     cannot read as one",
                    line_of(code, from.saturating_sub(1))
                ));
            }
        }
        let continued =
            !body.quoted && line.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1;
        if let Some(start) = &mut joined {
            start.extend_from_slice(line);
            if body.ends_at(line) || (!continued && body.ends_at(start)) {
                return Err(format!(
                    "line {}: a line continuation in a here-document makes or hides the line \
                     that ends it, which the bash grammar does not read",
                    line_of(code, at)
                ));
            }
        }
        at = (end + 1).min(code.len());
        if joined.is_none() && !continued && body.ends_at(line) {
            return Ok(at);
        }
        joined = match (joined, continued) {
            (_, false) => None,
            (None, true) => Some(line[..line.len() - 1].to_vec()),
            (Some(mut start), true) => {
                start.pop();
                Some(start)
            }
        };
    }
}

pub(super) fn unended(code: &[u8], at: usize) -> String {
    format!(
        "line {}: a here-document's delimiter never comes before the end of the file, so the \
         analysis cannot tell where its text ends",
        line_of(code, at.saturating_sub(1))
    )
}

/// The text that stands for a body and its end line, `body`, where the grammar cannot read
/// it in place: blanks, and the same line breaks. Of a body whose delimiter is not quoted,
/// the parameter expansions (`$HOME`, `${name}`) and the command substitutions (`$(date)`)
/// stay, as arguments of `:` where the line has room, or where a case item's pattern goes
/// (`$(date)|$HOME) ;;`) when the line closed a case item: bash runs the substitutions, and the
/// rules read them. A substitution or expansion the grammar might read as more than itself
/// (quotes, parentheses, a comment, a here-document or a backquote in it: `$(echo "it's")`,
/// `${x:-it's}`) cannot stand so.
pub(super) fn blanked(body: &[u8], quoted: bool, in_case: bool) -> Option<Vec<u8>> {
    let mut read = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        let (text, newline) = match line.strip_suffix(b"\n") {
            Some(text) => (text, &b"\n"[..]),
            None => (line, &b""[..]),
        };
        let expansions = if quoted {
            Vec::new()
        } else {
            expansions(text)?
        };
        let mut blank = vec![b' '; text.len()];
        let words = expansions
            .iter()
            .map(|r| &text[r.clone()])
            .collect::<Vec<_>>();
        let standing = if in_case {
            let mut pattern = words.join(&b'|');
            pattern.extend_from_slice(b") ;;");
            pattern
        } else {
            [&b":"[..]]
                .into_iter()
                .chain(words)
                .collect::<Vec<_>>()
                .join(&b' ')
        };
        if !expansions.is_empty() && standing.len() <= text.len() {
            blank[..standing.len()].copy_from_slice(&standing);
        } else if in_case && !expansions.is_empty() {
            // No room for a pattern, and a word alone there would not parse.
            return None;
        } else {
            for range in expansions {
                blank[range.clone()].copy_from_slice(&text[range]);
            }
        }
        read.extend_from_slice(&blank);
        read.extend_from_slice(newline);
    }
    Some(read)
}

/// Where the parameter expansions and command substitutions of a line of a body are, or
/// `None` when the line holds one the grammar might read as more than itself, or a backquote.
fn expansions(text: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let (mut found, mut i) = (Vec::new(), 0);
    while i < text.len() {
        match (text[i], text.get(i + 1).copied()) {
            (b'`', _) => return None,
            (b'$', Some(b'(')) => {
                let close = text[i..].iter().position(|&b| b == b')')?;
                let inner = &text[i + 2..i + close];
                if inner.is_empty() || inner.iter().any(|b| b"'\"`\\(#<".contains(b)) {
                    return None;
                }
                found.push(i..i + close + 1);
                i += close + 1;
            }
            (b'\\', _) => i += 2,
            (b'$', Some(b'{')) => {
                let close = text[i..].iter().position(|&b| b == b'}')?;
                let inner = &text[i + 2..i + close];
                if inner.iter().any(|b| b"'\"`\\{$(".contains(b)) {
                    return None;
                }
                found.push(i..i + close + 1);
                i += close + 1;
            }
            (b'$', Some(b'0'..=b'9' | b'@' | b'*' | b'#' | b'?' | b'$' | b'!' | b'-')) => {
                found.push(i..i + 2);
                i += 2;
            }
            (b'$', Some(b'a'..=b'z' | b'A'..=b'Z' | b'_')) => {
                let name = text[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                found.push(i..i + 1 + name);
                i += 1 + name;
            }
            _ => i += 1,
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(body: &str, quoted: bool) -> Option<String> {
        blanked(body.as_bytes(), quoted, false).map(|read| String::from_utf8(read).expect("utf-8"))
    }

    #[test]
    fn a_blanked_body_keeps_its_line_breaks_and_parameter_names() {
        assert_eq!(
            blank("it's $x\nEOF\n", true).as_deref(),
            Some("       \n   \n")
        );
        assert_eq!(
            blank("Usage: $0 [-v] ${NAME}\n$a$b\n\\$c\nEOF", false).as_deref(),
            Some(": $0 ${NAME}          \n$a$b\n   \n   ")
        );
        assert_eq!(
            blank("Today is $(date +%F) on $(hostname)\nEOF\n", false).as_deref(),
            Some(": $(date +%F) $(hostname)          \n   \n")
        );
        assert_eq!(
            blanked(b"Today is $(date) ${x}\n", false, true).as_deref(),
            Some(&b"$(date)|${x}) ;;     \n"[..])
        );
        assert_eq!(blanked(b"$(date)\n", false, true), None);
        for hidden in [
            "$(echo \"it's\")\n",
            "$(echo $(id))\n",
            "$(echo # )\n",
            "$(cat <<X)\n",
            "$(id\n",
            "`id`\n",
            "${x:-it's}\n",
            "${x:-$(id)}\n",
            "${x\n}\n",
        ] {
            assert_eq!(blank(hidden, false), None, "{hidden:?}");
        }
    }
}
