//! The shell variables a program's other files read: what decides, for a file of a program of
//! several, whether a variable it assigns a command's name (`MODE=eval`) may run elsewhere.
//! Files are analysed one by one, and another file may source this one, or this one it, and
//! run the variable there (`source ./lib.sh; $E id`), even by a name built at run time; to run
//! it, that file reads it: `$E`, `${E}`, `${E:-x}`, in code or in a string another shell runs
//! (`bash -c '$E id'`, `subprocess.run(["bash", "-c", "$E id"])`). So the other files' text,
//! whatever their language (a data file may be sourced too), is searched for those readings.
//! A reading through another name, which the text does not show, makes every name count:
//! bash's indirection (`${!ref}`) and namerefs (`declare -n`, `local -n`, `typeset -n`). Runs
//! in the engine, over the program's files, before the request is sent.
//!
//! Linear in the program's size: each file is read once into what it reads, counted by name
//! over the program ([`ProgramReads`]), and each file is told what the others read by those
//! counts less its own, of the names that are words of its own text only (a variable it
//! assigns is one of them: nothing else is asked), each text read as written and with its
//! line continuations joined, as the shell reads `MO\` then `DE=eval`. A hunt sent 40 files of 100 KB of distinct
//! `$v1 $v2 …`: every file was told every other file's names, 1.7 GB in the server's own
//! process. Past [`MAX_NAMES`] distinct names in a program, every name counts as read, as
//! under an indirection: the answer errs toward "it may run".

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The most distinct variable names a program's files may read before every name counts as
/// read elsewhere: what bounds the engine's memory for the counts, and each file's share of
/// them (at most this many names, each a word of the file), in the request to the analysing
/// process and in the cache's key. Ordinary programs read a few hundred.
const MAX_NAMES: usize = 4096;

/// The variables the other files of a program read (`RequestFile::among_others`), of the names
/// that are words of the file it was made for ([`ProgramReads::besides`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ReadElsewhere {
    /// Every name may be read: the other files read variables through other names.
    any: bool,
    /// The names read, sorted.
    names: BTreeSet<Vec<u8>>,
}

/// What the files of a program read, each file counted once per name: built in one pass over
/// each file, then asked, for each, what the others read ([`ProgramReads::besides`]).
#[derive(Debug, Default)]
pub struct ProgramReads {
    /// How many files read each name; empty once past [`MAX_NAMES`] names.
    readers: HashMap<Vec<u8>, usize>,
    /// How many files read variables through other names.
    indirect: usize,
    /// More than [`MAX_NAMES`] distinct names are read: every name counts.
    past_bound: bool,
}

impl ProgramReads {
    /// What `files` (the program's files, whole) read.
    pub fn of<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> ProgramReads {
        let mut reads = ProgramReads::default();
        for file in files {
            let texts = as_read(file);
            reads.indirect += usize::from(texts.iter().any(|t| indirect(t)));
            if reads.past_bound {
                continue;
            }
            let mut own = HashSet::new();
            let names = texts.iter().flat_map(|t| names_read(t));
            for name in names.filter(|&name| own.insert(name)) {
                match reads.readers.get_mut(name) {
                    Some(files) => *files += 1,
                    None => {
                        reads.readers.insert(name.to_vec(), 1);
                    }
                }
                if reads.readers.len() > MAX_NAMES {
                    reads.past_bound = true;
                    reads.readers = HashMap::new();
                    break;
                }
            }
        }
        reads
    }

    /// What the program's files other than `code` read, of the names that are words of `code`
    /// (the only ones its analysis asks about: those it assigns); `counted`: `code` is one of
    /// the files this was made of, and what it reads itself does not count.
    pub fn besides(&self, code: &[u8], counted: bool) -> ReadElsewhere {
        let texts = as_read(code);
        let own_indirect = counted && texts.iter().any(|t| indirect(t));
        if self.past_bound || self.indirect > usize::from(own_indirect) {
            return ReadElsewhere {
                any: true,
                names: BTreeSet::new(),
            };
        }
        let own: HashSet<&[u8]> = if counted {
            texts.iter().flat_map(|t| names_read(t)).collect()
        } else {
            HashSet::new()
        };
        let read_by_others = |word: &&[u8]| {
            self.readers
                .get(*word)
                .is_some_and(|&files| files > usize::from(own.contains(word)))
        };
        ReadElsewhere {
            any: false,
            names: texts
                .iter()
                .flat_map(|t| words(t))
                .filter(read_by_others)
                .map(<[u8]>::to_vec)
                .collect(),
        }
    }
}

/// `code` as written and, when it continues a line, as the shell reads it before it splits
/// words: each `\` and line break removed (`$MO\` then `DE` on the next line reads `$MODE`,
/// and `MO\` then `DE=eval` assigns it). Both are read, and the continuations removed in
/// single quotes and comments too, where the shell keeps them: a name too many only makes an
/// answer "it may run".
fn as_read(code: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let continued = code.windows(2).any(|w| w == b"\\\n");
    let mut texts = vec![Cow::Borrowed(code)];
    if continued {
        let mut joined = Vec::with_capacity(code.len());
        let mut rest = code;
        while let Some(at) = rest.windows(2).position(|w| w == b"\\\n") {
            joined.extend_from_slice(&rest[..at]);
            rest = &rest[at + 2..];
        }
        joined.extend_from_slice(rest);
        texts.push(Cow::Owned(joined));
    }
    texts
}

