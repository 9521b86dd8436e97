//! Synthetic addresses: the resolver inside the sandbox answers an allowed name with an address
//! from a reserved range, unique to the name for the proxy, and the proxy maps a connection to
//! that address back to the name. The program never learns a real address, a real lookup never
//! happens on its behalf (no DNS side channel), and a connection that ignores the proxy
//! variables still arrives with its host name. The proxies of one execution, or of one session
//! over its calls, draw their addresses from one [`SyntheticSequence`]: an address one of them
//! handed out is no other name's in a later one, but an address it never handed out (refused as
//! `synthetic`). Runs on the proxy's runtime.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The range synthetic addresses come from: `198.18.0.0/15`, reserved for benchmarking
/// (RFC 2544), so it is never a real destination.
pub const SYNTHETIC_NETWORK: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// Names one proxy may have addresses for: bounds warden's memory against a program that
/// resolves endless names under an allowed wildcard.
const CAPACITY: u32 = 16_384;

/// The addresses of the range a name can be given: all but its first (the network's own) and
/// its last (its broadcast).
const RANGE: u32 = (1 << (32 - SYNTHETIC_NETWORK.1 as u32)) - 2;

/// The synthetic addresses handed out so far by the proxies that share it: those of one
/// execution's sandboxes, or a session's calls (each call runs a proxy of its own, whose
/// mapping is its own). Each proxy takes its next addresses after the last one given, so that
/// a program that kept an address from an earlier call (a file, a cache) meets a refusal
/// (`synthetic`), not another name. The sequence wraps after the range's 131070 addresses:
/// an address comes back only after that many others.
#[derive(Debug, Clone, Default)]
pub struct SyntheticSequence(Arc<AtomicU32>);

impl SyntheticSequence {
    /// The next address's place in the range, from 0.
    fn next(&self) -> u32 {
        // The closure always answers: `Err` cannot happen, and would carry the same value.
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some((n + 1) % RANGE)
            })
            .unwrap_or_else(|n| n)
    }
}

/// The name ↔ address mapping of one proxy.
#[derive(Debug, Default)]
pub(crate) struct SyntheticPool {
    inner: Mutex<Mapping>,
    sequence: SyntheticSequence,
}

#[derive(Debug, Default)]
struct Mapping {
    by_name: HashMap<String, Ipv4Addr>,
    by_addr: HashMap<Ipv4Addr, String>,
}

impl SyntheticPool {
    /// A pool whose addresses come from `sequence`, after those given before.
    pub(crate) fn drawing_from(sequence: SyntheticSequence) -> Self {
        Self {
            inner: Mutex::default(),
            sequence,
        }
    }

    /// The address of `name`, given out now if it had none; `None` when the pool is full.
    pub(crate) fn address_for(&self, name: &str) -> Option<Ipv4Addr> {
        let mut mapping = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(addr) = mapping.by_name.get(name) {
            return Some(*addr);
        }
        let held = u32::try_from(mapping.by_name.len()).ok()?;
        if held >= CAPACITY {
            return None;
        }
        // From .0.1 on: .0.0 is the network's own address. Within one pool the addresses do
        // not repeat: it holds fewer than the range has.
        let addr = Ipv4Addr::from(u32::from(SYNTHETIC_NETWORK.0) + 1 + self.sequence.next());
        mapping.by_name.insert(name.to_owned(), addr);
        mapping.by_addr.insert(addr, name.to_owned());
        Some(addr)
    }

    /// The name behind a synthetic address, if it was given out.
    pub(crate) fn name_of(&self, addr: IpAddr) -> Option<String> {
        let IpAddr::V4(v4) = addr else { return None };
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_addr
            .get(&v4)
            .cloned()
    }
}

/// Whether `addr` is in the synthetic range.
pub(crate) fn is_synthetic(addr: IpAddr) -> bool {
    let IpAddr::V4(v4) = addr else { return false };
    let (network, prefix) = SYNTHETIC_NETWORK;
    let mask = u32::MAX << (32 - u32::from(prefix));
    u32::from(v4) & mask == u32::from(network)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_its_address_and_maps_back() {
        let pool = SyntheticPool::default();
        let a = pool.address_for("a.test").expect("room");
        let b = pool.address_for("b.test").expect("room");
        assert_ne!(a, b);
        assert_eq!(pool.address_for("a.test"), Some(a));
        assert_eq!(pool.name_of(IpAddr::V4(b)).as_deref(), Some("b.test"));
        assert!(is_synthetic(IpAddr::V4(a)));
        assert!(is_synthetic("198.19.255.255".parse().expect("address")));
        assert!(!is_synthetic("198.20.0.1".parse().expect("address")));
        assert_eq!(pool.name_of("198.18.200.1".parse().expect("address")), None);
    }

    #[test]
    fn the_pool_is_bounded() {
        let pool = SyntheticPool::default();
        for n in 0..CAPACITY {
            assert!(pool.address_for(&format!("n{n}.test")).is_some());
        }
        assert_eq!(pool.address_for("one-more.test"), None);
        assert!(
            pool.address_for("n0.test").is_some(),
            "known names still answer"
        );
        let last = pool.address_for(&format!("n{}.test", CAPACITY - 1));
        assert!(last.is_some_and(|a| is_synthetic(IpAddr::V4(a))));
    }

    #[test]
    fn pools_of_one_sequence_give_no_address_twice_until_it_wraps() {
        let session = SyntheticSequence::default();
        let first = SyntheticPool::drawing_from(session.clone());
        let a = first.address_for("a.test").expect("room");
        let later = SyntheticPool::drawing_from(session.clone());
        let b = later.address_for("b.test").expect("room");
        assert_ne!(a, b);
        assert_eq!(later.name_of(IpAddr::V4(a)), None, "not the later pool's");
        // Its end: the range's last address but the broadcast, then its first again.
        session.0.store(RANGE - 1, Ordering::Relaxed);
        let wrapping = SyntheticPool::drawing_from(session);
        let end = wrapping.address_for("c.test").expect("room");
        assert_eq!(end, Ipv4Addr::new(198, 19, 255, 254));
        assert_eq!(wrapping.address_for("d.test"), Some(a));
    }
}
