//! Reading the server name (SNI) out of a TLS ClientHello, so that a tunnel allowed for one
//! host cannot carry a TLS session to another (domain fronting, a shared CDN address). Only
//! the record layer and the ClientHello's fixed fields are parsed; nothing is decrypted, and
//! the bytes are forwarded unchanged once checked. Runs on the proxy's runtime.
//!
//! RFC 8446 §4.1.2 (ClientHello), §5.1 (records); RFC 6066 §3 (server_name).

/// A ClientHello larger than this is refused rather than buffered further (real ones are a
/// few KiB, post-quantum key shares included).
const MAX_HELLO: usize = 64 * 1024;

/// What the first bytes of a tunnel are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FirstBytes {
    /// Not enough bytes yet to tell.
    Incomplete,
    /// Not a TLS handshake.
    NotTls,
    /// A complete ClientHello, with its host name if it has one.
    ClientHello { server_name: Option<String> },
    /// A TLS handshake record that is not a well-formed ClientHello.
    Malformed(&'static str),
}

#[cfg(test)]
thread_local! {
    /// Bytes [`parse`] looked at on this thread: the work a trickled ClientHello costs.
    pub(crate) static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn scanned(n: usize) {
    SCANNED.with(|scanned| scanned.set(scanned.get() + n));
}

/// Classifies the first bytes the client sent through a tunnel, all at once.
#[cfg(test)]
pub(crate) fn parse(buf: &[u8]) -> FirstBytes {
    Hello::default().parse(buf)
}

/// A ClientHello read so far: the records the bytes before `at` hold, reassembled. Asked again
/// as more bytes arrive, it parses only the records completed since, so that a hello sent as
/// many tiny records, a byte per write, costs work in its size, not its square.
#[derive(Debug, Default)]
pub(crate) struct Hello {
    /// Where the first record not read yet starts.
    at: usize,
    /// The fragments of the records before `at`: the handshake message so far.
    handshake: Vec<u8>,
}

impl Hello {
    /// Classifies the first bytes the client sent through a tunnel. `buf` is every byte the
    /// client sent so far: what an earlier call saw, and more after it. Not asked again once it
    /// answered anything but [`FirstBytes::Incomplete`].
    pub(crate) fn parse(&mut self, buf: &[u8]) -> FirstBytes {
        match buf {
            [] => return FirstBytes::Incomplete,
            [first, ..] if *first != 0x16 => return FirstBytes::NotTls,
            [_] => return FirstBytes::Incomplete,
            [_, major, ..] if *major != 3 => return FirstBytes::NotTls,
            _ => {}
        }
        loop {
            let at = self.at;
            let Some(header) = buf.get(at..at + 5) else {
                return incomplete(buf);
            };
            #[cfg(test)]
            scanned(5);
            if header[0] != 0x16 {
                return FirstBytes::Malformed(
                    "a record other than handshake inside the ClientHello",
                );
            }
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if len == 0 || len > (1 << 14) {
                return FirstBytes::Malformed("a record length out of range");
            }
            let Some(fragment) = buf.get(at + 5..at + 5 + len) else {
                return incomplete(buf);
            };
            #[cfg(test)]
            scanned(len);
            self.handshake.extend_from_slice(fragment);
            self.at = at + 5 + len;
            if let [kind, a, b, c, ..] = self.handshake[..] {
                if kind != 1 {
                    return FirstBytes::Malformed(
                        "the first handshake message is not a ClientHello",
                    );
                }
                let body_len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                if body_len > MAX_HELLO {
                    return FirstBytes::Malformed("a ClientHello larger than 64 KiB");
                }
                if let Some(body) = self.handshake.get(4..4 + body_len) {
                    return match server_name(body) {
                        Ok(server_name) => FirstBytes::ClientHello { server_name },
                        Err(why) => FirstBytes::Malformed(why),
                    };
                }
            }
        }
    }
}

fn incomplete(buf: &[u8]) -> FirstBytes {
    if buf.len() > MAX_HELLO + 1024 {
        FirstBytes::Malformed("a ClientHello larger than 64 KiB")
    } else {
        FirstBytes::Incomplete
    }
}

/// The host name of a ClientHello's body; an error for two of them (RFC 6066 allows one, and a
/// server might pick a different one than this check).
fn server_name(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut hello = Cursor(body);
    hello.take(2 + 32)?; // legacy_version, random
    let session_id = hello.u8()?;
    hello.take(usize::from(session_id))?;
    let suites = hello.u16()?;
    hello.take(usize::from(suites))?;
    let compression = hello.u8()?;
    hello.take(usize::from(compression))?;
    if hello.0.is_empty() {
        return Ok(None); // no extensions at all
    }
    let extensions_len = hello.u16()?;
    let mut extensions = Cursor(hello.take(usize::from(extensions_len))?);
    let mut found = None;
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let len = extensions.u16()?;
        let data = extensions.take(usize::from(len))?;
        if kind == 0 {
            if found.is_some() {
                return Err("two server_name extensions");
            }
            found = Some(host_name(data)?);
        }
    }
    Ok(found)
}

fn host_name(extension: &[u8]) -> Result<String, &'static str> {
    let mut data = Cursor(extension);
    let list_len = data.u16()?;
    let mut list = Cursor(data.take(usize::from(list_len))?);
    let mut found = None;
    while !list.0.is_empty() {
        let kind = list.u8()?;
        let len = list.u16()?;
        let name = list.take(usize::from(len))?;
        if kind == 0 {
            if found.is_some() {
                return Err("two host names in server_name");
            }
            let text = std::str::from_utf8(name).map_err(|_| "a server name that is not text")?;
            found = Some(text.to_owned());
        }
    }
    found.ok_or("a server_name extension without a host name")
}

