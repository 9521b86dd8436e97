//! Which language a program is in, when the request does not say, and how sure warden is.
//!
//! In order: the file name's extension, the interpreter of a `#!` line, then the code itself,
//! scored against the `[detect]` patterns of every language file (docs/cli.md#detection). A
//! language is data, so is its recognition: nothing here knows any language by name.
//!
//! Runs before every execution (in the server or the CLI) on untrusted input, so it reads at
//! most [`SCANNED_BYTES`] of the code, does plain substring searches, and never panics.

use std::fmt;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::language::{DetectPattern, Language, LanguageId, MatchAt, MAX_PATTERN_WEIGHT};

/// How much of the code detection reads: the start of a program says what it is.
pub const SCANNED_BYTES: usize = 64 * 1024;

/// Below this confidence a caller acting on a detection should say which language it chose.
pub const CONFIDENT: f32 = 0.8;

/// Confidence when the extension belongs to one language only.
const EXTENSION_CONFIDENCE: f32 = 0.99;
/// Confidence in a `#!` line naming a known interpreter (the file may still be misnamed).
const SHEBANG_CONFIDENCE: f32 = 0.95;
/// The most content alone can earn: less than a `#!` line, which is a statement of intent.
const CONTENT_CONFIDENCE: f32 = 0.9;
/// A content score from which the evidence counts as complete: one decisive construct (`<?php`,
/// `#include <iostream>`) or a few telling ones.
const FULL_EVIDENCE: f32 = MAX_PATTERN_WEIGHT as f32;
/// The lowest content score that names a language at all.
const MIN_EVIDENCE: i32 = 2;
/// The runner-up is too close to call when it scores at least this share of the best, in
/// percent.
const TOO_CLOSE_PERCENT: i32 = 70;
/// How often one pattern counts: a construct repeated all over a file is still one construct.
const MAX_COUNT: usize = 3;
/// What owning a shared extension is worth against content pointing to a sharer.
const OWNER_BONUS: i32 = 2;
/// Text with more than this share (in percent) of control or replacement characters is binary.
const BINARY_PERCENT: usize = 5;

/// How a language was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectedBy {
    /// Named in the request (id or alias).
    Explicit,
    /// The file name's extension.
    Extension,
    /// The `#!` line.
    Shebang,
    /// The patterns found in the code.
    Content,
}

impl DetectedBy {
    /// The lowercase name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectedBy::Explicit => "explicit",
            DetectedBy::Extension => "extension",
            DetectedBy::Shebang => "shebang",
            DetectedBy::Content => "content",
        }
    }
}

impl fmt::Display for DetectedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A language that might be the one, and how likely.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The language.
    pub language: LanguageId,
    /// From 0 to 1.
    pub confidence: f32,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:.2})", self.language, self.confidence)
    }
}

/// The language chosen, how, and how sure.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection<'c> {
    /// The language.
    pub language: &'c Language,
    /// From 0 to 1: 1 when named, 0.99 for an extension of its own, 0.95 for a `#!` line, at
    /// most 0.9 from content.
    pub confidence: f32,
    /// What decided.
    pub by: DetectedBy,
    /// The next most likely language, when another one was in the running.
    pub runner_up: Option<Candidate>,
}

/// The language could not be determined. The messages say what is wrong, not how to fix it:
/// the fix is the caller's own field (the CLI's `--lang`, the APIs' `language`), which each
/// adapter adds where [`DetectError::needs_language`] says so.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectError {
    /// The requested name is not in the catalog.
    #[error("unknown language {name:?}; known: {known}")]
    Unknown {
        /// The name given.
        name: String,
        /// Every accepted name.
        known: String,
    },
    /// Nothing in the file name or the code says which language it is.
    #[error("cannot tell the language of {what} (known: {known})")]
    Undetected {
        /// What was examined.
        what: String,
        /// Every accepted id.
        known: String,
    },
    /// The code fits several languages about equally well.
    #[error(
        "cannot tell the language of {what}: it could be {}",
        list(.candidates)
    )]
    Ambiguous {
        /// What was examined.
        what: String,
        /// The close candidates, best first.
        candidates: Vec<Candidate>,
    },
}

impl DetectError {
    /// Whether naming the language would settle it (undetected or ambiguous, not unknown):
    /// the adapter then says how its caller names it.
    pub fn needs_language(&self) -> bool {
        matches!(
            self,
            DetectError::Undetected { .. } | DetectError::Ambiguous { .. }
        )
    }
}

