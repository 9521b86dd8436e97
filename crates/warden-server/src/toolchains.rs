//! The toolchain version of every language, as the compatible APIs list them (Piston's
//! `runtimes` needs a semver per runtime). Each version comes from running the language's
//! `version` command in a sandbox, which takes from milliseconds (bash) to a second (the JVM, R),
//! so all are probed once, concurrently, at the first request that needs them, and kept for the
//! life of the server: a toolchain upgraded underneath a running server shows its old version
//! until the restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::state::AppState;

/// Language id → the version line its toolchain printed, or `None` when the probe failed (the
/// toolchain is missing, or the sandbox cannot start on this host).
pub(crate) type VersionMap = BTreeMap<String, Option<String>>;

/// The versions, probed at first use (cheap to clone: shared).
#[derive(Debug, Clone, Default)]
pub(crate) struct Toolchains {
    versions: Arc<OnceCell<VersionMap>>,
}

impl Toolchains {
    /// Versions given up front (router tests, which have no sandbox to probe with).
    #[cfg(test)]
    pub(crate) fn known(versions: VersionMap) -> Self {
        Self {
            versions: Arc::new(OnceCell::new_with(Some(versions))),
        }
    }

    /// Every language's version, probing them all the first time.
    pub(crate) async fn versions(&self, state: &AppState) -> &VersionMap {
        self.versions.get_or_init(|| probe_all(state.clone())).await
    }
}

async fn probe_all(state: AppState) -> VersionMap {
    let ids: Vec<String> = state
        .engine()
        .catalog()
        .iter()
        .map(|l| l.id.as_str().to_owned())
        .collect();
    let probes: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let state = state.clone();
            tokio::task::spawn_blocking(move || {
                let engine = state.engine();
                let version = engine.catalog().get(&id).and_then(|language| {
                    engine
                        .toolchain_version(language)
                        .map_err(|e| {
                            tracing::warn!(language = %id, error = %e, "toolchain version probe failed");
                        })
                        .ok()
                });
                (id, version)
            })
        })
        .collect();
    let mut versions = VersionMap::new();
    for probe in probes {
        if let Ok((id, version)) = probe.await {
            versions.insert(id, version);
        }
    }
    versions
}

/// The first dotted number in a version line, padded to three parts: `"Python 3.11.2"` →
/// `"3.11.2"`, `"go version go1.19.8 linux/amd64"` → `"1.19.8"`, `"openjdk 17 2021"` → `"17.0.0"`
/// (a lone number counts only when no dotted one appears). `"0.0.0"` when there is none.
pub(crate) fn semver(line: &str) -> String {
    let runs: Vec<&str> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|run| run.trim_matches('.'))
        .filter(|run| run.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let best = runs
        .iter()
        .find(|run| run.contains('.'))
        .or_else(|| runs.first());
    let Some(best) = best else {
        return "0.0.0".to_owned();
    };
    let mut parts: Vec<&str> = best.split('.').filter(|p| !p.is_empty()).take(3).collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_takes_the_first_dotted_number_of_real_version_lines() {
        let cases = [
            ("Python 3.11.2", "3.11.2"),
            ("g++ (Debian 12.2.0-14) 12.2.0", "12.2.0"),
            ("go version go1.19.8 linux/amd64", "1.19.8"),
            ("rustc 1.70.0 (90c541806 2023-05-31)", "1.70.0"),
            ("v18.19.0", "18.19.0"),
            (
                "GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)",
                "5.2.15",
            ),
            (
                "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]",
                "3.1.2",
            ),
            (
                "R version 4.2.2 Patched (2022-11-10 r83330) -- \"Innocent and Trusting\"",
                "4.2.2",
            ),
            ("openjdk 17.0.9 2023-10-17", "17.0.9"),
            (
                "PHP 8.2.7 (cli) (built: Jun  9 2023 19:37:27) (NTS)",
                "8.2.7",
            ),
            ("javac 17", "17.0.0"),
            ("unknown", "0.0.0"),
        ];
        for (line, want) in cases {
            assert_eq!(semver(line), want, "{line}");
        }
    }
}
