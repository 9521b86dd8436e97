//! Embeds the analysis rules (`policies/analysis/*.toml`, one file per language) into the crate,
//! so that adding or changing rules is a data file and nothing else. Each file is embedded
//! converted to JSON, which parses several times faster than TOML (a `warden run` process parses
//! its language's file); a syntax error fails the build. Rules are checked and compiled on first
//! use (`src/rules.rs`).

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
        let name = path
            .file_name()
            .expect("read_dir entries have names")
            .to_string_lossy();
        let text = fs::read_to_string(&path).expect("a rule file is readable");
        let value: toml::Value =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json = serde_json::to_string(&value).expect("a TOML value converts to JSON");
        writeln!(out, "    ({name:?}, {json:?}),").ok();
    }
    writeln!(out, "];").ok();
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}