fn list(candidates: &[Candidate]) -> String {
    let all: Vec<String> = candidates.iter().map(Candidate::to_string).collect();
    all.join(" or ")
}

/// Resolves the language: the explicit name (id or alias) if given, else [`detect`].
pub fn resolve<'c>(
    catalog: &'c Catalog,
    explicit: Option<&str>,
    file_name: Option<&str>,
    code: &str,
) -> Result<Detection<'c>, DetectError> {
    let Some(name) = explicit else {
        return detect(catalog, file_name, code);
    };
    let language = catalog.get(name).ok_or_else(|| DetectError::Unknown {
        name: name.to_owned(),
        known: catalog.names().join(", "),
    })?;
    Ok(Detection {
        language,
        confidence: 1.0,
        by: DetectedBy::Explicit,
        runner_up: None,
    })
}

/// Detects the language of `code` (named `file_name`, if it has a name): by extension, then by
/// `#!` line, then by content.
pub fn detect<'c>(
    catalog: &'c Catalog,
    file_name: Option<&str>,
    code: &str,
) -> Result<Detection<'c>, DetectError> {
    let text = Scanned::new(code);
    if let Some(found) = file_name
        .and_then(extension)
        .and_then(|ext| by_extension(catalog, ext, &text))
    {
        return Ok(found);
    }
    if let Some(language) = shebang_interpreter(text.code).and_then(|i| catalog.by_shebang(&i)) {
        return Ok(Detection {
            language,
            confidence: SHEBANG_CONFIDENCE,
            by: DetectedBy::Shebang,
            runner_up: None,
        });
    }
    let what = file_name.map_or_else(|| "the code".to_owned(), |n| format!("{n:?}"));
    by_content(catalog, &text, what)
}

/// The extension of the last path component (`src/main.rs` -> `rs`; `.bashrc` has none).
fn extension(file_name: &str) -> Option<&str> {
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => Some(ext),
        _ => None,
    }
}

/// The owner of the extension, or when other languages share it, the one the content favours.
fn by_extension<'c>(catalog: &'c Catalog, ext: &str, text: &Scanned<'_>) -> Option<Detection<'c>> {
    let owner = catalog.by_extension(ext);
    // Compared as the owner was found: `.H`, C++'s own, is not C's shared `h`.
    let exact = catalog.claims_exactly(ext);
    let sharers = catalog.iter().filter(|l| {
        l.detect
            .shared_extensions
            .iter()
            .any(|e| e == ext || (!exact && e.eq_ignore_ascii_case(ext)))
    });
    let candidates: Vec<&Language> = owner.into_iter().chain(sharers).collect();
    if let [language] = candidates.as_slice() {
        return Some(Detection {
            language,
            confidence: EXTENSION_CONFIDENCE,
            by: DetectedBy::Extension,
            runner_up: None,
        });
    }
    // Every candidate keeps a point, so that a file without telling content still goes to the
    // owner with less than full confidence.
    let ranked = rank(candidates.into_iter().map(|l| {
        let bonus = if owner.is_some_and(|o| o.id == l.id) {
            OWNER_BONUS
        } else {
            0
        };
        (l, score(l, text).max(0) + bonus + 1)
    }));
    pick(&ranked, EXTENSION_CONFIDENCE, DetectedBy::Extension)
}

/// The language whose patterns score best, when it clearly does.
fn by_content<'c>(
    catalog: &'c Catalog,
    text: &Scanned<'_>,
    what: String,
) -> Result<Detection<'c>, DetectError> {
    let ranked = if text.binary {
        Vec::new()
    } else {
        rank(catalog.iter().map(|l| (l, score(l, text))))
    };
    let best = ranked.first().map_or(0, |&(_, s)| s);
    let scale = CONTENT_CONFIDENCE * (best as f32 / FULL_EVIDENCE).min(1.0);
    let found = pick(&ranked, scale, DetectedBy::Content);
    let Some(found) = found.filter(|_| best >= MIN_EVIDENCE) else {
        let ids: Vec<&str> = catalog.iter().map(|l| l.id.as_str()).collect();
        return Err(DetectError::Undetected {
            what,
            known: ids.join(", "),
        });
    };
    let close = ranked
        .iter()
        .take_while(|&&(_, s)| s * 100 >= best * TOO_CLOSE_PERCENT)
        .count();
    if close > 1 {
        return Err(DetectError::Ambiguous {
            what,
            candidates: confidences(&ranked, scale)
                .into_iter()
                .take(close)
                .collect(),
        });
    }
    Ok(found)
}

