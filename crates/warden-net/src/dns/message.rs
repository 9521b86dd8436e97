//! The DNS wire format, as much as the sandbox's resolver needs: one question in, a response
//! with at most one A record out. No name compression is accepted in questions (stub resolvers
//! never compress the only name), none is needed in answers beyond a pointer to the question.
//!
//! RFC 1035 §4.1.

use std::net::Ipv4Addr;

/// Record type A (an IPv4 address).
pub(crate) const TYPE_A: u16 = 1;
/// Class IN.
pub(crate) const CLASS_IN: u16 = 1;

/// Response codes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rcode {
    NoError = 0,
    FormErr = 1,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
}

/// A query's single question.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Query<'a> {
    pub(crate) id: u16,
    pub(crate) flags: u16,
    /// The name, lower case without the trailing dot; `None` when it is not a host name.
    pub(crate) name: Option<String>,
    /// The name as sent: its labels joined by dots (at most 255 bytes).
    pub(crate) asked: Vec<u8>,
    pub(crate) qtype: u16,
    pub(crate) qclass: u16,
    /// The question section as sent, echoed in the response.
    pub(crate) question: &'a [u8],
}

/// Why a message is not a query this resolver answers: `None` to drop it (too short to
/// answer, or itself a response), otherwise the header to answer with an error.
pub(crate) type Unanswerable = Option<(u16, u16, Rcode)>;

/// Parses a query.
pub(crate) fn parse(msg: &[u8]) -> Result<Query<'_>, Unanswerable> {
    let Some(header) = msg.get(..12) else {
        return Err(None);
    };
    let field = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let (id, flags, qdcount) = (field(0), field(2), field(4));
    if flags & 0x8000 != 0 {
        return Err(None);
    }
    if (flags >> 11) & 0xF != 0 {
        return Err(Some((id, flags, Rcode::NotImp)));
    }
    let formerr = Some((id, flags, Rcode::FormErr));
    if qdcount != 1 {
        return Err(formerr);
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*msg.get(at).ok_or(formerr)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return Err(formerr); // a compression pointer, or a reserved label type
        }
        labels.push(msg.get(at..at + len).ok_or(formerr)?);
        at += len;
        if at - 12 > 255 {
            return Err(formerr);
        }
    }
    let tail = msg.get(at..at + 4).ok_or(formerr)?;
    Ok(Query {
        id,
        flags,
        name: host_name(&labels),
        asked: labels.join(&b'.'),
        qtype: u16::from_be_bytes([tail[0], tail[1]]),
        qclass: u16::from_be_bytes([tail[2], tail[3]]),
        question: &msg[12..at + 4],
    })
}

fn host_name(labels: &[&[u8]]) -> Option<String> {
    let text: Vec<&str> = labels
        .iter()
        .map(|label| std::str::from_utf8(label).ok())
        .collect::<Option<_>>()?;
    warden_core::network::normalize_name(&text.join("."))
}

/// A response to the query with header `id`/`flags`, echoing `question` when known, with
/// `answer` as its only A record.
pub(crate) fn response(
    id: u16,
    flags: u16,
    rcode: Rcode,
    question: Option<&[u8]>,
    answer: Option<(Ipv4Addr, u32)>,
) -> Vec<u8> {
    // QR, the request's opcode and RD, AA (warden is the authority here), RA.
    let flags = 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode as u16;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&u16::from(question.is_some()).to_be_bytes());
    out.extend_from_slice(&u16::from(answer.is_some()).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    if let Some(question) = question {
        out.extend_from_slice(question);
    }
    if let Some((addr, ttl)) = answer {
        // The owner name points at the question's name, at offset 12.
        out.extend_from_slice(&[0xC0, 12]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&addr.octets());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query as a stub resolver sends it (RD set).
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut msg = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            msg.push(u8::try_from(label.len()).expect("short label"));
            msg.extend_from_slice(label.as_bytes());
        }
        msg.push(0);
        msg.extend_from_slice(&qtype.to_be_bytes());
        msg.extend_from_slice(&CLASS_IN.to_be_bytes());
        msg
    }

    #[test]
    fn a_query_is_parsed_and_answered() {
        let msg = query("Svc.Example", TYPE_A);
        let q = parse(&msg).expect("a query");
        assert_eq!(q.name.as_deref(), Some("svc.example"));
        assert_eq!((q.id, q.qtype, q.qclass), (0x1234, TYPE_A, CLASS_IN));
        let addr = Ipv4Addr::new(198, 18, 0, 1);
        let out = response(
            q.id,
            q.flags,
            Rcode::NoError,
            Some(q.question),
            Some((addr, 60)),
        );
        assert_eq!(&out[..2], &[0x12, 0x34]);
        assert_eq!(out[2] & 0x80, 0x80, "QR");
        assert_eq!(out[3] & 0x0F, 0, "NOERROR");
        assert_eq!(&out[6..8], &[0, 1], "one answer");
        assert_eq!(&out[out.len() - 4..], &addr.octets());
    }

    #[test]
    fn bad_messages_get_an_error_or_nothing() {
        assert_eq!(parse(&[0; 5]), Err(None));
        let mut response_msg = query("a.test", TYPE_A);
        response_msg[2] |= 0x80;
        assert_eq!(parse(&response_msg), Err(None));
        let mut two = query("a.test", TYPE_A);
        two[5] = 2;
        assert!(matches!(parse(&two), Err(Some((_, _, Rcode::FormErr)))));
        let mut truncated = query("a.test", TYPE_A);
        truncated.truncate(15);
        assert!(matches!(
            parse(&truncated),
            Err(Some((_, _, Rcode::FormErr)))
        ));
        let mut status = query("a.test", TYPE_A);
        status[2] |= 2 << 3; // opcode STATUS
        assert!(matches!(parse(&status), Err(Some((_, _, Rcode::NotImp)))));
        let odd = query("a b.test", TYPE_A);
        let odd = parse(&odd).expect("parsed");
        assert_eq!((odd.name, &odd.asked[..]), (None, &b"a b.test"[..]));
    }
}
