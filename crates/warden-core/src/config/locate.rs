//! Where in a configuration file a key is: TOML's own errors give the line of a bad value but
//! not its key, and the checks after parsing know the key but not the line
//! (`[history] max_age: ...` promises both: docs/modes.md#configuration-wardentoml).

/// `[section] key` (or `key` before any section) of the assignment on `line` (1-based), if
/// that line is one.
pub(super) fn key_on_line(text: &str, line: usize) -> Option<String> {
    let mut section = None;
    for (n, raw) in text.lines().enumerate() {
        let content = uncommented(raw);
        if let Some(name) = header(content) {
            section = Some(name);
        }
        if n + 1 == line {
            let key = assigned_key(content)?;
            return Some(match section {
                Some(section) => format!("[{section}] {key}"),
                None => key.to_owned(),
            });
        }
    }
    None
}

/// The line (1-based) of the key a message starts with (`[section] key: ...`), if the text
/// assigns it.
pub(super) fn line_of_key(text: &str, message: &str) -> Option<usize> {
    let rest = message.strip_prefix('[')?;
    let (wanted_section, rest) = rest.split_once("] ")?;
    let (wanted_key, _) = rest.split_once(':')?;
    let mut section = None;
    for (n, raw) in text.lines().enumerate() {
        let content = uncommented(raw);
        if let Some(name) = header(content) {
            section = Some(name);
            continue;
        }
        if section == Some(wanted_section) && assigned_key(content) == Some(wanted_key) {
            return Some(n + 1);
        }
    }
    None
}

/// Whether `message` names `key` (`[section] key`) already: it starts with a section, or
/// quotes the key's name.
pub(super) fn names(message: &str, key: &str) -> bool {
    let name = key.rsplit(' ').next().unwrap_or(key);
    message.starts_with('[') || message.contains(&format!("`{name}`"))
}

/// The line without a comment (a `#` outside a string is not looked for: keys come first).
fn uncommented(line: &str) -> &str {
    line.split_once('#')
        .map_or(line, |(before, _)| before)
        .trim()
}

/// `name` of a `[name]` header line.
fn header(line: &str) -> Option<&str> {
    let name = line.strip_prefix('[')?.strip_suffix(']')?.trim();
    (!name.is_empty() && !name.starts_with('[')).then_some(name)
}

/// The key of a `key = value` line, unquoted.
fn assigned_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "top = 1\n# a comment\n[maxima]\nmemory = \"5 gigs\"  # no\n\n[history]\n\"max_count\" = -5\n";

    #[test]
    fn a_line_names_its_key_and_a_key_its_line() {
        assert_eq!(key_on_line(TEXT, 1).as_deref(), Some("top"));
        assert_eq!(key_on_line(TEXT, 2), None);
        assert_eq!(key_on_line(TEXT, 3), None);
        assert_eq!(key_on_line(TEXT, 4).as_deref(), Some("[maxima] memory"));
        assert_eq!(key_on_line(TEXT, 7).as_deref(), Some("[history] max_count"));
        assert_eq!(line_of_key(TEXT, "[maxima] memory: 5B is outside"), Some(4));
        assert_eq!(line_of_key(TEXT, "[history] max_count: 0"), Some(7));
        assert_eq!(line_of_key(TEXT, "[history] memory: x"), None);
        assert_eq!(line_of_key(TEXT, "no key here"), None);
    }
}
