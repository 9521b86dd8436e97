//! Embeds the data directories (`languages/`, `policies/`, `tools/`) into the crate, so that
//! adding a language, a policy or a tool is a data file and nothing else. Each TOML file is
//! embedded converted to JSON, which loads several times faster (see `src/data.rs`); a syntax
//! error fails the build. The other files of `tools/` (the tools' programs) are embedded as they
//! are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    let mut out = String::new();
    embed(&mut out, "LANGUAGE_FILES", &root.join("languages"));
    embed(&mut out, "SECCOMP_FILES", &root.join("policies/seccomp"));
    embed(
        &mut out,
        "FILESYSTEM_FILES",
        &root.join("policies/filesystem"),
    );
    embed(
        &mut out,
        "NETWORK_POLICY_FILES",
        &root.join("policies/network"),
    );
    embed(&mut out, "TOOL_FILES", &root.join("tools"));
    embed_sources(&mut out, "TOOL_SOURCES", &root.join("tools"));
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}

fn embed(out: &mut String, name: &str, dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    writeln!(
        out,
        "/// Embedded `{}` files: (file name, contents).",
        dir.display()
    )
    .ok();
    writeln!(out, "pub(crate) static {name}: &[(&str, &str)] = &[").ok();
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let file = path
            .file_name()
            .expect("read_dir entries have names")
            .to_string_lossy();
        let text = fs::read_to_string(&path).expect("embedded file is readable");
        let value: toml::Value =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json = serde_json::to_string(&value).expect("a TOML value converts to JSON");
        writeln!(out, "    ({file:?}, {json:?}),").ok();
    }
    writeln!(out, "];").ok();
}

/// Embeds every regular file of `dir` but the TOML ones and hidden ones, as raw text.
fn embed_sources(out: &mut String, name: &str, dir: &Path) {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.is_file()
            && p.extension().is_none_or(|e| e != "toml")
            && p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
    });
    files.sort();
    writeln!(
        out,
        "/// Embedded `{}` files other than TOML: (file name, contents).",
        dir.display()
    )
    .ok();
    writeln!(out, "pub(crate) static {name}: &[(&str, &str)] = &[").ok();
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let file = path
            .file_name()
            .expect("read_dir entries have names")
            .to_string_lossy();
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: not readable as UTF-8 text: {e}", path.display()));
        writeln!(out, "    ({file:?}, {text:?}),").ok();
    }
    writeln!(out, "];").ok();
}
