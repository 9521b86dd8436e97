//! End to end, per language: the built `warden` binary runs the same kinds of program in every
//! language (hello, stdin, arguments, exit status, runtime error, compile error, CPU and memory
//! limits) through the real toolchains and the real sandbox, plus the features one language
//! depends on (Java's class naming, Go without a module, libm, multi-file programs, the
//! compile cache, a compiler that cannot read the host). Runs as root (CI does).
//!
//! A missing toolchain fails the test with the Debian package to install (scripts/setup.sh
//! installs them all); it never skips.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};
use support::World;
use warden_core::Catalog;

/// What every `hello` program prints.
const HELLO: &str = "hello, world\n";
/// Fed to every `echo_stdin` program, which prints the first line only.
const STDIN: &[u8] = b"one line of input\nsecond line\n";
const STDIN_FIRST_LINE: &str = "one line of input\n";
/// Passed to every `args` program, which prints one argument per line.
const ARGS: &[&str] = &["a", "b c"];
const ARGS_PRINTED: &str = "a\nb c\n";
/// The name every `compile_error` program uses without declaring it.
const UNDECLARED: &str = "undeclared_thing";
const MEMORY_LIMIT: &str = "128MiB";

/// The outcome a program must end with.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Exited(i64),
    Signaled(&'static str),
}

impl Expect {
    fn to_json(self) -> Value {
        match self {
            Self::Exited(code) => json!({ "kind": "exited", "code": code }),
            Self::Signaled(signal) => json!({ "kind": "signaled", "signal": signal }),
        }
    }
}

/// A program that fails at run time, and how it must fail. It prints nothing to stdout.
struct RuntimeError {
    code: &'static str,
    outcome: Expect,
    /// Each of these is in the program's stderr.
    stderr_has: &'static [&'static str],
}

/// The same programs written in one language.
struct Programs {
    language: &'static str,
    /// Prints `HELLO`.
    hello: &'static str,
    /// Reads one line from stdin and prints it.
    echo_stdin: &'static str,
    /// Prints each argument on its own line.
    args: &'static str,
    /// Exits with status 3.
    exit_3: &'static str,
    runtime_error: RuntimeError,
    /// Uses `UNDECLARED`; only for compiled languages.
    compile_error: Option<&'static str>,
    /// Loops forever on the CPU.
    cpu_spin: &'static str,
    /// The CPU limit `cpu_spin` runs under (the JVM needs more to start).
    cpu_time: &'static str,
    /// Allocates and touches memory until it is stopped, under `MEMORY_LIMIT`.
    memory_hog: &'static str,
}

const PYTHON: Programs = Programs {
    language: "python",
    hello: r#"print("hello, world")"#,
    echo_stdin: r#"
import sys
print(sys.stdin.readline(), end="")
"#,
    args: r#"
import sys
for arg in sys.argv[1:]:
    print(arg)
"#,
    exit_3: "raise SystemExit(3)",
    runtime_error: RuntimeError {
        code: r#"raise ValueError("boom")"#,
        outcome: Expect::Exited(1),
        stderr_has: &["Traceback (most recent call last)", "ValueError: boom"],
    },
    compile_error: None,
    cpu_spin: "while True:\n    pass\n",
    cpu_time: "1s",
    memory_hog: r#"
chunks = []
while True:
    chunks.append(bytearray(b"\x01") * (16 << 20))
"#,
};

const JAVASCRIPT: Programs = Programs {
    language: "javascript",
    hello: r#"console.log("hello, world");"#,
    echo_stdin: r#"
const input = require("fs").readFileSync(0, "utf8");
console.log(input.split("\n")[0]);
"#,
    args: r#"
for (const arg of process.argv.slice(2)) console.log(arg);
"#,
    exit_3: "process.exit(3);",
    runtime_error: RuntimeError {
        code: r#"throw new Error("boom");"#,
        outcome: Expect::Exited(1),
        stderr_has: &["Error: boom"],
    },
    compile_error: None,
    cpu_spin: "for (;;) {}",
    cpu_time: "1s",
    // Buffers live outside the V8 heap, so the heap limit cannot fail first.
    memory_hog: r#"
const chunks = [];
for (;;) chunks.push(Buffer.alloc(16 << 20, 1));
"#,
};

const BASH: Programs = Programs {
    language: "bash",
    hello: r#"echo "hello, world""#,
    echo_stdin: r#"
read -r line
printf '%s\n' "$line"
"#,
    args: r#"printf '%s\n' "$@""#,
    exit_3: "exit 3",
    runtime_error: RuntimeError {
        code: "set -e\nfalse\necho unreachable\n",
        outcome: Expect::Exited(1),
        stderr_has: &[],
    },
    compile_error: None,
    cpu_spin: "while :; do :; done",
    cpu_time: "1s",
    memory_hog: r#"
s=x
while :; do s="$s$s"; done
"#,
};

const JAVA: Programs = Programs {
    language: "java",
    hello: r#"
public class Main {
    public static void main(String[] args) {
        System.out.println("hello, world");
    }
}
"#,
    echo_stdin: r#"
import java.io.BufferedReader;
import java.io.InputStreamReader;

public class Main {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println(in.readLine());
    }
}
"#,
    args: r#"
public class Main {
    public static void main(String[] args) {
        for (String arg : args) System.out.println(arg);
    }
}
"#,
    exit_3: r#"
public class Main {
    public static void main(String[] args) {
        System.exit(3);
    }
}
"#,
    runtime_error: RuntimeError {
        code: r#"
public class Main {
    public static void main(String[] args) {
        throw new IllegalStateException("boom");
    }
}
"#,
        outcome: Expect::Exited(1),
        stderr_has: &["Exception in thread \"main\" java.lang.IllegalStateException: boom"],
    },
    compile_error: Some(
        r#"
public class Main {
    public static void main(String[] args) {
        System.out.println(undeclared_thing);
    }
}
"#,
    ),
    cpu_spin: r#"
public class Main {
    public static void main(String[] args) {
        for (;;) {}
    }
}
"#,
    cpu_time: "2s",
    // Memory outside the heap: the JVM's heap is sized from the limit (`-XX:MaxRAM`), so a
    // program filling it ends with an OutOfMemoryError (`java_sizes_its_heap_from_the_memory_limit`).
    memory_hog: r#"
import java.lang.reflect.Field;
import sun.misc.Unsafe;

