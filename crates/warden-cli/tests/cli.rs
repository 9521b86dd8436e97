//! End to end: the built `warden` binary, real language runtimes, the real sandbox. Runs as
//! root (CI does).

mod support;

use std::process::Output;

use serde_json::{json, Value};
use support::{output_with_stdin, World};
use warden_core::Catalog;

/// `warden ARGS` in a world of its own, `stdin` on a pipe.
fn warden(args: &[&str], stdin: &[u8]) -> Output {
    output_with_stdin(World::new().warden().args(args), stdin)
}

fn json(args: &[&str], stdin: &[u8]) -> Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let out = warden(&all, stdin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 JSON");
    assert_eq!(text.lines().count(), 1, "exactly one JSON object: {text}");
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn every_language_passes_its_smoke_test_in_the_sandbox() {
    let catalog = Catalog::builtin().expect("catalog");
    for lang in catalog.iter() {
        let result = json(
            &["--lang", lang.id.as_str(), "-c", &lang.smoke.code],
            lang.smoke.stdin.as_bytes(),
        );
        assert_eq!(result["outcome"]["kind"], "exited", "{}: {result}", lang.id);
        assert_eq!(result["outcome"]["code"], 0, "{}: {result}", lang.id);
        assert_eq!(
            result["stdout"],
            lang.smoke.stdout.as_str(),
            "{}: {result}",
            lang.id
        );
        assert_eq!(result["language"], lang.id.as_str());
    }
}

/// Program files that do not fit in the workspace are the caller's to fix, and said so (not a
/// failure of warden's sandbox).
#[test]
fn files_larger_than_the_workspace_are_refused_with_the_limit_named() {
    let world = World::new();
    let dir = world.path().join("big");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("main.py"), "print(1)\n").expect("write");
    std::fs::write(dir.join("blob.bin"), vec![0u8; 1 << 20]).expect("write");
    let out = world
        .warden()
        .args(["run", "--workspace-size", "64KiB"])
        .arg(dir.join("main.py"))
        .arg(dir.join("blob.bin"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert_eq!(
        stderr,
        "warden: the program's files (1.0MiB) do not fit its workspace_size (64KiB)\n"
    );
}

/// Output that is not UTF-8 is text with U+FFFD in the JSON, and its exact bytes ride along in
/// base64; UTF-8 output has no such field.
#[test]
fn output_that_is_not_utf8_is_also_given_exactly() {
    use base64::Engine as _;
    let result = json(
        &["-l", "bash", "-c", "printf '\\377\\000ok'; printf 'é' >&2"],
        b"",
    );
    assert_eq!(result["stdout"], "\u{fffd}\u{0}ok", "{result}");
    let exact = result["stdout_base64"].as_str().expect("the exact bytes");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(exact)
        .expect("base64");
    assert_eq!(decoded, b"\xff\x00ok");
    assert_eq!(result["stderr"], "é");
    assert!(result.get("stderr_base64").is_none(), "{result}");
}

#[test]
fn language_is_detected_from_the_file_name_and_stdin_passes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("script.sh");
    std::fs::write(&file, "read x; echo \"got $x\"; exit 4\n").expect("write");
    let out = warden(&["run", file.to_str().expect("utf-8 path")], b"5\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got 5\n");
    assert_eq!(
        out.status.code(),
        Some(4),
        "the program's status is warden's"
    );
}

#[test]
fn program_arguments_follow_the_double_dash() {
    let result = json(
        &[
            "-l",
            "python",
            "-c",
            "import sys; print(sys.argv[1:])",
            "--",
            "a b",
            "c",
        ],
        b"",
    );
    assert_eq!(result["stdout"], "['a b', 'c']\n");
}

#[test]
fn json_has_the_documented_shape() {
    let result = json(
        &[
            "--cpu-time",
            "2s",
            "--wall-time",
            "5s",
            "--memory",
            "256MiB",
            "--max-procs",
            "64",
            "--max-output",
            "1MiB",
            "-l",
            "py",
            "-c",
            "import sys; print('out'); print('err', file=sys.stderr)",
        ],
        b"",
    );
    for key in [
        "id",
        "language",
        "mode",
        "outcome",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "usage",
        "limits",
    ] {
        assert!(result.get(key).is_some(), "missing {key}: {result}");
    }
    assert_eq!(result["mode"], "sandboxed");
    assert_eq!(result["stderr"], "err\n");
    for key in ["cpu_time_ms", "wall_time_ms", "peak_memory_bytes"] {
        assert!(result["usage"][key].is_u64(), "usage.{key}: {result}");
    }
    assert!(result["usage"]["peak_memory_bytes"].as_u64() > Some(0));
    assert_eq!(result["limits"]["cpu_time"], "2s");
    assert_eq!(result["limits"]["memory"], "256MiB");
}

#[test]
fn limits_get_distinct_exit_codes_and_a_one_line_explanation() {
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &[
                "--cpu-time",
                "300ms",
                "-l",
                "sh",
                "-c",
                "while :; do :; done",
            ],
            124,
            "cpu time limit",
        ),
        (
            &["--wall-time", "300ms", "-l", "sh", "-c", "sleep 10"],
            124,
            "wall time limit",
        ),
        (
            &[
                "--memory",
                "32MiB",
                "-l",
                "py",
                "-c",
                "a = bytearray(256 << 20)",
            ],
            123,
            "memory limit",
        ),
        (
            &["--max-output", "1KiB", "-l", "sh", "-c", "yes"],
            122,
            "output limit",
        ),
    ];
    for (args, code, message) in cases {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let out = warden(&all, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// Above the operator's maximum (in range, unlike `1000h` below) is lowered to it, and said.
#[test]
fn a_limit_above_the_maximum_is_lowered_and_named() {
    let out = warden(
        &[
            "run",
            "--json",
            "--memory",
            "1TiB",
            "--max-procs",
            "9999",
            "-l",
            "sh",
            "-c",
            "true",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["limits"]["memory"], "8GiB", "{result}");
    assert_eq!(result["limits"]["max_procs"], 4096, "{result}");
    for named in [
        "memory 1024GiB (maximum 8GiB)",
        "max-procs 9999 (maximum 4096)",
    ] {
        assert!(
            stderr.contains(&format!(
                "warden: warning: limit lowered to the operator's maximum: {named}"
            )),
            "{stderr}"
        );
    }
    // Said before the program's output, once.
    let out = warden(
        &["run", "--memory", "1TiB", "-l", "sh", "-c", "echo mine >&2"],
        b"",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warden: warning: limit lowered to the operator's maximum: memory 1024GiB (maximum \
         8GiB)\nmine\n"
    );
    let within = warden(&["run", "--memory", "1GiB", "-l", "sh", "-c", "true"], b"");
    assert!(
        within.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&within.stderr)
    );
}

#[test]
fn a_signal_exits_128_plus_its_number() {
    let out = warden(&["run", "-l", "sh", "-c", "kill -SEGV $$"], b"");
    assert_eq!(out.status.code(), Some(139));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGSEGV"));
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_125() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["run", "-l", "cobol", "-c", "x"],
            "unknown language \"cobol\"",
        ),
        (&["run", "-c", "just words"], "pass --lang"),
        // Bug hunt (docs, finding 6): `analyze` said what was wrong but not how to settle it.
        (&["analyze", "-c", "just words"], "; pass --lang"),
        (
            &["run", "--memory", "1B", "-l", "py", "-c", "pass"],
            "memory 1B is outside the accepted range",
        ),
        (
            &["run", "--wall-time", "1000h", "-l", "py", "-c", "pass"],
            "wall-time",
        ),
        (
            &["run", "/nonexistent/prog.py"],
            "opening /nonexistent/prog.py",
        ),
    ];
    for (args, message) in cases {
        let out = warden(args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = warden(&["run", "--memory", "lots", "-l", "py", "-c", "pass"], b"");
    assert_eq!(out.status.code(), Some(2), "clap rejects unparsable units");
    assert!(String::from_utf8_lossy(&out.stderr).contains("lots"));
}

/// Bug hunt (docs, finding 10): forgetting `--` gave clap's bare "unexpected argument", or
/// "opening a: No such file" for a program argument, and a size written as two words blamed
/// `--code`. Each now says what was most likely meant.
#[test]
fn a_command_line_missing_its_double_dash_says_where_things_go() {
    let world = World::new();
    let program = world.path().join("prog.py");
    std::fs::write(&program, "print(1)\n").expect("prog.py");
    let program = program.to_str().expect("a UTF-8 path");
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["session", "exec", "abc", "ls"],
            2,
            "tip: the command goes after `--`: `warden session exec ... -- ls ...`",
        ),
        (
            &["tool", "wrap", "n", "sort", "-r"],
            2,
            "tip: the command goes after `--`: `warden tool wrap ... -- sort ...`",
        ),
        (
            &["run", program, "a", "b"],
            125,
            "opening a: No such file or directory (os error 2); the program's arguments go \
             after `--`",
        ),
        (
            &["run", "--memory", "10", "MiB", program],
            125,
            "opening MiB: No such file or directory (os error 2); a limit's value and its unit \
             are one argument (`--memory 10MiB`",
        ),
        (
            &["run", "--memory", "10", "MiB", "-c", "print(1)"],
            2,
            "a size or a duration is one word (`--memory 10MiB`, not `10 MiB`)",
        ),
    ];
    for (args, status, says) in cases {
        let out = world.warden().args(args).output().expect("warden runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Bug hunt (docs, finding 11): `session exec --lang L ID -- CMD` was accepted, `--lang`
/// ignored without a word; it names a `--file` program's language only.
#[test]
fn session_exec_refuses_lang_without_a_file() {
    let out = World::new()
        .warden()
        .args([
            "session", "exec", "--lang", "python", "abc", "--", "echo", "hi",
        ])
        .env("WARDEN_SERVER", "http://127.0.0.1:9")
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'--lang <LANGUAGE>' cannot be used with"),
        "{stderr}"
    );
}

/// Bug hunt (docs, finding 13): a bare `warden run` named only `<FILE>...` (not `-c`), a
/// bare `warden batch` not `--requests`, and `session exec ID` with neither a command nor
/// `--file` exited 125 where every other missing argument exits 2.
#[test]
fn a_command_given_no_program_names_every_way_to_give_one() {
    let cases: [(&[&str], &str); 3] = [
        (&["run"], "tip: give the program as FILE... or as -c CODE"),
        (
            &["batch"],
            "tip: give the program as FILE... or as --requests PATH",
        ),
        (
            &["session", "exec", "abc"],
            "tip: give the program as a command after `--` or as --file PROGRAM",
        ),
    ];
    for (args, says) in cases {
        let out = World::new()
            .warden()
            .args(args)
            .env("WARDEN_SERVER", "http://127.0.0.1:9")
            .output()
            .expect("warden runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Bug hunt (docs, finding 13): a range was `10ms..=86400s`, where cli.md's table says
/// `10ms – 24h`.
#[test]
fn a_limit_out_of_range_is_refused_with_the_range_the_docs_give() {
    let out = warden(&["run", "--cpu-time", "5ms", "-l", "py", "-c", "pass"], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert_eq!(
        stderr,
        "warden: cpu-time 5ms is outside the accepted range 10ms – 24h\n"
    );
}

/// Bug hunt: `warden run prog.c main` ran, and the program found its own binary where the file
/// `main` was (the compiled program replaced it); `Main.java classes` failed as a compile error
/// (javac's `not a directory: /work/classes`). Both are refused, naming the file, before
/// anything runs.
#[test]
fn a_file_named_as_the_compiled_program_is_refused_before_anything_runs() {
    let world = World::new();
    let dir = world.path();
    std::fs::write(dir.join("prog.c"), "int main(void) { return 0; }\n").expect("prog.c");
    std::fs::write(dir.join("main"), "the program's data\n").expect("main");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("classes")).expect("tree/classes");
    let java = "class Main { public static void main(String[] a) {} }\n";
    std::fs::write(tree.join("Main.java"), java).expect("Main.java");
    std::fs::write(tree.join("classes/Util.class"), "").expect("classes/Util.class");
    let prog = dir.join("prog.c");
    let main = dir.join("main");
    let c: [&std::ffi::OsStr; 3] = ["run".as_ref(), prog.as_os_str(), main.as_os_str()];
    let java: [&std::ffi::OsStr; 4] = [
        "run".as_ref(),
        "--entry".as_ref(),
        "Main.java".as_ref(),
        tree.as_os_str(),
    ];
    for (args, says) in [
        (
            &c[..],
            "warden: invalid program files: \"main\" is a name warden reserves: c's compiler \
             writes the program to \"main\" in the workspace; give the file another name",
        ),
        (
            &java[..],
            "warden: invalid program files: \"classes/Util.class\" is a name warden reserves: \
             java's compiler writes the program to \"classes\"",
        ),
    ] {
        let out = world.warden().args(args).output().expect("warden runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let history = world
        .warden()
        .args(["history", "--json"])
        .output()
        .expect("warden history runs");
    let history: Value = serde_json::from_slice(&history.stdout).expect("JSON");
    assert_eq!(history, json!([]), "nothing ran");
}

/// Bug hunt: with a configuration error, `warden languages` listed every language as MISSING,
/// the error as each one's reason, and exited 0.
#[test]
fn a_configuration_error_fails_warden_languages() {
    let world = World::new();
    for args in [&["languages"][..], &["languages", "--json"]] {
        let out = world
            .warden()
            .args(args)
            .env("WARDEN_CONFIG", "/nonexistent/warden.toml")
            .output()
            .expect("warden runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {stderr}");
        assert!(stderr.contains("/nonexistent/warden.toml"), "{stderr}");
        assert!(out.stdout.is_empty(), "no listing");
    }
    world.write_config("[server]\nworkers = 0\n");
    let out = world
        .warden()
        .arg("languages")
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("[server] workers"), "{stderr}");
}

/// Bug hunt: a mistake in a language file of `[languages] dir` was reported without the file's
/// path or line (`c.toml: unknown field ...`), unlike the configuration's own.
#[test]
fn a_language_files_mistake_names_its_path_and_line() {
    let world = World::new();
    let dir = world.path().join("languages");
    std::fs::create_dir(&dir).expect("languages/");
    world.write_config(&format!(
        "[languages]\ndir = {:?}\n",
        dir.display().to_string()
    ));
    let toy = "id = \"toy\"\nname = \"Toy\"\nsource_file = \"m\"\nversion = [\"/t\"]\ncolour = 1\n\
               [run]\nargv = [\"/t\"]\n[smoke]\ncode = \"\"\nstdout = \"t\"\n";
    std::fs::write(dir.join("toy.toml"), toy).expect("toy.toml");
    let out = world
        .warden()
        .arg("languages")
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    let says = format!(
        "warden: loading the language catalog: {}:5: unknown field `colour`",
        dir.join("toy.toml").display()
    );
    assert!(stderr.starts_with(&says), "{stderr}");
}

/// Bug hunt: a `WARDEN_LOG` that is no filter was ignored without a word.
#[test]
fn a_bad_warden_log_is_one_warning_and_the_command_goes_on() {
    let world = World::new();
    let file = world.path().join("t.py");
    std::fs::write(&file, "import sys\n").expect("t.py");
    let out = world
        .warden()
        .arg("detect")
        .arg(&file)
        .env("WARDEN_LOG", "nonsense=foo[")
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("python"));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("warden: warning: WARDEN_LOG=\"nonsense=foo[\" is ignored: ")
            && stderr
                .trim_end()
                .ends_with("logging at the default level (warn)"),
        "{stderr}"
    );
}

/// Hunt cli 5: log lines written to a pipe (a log file, journald) carried ANSI colour codes.
#[test]
fn log_lines_to_a_pipe_have_no_colour_codes() {
    let world = World::new();
    // A new history database logs its migrations at `info`.
    let out = world
        .warden()
        .arg("history")
        .env("WARDEN_LOG", "info")
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("INFO migrating the history database"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

/// Bug hunt (docs, finding 2): cli.md says `WARDEN_LOG=debug` shows each step, but an
/// ordinary run logged nothing at debug. Its steps are logged; the program's output is not.
#[test]
fn warden_log_debug_shows_the_steps_of_a_run() {
    let world = World::new();
    let file = world.path().join("t.py");
    std::fs::write(&file, "print('secret output')\n").expect("t.py");
    let out = world
        .warden()
        .arg("run")
        .arg(&file)
        .env("WARDEN_LOG", "debug")
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for step in [
        "language resolved",
        "analysed",
        "mode chosen",
        "limits",
        "sandbox planned",
        "job ended",
        "execution ended",
    ] {
        assert!(stderr.contains(step), "no {step:?} in: {stderr}");
    }
    assert!(!stderr.contains("secret output"), "{stderr}");
}

#[test]
fn json_errors_are_json_too() {
    let out = warden(&["run", "--json", "-l", "cobol", "-c", "x"], b"");
    assert_eq!(out.status.code(), Some(125));
    let value: Value = serde_json::from_slice(&out.stdout).expect("JSON error object");
    assert!(
        value["error"].as_str().is_some_and(|e| e.contains("cobol")),
        "{value}"
    );
}

/// A setting refused at load (here a history variable and a `[maxima]` out of range) is a
/// failure of `warden doctor`, named.
#[test]
fn doctor_reports_a_configuration_error_as_a_failure() {
    let world = World::with_config("[maxima]\nmemory = \"1MiB\"\n");
    let out = world
        .warden()
        .args(["doctor", "--json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    let detail = report["sandbox_check"]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("[maxima] memory"), "{report}");
    world.write_config("");
    let out = world
        .warden()
        .args(["doctor", "--json"])
        .env("WARDEN_HISTORY_MAX_COUNT", "0")
        .output()
        .expect("runs");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    let detail = report["sandbox_check"]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("WARDEN_HISTORY_MAX_COUNT"), "{report}");
}

/// Hunt esc F5: with a piped `kernel.core_pattern` (systemd-coredump, apport) every crash in
/// a sandbox starts the host's handler as root outside the run's cgroup, which `RLIMIT_CORE =
/// 0` does not stop; doctor warns. The pattern is a fixture bound over the file in a mount
/// namespace of the test's own: the machine's setting is never changed. (There the sandbox
/// check fails: a covered `/proc` file makes `/proc` not fully visible, which a new proc mount
/// in a user namespace needs; `doctor_reports_every_feature_and_a_working_sandbox` shows on
/// the host's own pattern that a warning fails nothing.)
#[test]
fn doctor_warns_of_a_piped_core_pattern() {
    let world = World::new();
    let fixture = world.path().join("core_pattern");
    let doctor = |pattern: &str| -> Value {
        std::fs::write(&fixture, pattern).expect("fixture written");
        let warden = world.warden();
        let out = std::process::Command::new("/usr/bin/unshare")
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg("mount --bind \"$1\" /proc/sys/kernel/core_pattern && shift && exec \"$@\"")
            .arg("sh")
            .arg(&fixture)
            .arg(warden.get_program())
            .args(["doctor", "--json"])
            .env_clear()
            .envs(world.env())
            .output()
            .expect("unshare runs");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        })
    };
    let piped = doctor("|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h\n");
    let warnings = piped["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{piped:#}");
    assert_eq!(warnings[0]["name"], "core dumps");
    let detail = warnings[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("/usr/lib/systemd/systemd-coredump"),
        "{detail}"
    );
    let file = doctor("core\n");
    assert_eq!(file["warnings"], json!([]), "{file:#}");
}

#[test]
fn doctor_reports_every_feature_and_a_working_sandbox() {
    let out = warden(&["doctor", "--json"], b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ok"], true);
    assert_eq!(report["sandbox_check"]["ok"], true);
    // A warning of the host's core pattern, if it pipes, fails nothing.
    let piped = std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .is_ok_and(|pattern| pattern.starts_with('|'));
    assert_eq!(
        report["warnings"].as_array().map(Vec::len),
        Some(usize::from(piped)),
        "{report:#}"
    );
    let names: Vec<&str> = report["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for name in [
        "user namespaces",
        "seccomp-bpf",
        "cgroups (memory, pids, cpu)",
        "pidfd",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // runsc is installed here (scripts/setup.sh): its path and the gVisor release it reports.
    let gvisor = report["features"]
        .as_array()
        .expect("features")
        .iter()
        .find(|f| f["name"] == "gvisor (runsc)")
        .expect("the gVisor feature");
    assert_eq!(gvisor["available"], true, "{gvisor}");
    assert!(
        gvisor["detail"]
            .as_str()
            .is_some_and(|d| d.contains("runsc version")),
        "{gvisor}"
    );
}

#[test]
fn the_host_environment_does_not_leak_in() {
    let world = World::new();
    let mut child = world
        .warden()
        .args(["run", "--json", "-l", "sh", "-c", "env; pwd"])
        .env("WARDEN_TEST_SECRET", "hunter2")
        .spawn()
        .expect("starts");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("piped"), &mut out).expect("read");
    child.wait().expect("finishes");
    let result: Value = serde_json::from_str(&out).expect("JSON");
    let stdout = result["stdout"].as_str().expect("text");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(
        stdout.contains("PATH=/usr/local/bin:/usr/bin:/bin"),
        "{stdout}"
    );
    assert!(stdout.ends_with("/work\n"), "{stdout}");
}

#[test]
fn languages_lists_all_eleven_with_their_toolchain_versions() {
    let out = warden(&["languages", "--json"], b"");
    assert_eq!(out.status.code(), Some(0));
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON array");
    let ids: Vec<&str> = entries.iter().filter_map(|e| e["id"].as_str()).collect();
    for id in [
        "python",
        "javascript",
        "bash",
        "java",
        "go",
        "rust",
        "c",
        "cpp",
        "ruby",
        "php",
        "r",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for e in &entries {
        assert_eq!(
            e["available"], true,
            "every toolchain is installed by scripts/setup.sh: {e}"
        );
        let version = e["version"].as_str().expect("version text");
        assert!(version.chars().any(|c| c.is_ascii_digit()), "{e}");
    }
}

#[test]
fn concurrent_compiles_of_one_program_share_one_complete_cache_entry() {
    let world = World::new();
    let code = "#include <stdio.h>\nint main(void) { puts(\"cached\"); return 0; }\n";
    let runs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    world
                        .warden()
                        .args(["run", "--json", "-l", "c", "-c", code])
                        .output()
                        .expect("warden runs")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for out in &runs {
        let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(result["stdout"], "cached\n", "{result}");
    }
    let names: Vec<String> = std::fs::read_dir(world.cache())
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "one entry, no temporary files left: {names:?}"
    );
    assert!(names[0].ends_with(".artifact"));
    let out = world
        .warden()
        .args(["run", "--json", "-l", "c", "-c", code])
        .output()
        .expect("warden runs");
    let again: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(again["compile"]["cached"], true, "{again}");
}

/// `--stderr-to-stdout` gives the program one stream for both, in the order it wrote them,
/// under the one output limit (Judge0's `redirect_stderr_to_stdout`).
#[test]
fn stderr_to_stdout_interleaves_as_written_under_one_limit() {
    let code = "echo a; echo b >&2; echo c";
    let apart = json(&["-l", "bash", "-c", code], b"");
    assert_eq!(
        (&apart["stdout"], &apart["stderr"]),
        (&json!("a\nc\n"), &json!("b\n"))
    );
    let merged = json(&["--stderr-to-stdout", "-l", "bash", "-c", code], b"");
    assert_eq!(merged["stdout"], "a\nb\nc\n", "{merged}");
    assert_eq!(merged["stderr"], "", "{merged}");
    let flood = json(
        &[
            "--stderr-to-stdout",
            "--max-output",
            "10",
            "-l",
            "bash",
            "-c",
            "echo aaaaaa; echo bbbbbb >&2",
        ],
        b"",
    );
    assert_eq!(
        flood["outcome"],
        json!({"kind": "output_limit", "stream": "stdout"}),
        "{flood}"
    );
    assert_eq!(flood["stdout"], "aaaaaa\nbbb", "{flood}");
}

/// The stack is a limit of its own, not whatever the process that started warden had: deep
/// recursion that Judge0's default (64 000 KB) allows runs under the default, and a smaller
/// stack ends it with a segmentation fault.
#[test]
fn the_stack_size_is_a_limit_deep_recursion_fits_in_by_default() {
    let code = "#include <stdio.h>\n\
        static int down(int n) {\n\
            volatile char frame[1000];\n\
            frame[n % 1000] = (char)n;\n\
            return n == 0 ? 0 : down(n - 1) + frame[n % 1000] - (char)n + 1;\n\
        }\n\
        int main(void) { printf(\"%d\\n\", down(40000)); return 0; }\n";
    let deep = json(&["-l", "c", "-c", code], b"");
    assert_eq!(deep["stdout"], "40000\n", "about 40 MiB of frames: {deep}");
    assert_eq!(deep["limits"]["stack_size"], "64MiB", "{deep}");
    let small = json(&["-l", "c", "--stack-size", "8MiB", "-c", code], b"");
    assert_eq!(small["outcome"]["kind"], "signaled", "{small}");
    assert_eq!(small["outcome"]["signal"], "SIGSEGV", "{small}");
    let reported = warden(
        &[
            "run",
            "-l",
            "bash",
            "--stack-size",
            "3MiB",
            "-c",
            "ulimit -s",
        ],
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&reported.stdout), "3072\n");
}

/// Options a request adds reach the compiler and are part of the compile cache's key; one the
/// language does not admit (here one that would load a plugin into the compiler) is refused
/// before anything runs.
#[test]
fn compiler_options_reach_the_compiler_and_key_the_cache() {
    let world = World::new();
    let code = "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", ANSWER); return 0; }\n";
    let run = |options: &[&str]| -> Value {
        let mut args = vec!["run", "--json", "-l", "c", "-c", code];
        for option in options {
            args.extend(["--compile-option", option]);
        }
        let out = world.warden().args(&args).output().expect("warden runs");
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let first = run(&["-DANSWER=1", "-O0"]);
    assert_eq!(first["stdout"], "1\n", "{first}");
    assert_eq!(first["compile"]["cached"], false, "{first}");
    let other = run(&["-DANSWER=2", "-O0"]);
    assert_eq!(
        other["stdout"], "2\n",
        "another value is another compile: {other}"
    );
    assert_eq!(other["compile"]["cached"], false, "{other}");
    let again = run(&["-DANSWER=1", "-O0"]);
    assert_eq!(again["stdout"], "1\n", "{again}");
    assert_eq!(again["compile"]["cached"], true, "{again}");

    let refused = run(&["-DANSWER=3", "-fplugin=/work/x.so"]);
    let error = refused["error"].as_str().expect("an error");
    assert!(
        error.contains("\"-fplugin=/work/x.so\" is not one of c's compiler options"),
        "{error}"
    );
    // A bare `-l`, `-D` or `-U` would take the compiler's next argument as its value.
    for bare in ["-l", "-D", "-U"] {
        let refused = run(&[bare]);
        let error = refused["error"].as_str().expect("an error");
        assert!(
            error.contains(&format!("\"{bare}\" is not one of c's compiler options")),
            "{bare}: {error}"
        );
    }
    let python = world
        .warden()
        .args([
            "run",
            "-l",
            "python",
            "--compile-option",
            "-O0",
            "-c",
            "print(1)",
        ])
        .output()
        .expect("warden runs");
    assert_eq!(python.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&python.stderr).contains("python takes no compiler options"),
        "{python:?}"
    );
}

/// The CLI forks its sandbox helper instead of exec'ing it (it is single-threaded): the
/// program still holds only descriptors 0 to 2, and nothing it starts outlives the run.
#[test]
fn the_forked_helper_leaks_no_descriptor_and_leaves_nothing_behind() {
    let marker = "4242.4242";
    let script = format!("(setsid sleep {marker} &); sleep {marker} & exec ls /proc/self/fd");
    let out = warden(&["run", "-l", "bash", "-c", &script], b"");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // `ls` opens the directory it lists as descriptor 3.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n2\n3\n");
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker))
        .collect();
    assert!(left.is_empty(), "outlived the run: {left:?}");
}

/// The forked helper and the sandbox's init are copies of the CLI, environment and arguments
/// included: the program must not see them through the init's /proc files. (The code builds
/// the paths at run time so that the analysis keeps it in `sandboxed` mode, where the init is
/// pid 1; under gVisor the program itself is.)
#[test]
fn the_program_cannot_see_the_clis_environment_or_arguments_through_the_init() {
    let marker = "warden-secret-4242";
    // In the host path of the program (its name is the program's own business).
    let dir = tempfile::Builder::new()
        .prefix(marker)
        .tempdir()
        .expect("tempdir");
    let program = dir.path().join("main.sh");
    std::fs::write(
        &program,
        "p=/proc/1; e=env; e=${e}iron\nfor f in $e cmdline; do tr '\\0' ' ' < $p/$f; echo; done 2>&1\n",
    )
    .expect("program written");
    let world = World::new();
    let out = world
        .warden()
        .args(["run", "--json", "--mode", "sandboxed"])
        .arg(&program)
        .env("WARDEN_TEST_SECRET", marker)
        .output()
        .expect("warden runs");
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["mode"], "sandboxed", "{result}");
    let stdout = result["stdout"].as_str().expect("stdout");
    assert!(stdout.contains("warden __sandbox-helper"), "{stdout}");
    assert!(
        !stdout.contains(marker),
        "the CLI's environment or arguments leaked: {stdout}"
    );
}

