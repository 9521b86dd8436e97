//! A real `warden serve` for one end-to-end test (issue 9): started in the test's own
//! [`World`] on a free loopback port, its log kept for the failure message, stopped with
//! SIGTERM when dropped; and the Python tools of the test venv that talk to it.
//!
//! The venv (`/opt/warden-test-venv`, pinned by scripts/test-clients.txt) is installed by
//! scripts/setup.sh, which CI runs: a test that needs it fails, naming the fix, rather than
//! skipping.

// Each test file uses a part of it; cargo also builds it alone as a test target.
#![allow(dead_code, unreachable_pub)]

#[path = "support.rs"]
pub mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use support::World;

/// The venv scripts/setup.sh creates with the test clients at pinned versions.
pub const VENV_BIN: &str = "/opt/warden-test-venv/bin";

/// The bearer token every [`LiveServer`] is configured with.
pub const TOKEN: &str = "s3cret";

/// A token marked `admin`, named `root`, for a test's configuration: `/metrics` answers only
/// such a token ([`LiveServer::metrics`]). Not in every server's: with an admin token Judge0's
/// deletions need its authorization.
pub const ADMIN: &str = "[[server.tokens]]\nname = \"root\"\ntoken = \"adm1n\"\nadmin = true\n";

/// The bearer token of [`ADMIN`].
pub const ADMIN_TOKEN: &str = "adm1n";

/// A running `warden serve`; SIGTERM and a bounded wait when dropped.
pub struct LiveServer {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    world: World,
}

impl LiveServer {
    /// Starts `warden serve` with `config` plus one token ([`TOKEN`], named `test`), and waits
    /// until it says where it listens.
    pub fn start(config: &str) -> Self {
        let config = format!("{config}\n[[server.tokens]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n");
        Self::start_in(World::with_config(&config))
    }

    /// Stops this server (SIGTERM) and starts another in the same world: its database,
    /// configuration and state.
    pub fn restart(self) -> Self {
        self.restart_with(|_| {})
    }

    /// [`LiveServer::restart`], with `between` done to the world while no server runs (a
    /// state file changed after the server that wrote it has stopped, which rewrites it).
    pub fn restart_with(mut self, between: impl FnOnce(&World)) -> Self {
        self.stop(Duration::from_secs(40));
        let world = std::mem::take(&mut self.world);
        between(&world);
        Self::start_in(world)
    }

    /// Starts `warden serve` in `world`.
    fn start_in(world: World) -> Self {
        let mut child = world
            .warden()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("WARDEN_LOG", "info")
            .spawn()
            .expect("warden serve starts");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        // What it logs before it says where it listens is part of its log too (a sessions
        // store opened at start-up may say something first, or not, by timing).
        let mut before = String::new();
        let addr = loop {
            let line = lines
                .next()
                .expect("warden serve says where it listens before exiting")
                .expect("stderr is text");
            if let Some(addr) = line.strip_prefix("warden: listening on http://") {
                break addr.parse().expect("an address");
            }
            before.push_str(&line);
            before.push('\n');
        };
        let log = Arc::new(Mutex::new(before));
        // Keep draining the log so the server never blocks on a full pipe.
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = kept.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            child,
            addr,
            log,
            world,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The world it runs in (its database and configuration).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// One request with the bearer token over HTTP/1.0 (the server closes after answering):
    /// the status and the body.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.request_as(TOKEN, method, path, body)
    }

    /// `GET /metrics` with [`ADMIN_TOKEN`] (the server's configuration has [`ADMIN`]).
    pub fn metrics(&self) -> (u16, String) {
        self.request_as(ADMIN_TOKEN, "GET", "/metrics", None)
    }

    /// [`LiveServer::request`] with another bearer token (one the test configured).
    pub fn request_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        let body = body.unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("request sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer read");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        (status, body.to_owned())
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET /v1/health` on a fresh connection: its status code, or `None` when the request
    /// failed or took longer than `timeout`.
    pub fn health(&self, timeout: Duration) -> Option<u16> {
        let mut stream = TcpStream::connect_timeout(&self.addr, timeout).ok()?;
        stream.set_read_timeout(Some(timeout)).ok()?;
        stream.set_write_timeout(Some(timeout)).ok()?;
        let request = "GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.split(' ').nth(1)?.parse().ok()
    }

    /// Runs one of the venv's programs (`python3`, `schemathesis`, ...) with `args`, in the
    /// world's directory (tools that keep state, such as hypothesis's example database, keep
    /// it there).
    pub fn venv_tool(&self, tool: &str, args: &[&str]) -> Output {
        let program = Path::new(VENV_BIN).join(tool);
        assert!(
            program.exists(),
            "{} is missing: run scripts/setup.sh (it installs the test clients of \
             scripts/test-clients.txt into the venv)",
            program.display()
        );
        Command::new(&program)
            .args(args)
            .current_dir(self.world.path())
            .env("JUDGE0_SUPPRESS_PREVIEW_WARNING", "1")
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()))
    }

    /// Runs a script of crates/warden-server/tests/clients/ with the venv's Python, the
    /// server's base URL and token first, then `args`; fails the test with its output and the
    /// server's log unless it succeeds. Returns its stdout.
    pub fn client_script(&self, script: &str, args: &[&str]) -> String {
        let path = clients_dir().join(script);
        let path = path.to_str().expect("a UTF-8 path");
        let base = self.base();
        let mut all = vec![path, base.as_str(), TOKEN];
        all.extend_from_slice(args);
        let output = self.venv_tool("python3", &all);
        self.expect_success(script, &output)
    }

    /// Fails the test, with the tool's output and the server's log, unless it succeeded.
    pub fn expect_success(&self, what: &str, output: &Output) -> String {
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{what} failed ({}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
            output.status,
            self.log()
        );
        eprintln!("{stdout}");
        stdout
    }

    /// Sends SIGTERM and waits for the exit, at most `deadline` (then SIGKILL).
    pub fn stop(&mut self, deadline: Duration) {
        if !self.is_running() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while self.is_running() && start.elapsed() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(40));
    }
}

/// crates/warden-server/tests/clients/, where the client scripts live.
pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../warden-server/tests/clients")
}

/// Polls `condition` every 50 ms until it holds or `bound` has passed; whether it held. For
/// "eventually" checks: the bound is generous, never a timing assertion.
pub fn eventually(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
