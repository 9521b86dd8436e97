//! What an analysis that cannot read a whole file still reads: its beginning. A bash or R
//! script runs statement by statement, so a fork bomb on its first line runs before the
//! interpreter reads what comes after; any other program that holds one holds it whatever
//! follows. A trailer that defeats the analysis (a here-document that never ends, 300 KB of
//! ordinary code that spends the time budget) graded the program `high` with no findings at
//! all, and a critical one ran isolated instead of being refused (hunt "ana"). The rules now
//! also read the file's first [`BEGINNING_BYTES`], cut at a line, under a share of the budget
//! kept for it ([`Budget`]), and what they find there counts.

use std::cell::Cell;
use std::time::Duration;

use crate::deadline::Deadline;

/// The most of a file read as its beginning: 32 KiB, which the rules read within the share of
/// the budget kept for it (11 to 29 ms of cpu for the benign corpus of each language, repeated,
/// on the development machine; 64 KiB took up to 51 ms).
pub(crate) const BEGINNING_BYTES: usize = 32 << 10;

/// An analysis's time budget (a request's, shared by its files), in two parts: the whole
/// files' analyses end at `whole`, three quarters of it, and the rest is kept for reading the
/// beginnings of files the whole analysis did not read, so that what spent the budget does not
/// also hide what comes first.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) whole: Deadline,
    /// The end of the budget.
    end: Deadline,
    /// What is kept for the beginnings, a quarter of the budget.
    kept: Duration,
    /// When the beginnings' time ends, set when the first is read.
    beginnings: Cell<Option<Deadline>>,
}

impl Budget {
    /// `budget` of this thread's cpu time from now.
    pub(crate) fn after(budget: Duration) -> Budget {
        Budget {
            whole: Deadline::after(budget - budget / 4),
            end: Deadline::after(budget),
            kept: budget / 4,
            beginnings: Cell::new(None),
        }
    }

    /// When reading the beginnings of files must end: the end of the budget, or, when the
    /// whole analyses went past their share (tree-sitter checks the clock only between its
    /// steps, and some readings not at all), the kept quarter from the first beginning read,
    /// so that an overrun does not leave it no time. Either way at most a quarter of the
    /// budget past the whole analyses, for all the request's files together.
    pub(crate) fn for_beginnings(&self) -> Deadline {
        let deadline = self.beginnings.get().unwrap_or(if self.whole.passed() {
            Deadline::after(self.kept)
        } else {
            self.end
        });
        self.beginnings.set(Some(deadline));
        deadline
    }

    /// A budget whose whole analyses' share is spent, with `kept` for the beginnings: what
    /// 300 KB of ordinary code after a fork bomb leaves.
    #[cfg(test)]
    pub(crate) fn spent_on_the_whole(kept: Duration) -> Budget {
        Budget {
            whole: Deadline::after(Duration::ZERO),
            end: Deadline::after(Duration::ZERO),
            kept,
            beginnings: Cell::new(None),
        }
    }
}

/// Where the beginning of `code` read ends, at most at `limit` (and [`BEGINNING_BYTES`]): the
/// end of the file, or the start of the last line before it that starts at the left margin,
/// not with a blank or a closing bracket, where the blocks before it have ended (a cut inside
/// a loop would leave out the `accept` that exempts a server's loop). None when there is none.
pub(crate) fn beginning(code: &[u8], limit: usize) -> Option<usize> {
    if limit >= code.len() && code.len() <= BEGINNING_BYTES {
        return Some(code.len());
    }
    let limit = limit.min(BEGINNING_BYTES).min(code.len());
    (1..=limit).rev().find(|&at| {
        code[at - 1] == b'\n'
            && code
                .get(at)
                .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'}' | b')' | b']'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_beginning_ends_before_a_line_at_the_left_margin() {
        let code = b"import os\nwhile True:\n    os.fork()\n    x = 1\nprint(1)\n";
        assert_eq!(beginning(code, code.len()), Some(code.len()));
        let print = code.len() - b"print(1)\n".len();
        assert_eq!(beginning(code, print), Some(print));
        assert_eq!(beginning(code, print - 1), Some(b"import os\n".len()));
        let c = b"int f() {\n  return 1;\n}\nint g;\n";
        assert_eq!(beginning(c, c.len() - 1), Some(c.len() - b"int g;\n".len()));
        assert_eq!(beginning(b"x = 1\n", 3), None);
        let long = [b"a\n".repeat(BEGINNING_BYTES / 2), b"b\n".to_vec()].concat();
        assert_eq!(beginning(&long, long.len()), Some(BEGINNING_BYTES));
    }
}