/// Issue 8: AF_VSOCK reached the port space shared with the virtual machine's host side.
#[test]
fn python_cannot_open_a_vsock_socket_but_keeps_the_families_it_needs() {
    let code = "import errno, socket\n\
        try:\n    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)\n    print('vsock opened')\n\
        except OSError as e:\n    print('vsock', errno.errorcode[e.errno])\n\
        a, b = socket.socketpair()\n\
        s = socket.socket(socket.AF_INET6)\ns.bind(('::1', 0))\ns.listen()\n\
        print('socketpair and inet6 ok')\n";
    let result = json(&["--mode", "sandboxed", "-l", "python", "-c", code], b"");
    assert_eq!(result["mode"], "sandboxed", "{result}");
    assert_eq!(
        result["stdout"], "vsock EAFNOSUPPORT\nsocketpair and inet6 ok\n",
        "{result}"
    );
}

/// Issue 13: run without root, warden says so in one line with what to do, instead of failing
/// on one of its internal files; `warden doctor` says the same.
#[test]
fn without_root_warden_says_it_needs_root() {
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    assert!(
        setpriv.exists(),
        "util-linux's setpriv (scripts/setup.sh installs util-linux)"
    );
    // A copy nobody can reach: the checkout may sit below a directory only root may enter.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(dir.path(), open.clone()).expect("chmod");
    let warden = dir.path().join("warden");
    std::fs::copy(env!("CARGO_BIN_EXE_warden"), &warden).expect("copied");
    std::fs::set_permissions(&warden, open).expect("chmod");
    let as_nobody = |args: &[&str]| {
        std::process::Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&warden)
            .args(args)
            .env_clear()
            .env("HOME", "/nonexistent")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("setpriv runs")
    };
    let run = as_nobody(&["run", "-l", "bash", "-c", "echo hi"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(125), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("needs root") && stderr.contains("uid 65534") && stderr.contains("sudo"),
        "{stderr}"
    );
    let doctor = as_nobody(&["doctor"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success());
    assert!(report.contains("MISSING root privileges"), "{report}");
}

/// Issue 14: `--profile` prints the phase table on stderr after the program's own output, each
/// phase with its milliseconds, and a total no smaller than any phase.
#[test]
fn profile_prints_where_the_time_went() {
    let out = warden(&["run", "--profile", "-l", "bash", "-c", "echo hi"], b"");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let table: Vec<(&str, f64)> = stderr
        .lines()
        .skip_while(|l| *l != "warden: profile")
        .skip(2)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?.parse().ok()?))
        })
        .collect();
    let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    for phase in [
        "engine", "prepare", "plan", "setup", "jobs", "program", "teardown", "record", "ending",
        "cli", "total",
    ] {
        assert!(names.contains(&phase), "{phase}: {stderr}");
    }
    let total = table
        .iter()
        .find(|(n, _)| *n == "total")
        .map_or(0.0, |(_, ms)| *ms);
    assert!(table.iter().all(|(_, ms)| *ms <= total), "{stderr}");
}

