"""One program per language that reads a word from stdin and prints "hello <word>", shared by
the client scripts. Keys are warden's language ids."""

HELLO = {
    "python": 'print("hello", input())\n',
    "c": '#include <stdio.h>\nint main(void) { char s[64]; scanf("%63s", s); printf("hello %s\\n", s); return 0; }\n',
    "cpp": '#include <iostream>\n#include <string>\nint main() { std::string s; std::cin >> s; std::cout << "hello " << s << std::endl; }\n',
    "java": 'import java.util.Scanner;\npublic class Main { public static void main(String[] a) { Scanner s = new Scanner(System.in); System.out.println("hello " + s.next()); } }\n',
    "javascript": 'const s = require("fs").readFileSync(0, "utf8").trim();\nconsole.log("hello " + s);\n',
    "go": 'package main\nimport "fmt"\nfunc main() { var s string; fmt.Scan(&s); fmt.Println("hello", s) }\n',
    "rust": 'use std::io::Read;\nfn main() { let mut s = String::new(); std::io::stdin().read_to_string(&mut s).unwrap(); println!("hello {}", s.trim()); }\n',
    "ruby": 'puts "hello #{gets.strip}"\n',
    "php": '<?php echo "hello " . trim(fgets(STDIN)) . "\\n";\n',
    "r": 'cat(paste("hello", readLines(file("stdin"), n = 1)), "\\n", sep = "")\n',
    "bash": 'read s; echo "hello $s"\n',
}

# A C program that does not compile.
BROKEN_C = "int main(void) { return undefined_name; }\n"
