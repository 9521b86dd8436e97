//! Discovery on fixture files: a root standing for `/`, a home directory, an environment. No
//! real package manager runs; the tests of the defaults run small scripts standing for them.

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Writes `text` at `path` under the fixture's directory.
    fn write(&self, path: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(path);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("dirs");
        fs::write(&path, text).expect("write");
        path
    }

    fn view(&self, env: &[(&str, &str)]) -> HostView {
        let mut vars: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.insert("HOME".into(), self.home().display().to_string());
        HostView {
            root: self.root(),
            env: vars,
            run_tools: false,
            answers: None,
        }
    }
}

fn hosts(found: &[Registry]) -> Vec<String> {
    found.iter().map(ToString::to_string).collect()
}

#[test]
fn network_registries_come_from_every_package_managers_files() {
    let f = Fixture::new();
    f.write(
        "root/etc/pip.conf",
        "[global]\nindex-url = https://py.registry.test/simple/\nextra-index-url =\n  \
         https://extra-one.test/simple\n  https://extra-two.test:8443/simple\n",
    );
    f.write(
        "home/.npmrc",
        "; comment\nregistry=https://npm.registry.test/\n@corp:registry=https://corp.pkgs.example/\n\
         //npm.registry.test/:_authToken=secret\n",
    );
    f.write(
        "home/.gemrc",
        "---\n:sources:\n- https://gems.pkgs.example/\n:verbose: true\n",
    );
    f.write(
        "home/.config/go/env",
        "GOPROXY=https://goproxy.pkgs.example,direct\nGOSUMDB=off\n",
    );
    f.write(
        "home/.cargo/config.toml",
        "[source.mirror]\nregistry = \"sparse+https://crates.pkgs.example/index/\" # ours\n\
         [registries.inhouse]\nindex = \"https://inhouse.pkgs.example/git/index\"\n",
    );
    f.write(
        "root/etc/apt/sources.list",
        "# mirrors\ndeb [arch=amd64 signed-by=/k.gpg] http://deb.pkgs.example/debian stable main\n\
         deb-src http://deb.pkgs.example/debian stable main\ndeb cdrom:[Disc 1]/ stable main\n",
    );
    f.write(
        "root/etc/apt/sources.list.d/extra.sources",
        "Types: deb\nURIs: https://apt.pkgs.example/a https://apt2.pkgs.example/b\nSuites: x\n\n\
         Types: deb\nURIs: https://disabled.pkgs.example/\nEnabled: no\n",
    );
    f.write(
        "root/etc/apt/sources.list.d/old.list.disabled",
        "deb http://disabled.pkgs.example/ stable main\n",
    );
    let found = discover(&f.view(&[]));
    assert_eq!(
        hosts(&found),
        [
            "py.registry.test",
            "extra-one.test",
            "extra-two.test:8443",
            "npm.registry.test",
            "corp.pkgs.example",
            "gems.pkgs.example",
            "goproxy.pkgs.example",
            "crates.pkgs.example",
            "inhouse.pkgs.example",
            "deb.pkgs.example",
            "apt.pkgs.example",
            "apt2.pkgs.example",
        ]
    );
    let npm = found
        .iter()
        .find(|r| r.host == "npm.registry.test")
        .expect("npm");
    assert_eq!(
        npm.source,
        format!("npm config ({})", f.home().join(".npmrc").display())
    );
    let apt = found
        .iter()
        .find(|r| r.host == "apt.pkgs.example")
        .expect("apt");
    assert!(apt.source.starts_with("apt sources (") && apt.source.ends_with("extra.sources)"));
}

#[test]
fn network_registries_come_from_the_environment() {
    let f = Fixture::new();
    let view = f.view(&[
        ("PIP_INDEX_URL", "https://pip-env.registry.test/simple"),
        ("PIP_EXTRA_INDEX_URL", "https://a.test/ https://b.test/"),
        ("NPM_CONFIG_REGISTRY", "https://npm-env.registry.test/"),
        ("GOPROXY", "https://goproxy-env.test|off"),
        (
            "GOSUMDB",
            "sum.pkgs.example+abc123 https://sumdb.pkgs.example",
        ),
        (
            "CARGO_REGISTRIES_MINE_INDEX",
            "https://cargo-env.test/index",
        ),
    ]);
    let found = discover(&view);
    let pairs: Vec<(String, String)> = found
        .iter()
        .map(|r| (r.to_string(), r.source.clone()))
        .collect();
    let want = [
        ("pip-env.registry.test", "PIP_INDEX_URL"),
        ("a.test", "PIP_EXTRA_INDEX_URL"),
        ("b.test", "PIP_EXTRA_INDEX_URL"),
        ("npm-env.registry.test", "NPM_CONFIG_REGISTRY"),
        ("goproxy-env.test", "GOPROXY"),
        ("sumdb.pkgs.example", "GOSUMDB"),
        ("cargo-env.test", "CARGO_REGISTRIES_MINE_INDEX"),
    ]
    .map(|(h, s)| (h.to_owned(), s.to_owned()));
    assert_eq!(pairs, want);
}