/// Languages with a positive score, best first (ties keep their order).
fn rank<'c>(scored: impl Iterator<Item = (&'c Language, i32)>) -> Vec<(&'c Language, i32)> {
    let mut ranked: Vec<_> = scored.filter(|&(_, s)| s > 0).collect();
    ranked.sort_by_key(|&(_, s)| std::cmp::Reverse(s));
    ranked
}

/// The best of `ranked`, with the next one as runner-up; `None` when `ranked` is empty.
fn pick<'c>(ranked: &[(&'c Language, i32)], scale: f32, by: DetectedBy) -> Option<Detection<'c>> {
    let (language, _) = ranked.first()?;
    let mut candidates = confidences(ranked, scale).into_iter();
    Some(Detection {
        language,
        confidence: candidates.next()?.confidence,
        by,
        runner_up: candidates.next(),
    })
}

/// Every candidate's confidence: its share of the squared scores (so twice the score is four
/// times as likely) times `scale`.
fn confidences(ranked: &[(&Language, i32)], scale: f32) -> Vec<Candidate> {
    let square = |s: i32| (s as f32) * (s as f32);
    let total: f32 = ranked.iter().map(|&(_, s)| square(s)).sum();
    ranked
        .iter()
        .map(|&(l, s)| Candidate {
            language: l.id.clone(),
            confidence: scale * square(s) / total,
        })
        .collect()
}

/// The start of the code, split once into lines for the line-anchored patterns.
struct Scanned<'a> {
    code: &'a str,
    lines: Vec<&'a str>,
    binary: bool,
}

impl<'a> Scanned<'a> {
    fn new(code: &'a str) -> Self {
        let mut end = code.len().min(SCANNED_BYTES);
        while !code.is_char_boundary(end) {
            end -= 1;
        }
        let code = &code[..end];
        Self {
            code,
            lines: code.lines().collect(),
            binary: looks_binary(code),
        }
    }
}

/// A NUL, or many control or replacement characters (what `from_utf8_lossy` makes of
/// invalid UTF-8): not source code.
fn looks_binary(code: &str) -> bool {
    let mut total = 0;
    let mut odd = 0;
    for c in code.chars() {
        if c == '\0' {
            return true;
        }
        total += 1;
        let control = c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c');
        if control || c == char::REPLACEMENT_CHARACTER {
            odd += 1;
        }
    }
    odd * 100 > total * BINARY_PERCENT
}

/// The language's score: each pattern's weight times its matches (at most [`MAX_COUNT`]).
fn score(language: &Language, text: &Scanned<'_>) -> i32 {
    language
        .detect
        .patterns
        .iter()
        .map(|p| p.weight * matches(p, text) as i32)
        .sum()
}

fn matches(pattern: &DetectPattern, text: &Scanned<'_>) -> usize {
    let needle = pattern.text.as_str();
    // Most patterns are absent from any one program; `contains` has a vectorised path that
    // counting does not, so it screens them out first.
    if !text.code.contains(needle) {
        return 0;
    }
    let in_lines = |test: &dyn Fn(&str) -> bool| {
        text.lines
            .iter()
            .filter(|l| test(l))
            .take(MAX_COUNT)
            .count()
    };
    match pattern.at {
        MatchAt::Anywhere => text.code.matches(needle).take(MAX_COUNT).count(),
        MatchAt::Word => text
            .code
            .match_indices(needle)
            .filter(|&(at, _)| is_word(text.code, at, needle))
            .take(MAX_COUNT)
            .count(),
        MatchAt::LineStart => in_lines(&|l| l.trim_start().starts_with(needle)),
        MatchAt::LineEnd => in_lines(&|l| l.trim_end().ends_with(needle)),
        MatchAt::Line => in_lines(&|l| l.trim() == needle),
    }
}

/// Whether `needle`, found at byte `at` of `code`, is not glued to an identifier character at
/// an end where it has one itself.
fn is_word(code: &str, at: usize, needle: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let before = code.get(..at).and_then(|s| s.chars().next_back());
    let after = code.get(at + needle.len()..).and_then(|s| s.chars().next());
    let free_start = !ident(needle.chars().next()) || !ident(before);
    let free_end = !ident(needle.chars().next_back()) || !ident(after);
    free_start && free_end
}

