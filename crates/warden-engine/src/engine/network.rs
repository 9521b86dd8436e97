//! An execution's network (docs/network.md): the policy it runs under, chosen from the request
//! within what the configuration allows, and for a policy that lets anything out, warden's
//! egress proxy (`warden_net`) in each of its sandboxes, deciding with the policy's own
//! evaluation (`warden_core::network::Policy::evaluate`, the same as `warden network check`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use warden_core::network::{Action, EvalContext, Level, Policy, Protocol, Registry};
use warden_core::Mode;
use warden_net::{
    BlockingProxy, ConnectionRecord, Decider, ExecutionBudget, Proxy, ProxyDescriptors,
    ProxyLimits, ProxyShare, SyntheticSequence, Traffic, Verdict,
};
use warden_sandbox::LiveSandbox;

use crate::error::EngineError;
use crate::execution::DenialHook;
use crate::network::{host_registries, HostSurroundings, PolicyStore, StoreError, StoredPolicy};
use crate::security::ViolationKind;
use crate::settings::NetworkSettings;

/// Denied connections listed one by one among the security violations; more are counted.
const LISTED_DENIALS: usize = 20;

/// The network section of a result: the policy and every attempt its proxy saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkReport {
    /// The policy's name.
    pub policy: String,
    /// Every connection attempt and name lookup kept, in order; identical refusals folded
    /// into one ([`Connection::repeats`]).
    pub connections: Vec<Connection>,
    /// How many attempts were denied: those of `connections`, their repeats, and `dropped`.
    pub denied: u32,
    /// Refused attempts past the traffic log's bound, counted but not kept (none before
    /// these were counted).
    #[serde(default)]
    pub dropped: u64,
}

/// One connection attempt or name lookup, as the proxy logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// `http`, `https`, `tcp` or `dns`.
    pub protocol: String,
    /// The name asked for, if the program gave one.
    pub host: Option<String>,
    /// The address connected to (or that would have been).
    pub addr: Option<String>,
    /// The port.
    pub port: u16,
    /// Whether the policy allowed it.
    pub allowed: bool,
    /// What decided (`rule 2`, `default`, `deny set: ...`, `registry ...`).
    pub rule: String,
    /// Why.
    pub reason: String,
    /// Bytes from the program.
    pub bytes_up: u64,
    /// Bytes to the program.
    pub bytes_down: u64,
    /// How long it lasted, in milliseconds.
    pub duration_ms: u64,
    /// The limit that cut it, if one did.
    pub cut_by: Option<String>,
    /// How many more identical refusals were folded into this one (it was refused
    /// `1 + repeats` times; its bytes are theirs summed).
    #[serde(default)]
    pub repeats: u64,
}

impl From<ConnectionRecord> for Connection {
    fn from(r: ConnectionRecord) -> Self {
        Self {
            started_ms: r
                .started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            protocol: serde_name(&r.protocol),
            host: r.host,
            addr: r.addr.map(|a| a.ip().to_string()),
            port: r.port,
            allowed: r.allowed,
            rule: r.rule,
            reason: r.reason,
            bytes_up: r.bytes_up,
            bytes_down: r.bytes_down,
            duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
            cut_by: r.cut_by.as_ref().map(serde_name),
            repeats: r.repeats,
        }
    }
}

/// `target:port` as a URL's authority writes it, an IPv6 address in brackets (`[::1]:443`):
/// bare, `fe80::1:22` reads as another address without a port.
fn authority(target: &str, port: u16) -> String {
    match target.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{target}]:{port}"),
        Err(_) => format!("{target}:{port}"),
    }
}

/// The serde name of a unit enum variant (`Protocol::Https` → `https`).
fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

impl Connection {
    /// Whether a limit refused it (`max_connections`, ...) rather than the policy.
    fn refused_by_limit(&self) -> bool {
        !self.allowed && self.cut_by.is_some()
    }

