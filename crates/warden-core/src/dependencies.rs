//! Dependencies as data: the `[dependencies]` section of a language file (how its package
//! manager installs into a directory), the package specs a request may name, and the manifest
//! files (`requirements.txt`, `package.json`, `Gemfile`) they may be read from
//! (docs/languages.md, docs/network.md#dependencies).
//!
//! A spec becomes one argv element of the installer, never shell text; it is still kept to a
//! narrow alphabet so that it can only name a package: no leading `-` (an installer option
//! such as `-r /etc/passwd` or `--index-url`), no path or URL, no spaces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::language::ArgvTemplate;
use crate::limits::LimitOverrides;

/// The most dependencies one request may name.
pub const MAX_DEPENDENCIES: usize = 64;
/// The longest dependency spec, in bytes.
pub const MAX_SPEC_LEN: usize = 200;
/// The placeholders of an installer command.
pub const INSTALL_PLACEHOLDERS: &[&str] = &["{deps}", "{packages}", "{index}", "{index_host}"];

/// The `[dependencies]` section of a language file: how its package manager installs a list
/// of packages into a directory, and what a program needs to find them there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installer {
    /// The installer command: `{deps}` is the directory it installs into, `{packages}` (one
    /// element of its own) the dependency specs.
    pub argv: ArgvTemplate,
    /// The installer's environment, on top of the language's (`{deps}` expands).
    #[serde(default)]
    pub install_env: BTreeMap<String, String>,
    /// The environment of a program that uses an installed set, on top of the language's;
    /// `{deps}` expands to where the set is mounted.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The manifest file a request's files may carry instead of naming dependencies.
    #[serde(default)]
    pub manifest: Option<Manifest>,
    /// Limit overrides for the installer (on top of the language's).
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Arguments that point the installer at the operator's package index, placed before the
    /// packages when `[dependencies.index]` names one for the language: `{index}` is its URL,
    /// `{index_host}` its host.
    #[serde(default)]
    pub index_args: Vec<String>,
}

impl Installer {
    /// Why the section cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let Some(program) = self.argv.first() else {
            return Some("the installer command is empty".into());
        };
        if !program.starts_with('/') {
            return Some(format!(
                "the installer {program:?} must be an absolute path"
            ));
        }
        if self.argv.iter().filter(|a| *a == "{packages}").count() != 1
            || self
                .argv
                .iter()
                .any(|a| a.contains("{packages}") && a != "{packages}")
        {
            return Some("the installer command needs {packages} once, as one element".into());
        }
        if !self.argv.iter().any(|a| a.contains("{deps}")) {
            return Some("the installer command must install into {deps}".into());
        }
        if !self.index_args.is_empty() && !self.index_args.iter().any(|a| a.contains("{index}")) {
            return Some("index_args must name {index}".into());
        }
        if let Some(misplaced) = self
            .argv
            .iter()
            .chain(self.env.values())
            .chain(self.install_env.values())
            .find(|t| t.contains("{index}") || t.contains("{index_host}"))
        {
            return Some(format!(
                "{{index}} belongs in index_args, not in {misplaced:?}"
            ));
        }
        let texts = self
            .argv
            .iter()
            .chain(&self.index_args)
            .chain(self.env.values())
            .chain(self.install_env.values());
        for text in texts {
            if let Some(unknown) = unknown_placeholder(text) {
                return Some(format!("unknown placeholder {unknown} in {text:?}"));
            }
        }
        let keys = self.env.keys().chain(self.install_env.keys());
        keys.clone()
            .find(|k| k.is_empty() || k.contains(['=', '\0']))
            .map(|k| format!("environment name {k:?} is not valid"))
    }

    /// The installer's argv for `packages`, installing into `deps`, from `index` (a URL) when
    /// the operator names one.
    pub fn command(&self, deps: &str, packages: &[String], index: Option<&str>) -> Vec<String> {
        let mut argv = Vec::with_capacity(self.argv.len() + packages.len());
        for arg in &self.argv {
            if arg == "{packages}" {
                if let Some(url) = index {
                    let host = crate::network::host_of_url(url)
                        .map(|(host, _)| host)
                        .unwrap_or_default();
                    argv.extend(
                        self.index_args
                            .iter()
                            .map(|a| a.replace("{index_host}", &host).replace("{index}", url)),
                    );
                }
                argv.extend(packages.iter().cloned());
            } else {
                argv.push(arg.replace("{deps}", deps));
            }
        }
        argv
    }
}

