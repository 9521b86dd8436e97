//! How a program's entry file is named inside the workspace ([`SourceNaming`]): the name the
//! user gave, the language's default for inline code, or, for Java, `<Class>.java` after the
//! class the compiler expects, and the class the JVM runs.

use crate::language::{Language, SourceNaming};

/// The entry file's name in the workspace and, for Java, its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName {
    /// Plain file name.
    pub file: String,
    /// The class to run (`{class}`), by its package-qualified name; empty when the language
    /// has none.
    pub class: String,
    /// Why `file` is not the name given, when it is not.
    pub renamed: Option<Renamed>,
}

/// Why an entry file is laid out under another name than the one given, for a message that
/// names the rule when that name collides with another file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renamed {
    /// No usable name was given (inline code): the language's `source_file`.
    Default,
    /// Named so that the compiler takes it as a source file (`prog.txt` -> `prog.c`).
    AsSource,
    /// The compiler would leave a file so named out (`sol_test.go` -> `main.go`: `go build`
    /// skips tests); a program of other sources keeps it as named ([`keeps_left_out_entry`]).
    LeftOut,
    /// Named after the class it declares, as javac requires (`Prog.java` -> `Main.java`).
    AfterClass {
        /// The class.
        class: String,
    },
}

impl std::fmt::Display for Renamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Renamed::Default => f.write_str("the language's name for code given without one"),
            Renamed::AsSource => f.write_str("so that the compiler takes it as source"),
            Renamed::LeftOut => f.write_str("as the compiler would leave a file so named out"),
            Renamed::AfterClass { class } => {
                write!(f, "after its class {class}, as javac requires")
            }
        }
    }
}

/// Names the entry file of `code`, given the name the user gave it, if any.
pub fn entry_name(language: &Language, given: Option<&str>, code: &str) -> EntryName {
    match language.source_naming {
        SourceNaming::Fixed => {
            let (file, renamed) = match given.filter(|n| is_plain_file_name(n)) {
                None => (language.source_file.clone(), Some(Renamed::Default)),
                Some(n) => {
                    let file = compiled_as_source(language, n);
                    if ignored(language, &file) {
                        (language.source_file.clone(), Some(Renamed::LeftOut))
                    } else {
                        let renamed = (file != n).then_some(Renamed::AsSource);
                        (file, renamed)
                    }
                }
            };
            EntryName {
                file,
                class: String::new(),
                renamed,
            }
        }
        SourceNaming::JavaPublicClass => {
            let file_class = java_entry_class(code).unwrap_or_else(|| "Main".to_owned());
            let main_class = java_main_class(code).unwrap_or_else(|| file_class.clone());
            // javac writes a packaged class under its package's directories, and the JVM
            // takes it only by its qualified name.
            let class = match java_package(code) {
                Some(package) => format!("{package}.{main_class}"),
                None => main_class,
            };
            let file = format!("{file_class}.java");
            let renamed =
                (given != Some(file.as_str())).then_some(Renamed::AfterClass { class: file_class });
            EntryName {
                file,
                class,
                renamed,
            }
        }
    }
}

/// `name`, or for a compiled language whose compiler would not take it as source by its
/// extension (`prog.txt`, `prog`, a header `x.h`), `<stem>.<ext>` with the language's first
/// entry extension (`CompileStage::entry_extensions`): `prog.c`, `x.c`. The extension is
/// compared as the compilers do, case and all: gcc compiles `PROG.C` as C++, so a C entry of
/// that name becomes `PROG.c`.
fn compiled_as_source(language: &Language, name: &str) -> String {
    let Some(compile) = &language.compile else {
        return name.to_owned();
    };
    let taken = if compile.entry_extensions.is_empty() {
        &language.extensions
    } else {
        &compile.entry_extensions
    };
    let path = std::path::Path::new(name);
    let ext = path.extension().map(|e| e.to_string_lossy());
    let Some(first) = taken.first() else {
        return name.to_owned();
    };
    if ext.is_some_and(|e| taken.iter().any(|t| e == t.as_str())) {
        return name.to_owned();
    }
    let stem = path
        .file_stem()
        .map_or(name.into(), |s| s.to_string_lossy());
    let renamed = format!("{stem}.{first}");
    if renamed.len() <= NAME_MAX {
        renamed
    } else {
        language.source_file.clone()
    }
}