public class Main {
    public static void main(String[] args) throws Exception {
        Field field = Unsafe.class.getDeclaredField("theUnsafe");
        field.setAccessible(true);
        Unsafe unsafe = (Unsafe) field.get(null);
        for (;;) {
            long chunk = unsafe.allocateMemory(16 << 20);
            unsafe.setMemory(chunk, 16 << 20, (byte) 1);
        }
    }
}
"#,
};

const GO: Programs = Programs {
    language: "go",
    hello: r#"
package main

import "fmt"

func main() {
	fmt.Println("hello, world")
}
"#,
    echo_stdin: r#"
package main

import (
	"bufio"
	"fmt"
	"os"
)

func main() {
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Print(line)
}
"#,
    args: r#"
package main

import (
	"fmt"
	"os"
)

func main() {
	for _, arg := range os.Args[1:] {
		fmt.Println(arg)
	}
}
"#,
    exit_3: r#"
package main

import "os"

func main() {
	os.Exit(3)
}
"#,
    runtime_error: RuntimeError {
        code: r#"
package main

func main() {
	panic("boom")
}
"#,
        outcome: Expect::Exited(2),
        stderr_has: &["panic: boom"],
    },
    compile_error: Some(
        r#"
package main

import "fmt"

func main() {
	fmt.Println(undeclared_thing)
}
"#,
    ),
    cpu_spin: r#"
package main

func main() {
	for {
	}
}
"#,
    cpu_time: "1s",
    memory_hog: r#"
package main

func main() {
	var chunks [][]byte
	for {
		chunk := make([]byte, 16<<20)
		for i := range chunk {
			chunk[i] = 1
		}
		chunks = append(chunks, chunk)
	}
}
"#,
};

const RUST: Programs = Programs {
    language: "rust",
    hello: r#"
fn main() {
    println!("hello, world");
}
"#,
    echo_stdin: r#"
fn main() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    print!("{line}");
}
"#,
    args: r#"
fn main() {
    for arg in std::env::args().skip(1) {
        println!("{arg}");
    }
}
"#,
    exit_3: r#"
fn main() {
    std::process::exit(3);
}
"#,
    runtime_error: RuntimeError {
        code: r#"
fn main() {
    panic!("boom");
}
"#,
        outcome: Expect::Exited(101),
        stderr_has: &["panicked at 'boom'"],
    },
    compile_error: Some(
        r#"
fn main() {
    println!("{}", undeclared_thing);
}
"#,
    ),
    cpu_spin: r#"
fn main() {
    loop {}
}
"#,
    cpu_time: "1s",
    memory_hog: r#"
fn main() {
    let mut chunks = Vec::new();
    loop {
        chunks.push(vec![1u8; 16 << 20]);
    }
}
"#,
};

const C: Programs = Programs {
    language: "c",
    hello: r#"
#include <stdio.h>

int main(void) {
    printf("hello, world\n");
    return 0;
}
"#,
    echo_stdin: r#"
#include <stdio.h>

int main(void) {
    char line[256];
    if (fgets(line, sizeof line, stdin)) fputs(line, stdout);
    return 0;
}
"#,
    args: r#"
#include <stdio.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) puts(argv[i]);
    return 0;
}
"#,
    exit_3: "int main(void) { return 3; }\n",
    runtime_error: RuntimeError {
        // Volatile, so that -O2 neither sees the null (and emits a trap) nor drops the store.
        code: r#"
#include <stddef.h>

int main(void) {
    volatile int *volatile p = NULL;
    *p = 1;
    return 0;
}
"#,
        outcome: Expect::Signaled("SIGSEGV"),
        stderr_has: &[],
    },
    compile_error: Some("int main(void) { return undeclared_thing; }\n"),
    cpu_spin: r#"
int main(void) {
    volatile unsigned long n = 0;
    for (;;) n++;
}
"#,
    cpu_time: "1s",
    memory_hog: r#"
#include <stdlib.h>
#include <string.h>

int main(void) {
    for (;;) {
        char *chunk = malloc(16 << 20);
        if (chunk == NULL) return 9;
        memset(chunk, 1, 16 << 20);
    }
}
"#,
};

const CPP: Programs = Programs {
    language: "cpp",
    hello: r#"
#include <iostream>

int main() {
    std::cout << "hello, world" << std::endl;
}
"#,
    echo_stdin: r#"
#include <iostream>
#include <string>

int main() {
    std::string line;
    std::getline(std::cin, line);
    std::cout << line << "\n";
}
"#,
    args: r#"
#include <iostream>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) std::cout << argv[i] << "\n";
}
"#,
    exit_3: "int main() { return 3; }\n",
    runtime_error: RuntimeError {
        code: r#"
#include <stdexcept>

int main() {
    throw std::runtime_error("boom");
}
"#,
        outcome: Expect::Signaled("SIGABRT"),
        stderr_has: &["terminate called after throwing", "boom"],
    },
    compile_error: Some("int main() { return undeclared_thing; }\n"),
    cpu_spin: r#"
int main() {
    volatile unsigned long n = 0;
    for (;;) n++;
}
"#,
    cpu_time: "1s",
    memory_hog: r#"
#include <cstring>
#include <vector>

int main() {
    std::vector<char *> chunks;
    for (;;) {
        char *chunk = new char[16 << 20];
        std::memset(chunk, 1, 16 << 20);
        chunks.push_back(chunk);
    }
}
"#,
};

const RUBY: Programs = Programs {
    language: "ruby",
    hello: r#"puts "hello, world""#,
    echo_stdin: "print STDIN.gets",
    args: "ARGV.each { |arg| puts arg }",
    exit_3: "exit 3",
    runtime_error: RuntimeError {
        code: r#"raise ArgumentError, "boom""#,
        outcome: Expect::Exited(1),
        stderr_has: &["boom (ArgumentError)"],
    },
    compile_error: None,
    cpu_spin: "loop {}",
    cpu_time: "1s",
    memory_hog: r#"
chunks = []
loop { chunks << ("x" * (16 << 20)) }
"#,
};

const PHP: Programs = Programs {
    language: "php",
    hello: r#"<?php echo "hello, world\n";"#,
    echo_stdin: "<?php echo fgets(STDIN);",
    args: r#"<?php foreach (array_slice($argv, 1) as $arg) echo $arg, "\n";"#,
    exit_3: "<?php exit(3);",
    runtime_error: RuntimeError {
        code: r#"<?php throw new RuntimeException("boom");"#,
        outcome: Expect::Exited(255),
        stderr_has: &["Uncaught RuntimeException: boom"],
    },
    compile_error: None,
    cpu_spin: "<?php for (;;) {}",
    cpu_time: "1s",
    memory_hog: r#"<?php
$chunks = [];
for (;;) $chunks[] = str_repeat("x", 16 << 20);
"#,
};

