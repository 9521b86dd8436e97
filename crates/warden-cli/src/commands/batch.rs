//! `warden batch`: many programs in one process (docs/cli.md#warden-batch).
//!
//! An evaluation harness that calls `warden run` once per program pays, for every program,
//! the process's start, the engine's (settings, catalog, rules, the history's open) and a
//! sandbox built while it waits. `warden batch` pays the first two once and runs the programs
//! on worker threads with the server's machinery: a zygote forks the sandbox helpers (the
//! process is multi-threaded, ARCHITECTURE.md invariant 8), a warm pool builds the next
//! sandboxes while programs run, and the history is written off the programs' path. Each
//! program still gets a fresh sandbox unless `--reuse` says otherwise.
//!
//! The programs are files (one program each) or JSON Lines of requests, each the body of
//! `POST /v1/executions` and checked as the server checks it. Standard output carries one
//! JSON object per program, in the order they were given, each as soon as it and every one
//! before it have finished.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args};
use serde::Serialize;
use serde_json::{json, Value};
use warden_core::{ModeRequest, Outcome};
use warden_engine::{
    Cancellation, EngineError, ErrorKind, ExecutionRequest, ExecutionResult, Origin, Warning,
    WarningKind,
};
use warden_server::{ExecutionBody, ServerOptions};

use super::limit_args::LimitArgs;
use super::sources;
use crate::exit_code;
use crate::signal_watcher::SignalWatcher;

/// Most workers: each has a sandbox ready for it in the pool, and one thread.
const MAX_WORKERS: i64 = 256;

/// Arguments of `warden batch`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("file_options").multiple(true).args([
        "lang", "mode", "network", "cpu_time", "wall_time", "memory", "max_procs", "max_output",
        "max_file_size", "workspace_size", "max_open_files", "stack_size",
    ])
))]
pub(crate) struct BatchArgs {
    /// The programs, one file each; each one's language is detected from its name, shebang
    /// or content unless --lang says.
    #[arg(value_name = "FILE", required_unless_present = "requests")]
    files: Vec<PathBuf>,
    /// Read the programs from this file of JSON Lines instead (`-`: standard input): each
    /// line the body of `POST /v1/executions` (docs/server.md), with its own language,
    /// files, stdin, limits, mode, network and test cases.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["files", "file_options"])]
    requests: Option<PathBuf>,
    /// How many programs run at once, at most 256. Default: the number of cpus.
    #[arg(short = 'j', long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_WORKERS))]
    workers: Option<u16>,
    /// How many programs one sandbox may run, reset in between (a new workspace and IPC
    /// namespace; docs/sandbox-setup.md#reset). 1, the default, gives every program a fresh
    /// sandbox, as `warden run` does.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    reuse: u64,
    /// Language id or alias of the FILE programs.
    #[arg(short = 'l', long = "lang")]
    lang: Option<String>,
    /// Isolation of the FILE programs: auto, sandboxed, isolated or trusted (when the
    /// configuration enables it). Default: the configuration's `modes.default`.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<ModeRequest>,
    /// The network policy of the FILE programs. Default: the configuration's
    /// `[network] default`, itself no_access.
    #[arg(long, value_name = "POLICY")]
    network: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
}

fn parse_mode(text: &str) -> Result<ModeRequest, String> {
    text.parse()
}

/// One program as given: a file, or a line of `--requests`.
enum Input {
    File(PathBuf),
    Line {
        number: u64,
        text: String,
    },
    /// A line that is not a request at all (too long, not UTF-8).
    BadLine {
        number: u64,
        message: String,
    },
}

/// Where the programs come from, read one at a time by whichever worker is free.
enum Inputs {
    Files(FileQueue),
    /// `--requests`' lines, read by a thread of their own ([`Lines::read`]) one line ahead of
    /// the workers, so that a batch whose input waits (a pipe whose writer is idle) still ends
    /// at once when it is interrupted: the reading thread is left in its read, and the
    /// process's exit ends it.
    Lines(mpsc::Receiver<Result<Input, String>>),
}

/// How often a worker waiting for the next line looks whether the batch was interrupted.
const INPUT_POLL: Duration = Duration::from_millis(50);