/// Whether the compiler would leave a file so named out (`sol_test.go`, `_prog.go`: `go
/// build` skips tests and names starting with `_`).
fn ignored(language: &Language, name: &str) -> bool {
    language
        .compile
        .as_ref()
        .is_some_and(|compile| compile.ignores(name))
}

/// Whether an entry the compiler would leave out ([`Renamed::LeftOut`]) keeps its name: when
/// another of the program's files (`others`, their names) is a source the compiler builds, the
/// program is those sources, and the entry is left out as the compiler leaves it (`go build`
/// of `add_test.go` beside `main.go` builds `main.go`); renamed, it took their name.
pub fn keeps_left_out_entry(language: &Language, others: &[&str]) -> bool {
    others.iter().any(|name| {
        let file = name.rsplit('/').next().unwrap_or(name);
        std::path::Path::new(file)
            .extension()
            .is_some_and(|e| language.extensions.iter().any(|x| e == x.as_str()))
            && !ignored(language, file)
    })
}

/// The longest name of one file or directory (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// A name usable as one file in the workspace: no separator, not `.`/`..`, not hidden.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && !name.starts_with('.')
        && !name.contains(['/', '\0', '\\'])
}

/// A top-level type of a Java file.
struct JavaType {
    name: String,
    public: bool,
    /// Whether one of its own members is a `static void main(`; a nested type's is not its.
    declares_main: bool,
}

/// The top-level types among a file's tokens, in order.
fn java_types(tokens: &[String]) -> Vec<JavaType> {
    let mut depth = 0usize;
    let mut types: Vec<JavaType> = Vec::new();
    let mut public_seen = false;
    // Whether the token read next begins a member of the top-level type whose body is open:
    // the first token of its body, or one after a member ended at depth 1 (`;`, `}`).
    let mut member_start = false;
    for (i, t) in tokens.iter().enumerate() {
        if member_start && declares_main_at(tokens, i) {
            if let Some(current) = types.last_mut() {
                current.declares_main = true;
            }
        }
        match t.as_str() {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "public" if depth == 0 => public_seen = true,
            "class" | "interface" | "enum" | "record" if depth == 0 => {
                if let Some(name) = tokens.get(i + 1).filter(|n| is_identifier(n)) {
                    types.push(JavaType {
                        name: name.clone(),
                        public: public_seen,
                        declares_main: false,
                    });
                }
                public_seen = false;
            }
            ";" if depth == 0 => public_seen = false,
            _ => {}
        }
        member_start = depth == 1 && matches!(t.as_str(), "{" | "}" | ";");
    }
    types
}

/// Whether the member declaration starting at `tokens[at]` is a `static void main(`, after any
/// mix of the modifiers a `main` the launcher runs may have (`static public`, `public static
/// final`, `static synchronized`, `static strictfp`), annotations and type parameters. Not a
/// `private` one, nor an instance `void main(` (Java 21's preview, not this JDK's).
fn declares_main_at(tokens: &[String], mut at: usize) -> bool {
    // A bound on the tokens one declaration's head is looked at in: unbounded, a file of
    // members that open a `<` or an annotation's `(` and never close it (`< ;` over and over)
    // had each look run to the end of the file, quadratic in its size (regression hunt: 10 s
    // for 320 KB, in warden's own process before any limit applies).
    let end = tokens.len().min(at.saturating_add(MAIN_HEAD_TOKENS));
    let tokens = &tokens[..end];
    let mut is_static = false;
    loop {
        match tokens.get(at).map(String::as_str) {
            Some("static") => {
                is_static = true;
                at += 1;
            }
            Some("public" | "protected" | "final" | "synchronized" | "strictfp") => at += 1,
            Some("@") => at = after_annotation(tokens, at),
            Some("<") => at = after_balanced(tokens, at, "<", ">"),
            Some("void") => {
                return is_static
                    && tokens
                        .get(at + 1..at + 3)
                        .is_some_and(|w| w[0] == "main" && w[1] == "(");
            }
            _ => return false,
        }
    }
}

