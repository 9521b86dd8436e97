//! What an approval names: a digest of a registered tool's files (its tool file and the
//! program it runs), shown by `warden tool show` and checked by `warden tool approve`.
//!
//! An approval named the tool only: a client could replace its pending tool between the
//! operator's review and the approval (the replacement is pending too, so nothing looks
//! amiss), and the approval then gave the replacement its host paths (hunt mcp 3). A client's
//! registration is approved by the digest of what the operator reviewed, checked under the
//! registrations' lock against the files on disk.

use std::path::Path;

use sha2::{Digest, Sha256};
use warden_core::bounded_file::{self, MAX_PROGRAM_FILE, MAX_SETTINGS_FILE};
use warden_core::tool::{Runner, Tool, ToolOrigin};

use super::registry::{ProgramFile, RegistryError, TOOL_FILE};

/// Hex digits shown: 96 bits, beyond any search for a second tool of the same digest.
const SHOWN: usize = 24;

/// The digest of a tool file's `text` and the program it runs.
pub(crate) fn of(text: &[u8], program: Option<&ProgramFile>) -> String {
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(text);
    if let Some(program) = program {
        part(program.name.as_bytes());
        part(&program.code);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..SHOWN].to_owned()
}

/// The digest of the registered tool kept in `dir`, read from its files now.
pub(crate) fn of_dir(dir: &Path) -> Result<String, RegistryError> {
    let read = |path: &Path, most| {
        bounded_file::read(path, most).map_err(|source| RegistryError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let text = read(&dir.join(TOOL_FILE), MAX_SETTINGS_FILE)?;
    let tool = Tool::parse(&String::from_utf8_lossy(&text), ToolOrigin::Registered)?;
    let program = match &tool.runner {
        Runner::Program { file, .. } => Some(ProgramFile {
            name: file.clone(),
            code: read(&dir.join(file), MAX_PROGRAM_FILE)?,
        }),
        _ => None,
    };
    Ok(of(&text, program.as_ref()))
}
