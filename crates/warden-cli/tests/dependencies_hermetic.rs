//! Hermetic dependency installs (issue 10): `warden run --dep SPEC` installs with pip, npm and
//! gem from package indexes this test serves on the host's loopback, named in `[dependencies]
//! index`, so no registry on the internet is involved and nothing leaves the machine. What is
//! proven: each installer goes through warden's egress proxy under the stage's policy (an
//! imported `test_indexes` allowing exactly the index's port on 127.0.0.1), every connection of
//! the stage is logged as allowed to that address and port, the index saw the installer's
//! requests, a second identical run is taken from the dependency cache without asking the index
//! again, and a version the index does not have is a `dependency_error` with the installer's
//! message.
//!
//! The packages are built at test time, offline, by `dependencies_hermetic/build_indexes.py`
//! (the host's `/usr/bin/python3` writes the wheel and the npm tarball itself; `gem build` and
//! `gem generate_index` make the gem and its legacy index), and served from memory by a thread
//! here that records each request's path. Needs root, python3 with pip, node with npm and ruby
//! with gem (scripts/setup.sh installs them).

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use support::{json_of, World};

/// What each fixture package holds, and each program prints.
const VALUE: &str = "from the test index";

/// One HTTP server on 127.0.0.1 serving the three indexes from memory.
struct Index {
    port: u16,
    /// The path of every request, in arrival order.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Index {
    /// Builds the indexes and serves them from memory. The port is bound first: the npm
    /// packument names its tarball by absolute URL.
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let dir = tempfile::tempdir().expect("a directory for the indexes");
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/dependencies_hermetic/build_indexes.py");
        let out = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(dir.path())
            .arg(port.to_string())
            .arg(VALUE)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "the indexes are built: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut files = HashMap::new();
        load(dir.path(), dir.path(), &mut files);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let files = Arc::new(files);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (files, log) = (Arc::clone(&files), Arc::clone(&log));
                std::thread::spawn(move || answer(stream, &files, &log));
            }
        });
        Self { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("the request log").clone()
    }
}

/// Reads the built tree into `files`, by the URL path each is served at: a directory's
/// `index.html` (a simple API page) at the directory with and without its slash, its
/// `index.json` (an npm packument) likewise, any other file at its own path.
fn load(root: &Path, dir: &Path, files: &mut HashMap<String, (&'static str, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("the indexes' directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            load(root, &path, files);
            continue;
        }
        let data = std::fs::read(&path).expect("an index file");
        let rel = path.strip_prefix(root).expect("under the root");
        let parent = format!(
            "/{}",
            rel.parent()
                .map_or(String::new(), |p| p.display().to_string())
        );
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
        match name.as_deref() {
            Some("index.html") | Some("index.json") => {
                let kind = if name.as_deref() == Some("index.html") {
                    "text/html"
                } else {
                    "application/json"
                };
                files.insert(
                    format!("{}/", parent.trim_end_matches('/')),
                    (kind, data.clone()),
                );
                files.insert(parent, (kind, data));
            }
            _ => {
                files.insert(
                    format!("/{}", rel.display()),
                    ("application/octet-stream", data),
                );
            }
        }
    }
}