impl Inputs {
    /// The lines of `reader`, each at most `longest` bytes.
    fn lines(reader: Box<dyn BufRead + Send>, longest: u64) -> anyhow::Result<Self> {
        // A rendezvous: the reader reads the next line while the workers run the last one.
        let (lines, received) = mpsc::sync_channel(0);
        let mut input = Lines {
            reader,
            number: 0,
            longest,
        };
        std::thread::Builder::new()
            .name("warden-batch-input".into())
            .spawn(move || {
                while let Some(line) = input.read() {
                    let failed = line.is_err();
                    if lines.send(line).is_err() || failed {
                        break;
                    }
                }
            })
            .context("starting the input's reader")?;
        Ok(Inputs::Lines(received))
    }

    /// The next program, with its place among the files (a line's is the order it was
    /// read in), or `None` at the end or once `cancel` is cancelled; `Err` when the input
    /// cannot be read, which ends it.
    fn next(&mut self, cancel: &Cancellation) -> Option<(Option<usize>, Result<Input, String>)> {
        match self {
            Inputs::Files(files) => files
                .take()
                .map(|(index, path)| (Some(index), Ok(Input::File(path)))),
            Inputs::Lines(received) => loop {
                match received.recv_timeout(INPUT_POLL) {
                    Ok(line) => return Some((None, line)),
                    Err(mpsc::RecvTimeoutError::Timeout) if !cancel.is_cancelled() => {}
                    Err(_) => return None,
                }
            },
        }
    }
}

/// The program files, taken in their order, except those found to run under gVisor, which
/// are taken first: such a program takes a few hundred milliseconds where a sandboxed one
/// takes a few, and one started last leaves the other workers idle while it ends the batch
/// ([`Batch::look_ahead`]). The results are written in the files' order all the same.
#[derive(Debug, Default)]
struct FileQueue {
    paths: Vec<PathBuf>,
    taken: Vec<bool>,
    /// The first file not yet taken in order.
    cursor: usize,
    /// Files to take before the next in order.
    early: std::collections::VecDeque<usize>,
}

impl FileQueue {
    fn new(paths: Vec<PathBuf>) -> Self {
        Self {
            taken: vec![false; paths.len()],
            paths,
            ..Self::default()
        }
    }

    /// The next file to run, and its place.
    fn take(&mut self) -> Option<(usize, PathBuf)> {
        let early = std::iter::from_fn(|| self.early.pop_front()).find(|&i| !self.taken[i]);
        let index = match early {
            Some(index) => index,
            None => {
                while self.taken.get(self.cursor) == Some(&true) {
                    self.cursor += 1;
                }
                if self.cursor >= self.paths.len() {
                    return None;
                }
                self.cursor
            }
        };
        self.taken[index] = true;
        Some((index, self.paths[index].clone()))
    }
}

/// How far ahead of the workers the look-ahead reads: within what the engine's cache of
/// analyses keeps, so that a worker never analyses a program again.
const LOOK_AHEAD: usize = 256;

/// The UTF-8 byte order mark (U+FEFF), taken off the first line of `--requests`.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// `--requests`' reader.
struct Lines {
    reader: Box<dyn BufRead + Send>,
    number: u64,
    /// The longest line: what the server takes as a body (`[server] max_body`).
    longest: u64,
}

impl Lines {
    /// The next program, or `None` at the end; `Err` when the input cannot be read, which
    /// ends it. Blank lines are skipped.
    fn read(&mut self) -> Option<Result<Input, String>> {
        let longest = self.longest;
        loop {
            self.number += 1;
            let number = self.number;
            let mut line = Vec::new();
            match Read::take(self.reader.as_mut(), longest).read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(format!("reading line {number}: {e}"))),
            }
            if line.len() as u64 == longest && line.last() != Some(&b'\n') {
                // The rest of the line is read and dropped.
                match self.reader.skip_until(b'\n') {
                    Ok(_) => {}
                    Err(e) => return Some(Err(format!("reading line {number}: {e}"))),
                }
                let message = format!("line {number} is longer than {longest} bytes");
                return Some(Ok(Input::BadLine { number, message }));
            }
            if number == 1 && line.starts_with(BOM) {
                // What some editors put first in a UTF-8 file (Windows' Notepad, PowerShell 5's
                // `Out-File`): a mark of the encoding, not part of the first request.
                line.drain(..BOM.len());
            }
            match String::from_utf8(line) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => return Some(Ok(Input::Line { number, text })),
                Err(_) => {
                    let message = format!("line {number} is not UTF-8");
                    return Some(Ok(Input::BadLine { number, message }));
                }
            }
        }
    }
}