const R: Programs = Programs {
    language: "r",
    hello: r#"cat("hello, world\n")"#,
    echo_stdin: r#"writeLines(readLines(file("stdin"), n = 1))"#,
    args: "writeLines(commandArgs(trailingOnly = TRUE))",
    exit_3: "quit(status = 3)",
    runtime_error: RuntimeError {
        code: r#"stop("boom")"#,
        outcome: Expect::Exited(1),
        stderr_has: &["Error: boom"],
    },
    compile_error: None,
    cpu_spin: "repeat {}",
    cpu_time: "1s",
    memory_hog: r#"
chunks <- list()
repeat chunks[[length(chunks) + 1]] <- rep(1.5, 2e6)
"#,
};

/// Runs `warden` in a world of its own (database, compile cache, configuration).
struct Warden {
    world: World,
}

impl Warden {
    /// Fails, naming the package to install, when `language`'s toolchain is missing.
    fn for_language(language: &str) -> Self {
        let catalog = Catalog::builtin().expect("the built-in catalog loads");
        let lang = catalog
            .get(language)
            .unwrap_or_else(|| panic!("{language} is not in the catalog"));
        let tools = std::iter::once(&lang.version)
            .chain(lang.compile.as_ref().map(|c| &c.argv))
            .chain(std::iter::once(&lang.run.argv))
            .filter_map(|argv| argv.first())
            .filter(|tool| tool.starts_with('/'));
        for tool in tools {
            assert!(
                Path::new(tool).exists(),
                "{language}: {tool} is missing; install the Debian package(s) {:?} \
                 (scripts/setup.sh does)",
                lang.packages
            );
        }
        Self {
            world: World::new(),
        }
    }

    /// `warden run --json ARGS` with `stdin` on a pipe; the one JSON object it prints.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Value {
        let mut child = self
            .world
            .warden()
            .args(["run", "--json"])
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("warden starts");
        let mut pipe = child.stdin.take().expect("piped");
        // A program that never reads may be gone before its input is written.
        if let Err(e) = pipe.write_all(stdin) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "writing stdin: {e}"
            );
        }
        drop(pipe);
        let out = child.wait_with_output().expect("warden finishes");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: warden failed: {stderr}"
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON object ({e}); stderr: {stderr}"))
    }

    /// Runs `code` in `language`; `extra` follows the code (limit flags, `--` and arguments).
    fn code(&self, language: &str, code: &str, extra: &[&str], stdin: &[u8]) -> Value {
        let mut args = vec!["-l", language, "-c", code];
        args.extend_from_slice(extra);
        self.run(&args, stdin)
    }
}

/// Asserts the outcome, the exact stdout and, for a compiled language, a successful compile.
fn assert_ran(result: &Value, outcome: Expect, stdout: &str, what: &str) {
    assert_eq!(result["outcome"], outcome.to_json(), "{what}: {result:#}");
    assert_eq!(result["stdout"], stdout, "{what}: {result:#}");
    let compile = &result["compile"];
    if !compile.is_null() {
        assert_eq!(
            compile["outcome"],
            Expect::Exited(0).to_json(),
            "{what}: {result:#}"
        );
    }
}

fn assert_outcome(result: &Value, outcome: Value, what: &str) {
    assert_eq!(result["outcome"], outcome, "{what}: {result:#}");
}

/// Runs every program of `p` and asserts the exact result of each.
fn check_language(p: &Programs) {
    let warden = Warden::for_language(p.language);
    check_successful_runs(&warden, p);
    check_runtime_error(&warden, p.language, &p.runtime_error);
    if let Some(code) = p.compile_error {
        check_compile_error(&warden, p.language, code);
    }
    check_limits(&warden, p);
}

fn check_successful_runs(warden: &Warden, p: &Programs) {
    let lang = p.language;
    let result = warden.code(lang, p.hello, &[], b"");
    assert_ran(&result, Expect::Exited(0), HELLO, &format!("{lang} hello"));
    assert_eq!(result["language"], lang, "{result:#}");
    let compiled = p.compile_error.is_some();
    assert_eq!(!result["compile"].is_null(), compiled, "{result:#}");

    let result = warden.code(lang, p.echo_stdin, &[], STDIN);
    let what = format!("{lang} echo_stdin");
    assert_ran(&result, Expect::Exited(0), STDIN_FIRST_LINE, &what);

    let mut extra = vec!["--"];
    extra.extend_from_slice(ARGS);
    let result = warden.code(lang, p.args, &extra, b"");
    let what = format!("{lang} args");
    assert_ran(&result, Expect::Exited(0), ARGS_PRINTED, &what);

    let result = warden.code(lang, p.exit_3, &[], b"");
    assert_ran(&result, Expect::Exited(3), "", &format!("{lang} exit_3"));
}

fn check_runtime_error(warden: &Warden, lang: &str, error: &RuntimeError) {
    let result = warden.code(lang, error.code, &[], b"");
    assert_ran(&result, error.outcome, "", &format!("{lang} runtime_error"));
    let stderr = result["stderr"].as_str().expect("stderr is text");
    for needle in error.stderr_has {
        assert!(
            stderr.contains(needle),
            "{lang} runtime_error: {needle:?} not in {stderr:?}"
        );
    }
}

fn check_limits(warden: &Warden, p: &Programs) {
    let lang = p.language;
    let result = warden.code(lang, p.cpu_spin, &["--cpu-time", p.cpu_time], b"");
    let cpu = json!({ "kind": "time_limit", "which": "cpu" });
    assert_outcome(&result, cpu, &format!("{lang} cpu_spin"));

    let result = warden.code(lang, p.memory_hog, &["--memory", MEMORY_LIMIT], b"");
    let memory = json!({ "kind": "memory_limit" });
    assert_outcome(&result, memory, &format!("{lang} memory_hog"));
    assert_eq!(result["limits"]["memory"], MEMORY_LIMIT, "{result:#}");
}

