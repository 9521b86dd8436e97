//! Builds `src/gvisor/no_automount.c` into the shared object that a gVisor sandbox preloads
//! (`gvisor/bundle.rs`), embedded in the binary from `OUT_DIR`. The C compiler is the one that
//! links Rust programs on this target (`cc`, or `CC`), so nothing more is needed to build.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/gvisor/no_automount.c";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("no_automount.so");
    let compiler = env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&compiler)
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-s", "-o",
        ])
        .arg(&object)
        .arg(source)
        .status()
        .unwrap_or_else(|e| panic!("running {compiler} to build {source}: {e}"));
    assert!(status.success(), "{compiler} failed to build {source}");
}