/// Reads big-endian fields off the front of a slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err("a ClientHello field runs past its end");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }
}

/// A minimal ClientHello naming `server_name` (or none), for tests: the fields a parser
/// walks, one cipher suite, the server_name extension.
#[cfg(test)]
pub(crate) fn client_hello(server_name: Option<&str>) -> Vec<u8> {
    padded_client_hello(server_name, None)
}

/// [`client_hello`] with a padding extension (RFC 7685) of `padding` zero bytes after the
/// server_name, as browsers send to grow a hello.
#[cfg(test)]
pub(crate) fn padded_client_hello(server_name: Option<&str>, padding: Option<u16>) -> Vec<u8> {
    let mut extensions = Vec::new();
    if let Some(name) = server_name {
        let name = name.as_bytes();
        let entry_len = u16::try_from(name.len() + 3).expect("short name");
        extensions.extend_from_slice(&[0, 0]);
        extensions.extend_from_slice(&(entry_len + 2).to_be_bytes());
        extensions.extend_from_slice(&entry_len.to_be_bytes());
        extensions.push(0);
        extensions.extend_from_slice(&u16::try_from(name.len()).expect("short").to_be_bytes());
        extensions.extend_from_slice(name);
    }
    if let Some(padding) = padding {
        extensions.extend_from_slice(&[0, 21]);
        extensions.extend_from_slice(&padding.to_be_bytes());
        extensions.resize(extensions.len() + usize::from(padding), 0);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(
        &u16::try_from(extensions.len())
            .expect("short")
            .to_be_bytes(),
    );
    body.extend_from_slice(&extensions);
    let body_len = u32::try_from(body.len()).expect("short").to_be_bytes();
    let mut handshake = vec![1, body_len[1], body_len[2], body_len[3]];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("short").to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_read_from_a_complete_hello() {
        let hello = client_hello(Some("Example.test"));
        assert_eq!(
            parse(&hello),
            FirstBytes::ClientHello {
                server_name: Some("Example.test".into())
            }
        );
        assert_eq!(
            parse(&client_hello(None)),
            FirstBytes::ClientHello { server_name: None }
        );
    }

    #[test]
    fn a_partial_hello_asks_for_more_and_other_bytes_are_not_tls() {
        let hello = client_hello(Some("example.test"));
        for cut in [1, 4, 5, 20, hello.len() - 1] {
            assert_eq!(parse(&hello[..cut]), FirstBytes::Incomplete, "cut at {cut}");
        }
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), FirstBytes::NotTls);
        assert_eq!(parse(b"\x16\x01"), FirstBytes::NotTls);
    }

    #[test]
    fn a_hello_split_over_two_records_is_reassembled() {
        let hello = client_hello(Some("split.test"));
        let handshake = &hello[5..];
        let (a, b) = handshake.split_at(10);
        let mut split = Vec::new();
        for part in [a, b] {
            split.extend_from_slice(&[0x16, 3, 1]);
            split.extend_from_slice(&u16::try_from(part.len()).expect("short").to_be_bytes());
            split.extend_from_slice(part);
        }
        assert_eq!(
            parse(&split),
            FirstBytes::ClientHello {
                server_name: Some("split.test".into())
            }
        );
    }

    #[test]
    fn a_hello_asked_after_every_byte_answers_as_one_parsed_whole() {
        let hello = client_hello(Some("bytes.test"));
        let mut records = Vec::new();
        for byte in &hello[5..] {
            records.extend_from_slice(&[0x16, 3, 1, 0, 1, *byte]);
        }
        let mut not_handshake = hello.clone();
        not_handshake[5] = 2;
        let mut name_too_long = hello.clone();
        let at = name_too_long.len() - "bytes.test".len() - 1;
        name_too_long[at] = 200;
        for bytes in [hello, records, not_handshake, name_too_long] {
            let mut incremental = Hello::default();
            for end in 0..=bytes.len() {
                let answer = incremental.parse(&bytes[..end]);
                assert_eq!(answer, parse(&bytes[..end]), "{bytes:?} cut at {end}");
                if answer != FirstBytes::Incomplete {
                    assert_eq!(end, bytes.len(), "answered before the end: {bytes:?}");
                    break;
                }
            }
        }
    }

    #[test]
    fn a_hello_sent_a_byte_a_record_is_refused_past_the_bound() {
        // A hello of the largest size allowed, each byte a record: six bytes a byte.
        let body_len = u32::try_from(MAX_HELLO).expect("small").to_be_bytes();
        let mut handshake = vec![1, body_len[1], body_len[2], body_len[3]];
        handshake.resize(4 + MAX_HELLO, 0);
        let mut bytes = Vec::new();
        for byte in handshake {
            bytes.extend_from_slice(&[0x16, 3, 1, 0, 1, byte]);
        }
        let mut hello = Hello::default();
        let mut end = 0;
        let answer = loop {
            end += 1;
            match hello.parse(&bytes[..end]) {
                FirstBytes::Incomplete => {}
                answer => break answer,
            }
        };
        assert_eq!(
            answer,
            FirstBytes::Malformed("a ClientHello larger than 64 KiB")
        );
        assert_eq!(end, MAX_HELLO + 1025, "refused once past the bound");
    }

    #[test]
    fn a_name_running_past_its_extension_is_malformed() {
        let mut hello = client_hello(Some("example.test"));
        // Claim a longer name than the extension holds.
        let at = hello.len() - "example.test".len() - 1;
        hello[at] = 200;
        assert!(
            matches!(parse(&hello), FirstBytes::Malformed(_)),
            "{hello:?}"
        );
    }
}
