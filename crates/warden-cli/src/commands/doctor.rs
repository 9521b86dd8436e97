//! `warden doctor`: each isolation feature of this host, then a real sandboxed run of
//! `/bin/true` proving the whole chain works.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use warden_sandbox::host::{self, Feature, Warning};

/// Arguments of `warden doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    features: Vec<Feature>,
    /// Host settings that weaken the sandbox without failing the check.
    warnings: Vec<Warning>,
    sandbox_check: Check,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct Check {
    ok: bool,
    detail: String,
}

pub(crate) fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let features = host::features();
    let sandbox_check = sandbox_check();
    let ok = sandbox_check.ok && features.iter().all(|f| f.available || !f.required);
    let report = Report {
        features,
        warnings: host::warnings(),
        sandbox_check,
        ok,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).context("writing JSON")?;
        writeln!(out)?;
    } else {
        for f in &report.features {
            let mark = match (f.available, f.required) {
                (true, _) => "ok     ",
                (false, true) => "MISSING",
                (false, false) => "absent ",
            };
            writeln!(out, "{mark} {:<28} {}", f.name, f.detail)?;
        }
        let mark = if report.sandbox_check.ok {
            "ok     "
        } else {
            "FAILED "
        };
        writeln!(
            out,
            "{mark} {:<28} {}",
            "sandboxed run of /bin/true", report.sandbox_check.detail
        )?;
        for w in &report.warnings {
            writeln!(out, "WARNING {:<28} {}", w.name, w.detail)?;
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn sandbox_check() -> Check {
    let attempt = || -> anyhow::Result<String> {
        // The exec'd helper, as a server would use it: doctor checks the general case.
        let engine = super::engine(|config| config.fork_helper = false)?;
        let check = engine.sandbox_check()?;
        Ok(format!("{} (cgroup {})", check.outcome, check.cgroup))
    };
    match attempt() {
        Ok(detail) => Check { ok: true, detail },
        Err(e) => Check {
            ok: false,
            detail: format!("{e:#}"),
        },
    }
}
