//! The files of one program as they will sit in the sandbox's `/work`: the entry file named by
//! the language's rule, the others under the names the user gave, and the paths the command
//! templates' `{source}`, `{sources}` and `{class}` expand to.

use std::collections::BTreeSet;
use std::path::Path;

use warden_core::source_naming::{entry_name, keeps_left_out_entry, Renamed, NAME_MAX};
use warden_core::{ByteSize, Language};
use warden_sandbox::{WorkspaceFile, WORKDIR};

use crate::error::{ArgumentError, CompileOptionError, EngineError, SourceError};
use crate::execution::SourceFile;

/// Most files one program may consist of.
pub(crate) const MAX_FILES: usize = 1000;

/// A program laid out for the workspace.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    /// Every source file, entry first.
    pub(crate) files: Vec<WorkspaceFile>,
    /// Absolute path of the entry file inside the sandbox.
    pub(crate) source: String,
    /// Absolute paths of the files in one of the language's extensions, entry first.
    pub(crate) sources: Vec<String>,
    /// The class to run, package-qualified (Java), else empty.
    pub(crate) class: String,
    /// The options the request added to the compiler's command (`{options}`).
    pub(crate) compile_options: Vec<String>,
    /// The compiler is given the entry alone ([`Program::compiled`]).
    pub(crate) compile_entry_only: bool,
}

/// The most compiler options one request may add.
const MAX_COMPILE_OPTIONS: usize = 32;

impl Program {
    /// What `{sources}` expands to: the source files, or the entry alone.
    pub(crate) fn compiled(&self) -> &[String] {
        if self.compile_entry_only {
            &self.sources[..1]
        } else {
            &self.sources
        }
    }

