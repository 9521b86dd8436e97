//! Language detection, table-driven: extensions, shebangs, content, the confusable pairs, and
//! inputs that must fail cleanly (docs/cli.md#detection).

use warden_core::detect::{detect, resolve, DetectError, DetectedBy, Detection, SCANNED_BYTES};
use warden_core::Catalog;

fn catalog() -> Catalog {
    Catalog::builtin().expect("the embedded catalog is valid")
}

/// `(language, by)` or the error's kind, for compact assertions.
fn outcome(result: &Result<Detection<'_>, DetectError>) -> String {
    match result {
        Ok(d) => format!("{} by {}", d.language.id, d.by),
        Err(DetectError::Ambiguous { .. }) => "ambiguous".to_owned(),
        Err(DetectError::Undetected { .. }) => "undetected".to_owned(),
        Err(DetectError::Unknown { .. }) => "unknown".to_owned(),
    }
}

/// An ordinary program per language: a hello world and a small algorithm, as someone would
/// paste it with `-c`.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "python",
        r#"def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

if __name__ == "__main__":
    print("Hello, world!")
    print([fib(i) for i in range(10)])
"#,
    ),
    (
        "python",
        r#"import sys

class Stack:
    def __init__(self):
        self.items = []

    def push(self, x):
        self.items.append(x)

words = sys.stdin.read().split()
s = Stack()
for w in words:
    if w == "pop":
        s.items.pop()
    elif w:
        s.push(w)
print(len(s.items))
"#,
    ),
    (
        "javascript",
        r#"function fib(n) {
  let a = 0, b = 1;
  for (let i = 0; i < n; i++) {
    [a, b] = [b, a + b];
  }
  return a;
}

console.log("Hello, world!");
const xs = [...Array(10).keys()].map((i) => fib(i));
console.log(xs.join(" "));
"#,
    ),
    (
        "bash",
        r#"fib() {
  local n=$1 a=0 b=1
  for ((i = 0; i < n; i++)); do
    local t=$((a + b))
    a=$b
    b=$t
  done
  echo "$a"
}

echo "Hello, world!"
for i in $(seq 0 9); do
  if [ "$i" -gt 5 ]; then
    fib "$i"
  fi
done
"#,
    ),
    (
        "java",
        r#"import java.util.ArrayList;
import java.util.List;

public class Main {
    static long fib(int n) {
        long a = 0, b = 1;
        for (int i = 0; i < n; i++) {
            long t = a + b;
            a = b;
            b = t;
        }
        return a;
    }

    public static void main(String[] args) {
        System.out.println("Hello, world!");
        List<Long> xs = new ArrayList<>();
        for (int i = 0; i < 10; i++) xs.add(fib(i));
        System.out.println(xs);
    }
}
"#,
    ),
    (
        "go",
        r#"package main

import "fmt"

func fib(n int) int {
	a, b := 0, 1
	for i := 0; i < n; i++ {
		a, b = b, a+b
	}
	return a
}

func main() {
	fmt.Println("Hello, world!")
	for i := 0; i < 10; i++ {
		fmt.Printf("%d ", fib(i))
	}
}
"#,
    ),
    (
        "rust",
        r#"fn fib(n: u32) -> u64 {
    let (mut a, mut b) = (0, 1);
    for _ in 0..n {
        let t = a + b;
        a = b;
        b = t;
    }
    a
}

fn main() {
    println!("Hello, world!");
    let xs: Vec<u64> = (0..10).map(fib).collect();
    println!("{:?}", xs);
}
"#,
    ),
    (
        "c",
        r#"#include <stdio.h>

static long fib(int n) {
    long a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        long t = a + b;
        a = b;
        b = t;
    }
    return a;
}

int main(void) {
    printf("Hello, world!\n");
    for (int i = 0; i < 10; i++)
        printf("%ld ", fib(i));
    return 0;
}
"#,
    ),
    (
        "cpp",
        r#"#include <iostream>
#include <vector>

long fib(int n) {
    long a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
        long t = a + b;
        a = b;
        b = t;
    }
    return a;
}

