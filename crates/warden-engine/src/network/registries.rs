//! Finding the package registries the host's own package managers use, for the policies that
//! admit them (`registries = true`, e.g. `limited_access`). Runs in whichever process asks;
//! the result for the real host is computed once per process ([`host_registries`]).
//!
//! Each package manager's configuration is read as the manager reads it: files under `/etc`
//! and in the home directory, and environment variables (docs/network.md#registry-discovery).
//! A manager that is installed but configures no registry of its own uses its built-in default;
//! that default is asked of the tool itself (`npm config get registry`, `go env GOPROXY`, ...),
//! found by absolute path on `PATH` and given a few seconds, so that no registry's host name is
//! written into warden. A tool that is absent, fails or hangs contributes nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use warden_core::network::{Registry, REGISTRY_PORTS};

/// How long a package manager may take to tell its default registry.
const TOOL_TIMEOUT: Duration = Duration::from_secs(5);

/// What discovery reads: the system's files under `root` (`/` on a real host, a directory of
/// fixture files in tests), the environment (which gives the home directory and `PATH`), and
/// whether package managers may be run to ask for their defaults.
#[derive(Debug, Clone)]
pub struct HostView {
    /// The directory standing for `/` when reading system files (`/etc/pip.conf`, ...).
    pub root: PathBuf,
    /// The environment variables.
    pub env: BTreeMap<String, String>,
    /// Whether package managers are run for their built-in defaults.
    pub run_tools: bool,
    /// A file keeping the tools' answers between processes for a day, if any.
    pub answers: Option<PathBuf>,
}

