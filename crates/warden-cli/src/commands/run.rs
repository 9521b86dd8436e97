//! `warden run`: execute one program in the sandbox.
//!
//! Without `--json` the program's stdout and stderr pass through as it writes them and warden
//! exits with the program's status (see `exit_code`); with `--json` stdout carries exactly one
//! JSON object (docs/result-schema.md). Either way, the signals that would end the CLI
//! (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are passed on to the program (`attached`).

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use nix::sys::stat::{fstat, SFlag};
use warden_core::mode::ModeRefusal;
use warden_core::{Analysis, ModeRequest};
use warden_core::{ByteSize, LimitOverrides, Outcome};
use warden_engine::{
    EngineError, Execution, ExecutionRequest, ExecutionResult, Interactive, Origin, SourceFile,
    VolumeRequest,
};

use super::limit_args::LimitArgs;
use super::sources;
use warden_sandbox::Stdin;

use crate::exit_code;

mod attached;
mod remote;

/// Largest standard input read from a file or socket (a pipe is passed through unread).
const MAX_STDIN: u64 = 256 << 20;

/// Arguments of `warden run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The program: one file, several files (the first is the entry), or a directory with
    /// --entry. The language is detected from the entry's name, shebang or content unless
    /// --lang says.
    #[arg(required_unless_present = "code", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The program's code, inline, instead of files.
    #[arg(short = 'c', long = "code", conflicts_with = "files")]
    code: Option<String>,
    /// The entry file, relative to the directory given as the program.
    #[arg(long, value_name = "NAME")]
    entry: Option<String>,
    /// Compile even when the compile cache holds the artifact, and do not store it (not with
    /// --server: the cache is this process's).
    #[arg(long)]
    no_cache: bool,
    /// Language id or alias (python, py, javascript, node, bash, ...).
    #[arg(short = 'l', long = "lang")]
    lang: Option<String>,
    /// Print one JSON object with the outcome, the output and the usage.
    #[arg(long)]
    json: bool,
    /// Print where warden's time went, phase by phase, on stderr after the run.
    #[arg(long)]
    profile: bool,
    /// Isolation: auto (from the code's threat level and the configuration), sandboxed,
    /// isolated (gVisor) or trusted (when the configuration enables it). Default: the
    /// configuration's `modes.default`, itself auto by default.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<ModeRequest>,
    /// The network policy (`warden network policies` lists them): no_access, limited_access,
    /// internet_access, development, or one the operator imported. Default: the
    /// configuration's `[network] default`, itself no_access.
    #[arg(long, value_name = "POLICY")]
    network: Option<String>,
    /// A package to install before the program runs, as the language's package manager names
    /// it (six==1.16.0, is-number@7.0.0, rake:13.0.6); repeatable. Installed under
    /// limited_access whatever --network says, and cached (docs/network.md#dependencies).
    #[arg(long = "dep", value_name = "SPEC", allow_hyphen_values = true)]
    deps: Vec<String>,
    /// An option added to the compiler's command (-O0, -DDEBUG, -std=c++20); repeatable. Each
    /// must be one the language admits (`warden languages --json`: compile_options;
    /// docs/languages.md#compiler-options).
    #[arg(
        long = "compile-option",
        value_name = "OPTION",
        allow_hyphen_values = true
    )]
    compile_options: Vec<String>,
    /// The program's stderr goes into its stdout, interleaved as written (one stream under
    /// --max-output).
    #[arg(long)]
    stderr_to_stdout: bool,
    /// A named volume mounted at an absolute path, read-write (`:rw`, the default) or with
    /// `:ro` read-only (`data:/data`, `refs:/refs:ro`); repeatable. Not in trusted mode
    /// (docs/volumes.md).
    #[arg(long = "volume", value_name = "NAME:PATH[:ro|:rw]", value_parser = parse_volume)]
    volumes: Vec<VolumeRequest>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Run it in the running `warden serve` at this address (`http://HOST:PORT`) instead of
    /// in a sandbox of this process: the server's warm engine and pool make a short run
    /// cheaper (docs/cli.md). An empty value runs it here.
    #[arg(long, value_name = "URL", env = "WARDEN_SERVER")]
    server: Option<String>,
    /// The API token for `--server`, if the server requires one.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Arguments passed to the program (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

