//! End to end (issue 9): Piston's interactive WebSocket, `/api/v2/connect`, spoken to by a real
//! WebSocket client (`websockets`, pinned in scripts/test-clients.txt) through the server's
//! own connection handling (hyper, upgrades enabled): a whole session, the close codes of a
//! missing or misplaced `init`, a signal message, a program killed by a signal. The checks are
//! crates/warden-server/tests/clients/piston_connect.py. Real sandboxes: runs as root.

mod live_server;

use live_server::LiveServer;

#[test]
fn the_websocket_runs_a_session_and_closes_with_piston_codes() {
    let server = LiveServer::start("");
    server.client_script("piston_connect.py", &[]);
}
