//! The descriptors of warden's process that its proxies may hold, and each execution's share
//! of them. Every proxy runs in warden's process (a server's, shared by all its callers): a
//! program's connection to it is a descriptor there, and so is the connection it goes on to.
//! Without a bound, the programs of one caller could take every descriptor of the process, and
//! other callers' executions, the API and the warm pool would fail to open files. Runs on the
//! proxies' runtimes; sized by the server at start (`warden serve`, docs/server.md).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits::DEFAULT_MAX_CLIENTS;

/// Descriptors a proxy holds besides its program's connections: its five listeners, its
/// runtime's (the poller, its waker), a lookup's socket on the blocking pool, with room.
pub const DESCRIPTORS_PER_PROXY: u64 = 16;

/// Descriptors one of the program's connections can hold in warden's process: its own, and the
/// one to the server it is relayed to (one at most: one request or tunnel per connection).
pub const DESCRIPTORS_PER_CONNECTION: u64 = 2;

/// The fewest connections an execution's proxy holds at once, however small its share: below
/// it, a program could do next to nothing. The server-wide budget still bounds them all.
pub const MIN_CLIENTS: u32 = 4;

/// The descriptors all the proxies of the process may hold for their programs' connections,
/// [`DESCRIPTORS_PER_CONNECTION`] a connection from its accept until it ends. A connection
/// accepted when they are all taken is closed at once (reset), and the traffic log records it
/// refused by `limits` (`cut_by: proxy_descriptors`): the program sees a refused connection,
/// warden fails nothing. Clones share it.
#[derive(Debug, Clone)]
pub struct ProxyDescriptors {
    places: Arc<Semaphore>,
    total: u64,
}

impl ProxyDescriptors {
    /// A budget of `descriptors`, none taken.
    pub fn new(descriptors: u64) -> Self {
        let places = usize::try_from(descriptors)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            places: Arc::new(Semaphore::new(places)),
            total: descriptors,
        }
    }

    /// The descriptors of the budget.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The places of one connection, held until dropped; `None` when they are all taken.
    pub(crate) fn take_connection(&self) -> Option<OwnedSemaphorePermit> {
        let places = u32::try_from(DESCRIPTORS_PER_CONNECTION).expect("a small constant");
        Arc::clone(&self.places).try_acquire_many_owned(places).ok()
    }
}

/// What a process running many executions at once gives their proxies: a budget of its
/// descriptors for all of them, and each execution's fair share of it as the connections its
/// proxy holds at once ([`ProxyLimits::max_clients`](crate::ProxyLimits::max_clients)), so
/// that the proxies of `executions` executions, each at its most, fit in the budget together:
/// one caller's programs cannot take another's descriptors.
#[derive(Debug, Clone)]
pub struct ProxyShare {
    /// The connections each proxy holds at once: [`DEFAULT_MAX_CLIENTS`] when the budget has
    /// room for it, less when not, [`MIN_CLIENTS`] at the least.
    pub max_clients: u32,
    /// The budget all the proxies share.
    pub descriptors: ProxyDescriptors,
}

impl ProxyShare {
    /// The share of `descriptors` for each of `executions` running at once.
    pub fn new(descriptors: u64, executions: usize) -> Self {
        let executions = u64::try_from(executions.max(1)).unwrap_or(u64::MAX);
        let per_execution = descriptors / executions;
        let clients =
            per_execution.saturating_sub(DESCRIPTORS_PER_PROXY) / DESCRIPTORS_PER_CONNECTION;
        let max_clients = u32::try_from(clients)
            .unwrap_or(u32::MAX)
            .clamp(MIN_CLIENTS, DEFAULT_MAX_CLIENTS);
        Self {
            max_clients,
            descriptors: ProxyDescriptors::new(descriptors),
        }
    }

    /// The descriptors `executions` proxies holding [`DEFAULT_MAX_CLIENTS`] connections each
    /// can take: what a process running that many at once needs for their proxies.
    pub fn needed(executions: usize) -> u64 {
        let executions = u64::try_from(executions.max(1)).unwrap_or(u64::MAX);
        let per_proxy =
            DESCRIPTORS_PER_PROXY + u64::from(DEFAULT_MAX_CLIENTS) * DESCRIPTORS_PER_CONNECTION;
        executions.saturating_mul(per_proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_for_every_execution_at_its_most_keeps_the_default() {
        let share = ProxyShare::new(ProxyShare::needed(40), 40);
        assert_eq!(share.max_clients, DEFAULT_MAX_CLIENTS);
        assert_eq!(share.descriptors.total(), 40 * 528);
    }

    #[test]
    fn a_smaller_budget_is_divided_so_that_all_executions_fit_in_it() {
        // Hunt net N2's scaled-down server: 1600 descriptors, 512 connections and 1024 spare
        // kept for the server, four workers.
        let share = ProxyShare::new(1600 - 512 - 1024, 4);
        assert_eq!(share.max_clients, 4, "16 each: the floor");
        let share = ProxyShare::new(20_000 - 512 - 1024, 40);
        // 461 each: 16 for the proxy, 222 connections of 2.
        assert_eq!(share.max_clients, 222);
        let all = 40 * (DESCRIPTORS_PER_PROXY + 222 * DESCRIPTORS_PER_CONNECTION);
        assert!(all <= 20_000 - 512 - 1024, "{all}");
    }

    #[test]
    fn the_budget_gives_places_until_it_is_spent() {
        let budget = ProxyDescriptors::new(5);
        let first = budget.take_connection().expect("room for one");
        let second = budget.take_connection().expect("room for two");
        assert!(budget.take_connection().is_none(), "1 left of 5");
        drop(first);
        assert!(budget.take_connection().is_some(), "given back");
        drop(second);
    }
}
