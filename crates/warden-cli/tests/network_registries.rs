//! Real package downloads under `limited_access` (issue 10): npm and pip, run by a program in
//! the native sandbox, reach the registries this host's own package managers are configured to
//! use, through warden's proxy, and nothing else. The registries are whatever `warden network
//! registries` discovers on this host (CI's machine reaches them); no registry's name is written
//! here. Needs root, npm and pip (scripts/setup.sh installs them).

mod support;

use serde_json::Value;
use support::World;

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
    let result = world.run_limited(
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
    // The index links its files on another host, which discovery cannot know: like an
    // operator, ask the index (through the policy) and admit that host.
    world.admit_pip_file_host();
    let result = world.run_limited(
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