/// The first `{...}` in `text` that is not an installer placeholder.
fn unknown_placeholder(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            return Some(&rest[start..]);
        };
        let placeholder = &rest[start..start + end + 1];
        if !INSTALL_PLACEHOLDERS.contains(&placeholder) {
            return Some(placeholder);
        }
        rest = &rest[start + end + 1..];
    }
    None
}

/// A manifest file naming a program's dependencies. A closed set: each is read by its own
/// strict parser, which refuses what it does not understand rather than guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Manifest {
    /// pip's `requirements.txt`: one spec a line, `#` comments; option lines are refused.
    RequirementsTxt,
    /// npm's `package.json`: its `dependencies` object, each `name@version`.
    PackageJson,
    /// Bundler's `Gemfile`: `gem "name"` or `gem "name", "version"` lines (`name:version`);
    /// `source` lines are ignored (the network policy decides where packages come from).
    Gemfile,
}

impl Manifest {
    /// The file's name among the request's files.
    pub const fn file_name(self) -> &'static str {
        match self {
            Manifest::RequirementsTxt => "requirements.txt",
            Manifest::PackageJson => "package.json",
            Manifest::Gemfile => "Gemfile",
        }
    }

    /// Whether its installer takes `name:version` ([`check_spec`]): gem's.
    pub const fn name_colon_version(self) -> bool {
        matches!(self, Manifest::Gemfile)
    }

    /// The spelling of `spec` (checked) that a cache key takes: one for all the spellings
    /// its installer reads as the same request, and only for those. pip's: the name as pip
    /// looks it up, plain releases without trailing zeros, clauses sorted; npm's and gem's
    /// are taken as written (npm's names are case sensitive and `x@1.0` is a range, not
    /// `x@1.0.0`).
    pub fn cache_spelling(self, spec: &str) -> String {
        match self {
            Manifest::RequirementsTxt => pip_cache_spelling(spec),
            Manifest::PackageJson | Manifest::Gemfile => spec.to_owned(),
        }
    }

    /// The dependency specs the file names, each checked by [`check_spec`].
    pub fn parse(self, text: &str) -> Result<Vec<String>, DependencyError> {
        let specs = match self {
            Manifest::RequirementsTxt => requirements_txt(text)?,
            Manifest::PackageJson => package_json(text)?,
            Manifest::Gemfile => gemfile(text)?,
        };
        for spec in &specs {
            check_spec(spec, self.name_colon_version())?;
        }
        Ok(specs)
    }
}

/// A pip requirement as a cache key takes it: the project's name normalised as pip looks it up
/// (PEP 503: case and runs of `-`, `_`, `.` do not matter, `Foo.Bar` is `foo-bar`), and each
/// `==`, `!=`, `>=` or `<=` clause of a plain release version without its trailing zeros
/// (PEP 440 pads a release with zeros to compare: `==1.0` and `==1.0.0` select the same
/// versions), the clauses sorted (they are an intersection). Left as written: extras, `~=`
/// (`~=1.0` is not `~=1.0.0`), wildcards (`==1.*` is not `==1.0.*`), `===` (a string
/// comparison), pre-, post-, dev- and local versions, and anything else it does not parse.
fn pip_cache_spelling(spec: &str) -> String {
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
        .unwrap_or(spec.len());
    let (name, rest) = spec.split_at(name_end);
    let (extras, specifiers) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((extras, specifiers)) => (format!("[{extras}]"), specifiers),
        None if rest.starts_with('[') => return spec.to_owned(),
        None => (String::new(), rest),
    };
    let mut name = name.to_ascii_lowercase().replace(['_', '.'], "-");
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let mut clauses = Vec::new();
    if !specifiers.is_empty() {
        for clause in specifiers.split(',') {
            let Some(clause) = pip_clause_spelling(clause) else {
                return spec.to_owned();
            };
            clauses.push(clause);
        }
    }
    clauses.sort();
    clauses.dedup();
    format!("{name}{extras}{}", clauses.join(","))
}