fn check_compile_error(warden: &Warden, lang: &str, code: &str) {
    let result = warden.code(lang, code, &[], b"");
    let what = format!("{lang} compile_error");
    assert_outcome(&result, json!({ "kind": "compile_error" }), &what);
    let compile = &result["compile"];
    assert_eq!(compile["outcome"]["kind"], "exited", "{what}: {result:#}");
    assert_ne!(compile["outcome"]["code"], 0, "{what}: {result:#}");
    let stderr = compile["stderr"].as_str().expect("compile.stderr is text");
    assert!(
        stderr.contains(UNDECLARED),
        "{what}: {UNDECLARED} not in {stderr:?}"
    );
}

#[test]
fn python_programs() {
    check_language(&PYTHON);
}

#[test]
fn javascript_programs() {
    check_language(&JAVASCRIPT);
}

#[test]
fn bash_programs() {
    check_language(&BASH);
}

#[test]
fn java_programs() {
    check_language(&JAVA);
}

#[test]
fn go_programs() {
    check_language(&GO);
}

#[test]
fn rust_programs() {
    check_language(&RUST);
}

#[test]
fn c_programs() {
    check_language(&C);
}

#[test]
fn cpp_programs() {
    check_language(&CPP);
}

#[test]
fn ruby_programs() {
    check_language(&RUBY);
}

#[test]
fn php_programs() {
    check_language(&PHP);
}

#[test]
fn r_programs() {
    check_language(&R);
}

/// The compiler runs in the sandbox too: a program that includes the host's /etc/shadow does
/// not compile, and nothing of the file reaches the result.
#[test]
fn compilers_cannot_read_the_hosts_shadow_file() {
    let shadow = std::fs::read_to_string("/etc/shadow").expect("the host has /etc/shadow");
    // Every line, not only those with a password hash: a host (a container) may have none.
    let lines: Vec<&str> = shadow.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "/etc/shadow is empty");
    let programs = [
        ("c", "#include \"/etc/shadow\"\nint main(void) { return 0; }\n"),
        ("cpp", "#include \"/etc/shadow\"\nint main() { return 0; }\n"),
        (
            "rust",
            "const SHADOW: &str = include_str!(\"/etc/shadow\");\nfn main() { print!(\"{SHADOW}\"); }\n",
        ),
    ];
    for (lang, code) in programs {
        let warden = Warden::for_language(lang);
        let result = warden.code(lang, code, &[], b"");
        assert_outcome(&result, json!({ "kind": "compile_error" }), lang);
        let stderr = result["compile"]["stderr"].as_str().unwrap_or_default();
        assert!(stderr.contains("/etc/shadow"), "{lang}: {result:#}");
        let all = result.to_string();
        for line in &lines {
            // Searched in the serialized result, where the text would appear JSON-escaped.
            let escaped = Value::from(*line).to_string();
            let escaped = escaped.trim_matches('"');
            assert!(
                !all.contains(escaped),
                "{lang}: a line of the host's /etc/shadow is in the result"
            );
        }
    }
}

#[test]
fn c_compile_cache_serves_the_same_program_again() {
    let warden = Warden::for_language("c");
    let program = "int main(void) { return 7; }\n";
    let first = warden.code("c", program, &[], b"");
    assert_ran(&first, Expect::Exited(7), "", "first run");
    assert_eq!(first["compile"]["cached"], false, "{first:#}");

    let second = warden.code("c", program, &[], b"");
    assert_ran(&second, Expect::Exited(7), "", "second run");
    assert_eq!(second["compile"]["cached"], true, "{second:#}");
    assert_eq!(second["compile"]["usage"]["cpu_time_ms"], 0, "{second:#}");

    let other = warden.code("c", "int main(void) { return 8; }\n", &[], b"");
    assert_ran(&other, Expect::Exited(8), "", "a different program");
    assert_eq!(other["compile"]["cached"], false, "{other:#}");
}

/// Bug hunt: an entry `PROG.C` given to C kept its name, and gcc, which takes `.C` for C++,
/// compiled it as C++ (a C++ program ran as C); a `util.C` beside a C entry was handed to gcc
/// as a source too. Extensions are now compared as the compilers do, case and all.
#[test]
fn c_sources_named_with_a_capital_c_are_compiled_as_c() {
    let warden = Warden::for_language("c");
    let dir = tempfile::tempdir().expect("tempdir");
    // Valid C, not C++: `new` is a keyword there, and `void *` does not convert implicitly.
    let program = "#include <stdio.h>\n#include <stdlib.h>\nint main(void) { int new = 42; \
                   int *p = malloc(sizeof *p); *p = new; printf(\"c %d\\n\", *p); return 0; }\n";
    let entry = dir.path().join("PROG.C");
    std::fs::write(&entry, program).expect("write");
    let entry = entry.to_str().expect("utf-8");
    let result = warden.run(&["-l", "c", entry], b"");
    assert_ran(&result, Expect::Exited(0), "c 42\n", "PROG.C as C");

    // C++ only: a C compile of it fails, and a C++ file beside a C entry is no C source.
    let util = dir.path().join("util.C");
    // (It needs the C++ library, which a C program is not linked with.)
    std::fs::write(&util, "#include <string>\nstd::string greeting = \"hi\";\n").expect("write");
    let main = dir.path().join("main.c");
    std::fs::write(&main, "int main(void) { return 3; }\n").expect("write");
    let main = main.to_str().expect("utf-8");
    let util = util.to_str().expect("utf-8");
    let result = warden.run(&["-l", "c", main, util], b"");
    assert_ran(&result, Expect::Exited(3), "", "util.C beside main.c");
}

#[test]
fn java_public_class_need_not_be_named_main() {
    let warden = Warden::for_language("java");
    let program = r#"
import java.util.Scanner;

public class Solution {
    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        System.out.println("sum " + (in.nextInt() + in.nextInt()));
    }
}
"#;
    let result = warden.code("java", program, &[], b"2 40\n");
    assert_ran(
        &result,
        Expect::Exited(0),
        "sum 42\n",
        "public class Solution",
    );
}