impl RunArgs {
    fn limits(&self) -> LimitOverrides {
        self.limits.overrides()
    }

    fn sources(&self) -> anyhow::Result<Vec<SourceFile>> {
        if let Some(code) = &self.code {
            return Ok(vec![SourceFile {
                name: None,
                code: code.clone().into_bytes(),
                executable: false,
            }]);
        }
        match self.files.as_slice() {
            [dir] if dir.is_dir() => {
                let entry = self
                    .entry
                    .as_deref()
                    .context("a directory needs --entry NAME")?;
                sources::from_directory(dir, entry)
            }
            files => {
                if self.entry.is_some() {
                    bail!("--entry goes with a directory; with files, the first one is the entry");
                }
                sources::from_files(files)
            }
        }
    }
}

fn parse_mode(text: &str) -> Result<ModeRequest, String> {
    text.parse()
}

/// `NAME:PATH`, `NAME:PATH:ro` or `NAME:PATH:rw`, read one way only: a path holding `:` is
/// refused. Read from the right, `data:/x:ro:rw` was a writable mount at `/x:ro`, while
/// `data:/a:b` was refused (hunt srv 7).
fn parse_volume(text: &str) -> Result<VolumeRequest, String> {
    let usage = || format!("{text:?} is not NAME:PATH[:ro|:rw]");
    let colon = || format!("{}: a path here cannot hold ':'", usage());
    let mut parts = text.split(':');
    let (Some(name), Some(path)) = (parts.next(), parts.next()) else {
        return Err(usage());
    };
    let read_only = match parts.next() {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => return Err(format!("{}, and {other:?} is not ro or rw", colon())),
    };
    if parts.next().is_some() {
        return Err(colon());
    }
    if name.is_empty() || path.is_empty() {
        return Err(usage());
    }
    Ok(VolumeRequest {
        name: name.to_owned(),
        path: PathBuf::from(path),
        read_only,
    })
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if let Some(server) = args.server.as_deref().filter(|s| !s.is_empty()) {
        if args.no_cache {
            // A usage error, as clap reports a conflict (exit 2).
            clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                "--no-cache (this process's compile cache) cannot be used with --server or \
                 WARDEN_SERVER\n",
            )
            .exit();
        }
        return remote::run(&args, server);
    }
    let json = args.json;
    let profile = args.profile.then(std::time::Instant::now);
    let outcome = execute(args, json);
    if let Err(e) = &outcome {
        if let Some(EngineError::Refused { refusal, analysis }) = e.downcast_ref::<EngineError>() {
            return refused(json, refusal, analysis);
        }
    }
    let (result, broken) = match outcome {
        Ok((execution, engine_ready, broken, said)) => {
            warn(&execution, said);
            if let Some(started) = profile {
                print_profile(started, engine_ready, &execution.phases);
            }
            (execution.result, broken)
        }
        Err(e) if json => return super::json_error(&e),
        Err(e) => return Err(e),
    };
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &result).context("writing the JSON result")?;
        writeln!(out)?;
        Ok(ExitCode::SUCCESS)
    } else if broken {
        // The program's output was being read by a reader that left: ended as the shell ends
        // a pipeline's writer.
        Ok(ExitCode::from(exit_code::BROKEN_PIPE))
    } else {
        pass_through(&result, true)
    }
}

/// What `execute` gives: the execution, how long the engine took to be ready (settings,
/// catalog, policies, analyzer), whether stdout's reader left, and how many of the
/// execution's warnings were said before the run.
type Executed = (Execution, std::time::Duration, bool, usize);

