//! Real package downloads under `limited_access` (issue 10): npm and pip, run by a program in
//! the native sandbox, reach the registries this host's own package managers are configured to
//! use, through warden's proxy, and nothing else. The registries are whatever `warden network
//! registries` discovers on this host (CI's machine reaches them); no registry's name is written
//! here. Needs root, npm and pip (scripts/setup.sh installs them).

mod support;

use serde_json::Value;
use support::World;

/// `warden run --network limited_access --json` on a bash script; the result.
fn run(world: &World, script: &str) -> Value {
    let path = world.path().join("install.sh");
    std::fs::write(&path, script).expect("script written");
    let out = world
        .warden()
        .env("PATH", "/usr/bin:/bin")
        .args(["run", "--json", "--network", "limited_access"])
        .args([
            "--wall-time",
            "120s",
            "--cpu-time",
            "60s",
            "--memory",
            "1GiB",
        ])
        .args(["--max-procs", "256", "--workspace-size", "512MiB"])
        .arg(&path)
        .output()
        .expect("warden runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The registries `warden network registries` finds, as (host, source).
fn registries(world: &World) -> Vec<(String, String)> {
    let out = world
        .warden()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/root")
        .args(["network", "registries", "--json"])
        .output()
        .expect("warden runs");
    let found: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    found
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap_or_default().to_owned(),
                r["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn every_attempt_was_a_registry(result: &Value) {
    let connections = result["network"]["connections"]
        .as_array()
        .expect("connections logged");
    assert!(!connections.is_empty(), "{result:#}");
    for c in connections {
        assert_eq!(c["allowed"], true, "{c:#}");
        assert!(
            c["rule"].as_str().unwrap_or("").starts_with("registry "),
            "{c:#}"
        );
    }
}

#[test]
fn npm_downloads_a_package_from_the_hosts_registry() {
    let world = World::new();
    let result = run(
        &world,
        "export HOME=/tmp npm_config_cache=/tmp/npm-cache npm_config_update_notifier=false\n\
         cd /tmp && npm pack --silent is-number@7.0.0 && tar -xzOf is-number-7.0.0.tgz package/package.json | grep -c '\"name\": \"is-number\"'\n",
    );
    assert_eq!(result["outcome"]["kind"], "exited", "{result:#}");
    assert_eq!(result["outcome"]["code"], 0, "{result:#}");
    assert!(
        result["stdout"].as_str().unwrap_or("").ends_with("1\n"),
        "{result:#}"
    );
    every_attempt_was_a_registry(&result);
}

#[test]
fn pip_downloads_a_package_once_the_operator_admits_its_file_host() {
    let world = World::new();
    let pip = registries(&world)
        .into_iter()
        .find(|(_, source)| source.starts_with("pip"))
        .map(|(host, _)| host)
        .expect("pip's index is discovered on this host");
    // The index links its files on another host, which discovery cannot know: like an
    // operator, ask the index (through the policy) and admit that host.
    let page = run(
        &world,
        &format!(
            "/usr/bin/python3 -c \"import re, urllib.request; \
             page = urllib.request.urlopen('https://{pip}/simple/six/', timeout=30).read().decode(); \
             print(re.search(r'href=.https://([^/]+)/', page).group(1))\"\n"
        ),
    );
    assert_eq!(page["outcome"]["code"], 0, "{page:#}");
    let files = page["stdout"].as_str().unwrap_or("").trim().to_owned();
    assert!(!files.is_empty(), "{page:#}");
    world.write_config(&format!("[network]\nregistries = [\"https://{files}\"]\n"));
    let result = run(
        &world,
        "export HOME=/tmp\n\
         /usr/bin/python3 -m pip download --quiet --no-cache-dir --disable-pip-version-check \
         --no-deps -d /tmp/d six==1.16.0 && ls /tmp/d\n",
    );
    assert_eq!(result["outcome"]["code"], 0, "{result:#}");
    assert_eq!(
        result["stdout"], "six-1.16.0-py2.py3-none-any.whl\n",
        "{result:#}"
    );
    every_attempt_was_a_registry(&result);
}