impl HostView {
    /// This host, as this process sees it.
    pub fn this_host() -> Self {
        Self {
            root: PathBuf::from("/"),
            env: std::env::vars().collect(),
            run_tools: true,
            answers: Some(ToolAnswers::default_path()),
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A system file, under the root.
    fn system(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// A file in the home directory, if there is one.
    fn home(&self, path: &str) -> Option<PathBuf> {
        let home = Path::new(self.var("HOME")?);
        home.is_absolute().then(|| home.join(path))
    }

    /// `$XDG_CONFIG_HOME/<path>`, else `~/.config/<path>`.
    fn config_home(&self, path: &str) -> Option<PathBuf> {
        match self.var("XDG_CONFIG_HOME").map(Path::new) {
            Some(dir) if dir.is_absolute() => Some(dir.join(path)),
            _ => self.home(&format!(".config/{path}")),
        }
    }

    /// The executable `name` in an absolute directory of `PATH`.
    fn tool(&self, name: &str) -> Option<PathBuf> {
        self.var("PATH")?
            .split(':')
            .map(Path::new)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|path| {
                fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    }
}

/// The registries of this host, found once per process.
pub fn host_registries() -> &'static [Registry] {
    static FOUND: OnceLock<Vec<Registry>> = OnceLock::new();
    FOUND.get_or_init(|| discover(&HostView::this_host()))
}

/// The registries `view` shows, in the order pip, npm, gem, go, cargo, apt; each host once per
/// source: one on 80 or 443 is left out beside the same host without a port, which admits
/// both (a URL that spells `:443` beside a bare host name).
pub fn discover(view: &HostView) -> Vec<Registry> {
    let mut found = Vec::new();
    for manager in [pip, npm, gem, go, cargo, apt] {
        manager(view, &mut found);
    }
    let portless: std::collections::HashSet<(String, String)> = found
        .iter()
        .filter(|r| r.port.is_none())
        .map(|r| (r.host.clone(), r.source.clone()))
        .collect();
    found.retain(|r| {
        !r.port.is_some_and(|p| {
            REGISTRY_PORTS.contains(&p) && portless.contains(&(r.host.clone(), r.source.clone()))
        })
    });
    let mut seen = std::collections::HashSet::new();
    found.retain(|r| seen.insert(r.clone()));
    found
}

/// Adds the registry `url` names, if it names one.
fn add(found: &mut Vec<Registry>, url: &str, source: impl Into<String>) -> bool {
    match Registry::from_url(url, source) {
        Some(r) => {
            found.push(r);
            true
        }
        None => false,
    }
}

/// The contents of each existing file among `paths`, with its path.
fn read_all(paths: impl IntoIterator<Item = PathBuf>) -> Vec<(PathBuf, String)> {
    paths
        .into_iter()
        .filter_map(|p| fs::read_to_string(&p).ok().map(|text| (p, text)))
        .collect()
}

/// pip: `index-url` replaces the default index, `extra-index-url` adds to it, in any section
/// of an INI file (`[global]`, `[install]`, ...), or in `PIP_INDEX_URL` and
/// `PIP_EXTRA_INDEX_URL`. Values may continue on indented lines.
fn pip(view: &HostView, found: &mut Vec<Registry>) {
    let files = [
        Some(view.system("/etc/pip.conf")),
        Some(view.system("/etc/xdg/pip/pip.conf")),
        view.config_home("pip/pip.conf"),
        view.home(".pip/pip.conf"),
        view.var("PIP_CONFIG_FILE").map(PathBuf::from),
    ];
    let mut replaced = false;
    for (path, text) in read_all(files.into_iter().flatten()) {
        let source = format!("pip config ({})", path.display());
        for (key, value) in ini_values(&text, &['=', ':']) {
            let key = key.replace('_', "-");
            if key == "index-url" || key == "extra-index-url" {
                for url in value.split_whitespace() {
                    replaced |= add(found, url, source.clone()) && key == "index-url";
                }
            }
        }
    }
    for var in ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"] {
        for url in view.var(var).unwrap_or_default().split_whitespace() {
            replaced |= add(found, url, var) && var == "PIP_INDEX_URL";
        }
    }
    if !replaced {
        // pip's help names its default index: "--index-url <url> ... (default <url>)".
        let tool = ["pip3", "pip"].into_iter().find_map(|t| view.tool(t));
        if let Some(help) = tool
            .as_ref()
            .and_then(|t| run(view, t, &["download", "--help"]))
        {
            let after = help.split_once("--index-url").map_or("", |(_, a)| a);
            let default = after.split_once("default").map_or("", |(_, d)| d);
            if let Some(url) = urls(default).next() {
                let source = format!("pip's default ({} download --help)", display(&tool));
                add(found, url, source);
            }
        }
        // The default index serves its files from a host of its own, which pip's code names:
        // without it, pip reads the index and every download is refused.
        const FILE_HOST: &str =
            "import pip._internal.models.index as i; print(i.PyPI.file_storage_domain)";
        let python = view.tool("python3");
        if let Some(answer) = python
            .as_ref()
            .and_then(|p| run(view, p, &["-c", FILE_HOST]))
        {
            if let Some(host) = answer.split_whitespace().next() {
                let source = format!("pip's file host ({} -c ...)", display(&python));
                add(found, host, source);
            }
        }
    }
}

/// npm: `registry=` replaces the default, `@scope:registry=` adds one for a scope, in
/// `/etc/npmrc`, the global and user `npmrc`, or `npm_config_registry` (any case).
fn npm(view: &HostView, found: &mut Vec<Registry>) {
    let files = [
        Some(view.system("/etc/npmrc")),
        Some(view.system("/usr/local/etc/npmrc")),
        view.var("NPM_CONFIG_GLOBALCONFIG").map(PathBuf::from),
        view.home(".npmrc"),
        view.var("NPM_CONFIG_USERCONFIG").map(PathBuf::from),
    ];
    let mut replaced = false;
    for (path, text) in read_all(files.into_iter().flatten()) {
        let source = format!("npm config ({})", path.display());
        for (key, value) in ini_values(&text, &['=']) {
            if key == "registry" {
                replaced |= add(found, &value, source.clone());
            } else if key.starts_with('@') && key.ends_with(":registry") {
                add(found, &value, source.clone());
            }
        }
    }
    for (name, value) in &view.env {
        if name.eq_ignore_ascii_case("npm_config_registry") {
            replaced |= add(found, value, name.clone());
        }
    }
    if !replaced {
        let tool = view.tool("npm");
        if let Some(out) = tool
            .as_ref()
            .and_then(|t| run(view, t, &["config", "get", "registry"]))
        {
            let source = format!("npm's default ({} config get registry)", display(&tool));
            add(found, out.trim(), source);
        }
    }
}

/// gem: the `:sources:` list of `/etc/gemrc` or `~/.gemrc` (YAML) replaces the default.
fn gem(view: &HostView, found: &mut Vec<Registry>) {
    let files = [Some(view.system("/etc/gemrc")), view.home(".gemrc")];
    let mut replaced = false;
    for (path, text) in read_all(files.into_iter().flatten()) {
        let source = format!("gem config ({})", path.display());
        for url in gemrc_sources(&text) {
            replaced |= add(found, url, source.clone());
        }
    }
    if !replaced {
        let tool = view.tool("gem");
        if let Some(out) = tool
            .as_ref()
            .and_then(|t| run(view, t, &["sources", "--list"]))
        {
            let source = format!("gem's default ({} sources --list)", display(&tool));
            for url in urls(&out) {
                add(found, url, source.clone());
            }
        }
    }
}

/// The URLs listed under `:sources:` in a gemrc, block (`- url`) or flow (`[a, b]`) style.
fn gemrc_sources(text: &str) -> Vec<&str> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(":sources:"));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let inline = first.trim_start().trim_start_matches(":sources:").trim();
    if !inline.is_empty() {
        return urls(inline).collect();
    }
    lines
        .map(str::trim)
        .take_while(|l| l.starts_with('-') || l.is_empty() || l.starts_with('#'))
        .filter_map(|l| l.strip_prefix('-'))
        .map(|l| l.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect()
}

/// go: `GOPROXY` (a list separated by `,` or `|`; `direct` and `off` are not hosts) and
/// `GOSUMDB` (`name[+key] [url]`), from the environment or the `go env -w` file.
fn go(view: &HostView, found: &mut Vec<Registry>) {
    let file = view
        .var("GOENV")
        .map(PathBuf::from)
        .or_else(|| view.config_home("go/env"));
    let file_values: BTreeMap<String, String> = read_all(file.clone())
        .into_iter()
        .flat_map(|(_, text)| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut unset = Vec::new();
    for key in ["GOPROXY", "GOSUMDB"] {
        let value = match (view.var(key), file_values.get(key)) {
            (Some(v), _) => Some((v.to_owned(), key.to_owned())),
            (None, Some(v)) => file
                .as_ref()
                .map(|f| (v.clone(), format!("go env ({})", f.display()))),
            (None, None) => None,
        };
        match value {
            Some((value, source)) => go_value(found, key, &value, &source),
            None => unset.push(key),
        }
    }
    if unset.is_empty() {
        return;
    }
    let tool = view.tool("go");
    let mut args = vec!["env"];
    args.extend(&unset);
    if let Some(out) = tool.as_ref().and_then(|t| run(view, t, &args)) {
        let source = format!("go's default ({} {})", display(&tool), args.join(" "));
        for (key, value) in unset.iter().zip(out.lines()) {
            go_value(found, key, value, &source);
        }
    }
}

fn go_value(found: &mut Vec<Registry>, key: &str, value: &str, source: &str) {
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if key == "GOSUMDB" {
        let mut words = value.split_whitespace();
        let name = words.next().unwrap_or_default();
        let url = words
            .next()
            .unwrap_or(name.split('+').next().unwrap_or_default());
        if name != "off" {
            add(found, url, source);
        }
        return;
    }
    for proxy in value.split([',', '|']) {
        add(found, proxy, source);
    }
}

/// cargo: `registry` of a `[source.*]` table, `index` of a `[registries.*]` table, in
/// `$CARGO_HOME/config.toml` (or `config`), and `CARGO_REGISTRIES_<NAME>_INDEX`. Unless a
/// source is replaced (`replace-with`), the default registry is in use: its hosts are read
/// from cargo's own registry cache, whose directories are named after the index's host and
/// whose sparse `config.json` names the download and API hosts.
fn cargo(view: &HostView, found: &mut Vec<Registry>) {
    let Some(home) = view
        .var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| view.home(".cargo"))
    else {
        return;
    };
    let mut replaced = false;
    for (path, text) in read_all([home.join("config.toml"), home.join("config")]) {
        let source = format!("cargo config ({})", path.display());
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.trim_matches(['[', ']', ' ']).to_owned();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = match section.as_str() {
                "" => key.trim().to_owned(),
                section => format!("{section}.{}", key.trim()),
            };
            // A basic string, without what follows it (a comment).
            let value = value.trim().split(['"', '\'']).nth(1).unwrap_or_default();
            replaced |= key.starts_with("source.") && key.ends_with(".replace-with");
            let url_key = (key.starts_with("source.") && key.ends_with(".registry"))
                || (key.starts_with("registries.") && key.ends_with(".index"));
            if url_key {
                add(found, value, source.clone());
            }
        }
    }
    for (name, value) in &view.env {
        if name.starts_with("CARGO_REGISTRIES_") && name.ends_with("_INDEX") {
            add(found, value, name.clone());
        }
    }
    if !replaced {
        cargo_cache(&home.join("registry/index"), found);
    }
}