/// Writes the answers in the order of the programs, each as soon as every one before it is
/// written.
struct Ordered {
    next: usize,
    waiting: BTreeMap<usize, String>,
    /// Set when standard output failed (its reader left): the batch stops.
    failed: Option<std::io::Error>,
}

impl Ordered {
    fn put(&mut self, index: usize, line: String) {
        self.waiting.insert(index, line);
        let mut out = std::io::stdout().lock();
        while let Some(line) = self.waiting.remove(&self.next) {
            self.next += 1;
            if self.failed.is_none() {
                if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                    self.failed = Some(e);
                }
            }
        }
    }
}

/// How many results, per worker, may wait for an earlier program before the workers stop
/// taking new programs (a few more when workers pass the check at once): a slow program holds
/// the others back rather than letting the waiting results, each up to twice the output
/// limit, fill the memory.
const WAITING_PER_WORKER: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let workers = args.workers.map_or_else(
        || {
            std::thread::available_parallelism()
                .map_or(1, NonZeroUsize::get)
                .min(MAX_WORKERS as usize)
        },
        usize::from,
    );
    let settings = warden_engine::Settings::load()?;
    let options = ServerOptions::from_settings(&settings, Vec::new());
    let lines = |reader: Box<dyn BufRead + Send>| Inputs::lines(reader, options.max_body as u64);
    let inputs = match &args.requests {
        Some(path) if path.as_os_str() == "-" => lines(Box::new(BufReader::new(std::io::stdin())))?,
        Some(path) => lines(Box::new(BufReader::new(
            File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )))?,
        None => Inputs::Files(FileQueue::new(args.files.clone())),
    };
    let mut config = settings.engine_config(super::helper_binary()?);
    // The workers make this process multi-threaded: a zygote (one exec of this binary, at
    // the first run) forks every sandbox helper.
    config.fork_helper = false;
    config.zygote = true;
    config.record_in_background = true;
    config.pool_size = workers;
    config.pool_reuse = args.reuse;
    let started_at = std::time::Instant::now();
    let engine = warden_engine::Engine::new(config)?;

    let cancel = Cancellation::new();
    // SIGINT, SIGTERM, SIGHUP or SIGQUIT cancel the batch: running programs are killed, no
    // new one starts.
    let watcher = SignalWatcher::start({
        let cancel = cancel.clone();
        move |_| {
            eprintln!("warden: interrupted; stopping the programs that run");
            cancel.cancel();
        }
    })?;
    let batch = Batch {
        engine: &engine,
        options: &options,
        args: &args,
        cancel,
        inputs: Mutex::new((0, inputs)),
        taken: AtomicUsize::new(0),
        ordered: Mutex::new(Ordered {
            next: 0,
            waiting: BTreeMap::new(),
            failed: None,
        }),
        written: Condvar::new(),
        window: WAITING_PER_WORKER * workers,
        tally: Mutex::default(),
        lowered_said: AtomicBool::new(false),
    };
    // With several workers, whichever programs of the files `auto` sends to gVisor go first.
    let look_ahead = workers > 1
        && args.requests.is_none()
        && matches!(args.mode, None | Some(ModeRequest::Auto));
    let started = std::thread::scope(|scope| {
        if look_ahead {
            let reader = std::thread::Builder::new().name("warden-batch-ahead".into());
            if let Err(e) = reader.spawn_scoped(scope, || batch.look_ahead()) {
                tracing::warn!(error = %e, "could not start the look-ahead; the files run in order");
            }
        }
        (0..workers)
            .filter(|_| {
                let worker = std::thread::Builder::new().name("warden-batch".into());
                match worker.spawn_scoped(scope, || batch.work()) {
                    Ok(_) => true,
                    // Fewer workers than asked: the others carry on.
                    Err(e) => {
                        tracing::warn!(error = %e, "could not start a worker thread");
                        false
                    }
                }
            })
            .count()
    });
    let Batch {
        ordered,
        tally,
        inputs,
        ..
    } = batch;
    let mut tally = tally.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut ordered = ordered.into_inner().unwrap_or_else(PoisonError::into_inner);
    // The files an interruption left unstarted get their line too: without it, the lines of
    // the programs run early (gVisor's first) after an unstarted one were never written.
    if let (_, Inputs::Files(files)) = inputs.into_inner().unwrap_or_else(PoisonError::into_inner) {
        for (index, path) in files.paths.iter().enumerate() {
            if files.taken[index] {
                continue;
            }
            let line = Line {
                error: Some(error(
                    "cancelled",
                    "not started: warden batch was interrupted".to_owned(),
                )),
                ..Line::of_file(index, path)
            };
            tally.count(&line);
            let text = serde_json::to_string(&line).unwrap_or_default();
            ordered.put(index, text);
        }
    }
    let stopped_by = watcher.stop();
    if started == 0 {
        anyhow::bail!("could not start any worker thread");
    }
    // The history's writer writes what is queued; the pool's sandboxes and the zygote end
    // here, before the exit.
    let unrecorded = engine.flush_history();
    drop(engine);
    let mut summary = tally.summary(started_at.elapsed());
    if unrecorded > 0 {
        summary.push_str(&format!(
            "; {unrecorded} not recorded in the history (the warnings above say why)"
        ));
    }
    eprintln!("warden: {summary}");

    if let Some(e) = ordered.failed {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::from(exit_code::BROKEN_PIPE));
        }
        return Err(e).context("writing the results");
    }
    match stopped_by {
        None if tally.unanswered() == 0 => Ok(ExitCode::SUCCESS),
        None => Ok(ExitCode::from(exit_code::BATCH_INCOMPLETE)),
        Some(signal) => Ok(crate::signal_watcher::exit_status(signal)),
    }
}