int main() {
    std::cout << "Hello, world!" << std::endl;
    std::vector<long> xs;
    for (int i = 0; i < 10; ++i) xs.push_back(fib(i));
    for (auto x : xs) std::cout << x << ' ';
}
"#,
    ),
    (
        "ruby",
        r#"def fib(n)
  a, b = 0, 1
  n.times { a, b = b, a + b }
  a
end

puts "Hello, world!"
(0...10).each do |i|
  puts fib(i) if i.even?
end
"#,
    ),
    (
        "php",
        r#"<?php
function fib($n) {
    $a = 0;
    $b = 1;
    for ($i = 0; $i < $n; $i++) {
        [$a, $b] = [$b, $a + $b];
    }
    return $a;
}

echo "Hello, world!\n";
echo implode(" ", array_map('fib', range(0, 9))), "\n";
"#,
    ),
    (
        "r",
        r#"fib <- function(n) {
  a <- 0
  b <- 1
  for (i in seq_len(n)) {
    t <- a + b
    a <- b
    b <- t
  }
  a
}

cat("Hello, world!\n")
print(sapply(0:9, fib))
"#,
    ),
];

#[test]
fn every_extension_of_every_language_maps_to_it() {
    let catalog = catalog();
    for lang in catalog.iter() {
        for ext in &lang.extensions {
            // In another case, unless another language claims that spelling (`C`, C++'s).
            let upper = ext.to_uppercase();
            let other_case = (!catalog.claims_exactly(&upper)).then(|| format!("dir/Main.{upper}"));
            for name in std::iter::once(format!("main.{ext}")).chain(other_case) {
                let found = detect(&catalog, Some(&name), "").expect("an owned extension");
                assert_eq!(found.language.id, lang.id, "{name}");
                assert_eq!(found.by, DetectedBy::Extension, "{name}");
                assert!(found.confidence >= 0.75, "{name}: {}", found.confidence);
            }
        }
    }
}

#[test]
fn an_unshared_extension_is_nearly_certain_whatever_the_content() {
    let catalog = catalog();
    let found = detect(&catalog, Some("x.py"), "<?php echo 1;").expect("extension");
    assert_eq!(found.language.id.as_str(), "python");
    assert!(found.confidence > 0.98);
    assert_eq!(found.runner_up, None);
}

#[test]
fn shebangs_name_the_interpreter() {
    let catalog = catalog();
    let cases = [
        ("#!/usr/bin/env python3\nx = 1\n", "python"),
        ("#!/usr/bin/python3.12\n", "python"),
        ("#!/bin/bash\nx=1\n", "bash"),
        ("#!/bin/sh\n", "bash"),
        ("#!/usr/bin/env node\nx = 1\n", "javascript"),
        ("#!/usr/bin/ruby\nx = 1\n", "ruby"),
        ("#!/usr/bin/env Rscript\nx = 1\n", "r"),
        ("#!/usr/bin/php\n<?php\n", "php"),
    ];
    for (code, expected) in cases {
        for name in [None, Some("script"), Some("script.txt")] {
            let found = detect(&catalog, name, code).expect(code);
            assert_eq!(
                found.language.id.as_str(),
                expected,
                "{code:?} named {name:?}"
            );
            assert_eq!(found.by, DetectedBy::Shebang);
            assert!(found.confidence >= 0.9);
        }
    }
    // An interpreter warden does not know says nothing; the content still may.
    let perl = detect(&catalog, None, "#!/usr/bin/perl\nprint 1;\n");
    assert_ne!(outcome(&perl), "python by shebang");
}

#[test]
fn the_extension_comes_before_the_shebang() {
    let catalog = catalog();
    let found = detect(&catalog, Some("x.rb"), "#!/usr/bin/env python3\n").expect("ext");
    assert_eq!(outcome(&Ok(found)), "ruby by extension");
}

#[test]
fn ordinary_programs_are_recognised_by_content_alone() {
    let catalog = catalog();
    for (expected, code) in PROGRAMS {
        let found = detect(&catalog, None, code);
        assert_eq!(
            outcome(&found),
            format!("{expected} by content"),
            "{expected}: {found:?}"
        );
        let found = found.expect("detected");
        assert!(
            found.confidence >= 0.8,
            "{expected}: confident enough to run without a notice: {}",
            found.confidence
        );
        if let Some(second) = &found.runner_up {
            assert!(
                second.confidence < found.confidence / 2.0,
                "{expected}: {second}"
            );
        }
    }
}

#[test]
fn every_smoke_test_is_recognised_by_content() {
    let catalog = catalog();
    for lang in catalog.iter() {
        let found = detect(&catalog, None, &lang.smoke.code);
        assert_eq!(
            outcome(&found),
            format!("{} by content", lang.id),
            "{}",
            lang.smoke.code
        );
    }
}