/// Bug hunt: javac writes a class of `package com.example` as
/// `classes/com/example/Main.class`, and the JVM was given the bare `Main` ("Could not find or
/// load main class Main"), from a file and from a directory program alike.
#[test]
fn java_runs_a_packaged_class_by_its_qualified_name() {
    let warden = Warden::for_language("java");
    let program = "package com.example;\npublic class Main { public static void main(String[] a) { System.out.println(\"hi\"); } }\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("P.java");
    std::fs::write(&file, program).expect("write P.java");
    let result = warden.run(&[file.to_str().expect("utf-8 path")], b"");
    assert_ran(&result, Expect::Exited(0), "hi\n", "P.java in com.example");

    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("com/ex")).expect("mkdir com/ex");
    let main = "package com.ex;\npublic class Main { public static void main(String[] a) { System.out.println(Util.twice(21)); } }\n";
    let util = "package com.ex;\nclass Util { static int twice(int x) { return 2 * x; } }\n";
    std::fs::write(tree.join("com/ex/Main.java"), main).expect("write Main.java");
    std::fs::write(tree.join("com/ex/Util.java"), util).expect("write Util.java");
    let tree = tree.to_str().expect("utf-8 path");
    let result = warden.run(&[tree, "--entry", "com/ex/Main.java"], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "42\n",
        "--entry com/ex/Main.java",
    );
}

/// Bug hunt: a public class without `main` named the file and was run ("Main method not found
/// in class Data"); the file keeps its name, and the class holding `main` runs.
#[test]
fn java_runs_the_class_holding_main_beside_a_public_class() {
    let warden = Warden::for_language("java");
    let program = "public class Data {}\nclass Runner { public static void main(String[] a) { System.out.println(1); } }\n";
    let result = warden.code("java", program, &[], b"");
    assert_ran(&result, Expect::Exited(0), "1\n", "Data and Runner");
}

/// Hunt lang 3: `main` was found only as `static void main`, so a runner whose `main` was
/// `static public` or `public static final` was missed beside a public class of data, and so
/// was the runner after a public class whose nested class has a `main` (taken for the public
/// class's own): the JVM ran `Data` ("Main method not found in class Data").
#[test]
fn java_runs_the_class_holding_main_whatever_its_modifiers() {
    let warden = Warden::for_language("java");
    for main in [
        "static public void main(String[] a)",
        "public static final void main(String[] a)",
        "@SuppressWarnings({\"unused\"}) static synchronized strictfp public void main(String[] a)",
    ] {
        let program = format!(
            "public class Data {{ int x; static class Inner {{ public static void main(String[] a) {{ System.out.println(\"inner\"); }} }} }}\n\
             class Runner {{ {main} {{ System.out.println(\"runner\"); }} }}\n"
        );
        let result = warden.code("java", &program, &[], b"");
        assert_ran(&result, Expect::Exited(0), "runner\n", main);
    }
}

/// Bug hunt: the sandbox has no /sys, so the JVM saw no memory limit and sized its heap from
/// the host's memory (a quarter of it): a program making 3000 MiB of garbage with 1 MiB live
/// filled a young generation larger than a 96 MiB limit before collecting, and was killed
/// (`memory_limit`) where trusted mode, whose JVM sees the cgroup, exited 0; a program
/// filling its heap was `memory_limit` rather than Java's own OutOfMemoryError.
#[test]
fn java_sizes_its_heap_from_the_memory_limit() {
    let warden = Warden::for_language("java");
    let garbage = r#"
public class Main {
    public static void main(String[] args) {
        long total = 0;
        for (int i = 0; i < 3000; i++) {
            byte[] b = new byte[1 << 20];
            b[i % 1000] = 1;
            total += b.length;
        }
        System.out.println("allocated " + (total >> 20) + " MiB");
        System.out.println("heap within the limit " + (Runtime.getRuntime().maxMemory() <= (96L << 20)));
    }
}
"#;
    let result = warden.code("java", garbage, &["--memory", "96MiB"], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "allocated 3000 MiB\nheap within the limit true\n",
        "java garbage under 96MiB",
    );
    let full = r#"
import java.util.ArrayList;
import java.util.List;

public class Main {
    public static void main(String[] args) {
        List<byte[]> live = new ArrayList<>();
        for (;;) live.add(new byte[1 << 20]);
    }
}
"#;
    let result = warden.code("java", full, &["--memory", MEMORY_LIMIT], b"");
    assert_outcome(&result, Expect::Exited(1).to_json(), "java heap filled");
    let stderr = result["stderr"].as_str().expect("stderr is text");
    assert!(
        stderr.contains("java.lang.OutOfMemoryError: Java heap space"),
        "{result:#}"
    );
}

/// Regression hunt: with the heap sized from the limit by the runtimes' own defaults (the
/// JVM's, a quarter of it; V8's old generation given half), a program whose live heap needed
/// more than that, and which ran within the limit before, ended with the runtime's
/// out-of-memory error. Three quarters of a 512 MiB limit hold 256 MiB live.
#[test]
fn java_and_node_hold_a_live_heap_of_half_the_limit() {
    let java = r#"
import java.util.ArrayList;
import java.util.List;

public class Main {
    public static void main(String[] args) {
        List<byte[]> live = new ArrayList<>();
        for (int i = 0; i < 256; i++) live.add(new byte[1 << 20]);
        System.out.println("held " + live.size() + " MiB");
    }
}
"#;
    let result = Warden::for_language("java").code("java", java, &["--memory", "512MiB"], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "held 256 MiB\n",
        "java, 256 MiB live",
    );
    // Arrays of small numbers: V8 keeps each as a small integer, 8 bytes, in the old
    // generation once it has survived.
    let node = "const live = [];\n\
                for (let i = 0; i < 256; i++) live.push(new Array(131072).fill(i));\n\
                console.log(`held ${live.length} MiB`);\n";
    let result =
        Warden::for_language("javascript").code("javascript", node, &["--memory", "512MiB"], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "held 256 MiB\n",
        "node, 256 MiB live",
    );
}

/// Bug hunt: Node sized its V8 heap from the host's memory (4144 MiB on a 24 GiB host under a
/// 128 MiB limit); its old generation is given three quarters of the run's memory limit
/// (96 MiB, and V8 adds its young generation's 48: 144 MiB).
#[test]
fn javascript_sizes_its_heap_from_the_memory_limit() {
    let warden = Warden::for_language("javascript");
    let program = "const limit = require('v8').getHeapStatistics().heap_size_limit;\n\
                   console.log(limit <= (144 << 20));\n";
    let result = warden.code("javascript", program, &["--memory", MEMORY_LIMIT], b"");
    assert_ran(&result, Expect::Exited(0), "true\n", "node's heap limit");
}