/// What the workers share.
struct Batch<'a> {
    engine: &'a warden_engine::Engine,
    options: &'a ServerOptions,
    args: &'a BatchArgs,
    /// Cancelled by SIGINT, SIGTERM, SIGHUP or SIGQUIT, or when standard output fails.
    cancel: Cancellation,
    /// The programs not yet taken, and how many were.
    inputs: Mutex<(usize, Inputs)>,
    /// How many programs were taken (the count under `inputs`, readable without its lock,
    /// which a worker holds while it reads the next line).
    taken: AtomicUsize,
    ordered: Mutex<Ordered>,
    /// Signalled when results are written: wakes the workers that the window holds back.
    written: Condvar,
    /// How many results may wait for an earlier program.
    window: usize,
    /// How the programs ended, for the summary.
    tally: Mutex<Tally>,
    /// Whether the limits lowered to the maxima were said ([`Batch::say_lowered`]).
    lowered_said: AtomicBool,
}

/// How many programs ended which way: `exited 0`, `exited non-zero`, each other outcome
/// kind, and `without a result`.
#[derive(Debug, Default)]
struct Tally(BTreeMap<&'static str, usize>);

impl Tally {
    const UNANSWERED: &'static str = "without a result";

    fn count(&mut self, line: &Line) {
        let way = match line.result.as_ref().map(|r| &r.outcome) {
            Some(Outcome::Exited { code: 0 }) => "exited 0",
            Some(Outcome::Exited { .. }) => "exited non-zero",
            Some(other) => other.kind().name(),
            None => Self::UNANSWERED,
        };
        *self.0.entry(way).or_default() += 1;
    }

    fn unanswered(&self) -> usize {
        self.0.get(Self::UNANSWERED).copied().unwrap_or(0)
    }

    /// `3 programs in 0.4 s: 2 exited 0, 1 without a result`.
    fn summary(&self, elapsed: Duration) -> String {
        let total: usize = self.0.values().sum();
        let ways: Vec<String> = self.0.iter().map(|(way, n)| format!("{n} {way}")).collect();
        format!(
            "{total} program{} in {:.1} s: {}",
            if total == 1 { "" } else { "s" },
            elapsed.as_secs_f64(),
            if ways.is_empty() {
                "none".to_owned()
            } else {
                ways.join(", ")
            }
        )
    }
}

impl Batch<'_> {
    /// One worker: takes the next program, runs it, hands its line to the ordered output,
    /// until the programs or the batch end.
    fn work(&self) {
        while !self.cancel.is_cancelled() {
            self.wait_for_room();
            let (index, input) = {
                let mut guard = lock(&self.inputs);
                let (count, inputs) = &mut *guard;
                let Some((place, input)) = inputs.next(&self.cancel) else {
                    break;
                };
                if input.is_err() {
                    // The input itself failed: nothing after it can be read; the programs
                    // already running finish.
                    *inputs = Inputs::Files(FileQueue::default());
                }
                *count += 1;
                self.taken.store(*count, Ordering::Relaxed);
                (place.unwrap_or(*count - 1), input)
            };
            let line = match input {
                Ok(input) => self.answer(index, input),
                Err(message) => Line {
                    index,
                    error: Some(error("request", message)),
                    ..Line::default()
                },
            };
            lock(&self.tally).count(&line);
            let text = serde_json::to_string(&line).unwrap_or_else(|e| {
                json!({ "index": index, "error": error("internal", e.to_string()) }).to_string()
            });
            let mut ordered = lock(&self.ordered);
            ordered.put(index, text);
            self.written.notify_all();
            if ordered.failed.is_some() {
                self.cancel.cancel();
            }
        }
    }

    /// The look-ahead: reads the files ahead of the workers, at most [`LOOK_AHEAD`] past the
    /// next in order, and puts those the engine would run under gVisor first in the queue.
    /// Their analyses stay in the engine's cache for the workers. Ends with the files, or
    /// when the batch is cancelled.
    fn look_ahead(&self) {
        let mut index = 0;
        while !self.cancel.is_cancelled() {
            let path = {
                let mut guard = lock(&self.inputs);
                let Inputs::Files(files) = &mut guard.1 else {
                    return;
                };
                index = index.max(files.cursor);
                if index >= files.paths.len() {
                    return;
                }
                if index >= files.cursor + LOOK_AHEAD {
                    None
                } else if files.taken[index] {
                    index += 1;
                    continue;
                } else {
                    Some(files.paths[index].clone())
                }
            };
            let Some(path) = path else {
                // Far enough ahead: the workers catch up.
                std::thread::sleep(INPUT_POLL);
                continue;
            };
            // Only regular files are read ahead: a FIFO read here would leave its worker
            // nothing (or half) to read.
            let regular = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
            let isolated = regular
                && self.file_request(&path).is_ok_and(|request| {
                    self.engine.expected_mode(&request) == Some(warden_core::Mode::Isolated)
                });
            if isolated {
                let mut guard = lock(&self.inputs);
                if let Inputs::Files(files) = &mut guard.1 {
                    if !files.taken[index] {
                        files.early.push_back(index);
                    }
                }
            }
            index += 1;
        }
    }

    /// The request of a program file, with the batch's options. A FIFO is waited on until
    /// the batch is cancelled, no longer.
    fn file_request(&self, path: &std::path::Path) -> Result<ExecutionRequest, Value> {
        let args = self.args;
        sources::from_file_until(path, &self.cancel)
            .map(|source| ExecutionRequest {
                language: args.lang.clone(),
                sources: vec![source],
                limits: args.limits.overrides(),
                mode: args.mode,
                network: args.network.clone(),
                ..ExecutionRequest::default()
            })
            .map_err(|e| {
                if self.cancel.is_cancelled() {
                    error(
                        "cancelled",
                        "not started: warden batch was interrupted".to_owned(),
                    )
                } else {
                    error("request", format!("{e:#}"))
                }
            })
    }

    /// Runs one program; its line of output.
    fn answer(&self, index: usize, input: Input) -> Line {
        let mut line = match &input {
            Input::File(path) => Line::of_file(index, path),
            _ => Line {
                index,
                ..Line::default()
            },
        };
        // How this line's caller names a language, for an error that asks for one.
        let hint = if matches!(input, Input::File(_)) {
            "pass --lang"
        } else {
            "set \"language\" in the line"
        };
        // A request line's errors say its number, the engine's as its parse errors do.
        let line_number = match &input {
            Input::Line { number, .. } => Some(*number),
            _ => None,
        };
        let request = match input {
            Input::File(path) => self.file_request(&path),
            Input::Line { number, text } => {
                line.line = Some(number);
                warden_server::parse_json_object::<ExecutionBody>(text.as_bytes())
                    .map_err(|e| error(e.kind, format!("line {number}: {}", e.message)))
                    .and_then(|body| {
                        body.into_request(self.options)
                            .map_err(|e| error(e.kind, format!("line {number}: {}", e.message)))
                    })
            }
            Input::BadLine { number, message } => {
                line.line = Some(number);
                Err(error("request", message))
            }
        };
        let answer = request.and_then(|mut request| {
            request.origin = Origin::new("batch", None);
            request.cancel = Some(self.cancel.clone());
            self.engine
                .execute(request)
                .map(|execution| {
                    self.say_lowered(&execution.warnings);
                    execution.result
                })
                .map_err(|e| {
                    let mut value = engine_error(&e, hint);
                    // The batch's own interruption is no line's fault.
                    if let (Some(number), false) = (line_number, e.kind() == ErrorKind::Cancelled) {
                        let message = value["error"].as_str().unwrap_or_default();
                        value["error"] = json!(format!("line {number}: {message}"));
                    }
                    value
                })
        });
        match answer {
            Ok(result) => line.result = Some(result),
            Err(error) => line.error = Some(error),
        }
        line
    }

    /// Says the limits lowered to the operator's maxima, as `warden run` does, once per batch:
    /// the FILE programs share the command line's limits, so each would say the same (a
    /// request line above a maximum is refused instead, as by the server).
    fn say_lowered(&self, warnings: &[Warning]) {
        let lowered: Vec<&Warning> = warnings
            .iter()
            .filter(|w| w.what == WarningKind::LimitLowered)
            .collect();
        if !lowered.is_empty() && !self.lowered_said.swap(true, Ordering::Relaxed) {
            for warning in lowered {
                eprintln!("warden: warning: {warning}");
            }
        }
    }

    /// Waits while as many results as the window holds wait for an earlier program.
    fn wait_for_room(&self) {
        let mut ordered = lock(&self.ordered);
        while self.taken.load(Ordering::Relaxed) - ordered.next >= self.window
            && !self.cancel.is_cancelled()
        {
            ordered = self
                .written
                .wait_timeout(ordered, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A program's line of output: its place, where it came from, and its result or why it has
/// none.
#[derive(Debug, Default, Serialize)]
struct Line {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    /// The file's name as its bytes, in base64, when they are not UTF-8: `file` then shows
    /// each byte it cannot as U+FFFD, and two such names could read the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    file_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ExecutionResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

impl Line {
    /// The line of the program at `index` read from `path`, named as given: as text, and
    /// exactly (`file_base64`) when the name is not UTF-8, as a result gives output that is
    /// not (`stdout_base64`).
    fn of_file(index: usize, path: &std::path::Path) -> Line {
        let bytes = path.as_os_str().as_bytes();
        Line {
            index,
            file: Some(path.to_string_lossy().into_owned()),
            file_base64: std::str::from_utf8(bytes)
                .is_err()
                .then(|| super::client::base64_text(bytes)),
            ..Line::default()
        }
    }
}

fn error(kind: &str, message: String) -> Value {
    json!({ "error": message, "kind": kind })
}

/// The engine's refusal or failure as a line's `error`: as the own API words it (with `hint`,
/// how the line names a language, when it needs one), with the findings when the mode policy
/// refused the program.
fn engine_error(e: &EngineError, hint: &str) -> Value {
    let mut value = error(e.kind().name(), format!("{e:#}"));
    if e.needs_language() {
        value["error"] = json!(format!("{e:#}; {hint}"));
    }
    if let EngineError::Refused { analysis, .. } = e {
        value["security"] =
            json!({ "threat_level": analysis.threat_level, "findings": analysis.findings });
    }
    if e.kind() == ErrorKind::Cancelled {
        value["error"] = json!("stopped: warden batch was interrupted");
    }
    value
}
