//! The compile stage: run the language's compiler over the program in the request's mode, or
//! take its artifact from the compile cache.

use std::path::{Path, PathBuf};

use warden_core::{Language, Outcome};
use warden_sandbox::{CollectedFile, Stdin};

use super::runner::Runner;
use super::{require_installed, Engine, Prepared};
use crate::compile_cache::{toolchain_identity, CacheKey};
use crate::error::EngineError;
use crate::execution::StageResult;

/// The outcome of a compile stage.
pub(super) enum Compiled {
    /// The artifact, and the stage as the result shows it.
    Artifact(Vec<CollectedFile>, StageResult),
    /// The compiler failed; the stage says how.
    Failed(StageResult),
}

impl Engine {
    /// Runs the compile stage of a compiled language, or takes its artifact from the cache.
    pub(super) fn compile_stage(
        &self,
        prepared: &Prepared<'_>,
        runner: &mut Runner,
        caller: Option<&mut dyn warden_sandbox::OutputSink>,
    ) -> Result<Compiled, EngineError> {
        let language = prepared.language;
        let Some(stage) = &language.compile else {
            return Ok(Compiled::Artifact(Vec::new(), StageResult::empty()));
        };
        require_installed(language, &stage.argv)?;
        let mut toolchain = toolchain_identity(&stage.argv[0]).unwrap_or_default();
        if let Some(set) = &prepared.dependency_dir {
            // The compiler sees the installed set: its directory, named by the set's key, is
            // part of what determines the artifact.
            toolchain.push_str(&format!(" dependencies:{}", set.path().display()));
        }
        if prepared.program.compile_entry_only {
            // The same files, another command: another artifact (or none).
            toolchain.push_str(" entry-only");
        }
        let key = CacheKey::new(
            language,
            &prepared.program.compile_options,
            prepared.mode,
            &toolchain,
            &prepared.program.files,
        );
        let cache = self.cache.as_ref().filter(|_| prepared.cacheable);
        // An entry that cannot run (kept by an older warden) is compiled again, to fail as such.
        let hit = cache
            .and_then(|c| c.get(&key))
            .filter(|files| not_executable(language, files).is_none());
        if let Some(files) = hit {
            tracing::debug!(key = key.as_str(), "compile cache hit");
            return Ok(Compiled::Artifact(files, StageResult::cached()));
        }
        tracing::debug!(
            key = key.as_str(),
            cacheable = cache.is_some(),
            "compile cache miss: compiling"
        );
        let limits = prepared
            .compile_limits
            .expect("a language with a compile stage has compile limits");
        let mut job = prepared.with_dependencies(self.job(
            language,
            &stage.argv,
            &prepared.program,
            &[],
            limits,
        ));
        job.collect = Some(PathBuf::from(&stage.artifact));
        // Diagnostics past the output limit are cut, not a failure: a correct program whose
        // compiler warns a lot (-Wall on generated code, templates) compiles; the compile
        // limits still end a compiler that writes forever.
        job.truncate_output = true;
        let mut run = runner.run_signalled(&job, Stdin::Null, caller)?;
        if run.outcome != (Outcome::Exited { code: 0 }) {
            return Ok(Compiled::Failed(StageResult::from_run(run)));
        }
        // The compiler claimed success but left no artifact (or one warden refused), or one the
        // run command cannot execute: a compile error, never cached.
        let unusable = if run.collected.is_empty() {
            Some(
                run.collect_error
                    .clone()
                    .unwrap_or_else(|| format!("the compiler did not produce {}", stage.artifact)),
            )
        } else {
            not_executable(language, &run.collected)
        };
        if let Some(why) = unusable {
            let mut result = StageResult::from_run(run);
            result
                .stderr
                .extend_from_slice(format!("warden: {why}\n").as_bytes());
            result.outcome = Outcome::Exited { code: 1 };
            return Ok(Compiled::Failed(result));
        }
        if let Some(cache) = cache {
            if let Err(e) = cache.put(&key, &run.collected) {
                tracing::warn!(dir = %cache.root().display(), error = %e, "storing a compile artifact");
            }
        }
        // Taken, not copied: an artifact may be hundreds of MiB of warden's own memory.
        let files = std::mem::take(&mut run.collected);
        Ok(Compiled::Artifact(files, StageResult::from_run(run)))
    }
}

