//! The static analysis of a program before it runs: every file of it read in the language it
//! would run as, the cache of earlier answers, and the confined process the analysis may run
//! in (docs/analysis.md). Runs in the engine's process (CLI or server), before the plan.

use std::collections::BTreeSet;

use warden_analysis::{ProgramReads, ReadElsewhere, RequestAnalysis, RequestFile, MAX_INPUT_BYTES};
use warden_core::{Analysis, Language};
use warden_sandbox::WorkspaceFile;

use super::Engine;
use crate::workspace::Program;

/// Shells whose scripts the bash rules read (what they run is a POSIX shell's, and the rules'
/// commands are the same), for a helper that names one in its `#!` line.
const SHELLS: [&str; 7] = ["dash", "ash", "ksh", "mksh", "pdksh", "zsh", "posh"];

/// The interpreter `file`'s `#!` line names (`#!/usr/bin/env perl`: `perl`), if it has one.
fn shebang_of(file: &WorkspaceFile) -> Option<String> {
    let head = &file.contents[..file.contents.len().min(512)];
    let first_line = head.split(|&b| b == b'\n').next()?;
    warden_core::detect::shebang_interpreter(std::str::from_utf8(first_line).ok()?)
}

/// For each of `files` (the program's, or a module a `package.json` maps a name to), what the
/// program's other files read, when it has others (`read_elsewhere.rs`): each file is read
/// once into the program's counts, and each is told only of its own words, so that the work,
/// the request to the analysing process and the cache's keys grow with the program's size,
/// not with its size times its count of files.
fn read_among_others<'f>(
    program: &Program,
    files: impl IntoIterator<Item = &'f WorkspaceFile>,
) -> Vec<Option<ReadElsewhere>> {
    let several = program.files.len() > 1;
    let reads = ProgramReads::of(
        program
            .files
            .iter()
            .filter(|_| several)
            .map(|f| &f.contents[..]),
    );
    // A module a `package.json` maps a name to is not one of the program's files: what it
    // reads itself was not counted.
    let counted = program.files.as_ptr_range();
    files
        .into_iter()
        .map(|file| {
            let one_of_them = counted.contains(&std::ptr::from_ref(file));
            several.then(|| reads.besides(&file.contents, one_of_them))
        })
        .collect()
}

/// Whether one of `sources` includes a file, by its name (its last path component): each source
/// is read once, by `included` (the names it includes), however many files are asked about
/// (a hunt's 18 KB Judge0 zip of a 8 MB script and 62 files took 55 s of the server's cpu when
/// each file had every source read again). A source larger than the analysis reads
/// (`MAX_INPUT_BYTES`) is not read: graded `high` without a parse, it may include any file, and
/// every file counts as included.
fn named_by<'s>(
    sources: impl IntoIterator<Item = &'s [u8]>,
    included: impl Fn(&[u8]) -> BTreeSet<Vec<u8>>,
) -> impl Fn(&WorkspaceFile) -> bool {
    let mut names = BTreeSet::new();
    let mut every_file = false;
    for source in sources {
        if source.len() > MAX_INPUT_BYTES {
            every_file = true;
            break;
        }
        names.append(&mut included(source));
    }
    move |file: &WorkspaceFile| {
        file.path
            .file_name()
            .is_some_and(|name| every_file || names.contains(name.as_encoded_bytes()))
    }
}

