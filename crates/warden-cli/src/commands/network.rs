//! `warden network`: the network policies (list, show, export, import, remove), what one of
//! them decides for a destination, the package registries found on this host, and the traffic
//! log the history keeps (`log`, `stats`, in `network/traffic.rs`) (docs/network.md). Connects
//! to nothing: `check` only evaluates, after asking the system resolver for a name's addresses.

mod traffic;

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use serde::Serialize;
use warden_core::bounded_file;
use warden_core::network::{Action, Matched, Protocol, Registry};
use warden_engine::network::{
    self, host_registries, CheckReport, HostFacts, PolicyStore, StoredPolicy, Verdict,
};
use warden_engine::settings::NetworkSettings;
use warden_engine::Settings;

use super::history::write_table;
use super::printable;
pub(super) use traffic::write_connections;

/// Arguments of `warden network`.
#[derive(Debug, Args)]
pub(crate) struct NetworkArgs {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Debug, Subcommand)]
enum NetworkCommand {
    /// List the policies, built-in and imported.
    Policies(JsonFlag),
    /// Show one policy: its level, rules, limits and flags.
    Show {
        /// The policy's name.
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print a policy as TOML, ready to edit and import.
    Export {
        /// The policy's name.
        name: String,
    },
    /// Validate a policy file and store it in the policy directory; a bad file changes nothing.
    Import {
        /// The TOML file.
        file: PathBuf,
    },
    /// Remove an imported policy.
    Rm {
        /// The policy's name.
        name: String,
    },
    /// Decide what a policy does with a destination, as the egress proxy would: a name the
    /// policy allows is looked up with the system resolver and each address decided too.
    /// Connects to nothing. Exits 0 when allowed, 1 when denied (0 either way with --json).
    Check(CheckArgs),
    /// The package registries found on this host, and where each was found.
    Registries(JsonFlag),
    /// The connections recorded executions attempted under their policies, newest first.
    Log(traffic::LogArgs),
    /// Attempts, denials and bytes per destination host and per policy.
    Stats(traffic::StatsArgs),
}

#[derive(Debug, Args)]
struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The policy (default: the configuration's default policy).
    #[arg(long)]
    policy: Option<String>,
    /// The protocol of the attempt; `dns` asks whether the sandbox's resolver would answer.
    #[arg(long, default_value = "tcp",
        value_parser = PossibleValuesParser::new(Protocol::ALL.map(Protocol::name))
            .try_map(|p| p.parse::<Protocol>()))]
    protocol: Protocol,
    /// HOST:PORT (`[v6]:PORT` for an IPv6 address); the port may be left out with `--protocol dns`.
    target: String,
    #[command(flatten)]
    json: JsonFlag,
}

pub(crate) fn run(args: NetworkArgs) -> anyhow::Result<ExitCode> {
    let json = match &args.command {
        NetworkCommand::Policies(j) | NetworkCommand::Registries(j) => j.json,
        NetworkCommand::Show { json, .. } => json.json,
        NetworkCommand::Check(c) => c.json.json,
        NetworkCommand::Log(l) => l.json.json,
        NetworkCommand::Stats(s) => s.json.json,
        _ => false,
    };
    match dispatch(args.command) {
        Err(e) if json => super::json_error(&e),
        result => result,
    }
}

fn dispatch(command: NetworkCommand) -> anyhow::Result<ExitCode> {
    let settings = Settings::load()?;
    let store = PolicyStore::new(&settings.network.policy_dir);
    let mut out = super::buffered_stdout();
    let mut code = ExitCode::SUCCESS;
    match command {
        NetworkCommand::Policies(j) => policies(&mut out, &store, &settings.network, j.json)?,
        NetworkCommand::Show { name, json } => show(&mut out, &store.get(&name)?, json.json)?,
        NetworkCommand::Export { name } => write!(out, "{}", store.get(&name)?.policy.to_toml())?,
        NetworkCommand::Import { file } => import(&mut out, &store, &settings.network, &file)?,
        NetworkCommand::Rm { name } => {
            let path = store.remove(&name)?;
            writeln!(out, "removed {name} ({})", path.display())?;
        }
        NetworkCommand::Check(args) => code = check(&mut out, &store, &settings, &args)?,
        NetworkCommand::Registries(j) => {
            registries(&mut out, &all_registries(&settings.network), j.json)?;
        }
        NetworkCommand::Log(args) => traffic::log(&mut out, args)?,
        NetworkCommand::Stats(args) => traffic::stats(&mut out, args)?,
    }
    out.flush()?;
    Ok(code)
}

