//! The files an operator names (configuration, language overrides, network policies, tool
//! definitions) and a tool call's input are read with a bound (hunt cli 1:
//! `WARDEN_CONFIG=/dev/zero warden languages` grew until the host's OOM killer ran). Every
//! command here runs under `ulimit -v`, so that a regression fails the test instead of
//! taking the machine's memory.

mod support;

use std::process::{Command, Output, Stdio};

use support::World;

/// The address space each command may use: warden needs far less, an unbounded read of
/// `/dev/zero` reaches it within a second.
const ADDRESS_SPACE_KIB: u32 = 2_000_000;

/// `command` run under `ulimit -v`, its stdin from `stdin` (a path).
fn bounded(command: &Command, stdin: &str) -> Output {
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\" < {stdin}"
        ))
        .arg(command.get_program())
        .args(command.get_args())
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            sh.env(key, value);
        }
    }
    sh.output().expect("sh runs")
}

/// The command's exit status and stderr, asserting it failed with `says` in its message.
fn refused(out: &Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(says), "expected {says:?}: {stderr}");
    assert!(!stderr.contains("out of memory"), "{stderr}");
    assert_ne!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn a_configuration_that_is_a_device_or_too_large_is_refused_with_the_bound() {
    let world = World::new();
    let mut languages = world.warden();
    languages.arg("languages").env("WARDEN_CONFIG", "/dev/zero");
    let out = bounded(&languages, "/dev/null");
    refused(&out, "reading /dev/zero: not a regular file (a device)");
    assert_eq!(out.status.code(), Some(125));

    // A regular file larger than the bound (sparse: no disk taken).
    let huge = world.path().join("huge.toml");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(64 << 20))
        .expect("a sparse file");
    languages.env("WARDEN_CONFIG", &huge);
    let out = bounded(&languages, "/dev/null");
    refused(&out, "larger than 4MiB, the most warden reads of it");
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn a_language_override_linking_to_a_device_is_refused() {
    let world = World::new();
    let dir = world.path().join("languages");
    std::fs::create_dir(&dir).expect("languages/");
    std::os::unix::fs::symlink("/dev/zero", dir.join("x.toml")).expect("symlink");
    world.write_config(&format!(
        "[languages]\ndir = {:?}\n",
        dir.display().to_string()
    ));
    let mut languages = world.warden();
    languages.arg("languages");
    let out = bounded(&languages, "/dev/null");
    refused(&out, "x.toml: not a regular file (a device)");
}

#[test]
fn a_policy_or_tool_file_that_is_a_device_or_fifo_is_refused_at_once() {
    let world = World::new();
    let fifo = world.path().join("policy.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    for file in ["/dev/zero", fifo.to_str().expect("UTF-8 path")] {
        let mut import = world.warden();
        import.args(["network", "import", file]);
        let out = bounded(&import, "/dev/null");
        refused(&out, &format!("reading {file}: not a regular file"));

        let mut register = world.warden();
        register.args(["tool", "register", file]);
        let out = bounded(&register, "/dev/null");
        refused(&out, &format!("reading {file}: not a regular file"));
    }
}

#[test]
fn a_tool_calls_endless_input_is_refused_with_the_bound() {
    let world = World::new();
    let mut call = world.warden();
    call.args(["tool", "call", "run_code", "--input", "-"]);
    let out = bounded(&call, "/dev/zero");
    refused(
        &out,
        "reading the input from stdin: larger than 4MiB, the most warden reads of it",
    );
}