/// Answers one request (HTTP/1.0 or 1.1, GET or HEAD) and closes the connection.
fn answer(
    mut stream: TcpStream,
    files: &HashMap<String, (&'static str, Vec<u8>)>,
    log: &Mutex<Vec<String>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default();
    // A proxy may forward the absolute form; the index is the same either way.
    let target = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    log.lock().expect("the request log").push(path.clone());
    let (status, kind, body) = match files.get(&path) {
        Some((kind, body)) => ("200 OK", *kind, body.as_slice()),
        None => ("404 Not Found", "text/plain", &b"not in this index\n"[..]),
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        reply.extend_from_slice(body);
    }
    let _ = stream.write_all(&reply);
}

/// The policy of the dependency stage: the index's port on the host's loopback, nothing else.
fn import_policy(world: &World, port: u16) {
    let file = world.path().join("test_indexes.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"test_indexes\"\n\
             description = \"this test's package indexes on the host's loopback\"\n\
             level = \"custom\"\ndefault_action = \"deny\"\nallow_denied = [\"127.0.0.1\"]\n\n\
             [[rule]]\nprotocol = \"tcp\"\nhost = \"127.0.0.1\"\nports = {port}\n\
             action = \"allow\"\nreason = \"the test's package index\"\n"
        ),
    )
    .expect("policy written");
    let out = world
        .warden()
        .args(["network", "import"])
        .arg(&file)
        .output()
        .expect("warden runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A world whose dependency stage runs under `test_indexes` and installs from `index`.
fn world_with(index: &Index) -> World {
    let world = World::visible_to_sandboxes();
    import_policy(&world, index.port);
    world.write_config(&format!(
        "[network]\n\
         allowed = [\"no_access\", \"limited_access\", \"internet_access\", \"development\", \
         \"test_indexes\"]\n\n\
         [dependencies]\npolicy = \"test_indexes\"\n\n\
         [dependencies.index]\n\
         python = \"{}\"\njavascript = \"{}\"\nruby = \"{}\"\n",
        index.url("/simple/"),
        index.url("/npm/"),
        index.url("/gems/"),
    ));
    world
}

/// `warden run --json --dep SPEC FILE` in `world`; the result.
fn run(world: &World, spec: &str, (name, program): (&str, &str)) -> Value {
    let path = world.path().join(name);
    std::fs::write(&path, program).expect("program written");
    let out = world
        .warden()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/root")
        .args(["run", "--json", "--dep", spec])
        .arg(path)
        .output()
        .expect("warden runs");
    json_of(&out)
}

/// One installer's case.
struct Case {
    /// The program, as (file name, code); it prints the fixture's value.
    program: (&'static str, &'static str),
    /// The fixture's spec.
    spec: &'static str,
    /// The same package at a version the index does not have.
    missing: &'static str,
    /// What the installer says of it.
    installer_says: &'static str,
    /// Paths the installer must have asked the index for.
    fetched: &'static [&'static str],
}

fn installs_from_the_test_index(case: &Case) {
    let index = Index::start();
    let world = world_with(&index);

    let first = run(&world, case.spec, case.program);
    assert_eq!(first["outcome"]["code"], 0, "{first:#}");
    assert_eq!(first["stdout"], format!("{VALUE}\n"), "{first:#}");
    let stage = &first["dependencies"];
    assert_eq!(stage["outcome"]["kind"], "exited", "{first:#}");
    assert_eq!(stage["outcome"]["code"], 0, "{first:#}");
    assert_eq!(stage["cached"], false, "{first:#}");
    let connections = stage["network"]["connections"]
        .as_array()
        .expect("the stage's connections are logged");
    assert!(!connections.is_empty(), "{first:#}");
    for c in connections {
        assert_eq!(c["allowed"], true, "{c:#}\n{first:#}");
        assert!(
            c["host"].is_null() || c["host"] == "127.0.0.1",
            "{c:#}\n{first:#}"
        );
        assert_eq!(c["addr"], "127.0.0.1", "{c:#}\n{first:#}");
        assert_eq!(c["port"], index.port, "{c:#}\n{first:#}");
        assert_eq!(c["rule"], "rule 1", "{c:#}\n{first:#}");
        assert_eq!(c["reason"], "the test's package index", "{c:#}\n{first:#}");
    }
    // Bug hunt: the history kept the program's connections only; the installer's are in its
    // traffic log too now, under their own policy and stage, and read back with the execution.
    let id = first["id"].as_str().expect("an id");
    let logged = json_of(
        &world
            .warden()
            .args(["network", "log", "--execution", id, "--json"])
            .output()
            .expect("warden runs"),
    );
    let logged = logged.as_array().expect("a list");
    assert_eq!(logged.len(), connections.len(), "{logged:#?}");
    for c in logged {
        assert_eq!(c["stage"], "dependencies", "{c:#}");
        assert_eq!(c["policy"], "test_indexes", "{c:#}");
    }
    let stats = json_of(
        &world
            .warden()
            .args(["network", "stats", "--json"])
            .output()
            .expect("warden runs"),
    );
    let policy = stats["per_policy"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["policy"] == "test_indexes"))
        .unwrap_or_else(|| panic!("the installer's policy is counted: {stats:#}"));
    assert_eq!(policy["attempts"], connections.len(), "{stats:#}");
    let shown = json_of(
        &world
            .warden()
            .args(["show", id, "--json"])
            .output()
            .expect("warden runs"),
    );
    assert_eq!(
        shown["dependencies"]["network"]["connections"]
            .as_array()
            .map(Vec::len),
        Some(connections.len()),
        "{shown:#}"
    );
    let seen = index.requests();
    for path in case.fetched {
        assert!(
            seen.iter().any(|p| p == path),
            "the index served {path}: {seen:#?}\n{first:#}"
        );
    }

    let second = run(&world, case.spec, case.program);
    assert_eq!(second["stdout"], format!("{VALUE}\n"), "{second:#}");
    assert_eq!(second["dependencies"]["cached"], true, "{second:#}");
    assert_eq!(
        index.requests(),
        seen,
        "a cached set asks the index nothing: {second:#}"
    );

    let missing = run(&world, case.missing, case.program);
    assert_eq!(
        missing["outcome"]["kind"], "dependency_error",
        "{missing:#}"
    );
    assert_eq!(missing["stdout"], "", "the program never ran: {missing:#}");
    let stderr = missing["dependencies"]["stderr"]
        .as_str()
        .unwrap_or_default();
    assert!(stderr.contains(case.installer_says), "{missing:#}");
    assert!(
        index.requests().len() > seen.len(),
        "the installer asked this index: {missing:#}"
    );
}

