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

/// Whether `version` (`3.11.2`) satisfies a Piston version range, as node-semver's
/// `satisfies` reads one (Piston resolves versions with it): alternatives joined by `||`, each
/// either a hyphen range (`3.0 - 3.11`) or comparators that must all hold (`>=3.10 <4`); a
/// comparator is a version, partial or with `x`/`*` wildcards (`3`, `3.x`, `3.11.*`), after
/// `=`, `<`, `<=`, `>`, `>=`, `^` or `~` (or none: `3.11` is `3.11.x`).
pub(crate) fn matches(range: &str, version: &str) -> bool {
    let Some(have) = Partial::parse(version).map(|p| p.floor()) else {
        return false;
    };
    range.split("||").any(|set| {
        let set = set.trim();
        if let Some((low, high)) = set.split_once(" - ") {
            return match (Partial::parse(low.trim()), Partial::parse(high.trim())) {
                (Some(low), Some(high)) => have >= low.floor() && high.admits_up_to(have),
                _ => false,
            };
        }
        set.split_whitespace()
            .all(|comparator| satisfies(comparator, have))
    })
}

/// A version as a range names it: up to three numbers, a missing or wildcard part unknown;
/// and whether a full one has a pre-release tag (`3.11.2-rc1`), which node-semver orders just
/// below the release (a host's toolchain version never has one: its tag is dropped).
#[derive(Debug, Clone, Copy)]
struct Partial([Option<u64>; 3], bool);

type Version = (u64, u64, u64);

impl Partial {
    /// `3`, `3.11`, `v3.11.2`, `3.x`, `*`, empty, `3.11.2-rc1`; build metadata (`+...`) is
    /// ignored, as node-semver ignores it.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches(['v', 'V', '=']);
        let text = text.split('+').next().unwrap_or_default();
        let (text, tag) = text.split_once('-').unwrap_or((text, ""));
        let mut parts = [None; 3];
        if text.is_empty() {
            return Some(Self(parts, false));
        }
        for (i, part) in text.split('.').enumerate() {
            if i >= 3 {
                break;
            }
            parts[i] = match part {
                "x" | "X" | "*" => None,
                n => Some(n.parse().ok()?),
            };
            if parts[i].is_none() {
                break;
            }
        }
        let pre = !tag.is_empty() && parts.iter().all(Option::is_some);
        Some(Self(parts, pre))
    }

    /// How many leading parts are known.
    fn known(&self) -> usize {
        self.0.iter().take_while(|p| p.is_some()).count()
    }

    /// The lowest version it names (`3.11` → `3.11.0`).
    fn floor(&self) -> Version {
        let [a, b, c] = self.0;
        (a.unwrap_or(0), b.unwrap_or(0), c.unwrap_or(0))
    }

    /// The first version above all it names (`3.11` → `3.12.0`, `3` → `4.0.0`); `None` for
    /// a full version (nothing above it is named) or for any version at all.
    fn ceiling(&self) -> Option<Version> {
        let (a, b, _) = self.floor();
        match self.known() {
            1 => Some((a + 1, 0, 0)),
            2 => Some((a, b + 1, 0)),
            _ => None,
        }
    }

    /// Whether `v` is at or below every version it names (`<= 3.11` holds for `3.11.9`); a
    /// release is above its own pre-releases (`<= 3.11.2-rc1` does not hold for `3.11.2`).
    fn admits_up_to(&self, v: Version) -> bool {
        match (self.known(), self.ceiling()) {
            (0, _) => true,
            (_, Some(above)) => v < above,
            (_, None) if self.1 => v < self.floor(),
            (_, None) => v <= self.floor(),
        }
    }
}

