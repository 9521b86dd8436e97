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