impl ReadElsewhere {
    /// Whether the other files may read the variable `name`, a word of the file this was made
    /// for.
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

/// Whether `word` may be a variable's name: it starts with a letter or `_` (`$1x` reads the
/// first argument).
fn is_a_name(word: &[u8]) -> bool {
    word.first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
}

/// The words of `code` that may be variables' names: each longest run of letters, digits and
/// `_` that starts with a letter or `_`.
fn words(code: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    code.split(|&b| !is_name_byte(b)).filter(|w| is_a_name(w))
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
        Some(&code[at..at + len]).filter(|name| is_a_name(name))
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
    let mut words = code
        .split(|b| b.is_ascii_whitespace() || b";&|(){}".contains(b))
        .filter(|w| !w.is_empty());
    let mut before: &[u8] = b"";
    words.any(|word| {
        let declares = matches!(before, b"declare" | b"local" | b"typeset");
        before = word;
        declares && word.first() == Some(&b'-') && word.contains(&b'n')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the files other than `code` read, `code` not among them.
    fn elsewhere<'a>(others: impl IntoIterator<Item = &'a [u8]>, code: &[u8]) -> ReadElsewhere {
        ProgramReads::of(others).besides(code, false)
    }

    #[test]
    fn the_names_other_files_read_are_found_in_any_text() {
        let code = b"MODE=eval ARR=(eval) RUN=eval E=eval a=1 X1=eval\n";
        let read = elsewhere(
            [
                &b"source ./a.sh\npython3 t.py --mode \"${MODE:-x}\" ${#ARR[@]} $1X1\n"[..],
                &b"subprocess.run(['bash', '-c', '$RUN id'])\n"[..],
            ],
            code,
        );
        for name in [&b"MODE"[..], b"ARR", b"RUN"] {
            assert!(read.reads(name), "{}", String::from_utf8_lossy(name));
        }
        assert!(!read.reads(b"E"));
        assert!(!read.reads(b"a"));
        assert!(!read.reads(b"X1"), "`$1X1` reads the first argument");
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
            assert!(elsewhere([code], b"E=eval\n").reads(b"E"), "{code:?}");
        }
        for code in [&b"echo ${!a[@]} ${!p*}\n"[..], b"declare -a names\n"] {
            assert!(!elsewhere([code], b"E=eval\n").reads(b"E"), "{code:?}");
        }
    }

    /// Each file of a program is told what the others read by the program's counts less its
    /// own, and gets the answer it would get from the other files read apart: for every word
    /// of it, whichever file reads it, twice over or through another name.
    #[test]
    fn each_file_is_told_what_the_others_read_and_not_what_it_reads() {
        let files: [&[u8]; 5] = [
            b"E=eval\necho \"$E\" $F\nG=x\n",
            b"F=eval\necho ${F:-x}\n",
            b"echo $G; H=sudo; echo $H\n",
            b"echo $H\n",
            b"echo $H\n",
        ];
        let reads = ProgramReads::of(files);
        for (i, code) in files.iter().enumerate() {
            let told = reads.besides(code, true);
            let others = files
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, other)| *other);
            let apart: HashSet<&[u8]> = others.flat_map(names_read).collect();
            for word in words(code) {
                assert_eq!(told.reads(word), apart.contains(word), "file {i}: {word:?}");
            }
        }
        assert!(reads.besides(files[0], true).reads(b"F"));
        assert!(!reads.besides(files[0], true).reads(b"E"));
        assert!(
            reads.besides(files[3], true).reads(b"H"),
            "the same text twice"
        );
        assert!(
            reads.besides(b"E=eval\n", false).reads(b"E"),
            "a file not counted"
        );
        // A line continuation inside a name: the shell joins it before it splits words.
        let continued = ProgramReads::of([&b"echo $MO\\\nDE\n"[..], b"MO\\\nDE=eval\n"]);
        assert!(continued.besides(b"MO\\\nDE=eval\n", true).reads(b"MODE"));
        assert!(!continued.besides(b"echo $MO\\\nDE\n", true).reads(b"MODE"));
        let through = ProgramReads::of([&b"${!r} id\n"[..], b"E=eval\n"]);
        assert!(!through.besides(b"${!r} id\n", true).reads(b"r"));
        assert!(through.besides(b"E=eval\n", true).reads(b"E"));
    }

    /// Past the bound of names, every name counts, and nothing is kept of them.
    #[test]
    fn a_program_that_reads_too_many_names_counts_every_name() {
        let many: String = (0..=MAX_NAMES).map(|n| format!("$v{n} ")).collect();
        let reads = ProgramReads::of([many.as_bytes(), b"echo hi\n"]);
        assert!(reads.readers.is_empty());
        let told = reads.besides(b"E=eval\n", true);
        assert!(told.reads(b"E"));
        assert_eq!(told.to_bytes(), [1]);
        let under: String = (0..MAX_NAMES).map(|n| format!("$v{n} ")).collect();
        let reads = ProgramReads::of([under.as_bytes(), b"E=eval\n"]);
        assert!(!reads.besides(b"E=eval\n", true).reads(b"E"));
    }
}
