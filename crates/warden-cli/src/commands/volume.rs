//! `warden volume`: named persistent volumes (docs/volumes.md): create one with a quota, list
//! and inspect them, remove one, prune the unused. The engine's `Volumes` owns all of it;
//! this parses and renders. Runs mount them with `warden run --volume NAME:PATH[:ro]`. With
//! `--server` (or `WARDEN_SERVER`), the same commands are a client of that `warden serve`'s
//! `/v1/volumes`, as `--token`'s (or `WARDEN_TOKEN`'s) volumes.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use warden_core::ByteSize;
use warden_engine::Volumes;

use super::client::Client;
use super::history::write_table;

/// Arguments of `warden volume`.
#[derive(Debug, Args)]
pub(crate) struct VolumeArgs {
    /// The volumes of the running `warden serve` at this address (`http://HOST:PORT`), as
    /// the token's, instead of this host's own (every token's, as the operator). An empty
    /// value: this host's.
    #[arg(long, env = "WARDEN_SERVER", global = true)]
    server: Option<String>,
    /// The API token for `--server`, if the server requires one.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
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
    let store = match args.server.as_deref().filter(|s| !s.is_empty()) {
        Some(server) => Store::Server(Client::new(server, args.token)?),
        None => Store::Host(Volumes::new(warden_engine::Settings::load()?.volumes)),
    };
    let mut out = std::io::stdout().lock();
    match args.command {
        VolumeCommand::Create { name, size } => {
            let info = store.create(&name, size)?;
            writeln!(out, "created {} ({})", text(&info["name"]), size_of(&info))?;
        }
        VolumeCommand::Ls(json) => {
            let infos = store.list()?;
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
            let info = store.inspect(&name)?;
            if json.json {
                write_json(&mut out, &info)?;
            } else {
                write_info(&mut out, &info)?;
            }
        }
        VolumeCommand::Rm { name } => {
            store.remove(&name)?;
            writeln!(out, "removed {name}")?;
        }
        VolumeCommand::Prune => {
            for name in store.prune()? {
                writeln!(out, "removed {name}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the volumes are: this host's, or a server's as the token's. Both answer a volume as
/// the API's JSON (`VolumeInfo`), so that both print alike.
enum Store {
    Host(Volumes),
    Server(Client),
}

impl Store {
    fn create(&self, name: &str, size: ByteSize) -> anyhow::Result<Value> {
        match self {
            Store::Host(volumes) => Ok(serde_json::to_value(volumes.create(name, size)?)?),
            Store::Server(client) => client
                .send_json(
                    "POST",
                    "/v1/volumes",
                    &json!({"name": name, "size": size.bytes()}),
                )?
                .json(),
        }
    }

    fn list(&self) -> anyhow::Result<Vec<Value>> {
        match self {
            Store::Host(volumes) => Ok(volumes
                .list()?
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?),
            Store::Server(client) => {
                let listed = client.get("/v1/volumes")?.json()?;
                serde_json::from_value(listed).context("the server's list of volumes")
            }
        }
    }

    fn inspect(&self, name: &str) -> anyhow::Result<Value> {
        match self {
            Store::Host(volumes) => Ok(serde_json::to_value(volumes.inspect(name)?)?),
            Store::Server(client) => client
                .get(&format!("/v1/volumes/{}", path_part(name)?))?
                .json(),
        }
    }

    fn remove(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Store::Host(volumes) => Ok(volumes.remove(name)?),
            Store::Server(client) => client
                .request(
                    "DELETE",
                    &format!("/v1/volumes/{}", path_part(name)?),
                    None,
                    &[],
                )?
                .ok(),
        }
    }

    fn prune(&self) -> anyhow::Result<Vec<String>> {
        match self {
            Store::Host(volumes) => Ok(volumes.prune()?),
            Store::Server(client) => {
                let pruned = client
                    .request("POST", "/v1/volumes/prune", None, &[])?
                    .json()?;
                serde_json::from_value(pruned["removed"].clone())
                    .context("the server's list of removed volumes")
            }
        }
    }
}

/// A volume's name as a path segment: the server refuses any other name, and one that would
/// change the path is refused here instead of asking for another route.
fn path_part(name: &str) -> anyhow::Result<&str> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        anyhow::bail!("{name:?} is not a volume name (1 to 63 of a-z 0-9 _ . -)");
    }
    Ok(name)
}

fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).context("writing JSON")?;
    writeln!(out)?;
    Ok(())
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or("-").to_owned()
}

fn size_of(info: &Value) -> String {
    ByteSize(info["size_bytes"].as_u64().unwrap_or(0)).to_string()
}

fn row(info: &Value) -> Vec<String> {
    vec![
        text(&info["name"]),
        size_of(info),
        ByteSize(info["used_bytes"].as_u64().unwrap_or(0)).to_string(),
        last_used(info),
        in_use(info),
    ]
}

fn write_info(out: &mut impl Write, info: &Value) -> std::io::Result<()> {
    writeln!(out, "name       {}", text(&info["name"]))?;
    writeln!(out, "size       {}", size_of(info))?;
    // In the unit `ls` shows it in, and exact.
    let used = info["used_bytes"].as_u64().unwrap_or(0);
    writeln!(out, "used       {} ({used} bytes)", ByteSize(used))?;
    writeln!(out, "created    {}", text(&info["created_at"]))?;
    writeln!(out, "last used  {}", last_used(info))?;
    writeln!(out, "in use     {}", in_use(info))?;
    if let Some(owner) = info["owner"].as_str() {
        writeln!(out, "owner      token {owner}")?;
    }
    if let Some(session) = info["session"].as_str() {
        writeln!(out, "session    {session} (its workspace, removed with it)")?;
    }
    for session in info["workspace_of"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "session    {} (its workspace, kept until the session is removed)",
            text(session)
        )?;
    }
    Ok(())
}

fn last_used(info: &Value) -> String {
    info["last_used_at"]
        .as_str()
        .map_or_else(|| "never".to_owned(), str::to_owned)
}

fn in_use(info: &Value) -> String {
    let u = &info["in_use"];
    match (u["attached"].as_bool(), u["writer"].as_bool()) {
        (_, Some(true)) => "yes, with a writer".to_owned(),
        (Some(true), _) => "yes, read-only".to_owned(),
        _ => "no".to_owned(),
    }
}
