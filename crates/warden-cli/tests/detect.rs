//! End to end: `warden detect` (text and `--json`), and `warden run` choosing the language by
//! detection (docs/cli.md#detection). The `run` tests need root and the runtimes (CI has both).

mod support;

use std::process::Output;

use serde_json::Value;
use support::World;

fn warden(args: &[&str], world: &World) -> Output {
    world.warden().args(args).output().expect("warden runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one JSON object `warden detect --json` prints.
fn detect_json(args: &[&str], world: &World) -> (Option<i32>, Value) {
    let mut all = vec!["detect", "--json"];
    all.extend_from_slice(args);
    let out = warden(&all, world);
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "exactly one JSON line: {stdout}");
    let value = serde_json::from_str(&stdout).expect("valid JSON");
    (out.status.code(), value)
}

const GO: &str = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n";
const PYTHON: &str =
    "def square(x):\n    return x * x\n\nif __name__ == \"__main__\":\n    print(square(7))\n";
const RUBY: &str = "def square(x)\n  x * x\nend\n\n[1, 2].each do |i|\n  puts square(i)\nend\n";

#[test]
fn detect_prints_language_confidence_and_how() {
    let dir = World::new();
    let file = dir.path().join("fib.py");
    std::fs::write(&file, "print(1)\n").expect("write");
    let out = warden(&["detect", file.to_str().expect("utf-8")], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "python (confidence 0.99, by extension)\n"
    );

    let out = warden(&["detect", "-c", GO], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(line.starts_with("go (confidence 0."), "{line}");
    assert!(line.contains(", by content"), "{line}");
}

#[test]
fn detect_names_the_runner_up() {
    let dir = World::new();
    let header = dir.path().join("point.h");
    std::fs::write(
        &header,
        "#include <vector>\nstruct Point { std::vector<int> xs; };\n",
    )
    .expect("write");
    let out = warden(&["detect", header.to_str().expect("utf-8")], &dir);
    let line = text(&out.stdout);
    assert!(line.starts_with("cpp (confidence 0.9"), "{line}");
    assert!(line.contains("by extension; runner-up: c 0.0"), "{line}");
}

#[test]
fn detect_json_has_the_documented_shape() {
    let dir = World::new();
    let script = dir.path().join("tool");
    std::fs::write(&script, "#!/usr/bin/env ruby\nputs 1\n").expect("write");
    let (code, value) = detect_json(&[script.to_str().expect("utf-8")], &dir);
    assert_eq!(code, Some(0));
    assert_eq!(value["language"], "ruby");
    assert_eq!(value["by"], "shebang");
    assert_eq!(value["confidence"], 0.95);
    assert!(value["runner_up"].is_null(), "{value}");
    let keys: Vec<&String> = value.as_object().expect("an object").keys().collect();
    assert_eq!(keys.len(), 4, "{value}");

    let (code, value) = detect_json(&["-c", PYTHON], &dir);
    assert_eq!(code, Some(0));
    assert_eq!(value["language"], "python");
    assert_eq!(value["by"], "content");
    let confidence = value["confidence"].as_f64().expect("a number");
    assert!((0.8..=1.0).contains(&confidence), "{value}");
    let runner_up = &value["runner_up"];
    assert!(runner_up["language"].is_string(), "{value}");
    assert!(runner_up["confidence"].as_f64().expect("a number") < confidence);
}

#[test]
fn detect_errors_exit_125_with_the_candidates() {
    let dir = World::new();
    let out = warden(&["detect", "-c", "x = 1"], &dir);
    assert_eq!(out.status.code(), Some(125));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("warden: cannot tell the language"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--lang") && stderr.contains("python"),
        "{stderr}"
    );

    // Valid Python and valid R alike.
    let out = warden(&["detect", "-c", "print(\"hi\")"], &dir);
    assert_eq!(out.status.code(), Some(125));
    let stderr = text(&out.stderr);
    for expected in ["python (0.", "r (0.", "--lang"] {
        assert!(stderr.contains(expected), "{stderr}");
    }

    let blob = dir.path().join("blob");
    std::fs::write(&blob, b"\x7fELF\x02\x01\x01\0\0\xff\xfe<-=>$(").expect("write");
    let (code, value) = detect_json(&[blob.to_str().expect("utf-8")], &dir);
    assert_eq!(code, Some(125));
    assert!(
        value["error"]
            .as_str()
            .is_some_and(|e| e.contains("--lang")),
        "{value}"
    );
    let (code, value) = detect_json(&["/nonexistent/file.py"], &dir);
    assert_eq!(code, Some(125));
    assert!(value["error"].is_string(), "{value}");
}

#[test]
fn run_without_lang_detects_inline_code_quietly_when_sure() {
    let dir = World::new();
    for (code, expected) in [(PYTHON, "49\n"), (RUBY, "1\n4\n")] {
        let out = warden(&["run", "-c", code], &dir);
        assert_eq!(text(&out.stdout), expected, "{}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    }
    let out = warden(&["run", "--json", "-c", RUBY], &dir);
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["language"], "ruby", "{result}");
}

#[test]
fn run_without_lang_says_which_language_it_chose_when_unsure() {
    let dir = World::new();
    let out = warden(&["run", "-c", "echo hi"], &dir);
    assert_eq!(text(&out.stdout), "hi\n", "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("warden: detected bash (confidence 0."),
        "{stderr}"
    );
    assert!(stderr.contains("pass --lang"), "{stderr}");
}

#[test]
fn run_without_lang_refuses_what_it_cannot_tell() {
    let dir = World::new();
    let out = warden(&["run", "-c", "x = 1"], &dir);
    assert_eq!(out.status.code(), Some(125));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("pass --lang"));
    let out = warden(&["run", "--json", "-c", "print(1)"], &dir);
    assert_eq!(out.status.code(), Some(125));
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let error = result["error"].as_str().expect("an error");
    assert!(
        error.contains("python (0.") && error.contains("r (0."),
        "{error}"
    );
}