    /// How a denied attempt reads among the security violations.
    pub fn denial(&self) -> String {
        let target = match (&self.host, &self.addr) {
            (Some(host), _) => host.clone(),
            (None, Some(addr)) => addr.clone(),
            (None, None) => "?".into(),
        };
        let why = if self.rule.contains(&self.reason) {
            self.rule.clone()
        } else {
            format!("{}: {}", self.rule, self.reason)
        };
        let verb = if self.refused_by_limit() {
            "refused"
        } else {
            "denied"
        };
        let times = match self.repeats {
            0 => String::new(),
            n => format!(" ({} times)", n.saturating_add(1)),
        };
        format!(
            "network: {} {} {verb}{times} by {why}",
            self.protocol,
            authority(&target, self.port)
        )
    }

    /// How many attempts this record stands for.
    pub fn attempts(&self) -> u64 {
        self.repeats.saturating_add(1)
    }
}

impl NetworkReport {
    /// The report of `policy` over the proxies' logs.
    pub(crate) fn new(policy: &str, traffic: Traffic) -> Self {
        let connections = traffic.records.into_iter().map(Connection::from).collect();
        Self::of(policy.to_owned(), connections, traffic.dropped)
    }

    /// The report of `policy` over `connections` and `dropped` refusals, counting the denied.
    pub fn of(policy: String, connections: Vec<Connection>, dropped: u64) -> Self {
        let denied = connections
            .iter()
            .filter(|c| !c.allowed)
            .map(Connection::attempts)
            .fold(dropped, u64::saturating_add);
        Self {
            policy,
            connections,
            denied: u32::try_from(denied).unwrap_or(u32::MAX),
            dropped,
        }
    }

    /// The denials as violation details with their kind (a limit's refusal is a limit hit,
    /// `network_limit`): the first [`LISTED_DENIALS`], then a count of the rest, and the
    /// count of refusals the full log dropped.
    pub(crate) fn violations(&self) -> Vec<(ViolationKind, String)> {
        let kind = |c: &Connection| {
            if c.refused_by_limit() {
                ViolationKind::NetworkLimit
            } else {
                ViolationKind::Violation
            }
        };
        let denied: Vec<&Connection> = self.connections.iter().filter(|c| !c.allowed).collect();
        let mut out: Vec<(ViolationKind, String)> = denied
            .iter()
            .take(LISTED_DENIALS)
            .map(|c| (kind(c), c.denial()))
            .collect();
        let rest = &denied[denied.len().min(LISTED_DENIALS)..];
        // One count per kind, so that each keeps its severity.
        for k in [ViolationKind::Violation, ViolationKind::NetworkLimit] {
            let n: u64 = rest
                .iter()
                .filter(|c| kind(c) == k)
                .map(|c| c.attempts())
                .sum();
            let what = match k {
                ViolationKind::NetworkLimit => "refused by limits",
                _ => "denied",
            };
            if n > 0 {
                out.push((k, format!("network: {n} more connections {what}")));
            }
        }
        if self.dropped > 0 {
            out.push((
                ViolationKind::Violation,
                format!(
                    "network: the traffic log was full: {} refused attempts were counted, not \
                     kept",
                    self.dropped
                ),
            ));
        }
        out
    }
}

/// The network an execution runs with.
#[derive(Clone)]
pub(crate) struct NetworkPlan {
    /// The policy's name.
    pub(crate) name: String,
    /// `None` for a policy that lets nothing out (the sandbox keeps loopback only).
    egress: Option<(Arc<PolicyBasis>, ProxyLimits)>,
    /// The process's descriptors for all proxies, if it bounds them ([`NetworkConfig::share`]).
    descriptors: Option<ProxyDescriptors>,
    /// Told of each denied connection as it is denied (an interactive run's relay).
    on_denial: Option<DenialHook>,
    /// The synthetic addresses its proxies handed out: a session's plan serves all its calls,
    /// whose proxies thus never give an address an earlier call gave another name.
    synthetic: SyntheticSequence,
}

impl std::fmt::Debug for NetworkPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkPlan")
            .field("name", &self.name)
            .field("egress", &self.egress.is_some())
            .finish()
    }
}

/// What the engine needs to choose and enforce policies.
#[derive(Debug, Clone)]
pub(crate) struct NetworkConfig {
    pub(crate) settings: Option<NetworkSettings>,
    /// warden's own service addresses (the server's listeners, once bound), in the deny set
    /// with those the servers running on this host registered (`network/services.rs`).
    pub(crate) services: std::sync::Arc<std::sync::RwLock<Vec<SocketAddr>>>,
    /// The descriptors all the proxies of the process may hold and each execution's share of
    /// them (a server's); `None`: each proxy holds `DEFAULT_MAX_CLIENTS` connections at most.
    pub(crate) share: Option<ProxyShare>,
}