/// Bug hunt: javac looked for annotation processors on its class path (the workspace) and ran
/// the program's own at compile time, under the compile stage's limits (30 s of cpu where the
/// run had 2). It never runs them now.
#[test]
fn javac_runs_no_annotation_processor_the_program_ships() {
    javac_runs_none_of_the_programs(
        "javax.annotation.processing.Processor",
        "import java.util.Set;\nimport javax.annotation.processing.*;\n\
         import javax.lang.model.element.TypeElement;\n\
         @SupportedAnnotationTypes(\"*\")\n\
         public class P extends AbstractProcessor {\n\
           public synchronized void init(ProcessingEnvironment env) {\n\
             super.init(env); System.err.println(\"PROCESSOR RAN\");\n\
           }\n\
           public boolean process(Set<? extends TypeElement> a, RoundEnvironment r) { return false; }\n\
         }\n",
        "PROCESSOR RAN",
    );
}

/// `javac` of a program that ships the compiled class `P` (from `source`) and names it in
/// `META-INF/services/SERVICE`: the compile must not print `marker` (P ran), and the program
/// must run.
fn javac_runs_none_of_the_programs(service: &str, source: &str, marker: &str) {
    let world = World::new();
    let dir = world.path().join("proj");
    std::fs::create_dir_all(dir.join("META-INF/services")).expect("mkdir");
    let class = world.path().join("P.java");
    std::fs::write(&class, source).expect("write");
    let built = std::process::Command::new("/usr/bin/javac")
        .arg("-d")
        .arg(&dir)
        .arg(&class)
        .output()
        .expect("the host's javac runs");
    assert!(built.status.success(), "{built:?}");
    std::fs::write(dir.join("META-INF/services").join(service), "P\n").expect("write");
    std::fs::write(
        dir.join("Main.java"),
        "public class Main { public static void main(String[] a) { System.out.println(\"main\"); } }\n",
    )
    .expect("write");
    let out = world
        .warden()
        .args(["run", "--json", "--entry", "Main.java"])
        .arg(&dir)
        .output()
        .expect("runs");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(result["stdout"], "main\n", "{result:#}");
    let compile = result["compile"].to_string();
    assert!(!compile.contains(marker), "{compile}");
}

