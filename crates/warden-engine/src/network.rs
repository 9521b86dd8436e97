//! Network policies as the engine serves them: the store of built-in and imported policies
//! (`store.rs`), the discovery of the package registries the host's package managers use
//! (`registries.rs`), what a policy decides for a destination (`check.rs`), and the addresses
//! the running servers registered as warden's own services (`services.rs`). The policy model
//! and its evaluation are `warden_core::network`'s.

pub mod check;
pub mod registries;
pub mod services;
pub mod store;

pub use check::{check, CheckReport, HostFacts, ResolveError, Verdict};
pub use registries::{discover, host_registries, HostView};
pub use services::{running_services, Registration};
pub use store::{PolicyOrigin, PolicyStore, StoreError, StoredPolicy};

use std::net::IpAddr;

use warden_core::network::IpNet;

/// What of this host no policy lets a sandbox reach, beside the fixed deny set: its own
/// addresses, the networks it has an address on, and its gateways (`warden_net::host_networks`:
/// read at each call, about 55 µs, so only where a policy that lets traffic out is used).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSurroundings {
    /// Every address of every interface, loopback included.
    pub addrs: Vec<IpAddr>,
    /// The network of every interface address.
    pub networks: Vec<IpNet>,
    /// The gateway of every route through one, and every point-to-point peer.
    pub gateways: Vec<IpAddr>,
}

impl HostSurroundings {
    /// This host's, read now.
    pub fn read() -> Self {
        Self::from(warden_net::host_networks())
    }
}

impl From<warden_net::HostNetworks> for HostSurroundings {
    fn from(found: warden_net::HostNetworks) -> Self {
        Self {
            addrs: found.addresses,
            // Each is its address masked by its prefix: valid by construction.
            networks: found
                .networks
                .into_iter()
                .filter_map(|(first, prefix)| IpNet::new(first, prefix).ok())
                .collect(),
            gateways: found.gateways,
        }
    }
}
