//! Which words must appear in a program for a rule to possibly match it, so that only the rules
//! a program can trigger are compiled. Compiling tree-sitter queries is the expensive part of an
//! analysis (milliseconds per rule: tree-sitter analyses every pattern against the grammar's
//! parse states), and an ordinary program triggers few rules or none.
//!
//! A pattern can only match text that its positive string predicates accept, so the program must
//! contain one of their words: for `#eq?` and `#any-of?` the literals themselves; for `#match?`
//! a word of three or more characters from each `|`-separated piece of the regex, counting only
//! what every match must contain. Words are compared case-insensitively. A pattern with no such predicate can match
//! anything: its rule always runs. Analysis is advisory (the sandbox is the boundary), and the
//! extraction errs towards running a rule.

/// The words one of which a program must contain for the rule's `query` to match; `None` when
/// some pattern can match any program.
pub(crate) fn of(query: &str) -> Option<Vec<String>> {
    let mut words: Vec<String> = Vec::new();
    for pattern in top_level_patterns(query) {
        let found = positive_predicate_words(pattern);
        if found.is_empty() {
            return None;
        }
        words.extend(found);
    }
    words.sort();
    words.dedup();
    (!words.is_empty()).then_some(words)
}

/// Whether `code_lowercase` contains one of `words`.
pub(crate) fn present(words: &[String], code_lowercase: &str) -> bool {
    words.iter().any(|w| code_lowercase.contains(w.as_str()))
}

/// The top-level `( ... )` / `[ ... ]` forms of a query, with string literals and comments
/// skipped while counting brackets.
fn top_level_patterns(query: &str) -> Vec<&str> {
    let bytes = query.as_bytes();
    let (mut depth, mut start, mut i) = (0usize, 0usize, 0usize);
    let mut patterns = Vec::new();
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(bytes, i),
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            b')' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    patterns.push(&query[start..=i]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    patterns
}

/// Index of the closing quote of the string starting at `open`.
fn skip_string(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() && bytes[i] != b'"' {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    i
}

/// The words of the positive predicates in `pattern` one of which every match contains; empty
/// when no predicate tells (the pattern can match anything).
fn positive_predicate_words(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            i = skip_string(bytes, i) + 1;
            continue;
        }
        let rest = &pattern[i..];
        let exact = ["(#eq?", "(#any-of?"].iter().any(|p| rest.starts_with(p));
        let regex = rest.starts_with("(#match?");
        if exact || regex {
            let end = predicate_end(bytes, i);
            let literals: Vec<String> = strings(&pattern[i..end])
                .into_iter()
                .map(unescape)
                .collect();
            let found = if exact {
                exact_words(&literals)
            } else {
                regex_words(&literals)
            };
            words.extend(found.unwrap_or_default());
            i = end;
            continue;
        }
        i += 1;
    }
    words
}

/// `#eq?`/`#any-of?`: the text equals one of the literals, so contains it.
fn exact_words(literals: &[String]) -> Option<Vec<String>> {
    if literals.is_empty() || literals.iter().any(String::is_empty) {
        return None;
    }
    Some(literals.iter().map(|l| l.to_ascii_lowercase()).collect())
}

/// `#match?`: words of at least three characters, one from each `|`-separated piece of the
/// regex, so every match contains one. Optional atoms (`x?`, `x*`, `x{0,2}`), classes and
/// escapes break words; an optional group or an inline flag (`(?i)`) tells nothing: `None`.
fn regex_words(literals: &[String]) -> Option<Vec<String>> {
    let [regex] = literals else { return None };
    let plain = required_text(regex)?;
    let mut words = Vec::new();
    for piece in plain.split('|') {
        let long: Vec<String> = piece
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.len() >= 3)
            .map(str::to_ascii_lowercase)
            .collect();
        if long.is_empty() {
            return None;
        }
        words.extend(long);
    }
    Some(words)
}

