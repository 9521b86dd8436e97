//! The analysis worker: `warden __analysis-worker`, exec'd by a multi-threaded warden
//! (`workers.rs`), single-threaded, bounded in memory once and in cpu time before each
//! request. It reads requests from stdin and answers each on stdout until stdin closes; its
//! compiled rules stay warm between requests. Its caller kills it past a deadline.

use std::io::{BufReader, BufWriter};
use std::process::ExitCode;

use warden_analysis::{Analyzer, RequestFile};

use super::wire;

/// The worker's main: returns when its caller closes stdin, or on a broken pipe.
pub fn main() -> ExitCode {
    if super::limit_memory().is_err() {
        return ExitCode::FAILURE;
    }
    let Ok(analyzer) = Analyzer::builtin() else {
        return ExitCode::FAILURE;
    };
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    loop {
        let files = match wire::read_request(&mut input) {
            Ok(Some(files)) => files,
            Ok(None) => return ExitCode::SUCCESS,
            Err(_) => return ExitCode::FAILURE,
        };
        if super::limit_cpu(false).is_err() {
            return ExitCode::FAILURE;
        }
        let files: Vec<RequestFile<'_>> = files.iter().map(wire::OwnedFile::as_request).collect();
        let answer = analyzer.analyze_request(&files);
        if wire::write_answer(&mut output, answer).is_err() {
            return ExitCode::FAILURE;
        }
    }
}