#[test]
fn network_the_cargo_cache_names_the_default_registry_unless_replaced() {
    let f = Fixture::new();
    f.write(
        "home/.cargo/registry/index/index.registry.test-1949cf8c6b5b557f/config.json",
        "{\"dl\": \"https://dl.registry.test/crates\", \"api\": \"https://api.registry.test\"}",
    );
    let found = discover(&f.view(&[]));
    assert_eq!(
        hosts(&found),
        [
            "index.registry.test",
            "dl.registry.test",
            "api.registry.test"
        ]
    );
    assert!(found[0].source.starts_with("cargo's registry cache ("));
    // Bug hunt: a cache whose config.json spells the index's own host with `:443` listed it
    // twice, portless and on 443.
    f.write(
        "home/.cargo/registry/index/index.registry.test-1949cf8c6b5b557f/config.json",
        "{\"dl\": \"https://index.registry.test:443/dl\", \"api\": \"https://index.registry.test:8443/api\"}",
    );
    let found = discover(&f.view(&[]));
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["index.registry.test", "index.registry.test:8443"]);
    f.write(
        "home/.cargo/config.toml",
        "[source.default]\nreplace-with = \"mirror\"\n[source.mirror]\nregistry = \"https://m.test/\"\n",
    );
    assert_eq!(hosts(&discover(&f.view(&[]))), ["m.test"]);
}

#[test]
fn network_gemrc_sources_read_block_and_flow_lists() {
    assert_eq!(
        gemrc_sources(
            ":sources:\n  - \"https://a.test/\"\n  # c\n  - https://b.test/\n:x: 1\n- no"
        ),
        ["https://a.test/", "https://b.test/"]
    );
    assert_eq!(
        gemrc_sources(":sources: [https://a.test/, 'https://b.test/']"),
        ["https://a.test/", "https://b.test/"]
    );
    assert!(gemrc_sources(":verbose: true\n").is_empty());
}

/// Writes an executable script standing for a package manager.
fn fake_tool(f: &Fixture, name: &str, script: &str) {
    let path = f.write(&format!("bin/{name}"), &format!("#!/bin/sh\n{script}\n"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn network_defaults_are_asked_of_the_tools_only_when_nothing_is_configured() {
    let f = Fixture::new();
    fake_tool(
        &f,
        "npm",
        "[ \"$*\" = 'config get registry' ] && echo 'https://npm-default.test/'",
    );
    fake_tool(
        &f,
        "pip3",
        "echo '  -i, --index-url <url>  Base URL (default'; echo '      https://pip-default.test/simple).'",
    );
    // Bug hunt: pip's default index serves its files from another host, which pip's code
    // names; without it every download was refused.
    fake_tool(
        &f,
        "python3",
        "case \"$2\" in *file_storage_domain*) echo 'files.pip-default.test';; esac",
    );
    fake_tool(
        &f,
        "go",
        "echo 'https://go-default.test,direct'; echo 'sum.go-default.test'",
    );
    fake_tool(
        &f,
        "gem",
        "echo '*** CURRENT SOURCES ***'; echo; echo 'https://gem-default.test/'",
    );
    let path = format!("relative/bin:{}", f.dir.path().join("bin").display());
    let mut view = f.view(&[
        ("PATH", &path),
        ("PIP_EXTRA_INDEX_URL", "https://extra.test/"),
    ]);
    view.run_tools = true;
    let found = discover(&view);
    assert_eq!(
        hosts(&found),
        [
            "extra.test",
            "pip-default.test",
            "files.pip-default.test",
            "npm-default.test",
            "gem-default.test",
            "go-default.test",
            "sum.go-default.test",
        ]
    );
    let npm = found
        .iter()
        .find(|r| r.host == "npm-default.test")
        .expect("npm");
    let tool = f.dir.path().join("bin/npm");
    assert_eq!(
        npm.source,
        format!("npm's default ({} config get registry)", tool.display())
    );
    f.write("home/.npmrc", "registry=https://configured.test/\n");
    let found = discover(&view);
    assert!(found.iter().any(|r| r.host == "configured.test"));
    assert!(
        !found.iter().any(|r| r.host == "npm-default.test"),
        "configured wins"
    );
    view.run_tools = false;
    assert_eq!(hosts(&discover(&view)), ["extra.test", "configured.test"]);
}

#[test]
fn network_a_failing_tool_contributes_nothing() {
    let f = Fixture::new();
    fake_tool(&f, "npm", "echo 'https://wrong.test/'; exit 3");
    let path = f.dir.path().join("bin").display().to_string();
    let mut view = f.view(&[("PATH", &path)]);
    view.run_tools = true;
    assert!(discover(&view).is_empty());
}

#[test]
fn network_tools_answers_are_kept_until_the_tool_changes() {
    let f = Fixture::new();
    let count = f.dir.path().join("asked");
    let script = |host: &str| {
        format!(
            "echo x >> {}; [ \"$*\" = 'config get registry' ] && echo 'https://{host}/'",
            count.display()
        )
    };
    fake_tool(&f, "npm", &script("first.test"));
    let path = f.dir.path().join("bin").display().to_string();
    let mut view = f.view(&[("PATH", &path)]);
    view.run_tools = true;
    view.answers = Some(f.dir.path().join("cache/answers.json"));
    let asked = || fs::read_to_string(&count).map_or(0, |t| t.lines().count());
    assert_eq!(hosts(&discover(&view)), ["first.test"]);
    assert_eq!(hosts(&discover(&view)), ["first.test"]);
    assert_eq!(asked(), 1, "the second discovery used the kept answer");
    // A reinstalled tool (another size) is asked again.
    fake_tool(&f, "npm", &script("second-registry.test"));
    assert_eq!(hosts(&discover(&view)), ["second-registry.test"]);
    assert_eq!(asked(), 2);
}
