//! The files of a zip archive, as Judge0's `additional_files` carries them: read from the
//! archive's central directory, stored or deflated entries only, every name, count and size
//! checked before anything is inflated. The archive comes from a client: a bomb, a truncated
//! or lying archive is an error, never a large allocation (APPNOTE.TXT, PKWARE's format
//! specification, sections 4.3 and 4.4).

use miniz_oxide::inflate::decompress_to_vec_with_limit;

/// One file of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ZipFile {
    /// Its path in the archive (`/`-separated).
    pub(crate) name: String,
    /// Its contents.
    pub(crate) contents: Vec<u8>,
}

/// Why an archive was not read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ZipError {
    /// No end-of-central-directory record, or one pointing outside the archive.
    #[error("is not a zip archive")]
    NotZip,
    /// A record runs past the end of the archive, or has the wrong signature.
    #[error("is a damaged zip archive ({0})")]
    Damaged(&'static str),
    /// Zip64, several disks, encryption or a compression other than store and deflate.
    #[error("uses a zip feature warden does not read ({0}); store or deflate the files")]
    Unsupported(&'static str),
    /// More files than a program may have.
    #[error("holds more than {0} files")]
    TooManyFiles(usize),
    /// More bytes, once inflated, than a program may have.
    #[error("holds more than {0} bytes once inflated")]
    TooLarge(u64),
    /// A name that is not UTF-8.
    #[error("has a file name that is not UTF-8")]
    BadName,
    /// An entry whose contents do not match its recorded size or checksum.
    #[error("has a file whose contents do not match its checksum: {0}")]
    Corrupt(String),
}

const END_OF_DIRECTORY: u32 = 0x0605_4b50;
const DIRECTORY_ENTRY: u32 = 0x0201_4b50;
const LOCAL_HEADER: u32 = 0x0403_4b50;
/// The end record's fixed part; a comment of up to 65 535 bytes may follow it.
const END_LEN: usize = 22;

/// The files of `archive` (directories left out), at most `max_files` of them holding at most
/// `max_bytes` in all once inflated.
pub(crate) fn files(
    archive: &[u8],
    max_files: usize,
    max_bytes: u64,
) -> Result<Vec<ZipFile>, ZipError> {
    let end = find_end(archive)?;
    let entries = usize::from(le16(archive, end + 10)?);
    if le16(archive, end + 4)? != 0 || le16(archive, end + 6)? != 0 {
        return Err(ZipError::Unsupported("several disks"));
    }
    let start = le32(archive, end + 16)? as usize;
    if start == 0xffff_ffff || entries == 0xffff {
        return Err(ZipError::Unsupported("zip64"));
    }
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut at = start;
    for _ in 0..entries {
        let entry = Entry::read(archive, at)?;
        at = entry.next;
        if entry.name.ends_with('/') {
            continue;
        }
        if files.len() == max_files {
            return Err(ZipError::TooManyFiles(max_files));
        }
        total += u64::from(entry.size);
        if total > max_bytes {
            return Err(ZipError::TooLarge(max_bytes));
        }
        let contents = entry.contents(archive)?;
        files.push(ZipFile {
            name: entry.name,
            contents,
        });
    }
    Ok(files)
}

/// One central directory entry.
struct Entry {
    name: String,
    method: u16,
    crc: u32,
    compressed: u32,
    size: u32,
    local: usize,
    /// Where the next entry starts.
    next: usize,
}

impl Entry {
    fn read(archive: &[u8], at: usize) -> Result<Self, ZipError> {
        if le32(archive, at)? != DIRECTORY_ENTRY {
            return Err(ZipError::Damaged("central directory"));
        }
        let flags = le16(archive, at + 8)?;
        if flags & 1 != 0 {
            return Err(ZipError::Unsupported("encryption"));
        }
        let [name_len, extra_len, comment_len] =
            [28, 30, 32].map(|o| le16(archive, at + o).map(usize::from));
        let (name_len, extra_len, comment_len) = (name_len?, extra_len?, comment_len?);
        let name = bytes(archive, at + 46, name_len)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| ZipError::BadName)?;
        let entry = Self {
            name,
            method: le16(archive, at + 10)?,
            crc: le32(archive, at + 16)?,
            compressed: le32(archive, at + 20)?,
            size: le32(archive, at + 24)?,
            local: le32(archive, at + 42)? as usize,
            next: at + 46 + name_len + extra_len + comment_len,
        };
        if [entry.compressed, entry.size, entry.local as u32].contains(&0xffff_ffff) {
            return Err(ZipError::Unsupported("zip64"));
        }
        Ok(entry)
    }

    /// The entry's contents, checked against its size and checksum.
    fn contents(&self, archive: &[u8]) -> Result<Vec<u8>, ZipError> {
        if le32(archive, self.local)? != LOCAL_HEADER {
            return Err(ZipError::Damaged("local header"));
        }
        let name_len = usize::from(le16(archive, self.local + 26)?);
        let extra_len = usize::from(le16(archive, self.local + 28)?);
        let data = bytes(
            archive,
            self.local + 30 + name_len + extra_len,
            self.compressed as usize,
        )?;
        let size = self.size as usize;
        let contents = match self.method {
            0 => data.to_vec(),
            // The recorded size bounds the output: a bomb stops there.
            8 => decompress_to_vec_with_limit(data, size)
                .map_err(|_| ZipError::Corrupt(self.name.clone()))?,
            _ => return Err(ZipError::Unsupported("a compression other than deflate")),
        };
        if contents.len() != size || crc32(&contents) != self.crc {
            return Err(ZipError::Corrupt(self.name.clone()));
        }
        Ok(contents)
    }
}