#[test]
fn confusable_pairs_are_told_apart() {
    let catalog = catalog();
    let cases: &[(Option<&str>, &str, &str)] = &[
        // A header is C's extension, shared with C++: the content decides.
        (Some("util.h"), "#include <vector>\nclass Point {\npublic:\n  std::vector<int> xs;\n};\n", "cpp"),
        (Some("util.h"), "#include <stdio.h>\ntypedef struct { int x; } point;\nvoid show(point *p);\n", "c"),
        (Some("util.h"), "", "c"),
        // Regression (hunt lang 2): gcc compiles `.C` as C++ (and takes `.H` for a C++
        // header), whatever the content; `.c` is C.
        (Some("hello.C"), "#include <iostream>\nint main() { std::cout << 1; }\n", "cpp"),
        (Some("hello.C"), "", "cpp"),
        (Some("util.H"), "#include <stdio.h>\ntypedef struct { int x; } point;\n", "cpp"),
        (Some("hello.c"), "#include <stdio.h>\nint main(void) { return 0; }\n", "c"),
        (Some("hello.CPP"), "", "cpp"),
        (None, "#include <stdio.h>\n#include <iostream>\nint main() { std::cout << 1; }\n", "cpp"),
        (None, "#include <stdio.h>\n#include <stdlib.h>\nint main(void) { printf(\"%d\\n\", 1); return 0; }\n", "c"),
        // `def` in Ruby and Python.
        (None, "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n", "python"),
        (None, "def add(a, b)\n  a + b\nend\n\nputs add(1, 2)\n", "ruby"),
        // `echo` in PHP and Bash.
        (None, "<?php\necho \"hi\";\n", "php"),
        (None, "<?php echo 'hi';", "php"),
        (None, "name=world\necho \"hello $name\"\nif [ -n \"$name\" ]; then\n  echo ok\nfi\n", "bash"),
        // `function` in JavaScript and R, `<-` only in R.
        (None, "square <- function(x) x^2\nprint(square(3))\n", "r"),
        (None, "const square = function (x) { return x * x; };\nconsole.log(square(3));\n", "javascript"),
        // `fn` and `func`, `let` in Rust and JavaScript.
        (None, "fn main() {\n    let mut total = 0;\n    for i in 1..=10 { total += i; }\n    println!(\"{total}\");\n}\n", "rust"),
        (None, "let total = 0;\nfor (let i = 1; i <= 10; i++) total += i;\nconsole.log(total);\n", "javascript"),
        (None, "package main\n\nfunc main() {\n\tprintln(\"hi\")\n}\n", "go"),
        // `public class` in Java, not C++.
        (None, "public class Hello {\n    public static void main(String[] args) {\n        System.out.println(\"hi\");\n    }\n}\n", "java"),
    ];
    for (name, code, expected) in cases {
        let found = detect(&catalog, *name, code);
        let got = found.as_ref().map(|d| d.language.id.as_str());
        assert_eq!(got, Ok(*expected), "{name:?} {code:?}: {found:?}");
    }
}

#[test]
fn a_header_names_the_other_candidate_as_runner_up() {
    let catalog = catalog();
    let code = "#include <string>\nnamespace util {\nstd::string name();\n}\n";
    let found = detect(&catalog, Some("util.h"), code).expect("detected");
    assert_eq!(found.language.id.as_str(), "cpp");
    assert_eq!(found.by, DetectedBy::Extension);
    let second = found.runner_up.expect("c is the other candidate");
    assert_eq!(second.language.as_str(), "c");
    assert!(second.confidence < found.confidence);
    // Without telling content the owner wins, less than certain.
    let empty = detect(&catalog, Some("util.h"), "int x;\n").expect("detected");
    assert_eq!(empty.language.id.as_str(), "c");
    assert!(empty.confidence < 0.99);
}

#[test]
fn too_little_to_go_on_is_an_error_not_a_confident_guess() {
    let catalog = catalog();
    let cases = [
        "x = 1",
        "x = 1\n",
        "",
        "   \n\n\t\n",
        "hello",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\nSed do eiusmod tempor.\n",
        "1 + 2",
        "{}",
    ];
    for code in cases {
        let found = detect(&catalog, None, code);
        match &found {
            Err(DetectError::Ambiguous { .. } | DetectError::Undetected { .. }) => {}
            Ok(d) => assert!(d.confidence < 0.5, "{code:?}: {d:?}"),
            Err(e) => panic!("{code:?}: {e}"),
        }
    }
}

