//! A small HTTP/1.1 client for the commands that talk to a running `warden serve` (sessions
//! live in a server, not in a one-shot process). Plain `http://` only: the server listens on
//! loopback unless the operator configured otherwise, and a remote one sits behind a proxy
//! that terminates TLS. One request per connection (`Connection: close`).

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

/// The server's address when neither `--server` nor `WARDEN_SERVER` names one.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:2358";

/// The largest answer read (a downloaded file is at most 64 MiB).
const MAX_ANSWER: u64 = 80 << 20;

/// Where the server is and who the caller is.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    host: String,
    port: u16,
    token: Option<String>,
}

/// An answer: its status and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The headers, names in lower case.
    pub(crate) headers: Vec<(String, String)>,
}

impl Answer {
    /// The value of the header `name` (lower case), if the answer has it.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or the server's error message as the error.
    pub(crate) fn json(self) -> anyhow::Result<serde_json::Value> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the server answered {} with a body that is not JSON",
                self.status
            )
        })?;
        if !(200..300).contains(&self.status) {
            bail!("{}", error_message(self.status, &value));
        }
        Ok(value)
    }

    /// Nothing but success is expected.
    pub(crate) fn ok(self) -> anyhow::Result<()> {
        if (200..300).contains(&self.status) {
            return Ok(());
        }
        let value = serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null);
        bail!("{}", error_message(self.status, &value))
    }
}

/// Whether the server's answer is a refusal by its policy (403, kind `refused`): the mode
/// policy's, as `warden run` shows and exits on ([`refused`]).
pub(crate) fn is_refusal(status: u16, body: &serde_json::Value) -> bool {
    status == 403 && body["kind"] == "refused"
}

/// The server refused the program by its policy (403, `refused`): shown as a local `warden
/// run` shows a refusal, its message on stderr (or `{"error", "refused": true}` with `json`),
/// and exits 118 (`exit_code::REFUSED`), whichever command sent it.
pub(crate) fn refused(json: bool, answer: &serde_json::Value) -> anyhow::Result<ExitCode> {
    let message = answer["error"].as_str().unwrap_or("refused");
    if json {
        let value = serde_json::json!({ "error": message, "refused": true });
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &value)?;
        writeln!(out)?;
    } else {
        eprintln!("warden: {message}");
    }
    Ok(ExitCode::from(crate::exit_code::REFUSED))
}

fn error_message(status: u16, body: &serde_json::Value) -> String {
    match body["error"].as_str() {
        Some(message) => format!("the server refused ({status}): {message}"),
        None => format!("the server answered {status}"),
    }
}