impl NetworkConfig {
    fn store(&self) -> PolicyStore {
        PolicyStore::new(self.settings.as_ref().map_or_else(
            || warden_core::config::DEFAULT_POLICY_DIR.into(),
            |s| s.policy_dir.clone(),
        ))
    }

    /// The plan for a request naming `asked` in `mode`: the default when it names none; a
    /// policy the configuration does not allow is refused, one that lets traffic out is
    /// refused where it cannot be enforced.
    pub(crate) fn plan(&self, asked: Option<&str>, mode: Mode) -> Result<NetworkPlan, EngineError> {
        let (name, stored) = self.policy(asked, mode)?;
        if stored.policy.level == Level::None {
            return Ok(NetworkPlan {
                name,
                egress: None,
                descriptors: None,
                on_denial: None,
                synthetic: SyntheticSequence::default(),
            });
        }
        // `trusted` has no network namespace of its own to put the proxy in; `isolated` runs
        // gVisor on the host's network stack in one (warden-sandbox's gvisor.rs).
        if mode == Mode::Trusted {
            return Err(EngineError::NetworkUnavailable { policy: name, mode });
        }
        let max_clients = self
            .share
            .as_ref()
            .map_or(warden_net::DEFAULT_MAX_CLIENTS, |share| share.max_clients);
        let limits = proxy_limits(&stored.policy, max_clients);
        Ok(NetworkPlan {
            name,
            egress: Some((Arc::new(self.basis(stored)), limits)),
            descriptors: self.share.as_ref().map(|share| share.descriptors.clone()),
            on_denial: None,
            synthetic: SyntheticSequence::default(),
        })
    }

    /// The policy of a request naming `asked` in `mode`, if it lets traffic out, which
    /// `trusted` cannot hold ([`NetworkConfig::plan`]); `None` for one that lets nothing out,
    /// and for one `plan` refuses for another reason (it says why then).
    pub(crate) fn egress_policy(&self, asked: Option<&str>, mode: Mode) -> Option<String> {
        let (name, stored) = self.policy(asked, mode).ok()?;
        (stored.policy.level != Level::None).then_some(name)
    }

    /// The policy a request naming `asked` gets in `mode`, the default when it names none,
    /// with its name; refused when the configuration does not allow it.
    ///
    /// A name no policy has is said to be unknown before it is said to be not allowed: a
    /// misspelt `limitedaccess` is a typo to fix, not a setting to look up.
    fn policy(
        &self,
        asked: Option<&str>,
        mode: Mode,
    ) -> Result<(String, StoredPolicy), EngineError> {
        let default = warden_core::network::BUILTIN_NAMES[0];
        let name = match (asked, &self.settings) {
            (Some(name), _) => name,
            (None, Some(settings)) => settings.default_for(mode),
            (None, None) => default,
        };
        let stored = match self.store().get(name) {
            Err(e @ (StoreError::NotFound { .. } | StoreError::BadName(_))) => return Err(e.into()),
            stored => stored,
        };
        let allowed = match &self.settings {
            Some(settings) => settings.allows(name),
            None => warden_core::network::BUILTIN_NAMES.contains(&name),
        };
        if !allowed {
            return Err(EngineError::NetworkRefused {
                policy: name.to_owned(),
            });
        }
        Ok((name.to_owned(), stored?))
    }

    fn basis(&self, stored: StoredPolicy) -> PolicyBasis {
        let registries = if stored.policy.registries {
            let mut all = host_registries().to_vec();
            if let Some(settings) = &self.settings {
                all.extend(settings.registries.iter().cloned());
            }
            all
        } else {
            Vec::new()
        };
        PolicyBasis {
            imported: stored.is_imported(),
            policy: stored.policy,
            registries,
            services: self.all_services(),
        }
    }

