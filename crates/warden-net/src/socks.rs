//! The SOCKS5 proxy inside the sandbox (`127.0.0.1:1080`, what `ALL_PROXY=socks5h://` names):
//! no authentication, CONNECT only, destinations as domain names, IPv4 or IPv6 addresses. A
//! denial is reply `0x02` ("connection not allowed by ruleset"), at once. Runs on the proxy's
//! runtime.
//!
//! RFC 1928.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::egress::{self, Destination, Refusal};
use crate::proxy::Shared;
use crate::relay::{self, conclude, Inspection};

const VERSION: u8 = 5;
const NO_AUTHENTICATION: u8 = 0;
const NO_ACCEPTABLE_METHOD: u8 = 0xFF;
const CMD_CONNECT: u8 = 1;

/// Reply codes (RFC 1928 §6).
mod reply {
    pub(super) const SUCCEEDED: u8 = 0;
    pub(super) const GENERAL_FAILURE: u8 = 1;
    pub(super) const NOT_ALLOWED: u8 = 2;
    pub(super) const HOST_UNREACHABLE: u8 = 4;
    pub(super) const CONNECTION_REFUSED: u8 = 5;
    pub(super) const TTL_EXPIRED: u8 = 6;
    pub(super) const COMMAND_NOT_SUPPORTED: u8 = 7;
    pub(super) const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 8;
}

/// What the client's request named.
enum Requested {
    /// As sent: bytes that are not UTF-8 are no host name, and are logged as they were.
    Name(Vec<u8>),
    Addr(IpAddr),
}

/// Serves one client connection: the handshake, then one tunnel.
pub(crate) async fn serve(shared: &Shared, mut client: TcpStream) {
    let handshake = tokio::time::timeout(shared.limits.idle_timeout, handshake(&mut client));
    let (requested, port) = match handshake.await {
        Ok(Ok(Ok(request))) => request,
        Ok(Ok(Err(code))) => return send_reply(&mut client, code).await,
        Ok(Err(_)) | Err(_) => return,
    };
    let dest = match requested {
        Requested::Addr(addr) => Destination::address(addr, port, &shared.pool),
        Requested::Name(name) => match std::str::from_utf8(&name)
            .ok()
            .and_then(|name| Destination::named(name, port, &shared.pool))
        {
            Some(dest) => dest,
            None => {
                let protocol = egress::invalid_tunnel_protocol(port);
                let refusal = egress::refuse_invalid(shared, protocol, &name, port);
                return send_reply(&mut client, refusal_code(&refusal)).await;
            }
        },
    };
    let protocol = egress::tunnel_protocol(shared, &dest);
    let mut rec = shared.recording(protocol, &dest);
    let upstream = match egress::open(shared, &dest, &mut rec).await {
        Ok(upstream) => upstream,
        Err(refusal) => return send_reply(&mut client, refusal_code(&refusal)).await,
    };
    if client
        .write_all(&reply_bytes(reply::SUCCEEDED))
        .await
        .is_err()
    {
        return rec.ended(None);
    }
    let inspection = Inspection::tunnel(protocol, &dest, &upstream);
    let ending = relay::run(
        shared,
        &mut client,
        upstream,
        Vec::new(),
        inspection,
        &rec.meter,
    )
    .await;
    conclude(&mut rec, ending, &client).await;
}

/// Method negotiation and the request; the inner error is the reply code to refuse with.
async fn handshake(client: &mut TcpStream) -> std::io::Result<Result<(Requested, u16), u8>> {
    let [version, count] = read_array(client).await?;
    if version != VERSION {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut methods = vec![0; usize::from(count)];
    client.read_exact(&mut methods).await?;
    if !methods.contains(&NO_AUTHENTICATION) {
        client.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await?;
        return Err(std::io::ErrorKind::PermissionDenied.into());
    }
    client.write_all(&[VERSION, NO_AUTHENTICATION]).await?;
    let [version, command, _reserved, address_type] = read_array(client).await?;
    if version != VERSION {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let requested = match address_type {
        1 => Requested::Addr(IpAddr::V4(Ipv4Addr::from(read_array::<4>(client).await?))),
        3 => {
            let len = client.read_u8().await?;
            let mut name = vec![0; usize::from(len)];
            client.read_exact(&mut name).await?;
            // Not UTF-8 is no host name either: refused as one, and logged escaped (`\xff`).
            Requested::Name(name)
        }
        4 => Requested::Addr(IpAddr::V6(Ipv6Addr::from(read_array::<16>(client).await?))),
        _ => return Ok(Err(reply::ADDRESS_TYPE_NOT_SUPPORTED)),
    };
    let port = client.read_u16().await?;
    if command != CMD_CONNECT {
        return Ok(Err(reply::COMMAND_NOT_SUPPORTED));
    }
    Ok(Ok((requested, port)))
}

async fn read_array<const N: usize>(client: &mut TcpStream) -> std::io::Result<[u8; N]> {
    let mut bytes = [0; N];
    client.read_exact(&mut bytes).await?;
    Ok(bytes)
}

fn refusal_code(refusal: &Refusal) -> u8 {
    match refusal {
        Refusal::Denied(_) | Refusal::Limit(_) => reply::NOT_ALLOWED,
        Refusal::Unresolvable(_) => reply::HOST_UNREACHABLE,
        Refusal::Unreachable(std::io::ErrorKind::ConnectionRefused, _) => reply::CONNECTION_REFUSED,
        Refusal::Unreachable(..) => reply::GENERAL_FAILURE,
        Refusal::TimedOut(_) => reply::TTL_EXPIRED,
    }
}

/// A reply with an unspecified bound address: the program has no use for warden's.
fn reply_bytes(code: u8) -> [u8; 10] {
    [VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

async fn send_reply(client: &mut TcpStream, code: u8) {
    // The client may be gone already; there is no one else to tell.
    let _ = client.write_all(&reply_bytes(code)).await;
    let _ = client.shutdown().await;
}
