//! The shell variables a program's other files read: what decides, for a file of a program of
//! several, whether a variable it assigns a command's name (`MODE=eval`) may run elsewhere.
//! Files are analysed one by one, and another file may source this one, or this one it, and
//! run the variable there (`source ./lib.sh; $E id`), even by a name built at run time; to run
//! it, that file reads it: `$E`, `${E}`, `${E:-x}`, in code or in a string another shell runs
//! (`bash -c '$E id'`, `subprocess.run(["bash", "-c", "$E id"])`). So the other files' text,
//! whatever their language (a data file may be sourced too), is searched for those readings.
//! A reading through another name, which the text does not show, makes every name count:
//! bash's indirection (`${!ref}`) and namerefs (`declare -n`, `local -n`, `typeset -n`). Runs
//! in the engine, over the program's files, before the request is sent (cheap: one pass over
//! the bytes).

use std::collections::BTreeSet;

/// The variables the other files of a program read (`RequestFile::among_others`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ReadElsewhere {
    /// Every name may be read: the other files read variables through other names.
    any: bool,
    /// The names read, sorted.
    names: BTreeSet<Vec<u8>>,
}

impl ReadElsewhere {
    /// What `files` (the program's other files, whole) read.
    pub fn of<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> ReadElsewhere {
        let mut read = ReadElsewhere::default();
        for file in files {
            read.any |= indirect(file);
            read.names.extend(names_read(file).map(<[u8]>::to_vec));
        }
        read
    }

    /// Whether the other files may read the variable `name`.
    pub fn reads(&self, name: &[u8]) -> bool {
        self.any || self.names.contains(name)
    }

    /// The bytes that stand for it (a flag, then the names, each ended by a line break): what
    /// the request to an analysing process carries, and what a cache of analyses keys on.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![u8::from(self.any)];
        for name in &self.names {
            bytes.extend_from_slice(name);
            bytes.push(b'\n');
        }
        bytes
    }

    /// What [`ReadElsewhere::to_bytes`] made.
    pub fn from_bytes(bytes: &[u8]) -> ReadElsewhere {
        let Some((&any, names)) = bytes.split_first() else {
            return ReadElsewhere::default();
        };
        ReadElsewhere {
            any: any != 0,
            names: names
                .split(|&b| b == b'\n')
                .filter(|n| !n.is_empty())
                .map(<[u8]>::to_vec)
                .collect(),
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The names after each `$`, `${`, `${#` or `${!` of `code`.
fn names_read(code: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    code.iter().enumerate().filter_map(move |(i, &b)| {
        if b != b'$' {
            return None;
        }
        let mut at = i + 1;
        if code.get(at) == Some(&b'{') {
            at += 1;
            if matches!(code.get(at), Some(b'!' | b'#')) {
                at += 1;
            }
        }
        let len = code[at..].iter().take_while(|&&b| is_name_byte(b)).count();
        (len > 0).then(|| &code[at..at + len])
    })
}

/// Whether `code` reads a variable through another name: `${!ref}` or `${!ref[0]}` (not the
/// keys of an array, `${!a[@]}`, or the names with a prefix, `${!p*}`), or a nameref.
fn indirect(code: &[u8]) -> bool {
    let indirection = code.windows(3).enumerate().any(|(i, w)| {
        if w != b"${!" {
            return false;
        }
        let rest = &code[i + 3..];
        let len = rest.iter().take_while(|&&b| is_name_byte(b)).count();
        let after = &rest[len..];
        !(after.starts_with(b"[@]}")
            || after.starts_with(b"[*]}")
            || after.starts_with(b"*}")
            || after.starts_with(b"@}"))
    });
    indirection || nameref(code)
}

/// Whether `code` declares a nameref: `declare`, `local` or `typeset` with an option word
/// holding `n` (`-n`, `-rn`).
fn nameref(code: &[u8]) -> bool {
    let words: Vec<&[u8]> = code
        .split(|b| b.is_ascii_whitespace() || b";&|(){}".contains(b))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|pair| {
        matches!(pair[0], b"declare" | b"local" | b"typeset")
            && pair[1].first() == Some(&b'-')
            && pair[1].contains(&b'n')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_other_files_read_are_found_in_any_text() {
        let read = ReadElsewhere::of([
            &b"source ./a.sh\npython3 t.py --mode \"${MODE:-x}\" ${#ARR[@]}\n"[..],
            &b"subprocess.run(['bash', '-c', '$RUN id'])\n"[..],
        ]);
        for name in [&b"MODE"[..], b"ARR", b"RUN"] {
            assert!(read.reads(name), "{}", String::from_utf8_lossy(name));
        }
        assert!(!read.reads(b"E"));
        assert!(!read.reads(b"a"));
        assert_eq!(ReadElsewhere::from_bytes(&read.to_bytes()), read);
    }

    #[test]
    fn a_reading_through_another_name_makes_every_name_count() {
        for code in [
            &b"r=E; ${!r} id\n"[..],
            b"${!r[0]} id\n",
            b"declare -n r=E; $r id\n",
            b"f() { local -rn r=$1; }\n",
        ] {
            assert!(ReadElsewhere::of([code]).reads(b"E"), "{code:?}");
        }
        for code in [&b"echo ${!a[@]} ${!p*}\n"[..], b"declare -a names\n"] {
            assert!(!ReadElsewhere::of([code]).reads(b"E"), "{code:?}");
        }
    }
}