/// Runs the request, attached to the caller (`attached`: the output written as it is read
/// unless `json`, the signals passed on), saying on stderr before the run how the language
/// was found when unsure and the warnings known then.
fn execute(args: RunArgs, json: bool) -> anyhow::Result<Executed> {
    let started = std::time::Instant::now();
    // Read before the signals are taken: a read that waits (a FIFO with no writer yet, a
    // socket that stays open) is still ended by Ctrl-C or SIGTERM, with nothing to clean up.
    let (sources, stdin) = (args.sources()?, stdin()?);
    let (attached, shown) = attached::Attached::new(!json);
    let said = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let saying = said.clone();
    let on_prepared: warden_engine::PreparedHook = Box::new(move |found, warnings| {
        if found.is_unsure() {
            announce_detection(&found.language, found.confidence.into(), &found.by);
        }
        for warning in warnings {
            eprintln!("warden: warning: {warning}");
        }
        saying.store(warnings.len(), std::sync::atomic::Ordering::Relaxed);
    });
    let request = ExecutionRequest {
        language: args.lang.clone(),
        sources,
        args: args.args.clone(),
        compile_options: args.compile_options.clone(),
        stderr_to_stdout: args.stderr_to_stdout,
        stdin,
        limits: args.limits(),
        mode: args.mode,
        network: args.network.clone(),
        dependencies: args.deps.clone(),
        volumes: args.volumes.clone(),
        origin: Origin::new("cli", None),
        interactive: Some(Interactive {
            output: Box::new(attached),
            on_denial: None,
            on_run: (!json).then(|| Box::new(show_compiler_output) as warden_engine::RunHook),
            on_prepared: Some(on_prepared),
        }),
        ..ExecutionRequest::default()
    };
    let engine = super::engine(|config| {
        if args.no_cache {
            config.cache = None;
            config.analyses_dir = None;
        }
    })?;
    let ready = started.elapsed();
    let execution = engine.execute(request);
    let broken = match shown {
        Some(shown) => shown.finish()?,
        None => false,
    };
    let execution = execution.map_err(super::with_language_hint)?;
    // A one-shot process: what the engine still holds is memory and open files (the history's
    // connection, the compiled rules, the catalog), which the exit frees at once; freeing them
    // one by one cost a run about 0.3 ms of cpu. A CLI's engine has no pool, zygote or
    // background history writer, whose drop would have work to finish.
    std::mem::forget(engine);
    let said = said.load(std::sync::atomic::Ordering::Relaxed);
    Ok((execution, ready, broken, said))
}

/// What the compiler said of a program it compiled (warnings, `-Wall`, javac's notes), on
/// stderr before the program's output, as running the compiler oneself shows it. A failed
/// compile's output is shown with its ending instead (`pass_through`); `--json` has it in
/// `compile`. A cached compile ran nothing and has nothing to say.
fn show_compiler_output(compile: Option<&warden_engine::StageResult>) {
    let Some(compile) = compile else { return };
    let mut err = std::io::stderr().lock();
    for output in [&compile.stdout, &compile.stderr] {
        // Best effort: a closed stderr must not stop the program's run.
        let _ = err.write_all(output);
    }
    let _ = err.flush();
}

/// `--profile`: the phase table on stderr, each phase in milliseconds and its share.
fn print_profile(
    started: std::time::Instant,
    engine_ready: std::time::Duration,
    phases: &[warden_engine::Phase],
) {
    let total = started.elapsed();
    let share = |d: std::time::Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-9);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    eprintln!("warden: profile");
    eprintln!("  {:<12} {:>9} {:>6}", "phase", "ms", "%");
    eprintln!(
        "  {:<12} {:>9.2} {:>5.1}%",
        "engine",
        ms(engine_ready),
        share(engine_ready)
    );
    let mut accounted = engine_ready;
    for phase in phases {
        accounted += phase.took;
        eprintln!(
            "  {:<12} {:>9.2} {:>5.1}%",
            phase.name,
            ms(phase.took),
            share(phase.took)
        );
    }
    let rest = total.saturating_sub(accounted);
    eprintln!("  {:<12} {:>9.2} {:>5.1}%", "cli", ms(rest), share(rest));
    eprintln!("  {:<12} {:>9.2}", "total", ms(total));
    // What warden added to the programs' own run: the number that `bench/` compares.
    let program: std::time::Duration = phases
        .iter()
        .filter(|p| p.name == "program")
        .map(|p| p.took)
        .sum();
    eprintln!(
        "  {:<12} {:>9.2}",
        "warden",
        ms(total.saturating_sub(program))
    );
}

/// Says what went wrong beside the execution (the history) on stderr, after the program's
/// own output: the execution's warnings but the first `said` (said before the run).
fn warn(execution: &Execution, said: usize) {
    for warning in execution.warnings.iter().skip(said) {
        eprintln!("warden: warning: {warning}");
    }
}

