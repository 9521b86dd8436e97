//! The resolver inside the sandbox (`127.0.0.1:53`, UDP and TCP). It answers an A question
//! only for a name the policy may allow, with the name's synthetic address (`synthetic.rs`);
//! other questions about such a name get an empty answer (no AAAA: IPv6 has no route anyway),
//! and every other name is NXDOMAIN at once. It never forwards a question anywhere, so DNS is
//! no side channel out of the sandbox. Every message is logged, a malformed one too. Runs on
//! the proxy's runtime.

mod message;

use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::decider::Protocol;
use crate::egress;
use crate::listeners::DNS_PORT;
use crate::proxy::Shared;
use crate::record::ConnectionRecord;
use message::{Query, Rcode, Unanswerable, CLASS_IN, TYPE_A};

/// The TTL of an answer: the mapping lives as long as the execution.
const TTL_SECONDS: u32 = 3600;

/// Answers questions on the UDP socket until the proxy stops. The stop is looked for between
/// questions: queued questions are read without a pause, and an answer takes the thread until
/// it is given, so the task's abort alone waited for the queue (hunt net 3: hundreds of
/// questions, each seconds of CPU under a large policy, answered after the stop).
pub(crate) async fn serve_udp(shared: Arc<Shared>, socket: UdpSocket) {
    // EDNS allows 4096-byte queries; a question is far smaller, but read whole datagrams.
    let mut buf = vec![0; 4096];
    while !shared.log.is_stopping() {
        match socket.recv_from(&mut buf).await {
            Ok((len, peer)) => {
                if let Some(reply) = answer(&shared, &buf[..len]) {
                    if let Err(e) = socket.send_to(&reply, peer).await {
                        tracing::debug!(error = %e, %peer, "dns reply not sent");
                    }
                }
            }
            // An ICMP error for an earlier reply surfaces here; the socket is still fine.
            Err(e) => tracing::debug!(error = %e, "dns receive failed"),
        }
    }
}

/// Answers the questions of one TCP connection (length-prefixed, RFC 1035 §4.2.2), the stop
/// looked for between them as [`serve_udp`] does.
pub(crate) async fn serve_tcp(shared: &Shared, mut stream: TcpStream) {
    let idle = shared.limits.idle_timeout;
    while !shared.log.is_stopping() {
        let read = async {
            let len = usize::from(stream.read_u16().await?);
            let mut msg = vec![0; len];
            stream.read_exact(&mut msg).await?;
            Ok::<_, std::io::Error>(msg)
        };
        let Ok(Ok(msg)) = tokio::time::timeout(idle, read).await else {
            return;
        };
        let Some(reply) = answer(shared, &msg) else {
            return;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The response to one message, logged; `None` for a message not worth one.
fn answer(shared: &Shared, msg: &[u8]) -> Option<Vec<u8>> {
    let query = match message::parse(msg) {
        Ok(query) => query,
        Err(header) => {
            let reply =
                header.map(|(id, flags, rcode)| message::response(id, flags, rcode, None, None));
            log_unread(shared, msg, header, reply.as_deref());
            return reply;
        }
    };
    let (mut rcode, mut addr, allowed, mut reason) = decide(shared, &query);
    // Nothing is answered that the traffic log cannot keep.
    let admitted = allowed && shared.log.admit(query.name.as_deref());
    if allowed && !admitted {
        (rcode, addr, reason) = (Rcode::Refused, None, crate::egress::LOG_FULL.to_owned());
    }
    tracing::debug!(name = ?query.name, qtype = query.qtype, ?rcode, "dns question");
    let answer = addr.map(|addr| (addr, TTL_SECONDS));
    let reply = message::response(query.id, query.flags, rcode, Some(query.question), answer);
    shared.log.push(
        ConnectionRecord {
            started: SystemTime::now(),
            protocol: Protocol::Dns,
            // A name that is none, as sent (hunt netlog 3: logged as no host at all).
            host: Some(
                query
                    .name
                    .clone()
                    .unwrap_or_else(|| egress::shown(&query.asked)),
            ),
            addr: None,
            port: DNS_PORT,
            allowed: admitted,
            rule: if query.name.is_none() {
                egress::INVALID_NAME
            } else if allowed && !admitted {
                "limits"
            } else {
                "resolver"
            }
            .to_owned(),
            reason,
            bytes_up: msg.len() as u64,
            bytes_down: reply.len() as u64,
            duration: std::time::Duration::ZERO,
            cut_by: None,
            repeats: 0,
        },
        admitted,
    );
    Some(reply)
}

/// Logs a message that is no query the resolver can read, refused by
/// [`egress::MALFORMED`], answered (`reply`) or not (hunt netlog 3: answered, logged nowhere).
fn log_unread(shared: &Shared, msg: &[u8], header: Unanswerable, reply: Option<&[u8]>) {
    let reason = match header {
        None if msg.len() < 12 => "a DNS message shorter than its header",
        None => "a DNS response, not a query",
        Some((_, _, Rcode::NotImp)) => "a DNS message whose opcode is not QUERY",
        Some(_) => "a DNS message that is not one well-formed question",
    };
    shared.log.push(
        ConnectionRecord {
            started: SystemTime::now(),
            protocol: Protocol::Dns,
            host: None,
            addr: None,
            port: DNS_PORT,
            allowed: false,
            rule: egress::MALFORMED.to_owned(),
            reason: reason.to_owned(),
            bytes_up: msg.len() as u64,
            bytes_down: reply.map_or(0, |reply| reply.len() as u64),
            duration: std::time::Duration::ZERO,
            cut_by: None,
            repeats: 0,
        },
        false,
    );
}

fn decide(shared: &Shared, query: &Query<'_>) -> (Rcode, Option<std::net::Ipv4Addr>, bool, String) {
    let Some(name) = &query.name else {
        return (Rcode::NxDomain, None, false, egress::invalid_name_reason());
    };
    if query.qclass != CLASS_IN {
        return (Rcode::Refused, None, false, "class other than IN".into());
    }
    if !shared.decider.may_resolve(name) {
        let reason = "no rule of the policy can allow this name".into();
        return (Rcode::NxDomain, None, false, reason);
    }
    if query.qtype != TYPE_A {
        return (Rcode::NoError, None, true, "no record of this type".into());
    }
    match shared.pool.address_for(name) {
        Some(addr) => (Rcode::NoError, Some(addr), true, format!("answered {addr}")),
        None => {
            let reason = "the execution's synthetic addresses are used up".into();
            (Rcode::Refused, None, false, reason)
        }
    }
}
