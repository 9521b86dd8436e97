//! Embeds the analysis rules (`policies/analysis/*.toml`, one file per language) into the crate,
//! so that adding or changing rules is a data file and nothing else. The files are embedded as
//! written and parsed when an `Analyzer` is built, which also compiles their queries.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = manifest.join("../../policies/analysis");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut out = String::new();
    writeln!(
        out,
        "/// Embedded `policies/analysis` files: (file name, contents)."
    )
    .ok();
    writeln!(out, "pub(crate) static RULE_FILES: &[(&str, &str)] = &[").ok();
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let absolute = fs::canonicalize(&path).expect("a listed file has a canonical path");
        let name = path
            .file_name()
            .expect("read_dir entries have names")
            .to_string_lossy();
        let absolute = absolute.to_str().expect("the repository path is UTF-8");
        writeln!(out, "    ({name:?}, include_str!({absolute:?})),").ok();
    }
    writeln!(out, "];").ok();
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}