/// The regex with every character a match might not contain replaced by a space (escapes,
/// classes, `.`, optional atoms), keeping the literal characters, parentheses and `|`.
fn required_text(regex: &str) -> Option<String> {
    let chars: Vec<char> = regex.chars().collect();
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        match chars[i] {
            '\\' => {
                out.push(' ');
                i = skip_quantifier(&chars, i + 2);
            }
            '[' => {
                out.push(' ');
                i = skip_quantifier(&chars, class_end(&chars, i)? + 1);
            }
            '(' if next == Some('?') => return None,
            ')' if matches!(next, Some('?' | '*' | '{')) => return None,
            '(' | ')' | '|' => {
                out.push(chars[i]);
                i += 1;
            }
            '?' | '*' | '{' => return None,
            '+' | '.' | '^' | '$' => {
                out.push(' ');
                i += 1;
            }
            _ if matches!(next, Some('?' | '*' | '{')) => {
                // An optional character: not required.
                out.push(' ');
                i = skip_quantifier(&chars, i + 1);
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Index of the `]` closing the class opened at `open`.
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            ']' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Index after the quantifier (if any) starting at `i`, lazy `?` included.
fn skip_quantifier(chars: &[char], mut i: usize) -> usize {
    match chars.get(i) {
        Some('?' | '*' | '+') => i += 1,
        Some('{') => {
            while i < chars.len() && chars[i] != '}' {
                i += 1;
            }
            i += 1;
        }
        _ => return i,
    }
    if chars.get(i) == Some(&'?') {
        i += 1;
    }
    i
}

/// A query string literal's value (`\\`, `\"`, `\n` unescaped).
fn unescape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Index just past the `)` closing the predicate opened at `open`.
fn predicate_end(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() && bytes[i] != b')' {
        if bytes[i] == b'"' {
            i = skip_string(bytes, i);
        }
        i += 1;
    }
    (i + 1).min(bytes.len())
}

/// The contents of the string literals in `text`.
fn strings(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            let end = skip_string(bytes, i).min(bytes.len());
            out.push(&text[i + 1..end]);
            i = end;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_must_name_a_word_for_the_rule_to_be_skippable() {
        let q = "((call function: (identifier) @f) @finding (#eq? @f \"eval\"))\n\
                 ((attribute) @finding (#match? @finding \"^os\\\\.(system|popen)$\"))";
        assert_eq!(
            of(q),
            Some(vec!["eval".into(), "popen".into(), "system".into()]),
            "`os` is too short to count, but each piece has a longer word"
        );
        let q = "((identifier) @f (#eq? @f \"eval\"))\n((identifier) @f (#match? @f \"^(system|popen)$\"))";
        assert_eq!(
            of(q),
            Some(vec!["eval".into(), "popen".into(), "system".into()])
        );
        assert_eq!(
            of("((identifier) @f (#match? @f \"^(aaa)?b$\"))"),
            None,
            "optional parts"
        );
        assert_eq!(
            of("((identifier) @f (#match? @f \"^(os|subprocess)$\"))"),
            None,
            "a short branch"
        );
        assert_eq!(
            of("(subshell) @finding\n((identifier) @f (#eq? @f \"fork\"))"),
            None
        );
    }

    #[test]
    fn negated_predicates_and_comments_give_no_words() {
        assert_eq!(of("((identifier) @f (#not-eq? @f \"x\"))"), None);
        assert_eq!(
            of("; (#eq? @f \"x\")\n((identifier) @f (#any-of? @f \"a\" \"b\"))"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            of("((string) @s (#match? @s \"(\"))"),
            None,
            "brackets in strings do not nest"
        );
    }

    #[test]
    fn presence_is_case_insensitive_through_lowercasing() {
        let words = of("((identifier) @f (#eq? @f \"System\"))").expect("words");
        assert!(present(&words, &"x = SYSTEM".to_ascii_lowercase()));
        assert!(!present(&words, "print(1)"));
    }
}
