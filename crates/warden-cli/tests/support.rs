//! Each test's own world (issue 8): a temporary directory with its own history database,
//! compile cache, configuration file and network policy directory, and the `warden` command
//! pointed at them through `WARDEN_DB`, `WARDEN_CACHE_DIR`, `WARDEN_CONFIG` and
//! `WARDEN_NETWORK_POLICY_DIR`, so that no test reads or writes the host's real state and
//! results do not depend on which tests ran before.
//!
//! The one helper of the end-to-end tests of `warden-cli` (`mod support;`) and of the
//! integration tests of `warden-engine` (`#[path]`d there).

// Each test file uses a part of it; cargo also builds it alone as a test target.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A test's private directory, its database, cache and configuration inside.
pub struct World {
    dir: tempfile::TempDir,
}

impl Default for World {
    fn default() -> Self {
        Self::with_config("")
    }
}

impl World {
    /// A world with an empty configuration file (the defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// A world in `/var/tmp` rather than the temporary directory: every sandbox mounts its own
    /// `/tmp` and `/work`, so a host directory under them is hidden inside, and a sandbox can
    /// be given this world's dependency cache only from elsewhere.
    pub fn visible_to_sandboxes() -> Self {
        let world = Self {
            dir: tempfile::tempdir_in("/var/tmp").expect("a directory for the test in /var/tmp"),
        };
        world.write_config("");
        world
    }

    /// A world whose configuration file holds `toml`.
    pub fn with_config(toml: &str) -> Self {
        let world = Self {
            dir: tempfile::tempdir().expect("a temporary directory for the test"),
        };
        world.write_config(toml);
        world
    }

    /// The directory, for the test's own files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The history database (`WARDEN_DB`); its directory does not exist until warden creates
    /// it.
    pub fn db(&self) -> PathBuf {
        self.path().join("data/history.sqlite3")
    }

    /// The compile cache's directory (`WARDEN_CACHE_DIR`).
    pub fn cache(&self) -> PathBuf {
        self.path().join("cache")
    }

    /// The configuration file (`WARDEN_CONFIG`).
    pub fn config(&self) -> PathBuf {
        self.path().join("warden.toml")
    }

    /// The directory of imported network policies (`WARDEN_NETWORK_POLICY_DIR`); it does not
    /// exist until a policy is imported.
    pub fn policy_dir(&self) -> PathBuf {
        self.path().join("policies/network")
    }