/// Why `files`, the artifact of a language whose run command executes it (`{artifact}` first),
/// is no program the kernel can start: not one executable ELF file for this machine. A library
/// (Go's `package foo`, Rust's `#![crate_type = "lib"]`) is an `ar` archive, and executing it
/// failed in the sandbox's setup (`EACCES`), as if warden had failed rather than the program;
/// an ELF for another machine (Go's `GOARCH=arm64`) or an object file failed there the same way
/// (`ENOEXEC`); a shared library (Rust's `dylib`, `cdylib`) has no entry point, and every run
/// of it ended in `SIGSEGV`.
fn not_executable(language: &Language, files: &[CollectedFile]) -> Option<String> {
    let stage = language.compile.as_ref()?;
    if language.run.argv.first().map(String::as_str) != Some("{artifact}") {
        return None;
    }
    let what = match files {
        [file] if file.path == Path::new(&stage.artifact) => {
            if file.contents.starts_with(b"!<arch>\n") {
                "an archive (a library, not a program)".to_owned()
            } else if !file.contents.starts_with(b"\x7fELF") {
                "not an ELF executable".to_owned()
            } else if let Some(why) = not_for_this_machine(&file.contents) {
                why
            } else if !file.executable {
                "not marked executable".to_owned()
            } else {
                return None;
            }
        }
        _ => "not one file".to_owned(),
    };
    Some(format!(
        "the compiler produced no executable program: {} is {what}",
        stage.artifact
    ))
}

/// The ELF header's class, byte order and machine of the programs this host runs
/// (`EI_CLASS`, `EI_DATA`, `e_machine`), and the machine's name; `None` on a machine warden
/// does not know, where the check is left to the kernel.
const HOST_ELF: Option<(u8, u8, u16, &str)> = if cfg!(target_arch = "x86_64") {
    Some((2, 1, 62, "x86-64"))
} else if cfg!(target_arch = "aarch64") {
    Some((2, 1, 183, "aarch64"))
} else {
    None
};

/// Why `elf`, which starts with the ELF magic, is no program this host's kernel executes: an
/// object file or a core dump rather than a program, or a program for another machine (or
/// word size, or byte order). An `ENOEXEC` at the program's `execve` would be warden's failure.
fn not_for_this_machine(elf: &[u8]) -> Option<String> {
    let (class, data, machine, host) = HOST_ELF?;
    let [_, _, _, _, elf_class, elf_data, ..] = *elf else {
        return Some("a truncated ELF file".to_owned());
    };
    let half = |at: usize| word(elf, at, elf_data, 2).and_then(|h| u16::try_from(h).ok());
    let (Some(elf_type), Some(elf_machine)) = (half(16), half(18)) else {
        return Some("a truncated ELF file".to_owned());
    };
    if (elf_class, elf_data, elf_machine) != (class, data, machine) {
        let name = match (elf_class, elf_machine) {
            (1, 3) => "i386",
            (1, 40) => "32-bit ARM",
            (2, 62) => "x86-64",
            (2, 183) => "aarch64",
            (_, 243) => "RISC-V",
            (_, 8) => "MIPS",
            (_, 20 | 21) => "PowerPC",
            (_, 22) => "s390",
            _ => "another",
        };
        return Some(format!(
            "an ELF for another machine ({name}, e_machine {elf_machine}; this host runs {host})"
        ));
    }
    // ET_EXEC and ET_DYN (a position-independent program); not ET_REL or ET_CORE.
    if !matches!(elf_type, 2 | 3) {
        return Some(format!("an ELF object of type {elf_type}, not a program"));
    }
    // `e_entry` 0 is "no entry point" (the ELF gABI): a shared library (Rust's `dylib` and
    // `cdylib`), which the kernel would start at its first byte, the ELF header: a SIGSEGV in
    // every run. Every program has one, a position-independent one (PIE, static-pie) too, as
    // an offset from where it is loaded.
    let width = if elf_class == 2 { 8 } else { 4 };
    match word(elf, 24, elf_data, width) {
        None => Some("a truncated ELF file".to_owned()),
        Some(0) if elf_type == 3 => {
            Some("a shared library (no entry point), not a program".to_owned())
        }
        Some(0) => Some("an ELF with no entry point, not a program".to_owned()),
        Some(_) => None,
    }
}

