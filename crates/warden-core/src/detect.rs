//! Which language a program is in, when the request does not say: by file extension, then by
//! the interpreter of a `#!` line. Content-based detection with confidences arrives with the
//! full catalog (issue #3).

use crate::catalog::Catalog;
use crate::language::Language;

/// How a language was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedBy {
    /// Named in the request (id or alias).
    Explicit,
    /// The file name's extension.
    Extension,
    /// The `#!` line.
    Shebang,
}

/// The language could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    #[error("cannot tell the language of {what}; pass --lang (one of: {known})")]
    Undetected {
        /// What was examined.
        what: String,
        /// Every accepted id.
        known: String,
    },
}

/// Resolves the language: the explicit name if given, else the file name's extension, else
/// the shebang line of `code`.
pub fn resolve<'c>(
    catalog: &'c Catalog,
    explicit: Option<&str>,
    file_name: Option<&str>,
    code: &str,
) -> Result<(&'c Language, DetectedBy), DetectError> {
    if let Some(name) = explicit {
        return catalog
            .get(name)
            .map(|l| (l, DetectedBy::Explicit))
            .ok_or_else(|| DetectError::Unknown {
                name: name.to_owned(),
                known: catalog.names().join(", "),
            });
    }
    let by_extension = file_name
        .and_then(|n| n.rsplit_once('.'))
        .and_then(|(_, ext)| catalog.by_extension(ext));
    if let Some(lang) = by_extension {
        return Ok((lang, DetectedBy::Extension));
    }
    if let Some(lang) = shebang_interpreter(code).and_then(|i| catalog.by_shebang(&i)) {
        return Ok((lang, DetectedBy::Shebang));
    }
    Err(DetectError::Undetected {
        what: file_name.map_or_else(|| "the code".to_owned(), |n| format!("{n:?}")),
        known: catalog
            .iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
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
    fn resolution_order() {
        let catalog = Catalog::builtin().expect("valid");
        let id = |r: Result<(&Language, DetectedBy), DetectError>| {
            r.map(|(l, by)| (l.id.to_string(), by))
        };
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
        assert!(err.to_string().contains("--lang"), "{err}");
    }
}