/// The registries found on this host, then the operator's.
fn all_registries(network: &NetworkSettings) -> Vec<Registry> {
    let mut all = host_registries().to_vec();
    all.extend(network.registries.iter().cloned());
    all
}

#[derive(Debug, Serialize)]
struct PolicyRow<'a> {
    name: &'a str,
    level: &'a str,
    origin: &'a str,
    dangerous: bool,
    /// Whether requests may choose it (`[network] allowed`).
    allowed: bool,
    /// Whether a request naming no policy gets it in some mode.
    default: bool,
    description: &'a str,
}

fn policies(
    out: &mut impl Write,
    store: &PolicyStore,
    network: &NetworkSettings,
    json: bool,
) -> anyhow::Result<()> {
    // A file that cannot be read is said, and the others listed; the command fails at the end.
    let mut broken = 0;
    let all: Vec<_> = store
        .list_each()?
        .into_iter()
        .filter_map(|read| {
            read.map_err(|e| {
                broken += 1;
                eprintln!("warden: {:#}", anyhow::Error::from(e));
            })
            .ok()
        })
        .collect();
    let rows: Vec<PolicyRow<'_>> = all
        .iter()
        .map(|s| PolicyRow {
            name: &s.policy.name,
            level: s.policy.level.name(),
            origin: s.origin.name(),
            dangerous: s.policy.is_dangerous(),
            allowed: network.allows(&s.policy.name),
            default: network.default == s.policy.name
                || network.mode_default.values().any(|d| *d == s.policy.name),
            description: &s.policy.description,
        })
        .collect();
    let unread = || {
        anyhow::ensure!(
            broken == 0,
            "{broken} imported policy file(s) could not be read (above): fix or remove them \
             (warden network rm NAME)"
        );
        Ok(())
    };
    if json {
        // Standard output stays one JSON document; the unreadable files were said on stderr.
        serde_json::to_writer_pretty(&mut *out, &rows).context("writing JSON")?;
        writeln!(out)?;
        return Ok(());
    }
    let header = [
        "NAME",
        "LEVEL",
        "ORIGIN",
        "REQUESTS",
        "FLAGS",
        "DESCRIPTION",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let requests = match (r.default, r.allowed) {
                (true, _) => "default",
                (false, true) => "allowed",
                (false, false) => "-",
            };
            let flags = if r.dangerous { "DANGEROUS" } else { "-" };
            [r.name, r.level, r.origin, requests, flags]
                .map(str::to_owned)
                .into_iter()
                .chain([printable(r.description)])
                .collect()
        })
        .collect();
    write_table(out, &header, &table)?;
    unread()
}

#[derive(Debug, Serialize)]
struct ShowJson<'a> {
    #[serde(flatten)]
    policy: &'a warden_core::network::Policy,
    origin: &'a str,
    path: Option<&'a std::path::Path>,
    dangerous: bool,
}

fn show(out: &mut impl Write, stored: &StoredPolicy, json: bool) -> anyhow::Result<()> {
    let p = &stored.policy;
    if json {
        let view = ShowJson {
            policy: p,
            origin: stored.origin.name(),
            path: stored.path.as_deref(),
            dangerous: p.is_dangerous(),
        };
        serde_json::to_writer_pretty(&mut *out, &view).context("writing JSON")?;
        writeln!(out)?;
        return Ok(());
    }
    show_text(out, stored)?;
    Ok(())
}

