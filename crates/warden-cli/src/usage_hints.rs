//! What a command line that clap refuses most likely meant, added to clap's error as a `tip:`
//! line. clap says what is wrong with the words it got; a common slip (a command without the
//! `--` before it, a size written as two words) reads as an unrelated error without it.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The subcommands that take a command after `--` (`warden session exec ID -- ls`).
const TAKES_A_COMMAND: [(&str, &str); 3] = [("session", "exec"), ("tool", "wrap"), ("mcp", "wrap")];

/// `e`, clap's error for the command line `args` (without the program's name), with a tip
/// when the mistake is a known slip.
pub(crate) fn with_hint(mut e: clap::Error, args: &[OsString]) -> clap::Error {
    let words: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().unwrap_or(""))
        .take_while(|a| *a != "--")
        .collect();
    let hint = match e.kind() {
        ErrorKind::UnknownArgument => match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(stray)) if !stray.starts_with('-') => {
                command_hint(&words, stray)
            }
            _ => None,
        },
        ErrorKind::MissingRequiredArgument => missing_program_hint(&words),
        ErrorKind::ArgumentConflict
            if words.first() == Some(&"run") && is_files_against_code(&e) =>
        {
            Some(
                "a word that is neither an option nor an option's value is read as a program \
                 file, which --code cannot be given with: a size or a duration is one word \
                 (`--memory 10MiB`, not `10 MiB`), and the program's arguments go after `--`"
                    .to_owned(),
            )
        }
        _ => None,
    };
    if let Some(hint) = hint {
        e.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![hint.into()]),
        );
    }
    e
}

/// The tip for a word where a subcommand that takes a command after `--` expected none.
fn command_hint(words: &[&str], stray: &str) -> Option<String> {
    let (parent, sub) = TAKES_A_COMMAND
        .into_iter()
        .find(|(parent, sub)| words.windows(2).any(|w| w == [*parent, *sub]))?;
    Some(format!(
        "the command goes after `--`: `warden {parent} {sub} ... -- {stray} ...`"
    ))
}

/// The tip for a command given no program: clap names only the first of the ways to give
/// one (`<FILE>...`, `<COMMAND>...`), and `-c CODE`, `--requests PATH` or `--file` is as good.
fn missing_program_hint(words: &[&str]) -> Option<String> {
    let ways = match words {
        ["run", ..] => "as FILE... or as -c CODE",
        ["batch", ..] => {
            "as FILE... or as --requests PATH (JSON Lines of requests, - for standard input)"
        }
        ["session", "exec", ..] => "as a command after `--` or as --file PROGRAM",
        _ => return None,
    };
    Some(format!("give the program {ways}"))
}

/// Whether `e` says `warden run`'s program files cannot be given with `--code`.
fn is_files_against_code(e: &clap::Error) -> bool {
    let says = |kind| match e.get(kind) {
        Some(ContextValue::String(arg)) => arg.contains("FILE") || arg.starts_with("--code"),
        Some(ContextValue::Strings(args)) => args
            .iter()
            .any(|arg| arg.contains("FILE") || arg.starts_with("--code")),
        _ => false,
    };
    says(ContextKind::InvalidArg) && says(ContextKind::PriorArg)
}