/// The end-of-central-directory record's offset: the last signature from which a record and
/// its comment exactly reach the archive's end.
fn find_end(archive: &[u8]) -> Result<usize, ZipError> {
    let last = archive.len().checked_sub(END_LEN).ok_or(ZipError::NotZip)?;
    let first = last.saturating_sub(usize::from(u16::MAX));
    (first..=last)
        .rev()
        .find(|&at| {
            le32(archive, at) == Ok(END_OF_DIRECTORY)
                && le16(archive, at + 20)
                    .is_ok_and(|comment| at + END_LEN + usize::from(comment) == archive.len())
        })
        .ok_or(ZipError::NotZip)
}

fn bytes(archive: &[u8], at: usize, len: usize) -> Result<&[u8], ZipError> {
    at.checked_add(len)
        .and_then(|end| archive.get(at..end))
        .ok_or(ZipError::Damaged("a record runs past the end"))
}

fn le16(archive: &[u8], at: usize) -> Result<u16, ZipError> {
    let b = bytes(archive, at, 2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn le32(archive: &[u8], at: usize) -> Result<u32, ZipError> {
    let b = bytes(archive, at, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// CRC-32 (IEEE 802.3, reflected, as zip uses it), by a table built at compile time.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data
        .iter()
        .fold(!0u32, |c, &b| TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An archive of `entries` (name, contents, deflated or stored), written as zip tools do:
    /// local headers with the data, then the central directory and its end record.
    pub(crate) fn archive(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let (mut out, mut directory) = (Vec::new(), Vec::new());
        for (name, contents, deflate) in entries {
            let data = if *deflate {
                miniz_oxide::deflate::compress_to_vec(contents, 6)
            } else {
                contents.to_vec()
            };
            let method: u16 = if *deflate { 8 } else { 0 };
            let crc = crc32(contents);
            let fixed = |out: &mut Vec<u8>| {
                out.extend(20u16.to_le_bytes()); // version needed
                out.extend(0u16.to_le_bytes()); // flags
                out.extend(method.to_le_bytes());
                out.extend([0; 4]); // time, date
                out.extend(crc.to_le_bytes());
                out.extend((data.len() as u32).to_le_bytes());
                out.extend((contents.len() as u32).to_le_bytes());
                out.extend((name.len() as u16).to_le_bytes());
            };
            directory.extend(DIRECTORY_ENTRY.to_le_bytes());
            directory.extend(20u16.to_le_bytes()); // version made by
            fixed(&mut directory);
            directory.extend([0; 12]); // extra, comment, disk, attributes
            directory.extend((out.len() as u32).to_le_bytes());
            directory.extend(name.as_bytes());
            out.extend(LOCAL_HEADER.to_le_bytes());
            fixed(&mut out);
            out.extend(0u16.to_le_bytes()); // extra
            out.extend(name.as_bytes());
            out.extend(&data);
        }
        let start = out.len() as u32;
        out.extend(&directory);
        out.extend(END_OF_DIRECTORY.to_le_bytes());
        out.extend([0; 4]); // disks
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((directory.len() as u32).to_le_bytes());
        out.extend(start.to_le_bytes());
        out.extend(0u16.to_le_bytes()); // comment
        out
    }

    #[test]
    fn the_checksum_is_zips() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn stored_and_deflated_files_are_read_and_directories_left_out() {
        let long = vec![b'x'; 10_000];
        let zip = archive(&[
            ("a.txt", b"hello\n", false),
            ("d/", b"", false),
            ("d/b.txt", &long, true),
        ]);
        let read = files(&zip, 10, 20_000).expect("read");
        let names: Vec<&str> = read.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "d/b.txt"]);
        assert_eq!(read[0].contents, b"hello\n");
        assert_eq!(read[1].contents, long);
        assert!(zip.len() < 1000, "the long file was deflated");
    }

    #[test]
    fn bombs_counts_and_damage_are_refused_before_inflating() {
        let zeros = vec![0u8; 1 << 20];
        let bomb = archive(&[("z", &zeros, true)]);
        assert!(bomb.len() < 5000);
        assert_eq!(files(&bomb, 10, 1000), Err(ZipError::TooLarge(1000)));
        let many = archive(&[("a", b"1", false), ("b", b"2", false), ("c", b"3", false)]);
        assert_eq!(files(&many, 2, 1000), Err(ZipError::TooManyFiles(2)));

        // A size that lies: the recorded size bounds the inflation, then fails the check.
        let mut lying = archive(&[("z", &zeros, true)]);
        let directory = lying.len() - END_LEN - (46 + 1);
        lying[directory + 24..directory + 28].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(
            files(&lying, 10, 1 << 30),
            Err(ZipError::Corrupt("z".into()))
        );
        // A flipped byte of data fails the checksum.
        let mut flipped = archive(&[("a", b"hello", false)]);
        flipped[30 + 1] ^= 1;
        assert_eq!(files(&flipped, 10, 100), Err(ZipError::Corrupt("a".into())));
        // Cut anywhere, an archive is refused, never read past its end.
        let whole = archive(&[("a.txt", b"hello", false), ("b", &zeros[..100], true)]);
        for cut in 0..whole.len() {
            assert!(files(&whole[..cut], 10, 1000).is_err(), "cut at {cut}");
        }
    }

    /// Hostile bytes end in an error or in files within the bounds, never in a panic or an
    /// allocation past them: every byte of a valid archive changed, and a thousand archives
    /// with random bytes changed (a fixed xorshift, so a failure reproduces).
    #[test]
    fn damaged_archives_never_panic_nor_exceed_the_bounds() {
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(20);
        let whole = archive(&[
            ("a.txt", b"hello", false),
            ("d/", b"", false),
            ("b", &text, true),
        ]);
        let check = |bytes: &[u8]| {
            if let Ok(files) = files(bytes, 3, 2000) {
                assert!(files.len() <= 3);
                assert!(files.iter().map(|f| f.contents.len()).sum::<usize>() <= 2000);
            }
        };
        for at in 0..whole.len() {
            for value in [0x00, 0xff, whole[at] ^ 0x80] {
                let mut changed = whole.clone();
                changed[at] = value;
                check(&changed);
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..1000 {
            let mut changed = whole.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() % changed.len() as u64) as usize;
                changed[at] = next() as u8;
            }
            check(&changed);
        }
    }

    #[test]
    fn what_is_not_an_archive_is_refused() {
        for junk in [&b""[..], b"PK", &[0u8; 100], b"PK\x05\x06"] {
            assert_eq!(files(junk, 10, 1000), Err(ZipError::NotZip), "{junk:?}");
        }
        let mut encrypted = archive(&[("a", b"x", false)]);
        let directory = encrypted.len() - END_LEN - (46 + 1);
        encrypted[directory + 8] |= 1;
        assert_eq!(
            files(&encrypted, 10, 100),
            Err(ZipError::Unsupported("encryption"))
        );
    }
}
