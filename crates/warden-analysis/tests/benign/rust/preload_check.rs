//! Warns when the dynamic loader injected a library into this process.

use std::env;

fn injected() -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    if let Ok(preload) = env::var("LD_PRELOAD") {
        found.push(("preload", preload));
    }
    if let Some(audit) = std::env::var_os("LD_AUDIT") {
        found.push(("audit", audit.to_string_lossy().into_owned()));
    }
    found
}

fn main() {
    let found = injected();
    for (name, libraries) in &found {
        eprintln!("{name}: {}", libraries.replace(':', ", "));
    }
    std::process::exit(i32::from(!found.is_empty()));
}