/// Says on stderr which language was chosen when detection was unsure of it.
fn announce_detection(
    language: &dyn std::fmt::Display,
    confidence: f64,
    by: &dyn std::fmt::Display,
) {
    eprintln!(
        "warden: detected {language} (confidence {confidence:.2}, by {by}); pass --lang to choose"
    );
}

/// The mode policy refused the program: the findings go to stderr (or into the JSON object).
fn refused(json: bool, refusal: &ModeRefusal, analysis: &Analysis) -> anyhow::Result<ExitCode> {
    if json {
        let mut out = std::io::stdout().lock();
        let value = serde_json::json!({
            "error": refusal.to_string(),
            "refused": true,
            "security": { "threat_level": analysis.threat_level, "findings": analysis.findings },
        });
        serde_json::to_writer(&mut out, &value)?;
        writeln!(out)?;
    } else {
        let mut err = std::io::stderr().lock();
        for f in &analysis.findings {
            writeln!(
                err,
                "warden: line {} {} {}: {} ({})",
                f.line,
                f.severity,
                f.rule,
                f.explanation,
                super::printable(&f.excerpt)
            )?;
        }
        writeln!(err, "warden: {refusal}")?;
    }
    Ok(ExitCode::from(exit_code::REFUSED))
}

/// A pipe is handed to the program as is; a terminal never is (an ioctl on it could inject
/// input into the user's shell): what is typed is relayed to the program while it runs when
/// warden is the terminal's foreground job, and the program gets empty input otherwise (a
/// background job's read would stop warden); a file or socket is read here.
fn stdin() -> anyhow::Result<Stdin> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let foreground = nix::unistd::tcgetpgrp(stdin.as_fd())
            .is_ok_and(|group| group == nix::unistd::getpgrp());
        if !foreground {
            return Ok(Stdin::Null);
        }
        let fd = stdin
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stdin")?;
        return Ok(Stdin::Relay(fd));
    }
    let Ok(stat) = fstat(stdin.as_fd()) else {
        return Ok(Stdin::Null);
    };
    let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
    if kind == SFlag::S_IFIFO {
        let fd = stdin
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stdin")?;
        return Ok(Stdin::Pipe(fd));
    }
    read_stdin().map(Stdin::Bytes)
}

/// Standard input read whole, at most [`MAX_STDIN`]. Read through a descriptor of its own, not
/// `std::io::stdin()`, which takes EBADF for an empty input: a descriptor open for writing only
/// is an error, not an empty input.
fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating stdin")?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_STDIN + 1)
        .read_to_end(&mut bytes)
        .context("reading stdin")?;
    if bytes.len() as u64 > MAX_STDIN {
        bail!("standard input is larger than {}", ByteSize(MAX_STDIN));
    }
    Ok(bytes)
}

/// Shows how the run ended; `shown`: the program's output was already written as it was read.
fn pass_through(result: &ExecutionResult, shown: bool) -> anyhow::Result<ExitCode> {
    fn stage<'a>(
        who: &'static str,
        code: u8,
        stage: Option<&'a warden_engine::StageResult>,
    ) -> Option<FailedStage<'a>> {
        stage.map(|s| FailedStage {
            who,
            code,
            outcome: s.outcome.clone(),
            stdout: std::borrow::Cow::Borrowed(&s.stdout),
            stderr: std::borrow::Cow::Borrowed(&s.stderr),
        })
    }
    let failed_stage = match result.outcome {
        Outcome::DependencyError => stage(
            "installer",
            exit_code::DEPENDENCY_ERROR,
            result.dependencies.as_ref(),
        ),
        Outcome::CompileError => stage(
            "compiler",
            exit_code::COMPILE_ERROR,
            result.compile.as_ref(),
        ),
        _ => None,
    };
    let limit = limit_field(&result.outcome).and_then(|field| {
        let limits = serde_json::to_value(result.limits).ok()?;
        limits[field].as_str().map(str::to_owned)
    });
    Ending {
        outcome: result.outcome.clone(),
        stdout: &result.stdout,
        stderr: &result.stderr,
        shown,
        failed_stage,
        limit,
    }
    .print()
}