    /// Counts the files at these relative paths among the source files (what analysis reads),
    /// after the others.
    pub(crate) fn add_sources_named<'a>(&mut self, names: impl IntoIterator<Item = &'a String>) {
        for name in names {
            let path = format!("{WORKDIR}/{name}");
            let present = self
                .files
                .iter()
                .any(|f| f.path.as_os_str() == name.as_str());
            if present && !self.sources.contains(&path) {
                self.sources.push(path);
            }
        }
    }

    /// Whether `file` is one of the program's source files (what analysis reads).
    pub(crate) fn is_source(&self, file: &WorkspaceFile) -> bool {
        let path = format!("{WORKDIR}/{}", file.path.display());
        self.sources.contains(&path)
    }

    /// Lays out `sources` (entry first) for `language`.
    pub(crate) fn prepare(
        language: &Language,
        sources: &[SourceFile],
    ) -> Result<Self, EngineError> {
        let (entry, rest) = sources.split_first().ok_or(EngineError::NoSource)?;
        if sources.len() > MAX_FILES {
            return Err(SourceError::TooMany { max: MAX_FILES }.into());
        }
        let code = String::from_utf8_lossy(&entry.code);
        // An entry in a directory (`src/main.py`) stays there, beside the files it imports or
        // includes by a relative name; the language names the file itself as ever.
        let (dir, given) = match entry.name.as_deref() {
            Some(name) if name.contains('/') => {
                let path = contained_path(name)?;
                match path.rsplit_once('/') {
                    Some((dir, file)) => (Some(dir.to_owned()), Some(file.to_owned())),
                    None => (None, Some(path)),
                }
            }
            // What no file can be named is refused, as for the other files (bug hunt: the
            // entry was laid out under the language's name instead); a name that is only no
            // plain one (empty, hidden) gets the language's, and the result says so.
            Some(name) if name.contains('\0') => {
                return Err(SourceError::NulByte { path: name.into() }.into())
            }
            Some(name) if name.len() > NAME_MAX => {
                return Err(SourceError::NameTooLong {
                    path: name.into(),
                    max: NAME_MAX,
                }
                .into())
            }
            given => (None, given.map(str::to_owned)),
        };
        let mut name = entry_name(language, given.as_deref(), &code);
        if name.renamed == Some(Renamed::LeftOut) {
            let others: Vec<&str> = rest.iter().filter_map(|f| f.name.as_deref()).collect();
            if let Some(given) = given
                .as_ref()
                .filter(|_| keeps_left_out_entry(language, &others))
            {
                name.file = given.clone();
                name.renamed = None;
            }
        }
        if let Some(dir) = dir {
            name.file = format!("{dir}/{}", name.file);
        }
        let mut files = vec![workspace_file(name.file.clone(), entry)];
        let mut taken: BTreeSet<String> = BTreeSet::from([name.file.clone()]);
        for file in rest {
            let path = contained_path(file.name.as_deref().ok_or(SourceError::Unnamed)?)?;
            if !taken.insert(path.clone()) {
                return Err(match &name.renamed {
                    Some(why) if path == name.file => SourceError::EntryNameTaken {
                        given: entry.name.clone(),
                        laid_out: path,
                        why: why.clone(),
                    },
                    _ => SourceError::Duplicate { path },
                }
                .into());
            }
            files.push(workspace_file(path, file));
        }
        // A file cannot also be a directory of another's path.
        for path in &taken {
            let mut above = Path::new(path).ancestors().skip(1);
            if let Some(file) = above.find(|a| taken.contains(&*a.to_string_lossy())) {
                return Err(SourceError::FileAsDirectory {
                    file: file.to_string_lossy().into_owned(),
                    path: path.clone(),
                }
                .into());
            }
        }
        let in_workdir = |f: &WorkspaceFile| format!("{WORKDIR}/{}", f.path.display());
        // Case and all, as the compilers tell a source's language: gcc compiles `util.C` as
        // C++, so it is no source of a C program.
        let has_language_extension = |f: &WorkspaceFile| {
            f.path
                .extension()
                .is_some_and(|e| language.extensions.iter().any(|x| e == x.as_str()))
        };
        let sources = files
            .iter()
            .enumerate()
            .filter(|(i, f)| *i == 0 || has_language_extension(f))
            .map(|(_, f)| in_workdir(f))
            .collect();
        Ok(Self {
            source: in_workdir(&files[0]),
            sources,
            class: name.class,
            files,
            compile_options: Vec::new(),
            compile_entry_only: false,
        })
    }

    /// Refuses a file at the path of `language`'s compile artifact or under it (`main`,
    /// `classes/x`): the compiler would write over it (the program's own file silently gone)
    /// or fail on it (javac's `not a directory`), and the artifact would replace it in the run.
    pub(crate) fn check_reserved(&self, language: &Language) -> Result<(), SourceError> {
        let Some(stage) = &language.compile else {
            return Ok(());
        };
        let artifact = Path::new(&stage.artifact);
        match self.files.iter().find(|f| f.path.starts_with(artifact)) {
            Some(file) => Err(SourceError::Reserved {
                path: file.path.to_string_lossy().into_owned(),
                artifact: stage.artifact.clone(),
                language: language.id.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The program compiled with `options` added, each one the language admits.
    pub(crate) fn with_compile_options(
        mut self,
        language: &Language,
        options: &[String],
    ) -> Result<Self, CompileOptionError> {
        if options.is_empty() {
            return Ok(self);
        }
        let stage = language
            .compile
            .as_ref()
            .filter(|c| !c.options.is_empty())
            .ok_or_else(|| CompileOptionError::NotTaken {
                language: language.id.to_string(),
            })?;
        if options.len() > MAX_COMPILE_OPTIONS {
            return Err(CompileOptionError::TooMany {
                max: MAX_COMPILE_OPTIONS,
            });
        }
        if let Some(option) = options.iter().find(|o| !stage.allows(o)) {
            return Err(CompileOptionError::NotAllowed {
                language: language.id.to_string(),
                option: option.clone(),
                allowed: stage.options.join(" "),
            });
        }
        self.compile_options = options.to_vec();
        Ok(self)
    }
}

/// `file` laid out at `path`, executable if it was given so.
fn workspace_file(path: String, file: &SourceFile) -> WorkspaceFile {
    WorkspaceFile {
        executable: file.executable,
        ..WorkspaceFile::new(path, file.code.clone())
    }
}

/// `name` as a relative path inside the program, in its normal form (`a//b/` is `a/b`).
fn contained_path(name: &str) -> Result<String, SourceError> {
    let path = name.to_owned();
    if name.contains('\0') {
        return Err(SourceError::NulByte { path });
    }
    let mut parts = Vec::new();
    for component in Path::new(name).components() {
        match component {
            std::path::Component::Normal(part) if part.len() > NAME_MAX => {
                return Err(SourceError::NameTooLong {
                    path,
                    max: NAME_MAX,
                })
            }
            std::path::Component::Normal(part) => parts.push(part.to_string_lossy()),
            _ => return Err(SourceError::NotContained { path }),
        }
    }
    if parts.is_empty() {
        return Err(SourceError::NotContained { path });
    }
    Ok(parts.join("/"))
}

/// The longest string `execve` takes (`MAX_ARG_STRLEN`, 32 pages), its NUL included.
const MAX_ARGUMENT: usize = 32 * 4096;
/// The most `execve` gives the strings and pointers of argv and envp together, whatever the
/// stack limit (three quarters of the kernel's 8 MiB `_STK_LIM`).
const MAX_ARGUMENTS: u64 = 6 << 20;
/// What is kept of that for the program's command (interpreter, options, file) and its
/// environment.
const COMMAND_RESERVE: usize = 64 << 10;

/// Checks that the kernel can start a program with `args` under `stack_size`: no NUL, none
/// longer than it takes one string to be, and all of them (each with its NUL and its pointer)
/// within a quarter of the stack limit (at most 6 MiB, and at least 32 pages), less what its
/// command and environment need. Otherwise `execve` fails with `E2BIG` inside the sandbox,
/// after the build and the compile stage, as if warden had failed.
pub(crate) fn check_arguments(args: &[String], stack_size: ByteSize) -> Result<(), ArgumentError> {
    if let Some(argument) = args.iter().find(|a| a.contains('\0')) {
        return Err(ArgumentError::Nul {
            argument: argument.chars().take(64).collect(),
        });
    }
    if let Some(long) = args.iter().find(|a| a.len() >= MAX_ARGUMENT) {
        return Err(ArgumentError::TooLong {
            bytes: long.len(),
            max: MAX_ARGUMENT - 1,
        });
    }
    let room = (stack_size.0 / 4).clamp(MAX_ARGUMENT as u64, MAX_ARGUMENTS);
    let max = usize::try_from(room)
        .unwrap_or(usize::MAX)
        .saturating_sub(COMMAND_RESERVE);
    let bytes: usize = args
        .iter()
        .map(|a| a.len() + 1 + std::mem::size_of::<usize>())
        .sum();
    if bytes > max {
        return Err(ArgumentError::TooMany {
            bytes,
            max,
            reserve: COMMAND_RESERVE,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Catalog;

    fn src(name: Option<&str>, code: &str) -> SourceFile {
        SourceFile {
            name: name.map(str::to_owned),
            code: code.as_bytes().to_vec(),
            executable: false,
        }
    }

    /// Bug hunt cli: an entry named with a NUL byte, or longer than a file name can be, was
    /// laid out under the language's name where any other file so named is refused.
    #[test]
    fn an_entry_no_file_can_be_named_is_refused_as_any_file() {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        let long = "a".repeat(NAME_MAX + 1);
        for name in ["a\0b.py", &long] {
            let err = Program::prepare(python, &[src(Some(name), "print(1)")])
                .map(|p| p.source)
                .expect_err(name);
            assert!(
                matches!(
                    err,
                    EngineError::BadSource(
                        SourceError::NulByte { .. } | SourceError::NameTooLong { .. }
                    )
                ),
                "{err}"
            );
        }
        let p = Program::prepare(python, &[src(Some(""), "print(1)")]).expect("an empty name");
        assert_eq!(p.source, "/work/main.py", "no name: the language's");
    }

    #[test]
    fn inline_code_takes_the_language_default_name() {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        let p = Program::prepare(python, &[src(None, "print(1)")]).expect("prepared");
        assert_eq!(p.source, "/work/main.py");
        assert_eq!(p.sources, ["/work/main.py"]);
    }

    #[test]
    fn given_names_are_kept_and_only_language_files_are_sources() {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        let p = Program::prepare(
            python,
            &[
                src(Some("app.py"), "import util"),
                src(Some("util.py"), ""),
                src(Some("data.txt"), ""),
            ],
        )
        .expect("prepared");
        assert_eq!(p.source, "/work/app.py");
        assert_eq!(p.sources, ["/work/app.py", "/work/util.py"]);
        assert_eq!(p.files.len(), 3);
        assert_eq!(p.compiled(), p.sources);
        let entry_only = Program {
            compile_entry_only: true,
            ..p
        };
        assert_eq!(entry_only.compiled(), ["/work/app.py"]);
        assert_eq!(entry_only.sources.len(), 2, "both are still analysed");
    }

    /// Bug hunt: an entry named `src/main.py` (Piston's files, `warden run DIR --entry`) was
    /// moved to `/work/main.py`, away from the `src/util.py` it imports; and one named
    /// `../x.py` ran as `main.py` where any other file so named is refused.
    #[test]
    fn an_entry_in_a_directory_stays_in_it() {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        let p = Program::prepare(
            python,
            &[
                src(Some("src//main.py"), "import util"),
                src(Some("src/util.py"), ""),
            ],
        )
        .expect("prepared");
        assert_eq!(p.source, "/work/src/main.py");
        assert_eq!(p.sources, ["/work/src/main.py", "/work/src/util.py"]);
        let c = catalog.get("c").expect("c");
        let p = Program::prepare(c, &[src(Some("src/prog"), "int main(){}")]).expect("c");
        assert_eq!(
            p.source, "/work/src/prog.c",
            "renamed as source in its directory"
        );
        for escaping in ["../x.py", "/etc/x.py", "a/../../x.py"] {
            assert!(
                matches!(
                    Program::prepare(python, &[src(Some(escaping), "pass")]),
                    Err(EngineError::BadSource(SourceError::NotContained { .. }))
                ),
                "{escaping}"
            );
        }
    }

    /// Regression (hunt lang 5): `warden run Prog.java Main.java`, Prog.java declaring
    /// `public class Main`, said `two files are named "Main.java"` of one file so named.
    #[test]
    fn an_entry_renamed_onto_another_file_says_why() {
        let catalog = Catalog::builtin().expect("catalog");
        let java = catalog.get("java").expect("java");
        let err = Program::prepare(
            java,
            &[
                src(Some("Prog.java"), "public class Main {}"),
                src(Some("Main.java"), "class Other {}"),
            ],
        )
        .expect_err("two files would be Main.java");
        assert_eq!(
            err.to_string(),
            "invalid program files: \"Prog.java\" is laid out as \"Main.java\" (after its class \
             Main, as javac requires), and another file is named \"Main.java\""
        );
        let c = catalog.get("c").expect("c");
        let err = Program::prepare(c, &[src(Some("prog.txt"), ""), src(Some("prog.c"), "")])
            .expect_err("two files would be prog.c");
        assert!(
            err.to_string()
                .contains("\"prog.txt\" is laid out as \"prog.c\" (so that the compiler"),
            "{err}"
        );
        let python = catalog.get("python").expect("python");
        let err = Program::prepare(python, &[src(None, "pass"), src(Some("main.py"), "")])
            .expect_err("two files would be main.py");
        assert!(
            err.to_string()
                .contains("the code is laid out as \"main.py\" (the language's name"),
            "{err}"
        );
        // Two files given the same name are still said to be so.
        let err = Program::prepare(
            python,
            &[
                src(Some("main.py"), ""),
                src(Some("helper.py"), ""),
                src(Some("helper.py"), ""),
            ],
        )
        .expect_err("helper.py twice");
        assert!(
            err.to_string()
                .ends_with("two files are named \"helper.py\""),
            "{err}"
        );
    }

    /// Regression hunt: a Go test file listed first (`warden run *.go` sorts `add_test.go`
    /// before `main.go`) was laid out as `main.go` and collided with the real one. Beside other
    /// sources it keeps its name, and `go build` leaves it out; alone, it is the program.
    #[test]
    fn a_left_out_entry_beside_other_sources_keeps_its_name() {
        let catalog = Catalog::builtin().expect("catalog");
        let go = catalog.get("go").expect("go");
        let p = Program::prepare(
            go,
            &[
                src(Some("add_test.go"), "package main"),
                src(Some("main.go"), "package main\nfunc main() {}"),
            ],
        )
        .expect("a program of main.go");
        let paths: Vec<String> = p
            .files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        assert_eq!(paths, ["add_test.go", "main.go"]);
        let alone =
            Program::prepare(go, &[src(Some("sol_test.go"), "package main")]).expect("the program");
        assert_eq!(alone.files[0].path.display().to_string(), "main.go");
        // Beside a file go build leaves out too, it is still the program.
        let two = Program::prepare(
            go,
            &[src(Some("sol_test.go"), ""), src(Some("other_test.go"), "")],
        )
        .expect("the program");
        assert_eq!(two.files[0].path.display().to_string(), "main.go");
    }

    /// Regression (hunt lang 2): `hello.C` was laid out as `hello.c`, and g++ was not given
    /// `util.C` beside it; g++ compiles both as C++, and hands `x.CC` to the linker.
    #[test]
    fn upper_case_cpp_sources_are_compiled_as_gcc_names_them() {
        let catalog = Catalog::builtin().expect("catalog");
        let cpp = catalog.get("cpp").expect("cpp");
        let p = Program::prepare(
            cpp,
            &[
                src(Some("hello.C"), "int main() {}"),
                src(Some("util.C"), ""),
                src(Some("util.H"), ""),
                src(Some("x.CC"), ""),
            ],
        )
        .expect("prepared");
        assert_eq!(p.sources, ["/work/hello.C", "/work/util.C", "/work/util.H"]);
    }

    #[test]
    fn arguments_are_checked_against_what_execve_takes() {
        let stack = ByteSize(ByteSize::MIB);
        let fits = vec!["x".repeat(MAX_ARGUMENT - 1)];
        assert_eq!(check_arguments(&fits, ByteSize(64 * ByteSize::MIB)), Ok(()));
        let long = vec!["x".repeat(MAX_ARGUMENT)];
        assert!(matches!(
            check_arguments(&long, stack),
            Err(ArgumentError::TooLong { bytes, .. }) if bytes == MAX_ARGUMENT
        ));
        assert!(matches!(
            check_arguments(&["a\0".to_owned()], stack),
            Err(ArgumentError::Nul { .. })
        ));
        // A 1 MiB stack leaves a quarter, 256 KiB, less the command's 64 KiB: 192 KiB.
        let each = 1000 + 1 + std::mem::size_of::<usize>();
        let within = vec!["x".repeat(1000); (192 << 10) / each];
        assert_eq!(check_arguments(&within, stack), Ok(()));
        let beyond = vec!["x".repeat(1000); (192 << 10) / each + 1];
        assert!(matches!(
            check_arguments(&beyond, stack),
            Err(ArgumentError::TooMany { max, .. }) if max == 192 << 10
        ));
        // Never above 6 MiB, whatever the stack.
        let huge = vec!["x".repeat(100_000); 64];
        assert!(check_arguments(&huge, ByteSize(ByteSize::GIB)).is_err());
    }

    #[test]
    fn an_executable_file_stays_executable() {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        let helper = SourceFile {
            executable: true,
            ..src(Some("helper.sh"), "#!/bin/sh\necho hi\n")
        };
        let p =
            Program::prepare(python, &[src(Some("main.py"), "pass"), helper]).expect("prepared");
        let modes: Vec<bool> = p.files.iter().map(|f| f.executable).collect();
        assert_eq!(modes, [false, true]);
    }

    #[test]
    fn paths_are_compared_in_their_normal_form() {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        let p = Program::prepare(python, &[src(None, "pass"), src(Some("lib//util.py/"), "")])
            .expect("prepared");
        assert_eq!(p.files[1].path, Path::new("lib/util.py"));
        let twice = [
            src(None, "pass"),
            src(Some("a//b"), ""),
            src(Some("a/b"), ""),
        ];
        assert!(matches!(
            Program::prepare(python, &twice),
            Err(EngineError::BadSource(SourceError::Duplicate { .. }))
        ));
        let through = [
            src(None, "pass"),
            src(Some("a/b/c"), ""),
            src(Some("a/b"), ""),
        ];
        assert!(matches!(
            Program::prepare(python, &through),
            Err(EngineError::BadSource(SourceError::FileAsDirectory { file, path }))
                if file == "a/b" && path == "a/b/c"
        ));
    }

    /// Bug hunt: a file named `main` beside a C program was overwritten by the compiled
    /// program (the program read its own binary), and one named `classes` beside a Java
    /// program failed its compile with javac's `not a directory: /work/classes`.
    #[test]
    fn a_file_where_the_compiler_writes_the_program_is_refused() {
        let catalog = Catalog::builtin().expect("catalog");
        for (language, name, artifact) in [
            ("c", "main", "main"),
            ("go", "main/x.txt", "main"),
            ("java", "classes", "classes"),
            ("java", "classes/Helper.class", "classes"),
        ] {
            let lang = catalog.get(language).expect(language);
            let p = Program::prepare(lang, &[src(None, ""), src(Some(name), "data")])
                .expect("laid out");
            let refused = p.check_reserved(lang).expect_err(name);
            assert_eq!(
                refused,
                SourceError::Reserved {
                    path: name.to_owned(),
                    artifact: artifact.to_owned(),
                    language: language.to_owned(),
                },
            );
            assert!(refused
                .to_string()
                .starts_with(&format!("{name:?} is a name warden reserves")));
        }
        // Names that only look alike, and languages that compile nothing, are free.
        for (language, name) in [
            ("c", "main.h"),
            ("c", "mainly"),
            ("java", "classes.txt"),
            ("python", "main"),
        ] {
            let lang = catalog.get(language).expect(language);
            let p =
                Program::prepare(lang, &[src(None, ""), src(Some(name), "")]).expect("laid out");
            assert_eq!(p.check_reserved(lang), Ok(()), "{language} {name}");
        }
    }

    #[test]
    fn escaping_duplicate_and_nameless_extra_files_are_refused() {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        for extra in [
            src(Some("../x.py"), ""),
            src(Some("/etc/x.py"), ""),
            src(Some("main.py"), ""),
            src(None, ""),
            src(Some("a\0.py"), ""),
            src(Some(&format!("{}.py", "x".repeat(300))), ""),
            src(Some("main.py/x.py"), ""),
            src(Some("./main.py"), ""),
        ] {
            let result = Program::prepare(python, &[src(None, "pass"), extra.clone()]);
            assert!(
                matches!(result, Err(EngineError::BadSource(_))),
                "{extra:?}"
            );
        }
    }
}