/// One clause of a pip requirement's specifiers as [`pip_cache_spelling`] takes it; `None` when
/// it is not a clause (no operator, or no version).
fn pip_clause_spelling(clause: &str) -> Option<String> {
    let op = ["===", "==", "!=", ">=", "<=", "~=", ">", "<"]
        .into_iter()
        .find(|op| clause.starts_with(op))?;
    let version = &clause[op.len()..];
    if version.is_empty() {
        return None;
    }
    let release: Option<Vec<u64>> = version.split('.').map(|n| n.parse().ok()).collect();
    let plain = version.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match release {
        Some(mut release) if plain && ["==", "!=", ">=", "<="].contains(&op) => {
            while release.len() > 1 && release.last() == Some(&0) {
                release.pop();
            }
            let release: Vec<String> = release.iter().map(u64::to_string).collect();
            Some(format!("{op}{}", release.join(".")))
        }
        _ => Some(clause.to_owned()),
    }
}

fn requirements_txt(text: &str) -> Result<Vec<String>, DependencyError> {
    let mut specs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = match line.find('#') {
            Some(at) => &line[..at],
            None => line,
        };
        // Blanks may stand around a version's operators (`requests >= 2.0`), never inside a name
        // or a version: `foo bar`, which pip refuses, was installed as `foobar`.
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first().is_some_and(|w| w.starts_with('-')) {
            return Err(DependencyError::Manifest {
                file: "requirements.txt",
                line: n + 1,
                problem: "installer options are not allowed".into(),
            });
        }
        let inside = |w: &&[&str]| {
            let name_end = |c: char| c.is_ascii_alphanumeric() || "._-]".contains(c);
            let name_start = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
            w[0].ends_with(name_end) && w[1].starts_with(name_start)
        };
        if words.windows(2).any(|w| inside(&w)) {
            return Err(DependencyError::Manifest {
                file: "requirements.txt",
                line: n + 1,
                problem: "a blank inside a name or a version".into(),
            });
        }
        let spec: String = words.concat();
        if !spec.is_empty() {
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// The keys of a `package.json` that npm reads to choose, fetch or run what it installs, other
/// than `dependencies`: warden installs only that object, so a manifest naming any of these
/// would not get what it asks for (its development or optional packages, its overrides, its
/// workspaces), and a script would be code run at install time. The other keys (`name`,
/// `type`, `main`, `exports`...) are Node's at run time, not the installer's.
const PACKAGE_JSON_REFUSED: [&str; 10] = [
    "scripts",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "bundledDependencies",
    "bundleDependencies",
    "overrides",
    "resolutions",
    "workspaces",
    "dependenciesMeta",
];

fn package_json(text: &str) -> Result<Vec<String>, DependencyError> {
    let problem = |problem: String| DependencyError::Manifest {
        file: "package.json",
        line: 0,
        problem,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| problem(e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| problem("a package.json is an object".into()))?;
    if let Some(key) = PACKAGE_JSON_REFUSED
        .iter()
        .find(|k| object.contains_key(**k))
    {
        return Err(problem(if *key == "scripts" {
            "\"scripts\" is refused: no script of the manifest runs at install time".into()
        } else {
            format!("{key:?} is refused: only \"dependencies\" is installed")
        }));
    }
    let Some(deps) = object.get("dependencies") else {
        return Ok(Vec::new());
    };
    let deps = deps
        .as_object()
        .ok_or_else(|| problem("dependencies must be an object".into()))?;
    deps.iter()
        .map(|(name, version)| match version.as_str() {
            Some(version) => Ok(format!("{name}@{version}")),
            None => Err(problem(format!("the version of {name:?} must be a string"))),
        })
        .collect()
}

fn gemfile(text: &str) -> Result<Vec<String>, DependencyError> {
    let mut specs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("source ") {
            continue;
        }
        let refuse = || DependencyError::Manifest {
            file: "Gemfile",
            line: n + 1,
            problem: "only gem \"name\" or gem \"name\", \"version\" lines are understood".into(),
        };
        let args = line.strip_prefix("gem ").ok_or_else(refuse)?;
        let parts: Vec<&str> = args.split(',').map(str::trim).collect();
        let quoted = |s: &str| {
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .map(|s| s.split_whitespace().collect::<String>())
        };
        // A gem's name holds no blank (`"foo bar"` was installed as `foobar`).
        let name_of = |s: &str| quoted(s).filter(|_| s.split_whitespace().count() == 1);
        match parts.as_slice() {
            [name] => specs.push(name_of(name).ok_or_else(refuse)?),
            [name, version] => {
                let (name, version) = name_of(name).zip(quoted(version)).ok_or_else(refuse)?;
                specs.push(format!("{name}:{version}"));
            }
            _ => return Err(refuse()),
        }
    }
    Ok(specs)
}

/// The endings of archive files, which installers install from the file of that name. Not
/// `.zip`: npm packages are named so (`lodash.zip`), and npm reads a spec as a file only by
/// the endings here; pip's reading of `x.zip` finds no such file in the install's directory.
const ARCHIVES: [&str; 7] = [
    ".tgz", ".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".whl", ".gem",
];

/// Checks one dependency spec: 1 to [`MAX_SPEC_LEN`] bytes of letters, digits and
/// `. _ - = < > ! ~ @ + ^ * , [ ] :`, starting with a letter, a digit or `@`; a `/` only in an
/// npm scope (`@scope/name`); a `:` only between a name and a version, and only where
/// `name_colon_version` (gem's `rake:13.0.6`): elsewhere it makes a URL or another source of
/// the installer's (npm's `x@http:host:9`, `file:..`, `gist:id`, pip's URLs), which fetch
/// what no registry serves.
pub fn check_spec(spec: &str, name_colon_version: bool) -> Result<(), DependencyError> {
    let bad = |why: &'static str| {
        Err(DependencyError::Spec {
            spec: spec.to_owned(),
            why,
        })
    };
    if spec.is_empty() || spec.len() > MAX_SPEC_LEN {
        return bad("a spec is 1 to 200 bytes");
    }
    if spec.starts_with('-') {
        return bad("installer options are not allowed");
    }
    if !spec.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '@') {
        return bad("a spec starts with a package name");
    }
    if let Some(c) = spec
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-=<>!~@+^*,[]:/".contains(*c)))
    {
        return if c.is_whitespace() {
            bad("a spec has no spaces")
        } else {
            bad("a spec has only letters, digits and . _ - = < > ! ~ @ + ^ * , [ ] :")
        };
    }
    let scoped = spec.starts_with('@') && spec.matches('/').count() == 1;
    if spec.contains('/') && !scoped || spec.contains("//") {
        return bad("a spec names a package, not a path or URL");
    }
    // What installers read as a file of the install's directory: an archive's name (pip's
    // `x.tar.gz`, npm's `x@x.tgz`), a version that starts as a path (npm's `x@.`, `x@..`), a
    // scope with no package (`@a/`).
    let lower = spec.to_ascii_lowercase();
    if ARCHIVES.iter().any(|archive| lower.ends_with(archive)) {
        return bad("a spec names a package, not an archive file");
    }
    let unscoped = spec.strip_prefix('@').unwrap_or(spec);
    let version_is_a_path = unscoped
        .split_once('@')
        .is_some_and(|(_, version)| version.starts_with('.'));
    let scope_without_package = scoped
        && unscoped
            .split_once('/')
            .is_some_and(|(_, package)| package.is_empty() || package.starts_with(['.', '@']));
    if version_is_a_path || scope_without_package {
        return bad("a spec names a package, not a path or URL");
    }
    if let Some((name, version)) = spec.split_once(':') {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        let versionish = version.starts_with(|c: char| c.is_ascii_digit() || "<>=~!".contains(c))
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".<>=~!,".contains(c));
        if !(name_colon_version && plain && versionish) {
            return bad("a spec names a package, not a URL or another source (a `:` is only gem's name:version)");
        }
    }
    Ok(())
}

