//! The response rule on the real server (issue 13): an API token whose executions keep hitting
//! limits is refused (403, saying why) while another token's requests run. Needs root.

mod live_server;

use live_server::LiveServer;

#[test]
fn a_probing_token_is_refused_and_the_others_are_not() {
    let server = LiveServer::start(
        "[response]\nevents = 2\nwithin = \"10m\"\naction = \"refuse\"\n\n\
         [[server.tokens]]\nname = \"other\"\ntoken = \"other-secret\"\n",
    );
    let flood = r#"{"language": "bash", "code": "yes", "limits": {"max_output": "1KiB"}}"#;
    for _ in 0..2 {
        let (status, body) = server.request("POST", "/v1/executions", Some(flood));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("output_limit"), "{body}");
    }
    let fine = r#"{"language": "bash", "code": "echo fine"}"#;
    let (status, body) = server.request("POST", "/v1/executions", Some(fine));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("test caused 2 security events"), "{body}");
    // The other token is not concerned.
    let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    std::io::Write::write_all(
        &mut stream,
        format!(
            "POST /v1/executions HTTP/1.0\r\nauthorization: Bearer other-secret\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{fine}",
            fine.len()
        )
        .as_bytes(),
    )
    .expect("sent");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("read");
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(answer.contains("\"stdout\":\"fine\\n\""), "{answer}");
}