    /// warden's own services: this process's (a server's listeners) and those of every server
    /// running on this host, which a `warden run` would not know of otherwise, as they are
    /// at each decision.
    fn all_services(&self) -> crate::network::services::Services {
        let own = self
            .services
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        crate::network::services::Services::new(own)
    }
}

impl NetworkPlan {
    /// Has `hook` told of each connection the policy denies, as it is denied.
    pub(crate) fn watch_denials(&mut self, hook: DenialHook) {
        self.on_denial = Some(hook);
    }

    /// Whether the sandboxes need the proxy.
    pub(crate) fn has_egress(&self) -> bool {
        self.egress.is_some()
    }

    /// A budget of the policy's limits with nothing spent, for one execution's proxies to
    /// share; `None` without egress.
    pub(crate) fn new_budget(&self) -> Option<ExecutionBudget> {
        self.egress
            .as_ref()
            .map(|(_, limits)| ExecutionBudget::new(limits))
    }

    /// Installs the interception in `sandbox`'s network namespace and starts a proxy there
    /// ([`NetworkPlan::intercept`], [`NetworkPlan::serve`]); `None` without egress.
    pub(crate) fn start(
        &self,
        sandbox: &LiveSandbox,
        budget: Option<&ExecutionBudget>,
    ) -> Result<Option<BlockingProxy>, EngineError> {
        self.intercept(sandbox)?;
        self.serve(sandbox, budget)
    }

    /// Installs the transparent interception in `sandbox`'s network namespace (once per
    /// sandbox: its route and table stay while the namespace does); nothing without egress.
    pub(crate) fn intercept(&self, sandbox: &LiveSandbox) -> Result<(), EngineError> {
        if self.egress.is_none() {
            return Ok(());
        }
        warden_net::install_interception(&network_namespace(sandbox)?)
            .map_err(|e| egress("installing the interception", e.into()))
    }

    /// Starts a proxy on listeners it opens in `sandbox`'s network namespace, whose
    /// interception is installed, spending from `budget`, the execution's (without one, a
    /// budget of its own); `None` without egress. A session's sandbox gets one per call, so
    /// that each call's log and limits are its own, as an execution's are.
    pub(crate) fn serve(
        &self,
        sandbox: &LiveSandbox,
        budget: Option<&ExecutionBudget>,
    ) -> Result<Option<BlockingProxy>, EngineError> {
        let Some((basis, limits)) = &self.egress else {
            return Ok(None);
        };
        let listeners = warden_net::open_listeners(&network_namespace(sandbox)?)
            .map_err(|e| egress("opening the proxy's listeners", e.into()))?;
        let mut proxy = Proxy::new(PolicyDecider::starting_now(basis), limits.clone())
            .with_synthetic(self.synthetic.clone());
        if let Some(budget) = budget {
            proxy = proxy.with_budget(budget.clone());
        }
        if let Some(descriptors) = &self.descriptors {
            proxy = proxy.with_descriptors(descriptors.clone());
        }
        if let Some(hook) = &self.on_denial {
            proxy = proxy.on_denial(denial_observer(hook.clone()));
        }
        proxy
            .start_blocking(listeners)
            .map(Some)
            .map_err(|e| egress("starting the proxy", e.into()))
    }
}

/// The failure of `step` in setting up a sandbox's egress.
fn egress(step: &'static str, source: Box<dyn std::error::Error + Send + Sync>) -> EngineError {
    EngineError::Egress { step, source }
}

/// `sandbox`'s network namespace, opened.
fn network_namespace(sandbox: &LiveSandbox) -> Result<std::fs::File, EngineError> {
    let path = sandbox.network_namespace().ok_or_else(|| {
        egress(
            "finding the network namespace",
            "the sandbox has no network namespace of the host's".into(),
        )
    })?;
    std::fs::File::open(&path).map_err(|e| egress("opening the network namespace", e.into()))
}

/// The proxy's limits under `policy`, holding `max_clients` of the program's connections at
/// once (at least the policy's `max_connections`, which the operator chose).
fn proxy_limits(policy: &Policy, max_clients: u32) -> ProxyLimits {
    let l = &policy.limits;
    ProxyLimits {
        bandwidth_up: l.bandwidth_up.map(|b| b.bytes()),
        bandwidth_down: l.bandwidth_down.map(|b| b.bytes()),
        total_bytes: l.total_bytes.map(|b| b.bytes()),
        max_connections: l.max_connections,
        total_connections: l.total_connections,
        connect_timeout: l.connect_timeout,
        idle_timeout: l.idle_timeout,
        max_clients,
    }
}