/// The registries in cargo's index cache: `<host>-<hash>` directories.
fn cargo_cache(index: &Path, found: &mut Vec<Registry>) {
    let Ok(entries) = fs::read_dir(index) else {
        return;
    };
    let source = format!("cargo's registry cache ({})", index.display());
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some((host, _hash)) = name.as_deref().and_then(|n| n.rsplit_once('-')) {
            add(found, host, source.clone());
        }
        let config = fs::read_to_string(dir.join("config.json")).unwrap_or_default();
        let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
        for key in ["dl", "api"] {
            if let Some(url) = config.get(key).and_then(|v| v.as_str()) {
                add(found, url, source.clone());
            }
        }
    }
}

/// apt: the URI of each `deb`/`deb-src` line of `sources.list` and `sources.list.d/*.list`,
/// and the `URIs:` of each enabled stanza of `sources.list.d/*.sources` (deb822).
fn apt(view: &HostView, found: &mut Vec<Registry>) {
    let dir = view.system("/etc/apt/sources.list.d");
    let mut files = vec![view.system("/etc/apt/sources.list")];
    // apt reads only these two extensions (`.list.save`, `.disabled` files are not sources).
    let mut listed: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|e| e.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    listed.retain(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"));
    listed.sort();
    files.extend(listed);
    for (path, text) in read_all(files) {
        let source = format!("apt sources ({})", path.display());
        let deb822 = path.extension().is_some_and(|e| e == "sources");
        let uris = if deb822 {
            deb822_uris(&text)
        } else {
            one_line_uris(&text)
        };
        for uri in uris {
            add(found, uri, source.clone());
        }
    }
}

/// `deb [options] URI suite [components]` lines.
fn one_line_uris(text: &str) -> Vec<&str> {
    let mut uris = Vec::new();
    for line in text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
    {
        let mut words = line.split_whitespace();
        if !matches!(words.next(), Some("deb" | "deb-src")) {
            continue;
        }
        let mut word = words.next();
        if word.is_some_and(|w| w.starts_with('[')) {
            while word.is_some_and(|w| !w.ends_with(']')) {
                word = words.next();
            }
            word = words.next();
        }
        uris.extend(word);
    }
    uris
}

/// The `URIs:` of each stanza that is not `Enabled: no`.
fn deb822_uris(text: &str) -> Vec<&str> {
    let mut uris = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then_some(value.trim())
            })
        };
        if field("Enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            continue;
        }
        uris.extend(field("URIs").unwrap_or_default().split_whitespace());
    }
    uris
}

