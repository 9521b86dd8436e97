//! `warden network` end to end: the built `warden` binary lists, shows, exports, imports,
//! removes and checks network policies, and reports the registries found in a fake home
//! directory. Each test has its own policy directory (`support::World`). Nothing here sends
//! traffic anywhere: `check` only evaluates, and the names it resolves are IP literals or
//! `localhost`.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::World;

fn warden(world: &World, args: &[&str]) -> Output {
    world.warden().args(args).output().expect("warden runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `warden ARGS`, which must succeed, as JSON.
fn json(world: &World, args: &[&str]) -> Value {
    let out = warden(world, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("valid JSON")
}

const MIRROR: &str =
    "name = \"mirror\"\ndescription = \"the internal mirror\"\nlevel = \"custom\"\n\
                      default_action = \"deny\"\nallow_denied = [\"10.1.2.3\"]\n\n\
                      [[rule]]\nprotocol = \"https\"\nhost = \"10.1.2.3\"\nports = 443\n\
                      action = \"allow\"\nreason = \"the internal package mirror\"\n";

fn write(world: &World, name: &str, text: &str) -> String {
    let path = world.path().join(name);
    std::fs::write(&path, text).expect("file written");
    path.display().to_string()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|e| {
            e.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn network_policies_lists_the_builtins_with_their_levels() {
    let world = World::new();
    let out = warden(&world, &["network", "policies"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("NAME"), "{text}");
    for (name, level) in [
        ("no_access", "none"),
        ("limited_access", "limited"),
        ("internet_access", "internet"),
        ("development", "internet"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {text}"));
        assert!(line.contains(level) && line.contains("built-in"), "{line}");
    }
    let rows = json(&world, &["network", "policies", "--json"]);
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["name"], "no_access");
    assert_eq!(rows[0]["default"], true);
    assert!(rows
        .iter()
        .all(|r| r["dangerous"] == false && r["origin"] == "built-in"));
}

#[test]
fn network_show_summarises_a_policy() {
    let world = World::new();
    let out = warden(&world, &["network", "show", "internet_access"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("internet_access (built-in): "), "{text}");
    assert!(text.contains("default action: allow"), "{text}");
    assert!(text.contains("1. deny tcp * port 25 — SMTP"), "{text}");
    assert!(!text.contains("DANGEROUS"), "{text}");
    let shown = json(&world, &["network", "show", "limited_access", "--json"]);
    assert_eq!(shown["registries"], true);
    assert_eq!(shown["limits"]["bandwidth_down"], "8MiB");
    let out = warden(&world, &["network", "show", "nonexistent", "--json"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stdout(&out).contains("\"error\""), "{}", stdout(&out));
}

#[test]
fn network_export_then_import_round_trips_and_rm_removes() {
    let world = World::new();
    let out = warden(&world, &["network", "export", "development"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let exported = stdout(&out);
    let copy = exported.replace("name = \"development\"", "name = \"dev-copy\"");
    let file = write(&world, "copy.toml", &copy);
    let out = warden(&world, &["network", "import", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("imported dev-copy (level internet)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(files_in(&world.policy_dir()), ["dev-copy.toml"]);
    let again = stdout(&warden(&world, &["network", "export", "dev-copy"]));
    assert_eq!(again, copy, "export, import, export gives the same file");
    let rows = json(&world, &["network", "policies", "--json"]);
    let imported = rows
        .as_array()
        .expect("an array")
        .iter()
        .find(|r| r["name"] == "dev-copy")
        .expect("listed");
    assert_eq!(imported["origin"], "imported");
    assert_eq!(imported["allowed"], false, "not in [network] allowed");
    let out = warden(&world, &["network", "rm", "dev-copy"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(files_in(&world.policy_dir()).is_empty());
    let out = warden(&world, &["network", "rm", "no_access"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("built-in policy"), "{}", stderr(&out));
}

#[test]
fn network_a_bad_import_names_the_line_and_changes_nothing() {
    let world = World::new();
    let good = write(&world, "mirror.toml", MIRROR);
    assert_eq!(
        warden(&world, &["network", "import", &good]).status.code(),
        Some(0)
    );
    let before = std::fs::read_to_string(world.policy_dir().join("mirror.toml")).expect("stored");
    let bad = write(
        &world,
        "bad.toml",
        &MIRROR.replace("ports = 443", "ports = \"443-80\""),
    );
    let out = warden(&world, &["network", "import", &bad]);
    assert_eq!(out.status.code(), Some(125));
    let message = stderr(&out);
    assert!(message.contains(&format!("{bad}:10: ")), "{message}");
    assert!(message.contains("reversed"), "{message}");
    let after = std::fs::read_to_string(world.policy_dir().join("mirror.toml")).expect("kept");
    assert_eq!(after, before);
    assert_eq!(files_in(&world.policy_dir()), ["mirror.toml"]);
    let shadow = write(
        &world,
        "shadow.toml",
        &MIRROR.replace("\"mirror\"", "\"no_access\""),
    );
    let out = warden(&world, &["network", "import", &shadow]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("cannot be replaced"),
        "{}",
        stderr(&out)
    );
    let unknown = write(
        &world,
        "unknown.toml",
        &format!("{MIRROR}colour = \"red\"\n"),
    );
    let out = warden(&world, &["network", "import", &unknown]);
    assert!(
        stderr(&out).contains(":13: unknown field `colour`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(files_in(&world.policy_dir()), ["mirror.toml"]);
}

#[test]
fn network_check_denies_the_deny_set_and_explains_why() {
    let world = World::new();
    let report = json(
        &world,
        &[
            "network",
            "check",
            "--policy",
            "internet_access",
            "169.254.169.254:80",
            "--json",
        ],
    );
    assert_eq!(report["action"], "deny");
    assert_eq!(report["resolved"], false);
    let decision = &report["decisions"][0];
    assert_eq!(decision["address"], "169.254.169.254");
    let matched = decision["matched"].as_str().expect("a string");
    assert!(
        matched.starts_with("deny set: 169.254.0.0/16 (link-local"),
        "{matched}"
    );
    assert!(decision["reason"]
        .as_str()
        .expect("a string")
        .contains("metadata"));
    let out = warden(
        &world,
        &[
            "network",
            "check",
            "--policy",
            "internet_access",
            "[::1]:22",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "denied exits 1: {}",
        stdout(&out)
    );
    assert!(stdout(&out).ends_with("denied\n"), "{}", stdout(&out));
    let report = json(
        &world,
        &[
            "network",
            "check",
            "--policy",
            "internet_access",
            "93.184.216.34:25",
            "--json",
        ],
    );
    assert_eq!(report["action"], "deny");
    assert_eq!(report["decisions"][0]["rule"], 1);
    let out = warden(
        &world,
        &[
            "network",
            "check",
            "--policy",
            "internet_access",
            "93.184.216.34:443",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn network_check_resolves_a_name_and_evaluates_each_address() {
    let world = World::new();
    let report = json(
        &world,
        &[
            "network",
            "check",
            "--policy",
            "development",
            "localhost:8080",
            "--json",
        ],
    );
    assert_eq!(report["resolved"], true);
    assert_eq!(report["resolver"]["action"], "allow", "{report}");
    let decisions = report["decisions"].as_array().expect("an array");
    assert!(!decisions.is_empty(), "{report}");
    for d in decisions {
        assert_eq!(d["action"], "deny", "loopback: {report}");
    }
    assert_eq!(report["action"], "deny");
}

/// Regression (bug hunt: `check` allowed `-a.evil.test:80` and `127.1:80` by `default` under
/// a default-allow policy denying `*.evil.test`, as the proxy did): what the rules cannot read
/// as a name is denied as `invalid name`, on the name, and not resolved.
#[test]
fn network_check_denies_a_name_the_rules_cannot_read() {
    let world = World::new();
    let file = write(
        &world,
        "deny_evil.toml",
        "name = \"deny_evil\"\nlevel = \"custom\"\ndefault_action = \"allow\"\n\
         [[rule]]\nhost = \"*.evil.test\"\naction = \"deny\"\nreason = \"evil\"\n",
    );
    let out = warden(&world, &["network", "import", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in [
        "-a.evil.test",
        "a-.evil.test",
        "127.1",
        "0x7f.1",
        "2130706433",
        "017700000001",
    ] {
        let target = format!("{name}:80");
        let check = ["network", "check", "--policy", "deny_evil", "--", &target];
        let report = json(&world, &[&check[..4], &["--json"], &check[4..]].concat());
        assert_eq!(report["action"], "deny", "{report}");
        assert_eq!(report["resolved"], false, "{report}");
        assert_eq!(report["name"]["matched"], "invalid name", "{report}");
        assert_eq!(report["resolver"]["matched"], "invalid name", "{report}");
        let out = warden(&world, &check);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(stdout(&out).contains("invalid name"), "{}", stdout(&out));
    }
}

/// Bug hunt (netlog 5): `check`'s header line wrote the target as given: an ESC reached the
/// terminal, and a name of 100 kB was written whole. It is escaped and cut as the log does.
#[test]
fn network_check_writes_the_target_escaped_and_bounded() {
    let world = World::new();
    let file = write(
        &world,
        "deny_all.toml",
        "name = \"deny_all\"\nlevel = \"custom\"\ndefault_action = \"deny\"\n",
    );
    let out = warden(&world, &["network", "import", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let long = format!("{}:80", "a".repeat(100_000));
    for target in ["a\u{1b}[31mb:80", &long] {
        let out = warden(
            &world,
            &["network", "check", "--policy", "deny_all", "--", target],
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.lines().all(|line| line.len() < 1200), "{}", text.len());
    }
}

#[test]
fn network_check_honours_allow_denied_of_an_imported_policy_only() {
    let world = World::new();
    let file = write(&world, "mirror.toml", MIRROR);
    let out = warden(&world, &["network", "import", &file]);
    assert!(stderr(&out).contains("DANGEROUS"), "{}", stderr(&out));
    let out = warden(&world, &["network", "show", "mirror"]);
    assert!(
        stdout(&out).contains("DANGEROUS:      exempts 10.1.2.3"),
        "{}",
        stdout(&out)
    );
    let check = |target: &str| {
        json(
            &world,
            &[
                "network",
                "check",
                "--policy",
                "mirror",
                "--protocol",
                "https",
                target,
                "--json",
            ],
        )
    };
    assert_eq!(check("10.1.2.3:443")["action"], "allow");
    assert_eq!(check("10.1.2.4:443")["action"], "deny");
    let policies = json(&world, &["network", "policies", "--json"]);
    let mirror = policies
        .as_array()
        .expect("an array")
        .iter()
        .find(|r| r["name"] == "mirror")
        .expect("listed");
    assert_eq!(mirror["dangerous"], true);
}

#[test]
fn network_registries_are_found_in_the_home_directory() {
    let world = World::new();
    let home = world.path().join("home");
    std::fs::create_dir_all(home.join(".config/pip")).expect("dirs");
    std::fs::write(home.join(".npmrc"), "registry=https://npm.registry.test/\n").expect("npmrc");
    std::fs::write(
        home.join(".config/pip/pip.conf"),
        "[global]\nindex-url = https://pkgs.example:8443/simple/\n",
    )
    .expect("pip.conf");
    // No PATH: no package manager is run for its default.
    let out = world
        .warden()
        .env("HOME", &home)
        .args(["network", "registries", "--json"])
        .output()
        .expect("warden runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let found: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let found = found.as_array().expect("an array");
    let entry = |host: &str| {
        found
            .iter()
            .find(|r| r["host"] == host)
            .unwrap_or_else(|| panic!("{host} not found: {found:?}"))
    };
    let npm = entry("npm.registry.test");
    assert_eq!(npm["port"], Value::Null);
    let npmrc = home.join(".npmrc");
    assert_eq!(npm["source"], format!("npm config ({})", npmrc.display()));
    let pip = entry("pkgs.example");
    assert_eq!(pip["port"], 8443);
    assert!(pip["source"]
        .as_str()
        .expect("a string")
        .starts_with("pip config ("));
    world.write_config("[network]\nregistries = [\"extra.pkgs.example\"]\n");
    let text = world
        .warden()
        .env("HOME", &home)
        .args(["network", "registries"])
        .output()
        .expect("warden runs");
    let text = stdout(&text);
    assert!(text.contains("extra.pkgs.example"), "{text}");
    assert!(text.contains("warden.toml [network] registries"), "{text}");
    let report = world
        .warden()
        .env("HOME", &home)
        .args([
            "network",
            "check",
            "--policy",
            "limited_access",
            "--protocol",
            "dns",
        ])
        .args(["npm.registry.test", "--json"])
        .output()
        .expect("warden runs");
    let report: Value = serde_json::from_str(&stdout(&report)).expect("JSON");
    assert_eq!(report["action"], "allow", "{report}");
    let resolver = report["resolver"]["matched"].as_str().expect("a string");
    assert!(
        resolver.starts_with("registry npm.registry.test (from npm config"),
        "{resolver}"
    );
    // Hunt net 2: a registry is admitted over HTTP(S) only, never as raw tcp (decided on the
    // name alone: nothing is resolved).
    let raw = world
        .warden()
        .env("HOME", &home)
        .args(["network", "check", "--policy", "limited_access"])
        .args(["--protocol", "tcp", "npm.registry.test:80"])
        .output()
        .expect("warden runs");
    assert_eq!(raw.status.code(), Some(1), "{}", stderr(&raw));
    assert!(stdout(&raw).ends_with("denied\n"), "{}", stdout(&raw));
}

/// Bug hunt: one unreadable file in the policy directory made `network policies` list
/// nothing. The others are listed, the file is named on stderr, and the command fails.
#[test]
fn a_broken_policy_file_is_named_and_the_others_still_listed() {
    let world = World::new();
    let mirror = write(&world, "mirror.toml", MIRROR);
    let imported = warden(&world, &["network", "import", &mirror]);
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    std::fs::write(world.policy_dir().join("broken.toml"), "name = ").expect("written");
    let out = warden(&world, &["network", "policies"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l.starts_with("mirror ")) && text.contains("no_access"),
        "{text}"
    );
    assert!(stderr(&out).contains("broken.toml"), "{}", stderr(&out));
    let rows = json(&world, &["network", "policies", "--json"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(5), "{rows:#}");
}