/// Go's collector let the heap grow to twice what was live and knew nothing of the limit: a
/// program holding 150 MiB and making garbage was killed as `memory_limit` under 256 MiB.
/// With `GOMEMLIMIT` at three quarters of the limit (`[run] env`), it collects in time.
#[test]
fn go_collects_before_the_memory_limit() {
    let program = r#"
package main

import (
	"fmt"
	"os"
)

func main() {
	live := make([][]byte, 0, 150)
	for i := 0; i < 150; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(i)
		}
		live = append(live, b)
	}
	for r := 0; r < 400; r++ {
		g := make([]byte, 1<<20)
		for j := 0; j < len(g); j += 4096 {
			g[j] = byte(r)
		}
	}
	fmt.Println("held", len(live), "MiB;", os.Getenv("GOMEMLIMIT"))
}
"#;
    let result = Warden::for_language("go").code("go", program, &["--memory", "256MiB"], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "held 150 MiB; 192MiB\n",
        "go, 150 MiB live and garbage",
    );
}

#[test]
fn go_builds_package_main_without_a_module() {
    let warden = Warden::for_language("go");
    let program = r#"
package main

import (
	"fmt"
	"sort"
)

func main() {
	xs := []int{3, 1, 2}
	sort.Ints(xs)
	fmt.Println(xs)
}
"#;
    let result = warden.code("go", program, &[], b"");
    assert_ran(&result, Expect::Exited(0), "[1 2 3]\n", "fmt and sort");
}

/// A compiler's diagnostics past the output limit are cut, not a failure (Judge0 users'
/// correct programs with thousands of warnings were `compile_error`): the program compiles
/// and runs, and `compile.stderr_truncated` says the warnings were cut; a program that does
/// not compile after such a flood is a compile error with the compiler's own exit status.
#[test]
fn c_compiles_a_program_whose_warnings_pass_the_output_limit() {
    let warden = Warden::for_language("c");
    let dir = tempfile::tempdir().expect("tempdir");
    // About 700 bytes of diagnostics each, 1.4 MB in all (GCC slows down with the number of
    // warnings far more than with their length).
    let long = "x".repeat(300);
    let warnings: String = (0..2_000)
        .map(|i| format!("#warning \"warning {i} {long}\"\n"))
        .collect();
    let program = dir.path().join("noisy.c");
    let main = "#include <stdio.h>\nint main(void) { puts(\"compiled\"); return 0; }\n";
    std::fs::write(&program, format!("{warnings}{main}")).expect("write noisy.c");
    let result = warden.run(&[program.to_str().expect("utf-8 path")], b"");
    assert_ran(&result, Expect::Exited(0), "compiled\n", "noisy.c");
    let compile = &result["compile"];
    assert_eq!(compile["stderr_truncated"], true, "{compile:#}");
    let stderr = compile["stderr"].as_str().expect("compile.stderr is text");
    assert_eq!(stderr.len(), 1 << 20, "cut at the 1MiB output limit");
    assert!(
        stderr.starts_with("/work/noisy.c:1:2: warning: #warning"),
        "{stderr:.200}"
    );
    assert_eq!(result["security"]["violations"], json!([]), "{result:#}");

    let broken = dir.path().join("broken.c");
    std::fs::write(
        &broken,
        format!("{warnings}int main(void) {{ return {UNDECLARED}; }}\n"),
    )
    .expect("write broken.c");
    let result = warden.run(&[broken.to_str().expect("utf-8 path")], b"");
    assert_outcome(&result, json!({ "kind": "compile_error" }), "broken.c");
    assert_eq!(
        result["compile"]["outcome"],
        json!({"kind": "exited", "code": 1}),
        "{result:#}"
    );
    assert_eq!(result["compile"]["stderr_truncated"], true, "{result:#}");
}

/// Regression (hunt lang 3): `warden run --compile-option -Wall` showed no warning (only
/// `--json`'s `compile.stderr` had it). The compiler's output of a successful compile is on
/// stderr before the program's output, as running gcc oneself shows it; not on stdout, and not
/// again from the cache.
#[test]
fn compiler_warnings_show_before_the_programs_output() {
    let warden = Warden::for_language("c");
    let dir = tempfile::tempdir().expect("tempdir");
    let both = dir.path().join("both");
    let code = "#include <stdio.h>\nint main(void) { int unused; printf(\"hi\\n\"); return 0; }\n";
    let run = |stdout: Stdio, stderr: Stdio| {
        warden
            .world
            .warden()
            .args(["run", "--compile-option", "-Wall", "-l", "c", "-c", code])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .output()
            .expect("warden runs")
    };
    // Both streams to one file, so that their order shows.
    let file = std::fs::File::create(&both).expect("create");
    let out = run(
        Stdio::from(file.try_clone().expect("clone")),
        Stdio::from(file),
    );
    assert_eq!(out.status.code(), Some(0));
    let together = std::fs::read_to_string(&both).expect("read");
    let warning = together
        .find("warning: unused variable")
        .unwrap_or_else(|| panic!("no warning shown: {together}"));
    let program = together.find("hi\n").expect("the program's output");
    assert!(warning < program, "{together}");

    // From the cache: the program's output alone (docs/cli.md).
    let out = run(Stdio::piped(), Stdio::piped());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn c_links_libm() {
    let warden = Warden::for_language("c");
    // The argument comes from argv so that GCC cannot fold sqrt into a constant.
    let program = r#"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("%.3f\n", sqrt(atof(argv[1])));
    return 0;
}
"#;
    let result = warden.code("c", program, &["--", "2"], b"");
    assert_ran(&result, Expect::Exited(0), "1.414\n", "sqrt");
}

#[test]
fn cpp_standard_library_works() {
    let warden = Warden::for_language("cpp");
    let program = r#"
#include <algorithm>
#include <iostream>
#include <map>
#include <string>
#include <vector>

int main() {
    std::vector<std::string> words{"pear", "apple", "pear", "fig"};
    std::sort(words.begin(), words.end());
    std::map<std::string, int> counts;
    for (const auto &w : words) counts[w]++;
    for (const auto &[word, n] : counts) std::cout << word << " " << n << "\n";
}
"#;
    let result = warden.code("cpp", program, &[], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "apple 1\nfig 1\npear 2\n",
        "vector, algorithm, map",
    );
}

