//! A bash command run by a wrapper with options (`nice -n 5 curl`, `timeout 5 sudo id`,
//! `command -p eval id`, `time -p eval "$c"`, `env -i bash`, `xargs -n1 curl`) as the rules
//! read a wrapper without them: the wrapped command first. The rules read a wrapper's first
//! argument as the command it runs (`nice curl`, `command eval`), and an option in between hid
//! `eval`, `sudo`, shells and network clients (a hunt ran each graded `none`). The options,
//! their values, `--`, `env`'s `NAME=value` words and a positional value some wrappers take
//! before the command (`timeout`'s duration, `taskset`'s mask, `chrt`'s priority) move after
//! the command's name: `nice -n 5 curl x` is read as `nice curl -n 5 x`. A wrapper that wraps
//! another (`nice -n 5 timeout 5 sh`) is read through: `nice sh -n 5 timeout 5`.
//!
//! `command -v NAME` and `command -V NAME` only say what `NAME` is, and `env -S` splits a
//! string into a command line: those stay as written. Only the tree tells a command's name and
//! its arguments, so the commands are found on the tree and the text is parsed again
//! (`reading.rs`, [`super::parsed`]). Runs in the analysing process, between parses.
//!
//! A command named by a variable (`xargs -n1 $cmd`) stays where it is: the rules read no name
//! there. The moved text stays on its line, bytes unchanged in number: offsets after it and lines do
//! not move. Only options on one line, with blanks alone between them and the command, move.
//! The command's name starts with no digit and no `-`, and every value a wrapper takes before
//! it does; once moved, the name is the wrapper's first argument, where it is no option,
//! value or wrapper: each rewrite is the last for its command, so the readings end.

use tree_sitter::{Node, Tree};

use crate::deadline::{self, Deadline};

/// How a wrapper reads the words before the command it runs.
struct Wrapper {
    name: &'static [u8],
    /// Options whose value is the next word (`nice -n 5`).
    with_value: &'static [&'static [u8]],
    /// A value it takes after its options, before the command (`timeout 5 cmd`).
    positional: Option<fn(&[u8]) -> bool>,
}

const WRAPPERS: [Wrapper; 14] = [
    wrapper(b"builtin", &[]),
    wrapper(b"command", &[]),
    wrapper(b"exec", &[b"-a"]),
    wrapper(
        b"env",
        &[
            b"-u",
            b"-C",
            b"--unset",
            b"--chdir",
            b"-P",
            b"--default-signal",
        ],
    ),
    wrapper(b"nohup", &[]),
    wrapper(b"setsid", &[]),
    wrapper(b"nice", &[b"-n", b"--adjustment"]),
    wrapper(
        b"xargs",
        &[
            b"-a",
            b"-d",
            b"-E",
            b"-I",
            b"-L",
            b"-n",
            b"-P",
            b"-s",
            b"--arg-file",
            b"--delimiter",
            b"--eof",
            b"--replace",
            b"--max-lines",
            b"--max-args",
            b"--max-procs",
            b"--max-chars",
            b"--process-slot-var",
        ],
    ),
    wrapper(b"time", &[b"-f", b"-o", b"--format", b"--output"]),
    Wrapper {
        positional: Some(duration),
        ..wrapper(b"timeout", &[b"-s", b"-k", b"--signal", b"--kill-after"])
    },
    wrapper(
        b"stdbuf",
        &[b"-i", b"-o", b"-e", b"--input", b"--output", b"--error"],
    ),
    wrapper(
        b"ionice",
        &[
            b"-c",
            b"-n",
            b"-p",
            b"-P",
            b"-u",
            b"--class",
            b"--classdata",
        ],
    ),
    Wrapper {
        positional: Some(number_list),
        ..wrapper(b"taskset", &[])
    },
    Wrapper {
        positional: Some(number_list),
        ..wrapper(b"chrt", &[])
    },
];

const fn wrapper(name: &'static [u8], with_value: &'static [&'static [u8]]) -> Wrapper {
    Wrapper {
        name,
        with_value,
        positional: None,
    }
}

/// `timeout`'s duration: `5`, `0.5`, `10s`, `1m`.
fn duration(word: &[u8]) -> bool {
    let digits = word.strip_suffix(b"s").or_else(|| word.strip_suffix(b"m"));
    let digits = digits
        .or_else(|| word.strip_suffix(b"h"))
        .or_else(|| word.strip_suffix(b"d"))
        .unwrap_or(word);
    digits.first().is_some_and(u8::is_ascii_digit)
        && digits.iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

/// `taskset`'s mask or list, `chrt`'s priority: `0x3`, `0-3,5`, `10`.
fn number_list(word: &[u8]) -> bool {
    word.first().is_some_and(u8::is_ascii_digit)
        && word
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b"x,-".contains(b))
}

/// The text to parse again, when a wrapper of `code`'s tree has options before its command.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    let mut read: Option<Vec<u8>> = None;
    // What was read before the deadline is read again all the same.
    deadline::walk(tree, deadline, |node| {
        if node.kind() != "command" {
            return true;
        }
        let Some((options, command)) = options_before_command(node, code) else {
            return true;
        };
        let read = read.get_or_insert_with(|| code.to_vec());
        let (name, gap) = (&code[command.clone()], &code[options.end..command.start]);
        let mut moved = name.to_vec();
        moved.extend_from_slice(gap);
        moved.extend_from_slice(&code[options.clone()]);
        read[options.start..command.end].copy_from_slice(&moved);
        // Its arguments' commands (`$(…)`) moved with them: read on the next pass.
        false
    });
    read
}