impl Engine {
    /// Analyses every file of the program, not only its source files: a loader
    /// (`runpy.run_path`, `source`, `load`, `require`) runs a file of any name, so a payload in
    /// `helper.txt` must count as if it were `helper.py`. A file in another catalog language's
    /// extension or `#!` line (`run.sh`, or `run` starting `#!/bin/bash`, beside `main.py`) is
    /// read as that language and graded as a source is, its parse error included: it is code
    /// by its name, and one that cannot be read (a NUL byte, a megabyte of padding) must not
    /// pass for harmless. Any other file is read as the program's language and may be data (a
    /// CSV, a picture): only what is found in it counts, not that it fails to parse.
    ///
    /// The files not in the cache are analysed together, under one budget, in another process
    /// when the analysis is confined (`confined_analysis.rs`); when that process is stopped,
    /// the whole program's analysis is (graded as a parse that timed out).
    pub(super) fn analyze_program(&self, language: &Language, program: &Program) -> Analysis {
        // Each file: whether it is a source, the language it is read as, whether it may be
        // data (then not cached: the same bytes as a source are graded otherwise), and whether
        // a source names it where the language runs fragments of files (`#include "b.txt"`).
        let named = self.named_by_sources(language, program);
        // The modules a `package.json` maps names to (`"#util": "child_process"`), loaded
        // where a source imports the name: read as a source of `require`s.
        let modules = (language.id.as_str() == "javascript")
            .then(|| super::opaque_files::package_modules(program))
            .flatten();
        let mut files: Vec<(bool, &str, &WorkspaceFile, bool, bool)> = program
            .files
            .iter()
            .flat_map(|file| {
                let source = program.is_source(file);
                let own = language.id.as_str();
                let named = named(file);
                // Asked of a source, the rules would be compiled (0.4 ms for python) for an
                // answer no arm below reads.
                let other = if source {
                    None
                } else {
                    self.language_of_other_file(file)
                };
                match (source, other) {
                    (true, _) => vec![(true, own, file, false, false)],
                    // Another language's file (`run.sh` beside `main.py`): its code; and,
                    // named by a source, the fragment it may be of the program's (`#include
                    // "b.php"` in C).
                    (false, Some(id)) if named && id != own => {
                        vec![
                            (false, id, file, false, false),
                            (false, own, file, true, true),
                        ]
                    }
                    (false, Some(id)) => vec![(false, id, file, false, false)],
                    // Data (a CSV, a README) unless it is a program of the language without
                    // a single parse error (a helper hidden as `.txt`), or a source names it
                    // and the language runs fragments of files.
                    (false, None) => vec![(false, own, file, true, named)],
                }
            })
            .collect();
        files.extend(
            modules
                .iter()
                .map(|m| (true, "javascript", m, false, false)),
        );
        // Another file may source this one, or this one it, even by a name built at run time
        // (`. "$f"`), and run there a variable this one assigns (`E=eval`): each file is
        // analysed knowing what the program's other files read, if it has any, and cached
        // apart.
        let elsewhere = read_among_others(program, files.iter().map(|&(_, _, file, _, _)| file));
        let mut parts: Vec<Option<Analysis>> = files
            .iter()
            .zip(&elsewhere)
            .map(|(&(_, id, file, maybe_data, _), among_others)| {
                (!maybe_data)
                    .then(|| self.analyses.get(id, among_others.as_ref(), &file.contents))
                    .flatten()
            })
            .collect();
        let missing: Vec<usize> = (0..files.len()).filter(|&i| parts[i].is_none()).collect();
        let request: Vec<RequestFile<'_>> = missing
            .iter()
            .map(|&i| RequestFile {
                language: files[i].1,
                code: &files[i].2.contents,
                maybe_data: files[i].3,
                named: files[i].4,
                among_others: elsewhere[i].as_ref(),
            })
            .collect();
        let answer = if request.is_empty() {
            RequestAnalysis {
                files: Vec::new(),
                budget_spent: false,
            }
        } else {
            match self.confinement.analyze(&self.analyzer, &request) {
                Ok(answer) => answer,
                Err(why) => return warden_analysis::stopped(why),
            }
        };
        for (&i, part) in missing.iter().zip(answer.files) {
            let (_, id, file, maybe_data, _) = files[i];
            if !maybe_data && !answer.budget_spent {
                if let Some(part) = &part {
                    self.analyses
                        .insert(id, elsewhere[i].as_ref(), &file.contents, part.clone());
                }
            }
            parts[i] = Some(part.unwrap_or_default());
        }
        let mut analysis = Analysis::default();
        for (&(_, _, _, maybe_data, _), part) in files.iter().zip(parts) {
            let part = part.unwrap_or_default();
            // A source, or another language's file: code, graded whole.
            let code = !maybe_data;
            let level = if code {
                part.threat_level
            } else {
                part.findings
                    .iter()
                    .map(|f| f.severity)
                    .max()
                    .unwrap_or_default()
            };
            analysis.threat_level = analysis.threat_level.max(level);
            analysis.findings.extend(part.findings);
            if code {
                analysis.parse_error = analysis.parse_error.or(part.parse_error);
            }
        }
        warden_analysis::cap_findings(&mut analysis.findings);
        // A script for an interpreter warden has no rules for (`#!/usr/bin/perl`): code, by
        // its `#!` line, that nothing here can read, graded as any input that cannot be; so
        // are compiled code and a file a program file names that fails the screen
        // (`opaque_files.rs`).
        let scripts = program
            .files
            .iter()
            .filter(|f| !program.is_source(f))
            .filter_map(|file| {
                let interpreter = self.unanalysable_interpreter(file)?;
                Some(format!(
                    "{} is a script for {interpreter}, which warden has no analysis rules for",
                    file.path.display()
                ))
            });
        for why in scripts.chain(self.unreadable_files(language.id.as_str(), program)) {
            let part = warden_analysis::stopped(why);
            analysis.threat_level = analysis.threat_level.max(part.threat_level);
            analysis.parse_error = analysis.parse_error.or(part.parse_error);
        }
        analysis
    }