/// The request's dependency specs made ready for an installer and a cache key: each checked
/// ([`check_spec`], `name_colon_version` as the installer takes it), sorted, duplicates
/// removed, at most [`MAX_DEPENDENCIES`].
pub fn normalise(
    specs: &[String],
    name_colon_version: bool,
) -> Result<Vec<String>, DependencyError> {
    if specs.len() > MAX_DEPENDENCIES {
        return Err(DependencyError::TooMany {
            count: specs.len(),
            max: MAX_DEPENDENCIES,
        });
    }
    for spec in specs {
        check_spec(spec, name_colon_version)?;
    }
    let mut out = specs.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Dependencies a request cannot have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependencyError {
    /// A spec is malformed.
    #[error("dependency {spec:?}: {why}")]
    Spec {
        /// The spec given.
        spec: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Too many specs.
    #[error("{count} dependencies: at most {max}")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A manifest file cannot be read.
    #[error("{file}{}: {problem}", if *line > 0 { format!(":{line}") } else { String::new() })]
    Manifest {
        /// The manifest's file name.
        file: &'static str,
        /// The line (from 1), or 0 for the whole file.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The language declares no installer.
    #[error("{language} has no dependency installer (its language file has no [dependencies])")]
    Unsupported {
        /// The language id.
        language: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_specs_are_accepted() {
        for spec in [
            "six",
            "six==1.16.0",
            "requests[socks]>=2,<3",
            "is-number@7.0.0",
            "@types/node@^20",
            "rake:13.0.6",
            "Django~=4.2",
        ] {
            assert_eq!(check_spec(spec, true), Ok(()), "{spec}");
        }
    }

    #[test]
    fn options_paths_urls_and_shell_text_are_refused() {
        for (spec, why) in [
            ("-r /etc/passwd", "options"),
            ("--index-url=x", "options"),
            ("a;b", "only letters"),
            ("a b", "no spaces"),
            ("$(id)", "starts with a package name"),
            ("a`id`", "only letters"),
            ("/etc/passwd", "starts with a package name"),
            ("./local", "starts with a package name"),
            ("git+https://host/x", "not a path or URL"),
            ("a/b", "not a path or URL"),
            ("@scope/a/b", "not a path or URL"),
            ("", "1 to 200"),
        ] {
            let err = check_spec(spec, true).expect_err(spec).to_string();
            assert!(err.contains(why), "{spec}: {err}");
        }
        assert!(check_spec(&"a".repeat(MAX_SPEC_LEN + 1), true).is_err());
        // Bug hunt: npm fetched URLs, directories and gists named this way.
        for spec in [
            "x@http:127.0.0.1:9",
            "x@gist:abc",
            "x@file:..",
            "x@npm:y@1",
            "http:127.0.0.1:9",
            "gist:abc",
            "file:.",
            "git:1.0:x",
        ] {
            let err = check_spec(spec, true).expect_err(spec).to_string();
            assert!(err.contains("not a URL or another source"), "{spec}: {err}");
        }
        assert!(
            check_spec("rake:13.0.6", false).is_err(),
            "only gem's installer"
        );
        assert_eq!(check_spec("rake:~>13.0", true), Ok(()));
        // Bug hunt "deps": archives and paths of the install's directory reached the
        // installers (npm opened `/work/foo.tgz`, pip `/work/x.tar.gz`).
        for spec in ["x@foo.tgz", "x.tar.gz", "X.WHL", "x-1.0.gem", "x.tar"] {
            let err = check_spec(spec, true).expect_err(spec).to_string();
            assert!(err.contains("not an archive file"), "{spec}: {err}");
        }
        for spec in ["x@.", "x@..", "x@./y", "@a/", "@a/.x", "@a/@b"] {
            let err = check_spec(spec, true).expect_err(spec).to_string();
            assert!(err.contains("not a path or URL"), "{spec}: {err}");
        }
        // Bug hunt "regr2": npm's `lodash.zip` is a package.
        for spec in [
            "x@1.0.0",
            "@a/b@2",
            "zipp",
            "tarfile-ext==1.0",
            "x@latest",
            "lodash.zip",
            "@types/lodash.zip",
        ] {
            assert_eq!(check_spec(spec, true), Ok(()), "{spec}");
        }
    }

    #[test]
    fn normalising_sorts_dedups_and_bounds() {
        let specs = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            normalise(&specs(&["six", "attrs", "six"]), false),
            Ok(specs(&["attrs", "six"]))
        );
        let many: Vec<String> = (0..=MAX_DEPENDENCIES).map(|i| format!("p{i}")).collect();
        assert!(matches!(
            normalise(&many, false),
            Err(DependencyError::TooMany { .. })
        ));
    }

    #[test]
    fn requirements_txt_reads_specs_and_refuses_options() {
        let text = "# pinned\nsix==1.16.0  # inline\n\nrequests >= 2.0\n";
        assert_eq!(
            Manifest::RequirementsTxt.parse(text),
            Ok(vec!["six==1.16.0".to_owned(), "requests>=2.0".to_owned()])
        );
        let err = Manifest::RequirementsTxt
            .parse("six\n-r other.txt\n")
            .expect_err("an option line");
        assert_eq!(
            err.to_string(),
            "requirements.txt:2: installer options are not allowed"
        );
        assert!(Manifest::RequirementsTxt.parse("a;b\n").is_err());
        // Hunt deps 3: the words of a line were joined, `foo bar` installed as `foobar`.
        for line in ["foo bar\n", "foo[x] bar\n", "six == 1 6\n"] {
            let err = Manifest::RequirementsTxt.parse(line).expect_err(line);
            assert!(err.to_string().contains("a blank inside"), "{line}: {err}");
        }
        assert_eq!(
            Manifest::RequirementsTxt.parse("foo [x] >= 1 , < 2\n"),
            Ok(vec!["foo[x]>=1,<2".to_owned()])
        );
        assert!(Manifest::Gemfile.parse("gem \"foo bar\"\n").is_err());
        assert!(Manifest::Gemfile
            .parse("gem \"foo bar\", \"1.0\"\n")
            .is_err());
    }

    #[test]
    fn package_json_reads_its_dependencies_object() {
        let text = r#"{"name": "x", "type": "module", "main": "index.js",
                       "dependencies": {"is-number": "7.0.0", "@a/b": "^1"}}"#;
        assert_eq!(
            Manifest::PackageJson.parse(text),
            Ok(vec!["@a/b@^1".to_owned(), "is-number@7.0.0".to_owned()])
        );
        assert_eq!(Manifest::PackageJson.parse("{}"), Ok(Vec::new()));
        assert!(Manifest::PackageJson
            .parse("{\"dependencies\": [1]}")
            .is_err());
        assert!(Manifest::PackageJson
            .parse(r#"{"dependencies": {"x": "file:/etc"}}"#)
            .is_err());
    }

    /// Hunt deps: `devDependencies`, `scripts` and the other keys npm installs or runs from
    /// were accepted and silently not installed (or not run), though the docs say a manifest is
    /// read strictly; a non-string version is refused, and so is a manifest that is no object.
    #[test]
    fn package_json_refuses_what_npm_would_install_or_run_besides_dependencies() {
        for key in PACKAGE_JSON_REFUSED {
            let text = format!(r#"{{"dependencies": {{"a": "1"}}, "{key}": {{"b": "2"}}}}"#);
            let err = Manifest::PackageJson.parse(&text).expect_err(key);
            assert!(
                err.to_string()
                    .starts_with(&format!("package.json: \"{key}\" is refused")),
                "{key}: {err}"
            );
        }
        let err = Manifest::PackageJson
            .parse(r#"{"scripts": {"preinstall": "id"}}"#)
            .expect_err("scripts");
        assert!(err.to_string().contains("no script"), "{err}");
        for text in [
            r#"{"dependencies": {"x": [1]}}"#,
            r#"{"dependencies": {"x": 1}}"#,
            r#"{"dependencies": {"x": null}}"#,
            r#"{"dependencies": null}"#,
            "[]",
            "\"x\"",
        ] {
            assert!(Manifest::PackageJson.parse(text).is_err(), "{text}");
        }
    }

    /// Hunt deps: each spelling of one pip requirement (`Six==1.16.0`, `six==1.16`) had a cache
    /// key of its own, so the same set was installed and stored again for each.
    #[test]
    fn a_cache_key_takes_one_spelling_of_what_pip_reads_as_one_request() {
        let pip = |spec: &str| Manifest::RequirementsTxt.cache_spelling(spec);
        for (a, b) in [
            ("six==1.16.0", "Six==1.16"),
            ("six==1.0", "six==1.0.0"),
            ("six==1", "six==01.0.00"),
            ("zope.interface", "Zope_Interface"),
            ("a-b", "A__b"),
            ("requests[socks]>=2,<3", "Requests[socks]<3,>=2.0"),
            ("x!=1.0,<=2", "x<=2.0.0,!=1"),
        ] {
            assert_eq!(pip(a), pip(b), "{a} and {b}");
        }
        for (a, b) in [
            ("six==1.0", "six===1.0"),
            ("six==1.*", "six==1.0.*"),
            ("six~=1.0", "six~=1.0.0"),
            ("six==1.0", "six==1.0rc1"),
            ("six==1.0", "six==1.0.1"),
            ("six>1.0", "six>=1.0"),
            ("six[a]", "six[b]"),
            ("six", "sixx"),
        ] {
            assert_ne!(pip(a), pip(b), "{a} and {b}");
        }
        assert_eq!(pip("six==1.0+local"), "six==1.0+local");
        assert_eq!(pip("Six~=1.0.0"), "six~=1.0.0");
        let npm = |spec: &str| Manifest::PackageJson.cache_spelling(spec);
        assert_ne!(npm("JSONStream@1.0.0"), npm("jsonstream@1.0.0"));
        assert_ne!(npm("x@1.0"), npm("x@1.0.0"));
        let gem = |spec: &str| Manifest::Gemfile.cache_spelling(spec);
        assert_ne!(gem("rake:13.0"), gem("rake:13.0.0"));
    }

    #[test]
    fn gemfile_reads_gem_lines_only() {
        let text = "source \"https://gems.example\"\n# c\ngem \"rake\", \"13.0.6\"\ngem 'json'\n";
        assert_eq!(
            Manifest::Gemfile.parse(text),
            Ok(vec!["rake:13.0.6".to_owned(), "json".to_owned()])
        );
        let err = Manifest::Gemfile
            .parse("gem \"a\"\nsystem(\"id\")\n")
            .expect_err("not a gem line");
        assert!(err.to_string().starts_with("Gemfile:2: "), "{err}");
        assert!(Manifest::Gemfile.parse("gem \"a\", git: \"x\"\n").is_err());
    }

    #[test]
    fn an_installer_needs_its_placeholders() {
        let installer = |argv: &[&str]| Installer {
            argv: argv.iter().map(|a| (*a).to_owned()).collect(),
            install_env: BTreeMap::new(),
            env: BTreeMap::new(),
            manifest: None,
            limits: LimitOverrides::default(),
            index_args: vec![
                "--index-url".into(),
                "{index}".into(),
                "--trusted-host".into(),
                "{index_host}".into(),
            ],
        };
        let good = installer(&["/usr/bin/pip", "--target", "{deps}", "{packages}"]);
        assert_eq!(good.problem(), None);
        assert_eq!(
            good.command("/d", &["a".into(), "b".into()], None),
            ["/usr/bin/pip", "--target", "/d", "a", "b"]
        );
        assert_eq!(
            good.command("/d", &["a".into()], Some("http://127.0.0.1:8080/simple/")),
            [
                "/usr/bin/pip",
                "--target",
                "/d",
                "--index-url",
                "http://127.0.0.1:8080/simple/",
                "--trusted-host",
                "127.0.0.1",
                "a"
            ]
        );
        let misplaced = installer(&[
            "/usr/bin/pip",
            "--index-url={index}",
            "{deps}",
            "{packages}",
        ]);
        assert!(misplaced.problem().is_some());
        for argv in [
            &["pip", "{deps}", "{packages}"][..],
            &["/usr/bin/pip", "{packages}"],
            &["/usr/bin/pip", "{deps}"],
            &["/usr/bin/pip", "{deps}", "x{packages}"],
            &["/usr/bin/pip", "{deps}", "{packages}", "{source}"],
        ] {
            assert!(installer(argv).problem().is_some(), "{argv:?}");
        }
    }
}