/// `key = value` pairs of an INI-like file (`;` and `#` comments), split at the first of
/// `separators`; an indented line continues the previous value.
fn ini_values(text: &str, separators: &[char]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with([';', '#', '[']) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = pairs.last_mut() {
                value.push(' ');
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some((key, value)) = trimmed.split_once(separators) {
            pairs.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    pairs
}

/// The `http(s)://` URLs in a text.
fn urls(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '[' | ']' | '"' | '\''))
        .filter(|w| w.starts_with("https://") || w.starts_with("http://"))
}

fn display(tool: &Option<PathBuf>) -> String {
    tool.as_ref()
        .map(|t| t.display().to_string())
        .unwrap_or_default()
}

/// Runs `tool args` with only `PATH` and `HOME` of the view's environment, and returns its
/// standard output if it succeeds within [`TOOL_TIMEOUT`]; an answer kept by
/// [`ToolAnswers`] for the same tool file, arguments and environment is reused.
fn run(view: &HostView, tool: &Path, args: &[&str]) -> Option<String> {
    if !view.run_tools {
        return None;
    }
    let Some(file) = &view.answers else {
        return ask(view, tool, args);
    };
    let key = ToolAnswers::key(view, tool, args)?;
    let mut answers = ToolAnswers::load(file);
    if let Some(answer) = answers.get(&key) {
        return answer;
    }
    let answer = ask(view, tool, args);
    answers.put(key, answer.clone());
    answers.save(file);
    answer
}