/// The interpreter named by a `#!` line: `#!/usr/bin/env python3` and `#!/usr/bin/python3`
/// both give `python3`; a version suffix (`python3.11`) is kept.
pub fn shebang_interpreter(code: &str) -> Option<String> {
    let line = code.lines().next()?.strip_prefix("#!")?;
    let mut words = line.split_whitespace();
    let program = words.next()?;
    let name = program.rsplit('/').next()?;
    let name = if name == "env" {
        words.find(|w| !w.starts_with('-'))?
    } else {
        name
    };
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let base = if trimmed.is_empty() { name } else { trimmed };
    // `python3.11` -> try `python3.11`'s family: keep the major version when present.
    let with_major = name
        .strip_prefix(base)
        .and_then(|rest| rest.chars().next())
        .filter(char::is_ascii_digit)
        .map(|d| format!("{base}{d}"));
    Some(with_major.unwrap_or_else(|| base.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        let cases = [
            ("#!/usr/bin/env python3\nprint(1)", Some("python3")),
            ("#!/usr/bin/python3.11", Some("python3")),
            ("#! /bin/bash -e", Some("bash")),
            ("#!/usr/bin/env -S node --harmony", Some("node")),
            ("print(1)", None),
        ];
        for (code, expected) in cases {
            assert_eq!(shebang_interpreter(code).as_deref(), expected, "{code}");
        }
    }

    #[test]
    fn extensions_come_from_the_last_path_component() {
        let cases = [
            ("main.py", Some("py")),
            ("src/lib.v2/main.rs", Some("rs")),
            ("dir.d/Makefile", None),
            (".bashrc", None),
            ("trailing.", None),
        ];
        for (name, expected) in cases {
            assert_eq!(extension(name), expected, "{name}");
        }
    }

    #[test]
    fn words_are_not_glued_to_identifiers() {
        let cases = [
            ("x = nil", "nil", true),
            ("nile", "nil", false),
            ("a_nil", "nil", false),
            ("puts x", "puts ", true),
            ("inputs x", "puts ", false),
            ("é(nil)", "nil", true),
        ];
        for (code, needle, expected) in cases {
            let at = code.find(needle).expect("present");
            assert_eq!(is_word(code, at, needle), expected, "{needle} in {code}");
        }
    }

    #[test]
    fn the_scanned_prefix_ends_on_a_character_boundary() {
        // Three bytes a character: the cut at SCANNED_BYTES falls inside one.
        let code = "€".repeat(SCANNED_BYTES);
        let scanned = Scanned::new(&code);
        assert!(scanned.code.len() <= SCANNED_BYTES);
        assert!(!scanned.binary);
        assert!(Scanned::new("a\0b").binary);
        assert!(Scanned::new(&"\u{fffd}x".repeat(10)).binary);
    }

    #[test]
    fn resolution_order() {
        let catalog = Catalog::builtin().expect("valid");
        let id =
            |r: Result<Detection<'_>, DetectError>| r.map(|d| (d.language.id.to_string(), d.by));
        assert_eq!(
            id(resolve(&catalog, Some("py"), Some("x.sh"), "")),
            Ok(("python".into(), DetectedBy::Explicit))
        );
        assert_eq!(
            id(resolve(&catalog, None, Some("x.sh"), "#!/usr/bin/python3")),
            Ok(("bash".into(), DetectedBy::Extension))
        );
        assert_eq!(
            id(resolve(
                &catalog,
                None,
                Some("script"),
                "#!/usr/bin/env node\n"
            )),
            Ok(("javascript".into(), DetectedBy::Shebang))
        );
        assert!(matches!(
            resolve(&catalog, Some("cobol"), None, ""),
            Err(DetectError::Unknown { .. })
        ));
        let err = resolve(&catalog, None, None, "hello").expect_err("undetectable");
        assert!(err.needs_language(), "{err}");
        // Regression (hunt lang 6): HTTP clients were told to "pass --lang"; the hint is each
        // adapter's own.
        assert!(!err.to_string().contains("--lang"), "{err}");
        let unknown = resolve(&catalog, Some("cobol"), None, "").expect_err("unknown");
        assert!(!unknown.needs_language(), "{unknown}");
    }
}