#[test]
fn python_imports_a_module_from_another_file() {
    let warden = Warden::for_language("python");
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.py");
    let util = dir.path().join("util.py");
    std::fs::write(&main, "import util\nprint(util.greet('files'))\n").expect("write main.py");
    std::fs::write(&util, "def greet(who):\n    return 'hello, ' + who\n").expect("write util.py");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();

    let result = warden.run(&[&path(&main), &path(&util)], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "hello, files\n",
        "main.py util.py",
    );
    assert_eq!(result["language"], "python", "{result:#}");

    let result = warden.run(&[&path(dir.path()), "--entry", "main.py"], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "hello, files\n",
        "a directory with --entry",
    );
}

/// Bug hunt: a program's files were all laid out 0644, so a helper script it runs by its path
/// failed with a PermissionError; a file executable on the host (any x bit) is executable in
/// the sandbox, given one by one or in a directory.
#[test]
fn a_file_executable_on_the_host_stays_executable() {
    use std::os::unix::fs::PermissionsExt;
    let warden = Warden::for_language("python");
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.py");
    let helper = dir.path().join("helper.sh");
    let data = dir.path().join("data.txt");
    std::fs::write(
        &main,
        "import os, subprocess\nsubprocess.run(['./helper.sh'], check=True)\nprint(os.access('data.txt', os.X_OK))\n",
    )
    .expect("write main.py");
    std::fs::write(&helper, "#!/bin/sh\necho hi\n").expect("write helper.sh");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o744)).expect("chmod");
    std::fs::write(&data, "").expect("write data.txt");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();

    let result = warden.run(&[&path(dir.path()), "--entry", "main.py"], b"");
    assert_ran(&result, Expect::Exited(0), "hi\nFalse\n", "a directory");
    let result = warden.run(&[&path(&main), &path(&helper), &path(&data)], b"");
    assert_ran(
        &result,
        Expect::Exited(0),
        "hi\nFalse\n",
        "files one by one",
    );
}

#[test]
fn c_links_several_files() {
    let warden = Warden::for_language("c");
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.c");
    let helper = dir.path().join("helper.c");
    let main_code = "#include <stdio.h>\nint twice(int);\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }\n";
    std::fs::write(&main, main_code).expect("write main.c");
    std::fs::write(&helper, "int twice(int x) { return 2 * x; }\n").expect("write helper.c");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();

    let result = warden.run(&[&path(&main), &path(&helper)], b"");
    assert_ran(&result, Expect::Exited(0), "42\n", "main.c helper.c");
    assert_eq!(result["language"], "c", "{result:#}");
}

/// A sanitizer build runs: LeakSanitizer, which ASan starts at exit, needs ptrace, which the
/// seccomp filter denies, so the C and C++ environments turn leak detection off; before they
/// did, a clean `-fsanitize=address` program exited 1 with "LeakSanitizer has encountered a
/// fatal error" and a denied_syscall violation. ASan's own checks still catch an overflow.
#[test]
fn address_sanitizer_builds_run_clean_and_still_catch_an_overflow() {
    let clean = [
        ("c", "#include <stdio.h>\n#include <stdlib.h>\nint main(void) { char *leaked = malloc(8); leaked = 0; puts(\"clean program\"); return 0; }\n"),
        ("cpp", "#include <iostream>\nint main() { new int[4]; std::cout << \"clean program\" << std::endl; }\n"),
    ];
    // The index comes from argc so that the compiler cannot see the overflow.
    let overflow = "#include <stdlib.h>\nint main(int argc, char **argv) { (void)argv; int *p = (int *)malloc(4 * sizeof(int)); p[argc + 3] = 1; return p[0]; }\n";
    for (lang, code) in clean {
        let warden = Warden::for_language(lang);
        let asan = ["--compile-option=-fsanitize=address", "--compile-option=-g"];
        let result = warden.code(lang, code, &asan, b"");
        let what = format!("{lang} -fsanitize=address, clean");
        assert_ran(&result, Expect::Exited(0), "clean program\n", &what);
        assert_eq!(result["stderr"], "", "{what}: {result:#}");
        assert_eq!(
            result["security"]["violations"],
            json!([]),
            "{what}: {result:#}"
        );

        let result = warden.code(lang, overflow, &asan, b"");
        let what = format!("{lang} -fsanitize=address, heap-buffer-overflow");
        assert_ran(&result, Expect::Exited(1), "", &what);
        let stderr = result["stderr"].as_str().expect("stderr is text");
        assert!(
            stderr.contains("ERROR: AddressSanitizer: heap-buffer-overflow"),
            "{what}: {stderr}"
        );
    }
}

/// An entry file is compiled as its language's source whatever its name: before, gcc handed
/// `prog.txt` or an extensionless `prog` to the linker ("file format not recognized"), built a
/// precompiled header from `x.h`, and `go build` took `prog2.txt` for a package ("cannot import
/// absolute path"). Now each is laid out under the language's own extension.
#[test]
fn an_entry_file_without_the_languages_extension_compiles_as_its_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = "#include <stdio.h>\n#include <stdlib.h>\nint main(void) { char *s = malloc(3); printf(\"c %d\\n\", s != NULL); free(s); return 0; }\n";
    let cpp = "#include <iostream>\nint main() { std::cout << \"cpp \" << __cplusplus / 100 % 10 << std::endl; }\n";
    let go = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"go\", 1)\n}\n";
    let rust = "fn main() { println!(\"rust 1\"); }\n";
    let cases: [(&str, Option<&str>, &str, &str); 13] = [
        ("prog.txt", Some("c"), c, "c 1\n"),
        // Detected as C by its content, then compiled as C.
        ("prog", None, c, "c 1\n"),
        // A header as the entry is compiled as a source file of its language.
        ("x.h", None, c, "c 1\n"),
        ("x.h", Some("cpp"), cpp, "cpp 7\n"),
        ("x.hpp", None, cpp, "cpp 7\n"),
        ("prog.txt", Some("cpp"), cpp, "cpp 7\n"),
        ("prog2.txt", Some("go"), go, "go 1\n"),
        ("prog", Some("go"), go, "go 1\n"),
        // Regression (hunt lang 7): `go build` skips tests and `_` names ("no packages to
        // build"); either entry is built as main.go.
        ("sol_test.go", Some("go"), go, "go 1\n"),
        ("_sol.go", Some("go"), go, "go 1\n"),
        // Regression (hunt lang 2): `.C` and `.CPP` are C++ to gcc, and detected so; they
        // were detected as C, laid out as `hello.c` and failed on `<iostream>`.
        ("hello.C", None, cpp, "cpp 7\n"),
        ("hello.CPP", None, cpp, "cpp 7\n"),
        ("prog.txt", Some("rust"), rust, "rust 1\n"),
    ];
    for (name, lang, code, stdout) in cases {
        let language = lang.unwrap_or(if code == c { "c" } else { "cpp" });
        let warden = Warden::for_language(language);
        let path = dir.path().join(name);
        std::fs::write(&path, code).expect("write the program");
        let mut args = vec![path.to_str().expect("utf-8 path")];
        if let Some(lang) = lang {
            args.extend(["-l", lang]);
        }
        let result = warden.run(&args, b"");
        let what = format!("{name} as {language}");
        assert_ran(&result, Expect::Exited(0), stdout, &what);
        assert_eq!(result["language"], language, "{what}: {result:#}");
    }
}

