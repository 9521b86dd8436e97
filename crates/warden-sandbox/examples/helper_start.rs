//! What the zygote saves a multi-threaded process (the server): the time of one one-shot
//! sandboxed `/bin/true`, with each helper exec'd from the binary, and with each forked by the
//! zygote, alternating, in a process that has a second thread (as a server has many).
//!
//! Usage (as root): `cargo run --release -p warden-sandbox --example helper_start --
//! target/release/warden [RUNS]`; docs/BENCHMARKS.md has the reading.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use warden_core::{FilesystemPolicy, SeccompPolicy};
use warden_sandbox::{Sandbox, SandboxPlan, Stdin};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let binary = std::fs::canonicalize(PathBuf::from(
        args.next()
            .ok_or("usage: helper_start WARDEN_BINARY [RUNS]")?,
    ))?;
    let runs: usize = args.next().map_or(Ok(200), |n| n.parse())?;
    // A second thread, so that the process is multi-threaded like a server.
    let (_stop, idle) = std::sync::mpsc::channel::<()>();
    let _thread = std::thread::spawn(move || idle.recv());
    let plan = SandboxPlan::new(
        vec!["/bin/true".into()],
        &FilesystemPolicy::builtin()?,
        SeccompPolicy::builtin()?,
    );
    let exec = Sandbox::new(binary.clone())?;
    let zygote = Sandbox::new(binary)?.with_zygote()?;
    let (mut exec_times, mut zygote_times) = (Vec::new(), Vec::new());
    for i in 0..runs + 10 {
        for (sandbox, times) in [(&exec, &mut exec_times), (&zygote, &mut zygote_times)] {
            let started = Instant::now();
            sandbox.run(&plan, Stdin::Null)?;
            if i >= 10 {
                times.push(started.elapsed());
            }
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1000.0
    };
    let (e, z) = (median(&mut exec_times), median(&mut zygote_times));
    let mut out = std::io::stderr().lock();
    use std::io::Write;
    writeln!(
        out,
        "one-shot /bin/true, median of {runs} (after 10 warm-up runs each):"
    )?;
    writeln!(out, "  helper exec'd     {e:.2} ms")?;
    writeln!(
        out,
        "  helper by zygote  {z:.2} ms  ({:.2} ms saved)",
        e - z
    )?;
    Ok(())
}