#[test]
fn a_decisive_construct_alone_is_enough() {
    let catalog = catalog();
    let cases = [
        ("<?php echo 1;", "php"),
        ("#include <iostream>\n", "cpp"),
        ("public static void main", "java"),
    ];
    for (code, expected) in cases {
        let found = detect(&catalog, None, code).expect(code);
        assert_eq!(found.language.id.as_str(), expected, "{code}");
        assert!(found.confidence >= 0.8, "{code}: {}", found.confidence);
    }
}

#[test]
fn one_liners_are_found_with_low_confidence() {
    let catalog = catalog();
    let cases = [
        ("echo hi", "bash"),
        ("puts 'hi'", "ruby"),
        ("console.log(1)", "javascript"),
        ("fmt.Println(1)", "go"),
        ("x <- 1", "r"),
    ];
    for (code, expected) in cases {
        let found = detect(&catalog, None, code).expect(code);
        assert_eq!(found.language.id.as_str(), expected, "{code}");
        assert!(found.confidence < 0.8, "{code}: {}", found.confidence);
    }
}

#[test]
fn close_calls_are_ambiguous_and_list_the_candidates() {
    let catalog = catalog();
    // Valid Python and valid R alike.
    let found = detect(&catalog, None, "print(\"hello\")\nprint(1 + 2)\n");
    let Err(err @ DetectError::Ambiguous { candidates, .. }) = &found else {
        panic!("expected ambiguous: {found:?}");
    };
    let ids: Vec<&str> = candidates.iter().map(|c| c.language.as_str()).collect();
    assert!(ids.contains(&"python") && ids.contains(&"r"), "{ids:?}");
    let message = err.to_string();
    for expected in ["python (0.", "r (0."] {
        assert!(message.contains(expected), "{message}");
    }
    assert!(err.needs_language(), "{message}");
}

#[test]
fn errors_say_what_to_do() {
    let catalog = catalog();
    let err = detect(&catalog, Some("notes.txt"), "hello").expect_err("undetectable");
    let message = err.to_string();
    for expected in ["\"notes.txt\"", "python", "javascript", "ruby"] {
        assert!(message.contains(expected), "{message}");
    }
    assert!(err.needs_language(), "{message}");
    let err = resolve(&catalog, Some("cobol"), None, "").expect_err("unknown");
    assert!(err.to_string().contains("py"), "{err}");
}

#[test]
fn an_explicit_language_wins_with_full_confidence() {
    let catalog = catalog();
    let found = resolve(&catalog, Some("node"), Some("x.py"), "puts 1").expect("known");
    assert_eq!(found.language.id.as_str(), "javascript");
    assert_eq!(found.by, DetectedBy::Explicit);
    assert!((found.confidence - 1.0).abs() < f32::EPSILON);
}

#[test]
fn binary_and_garbage_are_undetected_never_a_panic() {
    let catalog = catalog();
    // Deterministic noise covering every byte value.
    let mut state = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..100_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    let elf = [b"\x7fELF\x02\x01\x01\0\0\0".as_slice(), &noise[..4096]].concat();
    let invalid_utf8 = noise.iter().map(|b| b | 0x80).collect::<Vec<u8>>();
    for bytes in [
        noise.as_slice(),
        &elf,
        &invalid_utf8,
        b"\xff\xfe\0\0",
        b"\0",
    ] {
        let text = String::from_utf8_lossy(bytes);
        let found = detect(&catalog, None, &text);
        assert_eq!(outcome(&found), "undetected", "{found:?}");
    }
    // Odd but valid text: whatever the answer, no panic.
    for code in [
        "#!",
        "#!\n",
        "#! ",
        "#!/usr/bin/env",
        "\u{feff}#!/bin/sh",
        "é",
        "\r\n\r",
    ] {
        let _ = detect(&catalog, None, code);
        let _ = detect(&catalog, Some(code), code);
    }
}

#[test]
fn a_huge_input_is_scanned_only_at_its_start() {
    let catalog = catalog();
    let mut code =
        String::from("#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 1); return 0; }\n");
    while code.len() < 10 << 20 {
        code.push_str("/* padding padding padding padding padding padding padding */\n");
    }
    assert!(code.len() > SCANNED_BYTES);
    let found = detect(&catalog, None, &code).expect("detected from the start");
    assert_eq!(found.language.id.as_str(), "c");
    let one_line = "x".repeat(10 << 20);
    assert_eq!(outcome(&detect(&catalog, None, &one_line)), "undetected");
}
