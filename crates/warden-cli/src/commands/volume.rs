//! `warden volume`: named persistent volumes (docs/volumes.md): create one with a quota, list
//! and inspect them, remove one, prune the unused. The engine's `Volumes` owns all of it;
//! this parses and renders. Runs mount them with `warden run --volume NAME:PATH[:ro]`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use warden_core::ByteSize;
use warden_engine::{VolumeInfo, Volumes};

use super::history::write_table;

/// Arguments of `warden volume`.
#[derive(Debug, Args)]
pub(crate) struct VolumeArgs {
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Debug, Subcommand)]
enum VolumeCommand {
    /// Create an empty volume with a quota: writes past it fail with "No space left on
    /// device".
    Create {
        /// Its name: 1 to 63 of a-z 0-9 _ . - starting with a letter or digit.
        name: String,
        /// Its quota (e.g. 64MiB), at least 8MiB and at most `[volumes] max_size`.
        #[arg(long, value_name = "SIZE")]
        size: ByteSize,
    },
    /// List the volumes: name, quota, bytes used, last use, whether in use.
    Ls(JsonFlag),
    /// Show one volume.
    Inspect {
        /// The volume's name.
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a volume and its files; refused while a run or session uses it.
    Rm {
        /// The volume's name.
        name: String,
    },
    /// Remove the volumes no run or session uses (only those unused for `[volumes]
    /// prune_after`, when set); prints their names.
    Prune,
}

#[derive(Debug, Args)]
struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: VolumeArgs) -> anyhow::Result<ExitCode> {
    let settings = warden_engine::Settings::load()?;
    let volumes = Volumes::new(settings.volumes);
    let mut out = std::io::stdout().lock();
    match args.command {
        VolumeCommand::Create { name, size } => {
            let info = volumes.create(&name, size)?;
            writeln!(out, "created {} ({})", info.name, info.size)?;
        }
        VolumeCommand::Ls(json) => {
            let infos = volumes.list()?;
            if json.json {
                write_json(&mut out, &infos)?;
            } else {
                let rows: Vec<Vec<String>> = infos.iter().map(row).collect();
                write_table(
                    &mut out,
                    &["NAME", "SIZE", "USED", "LAST USED", "IN USE"],
                    &rows,
                )?;
            }
        }
        VolumeCommand::Inspect { name, json } => {
            let info = volumes.inspect(&name)?;
            if json.json {
                write_json(&mut out, &info)?;
            } else {
                write_info(&mut out, &info)?;
            }
        }
        VolumeCommand::Rm { name } => {
            volumes.remove(&name)?;
            writeln!(out, "removed {name}")?;
        }
        VolumeCommand::Prune => {
            for name in volumes.prune()? {
                writeln!(out, "removed {name}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).context("writing JSON")?;
    writeln!(out)?;
    Ok(())
}

fn row(info: &VolumeInfo) -> Vec<String> {
    vec![
        info.name.clone(),
        info.size.to_string(),
        info.used.to_string(),
        last_used(info),
        in_use(info),
    ]
}

fn write_info(out: &mut impl Write, info: &VolumeInfo) -> std::io::Result<()> {
    writeln!(out, "name       {}", info.name)?;
    writeln!(out, "size       {}", info.size)?;
    writeln!(out, "used       {} bytes", info.used.bytes())?;
    writeln!(out, "created    {}", utc(info.created_at))?;
    writeln!(out, "last used  {}", last_used(info))?;
    writeln!(out, "in use     {}", in_use(info))?;
    if let Some(owner) = &info.owner {
        writeln!(out, "owner      token {owner}")?;
    }
    if let Some(session) = &info.session {
        writeln!(out, "session    {session} (its workspace, removed with it)")?;
    }
    Ok(())
}

fn last_used(info: &VolumeInfo) -> String {
    info.last_used_at.map_or_else(|| "never".to_owned(), utc)
}

fn utc(time: std::time::SystemTime) -> String {
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    warden_engine::history::utc_from_unix_ms(ms)
}

fn in_use(info: &VolumeInfo) -> String {
    let u = &info.in_use;
    match (u.attached, u.writer) {
        (_, true) => "yes, with a writer".to_owned(),
        (true, false) => "yes, read-only".to_owned(),
        (false, false) => "no".to_owned(),
    }
}
