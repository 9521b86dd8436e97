//! End to end: the mode chosen from the code's threat level and the configuration, the refusal
//! path, gVisor for `isolated`, `trusted` only when enabled. Root (CI is root); gVisor's runsc is
//! installed by scripts/setup.sh.

mod support;

use std::process::Output;

use serde_json::Value;
use support::World;

/// `warden ARGS` in a world of its own whose configuration file holds `config`.
fn warden(args: &[&str], config: Option<&str>) -> Output {
    let world = World::with_config(config.unwrap_or(""));
    world.warden().args(args).output().expect("warden runs")
}

fn json(args: &[&str], config: Option<&str>) -> Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let out = warden(&all, config);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const BENIGN: &str = "print(sum(range(10)))";
const NATIVE: &str = "import ctypes\nprint(open('/proc/version').read().split()[2])";
const FORK_BOMB: &str = "import os\nwhile True:\n    os.fork()\n";

#[test]
fn auto_runs_benign_code_sandboxed_and_says_why() {
    let result = json(&["-l", "python", "-c", BENIGN], None);
    assert_eq!(result["stdout"], "45\n");
    assert_eq!(result["mode"], "sandboxed");
    let security = &result["security"];
    assert_eq!(security["mode"], "sandboxed");
    assert_eq!(security["threat_level"], "none");
    assert!(
        security["reason"]
            .as_str()
            .is_some_and(|r| r.contains("none")),
        "{security}"
    );
    assert_eq!(security["findings"], serde_json::json!([]));
}

#[test]
fn auto_runs_high_threat_code_under_gvisor_checked_from_inside() {
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("host release");
    let result = json(&["-l", "python", "-c", NATIVE], None);
    assert_eq!(result["mode"], "isolated", "{result}");
    assert_eq!(result["security"]["threat_level"], "high");
    assert!(
        result["security"]["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["severity"] == "high")),
        "{result}"
    );
    let inside = result["stdout"].as_str().expect("stdout").trim();
    assert_eq!(
        inside,
        "4.4.0",
        "gVisor's kernel, not the host's {}",
        host_release.trim()
    );
}

#[test]
fn the_configuration_decides_what_auto_picks() {
    let result = json(
        &["-l", "python", "-c", BENIGN],
        Some("[modes]\nnone = \"isolated\"\nlow = \"isolated\"\nmedium = \"isolated\"\n"),
    );
    assert_eq!(result["mode"], "isolated", "{result}");
    assert_eq!(result["stdout"], "45\n");
}

#[test]
fn critical_code_is_refused_with_its_findings() {
    let out = warden(&["run", "-l", "python", "-c", FORK_BOMB], None);
    assert_eq!(out.status.code(), Some(118));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("critical") && stderr.contains("refused"),
        "{stderr}"
    );
    let result = json(&["-l", "python", "-c", FORK_BOMB], None);
    assert_eq!(result["refused"], true);
    assert_eq!(result["security"]["threat_level"], "critical");
    assert!(result["security"]["findings"]
        .as_array()
        .is_some_and(|f| !f.is_empty()));
}

#[test]
fn a_request_cannot_get_a_weaker_mode_than_the_configuration_allows() {
    let out = warden(
        &["run", "--mode", "sandboxed", "-l", "python", "-c", NATIVE],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(118),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("weaker"));
    let stronger = json(&["--mode", "isolated", "-l", "python", "-c", BENIGN], None);
    assert_eq!(
        stronger["mode"], "isolated",
        "a stronger mode is always allowed"
    );
}

#[test]
fn the_configuration_sets_the_mode_of_a_request_that_names_none() {
    let isolated = "[modes]\ndefault = \"isolated\"\n";
    let result = json(&["-l", "python", "-c", BENIGN], Some(isolated));
    assert_eq!(result["mode"], "isolated", "{result}");
    let reason = result["security"]["reason"].as_str().expect("a reason");
    assert!(reason.contains("isolated"), "{reason}");
    // An explicit --mode still wins, within what the policy allows.
    let result = json(
        &["--mode", "sandboxed", "-l", "python", "-c", BENIGN],
        Some(isolated),
    );
    assert_eq!(result["mode"], "sandboxed", "{result}");
}

#[test]
fn trusted_is_refused_unless_the_operator_enables_it() {
    let out = warden(
        &["run", "--mode", "trusted", "-l", "python", "-c", BENIGN],
        None,
    );
    assert_eq!(out.status.code(), Some(118));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trusted mode is disabled"));
}

