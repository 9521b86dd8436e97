//! The files of one request analysed under one budget: a request of many files gets the
//! budget of one program, not one per file (64 files of 200 ms each would be 12.8 s).

use warden_core::Analysis;

use crate::partial::Budget;
use crate::{Analyzer, ReadElsewhere};

/// One file of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFile<'a> {
    /// The language id it is read as.
    pub language: &'a str,
    /// Its contents.
    pub code: &'a [u8],
    /// A file that may be data rather than code: analysed as by
    /// [`Analyzer::analyze_if_code`], else as by [`Analyzer::analyze`].
    pub maybe_data: bool,
    /// A file that may be data which one of the program's sources includes (`#include
    /// "notes.txt"`, `source lib.txt`: the rule file's `includes`): what is found in it counts
    /// even when it does not parse whole.
    pub named: bool,
    /// The program has other files, and what they read of the shell's variables. One may
    /// source this file, or this file one, and run in the same shell a variable this file
    /// assigns where this file's analysis cannot see it (`E=eval; echo "$E"` here, `source
    /// ./lib.sh; $E id` there): a rule's match that counts only where the program may run it
    /// (`only_if_run`) then also counts where another file reads the variable.
    pub among_others: Option<&'a ReadElsewhere>,
}

/// The analyses of a request's files, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAnalysis {
    /// Each file's analysis; `None` for a file that may be data and is not code.
    pub files: Vec<Option<Analysis>>,
    /// Whether the budget was used up: a file analysed after another took it all is graded as
    /// a timeout that file alone would not have had (so the caller does not cache it alone).
    pub budget_spent: bool,
}

impl Analyzer {
    /// Analyses `files` with one budget for them all, in order.
    pub fn analyze_request(&self, files: &[RequestFile<'_>]) -> RequestAnalysis {
        let budget = Budget::after(self.time_budget);
        let files = files
            .iter()
            .map(|file| {
                let (language, code, others) = (file.language, file.code, file.among_others);
                if file.maybe_data {
                    self.analyze_if_code_by(language, code, file.named, others, &budget)
                } else {
                    Some(self.analyze_by(language, code, others, &budget))
                }
            })
            .collect();
        RequestAnalysis {
            files,
            budget_spent: budget.whole.passed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProgramReads;
    use std::time::Duration;

    #[test]
    fn the_files_of_a_request_share_one_budget() {
        let analyzer = Analyzer::builtin().expect("rules");
        let files = [
            RequestFile {
                language: "python",
                code: b"import os\nos.system('ls')\n",
                maybe_data: false,
                named: false,
                among_others: None,
            },
            RequestFile {
                language: "python",
                code: b"a,b\n1,2\n",
                maybe_data: true,
                named: false,
                among_others: None,
            },
        ];
        let answer = analyzer.analyze_request(&files);
        assert_eq!(answer.files.len(), 2);
        assert!(answer.files[0]
            .as_ref()
            .is_some_and(|a| !a.findings.is_empty()));
        assert!(!answer.budget_spent);

        // Large enough that tree-sitter calls back (once per hundred or so operations) before
        // its end: the spent budget stops the parse of both files.
        let long = "x = 1\n".repeat(5000);
        let files = [files[0], files[0]].map(|file| RequestFile {
            code: long.as_bytes(),
            ..file
        });
        let spent = Analyzer::builtin()
            .expect("rules")
            .with_time_budget(Duration::ZERO)
            .analyze_request(&files);
        assert!(spent.budget_spent);
        for file in &spent.files {
            let file = file.as_ref().expect("a program");
            let why = file.parse_error.as_deref().unwrap_or_default();
            assert!(why.contains("longer than"), "{file:?}");
        }
    }

    /// Regression hunt: a variable assigned `eval` counted as run in every file of a program
    /// of several (`MODE=eval` in a training script beside its Python: `high`); it counts
    /// where another file reads it, or reads variables through other names.
    #[test]
    fn a_variable_assigned_eval_counts_where_another_file_may_run_it() {
        let analyzer = Analyzer::builtin().expect("rules");
        let code = b"E=eval\necho \"mode: $E\"\n";
        let among = |other: &[u8]| ProgramReads::of([other]).besides(code, false);
        let alone = among(b"print('no shell here')\n");
        let runs = among(b"source ./a.sh\n$E id\n");
        let indirect = among(b"r=E; ${!r} id\n");
        let file = |among_others| RequestFile {
            language: "bash",
            code,
            maybe_data: false,
            named: false,
            among_others,
        };
        let answer = analyzer.analyze_request(&[
            file(None),
            file(Some(&alone)),
            file(Some(&runs)),
            file(Some(&indirect)),
        ]);
        let hidden = |i: usize| {
            answer.files[i]
                .as_ref()
                .is_some_and(|a| a.findings.iter().any(|f| f.rule == "bash.hidden_command"))
        };
        assert!(!hidden(0), "{:?}", answer.files[0]);
        assert!(!hidden(1), "{:?}", answer.files[1]);
        assert!(hidden(2), "{:?}", answer.files[2]);
        assert!(hidden(3), "{:?}", answer.files[3]);
        // A variable this file never reads may still run where another file sources it.
        let unread = RequestFile {
            code: b"E=eval\n",
            ..file(Some(&runs))
        };
        let answer = analyzer.analyze_request(&[
            unread,
            RequestFile {
                code: b"E=eval\n",
                ..file(Some(&alone))
            },
        ]);
        assert!(answer.files[0]
            .as_ref()
            .is_some_and(|a| !a.findings.is_empty()));
        assert!(answer.files[1]
            .as_ref()
            .is_some_and(|a| a.findings.is_empty()));
    }
}