/// One line per property, the rules numbered from 1 (as `check` names them).
fn show_text(out: &mut impl Write, stored: &StoredPolicy) -> std::io::Result<()> {
    let p = &stored.policy;
    writeln!(
        out,
        "{} ({}): {}",
        p.name,
        stored.origin.name(),
        printable(&p.description)
    )?;
    if let Some(path) = &stored.path {
        writeln!(out, "file:           {}", path.display())?;
    }
    writeln!(out, "level:          {}", p.level)?;
    writeln!(out, "default action: {}", p.default_action)?;
    let registries = if p.registries {
        "admitted after the rules (see `warden network registries`)"
    } else {
        "no"
    };
    writeln!(out, "registries:     {registries}")?;
    // `log_detail` changes nothing: the traffic log holds every attempt in full.
    writeln!(out, "logging:        every attempt, in full")?;
    writeln!(out, "limits:         {}", limits(&p.limits))?;
    if p.rules.is_empty() {
        writeln!(out, "rules:          none")?;
    } else {
        writeln!(out, "rules (first match wins):")?;
        for (i, rule) in p.rules.iter().enumerate() {
            writeln!(out, "  {:>2}. {rule} — {}", i + 1, printable(&rule.reason))?;
        }
    }
    writeln!(
        out,
        "deny set:       always applies (loopback, private, link-local and metadata, \
         multicast, reserved, the host's own and warden's addresses; docs/network.md)"
    )?;
    if p.is_dangerous() {
        let nets: Vec<String> = p.allow_denied.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "DANGEROUS:      exempts {} from the deny set{}",
            nets.join(", "),
            if stored.is_imported() {
                ""
            } else {
                " (ignored: not imported)"
            }
        )?;
    }
    Ok(())
}

/// `bandwidth 1MiB/s up, 8MiB/s down; 512MiB in total; ...`, unset limits left out.
fn limits(l: &warden_core::network::NetLimits) -> String {
    use warden_core::units::format_duration;
    let mut parts = Vec::new();
    let rate =
        |s: Option<warden_core::ByteSize>| s.map_or("unlimited".to_owned(), |s| format!("{s}/s"));
    if l.bandwidth_up.is_some() || l.bandwidth_down.is_some() {
        parts.push(format!(
            "bandwidth {} up, {} down",
            rate(l.bandwidth_up),
            rate(l.bandwidth_down)
        ));
    }
    if let Some(total) = l.total_bytes {
        parts.push(format!("{total} in total"));
    }
    if let Some(n) = l.max_connections {
        parts.push(format!("{n} connections at once"));
    }
    if let Some(n) = l.total_connections {
        parts.push(format!("{n} connections in total"));
    }
    parts.push(format!(
        "connect timeout {}, idle timeout {}",
        format_duration(l.connect_timeout),
        format_duration(l.idle_timeout)
    ));
    parts.join("; ")
}

fn import(
    out: &mut impl Write,
    store: &PolicyStore,
    network: &NetworkSettings,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let text = bounded_file::read_to_string(file, bounded_file::MAX_SETTINGS_FILE)
        .with_context(|| format!("reading {}", file.display()))?;
    let stored = store.import(&file.display().to_string(), &text)?;
    let p = &stored.policy;
    let path = stored.path.as_deref().unwrap_or(store.dir());
    writeln!(
        out,
        "imported {} (level {}) into {}",
        p.name,
        p.level,
        path.display()
    )?;
    if p.is_dangerous() {
        let nets: Vec<String> = p.allow_denied.iter().map(ToString::to_string).collect();
        eprintln!(
            "warden: warning: {} is DANGEROUS: it exempts {} from the deny set",
            p.name,
            nets.join(", ")
        );
    }
    if !network.allows(&p.name) {
        eprintln!(
            "warden: note: requests can choose {} once warden.toml lists it in [network] allowed",
            p.name
        );
    }
    Ok(())
}