impl Client {
    /// The server at `url` (`http://HOST:PORT`), authenticated with `token` if given.
    pub(crate) fn new(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url:?}: the server's address is http://HOST:PORT"))?;
        let authority = rest.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
                host,
                port.parse::<u16>()
                    .with_context(|| format!("{url:?}: {port:?} is not a port"))?,
            ),
            _ => (authority, 80),
        };
        if host.is_empty() || authority.contains('/') {
            bail!("{url:?}: the server's address is http://HOST:PORT");
        }
        Ok(Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// Opens a WebSocket to `path` (the server's interactive endpoints), authenticated as the
    /// requests are.
    pub(crate) fn websocket(
        &self,
        path: &str,
    ) -> anyhow::Result<tungstenite::WebSocket<TcpStream>> {
        use tungstenite::client::IntoClientRequest;
        let stream = self.connect()?;
        let url = format!("ws://{}:{}{path}", self.host, self.port);
        let mut request = url
            .as_str()
            .into_client_request()
            .with_context(|| format!("{url}: not a WebSocket address"))?;
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .context("the token is not a header value")?;
            request.headers_mut().insert("authorization", value);
        }
        // No size limit on the server's messages: its output comes in messages of at most 64
        // KiB, but the `result` repeats the whole output, as the synchronous answer does
        // (which is read whole too); tungstenite's 16 MiB a frame failed a run that printed
        // more, or a few MB of control bytes (6 bytes each in JSON).
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        match tungstenite::client::client_with_config(request, stream, Some(config)) {
            Ok((socket, _)) => Ok(socket),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(answer))) => {
                let status = answer.status().as_u16();
                let body = answer.body().as_deref().unwrap_or_default();
                let value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
                bail!("{}", error_message(status, &value))
            }
            Err(e) => Err(anyhow::anyhow!("opening the WebSocket {url}: {e}")),
        }
    }

    /// A connection to the server.
    fn connect(&self) -> anyhow::Result<TcpStream> {
        TcpStream::connect((self.host.as_str(), self.port)).with_context(|| {
            format!(
                "connecting to the warden server at {}:{} (is `warden serve` running? set \
                 --server or WARDEN_SERVER)",
                self.host, self.port
            )
        })
    }

    /// Sends one request and reads the whole answer.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        let mut stream = self.connect()?;
        stream.set_read_timeout(Some(Duration::from_secs(3600)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host,
            self.port,
            body.len()
        );
        if let Some(kind) = content_type {
            head.push_str(&format!("Content-Type: {kind}\r\n"));
        }
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        // A server that refuses the body (too large) answers and closes before reading it all:
        // its answer says why, better than the broken pipe.
        let sent = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body));
        match (read_answer(BufReader::new(stream)), sent) {
            (Ok(answer), _) => Ok(answer),
            (Err(e), Ok(())) => Err(e),
            (Err(_), Err(e)) => Err(e).context("sending the request to the server"),
        }
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.request("GET", path, None, &[])
    }

    /// A JSON body.
    pub(crate) fn send_json(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<Answer> {
        self.request(
            method,
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }
}

/// Reads a status line, headers and a body (by `Content-Length`, chunked, or to the end).
fn read_answer(mut reader: impl BufRead) -> anyhow::Result<Answer> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("reading the server's answer")?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("the server's answer starts with {line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
            headers.push((name.trim().to_ascii_lowercase(), value.to_owned()));
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .context("a malformed chunk in the server's answer")?;
            if size == 0 {
                break;
            }
            if body.len() as u64 + size > MAX_ANSWER {
                bail!("the server's answer is larger than {MAX_ANSWER} bytes");
            }
            let before = body.len() as u64;
            (&mut reader).take(size).read_to_end(&mut body)?;
            if body.len() as u64 - before < size {
                bail!("the server's answer ended within a chunk");
            }
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else {
        if let Some(length) = length.filter(|n| *n > MAX_ANSWER) {
            bail!("the server's answer is larger than {MAX_ANSWER} bytes ({length})");
        }
        let most = length.unwrap_or(MAX_ANSWER);
        reader.take(most).read_to_end(&mut body)?;
        // A file cut shorter while it was sent ends the answer early (docs/sessions.md): what
        // came is not the file, and must not be taken for it.
        if let Some(length) = length.filter(|n| body.len() as u64 != *n) {
            bail!(
                "the server's answer ended after {} of the {length} bytes it announced",
                body.len()
            );
        }
    }
    Ok(Answer {
        status,
        body,
        headers,
    })
}

/// `s` with the characters a query value cannot hold percent-encoded.
pub(crate) fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A result's output `name` (`stdout`, `stderr`) as the program wrote it: its exact bytes
/// (`stdout_base64`) when the text is not all of it, which happens when they are not UTF-8.
pub(crate) fn exact_output<'a>(result: &'a serde_json::Value, name: &str) -> Cow<'a, [u8]> {
    use base64::Engine as _;
    let decoded = result[format!("{name}_base64")]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    match decoded {
        Some(bytes) => Cow::Owned(bytes),
        None => Cow::Borrowed(result[name].as_str().unwrap_or_default().as_bytes()),
    }
}

/// `bytes` in base64, as the API's `stdin_base64` and `"encoding": "base64"` files take them.
pub(crate) fn base64_text(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_bad_ones_are_refused() {
        let c = Client::new("http://127.0.0.1:2358", None).expect("valid");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 2358));
        let c = Client::new("http://[::1]:80/", Some(String::new())).expect("valid");
        assert_eq!((c.host.as_str(), c.port, c.token), ("::1", 80, None));
        assert!(Client::new("https://example:1", None).is_err());
        assert!(Client::new("http://:1", None).is_err());
        assert!(Client::new("http://h:port", None).is_err());
    }

    #[test]
    fn answers_read_by_length_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let answer = read_answer(&plain[..]).expect("read");
        assert_eq!((answer.status, answer.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(answer.header("content-length"), Some("2"));
        assert_eq!(answer.header("server-timing"), None);
        let chunked =
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let answer = read_answer(&chunked[..]).expect("read");
        assert_eq!(
            (answer.status, answer.body.as_slice()),
            (404, &b"abcde"[..])
        );
        assert!(read_answer(&b"garbage\r\n\r\n"[..]).is_err());
    }

    #[test]
    fn an_answer_shorter_than_it_announced_is_an_error() {
        // Hunt sess 2: a download cut short by the server (its file shrank while it was sent)
        // was saved as the file, and `warden session cp` exited 0.
        let cut = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabcd";
        let e = read_answer(&cut[..]).expect_err("cut short");
        assert!(e.to_string().contains("after 4 of the 10 bytes"), "{e}");
        let chunk = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nabc";
        assert!(read_answer(&chunk[..]).is_err());
        let huge = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\nab",
            MAX_ANSWER + 1
        );
        assert!(read_answer(huge.as_bytes()).is_err());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_value("a b/c&d"), "a%20b/c%26d");
    }
}
