//! Dependency installation (issue 10): `warden run --dep SPEC` and manifest files install real
//! packages from the registries this host's package managers use, in a sandbox of their own
//! under `limited_access`; the installed set is cached and bound read-only into later runs, and
//! what was not asked for is not there. No registry's name is written here: pip's file host is
//! found through the policy at run time (`World::admit_pip_file_host`). Needs root, pip and npm
//! (scripts/setup.sh installs them). The packages are ones the host's own Python and Node do
//! not have, so that an import proves the installed set.

mod support;

use std::process::Output;

use serde_json::Value;
use support::{json_of, World};

/// `warden run [--json] --dep SPEC... FILES...` in `world`, with `program` written as `name`.
fn run(world: &World, json: bool, deps: &[&str], files: &[(&str, &str)]) -> Output {
    let mut cmd = world.warden();
    cmd.env("PATH", "/usr/bin:/bin")
        .env("HOME", "/root")
        .arg("run");
    if json {
        cmd.arg("--json");
    }
    for dep in deps {
        cmd.arg("--dep").arg(dep);
    }
    for (name, content) in files {
        let path = world.path().join(name);
        std::fs::write(&path, content).expect("file written");
        cmd.arg(path);
    }
    cmd.output().expect("warden runs")
}

fn run_json(world: &World, deps: &[&str], files: &[(&str, &str)]) -> Value {
    json_of(&run(world, true, deps, files))
}

const TABULATE: &str = "import tabulate\nprint(tabulate.__version__)\n";

#[test]
fn a_python_dependency_is_installed_once_then_taken_from_the_cache() {
    let world = World::visible_to_sandboxes();
    world.admit_pip_file_host();
    let first = run_json(&world, &["tabulate==0.9.0"], &[("main.py", TABULATE)]);
    assert_eq!(first["outcome"]["code"], 0, "{first:#}");
    assert_eq!(first["stdout"], "0.9.0\n", "{first:#}");
    assert_eq!(first["dependencies"]["cached"], false, "{first:#}");
    assert_eq!(first["dependencies"]["outcome"]["code"], 0, "{first:#}");

    let second = run_json(&world, &["tabulate==0.9.0"], &[("main.py", TABULATE)]);
    assert_eq!(second["stdout"], "0.9.0\n", "{second:#}");
    assert_eq!(
        second["dependencies"]["cached"], true,
        "the same set installs nothing the second time: {second:#}"
    );

    // The same set named by a requirements file shares the cached set.
    let third = run_json(
        &world,
        &[],
        &[
            ("main.py", TABULATE),
            ("requirements.txt", "# the table printer\ntabulate==0.9.0\n"),
        ],
    );
    assert_eq!(third["stdout"], "0.9.0\n", "{third:#}");
    assert_eq!(third["dependencies"]["cached"], true, "{third:#}");

    // warden never installs what was not asked for: the import fails as it would anywhere.
    let missing = run_json(
        &world,
        &["tabulate==0.9.0"],
        &[("main.py", "import tabulate\nimport termcolor\n")],
    );
    assert_eq!(missing["outcome"]["kind"], "exited", "{missing:#}");
    assert_eq!(missing["outcome"]["code"], 1, "{missing:#}");
    let stderr = missing["stderr"].as_str().unwrap_or_default();
    assert!(
        stderr.contains("ModuleNotFoundError: No module named 'termcolor'"),
        "{missing:#}"
    );
}

#[test]
fn a_package_that_does_not_exist_is_a_dependency_error_with_the_installers_message() {
    let world = World::visible_to_sandboxes();
    let spec = "warden-test-no-such-package-4c1d==1.0";
    let result = run_json(&world, &[spec], &[("main.py", "print('never')\n")]);
    assert_eq!(result["outcome"]["kind"], "dependency_error", "{result:#}");
    assert_eq!(result["stdout"], "", "the program never ran: {result:#}");
    let stderr = result["dependencies"]["stderr"]
        .as_str()
        .unwrap_or_default();
    assert!(
        stderr.contains("No matching distribution found for warden-test-no-such-package-4c1d"),
        "{result:#}"
    );
    assert_eq!(result["dependencies"]["cached"], false);

    let plain = run(&world, false, &[spec], &[("main.py", "print('never')\n")]);
    assert_eq!(plain.status.code(), Some(117), "{plain:?}");
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("No matching distribution found"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("warden: dependency installation failed\n"),
        "{stderr}"
    );
}

#[test]
fn an_npm_dependency_is_required_by_a_javascript_program() {
    let world = World::visible_to_sandboxes();
    let program =
        "const isNumber = require('is-number');\nconsole.log(isNumber(5), isNumber('x'));\n";
    let result = run_json(&world, &["is-number@7.0.0"], &[("main.js", program)]);
    assert_eq!(result["outcome"]["code"], 0, "{result:#}");
    assert_eq!(result["stdout"], "true false\n", "{result:#}");
    assert_eq!(result["dependencies"]["cached"], false, "{result:#}");
    let again = run_json(&world, &["is-number@7.0.0"], &[("main.js", program)]);
    assert_eq!(again["stdout"], "true false\n", "{again:#}");
    assert_eq!(again["dependencies"]["cached"], true, "{again:#}");
}

#[test]
fn installer_options_shell_text_and_languages_without_an_installer_are_refused() {
    let world = World::visible_to_sandboxes();
    for (spec, why) in [
        ("-r /etc/passwd", "installer options are not allowed"),
        (
            "--index-url=https://mirror.invalid/",
            "installer options are not allowed",
        ),
        ("a;b", "a spec has only letters, digits"),
        ("a b", "a spec has no spaces"),
    ] {
        let out = run(&world, false, &[spec], &[("main.py", "print(1)\n")]);
        assert_eq!(out.status.code(), Some(125), "{spec}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{spec}: {stderr}");
        assert!(stderr.contains(spec), "the spec is named: {stderr}");
    }
    let out = run(&world, false, &["six"], &[("main.sh", "echo hi\n")]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash has no dependency installer"),
        "{stderr}"
    );
    let manifest = run(
        &world,
        false,
        &[],
        &[
            ("main.py", "print(1)\n"),
            ("requirements.txt", "-r /etc/passwd\n"),
        ],
    );
    assert_eq!(manifest.status.code(), Some(125), "{manifest:?}");
    let stderr = String::from_utf8_lossy(&manifest.stderr);
    assert!(
        stderr.contains("requirements.txt:1: installer options are not allowed"),
        "{stderr}"
    );
}