fn check(
    out: &mut impl Write,
    store: &PolicyStore,
    settings: &Settings,
    args: &CheckArgs,
) -> anyhow::Result<ExitCode> {
    let name = args.policy.as_deref().unwrap_or(&settings.network.default);
    let stored = store.get(name)?;
    let (host, port) = target(&args.target, args.protocol)?;
    // Discovery may run package managers: only for a policy that admits registries.
    let registries = if stored.policy.registries {
        all_registries(&settings.network)
    } else {
        Vec::new()
    };
    let around = network::HostSurroundings::read();
    let mut services = settings.server.listen.clone();
    if services.is_empty() {
        services.push(warden_server::DEFAULT_LISTEN);
    }
    // And every server running on this host, wherever it listens (`--listen`).
    for running in network::running_services() {
        if !services.contains(&running) {
            services.push(running);
        }
    }
    let facts = HostFacts {
        registries: &registries,
        host_addrs: &around.addrs,
        host_networks: &around.networks,
        host_gateways: &around.gateways,
        service_addrs: &services,
    };
    let report = network::check(&stored, args.protocol, &host, port, &facts)?;
    if args.json.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    write_check(out, &report)?;
    Ok(match report.action {
        Action::Allow => ExitCode::SUCCESS,
        Action::Deny => ExitCode::from(crate::exit_code::DENIED),
    })
}

/// How many bytes of a host asked about `check` writes, escaped (a host name has at most
/// 253), as the traffic log keeps one.
const SHOWN_HOST: usize = 253;

/// `host` for the terminal: escaped ([`printable`]) and cut after [`SHOWN_HOST`] bytes with
/// `…` (bug hunt: the header wrote an ESC raw, and a name of 100 kB whole).
fn shown_host(host: &str) -> String {
    let mut out = String::new();
    for c in host.chars() {
        let shown = printable(c.encode_utf8(&mut [0; 4]));
        if out.len() + shown.len() > SHOWN_HOST {
            out.push('…');
            break;
        }
        out.push_str(&shown);
    }
    out
}

fn write_check(out: &mut impl Write, r: &CheckReport) -> std::io::Result<()> {
    let host = shown_host(&r.host);
    let target = match r.port {
        Some(port) if r.host.contains(':') => format!("[{host}]:{port}"),
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    writeln!(
        out,
        "policy {} ({}), {} {target}",
        r.policy, r.origin, r.protocol
    )?;
    let width = r
        .decisions
        .iter()
        .map(|v| v.address.len())
        .max()
        .unwrap_or(0);
    let why = |v: &Verdict| match v.matched {
        Matched::Rule(_) | Matched::Default | Matched::InvalidName => {
            format!("{}: {}", v.matched, v.reason)
        }
        _ => v.matched.to_string(),
    };
    if let Some(v) = &r.resolver {
        writeln!(
            out,
            "  the sandbox's resolver: {}  {}",
            v.action.name(),
            why(v)
        )?;
    }
    if let Some(v) = r.name.as_ref().filter(|v| v.action == Action::Deny) {
        writeln!(
            out,
            "  {} by name (not resolved; address rules never admit a name): deny  {}",
            host,
            why(v)
        )?;
    }
    if r.resolved {
        writeln!(
            out,
            "  {} resolves (system resolver) to {} address(es), each evaluated as the proxy would:",
            host,
            r.decisions.len()
        )?;
    }
    for v in &r.decisions {
        writeln!(
            out,
            "  {:<width$}  {:<5}  {}",
            v.address,
            v.action.name(),
            why(v)
        )?;
    }
    if let Some(note) = r.note {
        writeln!(out, "  {note}")?;
    }
    writeln!(
        out,
        "{}",
        if r.action == Action::Allow {
            "allowed"
        } else {
            "denied"
        }
    )
}

/// `host:port`, `[v6]:port`, a bare IPv6 address or (for dns) a bare host.
fn target(text: &str, protocol: Protocol) -> anyhow::Result<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .context("an unclosed [ in the target")?;
        // `[::1]junk:80` is no target (the proxy answers it 400), not `[::1]` without a port.
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').with_context(|| {
                format!("the target {text:?} is not [IPV6]:PORT: {after:?} after the ]")
            })?),
        };
        (host, port)
    } else if text.parse::<IpAddr>().is_ok() {
        (text, None)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = port
        .map(|p| {
            // Digits alone: `u16`'s parse takes a sign (`+80`).
            p.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse::<u16>().ok())
                .flatten()
                .filter(|&p| p != 0)
                .with_context(|| format!("{p:?} is not a port (1 to 65535)"))
        })
        .transpose()?;
    let bare_ipv6 = text.parse::<std::net::Ipv6Addr>().is_ok();
    anyhow::ensure!(
        port.is_some() || protocol == Protocol::Dns,
        "the target {text:?} needs a port: HOST:PORT{}",
        if bare_ipv6 { ", [IPV6]:PORT" } else { "" }
    );
    anyhow::ensure!(!host.is_empty(), "the target {text:?} has no host");
    // `a:80:80`, `::1:80` (an IPv6 address takes brackets before its port).
    anyhow::ensure!(
        host.parse::<IpAddr>().is_ok() || !host.contains(':'),
        "the target {text:?} is not HOST:PORT (an IPv6 address is written [IPV6]:PORT)"
    );
    Ok((host.to_owned(), port))
}

