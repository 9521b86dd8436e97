//! Reading a program's files from the command line: one or more files (the first is the
//! entry), or a directory and the name of its entry file.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use warden_core::ByteSize;
use warden_engine::SourceFile;

/// Largest total size of a program's files.
pub(crate) const MAX_TOTAL: u64 = 16 << 20;
/// Most files read from a directory.
const MAX_FILES: usize = 1000;

/// Files given one by one: each keeps its file name (without the directories).
pub(crate) fn from_files(paths: &[PathBuf]) -> anyhow::Result<Vec<SourceFile>> {
    let mut budget = MAX_TOTAL;
    paths
        .iter()
        .map(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let (code, executable) = read(path, &mut budget)?;
            Ok(SourceFile {
                name,
                code,
                executable,
            })
        })
        .collect()
}

/// Every regular file under `dir` (symlinks are not followed), named by its path relative to
/// `dir`, with `entry` first.
pub(crate) fn from_directory(dir: &Path, entry: &str) -> anyhow::Result<Vec<SourceFile>> {
    let mut relative = Vec::new();
    walk(dir, Path::new(""), &mut relative)?;
    relative.sort();
    let position = relative
        .iter()
        .position(|p| p == Path::new(entry))
        .with_context(|| format!("{entry} is not a file in {}", dir.display()))?;
    let first = relative.remove(position);
    relative.insert(0, first);
    let mut budget = MAX_TOTAL;
    relative
        .into_iter()
        .map(|rel| {
            let (code, executable) = read(&dir.join(&rel), &mut budget)?;
            Ok(SourceFile {
                code,
                name: Some(rel.to_string_lossy().into_owned()),
                executable,
            })
        })
        .collect()
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let kind = entry.file_type()?;
        let path = rel.join(entry.file_name());
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
        if out.len() > MAX_FILES {
            bail!("{} holds more than {MAX_FILES} files", root.display());
        }
    }
    Ok(())
}

/// The contents of `path`, and whether any of its executable bits is set (a script the program
/// runs by its path must stay executable in the sandbox).
pub(crate) fn read(path: &Path, budget: &mut u64) -> anyhow::Result<(Vec<u8>, bool)> {
    let shown = || super::printable(&path.display().to_string());
    let file = fs::File::open(path).with_context(|| format!("opening {}", shown()))?;
    let mode = file
        .metadata()
        .with_context(|| format!("reading {}", shown()))?
        .permissions()
        .mode();
    let mut code = Vec::new();
    file.take(*budget + 1)
        .read_to_end(&mut code)
        .with_context(|| format!("reading {}", shown()))?;
    if code.len() as u64 > *budget {
        bail!(
            "the program's files are larger than {} in total",
            ByteSize(MAX_TOTAL)
        );
    }
    *budget -= code.len() as u64;
    Ok((code, mode & 0o111 != 0))
}
