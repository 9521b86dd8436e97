//! File operations on a session's workspace (docs/sessions.md#files): list, read, write,
//! delete, and a download opened to be read a piece at a time. Runs in the engine's process,
//! on the host's mount of the workspace (the session's, while it runs; a lease of its volume
//! once it stopped), every path walked with `O_NOFOLLOW` by `tools/files.rs`.

use std::io::Read;
use std::sync::Arc;

use super::sessions::patiently;
use super::Engine;
use crate::sessions::{Download, Session, SessionError};
use crate::tools::files;
use crate::tools::{FilesError, Listing};
use crate::volumes::VolumeLease;

/// The largest file a session download returns.
pub const MAX_DOWNLOAD: u64 = 64 << 20;

/// A file operation in a session's workspace; paths are relative to `/work`.
#[derive(Debug)]
pub enum FileOp {
    /// A page of a directory's entries ("" for the workspace): those whose names sort after
    /// `after` ("" for the first page).
    List {
        /// The directory.
        path: String,
        /// The name the page starts after.
        after: String,
    },
    /// A file's bytes, held whole: at most 1 MiB, what the `files` tool answers.
    Read(String),
    /// A file opened for a download, read a piece at a time: at most [`MAX_DOWNLOAD`].
    Open(String),
    /// Writes (replaces) a file, creating its directories.
    Write(String, Vec<u8>),
    /// Deletes a file, link or empty directory.
    Delete(String),
}

/// What a file operation answers.
#[derive(Debug)]
pub enum FileAnswer {
    /// A page of a listing.
    Entries(Listing),
    /// A file's bytes.
    Bytes(Vec<u8>),
    /// A file opened to be read a piece at a time.
    File(SessionFile),
    /// Done.
    Done,
}

/// A regular file of a session's workspace, open for reading: what a download sends, a piece
/// at a time, so that a client that reads slowly holds one piece of it in the server, not the
/// file. Its size is the file's when it was opened; the bytes are read from the descriptor
/// opened then, so a link or a FIFO put at its path meanwhile is never reached.
pub struct SessionFile {
    // Declared before the lease: the descriptor closes first, and the volume is then let go
    // unmounted, not busy (a busy one is only detached).
    file: std::fs::File,
    path: String,
    size: u64,
    left: u64,
    /// A stopped session's volume, mounted for the download.
    _lease: Option<VolumeLease>,
    /// The session, in use as long as the download goes on: its idle timeout does not stop it
    /// under a slow download.
    session: Download,
}

impl std::fmt::Debug for SessionFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionFile")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("left", &self.left)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SessionFile {
    /// The file's size when it was opened: the bytes the download sends.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next piece of the file, at most `most` bytes; `None` once `size` bytes were read.
    /// A file cut shorter since it was opened is [`FilesError::Shrunk`].
    pub fn next_piece(&mut self, most: usize) -> Result<Option<Vec<u8>>, FilesError> {
        if self.left == 0 {
            return Ok(None);
        }
        let want = usize::try_from(self.left).map_or(most, |left| left.min(most));
        let mut piece = vec![0; want];
        let got = loop {
            match self.file.read(&mut piece) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => break read,
            }
        }
        .map_err(|e| FilesError::Host {
            step: "reading",
            path: self.path.clone(),
            errno: e
                .raw_os_error()
                .map_or(nix::errno::Errno::EIO, nix::errno::Errno::from_raw),
        })?;
        if got == 0 {
            return Err(FilesError::Shrunk {
                path: self.path.clone(),
                size: self.size,
                read: self.size - self.left,
            });
        }
        piece.truncate(got);
        self.left -= got as u64;
        Ok(Some(piece))
    }
}

impl Engine {
    /// One file operation in the session's workspace. A stopped session's files are reached
    /// through its volume; paths never leave the workspace and links are never followed.
    pub fn session_files(
        &self,
        id: &str,
        caller: Option<&str>,
        op: FileOp,
    ) -> Result<FileAnswer, SessionError> {
        let session = self.session_store().get(id, caller)?;
        if session.is_removing() {
            return Err(SessionError::NotFound(id.to_owned()));
        }
        session.touch();
        match self.files_of(&session, op) {
            // Removed meanwhile, its workspace with it: as if it never was, not a failure.
            Err(e) if session.is_removing() && !matches!(e, SessionError::NotFound(_)) => {
                tracing::debug!(session = id, error = %e, "file operation on a removed session");
                Err(SessionError::NotFound(id.to_owned()))
            }
            done => done,
        }
    }

    /// [`Engine::session_files`] on a session found.
    fn files_of(&self, session: &Arc<Session>, op: FileOp) -> Result<FileAnswer, SessionError> {
        let writes = matches!(op, FileOp::Write(..) | FileOp::Delete(_));
        let (workspace, lease) = match session.open_host_root() {
            Some(opened) => (opened?, None),
            None => {
                let (name, owner, identity) = {
                    let meta = session.meta();
                    let m = &*meta;
                    (m.workspace.clone(), m.owner.clone(), m.workspace_id.clone())
                };
                // The session's owner's volume, and the very one it was given: never another
                // token's, nor one made under its name after it was removed.
                let volumes = self.volumes().of(owner.as_deref());
                let wait = self.volumes().settings().writer_wait;
                // Another file operation writing meanwhile holds the writer's place for a
                // moment: waited for, within reason.
                let lease = patiently(|| {
                    volumes.attach_identified(&name, writes, wait, None, identity.as_deref())
                })?;
                (files::open_root(lease.host_path())?, Some(lease))
            }
        };
        let answer = match op {
            FileOp::List { path, after } => {
                files::list_entries(&workspace, &path, &after).map(FileAnswer::Entries)
            }
            FileOp::Read(path) => {
                files::read_bytes(&workspace, &path, files::MAX_READ).map(FileAnswer::Bytes)
            }
            FileOp::Open(path) => {
                let opened = files::open_file(&workspace, &path, MAX_DOWNLOAD);
                drop(workspace);
                let (file, size) = opened?;
                // The download holds the volume until it ends.
                return Ok(FileAnswer::File(SessionFile {
                    file,
                    path,
                    size,
                    left: size,
                    _lease: lease,
                    session: session.download(),
                }));
            }
            FileOp::Write(path, bytes) => {
                files::write_bytes(&workspace, &path, &bytes).map(|()| FileAnswer::Done)
            }
            FileOp::Delete(path) => {
                files::delete_path(&workspace, &path).map(|()| FileAnswer::Done)
            }
        };
        // The workspace's descriptor closes before the lease lets the volume go: open, it
        // kept the mount busy, and each operation on a stopped session left it detached lazily.
        drop(workspace);
        drop(lease);
        Ok(answer?)
    }
}