/// Bug hunt: the `warden:` line that says how a run ended was glued to the program's last
/// output when it did not end a line (`xwarden: program killed by SIGKILL`).
#[test]
fn the_ending_line_starts_a_line_of_its_own() {
    let out = warden(
        &["run", "-l", "bash", "-c", "printf x >&2; kill -9 $$"],
        b"",
    );
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "x\nwarden: program killed by SIGKILL\n"
    );
    let out = warden(&["run", "-l", "bash", "-c", "echo x >&2; kill -9 $$"], b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "x\nwarden: program killed by SIGKILL\n",
        "no blank line after a whole line"
    );
}

/// A one-shot run keeps its program's analysis on disk for the next process (beside the
/// compile cache, `engine/analysis_store.rs`): one slot of the store, closed to other users,
/// read back as it was written; `--no-cache` neither reads nor writes it.
#[test]
fn a_one_shot_run_keeps_its_analysis_for_the_next() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new();
    let store = world.path().join("analysis");
    let program = world.path().join("main.py");
    std::fs::write(&program, "import os\nos.system('true')\nprint(1)\n").expect("program");
    let run = |extra: &[&str]| {
        let out = world
            .warden()
            .args(["run", "--json"])
            .args(extra)
            .arg(&program)
            .output()
            .expect("warden runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result = support::json_of(&out);
        let security = result["security"].clone();
        (
            security["threat_level"].clone(),
            security["findings"].clone(),
            security["mode"].clone(),
        )
    };
    let slots = || match std::fs::read_dir(&store) {
        Ok(dir) => dir.map(|e| e.expect("entry").path()).collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    let uncached = run(&["--no-cache"]);
    assert!(slots().is_empty(), "--no-cache kept {:?}", slots());
    assert_eq!(uncached.0, "medium", "{uncached:?}");
    let first = run(&[]);
    let kept = slots();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700);
    assert_eq!(mode(&kept[0]), 0o600);
    let written = std::fs::read(&kept[0]).expect("slot");
    let second = run(&[]);
    assert_eq!(second, first, "read back");
    assert_eq!(first, uncached, "the same analysis as a fresh one");
    assert_eq!(
        std::fs::read(&kept[0]).expect("slot"),
        written,
        "a hit writes nothing"
    );
    assert_eq!(slots(), kept, "no temporary left");
}