#[test]
fn pip_installs_a_wheel_from_a_simple_index_on_the_hosts_loopback() {
    installs_from_the_test_index(&Case {
        program: (
            "main.py",
            "import warden_fixture_py\nprint(warden_fixture_py.VALUE)\n",
        ),
        spec: "warden-fixture-py==1.0.0",
        missing: "warden-fixture-py==9.9.9",
        installer_says: "No matching distribution found for warden-fixture-py==9.9.9",
        fetched: &[
            "/simple/warden-fixture-py/",
            "/files/warden_fixture_py-1.0.0-py3-none-any.whl",
        ],
    });
}

#[test]
fn npm_installs_a_tarball_from_a_registry_on_the_hosts_loopback() {
    installs_from_the_test_index(&Case {
        program: ("main.js", "console.log(require('warden-fixture-js'));\n"),
        spec: "warden-fixture-js@1.0.0",
        missing: "warden-fixture-js@9.9.9",
        installer_says: "No matching version found for warden-fixture-js@9.9.9",
        fetched: &[
            "/npm/warden-fixture-js",
            "/npm/warden-fixture-js/-/warden-fixture-js-1.0.0.tgz",
        ],
    });
}

#[test]
fn gem_installs_a_gem_from_a_source_on_the_hosts_loopback() {
    installs_from_the_test_index(&Case {
        program: (
            "main.rb",
            "require 'warden_fixture_rb'\nputs WardenFixtureRb::VALUE\n",
        ),
        spec: "warden_fixture_rb:1.0.0",
        missing: "warden_fixture_rb:9.9.9",
        installer_says: "Could not find a valid gem 'warden_fixture_rb' (= 9.9.9)",
        fetched: &[
            "/gems/specs.4.8.gz",
            "/gems/quick/Marshal.4.8/warden_fixture_rb-1.0.0.gemspec.rz",
            "/gems/gems/warden_fixture_rb-1.0.0.gem",
        ],
    });
}

/// Bug hunt "deps": a dependency cache directory another user may write into was used (a set
/// planted there by another user was imported by every run), and a set that could not be
/// stored was warden's error (exit 125): the execution, its installer's run and its traffic
/// went unrecorded. Such a directory is not used; the stage fails as a `dependency_error`
/// saying why, recorded in the history.
#[test]
fn a_dependency_cache_shared_with_other_users_is_not_used_and_the_run_is_recorded() {
    use std::os::unix::fs::PermissionsExt;
    let index = Index::start();
    let world = world_with(&index);
    let shared = world.path().join("dependencies");
    std::fs::create_dir(&shared).expect("the cache's directory");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let program = (
        "main.py",
        "import warden_fixture_py\nprint(warden_fixture_py.VALUE)\n",
    );
    let result = run(&world, "warden-fixture-py==1.0.0", program);
    assert_eq!(result["outcome"]["kind"], "dependency_error", "{result:#}");
    let stderr = result["dependencies"]["stderr"]
        .as_str()
        .unwrap_or_default();
    assert!(stderr.contains("shared with other users"), "{result:#}");
    assert_eq!(
        std::fs::read_dir(&shared).expect("listed").count(),
        0,
        "nothing stored there"
    );
    let out = world
        .warden()
        .args(["history", "--json"])
        .output()
        .expect("warden history runs");
    let history = json_of(&out);
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history:#}");
    assert_eq!(history[0]["outcome"]["kind"], "dependency_error");
}