/// The limit `outcome` says the run reached, as the result's `limits` object names it.
fn limit_field(outcome: &Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::TimeLimit {
            which: warden_core::TimeLimitKind::Cpu,
        } => Some("cpu_time"),
        Outcome::TimeLimit {
            which: warden_core::TimeLimitKind::Wall,
        } => Some("wall_time"),
        Outcome::MemoryLimit => Some("memory"),
        Outcome::OutputLimit { .. } => Some("max_output"),
        Outcome::FileSizeLimit { .. } => Some("max_file_size"),
        _ => None,
    }
}

/// How a run ended, as `warden run` without `--json` shows it: from this process's result or
/// from a server's (`--server`).
struct Ending<'a> {
    outcome: Outcome,
    stdout: &'a [u8],
    stderr: &'a [u8],
    /// `stdout` and `stderr` were written as the program wrote them: not again.
    shown: bool,
    /// The stage before the run that failed (the dependencies' installation, the compilation).
    failed_stage: Option<FailedStage<'a>>,
    /// The limit the run reached, as text (`5s`, `256MiB`), when it reached one.
    limit: Option<String>,
}

/// A stage that failed before the program could run.
struct FailedStage<'a> {
    /// Who ran in it: `installer` or `compiler`.
    who: &'static str,
    /// warden's exit status for it.
    code: u8,
    outcome: Outcome,
    stdout: std::borrow::Cow<'a, [u8]>,
    stderr: std::borrow::Cow<'a, [u8]>,
}

/// What goes before a `warden:` line so that it starts a line: a newline after output whose
/// last byte (`last`) did not end a line.
fn line_start(last: Option<&u8>) -> &'static str {
    match last {
        Some(b'\n') | None => "",
        Some(_) => "\n",
    }
}

/// Whether `a` and `b` are the same open file (device and inode), as stdout and stderr are at a
/// terminal or when both are redirected to one file.
fn same_file(a: &impl std::os::fd::AsFd, b: &impl std::os::fd::AsFd) -> bool {
    match (
        nix::sys::stat::fstat(a.as_fd()),
        nix::sys::stat::fstat(b.as_fd()),
    ) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

impl Ending<'_> {
    /// Writes the program's output (or the failed stage's) and what ended the run, and gives
    /// the exit status that stands for it.
    fn print(self) -> anyhow::Result<ExitCode> {
        if let Some(stage) = self.failed_stage {
            let mut err = std::io::stderr().lock();
            for output in [&stage.stdout, &stage.stderr] {
                err.write_all(output)
                    .with_context(|| format!("writing the {}'s output", stage.who))?;
            }
            let how = match &stage.outcome {
                Outcome::Exited { .. } => String::new(),
                other => format!(": the {} {other}", stage.who),
            };
            let last = [&stage.stderr, &stage.stdout]
                .into_iter()
                .find_map(|output| output.last());
            writeln!(err, "{}warden: {}{how}", line_start(last), self.outcome)?;
            return Ok(ExitCode::from(stage.code));
        }
        if !self.shown {
            std::io::stdout()
                .lock()
                .write_all(self.stdout)
                .context("writing stdout")?;
            std::io::stderr()
                .lock()
                .write_all(self.stderr)
                .context("writing stderr")?;
        }
        // The line starts a line of its own after output that did not end one: the program's
        // stderr, or its stdout when both are the same file (a terminal) and stderr is empty.
        let last = match self.stderr.last() {
            Some(last) => Some(last),
            None if same_file(&std::io::stdout(), &std::io::stderr()) => self.stdout.last(),
            None => None,
        };
        let start = line_start(last);
        match (&self.outcome, &self.limit) {
            (Outcome::Exited { .. }, _) => {}
            (_, Some(limit)) => eprintln!("{start}warden: {} ({limit})", self.outcome),
            (
                Outcome::CompileError
                | Outcome::DependencyError
                | Outcome::TimeLimit { .. }
                | Outcome::MemoryLimit
                | Outcome::OutputLimit { .. }
                | Outcome::FileSizeLimit { .. },
                None,
            ) => eprintln!("{start}warden: {}", self.outcome),
            (other, None) => eprintln!("{start}warden: program {other}"),
        }
        Ok(ExitCode::from(exit_code::for_outcome(&self.outcome)))
    }
}