/// Hunt comp 3: HOME is the workspace, and `go build` read its configuration file
/// `$HOME/.config/go/env` from the program's own files: `GOROOT=/work/goroot` made it run the
/// program's `goroot/pkg/tool/linux_amd64/compile` as the compiler, under the compile stage's
/// limits. The go command reads no such file now, and its GOROOT is the toolchain's.
#[test]
fn go_build_takes_no_configuration_from_the_program_s_files() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new();
    let run = |name: &str, package: &str, env: &str| {
        let dir = world.path().join(name);
        let tools = dir.join("goroot/pkg/tool/linux_amd64");
        std::fs::create_dir_all(&tools).expect("mkdir");
        std::fs::create_dir_all(dir.join(".config/go")).expect("mkdir");
        std::fs::write(dir.join(".config/go/env"), env).expect("write");
        let compile = tools.join("compile");
        std::fs::write(
            &compile,
            "#!/bin/sh\necho \"PROGRAM'S COMPILER RAN\" >&2\nexit 1\n",
        )
        .expect("write");
        std::fs::set_permissions(&compile, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(
            dir.join("main.go"),
            format!("package {package}\n\nfunc main() {{ println(\"main\") }}\n"),
        )
        .expect("write");
        let out = world
            .warden()
            .args(["run", "--json", "--entry", "main.go"])
            .arg(&dir)
            .output()
            .expect("runs");
        let result: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        result
    };
    // A library needs no runtime sources: go build went as far as running the tool.
    let result = run("lib", "lib", "GOROOT=/work/goroot\n");
    let compile = result["compile"].to_string();
    assert!(!compile.contains("COMPILER RAN"), "{compile}");
    assert!(compile.contains("no executable program"), "{compile}");
    let result = run(
        "main",
        "main",
        "GOROOT=/work/goroot\nGOEXPERIMENT=bogusexp\n",
    );
    assert_eq!(result["stderr"], "main\n", "{result:#}");
    assert_eq!(result["outcome"]["kind"], "exited", "{result:#}");
}

