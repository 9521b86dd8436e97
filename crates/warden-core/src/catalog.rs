//! The language catalog: every `languages/*.toml` embedded in the binary, optionally replaced
//! or extended by an operator's override directory, indexed by id, alias and extension.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::bounded_file::{self, MAX_SETTINGS_FILE};
use crate::embedded::LANGUAGE_FILES;
use crate::language::{Language, LanguageError};

/// All known languages.
#[derive(Debug, Clone)]
pub struct Catalog {
    languages: BTreeMap<String, Language>,
    /// alias or id -> id
    names: BTreeMap<String, String>,
    /// extension, as the language file spells it -> id
    extensions: BTreeMap<String, String>,
    /// extension in lower case -> the id of the first language claiming it in some case
    folded: BTreeMap<String, String>,
}

/// The catalog cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A language file is invalid.
    #[error(transparent)]
    Language(#[from] LanguageError),
    /// The override directory cannot be read.
    #[error("reading language overrides in {path}")]
    ReadOverrides {
        /// The directory or file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Catalog {
    /// The languages embedded in this binary.
    pub fn builtin() -> Result<Self, CatalogError> {
        Self::from_files(builtin_files())
    }

    /// The embedded languages, with every `*.toml` of `dir` replacing or adding one.
    pub fn with_overrides(dir: &Path) -> Result<Self, CatalogError> {
        let read_err = |source| CatalogError::ReadOverrides {
            path: dir.display().to_string(),
            source,
        };
        let mut files: BTreeMap<String, (String, String)> = builtin_files()
            .map(|(name, shown, text)| (name, (shown, text)))
            .collect();
        for entry in fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text =
                bounded_file::read_to_string(&path, MAX_SETTINGS_FILE).map_err(|source| {
                    CatalogError::ReadOverrides {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.insert(name, (path.display().to_string(), text));
        }
        Self::from_files(
            files
                .into_iter()
                .map(|(name, (shown, text))| (name, shown, text)),
        )
    }

    /// The catalog of `files`: each its file name, its path as errors show it, and its text.
    fn from_files(
        files: impl IntoIterator<Item = (String, String, String)>,
    ) -> Result<Self, CatalogError> {
        let mut catalog = Catalog {
            languages: BTreeMap::new(),
            names: BTreeMap::new(),
            extensions: BTreeMap::new(),
            folded: BTreeMap::new(),
        };
        // Each language's file, for an error naming the first of two claimants.
        let mut shown_files = BTreeMap::new();
        for (_, shown, text) in files {
            let lang = Language::from_toml(&shown, &text)?;
            shown_files.insert(lang.id.to_string(), shown.clone());
            catalog.insert(lang, &shown, &shown_files)?;
        }
        Ok(catalog)
    }

    fn insert(
        &mut self,
        lang: Language,
        file: &str,
        shown_files: &BTreeMap<String, String>,
    ) -> Result<(), LanguageError> {
        let id = lang.id.to_string();
        let claim = |index: &mut BTreeMap<String, String>, what, name: &str| match index.get(name) {
            Some(first) if *first != id => Err(LanguageError::Duplicate {
                file: file.to_owned(),
                what,
                name: name.to_owned(),
                first: first.clone(),
                first_file: shown_files.get(first).cloned().unwrap_or_default(),
            }),
            _ => {
                index.insert(name.to_owned(), id.clone());
                Ok(())
            }
        };
        for name in std::iter::once(&id).chain(lang.aliases.iter()) {
            claim(
                &mut self.names,
                if *name == id { "id" } else { "alias" },
                name,
            )?;
        }
        for ext in &lang.extensions {
            claim(&mut self.extensions, "extension", ext)?;
            self.folded
                .entry(ext.to_ascii_lowercase())
                .or_insert_with(|| id.clone());
        }
        self.languages.insert(id, lang);
        Ok(())
    }

    /// Finds a language by id or alias (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Language> {
        let id = self.names.get(&name.to_ascii_lowercase())?;
        self.languages.get(id)
    }

    /// Finds a language by file extension (without the dot): the one that claims it as
    /// spelled, else the one that claims it in lower case (`.PY` is Python's `py`), else the
    /// first that claims it in another case (`.toy` and `.Toy` of a language claiming `TOY`).
    /// Case decides only where compilers let it: gcc compiles `.C` as C++ and `.c` as C, so
    /// C++ claims `C` and C `c`.
    pub fn by_extension(&self, ext: &str) -> Option<&Language> {
        let lower = ext.to_ascii_lowercase();
        let id = self
            .extensions
            .get(ext)
            .or_else(|| self.extensions.get(&lower))
            .or_else(|| self.folded.get(&lower))?;
        self.languages.get(id)
    }

    /// Whether some language claims `ext` spelled exactly so (`C`, C++'s), rather than only in
    /// another case.
    pub fn claims_exactly(&self, ext: &str) -> bool {
        self.extensions.contains_key(ext)
    }

    /// Finds a language whose shebang list names `interpreter` (the file name of the
    /// interpreter in a `#!` line, after `env`).
    pub fn by_shebang(&self, interpreter: &str) -> Option<&Language> {
        self.languages
            .values()
            .find(|l| l.shebangs.iter().any(|s| s == interpreter))
    }

    /// Every language, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &Language> {
        self.languages.values()
    }

    /// Every accepted name (ids and aliases), for error messages.
    pub fn names(&self) -> Vec<&str> {
        self.names.keys().map(String::as_str).collect()
    }
}

/// The embedded language files: each its file name, its name as errors show it
/// (`built-in languages/c.toml`), and its text.
fn builtin_files() -> impl Iterator<Item = (String, String, String)> {
    LANGUAGE_FILES.iter().map(|(file, text)| {
        (
            (*file).to_owned(),
            format!("built-in languages/{file}"),
            (*text).to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_language_loads_with_its_smoke_test() {
        let catalog = Catalog::builtin().expect("the embedded catalog is valid");
        let ids: Vec<_> = catalog.iter().map(|l| l.id.as_str()).collect();
        for required in ["python", "javascript", "bash"] {
            assert!(ids.contains(&required), "{required} missing from {ids:?}");
        }
        for lang in catalog.iter() {
            assert!(
                !lang.smoke.stdout.is_empty(),
                "{} smoke test prints nothing",
                lang.id
            );
            assert!(!lang.extensions.is_empty(), "{} has no extension", lang.id);
        }
    }

    #[test]
    fn lookups_by_alias_extension_and_shebang() {
        let catalog = Catalog::builtin().expect("valid");
        assert_eq!(catalog.get("py").map(|l| l.id.as_str()), Some("python"));
        assert_eq!(
            catalog.get("Node").map(|l| l.id.as_str()),
            Some("javascript")
        );
        assert_eq!(
            catalog.by_extension("SH").map(|l| l.id.as_str()),
            Some("bash")
        );
        // Regression (hunt lang 2): `.C` was C's, as if case did not matter; gcc compiles it
        // as C++.
        for (ext, id) in [
            ("c", "c"),
            ("C", "cpp"),
            ("H", "cpp"),
            ("CPP", "cpp"),
            ("Cc", "cpp"),
        ] {
            assert_eq!(
                catalog.by_extension(ext).map(|l| l.id.as_str()),
                Some(id),
                "{ext}"
            );
        }
        assert_eq!(
            catalog.by_shebang("python3").map(|l| l.id.as_str()),
            Some("python")
        );
        assert!(catalog.get("cobol").is_none());
    }

    #[test]
    fn an_alias_claimed_twice_is_refused() {
        let a = "id = \"a\"\nname = \"A\"\naliases = [\"x\"]\nsource_file = \"a\"\nversion = [\"/a\"]\n[run]\nargv = [\"/a\"]\n[smoke]\ncode = \"\"\nstdout = \"a\"\n";
        let b = a.replace("\"a\"", "\"b\"").replace("\"A\"", "\"B\"");
        let err = Catalog::from_files([
            ("a.toml".into(), "/o/a.toml".into(), a.into()),
            ("b.toml".into(), "/o/b.toml".into(), b),
        ])
        .expect_err("x is claimed twice");
        assert_eq!(
            err.to_string(),
            "/o/b.toml: alias \"x\" is also claimed by a (/o/a.toml)"
        );
    }

    /// Bug hunt: an override's mistake was reported without its file's path or line
    /// (`c.toml: unknown field`, `toy: run command ...`, `extension "c" is claimed by both c
    /// and toy`), unlike the configuration's (`warden.toml:5: ...`).
    #[test]
    fn an_overrides_mistake_names_its_file_and_line_or_field() {
        let dir =
            std::env::temp_dir().join(format!("warden-catalog-errors-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let mut results = Vec::new();
        let toy = "id = \"toy\"\nname = \"Toy\"\nextensions = [\"toy\"]\nsource_file = \"m\"\nversion = [\"/t\"]\n[run]\nargv = [\"/t\"]\n[smoke]\ncode = \"\"\nstdout = \"t\"\n";
        let path = dir.join("toy.toml");
        let shown = path.display().to_string();
        for (text, says) in [
            (
                toy.replace("[smoke]", "colour = 1\n[smoke]"),
                format!("{shown}:8: unknown field `colour`"),
            ),
            (
                toy.replace("argv = [\"/t\"]", "argv = [\"t\"]"),
                format!("{shown}: [run] argv [\"t\"]: the program must be an absolute path"),
            ),
            (
                toy.replace("source_file = \"m\"", "source_file = \"a/m\""),
                format!("{shown}: source_file: \"a/m\" is not a plain file name"),
            ),
            (
                toy.replace("[\"toy\"]", "[\"c\"]"),
                format!(
                    "{shown}: extension \"c\" is also claimed by c (built-in languages/c.toml)"
                ),
            ),
        ] {
            fs::write(&path, &text).expect("write toy.toml");
            let err = Catalog::with_overrides(&dir).expect_err(&says);
            results.push((err.to_string(), says));
        }
        fs::remove_dir_all(&dir).expect("cleanup");
        for (err, says) in results {
            assert!(err.starts_with(&says), "{err}\n  should start with\n{says}");
        }
    }

    #[test]
    fn overrides_replace_and_add() {
        let dir = std::env::temp_dir().join(format!("warden-catalog-test-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let toy = "id = \"toy\"\nname = \"Toy\"\nextensions = [\"toy\"]\nsource_file = \"m\"\nversion = [\"/t\"]\n[run]\nargv = [\"/t\"]\n[smoke]\ncode = \"\"\nstdout = \"t\"\n";
        fs::write(dir.join("toy.toml"), toy).expect("write");
        let catalog = Catalog::with_overrides(&dir);
        fs::remove_dir_all(&dir).expect("cleanup");
        let catalog = catalog.expect("valid overrides");
        assert!(catalog.get("toy").is_some());
        assert!(catalog.get("python").is_some());
    }

    /// Regression hunt: once extensions were kept as spelled, a language claiming `TOY` was
    /// found for `x.TOY` only; case matters only between claims (`.c` and `.C`).
    #[test]
    fn an_extension_claimed_in_capitals_is_found_in_any_case() {
        let dir = std::env::temp_dir().join(format!("warden-catalog-caps-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let toy = "id = \"toy\"\nname = \"Toy\"\nextensions = [\"TOY\"]\nsource_file = \"m\"\nversion = [\"/t\"]\n[run]\nargv = [\"/t\"]\n[smoke]\ncode = \"\"\nstdout = \"t\"\n";
        fs::write(dir.join("toy.toml"), toy).expect("write");
        let catalog = Catalog::with_overrides(&dir);
        fs::remove_dir_all(&dir).expect("cleanup");
        let catalog = catalog.expect("valid overrides");
        for ext in ["TOY", "toy", "Toy"] {
            assert_eq!(
                catalog.by_extension(ext).map(|l| l.id.as_str()),
                Some("toy"),
                "{ext}"
            );
        }
        assert_eq!(catalog.by_extension("c").map(|l| l.id.as_str()), Some("c"));
        assert_eq!(
            catalog.by_extension("C").map(|l| l.id.as_str()),
            Some("cpp")
        );
    }
}