/// The observer that tells `hook` of each connection the policy refuses, as the traffic log
/// records it: the decision applied (not those a tunnel's protocol was chosen by), the TLS and
/// synthetic-address checks' included; a refusal by a limit (rule `limits`) is not the
/// policy's.
fn denial_observer(hook: DenialHook) -> warden_net::DenialObserver {
    Arc::new(move |record: &ConnectionRecord| {
        if record.rule == "limits" {
            return;
        }
        let target = match (&record.host, record.addr) {
            (Some(host), _) => host.clone(),
            (None, Some(addr)) => addr.ip().to_string(),
            (None, None) => "?".to_owned(),
        };
        hook(&format!(
            "{} ({})",
            authority(&target, record.port),
            record.reason
        ));
    })
}

/// What a policy is decided with over an execution's (or a session's) life: all but the
/// host's surroundings, which each proxy reads as it starts ([`PolicyDecider::starting_now`]).
struct PolicyBasis {
    policy: Policy,
    imported: bool,
    registries: Vec<Registry>,
    services: crate::network::services::Services,
}

/// A policy as one proxy asks it.
struct PolicyDecider {
    basis: Arc<PolicyBasis>,
    /// The host's, as they were when the proxy started.
    host: HostSurroundings,
}

impl PolicyDecider {
    /// The decider of a proxy starting now, with the host's addresses, networks and gateways
    /// as they are now: a session's plan is made once and serves every call, and a read at its
    /// creation would let a later call reach an address the host gained since.
    fn starting_now(basis: &Arc<PolicyBasis>) -> Arc<Self> {
        Arc::new(Self {
            basis: Arc::clone(basis),
            host: HostSurroundings::read(),
        })
    }

    fn context<'a>(&'a self, services: &'a [SocketAddr]) -> EvalContext<'a> {
        EvalContext {
            registries: &self.basis.registries,
            host_addrs: &self.host.addrs,
            host_networks: &self.host.networks,
            host_gateways: &self.host.gateways,
            service_addrs: services,
            imported: self.basis.imported,
        }
    }
}

impl Decider for PolicyDecider {
    fn decide(&self, attempt: &warden_net::Attempt) -> Verdict {
        let protocol = match attempt.protocol {
            warden_net::Protocol::Http => Protocol::Http,
            warden_net::Protocol::Https => Protocol::Https,
            warden_net::Protocol::Tcp => Protocol::Tcp,
            warden_net::Protocol::Dns => Protocol::Dns,
        };
        let decision = self.basis.policy.evaluate(
            &warden_core::network::Attempt {
                protocol,
                host: attempt.host.clone(),
                addr: attempt.addr,
                port: attempt.port,
            },
            &self.context(&self.basis.services.current()),
        );
        let rule = decision.matched.to_string();
        match decision.action {
            Action::Allow => Verdict::allow(rule, decision.reason),
            Action::Deny => Verdict::deny(rule, decision.reason),
        }
    }

    fn may_resolve(&self, name: &str) -> bool {
        let decision = self.basis.policy.evaluate(
            &warden_core::network::Attempt {
                protocol: Protocol::Dns,
                host: Some(name.to_owned()),
                addr: None,
                port: 53,
            },
            &self.context(&self.basis.services.current()),
        );
        decision.action == Action::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a test that makes a network namespace can run: it needs root. Says why it
    /// skips; in CI (`CI` set) it must not skip, so it fails instead.
    fn root() -> bool {
        let met = nix::unistd::geteuid().is_root();
        if !met {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run this test as root"
            );
            eprintln!("skipped: making a network namespace needs root");
        }
        met
    }

    fn tcp_to(addr: &str, port: u16) -> warden_net::Attempt {
        warden_net::Attempt {
            protocol: warden_net::Protocol::Tcp,
            host: None,
            addr: Some(addr.parse().expect("an address")),
            port,
        }
    }