    /// Replaces the configuration file.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.config(), toml).expect("configuration written");
    }

    /// The variables that point warden at this world.
    pub fn env(&self) -> [(&'static str, PathBuf); 4] {
        [
            ("WARDEN_DB", self.db()),
            ("WARDEN_CACHE_DIR", self.cache()),
            ("WARDEN_CONFIG", self.config()),
            ("WARDEN_NETWORK_POLICY_DIR", self.policy_dir()),
        ]
    }

    /// `warden` with an empty environment but for this world's variables, stdin empty and
    /// stdout and stderr captured. Only the CLI's tests have the binary.
    pub fn warden(&self) -> Command {
        // `env!` would not compile in warden-engine's tests, which include this file too.
        let Some(binary) = option_env!("CARGO_BIN_EXE_warden") else {
            panic!("only warden-cli's tests spawn the warden binary");
        };
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The engine's settings in this world, as `warden` would load them.
    pub fn settings(&self) -> warden_engine::Settings {
        let env = self.env();
        warden_engine::Settings::load_with(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.display().to_string())
        })
        .expect("the world's settings load")
    }

    /// `warden run --network limited_access --json` on a bash script, with room for a package
    /// manager; the result.
    pub fn run_limited(&self, script: &str) -> serde_json::Value {
        let path = self.path().join("install.sh");
        std::fs::write(&path, script).expect("script written");
        let out = self
            .warden()
            .env("PATH", "/usr/bin:/bin")
            .args(["run", "--json", "--network", "limited_access"])
            .args([
                "--wall-time",
                "120s",
                "--cpu-time",
                "60s",
                "--memory",
                "1GiB",
            ])
            .args(["--max-procs", "256", "--workspace-size", "512MiB"])
            .arg(&path)
            .output()
            .expect("warden runs");
        json_of(&out)
    }

    /// The registries `warden network registries` finds, as (host, source).
    pub fn registries(&self) -> Vec<(String, String)> {
        let out = self
            .warden()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/root")
            .args(["network", "registries", "--json"])
            .output()
            .expect("warden runs");
        let found = json_of(&out);
        found
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| {
                (
                    r["host"].as_str().unwrap_or_default().to_owned(),
                    r["source"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Admits, in this world's `[network] registries`, the host pip's index serves its files
    /// from, which registry discovery cannot know: like an operator, asks the index (through
    /// `limited_access`) where its files are. Replaces the configuration file.
    pub fn admit_pip_file_host(&self) {
        let pip = self
            .registries()
            .into_iter()
            .find(|(_, source)| source.starts_with("pip"))
            .map(|(host, _)| host)
            .expect("pip's index is discovered on this host");
        let page = self.run_limited(&format!(
            "/usr/bin/python3 -c \"import re, urllib.request; \
             page = urllib.request.urlopen('https://{pip}/simple/six/', timeout=30).read().decode(); \
             print(re.search(r'href=.https://([^/]+)/', page).group(1))\"\n"
        ));
        assert_eq!(page["outcome"]["code"], 0, "{page:#}");
        let files = page["stdout"].as_str().unwrap_or("").trim().to_owned();
        assert!(!files.is_empty(), "{page:#}");
        self.write_config(&format!("[network]\nregistries = [\"https://{files}\"]\n"));
    }
}

/// The JSON a `warden ... --json` printed, or a panic with its output.
pub fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// This host's first IPv4 address that is not loopback: a destination in the deny set that a
/// test's program may try, refused by the proxy's evaluation (no packet leaves the machine).
pub fn host_address() -> std::net::Ipv4Addr {
    let out = Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback())
        .expect("this host has a non-loopback IPv4 address")
}

/// The cgroups of this test process's sandboxes that still exist (their names start with
/// `run-<pid>-`), in the pids hierarchy (v1) or the unified one.
pub fn our_cgroups() -> usize {
    cgroups_of(std::process::id())
}

/// The cgroups that still exist of the sandboxes that the process `pid` created (a `warden`
/// command's, a server's).
pub fn cgroups_of(pid: u32) -> usize {
    run_cgroups(pid).len()
}

/// The run cgroups that warden `pid` made (in the pids hierarchy on v1).
pub fn run_cgroups(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("run-{pid}-");
    std::fs::read_dir("/sys/fs/cgroup/pids/warden")
        .or_else(|_| std::fs::read_dir("/sys/fs/cgroup/warden"))
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `command` to its end with `stdin` written to its standard input.
pub fn output_with_stdin(command: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .spawn()
        .expect("the command starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin)
        .expect("stdin written");
    child.wait_with_output().expect("the command ends")
}

/// Sandbox helpers left to the host's init (parent pid 1), exited or not: a zygote that ended
/// without reaping its helpers leaves them as zombies there. A helper that is still its
/// zygote's or its CLI's child (another test's, running) is not counted.
pub fn orphaned_helpers() -> Vec<String> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| std::fs::read_to_string(p.path().join("stat")).ok())
        .filter(|stat| {
            let Some((head, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let ppid = rest.split_whitespace().nth(1);
            head.ends_with("(warden-helper") && ppid == Some("1")
        })
        .collect()
}

/// The signals a terminal sends, at their default action for the command `env` starts (a test
/// runner may have left them ignored, which a command inherits).
pub const TERMINAL_SIGNALS: &str = "--default-signal=INT,TERM,HUP,QUIT,TSTP";

/// `warden ARGS` with `world`'s variables and `env`, started as a shell with job control starts
/// a command: in a process group of its own (the one a terminal's Ctrl-C reaches), with the
/// terminal's signals at their default action, stdin, stdout and stderr on pipes.
pub fn in_its_own_group(world: &World, env: &[(&str, &str)], args: &[&str]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let Some(binary) = option_env!("CARGO_BIN_EXE_warden") else {
        panic!("only warden-cli's tests spawn the warden binary");
    };
    Command::new("/usr/bin/env")
        .env_clear()
        .envs(world.env())
        .envs(env.iter().copied())
        .arg(TERMINAL_SIGNALS)
        .arg(binary)
        .args(args)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warden starts")
}

/// `warden ARGS` as a terminal's foreground job: in a session of its own whose controlling
/// terminal is a new pseudo-terminal, its stdin; stdout and stderr on pipes. Returns the
/// pseudo-terminal's other side, where the test types.
pub fn at_a_terminal(
    world: &World,
    env: &[(&str, &str)],
    args: &[&str],
) -> (std::process::Child, std::fs::File) {
    let Some(binary) = option_env!("CARGO_BIN_EXE_warden") else {
        panic!("only warden-cli's tests spawn the warden binary");
    };
    let mut argv = vec![std::ffi::OsString::from(binary)];
    argv.extend(args.iter().map(std::ffi::OsString::from));
    in_a_terminal_session(world, env, &argv)
}

/// `argv` in a session of its own whose controlling terminal is a new pseudo-terminal, its
/// stdin (the terminal's signals at their default actions); stdout and stderr on pipes.
/// Returns the pseudo-terminal's other side, where the test types.
fn in_a_terminal_session(
    world: &World,
    env: &[(&str, &str)],
    argv: &[std::ffi::OsString],
) -> (std::process::Child, std::fs::File) {
    let terminal = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let child = Command::new("/usr/bin/setsid")
        .args(["--ctty", "--wait", "/usr/bin/env", TERMINAL_SIGNALS])
        .args(argv)
        .env_clear()
        .envs(world.env())
        .envs(env.iter().copied())
        .stdin(Stdio::from(terminal.slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    (child, std::fs::File::from(terminal.master))
}

/// Makes this test process the reaper of the orphans of its descendants (`PR_SET_CHILD_SUBREAPER`):
/// a test that kills warden outright gets its sandbox helpers, which would otherwise become
/// zombies of the host's pid 1 until it reaps them (and other tests count those). Reap them
/// with [`reap_orphans`].
pub fn adopt_orphans() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
}

/// Reaps every child of this process that has exited; says whether none is left.
pub fn reap_orphans() -> bool {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
}

/// A shell with job control, small enough to script: runs `argv[1:-1]` as its foreground job
/// in a process group of its own; when the job stops (Ctrl-Z), takes the terminal back and
/// continues the job in the background (`bg`); once the file `argv[-1]` exists, gives the
/// job the terminal and continues it (`fg`); exits with the job's status.
pub const JOB_CONTROL_SHELL: &str = r#"
import os, signal, sys, time
for s in (signal.SIGTTOU, signal.SIGTTIN, signal.SIGTSTP):
    signal.signal(s, signal.SIG_IGN)
child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpid())
    for s in (signal.SIGTTOU, signal.SIGTTIN, signal.SIGTSTP):
        signal.signal(s, signal.SIG_DFL)
    os.execv(sys.argv[1], sys.argv[1:-1])
os.waitpid(child, os.WUNTRACED)
os.tcsetpgrp(0, os.getpgrp())
os.killpg(child, signal.SIGCONT)
while not os.path.exists(sys.argv[-1]):
    time.sleep(0.02)
os.tcsetpgrp(0, child)
os.killpg(child, signal.SIGCONT)
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// Lets a test shell bring its job back when dropped: creates the file it waits for. On a
/// panic (a failed step), the test's directory goes right after, maybe before the shell saw the
/// file: the shell is killed instead, and warden, if found, is ended (SIGTERM, passed on to its
/// program) and continued, so that no stopped run is left behind.
struct ReleaseOnDrop<'a> {
    marker: &'a Path,
    shell: u32,
    warden: Option<u32>,
}

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::write(self.marker, "");
        if !std::thread::panicking() {
            return;
        }
        use nix::sys::signal::{kill, Signal};
        let pid = |pid: u32| nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
        let _ = kill(pid(self.shell), Signal::SIGKILL);
        if let Some(warden) = self.warden {
            let _ = kill(pid(warden), Signal::SIGTERM);
            let _ = kill(pid(warden), Signal::SIGCONT);
        }
    }
}

/// A shell with job control that starts `argv[1:-1]` in the background at a terminal set to
/// `tostop` (a background job's write to it stops the job: SIGTTOU), its stdout and stderr on
/// the terminal and its stdin on `/dev/null`; prints `stopped N` (the stop's signal) once the
/// job stops, then, once the file `argv[-1]` exists, gives it the terminal and continues it
/// (`fg`); exits with the job's status.
pub const BACKGROUND_WRITER_SHELL: &str = r#"
import os, signal, sys, termios, time
for s in (signal.SIGTTOU, signal.SIGTTIN, signal.SIGTSTP):
    signal.signal(s, signal.SIG_IGN)
mode = termios.tcgetattr(0)
mode[3] |= termios.TOSTOP
termios.tcsetattr(0, termios.TCSANOW, mode)
child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    os.dup2(0, 1)
    os.dup2(0, 2)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    for s in (signal.SIGTTOU, signal.SIGTTIN, signal.SIGTSTP):
        signal.signal(s, signal.SIG_DFL)
    os.execv(sys.argv[1], sys.argv[1:-1])
try:
    os.setpgid(child, child)
except OSError:
    pass
_, status = os.waitpid(child, os.WUNTRACED)
if not os.WIFSTOPPED(status):
    print("ended", os.waitstatus_to_exitcode(status), flush=True)
    sys.exit(1)
print("stopped", os.WSTOPSIG(status), flush=True)
while not os.path.exists(sys.argv[-1]):
    time.sleep(0.02)
os.tcsetpgrp(0, child)
os.killpg(child, signal.SIGCONT)
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// `warden ARGS` as a background job at a terminal set to `tostop`, writing its program's
/// output to that terminal ([`BACKGROUND_WRITER_SHELL`]): the first line's write stops warden
/// (SIGTTOU). Returns the shell's first line (`stopped N`), warden's pid, then, once `check`
/// has looked at the stopped run and the shell brought warden to the foreground, the shell's
/// end and what the terminal showed.
pub fn a_terminal_write_in_the_background(
    world: &World,
    args: &[&str],
    check: impl FnOnce(u32),
) -> (String, Output, String) {
    use std::io::{BufRead, Read};
    let Some(binary) = option_env!("CARGO_BIN_EXE_warden") else {
        panic!("only warden-cli's tests spawn the warden binary");
    };
    let marker = world.path().join("fg-now");
    let mut argv: Vec<std::ffi::OsString> =
        ["/usr/bin/python3", "-c", BACKGROUND_WRITER_SHELL, binary]
            .iter()
            .chain(args)
            .map(std::ffi::OsString::from)
            .collect();
    argv.push(marker.clone().into_os_string());
    let (mut shell, mut terminal) = in_a_terminal_session(world, &[], &argv);
    let mut stdout = std::io::BufReader::new(shell.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the shell's line");
    let warden = std::fs::read_to_string(format!("/proc/{}/task/{0}/children", shell.id()))
        .ok()
        .and_then(|children| children.split_whitespace().next()?.parse::<u32>().ok());
    // The shell brings warden back even when `check` fails, so that no stopped run is left.
    let release = ReleaseOnDrop {
        marker: &marker,
        shell: shell.id(),
        warden,
    };
    if let Some(warden) = warden.filter(|_| first.starts_with("stopped")) {
        check(warden);
    }
    drop(release);
    let mut rest = String::new();
    stdout
        .read_to_string(&mut rest)
        .expect("the shell's output");
    let mut out = shell.wait_with_output().expect("the shell ends");
    out.stdout = rest.into_bytes();
    // The terminal's side: what warden wrote, read without waiting once everything ended.
    nix::fcntl::fcntl(
        &terminal,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .expect("O_NONBLOCK");
    let mut shown = Vec::new();
    let _ = terminal.read_to_end(&mut shown);
    (first, out, String::from_utf8_lossy(&shown).into_owned())
}

/// The state letter (`/proc/PID/stat`) of `pid`.
pub fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Waits until `pid` is in `state` (`T`: stopped, `S`: sleeping, ...).
pub fn reaches(pid: u32, state: char) {
    for _ in 0..6000 {
        if state_of(pid) == Some(state) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{pid} never reached state {state}: {:?}", state_of(pid));
}

/// The processes in the cgroups of the run that `warden` (pid) started, named `comm`.
pub fn in_the_run(warden: u32, comm: &str) -> Vec<u32> {
    let cgroup = format!("/run-{warden}-");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cgroup")).is_ok_and(|c| c.contains(&cgroup))
                && std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

/// Ctrl-Z, `bg`, a line typed, `fg`, at a terminal (attached.rs, run_server.rs): `warden
/// ARGS -l python -c PROGRAM`, where the program prints `ready` and reads a line, runs as the
/// foreground job of [`JOB_CONTROL_SHELL`] at a new pseudo-terminal. After Ctrl-Z the shell
/// takes the terminal back and continues warden in the background (`bg`); once a line is
/// typed, warden and the program (found among the processes of the runs of
/// `runs_of(warden's pid)`) must both stop, and after `fg` the line must reach the program.
/// Returns the shell's output once it ended, and warden's pid.
pub fn a_terminal_read_after_bg(
    world: &World,
    env: &[(&str, &str)],
    args: &[&str],
    runs_of: impl Fn(u32) -> u32,
) -> (Output, u32) {
    use std::io::{BufRead, Write};
    let Some(binary) = option_env!("CARGO_BIN_EXE_warden") else {
        panic!("only warden-cli's tests spawn the warden binary");
    };
    let marker = world.path().join("fg-now");
    let program = "import sys\n\
                   print('ready', flush=True)\n\
                   print('got', sys.stdin.readline().strip(), flush=True)\n";
    let mut argv: Vec<std::ffi::OsString> = ["/usr/bin/python3", "-c", JOB_CONTROL_SHELL, binary]
        .iter()
        .chain(args)
        .chain(&["-l", "python", "-c", program])
        .map(std::ffi::OsString::from)
        .collect();
    argv.push(marker.clone().into_os_string());
    let (mut shell, mut typing) = in_a_terminal_session(world, env, &argv);
    // The shell brings warden back even when a step below fails: no stopped run is left.
    let mut release = ReleaseOnDrop {
        marker: &marker,
        shell: shell.id(),
        warden: None,
    };
    let mut stdout = std::io::BufReader::new(shell.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a line");
    assert_eq!(line, "ready\n");
    // The job's process group is warden's, the terminal's foreground group.
    let warden = nix::unistd::tcgetpgrp(&typing).expect("a foreground job");
    release.warden = Some(warden.as_raw().unsigned_abs());
    let programs = in_the_run(runs_of(warden.as_raw().unsigned_abs()), "python3");
    assert_eq!(programs.len(), 1, "the program's process");
    nix::sys::signal::killpg(warden, nix::sys::signal::Signal::SIGTSTP).expect("Ctrl-Z");
    let warden = warden.as_raw().unsigned_abs();
    let in_the_background = || {
        nix::unistd::tcgetpgrp(&typing).is_ok_and(|group| group.as_raw().unsigned_abs() != warden)
            && state_of(warden).is_some_and(|s| s != 'T')
    };
    for _ in 0..6000 {
        if in_the_background() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        in_the_background(),
        "warden goes on in the background after bg"
    );
    reaches(programs[0], 'S');
    typing.write_all(b"hello\n").expect("a line typed");
    reaches(warden, 'T');
    reaches(programs[0], 'T');
    drop(release);
    line.clear();
    stdout.read_line(&mut line).expect("a line");
    assert_eq!(line, "got hello\n");
    (shell.wait_with_output().expect("the shell ends"), warden)
}