/// The unsigned `width`-byte word at `at` in `bytes`, in the ELF byte order `data` (2: big
/// endian); `None` past the end.
fn word(bytes: &[u8], at: usize, data: u8, width: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(width)?)?;
    let fold = |value: u64, byte: &u8| value << 8 | u64::from(*byte);
    Some(if data == 2 {
        field.iter().fold(0, fold)
    } else {
        field.iter().rev().fold(0, fold)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit ELF header: class, byte order (1, little endian), type, machine, and the entry
    /// point of a program gcc links.
    fn elf_header(class: u8, data: u8, elf_type: u16, machine: u16) -> Vec<u8> {
        elf_header_entry(class, data, elf_type, machine, 0x1040)
    }

    /// A 64-bit ELF header as [`elf_header`], with the entry point `entry` (`e_entry`).
    fn elf_header_entry(class: u8, data: u8, elf_type: u16, machine: u16, entry: u64) -> Vec<u8> {
        let mut header = vec![0x7f, b'E', b'L', b'F', class, data, 1];
        header.resize(16, 0);
        if data == 2 {
            header.extend_from_slice(&elf_type.to_be_bytes());
            header.extend_from_slice(&machine.to_be_bytes());
            header.extend_from_slice(&1u32.to_be_bytes());
            header.extend_from_slice(&entry.to_be_bytes());
        } else {
            header.extend_from_slice(&elf_type.to_le_bytes());
            header.extend_from_slice(&machine.to_le_bytes());
            header.extend_from_slice(&1u32.to_le_bytes());
            header.extend_from_slice(&entry.to_le_bytes());
        }
        header.resize(64, 0);
        header
    }

    fn host_machine() -> u16 {
        HOST_ELF.expect("a machine warden knows").2
    }

    fn foreign_machine() -> u16 {
        if host_machine() == 183 {
            62
        } else {
            183
        }
    }

    #[test]
    fn only_an_executable_elf_file_for_this_machine_is_a_program() {
        let catalog = warden_core::Catalog::builtin().expect("catalog");
        let file = |path: &str, contents: &[u8], executable| CollectedFile {
            path: path.into(),
            contents: contents.to_vec(),
            executable,
        };
        let go = catalog.get("go").expect("go");
        let elf = file("main", &elf_header(2, 1, 2, host_machine()), true);
        assert_eq!(not_executable(go, std::slice::from_ref(&elf)), None);
        let pie = file("main", &elf_header(2, 1, 3, host_machine()), true);
        assert_eq!(not_executable(go, &[pie]), None);
        for (files, why) in [
            (
                vec![file("main", b"!<arch>\n__.PKGDEF", false)],
                "an archive",
            ),
            (
                vec![file("main", &elf_header(2, 1, 2, host_machine()), false)],
                "not marked executable",
            ),
            (
                vec![file("main", b"\x7fELF\x02\x01\x01", true)],
                "a truncated ELF",
            ),
            // Hunt comp 4: Go's GOARCH=arm64 (from a configuration file the program shipped)
            // wrote an aarch64 program; it passed, was cached, and every run of it failed in the
            // sandbox's setup (ENOEXEC) as warden's own failure (500, exit 125).
            (
                vec![file("main", &elf_header(2, 1, 2, foreign_machine()), true)],
                "an ELF for another machine",
            ),
            (
                vec![file("main", &elf_header(1, 1, 2, 3), true)],
                "an ELF for another machine (i386",
            ),
            (
                vec![file(
                    "main",
                    &elf_header(2, 2, 2, host_machine().swap_bytes()),
                    true,
                )],
                "an ELF for another machine",
            ),
            (
                vec![file("main", &elf_header(2, 1, 1, host_machine()), true)],
                "an ELF object of type 1, not a program",
            ),
            // Hunt lang 2: a Rust `dylib` or `cdylib` is a shared object with no entry point;
            // it passed, was cached, and every run of it jumped to address 0 (SIGSEGV).
            (
                vec![file(
                    "main",
                    &elf_header_entry(2, 1, 3, host_machine(), 0),
                    true,
                )],
                "a shared library (no entry point), not a program",
            ),
            (
                vec![file(
                    "main",
                    &elf_header_entry(2, 1, 2, host_machine(), 0),
                    true,
                )],
                "an ELF with no entry point, not a program",
            ),
            (
                vec![file(
                    "main",
                    &elf_header(2, 1, 3, host_machine())[..30],
                    true,
                )],
                "a truncated ELF",
            ),
            (vec![file("main", b"#!/bin/sh\n", true)], "not an ELF"),
            (vec![elf.clone(), file("main2", b"", true)], "not one file"),
        ] {
            let message = not_executable(go, &files).expect("refused");
            assert!(
                message.starts_with("the compiler produced no executable program: main is ")
                    && message.contains(why),
                "{message}"
            );
        }
        // A real program, position-independent as rustc links it: this test's own executable.
        let exe = std::env::current_exe().expect("the test's executable");
        let header = std::fs::read(exe).expect("readable");
        assert_eq!(not_for_this_machine(&header), None);
        // Java runs its classes with the JVM: they are not executed themselves.
        let java = catalog.get("java").expect("java");
        let class = file("classes/Main.class", b"\xca\xfe\xba\xbe", false);
        assert_eq!(not_executable(java, &[class]), None);
    }
}