#[test]
fn trusted_runs_on_the_host_with_limits_when_enabled() {
    let enabled = "[modes]\ntrusted_enabled = true\nnone = \"trusted\"\nlow = \"trusted\"\nmedium = \"trusted\"\n";
    // No pid namespace: the program sees the host's, and runs as the run's unprivileged uid,
    // which its environment names (bug hunt "modes" 11: it said USER=root).
    let probe = "import os\nprint(os.readlink('/proc/self/ns/pid'), os.getuid(), os.getcwd(), \
                 os.environ['USER'])";
    let host_pid_ns = std::fs::read_link("/proc/self/ns/pid").expect("readlink");
    for args in [
        vec!["--mode", "trusted", "-l", "python", "-c", probe],
        vec!["-l", "python", "-c", probe],
    ] {
        let result = json(&args, Some(enabled));
        assert_eq!(result["mode"], "trusted", "{result}");
        let stdout = result["stdout"].as_str().expect("stdout");
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        assert_eq!(fields[0], host_pid_ns.to_string_lossy(), "{result}");
        assert_ne!(fields[1], "0", "{result}");
        assert!(fields[2].starts_with("/run/warden/trusted/"), "{result}");
        assert_eq!(fields[3], fields[1], "{result}");
    }
    // Limits still hold.
    let result = json(
        &[
            "--mode",
            "trusted",
            "--memory",
            "64MiB",
            "-l",
            "python",
            "-c",
            "b = bytearray(1 << 30)",
        ],
        Some(enabled),
    );
    assert_eq!(result["outcome"]["kind"], "memory_limit", "{result}");
    // A compiled language: the compile stage runs trusted too, and its artifact comes back.
    let c = "#include <stdio.h>\nint main(void) { puts(\"compiled\"); return 0; }\n";
    let result = json(
        &["--mode", "trusted", "--no-cache", "-l", "c", "-c", c],
        Some(enabled),
    );
    assert_eq!(result["stdout"], "compiled\n", "{result}");
}

#[test]
fn run_time_violations_are_recorded_in_the_security_object() {
    let result = json(&["--max-output", "1KiB", "-l", "bash", "-c", "yes"], None);
    let violations = result["security"]["violations"]
        .as_array()
        .expect("violations");
    assert!(
        violations
            .iter()
            .any(|v| v["stage"] == "run" && v["kind"] == "output_limit"),
        "{result}"
    );
}

#[test]
fn a_bad_configuration_is_a_clear_error() {
    let out = warden(
        &["run", "-l", "python", "-c", BENIGN],
        Some("[modes]\nnone = \"yolo\"\n"),
    );
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warden.toml") && stderr.contains("yolo"),
        "{stderr}"
    );
    // Bug hunt "modes" 6: a map under which looking more dangerous gets a weaker mode.
    let out = warden(
        &["run", "-l", "python", "-c", BENIGN],
        Some("[modes]\ncritical = \"sandboxed\"\n"),
    );
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warden.toml:2: [modes] critical: \"sandboxed\" is weaker than high's"),
        "{stderr}"
    );
}

/// Bug hunt "modes" 7: with trusted allowed for level none, `auto` chose trusted for a
/// request with a policy that lets traffic out, then refused the request.
#[test]
fn auto_runs_sandboxed_what_trusted_cannot_hold() {
    let enabled = "[modes]\ntrusted_enabled = true\nnone = \"trusted\"\n";
    let egress = ["--network", "limited_access", "-l", "python", "-c", BENIGN];
    let result = json(&egress, Some(enabled));
    assert_eq!(result["mode"], "sandboxed", "{result}");
    assert_eq!(result["stdout"], "45\n", "{result}");
    let reason = result["security"]["reason"].as_str().expect("a reason");
    assert!(reason.contains("trusted mode cannot hold"), "{reason}");
    // Named, trusted is refused, saying what a trusted run has (bug hunt "modes" 9).
    let out = warden(
        &[&["run", "--mode", "trusted"], &egress[..]].concat(),
        Some(enabled),
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the host's network"), "{stderr}");
}

/// Issue 13: a compiled program sent to gVisor compiles there and runs, with an empty compile
/// cache (the artifact used to be lost: "the compiler did not produce main").
#[test]
fn a_compiled_program_compiles_and_runs_under_gvisor_without_a_cache() {
    let code = "#include <stdio.h>\nint main(void){printf(\"%d\\n\", 6*7);return 0;}\n";
    let result = json(
        &["--no-cache", "--mode", "isolated", "-l", "c", "-c", code],
        None,
    );
    assert_eq!(result["mode"], "isolated", "{result}");
    assert_eq!(result["compile"]["outcome"]["kind"], "exited", "{result}");
    assert_eq!(result["compile"]["cached"], false, "{result}");
    assert_eq!(result["stdout"], "42\n", "{result}");
}

/// Hunt regress 4: a program that tried a raw socket under gVisor (as ping libraries do before
/// falling back) ran to its end, and then the run failed as "sandbox setup failed": runsc's
/// notice about it went into the file warden reads the runtime's crash reports from.
#[test]
fn an_isolated_program_that_tries_a_raw_socket_ends_as_it_ran() {
    let code = "import socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n    print('raw')\nexcept OSError as e:\n    print('refused', e.errno)\n";
    let result = json(&["--mode", "isolated", "-l", "python", "-c", code], None);
    assert_eq!(result["mode"], "isolated", "{result}");
    assert_eq!(result["outcome"]["kind"], "exited", "{result}");
    assert!(
        result["stdout"]
            .as_str()
            .is_some_and(|s| s.starts_with("refused")),
        "{result}"
    );
}