/// Whether `have` satisfies one comparator (`>=3.10`, `^3`, `~3.11`, `3.x`).
fn satisfies(comparator: &str, have: Version) -> bool {
    let (op, rest) = ["<=", ">=", "<", ">", "=", "^", "~>", "~"]
        .iter()
        .find_map(|op| comparator.strip_prefix(op).map(|rest| (*op, rest)))
        .unwrap_or(("", comparator));
    let Some(p) = Partial::parse(rest) else {
        return false;
    };
    let (known, low) = (p.known(), p.floor());
    match op {
        _ if known == 0 => !matches!(op, "<" | ">"),
        // A release is never equal to a pre-release.
        "" | "=" => !p.1 && have >= low && p.admits_up_to(have),
        ">=" => have >= low,
        "<" => have < low,
        "<=" => p.admits_up_to(have),
        ">" => match p.ceiling() {
            Some(above) => have >= above,
            None if p.1 => have >= low,
            None => have > low,
        },
        "~" | "~>" => {
            let above = match known {
                1 => (low.0 + 1, 0, 0),
                _ => (low.0, low.1 + 1, 0),
            };
            have >= low && have < above
        }
        _ => {
            // ^: the leftmost non-zero part stays (^0.2.3 is 0.2.x, ^0.0.3 is 0.0.3 only).
            let above = match (low, known) {
                ((0, 0, c), 3) => (0, 0, c + 1),
                ((0, 0, _), 2) => (0, 1, 0),
                ((0, b, _), k) if k >= 2 => (0, b + 1, 0),
                ((a, _, _), _) => (a + 1, 0, 0),
            };
            have >= low && have < above
        }
    }
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
            "*",
            "x",
            "",
            "3",
            "3.x",
            "3.11.*",
            "3.11.2",
            "v3.11.2",
            "^3.10",
            "~3.11",
            "=3.11.2",
            // Bug hunt: comparisons, alternatives and hyphen ranges, which node-semver takes.
            ">=3",
            ">=3.0.0",
            "<4",
            ">3.11.1",
            ">3.10",
            "<=3.11",
            "<=3.11.2",
            ">=3.10 <4",
            "3.11.2 || 2.7",
            "2.7 || 3",
            "1.0.0 - 4.0.0",
            "3.0 - 3.11",
            "~>3.11",
            "^3.11.2",
        ] {
            assert!(matches(range, "3.11.2"), "{range}");
        }
        for range in [
            "2",
            "3.10.x",
            "3.11.3",
            "~3.10",
            "^2",
            "^3.12",
            ">3.11",
            ">=3.12",
            "<3.11.2",
            "<=3.10",
            "2.7 || 3.10",
            "1.0 - 3.10",
            ">=3.10 <3.11",
            "^0.3",
            "garbage",
            ">x",
        ] {
            assert!(!matches(range, "3.11.2"), "{range}");
        }
        assert!(matches("^0.2.3", "0.2.9") && !matches("^0.2.3", "0.3.0"));
        assert!(matches("^0.0.3", "0.0.3") && !matches("^0.0.3", "0.0.4"));
    }

    /// Hunt compat 6: `3.11.2-rc1` matched 3.11.2 (the tag was dropped); node-semver's
    /// `=3.11.2-rc1` is the pre-release alone, below the release, so Piston answers the
    /// runtime unknown. Build metadata is still ignored.
    #[test]
    fn a_pre_release_is_below_its_release() {
        for range in [
            "3.11.2-rc1",
            "=3.11.2-beta",
            "v3.11.2-rc.1",
            "<=3.11.2-rc1",
            "<3.11.2-rc1",
            "1.0 - 3.11.2-rc1",
        ] {
            assert!(!matches(range, "3.11.2"), "{range}");
        }
        for range in [
            ">=3.11.2-rc1",
            ">3.11.2-rc1",
            "^3.11.2-rc1",
            "~3.11.2-rc1",
            "3.11.2-rc1 - 3.12",
            "3.11.2+build.5",
            "<=3.11.3-rc1",
        ] {
            assert!(matches(range, "3.11.2"), "{range}");
        }
    }
}