/// Found beside hunt comp 3 (what else a program's files make a compiler run): javac starts
/// every plugin on its processor path that says `autoStart()`, and `-proc:none` does not stop
/// plugins; the processor path was the class path, the workspace. Java's gets an empty one.
#[test]
fn javac_starts_no_plugin_the_program_ships() {
    javac_runs_none_of_the_programs(
        "com.sun.source.util.Plugin",
        "import com.sun.source.util.*;\n\
         public class P implements Plugin {\n\
           public String getName() { return \"p\"; }\n\
           public boolean autoStart() { return true; }\n\
           public void init(JavacTask task, String... args) { System.err.println(\"PLUGIN RAN\"); }\n\
         }\n",
        "PLUGIN RAN",
    );
}

/// Hunt cli 1-3: a directory's files were listed, then each opened again by its path, so a
/// file swapped for a link (or a FIFO) between the two was followed (or hung the run); a name
/// that is not UTF-8 became U+FFFD; `--entry ./main.py` was not found. Links, FIFOs and
/// sockets in the directory are left out, whatever they point to; the rest is read.
#[test]
fn a_directory_is_read_without_following_links_or_waiting_on_fifos() {
    use std::os::unix::ffi::OsStrExt;
    let world = World::new();
    let tree = world.path().join("tree");
    std::fs::create_dir_all(tree.join("lib")).expect("tree/lib");
    std::fs::write(
        tree.join("main.py"),
        "import os\nfor root, dirs, files in sorted(os.walk('.')):\n    for f in sorted(files): print(os.path.join(root, f))\nprint(open('lib/util.txt').read())\n",
    )
    .expect("main.py");
    std::fs::write(tree.join("lib/util.txt"), "util").expect("util.txt");
    std::os::unix::fs::symlink("/etc/hostname", tree.join("host.txt")).expect("a link");
    std::os::unix::fs::symlink("/etc", tree.join("etc")).expect("a link to a directory");
    nix::unistd::mkfifo(
        &tree.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("a FIFO");
    for entry in ["main.py", "./main.py"] {
        let out = world
            .warden()
            .args(["run", "--entry", entry])
            .arg(&tree)
            .output()
            .expect("warden runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{entry}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout, "./main.py\n./lib/util.txt\nutil\n", "{entry}");
    }
    // A name that is not UTF-8 is refused, naming it, before anything runs.
    let latin1 = tree.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&latin1, "x").expect("a Latin-1 name");
    let out = world
        .warden()
        .args(["run", "--entry", "main.py"])
        .arg(&tree)
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("is not a UTF-8 name"), "{stderr}");
}

