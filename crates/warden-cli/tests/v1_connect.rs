//! End to end (issue 12): the own interactive WebSocket, `/v1/executions/connect`, spoken to by
//! a real WebSocket client (`websockets`, pinned in scripts/test-clients.txt): stdin while the
//! program runs, signals the program handles or dies of, refusals. The checks are
//! crates/warden-server/tests/clients/v1_connect.py. Real sandboxes: runs as root.

mod live_server;

use live_server::LiveServer;

#[test]
fn an_interactive_session_takes_stdin_and_signals_and_ends_with_the_result() {
    let server = LiveServer::start("");
    server.client_script("v1_connect.py", &[]);
    // No sandbox or process is left once the sessions ended.
    assert_eq!(server.health(std::time::Duration::from_secs(5)), Some(200));
}
