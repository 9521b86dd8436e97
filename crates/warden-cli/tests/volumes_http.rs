//! `/v1/volumes` on the real server (issue 12): create (201, a taken name 409, a bad name or
//! size 400), list, inspect (404 unknown), a run through `/v1/executions` with `volumes` (422 for an unknown one)
//! writing a file that the next run reads, remove (409 while a run uses it, 204 after),
//! prune. Needs root (CI runs as root).

mod live_server;

use live_server::LiveServer;
use serde_json::{json, Value};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn execute(server: &LiveServer, code: &str, volumes: &Value) -> (u16, Value) {
    let body = json!({
        "language": "bash", "code": code, "volumes": volumes, "mode": "sandboxed",
        "limits": {"wall_time": "60s"},
    });
    let (status, body) = server.request("POST", "/v1/executions", Some(&body.to_string()));
    (status, parse(&body))
}

#[test]
fn volumes_over_http() {
    let server = LiveServer::start("");
    let create = json!({"name": "web", "size": "16MiB"}).to_string();
    let (status, body) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    assert_eq!(parse(&body)["size_bytes"], 16 << 20);
    let (status, _) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 409);
    for bad in [
        json!({"name": "Web", "size": "16MiB"}),
        json!({"name": "tiny", "size": "1MiB"}),
    ] {
        let (status, body) = server.request("POST", "/v1/volumes", Some(&bad.to_string()));
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = server.request("GET", "/v1/volumes/nope", None);
    assert_eq!(status, 404, "{body}");

    let (status, written) = execute(
        &server,
        "echo over-http > /srv/web/page",
        &json!([{"name": "web", "path": "/srv/web"}]),
    );
    assert_eq!(status, 200, "{written:#}");
    assert_eq!(written["outcome"]["code"], 0, "{written:#}");
    assert_eq!(written["volumes"][0]["path"], "/srv/web", "{written:#}");
    let (status, read) = execute(
        &server,
        "cat /srv/web/page",
        &json!([{"name": "web", "path": "/srv/web", "read_only": true}]),
    );
    assert_eq!(status, 200, "{read:#}");
    assert_eq!(read["stdout"], "over-http\n", "{read:#}");
    let (status, unknown) = execute(&server, "true", &json!([{"name": "nope", "path": "/x"}]));
    assert_eq!(status, 422, "{unknown:#}");
    // A path no filesystem can hold is the caller's mistake (it failed in the sandbox's build,
    // a 500).
    let (status, nul) = execute(
        &server,
        "true",
        &json!([{"name": "web", "path": "/da\u{0}ta"}]),
    );
    assert_eq!(status, 422, "{nul:#}");
    assert!(
        nul["error"]
            .as_str()
            .is_some_and(|e| e.contains("holds a NUL byte")),
        "{nul:#}"
    );

    let (status, body) = server.request("GET", "/v1/volumes", None);
    assert_eq!(status, 200, "{body}");
    let listed = parse(&body);
    assert_eq!(listed[0]["name"], "web", "{listed:#}");
    assert!(listed[0]["last_used_at"].is_string(), "{listed:#}");
    assert!(
        listed[0]["used_bytes"].as_u64().unwrap_or(0) > 0,
        "{listed:#}"
    );

    // A run that holds the volume until told: the server refuses to remove it meanwhile.
    let mnt = server.world().path().join("data/volumes/web/mnt");
    std::thread::scope(|scope| {
        let holder = scope.spawn(|| {
            execute(
                &server,
                "touch /v/started; while [ ! -e /v/release ]; do sleep 0.05; done",
                &json!([{"name": "web", "path": "/v"}]),
            )
        });
        while !mnt.join("started").exists() {
            assert!(!holder.is_finished(), "the holding run ended early");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (status, body) = server.request("DELETE", "/v1/volumes/web", None);
        assert_eq!(status, 409, "{body}");
        let (status, body) = server.request("GET", "/v1/volumes/web", None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(parse(&body)["in_use"]["writer"], true, "{body}");
        std::fs::write(mnt.join("release"), b"").expect("released");
        let (status, held) = holder.join().expect("the holding request");
        assert_eq!(status, 200, "{held:#}");
        assert_eq!(held["outcome"]["code"], 0, "{held:#}");
    });

    let (status, body) = server.request(
        "POST",
        "/v1/volumes",
        Some(r#"{"name": "spare", "size": "8MiB"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.request("POST", "/v1/volumes/prune", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["removed"], json!(["spare", "web"]));
    let (status, _) = server.request("DELETE", "/v1/volumes/web", None);
    assert_eq!(status, 404);
}

/// Bug hunt "sess" F5: `/.warden`, where the isolated backend puts its loader and its
/// preloaded library, was not among the paths a volume may not take: a volume there was a
/// 500 (`/.warden/seccomp-exec`) or a run that failed in runsc (`/.warden`). It is refused
/// as `/proc` is, in every mode.
#[test]
fn a_volume_path_under_warden_s_own_directory_is_refused() {
    let server = LiveServer::start("");
    let create = json!({"name": "wv", "size": "8MiB"}).to_string();
    let (status, body) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    for mode in ["sandboxed", "isolated"] {
        for path in ["/.warden", "/.warden/seccomp-exec", "/.warden/x"] {
            let body = json!({
                "language": "bash", "code": "echo ok", "mode": mode,
                "volumes": [{"name": "wv", "path": path}],
            });
            let (status, answer) =
                server.request("POST", "/v1/executions", Some(&body.to_string()));
            assert_eq!(status, 422, "{mode} {path}: {answer}");
            let error = parse(&answer)["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(error.contains("/.warden"), "{mode} {path}: {answer}");
        }
    }
    let (status, body) = server.request("DELETE", "/v1/volumes/wv", None);
    assert_eq!(status, 204, "{body}");
}

/// Regression (hunt srv 4, 7): a path whose parts each fit but which is longer than the
/// kernel takes (PATH_MAX), or than what isolated mode's bundle leaves of it, failed in the
/// sandbox's build, a 500; a path with a newline was mounted. Both are refused, in both modes,
/// before anything is attached; a path of the bound is mounted.
#[test]
fn a_volume_path_too_long_or_with_a_control_character_is_refused() {
    let server = LiveServer::start("");
    let create = json!({"name": "lv", "size": "8MiB"}).to_string();
    let (status, body) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    let run = |mode: &str, path: &str| {
        let body = json!({
            "language": "bash", "code": "echo ok", "mode": mode,
            "volumes": [{"name": "lv", "path": path, "read_only": true}],
        });
        let (status, answer) = server.request("POST", "/v1/executions", Some(&body.to_string()));
        (status, parse(&answer))
    };
    let longest = "/a".repeat(512);
    for mode in ["sandboxed", "isolated"] {
        for (path, said) in [
            ("/a".repeat(2100), "longer than 1024 bytes"),
            (format!("{longest}/b"), "longer than 1024 bytes"),
            ("/data\n".to_owned(), "control character"),
        ] {
            let (status, answer) = run(mode, &path);
            assert_eq!(status, 422, "{mode} {}: {answer:#}", path.len());
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(error.contains(said), "{mode} {}: {answer:#}", path.len());
        }
        let (status, answer) = run(mode, &longest);
        assert_eq!(status, 200, "{mode}: {answer:#}");
        assert_eq!(answer["stdout"], "ok\n", "{mode}: {answer:#}");
    }
    let (status, body) = server.request("DELETE", "/v1/volumes/lv", None);
    assert_eq!(status, 204, "{body}");
}

/// Regression (hunt srv 5): under `concurrent_writers = "wait"`, a run waiting for the
/// volume's writer slept until `writer_wait` (or its wall time) though its execution was
/// cancelled (`DELETE /v1/executions/{id}`, or its client gone), keeping its worker and its
/// token's place all that while. The wait ends at the cancel.
#[test]
fn a_run_waiting_for_the_writer_stops_waiting_when_cancelled() {
    let server =
        LiveServer::start("[volumes]\nconcurrent_writers = \"wait\"\nwriter_wait = \"10m\"\n");
    let create = json!({"name": "q", "size": "8MiB"}).to_string();
    let (status, body) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    let mnt = server.world().path().join("data/volumes/q/mnt");
    // Both outlast the test's own bound: the holder's run, and the other's wait (as long as
    // its wall time). Asynchronous: a synchronous request ends at `sync_deadline`.
    let start = |code: &str| {
        let body = json!({
            "language": "bash", "code": code, "mode": "sandboxed",
            "volumes": [{"name": "q", "path": "/v"}], "limits": {"wall_time": "300s"},
        });
        let (status, body) =
            server.request("POST", "/v1/executions?wait=false", Some(&body.to_string()));
        assert_eq!(status, 202, "{body}");
        parse(&body)["id"].as_str().expect("an id").to_owned()
    };
    let state = |id: &str| {
        let (status, body) = server.request("GET", &format!("/v1/executions/{id}"), None);
        assert_eq!(status, 200, "{body}");
        parse(&body)
    };
    let bound = std::time::Duration::from_secs(60);
    let holder = start("touch /v/started; while [ ! -e /v/release ]; do sleep 0.05; done");
    assert!(
        live_server::eventually(bound, || mnt.join("started").exists()),
        "{}",
        state(&holder)
    );
    let waiting = start("true");
    assert!(
        live_server::eventually(bound, || state(&waiting)["state"] == "running"),
        "{}",
        state(&waiting)
    );
    let (status, body) = server.request("DELETE", &format!("/v1/executions/{waiting}"), None);
    assert_eq!(status, 202, "{body}");
    assert!(
        live_server::eventually(bound, || state(&waiting)["state"] == "finished"),
        "still waiting for the writer: {}",
        state(&waiting)
    );
    let cancelled = state(&waiting);
    assert_eq!(cancelled["error"]["kind"], "cancelled", "{cancelled}");
    assert_eq!(
        state(&holder)["state"],
        "running",
        "the writer still holds it"
    );
    std::fs::write(mnt.join("release"), b"").expect("released");
    assert!(
        live_server::eventually(bound, || state(&holder)["state"] == "finished"),
        "{}",
        state(&holder)
    );
    let held = state(&holder);
    assert_eq!(held["result"]["outcome"]["code"], 0, "{held}");
}

/// Volumes, sessions' workspaces and asynchronous executions are their token's: another
/// token finds none of them (404, not listed, not mountable, not pruned) and cannot take a
/// session's workspace's name; a session's workspace is not removed or pruned as a volume,
/// even by its own token, while its session exists (stopped by a restart, its files stay),
/// and goes with the session.
#[test]
fn a_tokens_volumes_sessions_and_jobs_are_its_own() {
    const OTHER: &str = "other-secret";
    let server = LiveServer::start(&format!(
        "[[server.tokens]]\nname = \"other\"\ntoken = \"{OTHER}\"\n"
    ));
    let (status, body) = server.request("POST", "/v1/sessions", Some("{}"));
    assert_eq!(status, 201, "{body}");
    let id = parse(&body)["id"].as_str().expect("an id").to_owned();
    let workspace = format!("session-{id}");
    let (status, body) = server.request(
        "POST",
        &format!("/v1/sessions/{id}/exec"),
        Some(r#"{"command": "echo private > secret.txt"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let create = json!({"name": "mine", "size": "8MiB"}).to_string();
    let (status, body) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    let job = json!({"language": "bash", "code": "echo job-output", "mode": "sandboxed"});
    let (status, body) =
        server.request("POST", "/v1/executions?wait=false", Some(&job.to_string()));
    assert_eq!(status, 202, "{body}");
    let job_id = parse(&body)["id"].as_str().expect("a job id").to_owned();

    // The other token.
    let (status, body) = server.request_as(OTHER, "GET", "/v1/volumes", None);
    assert_eq!((status, parse(&body)), (200, json!([])), "{body}");
    for name in ["mine", workspace.as_str()] {
        let path = format!("/v1/volumes/{name}");
        let (status, body) = server.request_as(OTHER, "GET", &path, None);
        assert_eq!(status, 404, "{name}: {body}");
        let (status, body) = server.request_as(OTHER, "DELETE", &path, None);
        assert_eq!(status, 404, "{name}: {body}");
        let mount = json!({
            "language": "bash", "code": "cat /v/secret.txt", "mode": "sandboxed",
            "volumes": [{"name": name, "path": "/v", "read_only": true}],
        });
        let (status, body) =
            server.request_as(OTHER, "POST", "/v1/executions", Some(&mount.to_string()));
        assert_eq!(status, 422, "{name}: {body}");
        assert!(body.contains("no volume named"), "{body}");
    }
    let given = json!({"workspace": workspace}).to_string();
    let (status, body) = server.request_as(OTHER, "POST", "/v1/sessions", Some(&given));
    assert_eq!(status, 404, "a session on another's workspace: {body}");
    let (status, body) = server.request_as(OTHER, "POST", "/v1/volumes/prune", None);
    assert_eq!(
        (status, parse(&body)),
        (200, json!({"removed": []})),
        "{body}"
    );
    let taken = json!({"name": "session-0123456789abcdef", "size": "8MiB"}).to_string();
    let (status, body) = server.request_as(OTHER, "POST", "/v1/volumes", Some(&taken));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("kept for sessions' workspaces"), "{body}");
    let job_path = format!("/v1/executions/{job_id}");
    for method in ["GET", "DELETE"] {
        let (status, body) = server.request_as(OTHER, method, &job_path, None);
        assert_eq!(status, 404, "{method} another's job: {body}");
    }

    // The owner: the job is there, and the session's workspace goes only with the session.
    let finished = live_server::eventually(std::time::Duration::from_secs(60), || {
        let (_, body) = server.request("GET", &job_path, None);
        parse(&body)["state"] == "finished"
    });
    assert!(finished, "the job finished");
    let (_, body) = server.request("GET", &job_path, None);
    assert_eq!(parse(&body)["result"]["stdout"], "job-output\n", "{body}");
    let server = server.restart();
    let (status, body) = server.request("DELETE", &format!("/v1/volumes/{workspace}"), None);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("remove the session instead"), "{body}");
    let (status, body) = server.request("POST", "/v1/volumes/prune", None);
    assert_eq!(
        (status, parse(&body)),
        (200, json!({"removed": ["mine"]})),
        "{body}"
    );
    let (status, body) = server.request(
        "GET",
        &format!("/v1/sessions/{id}/file?path=secret.txt"),
        None,
    );
    assert_eq!((status, body.as_str()), (200, "private\n"));
    let (status, body) = server.request("DELETE", &format!("/v1/sessions/{id}"), None);
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, _) = server.request("GET", &format!("/v1/volumes/{workspace}"), None);
    assert_eq!(status, 404, "the workspace went with its session");
}

/// Bug hunt: `warden volume` ignored `WARDEN_SERVER` and `WARDEN_TOKEN` (docs/cli.md said
/// otherwise): beside a server, `ls` listed every token's volumes and `rm` removed another
/// token's. With a server named, it is that server's client, as the token's.
#[test]
fn warden_volume_with_a_server_is_the_tokens_client() {
    const OTHER: &str = "other-secret";
    let server = LiveServer::start(&format!(
        "[[server.tokens]]\nname = \"other\"\ntoken = \"{OTHER}\"\n"
    ));
    let cli = |token: &str, args: &[&str]| {
        server
            .world()
            .warden()
            .arg("volume")
            .args(args)
            .env("WARDEN_SERVER", server.base())
            .env("WARDEN_TOKEN", token)
            .output()
            .expect("warden volume runs")
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let out = cli(live_server::TOKEN, &["create", "mine", "--size", "8MiB"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "created mine (8MiB)\n");
    let (status, body) = server.request("GET", "/v1/volumes/mine", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["owner"], "test", "the token's own: {body}");

    let out = cli(OTHER, &["ls", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(parse(&text(&out.stdout)), json!([]));
    let out = cli(OTHER, &["rm", "mine"]);
    assert!(!out.status.success(), "another token removed it");
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));

    let out = cli(live_server::TOKEN, &["inspect", "mine"]);
    assert!(out.status.success(), "{out:?}");
    let shown = text(&out.stdout);
    assert!(
        shown.contains("size       8MiB") && shown.contains("owner      token test"),
        "{shown}"
    );
    let out = cli(live_server::TOKEN, &["rm", "mine"]);
    assert!(out.status.success(), "{out:?}");
    let (status, _) = server.request("GET", "/v1/volumes/mine", None);
    assert_eq!(status, 404);
}

/// Bug hunt: another token's volume was reachable through a stopped session. A session given
/// the volume `shared-data` stopped (idle); its token pruned the volume (a stopped session's
/// workspace counted as unused); the other token made a volume of that name and stored a file
/// in it; the stopped session's file routes then read, wrote and deleted the other token's
/// files, and the `files` tool listed them: a stopped session reached its workspace by name
/// alone, on every token's volumes. Now the volume is kept while a session names it, and a
/// session reaches only its token's volume, the very one it was given.
#[test]
fn a_stopped_sessions_workspace_is_kept_and_never_another_volume_of_its_name() {
    const OTHER: &str = "other-secret";
    let server = LiveServer::start(&format!(
        "[sessions]\ndisk = \"16MiB\"\n[volumes]\nmax_size = \"64MiB\"\n\
         [[server.tokens]]\nname = \"other\"\ntoken = \"{OTHER}\"\n"
    ));
    let create = json!({"name": "shared-data", "size": "8MiB"}).to_string();
    let (status, body) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    let given = json!({"workspace": "shared-data", "idle_timeout": "1s"}).to_string();
    let (status, body) = server.request("POST", "/v1/sessions", Some(&given));
    assert_eq!(status, 201, "{body}");
    let id = parse(&body)["id"].as_str().expect("an id").to_owned();
    let stopped = live_server::eventually(std::time::Duration::from_secs(30), || {
        let (_, body) = server.request("GET", &format!("/v1/sessions/{id}"), None);
        parse(&body)["state"] == "stopped"
    });
    assert!(stopped, "the session stopped when idle");

    // Neither removed nor pruned while the session, stopped, names it.
    let (status, body) = server.request("DELETE", "/v1/volumes/shared-data", None);
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains(&format!("workspace of session {id}")),
        "the session is named: {body}"
    );
    let (status, body) = server.request("POST", "/v1/volumes/prune", None);
    assert_eq!(
        (status, parse(&body)),
        (200, json!({"removed": []})),
        "{body}"
    );
    let (status, body) = server.request("GET", "/v1/volumes/shared-data", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["workspace_of"], json!([id]), "{body}");
    let (status, body) = server.request_as(OTHER, "POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 409, "the name is taken: {body}");

    // Removed behind warden's back (by hand on the host), and made again by the other token,
    // who stores a file in it: the session does not take it for its workspace. (A session
    // reads as stopped a moment before its workspace is unmounted.)
    let released = live_server::eventually(std::time::Duration::from_secs(30), || {
        let (_, body) = server.request("GET", "/v1/volumes/shared-data", None);
        parse(&body)["in_use"]["attached"] == false
    });
    assert!(released, "the stopped session's workspace was unmounted");
    let volumes = server
        .world()
        .db()
        .parent()
        .expect("a directory")
        .join("volumes");
    std::fs::remove_dir_all(volumes.join("shared-data")).expect("removed by hand");
    let (status, body) = server.request_as(OTHER, "POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    let store = json!({
        "language": "bash", "code": "echo other-creds > /data/creds.txt", "mode": "sandboxed",
        "volumes": [{"name": "shared-data", "path": "/data"}],
    });
    let (status, body) =
        server.request_as(OTHER, "POST", "/v1/executions", Some(&store.to_string()));
    assert_eq!(
        (status, parse(&body)["outcome"]["kind"].clone()),
        (200, json!("exited")),
        "{body}"
    );
    let file = format!("/v1/sessions/{id}/file?path=creds.txt");
    for (method, body) in [("GET", None), ("PUT", Some("planted")), ("DELETE", None)] {
        let (status, answer) = server.request(method, &file, body);
        assert_eq!(status, 404, "{method}: {answer}");
    }
    let (status, body) = server.request("GET", &format!("/v1/sessions/{id}/files?path="), None);
    assert_eq!(status, 404, "{body}");
    let list = json!({"operation": "list", "session": id}).to_string();
    let (status, body) = server.request("POST", "/v1/tools/files/call", Some(&list));
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["is_error"], true, "{body}");
    assert!(!body.contains("creds.txt"), "{body}");
    let read = json!({
        "language": "bash", "code": "cat /data/creds.txt", "mode": "sandboxed",
        "volumes": [{"name": "shared-data", "path": "/data", "read_only": true}],
    });
    let (status, body) =
        server.request_as(OTHER, "POST", "/v1/executions", Some(&read.to_string()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["stdout"], "other-creds\n", "untouched: {body}");

    // Once the session is removed, its token's volume of that name is its own to remove.
    let (status, body) = server.request("DELETE", &format!("/v1/sessions/{id}"), None);
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, body) = server.request_as(OTHER, "DELETE", "/v1/volumes/shared-data", None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.request("POST", "/v1/sessions", Some(&given));
    assert_eq!(status, 201, "{body}");
    let again = parse(&body)["id"].as_str().expect("an id").to_owned();
    let (status, body) = server.request("DELETE", &format!("/v1/sessions/{again}"), None);
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, body) = server.request("DELETE", "/v1/volumes/shared-data", None);
    assert_eq!(status, 204, "kept by no session: {body}");
}

/// The sessions' marks on the volumes given to them are brought in line when a server opens
/// its sessions: a session kept before marks (and volume identities) were gets its mark and
/// its volume's identity, and the mark of a session its sessions directory no longer keeps is
/// taken off.
#[test]
fn a_restarted_server_marks_the_given_workspaces_of_its_sessions() {
    let server = LiveServer::start("");
    let create = json!({"name": "kept", "size": "8MiB"}).to_string();
    let (status, body) = server.request("POST", "/v1/volumes", Some(&create));
    assert_eq!(status, 201, "{body}");
    let given = json!({"workspace": "kept"}).to_string();
    let (status, body) = server.request("POST", "/v1/sessions", Some(&given));
    assert_eq!(status, 201, "{body}");
    let id = parse(&body)["id"].as_str().expect("an id").to_owned();
    let server = server.restart();

    // As an older warden left them; the server has not opened its sessions yet.
    let state = server
        .world()
        .db()
        .parent()
        .expect("a directory")
        .to_owned();
    let session_file = state.join("sessions").join(format!("{id}.json"));
    let mut session = parse(&std::fs::read_to_string(&session_file).expect("the session"));
    assert!(session["workspace_id"].is_string(), "{session}");
    session
        .as_object_mut()
        .expect("an object")
        .remove("workspace_id");
    std::fs::write(&session_file, session.to_string()).expect("written");
    let meta_file = state.join("volumes/kept/meta.json");
    let mut meta = parse(&std::fs::read_to_string(&meta_file).expect("the volume"));
    meta.as_object_mut().expect("an object").remove("id");
    meta["workspace_of"] = json!({"0123456789abcdef": 0});
    // A mark of a session that this sessions directory kept (only its store takes it off).
    let directory = std::fs::read_to_string(state.join("sessions/.identity")).expect("its id");
    meta["workspace_stores"] = json!({"0123456789abcdef": directory.trim()});
    std::fs::write(&meta_file, meta.to_string()).expect("written");

    let (status, body) = server.request("GET", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.request("GET", "/v1/volumes/kept", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["workspace_of"], json!([id]), "{body}");
    let session = parse(&std::fs::read_to_string(&session_file).expect("the session"));
    assert!(session["workspace_id"].is_string(), "adopted: {session}");
    let (status, body) = server.request(
        "PUT",
        &format!("/v1/sessions/{id}/file?path=a.txt"),
        Some("a"),
    );
    assert_eq!(status, 204, "its workspace: {body}");
    let (status, body) = server.request("DELETE", "/v1/volumes/kept", None);
    assert_eq!(status, 409, "{body}");
    let (status, body) = server.request("DELETE", &format!("/v1/sessions/{id}"), None);
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, body) = server.request("DELETE", "/v1/volumes/kept", None);
    assert_eq!(status, 204, "{body}");
}

/// Bug hunt: nothing bounded the host disk a token reserved: each volume reserves its whole
/// size (ten of 64MiB took 0.3 s, and `max_size` is 10GiB by default), and a stopped session,
/// which no session limit counts, keeps its workspace's image. Now a token's volumes, its
/// sessions' workspaces (running or stopped) included, reserve at most `[volumes]
/// quota_per_caller`; past it, 507 with `quota_exceeded`, and another token is not affected.
#[test]
fn a_tokens_volumes_and_sessions_reserve_at_most_its_quota() {
    const OTHER: &str = "other-secret";
    let server = LiveServer::start(&format!(
        "[sessions]\ndisk = \"16MiB\"\n[volumes]\nmax_size = \"64MiB\"\nquota_per_caller = \"64MiB\"\n\
         [[server.tokens]]\nname = \"other\"\ntoken = \"{OTHER}\"\n"
    ));
    let volume = |name: &str, size: &str| json!({"name": name, "size": size}).to_string();
    for name in ["a", "b"] {
        let (status, body) = server.request("POST", "/v1/volumes", Some(&volume(name, "32MiB")));
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = server.request("POST", "/v1/volumes", Some(&volume("c", "8MiB")));
    assert_eq!(status, 507, "{body}");
    assert_eq!(parse(&body)["kind"], "quota_exceeded", "{body}");
    assert!(
        body.contains("[volumes] quota_per_caller") && body.contains("72MiB"),
        "{body}"
    );
    let (status, body) = server.request("POST", "/v1/sessions", Some("{}"));
    assert_eq!(status, 507, "a session's workspace counts: {body}");
    let (status, body) =
        server.request_as(OTHER, "POST", "/v1/volumes", Some(&volume("c", "64MiB")));
    assert_eq!(status, 201, "another token's quota is its own: {body}");

    // A stopped session's workspace still takes its place, until the session is removed.
    let (status, body) = server.request("DELETE", "/v1/volumes/b", None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.request("POST", "/v1/sessions", Some(r#"{"idle_timeout": "1s"}"#));
    assert_eq!(status, 201, "{body}");
    let id = parse(&body)["id"].as_str().expect("an id").to_owned();
    let stopped = live_server::eventually(std::time::Duration::from_secs(30), || {
        let (_, body) = server.request("GET", &format!("/v1/sessions/{id}"), None);
        parse(&body)["state"] == "stopped"
    });
    assert!(stopped, "the session stopped when idle");
    let (status, body) = server.request("POST", "/v1/volumes", Some(&volume("b", "32MiB")));
    assert_eq!(status, 507, "{body}");
    let (status, body) = server.request("DELETE", &format!("/v1/sessions/{id}"), None);
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, body) = server.request("POST", "/v1/volumes", Some(&volume("b", "32MiB")));
    assert_eq!(status, 201, "{body}");
}