/// Bug hunt: rustc names the crate after the file, and refused valid file names that are no
/// identifier ("invalid character `(` in crate name: `sol(1)`"); the crate is named `main`.
#[test]
fn rust_compiles_a_file_whose_name_is_no_crate_name() {
    let warden = Warden::for_language("rust");
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["sol(1).rs", "a b.rs", "prob.1.rs"] {
        let path = dir.path().join(name);
        std::fs::write(&path, "fn main() { println!(\"rust 1\"); }\n").expect("write");
        let result = warden.run(&[path.to_str().expect("utf-8 path")], b"");
        assert_ran(&result, Expect::Exited(0), "rust 1\n", name);
    }
}

/// Bug hunt: a Go `package foo` or a Rust library compiles into an `ar` archive, which the run
/// stage executed: "sandbox setup failed at execve /work/main: EACCES", exit 125 and nothing
/// in the history, as if warden had failed. It is the program's compile error, recorded as
/// such, and not kept in the compile cache to be run again.
#[test]
fn a_library_where_a_program_belongs_is_a_compile_error() {
    let cases = [
        ("go", "package foo\nfunc F() {}\n"),
        ("rust", "#![crate_type = \"lib\"]\npub fn f() {}\n"),
    ];
    for (lang, code) in cases {
        let warden = Warden::for_language(lang);
        for attempt in ["first", "again"] {
            let result = warden.code(lang, code, &[], b"");
            let what = format!("{lang} library, {attempt}");
            assert_outcome(&result, json!({ "kind": "compile_error" }), &what);
            assert_eq!(result["compile"]["cached"], false, "{what}: {result:#}");
            let stderr = result["compile"]["stderr"].as_str().unwrap_or_default();
            assert!(
                stderr.contains("the compiler produced no executable program: main is an archive"),
                "{what}: {result:#}"
            );
        }
        let out = warden
            .world
            .warden()
            .args(["history", "--json"])
            .output()
            .expect("warden history runs");
        let history: Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
        let outcomes: Vec<&Value> = history
            .as_array()
            .expect("an array")
            .iter()
            .map(|e| &e["outcome"])
            .collect();
        let compile_error = json!({ "kind": "compile_error" });
        assert_eq!(outcomes, [&compile_error; 2], "{lang}: {history:#}");
    }
}

/// Hunt "lang" 2: a Rust `dylib` or `cdylib` is a shared object for this machine, with no
/// entry point; it passed as a program, was kept in the compile cache, and every run of it
/// jumped to address 0 (`SIGSEGV`). It is the program's compile error, and not cached.
#[test]
fn a_shared_library_where_a_program_belongs_is_a_compile_error() {
    let warden = Warden::for_language("rust");
    let cases = [
        "#![crate_type = \"dylib\"]\npub fn f() -> i32 { 3 }\n",
        "#![crate_type = \"cdylib\"]\n#[no_mangle]\npub extern \"C\" fn f() -> i32 { 3 }\n",
    ];
    for code in cases {
        for attempt in ["first", "again"] {
            let result = warden.code("rust", code, &[], b"");
            let what = format!("{code:?}, {attempt}");
            assert_outcome(&result, json!({ "kind": "compile_error" }), &what);
            assert_eq!(result["compile"]["cached"], false, "{what}: {result:#}");
            let stderr = result["compile"]["stderr"].as_str().unwrap_or_default();
            assert!(
                stderr.contains(
                    "warden: the compiler produced no executable program: main is a shared library"
                ),
                "{what}: {result:#}"
            );
        }
    }
}

/// Hunt "lang" F1 and F2: HOME and the working directory are the workspace, so R ran a
/// program's `.Rprofile` (and read its `.Renviron`, and searched its user library first), and
/// RubyGems ran the gemspecs of its `.gem` user directory at start-up, no program file naming
/// them. The runtimes are told not to: a payload in those files does not run.
#[test]
fn runtimes_do_not_load_start_up_files_from_the_workspace() {
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let r = Warden::for_language("r");
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let file = dir.path().join(name);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    };
    write(".Rprofile", "cat(\"PROFILE RAN\\n\")\n");
    write(".Renviron", "FROM_RENVIRON=yes\n");
    write(
        "R/x86_64-pc-linux-gnu-library/4.2/README",
        "a user library\n",
    );
    write(
        "main.R",
        "cat(\"hello\", Sys.getenv(\"FROM_RENVIRON\"), any(grepl(\"^/work\", .libPaths())), \
         nzchar(Sys.getenv(\"_R_CHECK_COMPILATION_FLAGS_KNOWN_\")), \"\\n\")\n",
    );
    // The site's Renviron.site (Debian's sets that variable) is the operator's, still read
    // (hunt regress 5: `--no-environ` skipped it too).
    let result = r.run(&[&path(dir.path()), "--entry", "main.R"], b"");
    assert_ran(&result, Expect::Exited(0), "hello  FALSE TRUE \n", "r");

    let ruby = Warden::for_language("ruby");
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir
        .path()
        .join(".gem/ruby/3.1.0/specifications/error_highlight-99.gemspec");
    std::fs::create_dir_all(spec.parent().expect("a parent")).expect("mkdir");
    std::fs::write(
        &spec,
        "puts \"GEMSPEC RAN\"\nGem::Specification.new { |s| s.name = \"error_highlight\"; s.version = \"99\" }\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("main.rb"),
        "puts \"hello #{Gem.path.grep(%r{^/work}).inspect}\"\n",
    )
    .expect("write");
    let result = ruby.run(&[&path(dir.path()), "--entry", "main.rb"], b"");
    assert_ran(&result, Expect::Exited(0), "hello []\n", "ruby");
}
