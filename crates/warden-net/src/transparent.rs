//! The target of the transparent redirect (`127.0.0.1:15001`): every TCP connection a program
//! opens to a non-loopback address arrives here (`interception.rs`), and `SO_ORIGINAL_DST`
//! says where it was going. A synthetic address stands for its name. A denied connection is
//! reset at once. Runs on the proxy's runtime.
//!
//! Man pages: the `SO_ORIGINAL_DST` option is undocumented; see `nf_conntrack`'s
//! `getorigdst()` in the kernel (`net/netfilter/nf_conntrack_proto.c`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use nix::sys::socket::{getsockopt, sockopt::OriginalDst};
use tokio::net::TcpStream;

use crate::egress::{self, Destination};
use crate::proxy::Shared;
use crate::relay::{self, conclude, Ending, Inspection};

/// Serves one intercepted connection.
pub(crate) async fn serve(shared: &Shared, mut client: TcpStream) {
    let original = match original_destination(&client) {
        // A connection made to 15001 itself was never redirected: conntrack still answers
        // for it, with the address as dialled, the listener's own, which is no destination
        // of the program's (it was judged and logged as the host's 127.0.0.1:15001).
        Ok(original) if client.local_addr().is_ok_and(|own| own == original) => {
            tracing::debug!(%original, "a connection to the redirect's own port");
            return reset(client);
        }
        Ok(original) => original,
        Err(e) => {
            tracing::debug!(error = %e, "no original destination");
            return reset(client);
        }
    };
    let dest = Destination::address(original.ip(), original.port(), &shared.pool);
    let protocol = egress::tunnel_protocol(shared, &dest);
    let mut rec = shared.recording(protocol, &dest);
    let upstream = match egress::open(shared, &dest, &mut rec).await {
        Ok(upstream) => upstream,
        Err(_) => return reset(client),
    };
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
    let refused = matches!(ending, Ending::Refused(_));
    conclude(&mut rec, ending, &client).await;
    if refused {
        reset(client);
    }
}

/// Where the program connected before the redirect (`getsockopt(SOL_IP, SO_ORIGINAL_DST)`).
pub(crate) fn original_destination(client: &TcpStream) -> io::Result<SocketAddr> {
    let original = getsockopt(client, OriginalDst)?;
    Ok(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(original.sin_addr.s_addr)),
        u16::from_be(original.sin_port),
    )))
}

/// Closes with a reset rather than a FIN: the program's connect looked successful (the
/// redirect accepted it), and a reset is the nearest thing to "refused" it can still get.
pub(crate) fn reset(client: TcpStream) {
    if let Err(e) = client.set_zero_linger() {
        tracing::debug!(error = %e, "SO_LINGER not set; closing normally");
    }
}
