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
/// This host's own addresses, in the deny set of every policy.
pub use warden_net::host_addresses;