/// The most tokens [`declares_main_at`] reads of one member's head: its modifiers, annotations
/// and type parameters before `void main(`, far more than any real one has.
const MAIN_HEAD_TOKENS: usize = 256;

/// The index after the annotation at `tokens[at]` (`@`): its qualified name and, if any, its
/// parenthesized arguments (`@SuppressWarnings({"unchecked"})`).
fn after_annotation(tokens: &[String], at: usize) -> usize {
    let mut at = at + 2;
    while tokens.get(at).is_some_and(|t| t == ".") {
        at += 2;
    }
    if tokens.get(at).is_some_and(|t| t == "(") {
        after_balanced(tokens, at, "(", ")")
    } else {
        at
    }
}

/// The index after the `close` that balances the `open` at `tokens[at]`; past the end if none.
fn after_balanced(tokens: &[String], at: usize, open: &str, close: &str) -> usize {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(at) {
        if t == open {
            depth += 1;
        } else if t == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
    }
    tokens.len()
}

/// The top-level type javac requires the file to be named after: the public one; failing that,
/// the one declaring `main`; failing that, the first.
pub fn java_entry_class(code: &str) -> Option<String> {
    let types = java_types(&java_tokens(code));
    types
        .iter()
        .find(|t| t.public)
        .or_else(|| types.iter().find(|t| t.declares_main))
        .or_else(|| types.first())
        .map(|t| t.name.clone())
}

/// The top-level type the JVM is to run: the public one if it declares `main`, else the first
/// that does (a public class of data beside a runner holding `main`).
pub fn java_main_class(code: &str) -> Option<String> {
    let types = java_types(&java_tokens(code));
    types
        .iter()
        .find(|t| t.public && t.declares_main)
        .or_else(|| types.iter().find(|t| t.declares_main))
        .map(|t| t.name.clone())
}

/// The package `code` declares (`com.example`), if any.
pub fn java_package(code: &str) -> Option<String> {
    let tokens = java_tokens(code);
    let at = tokens.iter().position(|t| t == "package")?;
    let mut name = String::new();
    for t in &tokens[at + 1..] {
        match t.as_str() {
            ";" => break,
            "." => name.push('.'),
            part if is_identifier(part) => name.push_str(part),
            _ => return None,
        }
    }
    Some(name).filter(|n| !n.is_empty())
}

fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Identifiers and single punctuation characters, with comments, string and character literals
/// and text blocks removed; of the text javac reads, its Unicode escapes translated.
fn java_tokens(code: &str) -> Vec<String> {
    let chars = java_unicode_escapes(code);
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            // javac ends a line at a carriage return too (JLS 3.4).
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '"' || c == '\'' {
            let text_block = c == '"' && next == Some('"') && chars.get(i + 2) == Some(&'"');
            i += if text_block { 3 } else { 1 };
            while i < chars.len() {
                if chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if text_block && chars[i..].starts_with(&['"', '"', '"']) {
                    i += 3;
                    break;
                }
                if !text_block && (chars[i] == c || chars[i] == '\n') {
                    i += 1;
                    break;
                }
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// `code`'s characters with its Unicode escapes translated, as javac does before anything else
/// (JLS 3.3): `public class \u0046oo` declares `Foo`, `package \u0070kg;` the package `pkg`.
/// A backslash starts an escape only after an even number of backslashes (`\\u0046` is not
/// one), any number of `u`s may follow it, and a surrogate pair of escapes is one character.
fn java_unicode_escapes(code: &str) -> Vec<char> {
    let chars: Vec<char> = code.chars().collect();
    let unit_at = |at: usize| -> Option<(u32, usize)> {
        let us = chars.get(at..)?.iter().take_while(|&&c| c == 'u').count();
        let digits: String = chars.get(at + us..at + us + 4)?.iter().collect();
        let unit = u32::from_str_radix(&digits, 16).ok().filter(|_| us > 0)?;
        Some((unit, us + 4))
    };
    let mut read = Vec::with_capacity(chars.len());
    let (mut i, mut backslashes) = (0, 0usize);
    while i < chars.len() {
        let c = chars[i];
        let escape = (c == '\\' && backslashes % 2 == 0)
            .then(|| unit_at(i + 1))
            .flatten();
        let Some((mut unit, mut len)) = escape else {
            backslashes = if c == '\\' { backslashes + 1 } else { 0 };
            read.push(c);
            i += 1;
            continue;
        };
        if (0xD800..0xDC00).contains(&unit) && chars.get(i + 1 + len) == Some(&'\\') {
            if let Some((low, low_len)) = unit_at(i + 2 + len) {
                if (0xDC00..0xE000).contains(&low) {
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    len += 1 + low_len;
                }
            }
        }
        read.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
        backslashes = 0;
        i += 1 + len;
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bug hunt: javac translates Unicode escapes before it reads a name, and warden did not:
    /// `public class \u0046oo` was saved as `Main.java` (javac: class Foo is public, should be
    /// declared in a file named Foo.java), and `package \u0070kg;` ran `Foo` rather than
    /// `pkg.Foo` (hunt compile 2).
    #[test]
    fn java_names_are_read_after_unicode_escapes() {
        let main = "{ public static void main(String[] a) {} }";
        assert_eq!(
            java_entry_class(&format!("public class \\u0046oo {main}")).as_deref(),
            Some("Foo")
        );
        assert_eq!(
            java_main_class(&format!("class \\uuu0046o\\u006F {main}")).as_deref(),
            Some("Foo")
        );
        assert_eq!(
            java_package("package \\u0070kg;\\u000apublic class Foo {}").as_deref(),
            Some("pkg")
        );
        // An escaped backslash starts no escape; a pair of surrogates is one character.
        assert_eq!(
            java_entry_class("// \\\\u000a public class Foo {}\nclass Bar {}").as_deref(),
            Some("Bar")
        );
        assert_eq!(
            java_entry_class("// \\u000a public class Foo {}\nclass Bar {}").as_deref(),
            Some("Foo")
        );
        // A comment ends at a carriage return, raw or escaped, as a line does for javac.
        for cr in ["\r", "\\u000d"] {
            assert_eq!(
                java_entry_class(&format!("// x{cr}public class Foo {{}}\nclass Bar {{}}"))
                    .as_deref(),
                Some("Foo"),
                "{cr:?}"
            );
        }
        assert_eq!(
            java_entry_class("public class X\\uD835\\uDC00 {}").as_deref(),
            Some("X\u{1D400}")
        );
    }

    #[test]
    fn java_entry_classes() {
        let cases = [
            (
                "public class Hello { public static void main(String[] a) {} }",
                Some("Hello"),
            ),
            (
                "class A {}\npublic final class B { static void main(String[] a) {} }",
                Some("B"),
            ),
            (
                "class Helper {}\nclass Prog { public static void main(String[] a) {} }",
                Some("Prog"),
            ),
            (
                "// public class Fake {}\n/* public class Fake2 {} */\nclass Real {}",
                Some("Real"),
            ),
            ("class A { String s = \"public class Nope {\"; }", Some("A")),
            ("public record Point(int x, int y) {}", Some("Point")),
            (
                "class Outer { public class Inner {} public static void main(String[] a){} }",
                Some("Outer"),
            ),
            ("int x = 1;", None),
        ];
        for (code, expected) in cases {
            assert_eq!(java_entry_class(code).as_deref(), expected, "{code}");
        }
    }

    /// Bug hunt: a program with a `package` declaration ran as its bare class name (javac
    /// wrote `classes/com/example/Main.class`: "Could not find or load main class Main"), and a
    /// public class without `main` beside the class holding it ran the public one ("Main
    /// method not found in class Data").
    #[test]
    fn java_runs_the_class_holding_main_by_its_qualified_name() {
        let catalog = crate::Catalog::builtin().expect("catalog");
        let java = catalog.get("java").expect("java");
        let cases = [
            (
                "package com.example;\npublic class Main { public static void main(String[] a) {} }",
                "Main.java",
                "com.example.Main",
            ),
            (
                "/* package x; */ package a . b ;\nclass Prog { static void main(String[] a) {} }",
                "Prog.java",
                "a.b.Prog",
            ),
            (
                "public class Data {}\nclass Runner { public static void main(String[] a) {} }",
                "Data.java",
                "Runner",
            ),
            (
                "class A { public static void main(String[] a) {} }\npublic class B { public static void main(String[] a) {} }",
                "B.java",
                "B",
            ),
            ("public class Lib {}", "Lib.java", "Lib"),
            ("int x;", "Main.java", "Main"),
        ];
        for (code, file, class) in cases {
            let name = entry_name(java, None, code);
            assert_eq!(
                (name.file.as_str(), name.class.as_str()),
                (file, class),
                "{code}"
            );
        }
    }

    /// Regression hunt: members that open a `<` or an annotation's `(` and never close it had
    /// each look for `main` read to the end of the file (quadratic: 10 s for 320 KB; this file
    /// of 256 KB or more would have taken minutes, past the test runner's limit). Each looks at a bounded
    /// head now, and the runner after them is still found.
    #[test]
    fn unbalanced_member_heads_do_not_make_the_search_quadratic() {
        for head in ["< ;", "@a( ;", "@a( { } "] {
            let code = format!(
                "public class Data {{ {} }}\nclass Runner {{ public static void main(String[] a) {{}} }}\n",
                head.repeat(1 << 16)
            );
            assert_eq!(java_main_class(&code).as_deref(), Some("Runner"), "{head}");
        }
    }

    /// Hunt lang 3: `main` was found only as the three tokens `static void main`, so a runner
    /// beside a public class of data, whose `main` had other modifiers or their order, was
    /// missed, and the JVM ran the public class ("Main method not found in class Data"); a
    /// `main` of a class nested in the public class counted as the public class's own.
    #[test]
    fn java_finds_main_by_any_of_its_modifiers_among_a_top_level_types_members() {
        let runner = |main: &str| {
            format!("public class Data {{ int x; }}\nclass Runner {{ {main} {{ }} }}\n")
        };
        for main in [
            "public static void main(String[] a)",
            "static public void main(String[] a)",
            "public static final void main(String[] a)",
            "final static void main(String[] a)",
            "static synchronized void main(String[] a)",
            "static strictfp void main(String[] a)",
            "public final static synchronized strictfp void main(String... a)",
            "static void main(String a[])",
            "@Deprecated public static void main(String[] a)",
            "public @SuppressWarnings({\"unchecked\", \"rawtypes\"}) static void main(String[] a)",
            "@java.lang.SuppressWarnings(value = \"x\") static public void main(String[] a)",
            "public static <T extends Comparable<T>> void main(String[] a)",
            "/* a comment */ static // another\n public void main(String[] a)",
        ] {
            let code = runner(main);
            assert_eq!(java_main_class(&code).as_deref(), Some("Runner"), "{code}");
            assert_eq!(java_entry_class(&code).as_deref(), Some("Data"), "{code}");
        }
        // Not a `main` the launcher runs: the public class stays the fallback.
        for not_main in [
            "private static void main(String[] a)",
            "void main(String[] a)",
            "public void main(String[] a)",
            "static void mainly(String[] a)",
            "static int main(String[] a)",
            "static void Main(String[] a)",
        ] {
            let code = runner(not_main);
            assert_eq!(java_main_class(&code), None, "{code}");
        }
        let cases = [
            // A nested type's `main` is not the outer type's (nor run as Outer$Inner).
            (
                "public class Data { static class Inner { public static void main(String[] a) {} } }\n\
                 class Runner { static public void main(String[] a) {} }",
                Some("Runner"),
            ),
            (
                "public class Data { interface I { static void main(String[] a) {} } enum E { A; public static void main(String[] a) {} } }",
                None,
            ),
            (
                "public class Data { void f() { Object o = new Object() { public static void main(String[] a) {} }; } }\n\
                 class Runner { public static void main(String[] a) {} }",
                Some("Runner"),
            ),
            (
                "public class Data { Runnable r = () -> { class L { static void main(String[] a) {} } }; }\n\
                 class Runner { public static final void main(String[] a) {} }",
                Some("Runner"),
            ),
            // Members after a nested type, an initializer, a field's array or a method body.
            (
                "public class Outer { static class Inner { void f() {} } int[] xs = {1, 2}; static { } \n\
                 void g() { if (true) { } } public static void main(String[] a) {} }",
                Some("Outer"),
            ),
            // `main` in a string or a comment is no declaration.
            (
                "public class Data { String s = \"static void main(\"; /* public static void main( */ }\n\
                 class Runner { final static void main(String[] a) {} }",
                Some("Runner"),
            ),
            // Enums (after their constants), interfaces, records, generic types.
            (
                "public enum Color { RED { void f() {} }, GREEN; static public void main(String[] a) {} }",
                Some("Color"),
            ),
            (
                "public class Data {}\ninterface Tool { static void main(String[] a) {} }",
                Some("Tool"),
            ),
            (
                "public record Point(int x, int y) { public static final void main(String[] a) {} }",
                Some("Point"),
            ),
            (
                "public class Box<T extends Comparable<T>> { T t; }\n\
                 class Runner<K> { public static <V> void main(String[] a) {} }",
                Some("Runner"),
            ),
            // A public class's `main` comes first, whatever its modifiers.
            (
                "class A { public static void main(String[] a) {} }\n\
                 public class B { static public final void main(String[] a) {} }",
                Some("B"),
            ),
        ];
        for (code, class) in cases {
            assert_eq!(java_main_class(code).as_deref(), class, "{code}");
        }
    }

    #[test]
    fn a_compiled_entry_is_named_for_its_compiler() {
        let catalog = crate::Catalog::builtin().expect("catalog");
        let cases = [
            ("c", "prog.c", "prog.c"),
            // gcc takes `.C` for C++: a C entry so named would be compiled as C++.
            ("c", "PROG.C", "PROG.c"),
            // g++ compiles `.C` and `.CPP` as C++ and links `.CC`.
            ("cpp", "prog.C", "prog.C"),
            ("cpp", "prog.CPP", "prog.CPP"),
            ("cpp", "prog.CC", "prog.cpp"),
            ("cpp", "x.H", "x.cpp"),
            ("java", "Main.JAVA", "Main.java"),
            ("c", "prog.txt", "prog.c"),
            ("c", "prog", "prog.c"),
            ("c", "x.h", "x.c"),
            ("c", "a.b.txt", "a.b.c"),
            ("cpp", "main.cc", "main.cc"),
            ("cpp", "main.cxx", "main.cxx"),
            ("cpp", "x.h", "x.cpp"),
            ("cpp", "x.hpp", "x.cpp"),
            ("cpp", "prog.txt", "prog.cpp"),
            ("go", "prog2.txt", "prog2.go"),
            // Regression (hunt lang 7): `go build` skips tests and names starting with `_`,
            // and answered `no packages to build`.
            ("go", "sol_test.go", "main.go"),
            ("go", "_sol.go", "main.go"),
            ("go", "sol_test.txt", "main.go"),
            ("go", "sol_windows.go", "sol_windows.go"),
            ("go", "test.go", "test.go"),
            ("rust", "prog", "prog.rs"),
            // An interpreter takes any name.
            ("python", "prog.txt", "prog.txt"),
            ("bash", "script", "script"),
        ];
        for (id, given, expected) in cases {
            let language = catalog.get(id).expect("in the catalog");
            let name = entry_name(language, Some(given), "");
            assert_eq!(name.file, expected, "{id} {given}");
        }
    }

    #[test]
    fn plain_file_names() {
        for ok in ["main.py", "a-b_c.rs", "Main.java"] {
            assert!(is_plain_file_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "../x", "a/b", "a\\b", "."] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}
