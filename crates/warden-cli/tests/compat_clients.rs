//! End to end: the real Piston and Judge0 clients, unchanged (the `judge0` SDK 0.0.8 and
//! `pistonapi` 1.0.1, installed by scripts/setup.sh in a venv at [`VENV_PYTHON`]), against the
//! real `warden serve` on a loopback port, for every language, compile errors, limits and test
//! cases. The checks themselves are the scripts in crates/warden-server/tests/clients/.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::World;

/// The venv scripts/setup.sh creates with the clients at pinned versions.
const VENV_PYTHON: &str = "/opt/warden-test-venv/bin/python3";

/// A `warden serve` that is stopped (SIGTERM, then a wait) when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: a server killed outright leaves its pool's cgroups for the next warden to
        // sweep (warden_sandbox's stale.rs); this one shuts down cleanly.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Starts the server in `world` and waits until `/v1/health` answers.
fn serve(world: &World) -> Server {
    let port = free_port();
    let mut cmd = world.warden();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let server = Server {
        child: cmd.spawn().expect("warden serve starts"),
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if health(port) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("warden serve did not answer /v1/health on port {port} within 60 s");
}

fn health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// Runs one client script against the server; fails the test with its output.
fn run_script(script: &str, server: &Server) {
    assert!(
        std::path::Path::new(VENV_PYTHON).exists(),
        "{VENV_PYTHON} is missing: run scripts/setup.sh (it installs the Judge0 and Piston clients)"
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../warden-server/tests/clients");
    let output = Command::new(VENV_PYTHON)
        .arg(dir.join(script))
        .arg(&server.base)
        .current_dir(&dir)
        .env("JUDGE0_SUPPRESS_PREVIEW_WARNING", "1")
        .output()
        .expect("the client script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    eprintln!("{stdout}");
}

#[test]
fn the_judge0_sdk_runs_every_language_unchanged() {
    let world = World::new();
    let server = serve(&world);
    run_script("judge0_client.py", &server);
}

#[test]
fn the_pistonapi_client_runs_every_language_unchanged() {
    let world = World::new();
    let server = serve(&world);
    run_script("piston_client.py", &server);
}