fn registries(out: &mut impl Write, found: &[Registry], json: bool) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, found).context("writing JSON")?;
        writeln!(out)?;
        return Ok(());
    }
    if found.is_empty() {
        eprintln!("warden: no package registry found on this host");
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|r| {
            let port = r.port.map_or("80, 443".to_owned(), |p| p.to_string());
            vec![r.host.clone(), port, r.source.clone()]
        })
        .collect();
    write_table(out, &["HOST", "PORTS", "SOURCE"], &rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_check_targets_parse() {
        let t = |s: &str, p| target(s, p).map_err(|e| e.to_string());
        assert_eq!(
            t("registry.test:443", Protocol::Tcp),
            Ok(("registry.test".into(), Some(443)))
        );
        assert_eq!(t("[::1]:80", Protocol::Tcp), Ok(("::1".into(), Some(80))));
        assert_eq!(
            t("registry.test", Protocol::Dns),
            Ok(("registry.test".into(), None))
        );
        assert!(t("registry.test", Protocol::Tcp).is_err_and(|e| e.contains("needs a port")));
        assert!(t("::1", Protocol::Tcp).is_err());
        assert!(t("h:http", Protocol::Tcp).is_err_and(|e| e.contains("not a port")));
        assert!(t("[::1:80", Protocol::Tcp).is_err());
        // Bug hunt: these were evaluated (a name "vm:80", port 0) or said too little.
        assert!(t("vm:80:80", Protocol::Tcp).is_err_and(|e| e.contains("[IPV6]:PORT")));
        assert!(t("::1:80", Protocol::Tcp).is_err_and(|e| e.contains("[IPV6]:PORT")));
        assert!(t("127.0.0.1:0", Protocol::Tcp).is_err_and(|e| e.contains("not a port")));
        // Bug hunt: junk after the ] was dropped with the port after it, as the proxy did.
        assert!(t("[::1]junk:80", Protocol::Tcp).is_err_and(|e| e.contains("after the ]")));
        assert_eq!(t("[::1]", Protocol::Dns), Ok(("::1".into(), None)));
        assert!(t("[::1]:+80", Protocol::Tcp).is_err_and(|e| e.contains("not a port")));
        assert!(t("127.0.0.1:+80", Protocol::Tcp).is_err_and(|e| e.contains("not a port")));
    }

    /// Bug hunt: an imported description's newline or escape sequence reached the terminal.
    #[test]
    fn a_policys_control_characters_are_written_escaped() {
        assert_eq!(printable("a\nb\u{1b}[31mc é"), "a\\nb\\u{1b}[31mc é");
    }

    /// Bug hunt: `check`'s header wrote the target raw, an ESC and 100 kB of name included.
    #[test]
    fn a_host_asked_about_is_written_escaped_and_bounded() {
        assert_eq!(shown_host("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(shown_host(&"a".repeat(253)), "a".repeat(253));
        assert_eq!(
            shown_host(&"a".repeat(254)),
            format!("{}…", "a".repeat(253))
        );
        let escapes = shown_host(&"\u{1b}".repeat(100));
        assert!(
            escapes.ends_with('…') && escapes.len() <= SHOWN_HOST + 3,
            "{escapes}"
        );
    }
}
