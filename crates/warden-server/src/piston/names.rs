//! Piston's names for warden's languages (its package names, `language` fields and aliases), so
//! that a client written for Piston finds the runtime it asks for. `piston-client` picks a
//! version by matching a runtime's `language` exactly, so these must be Piston's own spellings.

use warden_core::{Catalog, Language};

/// One language as Piston names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PistonName {
    /// warden's language id.
    pub(crate) warden: &'static str,
    /// Piston's `language` field.
    pub(crate) language: &'static str,
    /// Piston's aliases.
    pub(crate) aliases: &'static [&'static str],
    /// The package, when it provides several languages (node, gcc).
    pub(crate) runtime: Option<&'static str>,
}

/// Piston's packages for the eleven languages (its `packages/*/metadata.json`).
pub(crate) const NAMES: &[PistonName] = &[
    name("bash", "bash", &["sh"], None),
    name("c", "c", &["gcc"], Some("gcc")),
    name("cpp", "c++", &["cpp", "g++"], Some("gcc")),
    name("go", "go", &["go", "golang"], None),
    name("java", "java", &[], None),
    name(
        "javascript",
        "javascript",
        &["node-javascript", "node-js", "javascript", "js"],
        Some("node"),
    ),
    name("php", "php", &[], None),
    name("python", "python", &["py", "py3", "python3"], None),
    name("r", "rscript", &["r"], None),
    name("ruby", "ruby", &["ruby3", "rb"], None),
    name("rust", "rust", &["rs"], None),
];

const fn name(
    warden: &'static str,
    language: &'static str,
    aliases: &'static [&'static str],
    runtime: Option<&'static str>,
) -> PistonName {
    PistonName {
        warden,
        language,
        aliases,
        runtime,
    }
}

/// Piston's name for a warden language, if Piston has a package for it.
pub(crate) fn piston_name(language: &Language) -> Option<PistonName> {
    NAMES
        .iter()
        .find(|n| n.warden == language.id.as_str())
        .copied()
}

/// The warden language a Piston client means by `name`: Piston's language name or alias first,
/// then warden's own ids and aliases.
pub(crate) fn resolve<'c>(catalog: &'c Catalog, name: &str) -> Option<&'c Language> {
    let lower = name.to_ascii_lowercase();
    NAMES
        .iter()
        .find(|n| n.language == lower || n.aliases.contains(&lower.as_str()))
        .and_then(|n| catalog.get(n.warden))
        .or_else(|| catalog.get(&lower))
}

/// Whether `version` (`3.11.2`) satisfies a Piston version range: `*`, `x`, a prefix with
/// wildcards (`3`, `3.x`, `3.11.*`), an exact version, or a caret/tilde/`=` prefix taken as
/// its major (`^3.10` → `3.x`) or minor (`~3.10` → `3.10.x`). Piston uses full semver ranges;
/// these are the forms its clients send.
pub(crate) fn matches(range: &str, version: &str) -> bool {
    let range = range.trim();
    let (range, keep) = if let Some(rest) = range.strip_prefix('^') {
        (rest, 1)
    } else if let Some(rest) = range.strip_prefix('~') {
        (rest, 2)
    } else {
        (range.trim_start_matches('=').trim_start_matches('v'), 3)
    };
    let have: Vec<&str> = version.split('.').collect();
    range
        .split('.')
        .take(keep)
        .enumerate()
        .all(|(i, want)| matches!(want, "*" | "x" | "X" | "") || have.get(i) == Some(&want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piston_names_and_warden_names_resolve() {
        let catalog = Catalog::builtin().expect("the built-in catalog");
        for (asked, want) in [
            ("python", "python"),
            ("py3", "python"),
            ("c++", "cpp"),
            ("cpp", "cpp"),
            ("node-js", "javascript"),
            ("rscript", "r"),
            ("sh", "bash"),
            ("Go", "go"),
        ] {
            let got = resolve(&catalog, asked).map(|l| l.id.as_str().to_owned());
            assert_eq!(got.as_deref(), Some(want), "{asked}");
        }
        assert!(resolve(&catalog, "brainfuck").is_none());
        for n in NAMES {
            assert!(
                catalog.get(n.warden).is_some(),
                "{} is in the catalog",
                n.warden
            );
        }
    }

    #[test]
    fn version_ranges_match_as_piston_clients_send_them() {
        for range in [
            "*", "x", "3", "3.x", "3.11.*", "3.11.2", "^3.10", "~3.11", "=3.11.2",
        ] {
            assert!(matches(range, "3.11.2"), "{range}");
        }
        for range in ["2", "3.10.x", "3.11.3", "~3.10", "^2"] {
            assert!(!matches(range, "3.11.2"), "{range}");
        }
    }
}