    /// Whether one of `program`'s sources includes a file, as `language`'s rule file says a
    /// source names one it runs in part (`#include "lib/b.txt"`, `source ./b.txt`); never in a
    /// language without. A name built at compile or run time (`#include NAME`, `source "$f"`)
    /// is not seen: the analysis is advisory, the sandbox the boundary (docs/analysis.md).
    fn named_by_sources<'p>(
        &'p self,
        language: &'p Language,
        program: &'p Program,
    ) -> impl Fn(&WorkspaceFile) -> bool + 'p {
        let id = language.id.as_str();
        // Only a file that is not a source is ever asked about; asking the rules compiles
        // them (0.4 ms for python), which a program of sources alone, its analysis cached, does
        // not need.
        let fragments =
            program.files.iter().any(|f| !program.is_source(f)) && self.analyzer.runs_fragments(id);
        let sources = program
            .files
            .iter()
            .filter(move |f| fragments && program.is_source(f))
            .map(|f| &f.contents[..]);
        named_by(sources, |source| self.analyzer.included_names(id, source))
    }

    /// The analysis of one program in `language` (confined as every analysis is), cached.
    pub(crate) fn analyze_one(&self, language: &str, code: &[u8]) -> Analysis {
        if let Some(found) = self.analyses.get(language, None, code) {
            return found;
        }
        let request = [RequestFile {
            language,
            code,
            maybe_data: false,
            named: false,
            among_others: None,
        }];
        match self.confinement.analyze(&self.analyzer, &request) {
            Ok(mut answer) => {
                let analysis = answer.files.pop().flatten().unwrap_or_default();
                if !answer.budget_spent {
                    self.analyses.insert(language, None, code, analysis.clone());
                }
                analysis
            }
            Err(why) => warden_analysis::stopped(why),
        }
    }

    /// The language a file outside the program's sources is analysed as: the catalog language
    /// of its extension, or of the interpreter its `#!` line names (a `helper` a program runs
    /// as `./helper`; a POSIX shell's, `dash`, `ksh`, `zsh`..., as bash), when that language
    /// has rules; `None` for any other file.
    pub(super) fn language_of_other_file(&self, file: &WorkspaceFile) -> Option<&str> {
        let by_extension = || {
            file.path
                .extension()
                .and_then(|ext| self.catalog.by_extension(&ext.to_string_lossy()))
        };
        let by_shebang = || {
            let interpreter = shebang_of(file)?;
            self.catalog.by_shebang(&interpreter).or_else(|| {
                SHELLS
                    .contains(&interpreter.as_str())
                    .then(|| self.catalog.get("bash"))
                    .flatten()
            })
        };
        by_extension()
            .or_else(by_shebang)
            .map(|other| other.id.as_str())
            .filter(|id| !self.analyzer.rules(id).is_empty())
    }

    /// The interpreter a file outside the program's sources names in its `#!` line when no
    /// language with rules reads it (`perl`, `awk`, `busybox`).
    fn unanalysable_interpreter(&self, file: &WorkspaceFile) -> Option<String> {
        if self.language_of_other_file(file).is_some() {
            return None;
        }
        shebang_of(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::SourceFile;
    use warden_core::Catalog;

    fn program(language: &str, files: &[(&str, Vec<u8>)]) -> Program {
        let catalog = Catalog::builtin().expect("catalog");
        let sources: Vec<SourceFile> = files
            .iter()
            .map(|(name, code)| SourceFile {
                name: Some((*name).to_owned()),
                code: code.clone(),
                executable: false,
            })
            .collect();
        Program::prepare(catalog.get(language).expect("a language"), &sources).expect("a program")
    }

    /// Regression hunt "ana" 1: each file was told every name every other file read, so a
    /// request of 40 files of 100 KB of distinct `$v1 $v2 …` built, kept and sent 40 copies of
    /// nearly all of it (1.7 GB in the server's own process). What each file is told now holds
    /// only its own words: the whole is no larger than the program.
    #[test]
    fn what_the_other_files_read_grows_with_the_program_not_its_count_of_files() {
        let files: Vec<(String, Vec<u8>)> = (0..16)
            .map(|i| {
                let reads: String = (0..200).map(|n| format!("$v{i}_{n} ")).collect();
                (
                    format!("f{i}.sh"),
                    format!("E=eval\n{reads}\n").into_bytes(),
                )
            })
            .collect();
        let named: Vec<(&str, Vec<u8>)> = files
            .iter()
            .map(|(name, code)| (name.as_str(), code.clone()))
            .collect();
        let program = program("bash", &named);
        let size: usize = program.files.iter().map(|f| f.contents.len()).sum();
        let elsewhere = read_among_others(&program, &program.files);
        let told: usize = elsewhere
            .iter()
            .map(|e| e.as_ref().expect("among others").to_bytes().len())
            .sum();
        assert!(told <= size, "{told} bytes told of a program of {size}");
        // What matters is still told: a name this file reads that another reads too, none
        // that only this file reads.
        let first = elsewhere[0].as_ref().expect("among others");
        assert!(!first.reads(b"v0_0"));
        assert!(!first.reads(b"E"));
        let alone = program_with_reader(b"echo \"$E\"\n");
        let told = read_among_others(&alone, &alone.files);
        assert!(told[0].as_ref().expect("among others").reads(b"E"));
    }

    /// Regression hunt "ana" 2: whether a source includes a file was asked of every source for
    /// every file, each time one pass of the rule file's regex over the source: an 18 KB
    /// Judge0 zip (a script of 8 MB, 62 files) took 55 s of the server's cpu. Each source is
    /// read once now, and one larger than the analysis reads not at all.
    #[test]
    fn each_source_is_read_once_for_the_files_it_includes() {
        let analyzer = warden_analysis::Analyzer::builtin().expect("rules");
        let mut files = vec![
            ("main.sh", b". ./a.txt\n".to_vec()),
            ("lib.sh", b"source lib/b.txt\n".to_vec()),
        ];
        let data = ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"];
        files.extend(data.iter().map(|name| (*name, b"x\n".to_vec())));
        let small = program("bash", &files);
        let named_of = |program: &Program| {
            let reads = std::cell::Cell::new(0);
            let sources = program
                .files
                .iter()
                .filter(|f| program.is_source(f))
                .map(|f| &f.contents[..]);
            let named = named_by(sources, |source| {
                reads.set(reads.get() + 1);
                analyzer.included_names("bash", source)
            });
            let named: Vec<bool> = program.files.iter().map(named).collect();
            (named, reads.get())
        };
        let (named, reads) = named_of(&small);
        assert_eq!(
            named,
            [false, false, true, true, false, false, false, false]
        );
        assert_eq!(reads, 2, "one pass over each source");
        files[1].1 = b"source c.txt\n".repeat(MAX_INPUT_BYTES / 13 + 1);
        let (named, reads) = named_of(&program("bash", &files));
        assert_eq!(
            named[2..],
            [true; 6],
            "a source not read may include any file"
        );
        assert!(
            reads <= 1,
            "{reads} reads: a source over the bound is not read"
        );
    }

    fn program_with_reader(reader: &[u8]) -> Program {
        program(
            "bash",
            &[
                ("main.sh", b"E=eval\necho \"$E\"\n".to_vec()),
                ("run.txt", reader.to_vec()),
            ],
        )
    }
}
