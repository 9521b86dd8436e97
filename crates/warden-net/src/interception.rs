//! Transparent interception: programs that ignore the proxy variables are governed too. In the
//! sandbox's network namespace warden adds a default IPv4 route via `lo` (`route.rs`) and an
//! nftables table that redirects every TCP connection to a non-loopback address to the
//! transparent listener and rejects any other packet leaving for one. IPv6 gets no route: a v6
//! connect fails at once with `ENETUNREACH`.
//!
//! `nft` is spawned from the thread inside the namespace (`netns.rs`): a child process inherits
//! the namespaces of the thread that forks it, so no `pre_exec` is needed.
//!
//! Man pages: nft(8).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::listeners::TRANSPARENT_PORT;
use crate::netns::{run_in, NetnsError};

const NFT_DIRS: &[&str] = &["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];

/// The nftables table of a sandbox's namespace. The first two lines make it idempotent (create
/// the table if absent, then empty it). Output hooks only: the namespace has no other
/// interface, so nothing arrives but loopback. The redirect (priority -100, dstnat) runs before
/// the filter (priority 0) sees the packet, so a redirected connection passes the filter with
/// its new loopback destination; its replies pass too, whatever address the program bound
/// (`ct status dnat`). Loopback stays open to everything, UDP included (processes of one
/// sandbox may talk to each other); every packet to another address that was not redirected
/// (UDP, ICMP, other protocols) is rejected, which `sendto(2)` reports as `EPERM`.
fn ruleset() -> String {
    format!(
        "table inet warden\n\
         flush table inet warden\n\
         table inet warden {{\n\
         \tchain intercept {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         \t\tip daddr != 127.0.0.0/8 meta l4proto tcp redirect to :{TRANSPARENT_PORT}\n\
         \t}}\n\
         \tchain egress {{\n\
         \t\ttype filter hook output priority 0; policy accept;\n\
         \t\tct status dnat accept\n\
         \t\tip daddr 127.0.0.0/8 accept\n\
         \t\tip6 daddr ::1 accept\n\
         \t\treject\n\
         \t}}\n\
         }}\n"
    )
}

/// Installs the transparent interception in the network namespace `netns`: `lo` up, a default
/// IPv4 route via `lo`, the nftables table (`ruleset`). Idempotent.
pub fn install_interception(netns: &File) -> Result<(), NetnsError> {
    let nft = find("nft", NFT_DIRS)?;
    run_in(netns, || {
        warden_sys::network::bring_up_loopback().map_err(NetnsError::Loopback)?;
        crate::route::replace_default_via_lo().map_err(NetnsError::Route)?;
        run(&nft, &["-f", "-"], Some(&ruleset()))?;
        tracing::debug!("transparent interception installed in the sandbox's network namespace");
        Ok(())
    })
}

fn find(program: &'static str, searched: &'static [&'static str]) -> Result<PathBuf, NetnsError> {
    searched
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .map(Path::to_path_buf)
        .ok_or(NetnsError::ProgramMissing { program, searched })
}

/// Runs `program args` with `stdin` fed in, and fails with its stderr unless it succeeds.
fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<(), NetnsError> {
    let spawn_error = |source| NetnsError::Spawn {
        program: program.to_path_buf(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    // A program that fails early closes its stdin: its own error says more than EPIPE.
    let written = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => pipe.write_all(text.as_bytes()),
        _ => Ok(()),
    };
    let output = child.wait_with_output().map_err(spawn_error)?;
    if output.status.success() {
        return written.map_err(spawn_error);
    }
    Err(NetnsError::Command {
        program: program.to_path_buf(),
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_redirects_tcp_to_the_transparent_listener_and_rejects_the_rest() {
        let rules = ruleset();
        assert!(rules.contains("tcp redirect to :15001"), "{rules}");
        assert!(rules.contains("ip daddr != 127.0.0.0/8"), "{rules}");
        assert!(rules.trim_end().ends_with("reject\n\t}\n}"), "{rules}");
    }
}