/// Where the words between the wrapper that names `command` and the command it runs are, and
/// where that command's name is, when there are such words to move.
fn options_before_command(
    command: Node<'_>,
    code: &[u8],
) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let name = command.child_by_field_name("name")?;
    let mut wrapper = wrapper_named(&code[name.byte_range()])?;
    let mut cursor = command.walk();
    let arguments: Vec<Node<'_>> = command
        .children_by_field_name("argument", &mut cursor)
        .collect();
    let (mut at, mut positional, mut after_dashes) = (0, wrapper.positional, false);
    let run = loop {
        let argument = arguments.get(at)?;
        let word = &code[argument.byte_range()];
        at += 1;
        if word == b"--" && !after_dashes {
            after_dashes = true;
        } else if word.len() > 1 && word[0] == b'-' && !after_dashes {
            let describes = wrapper.name == b"command" && word.iter().any(|b| b"vV".contains(b));
            let splits = wrapper.name == b"env"
                && (word.starts_with(b"-S") || word.starts_with(b"--split-string"));
            if describes || splits {
                return None;
            }
            at += usize::from(wrapper.with_value.contains(&word));
        } else if wrapper.name == b"env" && assignment(word) {
            // A variable `env` sets for the command: passed over, as an option is.
        } else if let Some(value) = positional.take() {
            if !value(word) {
                return None;
            }
        } else if let Some(inner) = wrapper_named(word) {
            // A wrapper that runs another: read through to the command it runs.
            (wrapper, positional, after_dashes) = (inner, inner.positional, false);
        } else {
            at -= 1;
            break argument;
        }
    };
    let named = matches!(run.kind(), "word" | "string" | "raw_string");
    if at == 0 || !named || !names_a_command(&code[run.byte_range()]) {
        return None;
    }
    let options = arguments[0].start_byte()..arguments[at - 1].end_byte();
    let on_one_line = !code[options.start..run.end_byte()].contains(&b'\n');
    let blanks = code[options.end..run.start_byte()]
        .iter()
        .all(|b| matches!(b, b' ' | b'\t'));
    (on_one_line && blanks && !options.is_empty()).then(|| (options, run.byte_range()))
}

/// The wrapper `word` names (`nice`, `\nice`, `/usr/bin/nice`), if it names one.
fn wrapper_named(word: &[u8]) -> Option<&'static Wrapper> {
    let word = word.strip_prefix(b"\\").unwrap_or(word);
    let base = word.rsplit(|&b| b == b'/').next().unwrap_or(word);
    WRAPPERS.iter().find(|w| w.name == base)
}

/// `NAME=value`, which `env` sets before it runs the command.
fn assignment(word: &[u8]) -> bool {
    let Some(equals) = word.iter().position(|&b| b == b'=') else {
        return false;
    };
    equals > 0
        && !word[0].is_ascii_digit()
        && word[..equals]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Whether `word` can be the command a wrapper runs, once moved to be its first argument: no
/// option, value or assignment there (`-`, a digit, `=` start or make none).
fn names_a_command(word: &[u8]) -> bool {
    word.first()
        .is_some_and(|b| !b.is_ascii_digit() && *b != b'-')
        && !assignment(word)
        && !word.contains(&b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::read_until_still;
    use crate::Grammar;

    fn read(code: &str) -> String {
        read_until_still(Grammar::Bash, reread, code).0
    }

    #[test]
    fn the_command_a_wrapper_runs_comes_first() {
        let cases = [
            ("time -p eval \"$c\"", "time eval -p \"$c\""),
            ("command -p eval id", "command eval -p id"),
            ("command -- eval id", "command eval -- id"),
            ("builtin -- eval id", "builtin eval -- id"),
            ("timeout 5 sudo id", "timeout sudo 5 id"),
            ("timeout -s KILL 1m sh -c id", "timeout sh -s KILL 1m -c id"),
            ("nice -n 1 unshare -r sh", "nice unshare -n 1 -r sh"),
            ("nice -n5 curl x", "nice curl -n5 x"),
            ("stdbuf -o0 bash -c id", "stdbuf bash -o0 -c id"),
            ("xargs -n1 curl", "xargs curl -n1"),
            ("xargs -I {} sh -c x", "xargs sh -I {} -c x"),
            ("env -i A=1 bash", "env bash -i A=1"),
            ("curl x | timeout 5 sh", "curl x | timeout sh 5"),
            ("nice -n 5 timeout 5 sh", "nice sh -n 5 timeout 5"),
            ("/usr/bin/time -v eval x", "/usr/bin/time eval -v x"),
        ];
        for (code, expected) in cases {
            assert_eq!(read(code), expected, "{code:?}");
        }
    }

    #[test]
    fn what_runs_nothing_stays() {
        for code in [
            "command -v gcc",
            "command -pv eval",
            "command -V eval",
            "env -S 'bash -c id'",
            "timeout sh",
            "timeout 5",
            "nice make -j4",
            "time ./a.out",
            "nice -n 5 \\\n  curl x",
            "xargs -n1 $cmd",
            "env -u HOME",
            "taskset abc sh",
        ] {
            assert_eq!(read(code), code, "{code:?}");
        }
    }
}