    /// Regression (hunt net 1): a session's plan is made once, at its creation, and its
    /// decider held the host's addresses as they were then; an address the host gained later
    /// stayed reachable from every later call. Each proxy's decider reads them as it starts.
    /// On a thread in a network namespace of its own, standing for the host.
    #[test]
    fn network_a_later_proxy_denies_an_address_the_host_gained_since_the_plan() {
        if !root() {
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            let config = NetworkConfig {
                settings: None,
                services: Arc::default(),
                share: None,
            };
            let plan = config
                .plan(Some("internet_access"), Mode::Sandboxed)
                .expect("the plan");
            // What `NetworkPlan::serve` gives each proxy it starts, as a session's call does.
            let (basis, _) = plan.egress.as_ref().expect("egress");
            let attempt = tcp_to("198.51.100.7", 443);
            let first = PolicyDecider::starting_now(basis).decide(&attempt);
            assert!(first.allow, "{first:?}");
            // The host gains an address (a DHCP lease, a VPN, a secondary address).
            let added = std::process::Command::new("ip")
                .args(["addr", "add", "198.51.100.7/32", "dev", "lo"])
                .status()
                .expect("ip runs");
            assert!(added.success(), "ip addr add: {added}");
            let later = PolicyDecider::starting_now(basis).decide(&attempt);
            assert!(!later.allow, "{later:?}");
            assert_eq!(later.rule, "deny set: the host's own address 198.51.100.7");
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    }

    fn refused(port: u16, repeats: u64) -> Connection {
        Connection {
            started_ms: 0,
            protocol: "tcp".into(),
            host: None,
            addr: Some("198.51.100.7".into()),
            port,
            allowed: false,
            rule: "default".into(),
            reason: "no rule matched".into(),
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: 0,
            cut_by: None,
            repeats,
        }
    }

    /// Regression (hunt net 6): an IPv6 address was written bare before its port, `tcp
    /// fe80::1:22`, which reads as another address without one; in brackets, as a URL writes it.
    #[test]
    fn network_an_ipv6_address_is_in_brackets_before_its_port() {
        let mut denied = refused(22, 0);
        denied.addr = Some("fe80::1".into());
        assert_eq!(
            denied.denial(),
            "network: tcp [fe80::1]:22 denied by default: no rule matched"
        );
        denied.addr = Some("192.0.2.7".into());
        assert_eq!(
            denied.denial(),
            "network: tcp 192.0.2.7:22 denied by default: no rule matched"
        );
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = Arc::clone(&told);
        let observe = denial_observer(Arc::new(move |what: &str| {
            keep.lock().expect("told").push(what.to_owned());
        }));
        let record = ConnectionRecord {
            started: std::time::SystemTime::now(),
            protocol: warden_net::Protocol::Https,
            host: None,
            addr: Some("[::1]:443".parse().expect("an address")),
            port: 443,
            allowed: false,
            rule: "deny set: ::1/128".into(),
            reason: "loopback".into(),
            bytes_up: 0,
            bytes_down: 0,
            duration: std::time::Duration::ZERO,
            cut_by: None,
            repeats: 0,
        };
        observe(&record);
        assert_eq!(*told.lock().expect("told"), ["[::1]:443 (loopback)"]);
    }

    /// Folded and dropped refusals count as the attempts they were, in `denied` and in the
    /// security violations.
    #[test]
    fn folded_and_dropped_refusals_are_counted_as_denials() {
        let mut connections = vec![refused(1, 999)];
        connections.extend((2..=LISTED_DENIALS as u16).map(|p| refused(p, 0)));
        connections.push(refused(99, 4));
        let report = NetworkReport::of("p".into(), connections, 7);
        assert_eq!(report.denied, 1000 + 19 + 5 + 7);
        let violations = report.violations();
        assert!(
            violations[0].1.contains("denied (1000 times) by default"),
            "{violations:?}"
        );
        let details: Vec<&str> = violations[LISTED_DENIALS..]
            .iter()
            .map(|(_, d)| d.as_str())
            .collect();
        assert_eq!(
            details,
            [
                "network: 5 more connections denied",
                "network: the traffic log was full: 7 refused attempts were counted, not kept"
            ]
        );
    }
}