/// The package managers' answers, kept in a file for [`ANSWER_TTL`]: asking them costs about a
/// second (a `warden run` under `limited_access` would pay it every time), and their built-in
/// defaults change only when they are reinstalled or reconfigured. An answer is keyed by the
/// tool's path, size and modification time, its arguments, and `PATH` and `HOME`; the
/// configuration files discovery reads itself are read every time.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ToolAnswers {
    /// Key → (seconds since the epoch when asked, the answer).
    entries: BTreeMap<String, (u64, Option<String>)>,
}

/// How long a kept answer is trusted.
const ANSWER_TTL: Duration = Duration::from_secs(24 * 3600);

impl ToolAnswers {
    /// Beside the compile cache (`WARDEN_CACHE_DIR`'s parent directory, else
    /// `/var/cache/warden`).
    fn default_path() -> PathBuf {
        let compile = std::env::var_os("WARDEN_CACHE_DIR").map_or_else(
            || PathBuf::from(crate::compile_cache::DEFAULT_CACHE_DIR),
            PathBuf::from,
        );
        compile
            .parent()
            .unwrap_or(Path::new("/var/cache/warden"))
            .join("registry-tool-answers.json")
    }

    fn key(view: &HostView, tool: &Path, args: &[&str]) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(tool).ok()?;
        Some(format!(
            "{}|{}|{}.{}|{}|PATH={}|HOME={}",
            tool.display(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            args.join(" "),
            view.var("PATH").unwrap_or_default(),
            view.var("HOME").unwrap_or_default()
        ))
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn load(file: &Path) -> Self {
        fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn get(&self, key: &str) -> Option<Option<String>> {
        let (asked, answer) = self.entries.get(key)?;
        (Self::now().saturating_sub(*asked) < ANSWER_TTL.as_secs()).then(|| answer.clone())
    }

    fn put(&mut self, key: String, answer: Option<String>) {
        let now = Self::now();
        self.entries
            .retain(|_, (asked, _)| now.saturating_sub(*asked) < ANSWER_TTL.as_secs());
        self.entries.insert(key, (now, answer));
    }

    /// Best effort, atomically (a temporary file renamed over it): a cache that cannot be
    /// written only costs the next process the tools' time.
    fn save(&self, file: &Path) {
        let Some(dir) = file.parent() else { return };
        let Ok(json) = serde_json::to_vec(self) else {
            return;
        };
        let tmp = dir.join(format!(".registry-tool-answers.{}.tmp", std::process::id()));
        let written = fs::create_dir_all(dir)
            .and_then(|()| fs::write(&tmp, &json))
            .and_then(|()| fs::rename(&tmp, file));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            tracing::debug!(file = %file.display(), error = %e, "registry tool answers not kept");
        }
    }
}

/// Runs the tool (see [`run`]).
fn ask(view: &HostView, tool: &Path, args: &[&str]) -> Option<String> {
    let mut command = Command::new(tool);
    command
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for name in ["PATH", "HOME"] {
        if let Some(value) = view.var(name) {
            command.env(name, value);
        }
    }
    let mut child = command.spawn().ok()?;
    let mut stdout = child.stdout.take()?;
    // Read on a thread: a tool that fills the pipe would never exit. Not joined: a process
    // the tool left behind may hold the pipe open.
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.by_ref().take(1 << 20).read_to_string(&mut out);
        let _ = sender.send(out);
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                tracing::debug!(tool = %tool.display(), "no answer in time; killed");
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let out = receiver
        .recv_timeout(left.max(Duration::from_millis(100)))
        .ok()?;
    status.filter(|s| s.success()).map(|_| out)
}

#[cfg(test)]
mod tests;