/// Hunt cli 4: a standard input open for writing only was read as an empty one (the standard
/// library takes EBADF for the end of input), and the program ran without the input it was
/// meant to get. It is an error now; a closed standard input is still an empty one.
#[test]
fn a_standard_input_that_cannot_be_read_is_an_error() {
    let world = World::new();
    let write_only = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null for writing");
    let out = world
        .warden()
        .args([
            "run",
            "-l",
            "python",
            "-c",
            "import sys; print(len(sys.stdin.read()))",
        ])
        .stdin(write_only)
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("reading stdin"), "{stderr}");
}

/// Hunt lang 1: CPython, Node, Go and the JVM ignore `SIGXFSZ`, so a write past
/// `max_file_size` fails with `EFBIG` and the program ends by itself; it was `exited` 1 with no
/// violation. The file the kernel cut at the limit tells the init (`file_size_scan.rs`).
#[test]
fn a_runtime_that_ignores_sigxfsz_still_gets_the_file_size_limit() {
    let cases: [(&str, &str); 2] = [
        ("python", "open('/tmp/f', 'wb').write(b'x' * (2 << 20))"),
        (
            "javascript",
            "require('fs').writeFileSync('out.bin', Buffer.alloc(2 << 20, 1))",
        ),
    ];
    for (language, code) in cases {
        let result = json(
            &["--max-file-size", "1MiB", "-l", language, "-c", code],
            b"",
        );
        assert_eq!(
            result["outcome"],
            json!({"kind": "file_size_limit", "ended": {"kind": "exited", "code": 1}}),
            "{language}: {result}"
        );
        let violations = result["security"]["violations"]
            .as_array()
            .expect("violations");
        assert_eq!(violations.len(), 1, "{language}: {result}");
        assert_eq!(violations[0]["kind"], "file_size_limit", "{result}");
        let detail = violations[0]["detail"].as_str().expect("detail");
        assert!(
            detail.starts_with("file size limit exceeded")
                && detail.contains("ended by itself: exited with status 1"),
            "{detail}"
        );
    }
    // The CLI's own exit status and line say so too.
    let out = warden(
        &[
            "run",
            "--max-file-size",
            "1MiB",
            "-l",
            "python",
            "-c",
            "open('/tmp/f', 'wb').write(b'x' * (2 << 20))",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(121), "{stderr}");
    assert!(
        stderr.ends_with(
            "warden: file size limit exceeded: a write failed at the limit (EFBIG), and the \
             program ended by itself: exited with status 1 (1MiB)\n"
        ),
        "{stderr}"
    );
}

/// The other side of the same check: a program that handles `EFBIG` and exits 0 ended well
/// (the scan runs only after a failure), and one that fails without a file at the limit is
/// its own failure.
#[test]
fn a_failure_without_a_file_at_the_limit_is_the_programs_own() {
    let handled = json(
        &[
            "--max-file-size",
            "1MiB",
            "-l",
            "python",
            "-c",
            "try:\n    open('/tmp/f', 'wb').write(b'x' * (2 << 20))\nexcept OSError as e:\n    print(e.errno)",
        ],
        b"",
    );
    assert_eq!(
        handled["outcome"],
        json!({"kind": "exited", "code": 0}),
        "{handled}"
    );
    assert_eq!(handled["stdout"], "27\n", "EFBIG: {handled}");
    assert_eq!(handled["security"]["violations"], json!([]), "{handled}");
    let failed = json(
        &[
            "--max-file-size",
            "1MiB",
            "-l",
            "python",
            "-c",
            "import sys\nopen('/tmp/small', 'wb').write(b'x' * 1000)\nopen('big', 'wb').write(b'x' * ((1 << 20) - 1))\nsys.exit(1)",
        ],
        b"",
    );
    assert_eq!(
        failed["outcome"],
        json!({"kind": "exited", "code": 1}),
        "{failed}"
    );
    assert_eq!(failed["security"]["violations"], json!([]), "{failed}");
    // Regression hunt: an empty file under a limit of 0, and the JVM's 32 KiB perf data file
    // (left by a JVM killed by a signal) under 32 KiB, read as writes cut at the limit.
    let empty = json(
        &[
            "--max-file-size",
            "0",
            "-l",
            "bash",
            "-c",
            "touch /tmp/x; exit 3",
        ],
        b"",
    );
    assert_eq!(
        empty["outcome"],
        json!({"kind": "exited", "code": 3}),
        "{empty}"
    );
    let java = "public class Main {\n    public static void main(String[] args) throws Exception {\n        \
                long pid = ProcessHandle.current().pid();\n        \
                new ProcessBuilder(\"/bin/kill\", \"-ABRT\", String.valueOf(pid)).start().waitFor();\n        \
                Thread.sleep(5000);\n    }\n}\n";
    let aborted = json(&["--max-file-size", "32KiB", "-l", "java", "-c", java], b"");
    assert_eq!(
        aborted["outcome"],
        json!({"kind": "signaled", "signal": "SIGABRT"}),
        "{aborted}"
    );
}
