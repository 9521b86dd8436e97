//! The sandboxes of one execution: the compile stage and each run are jobs, in one live
//! sandbox shared by all of them or in a fresh sandbox each, as the request says
//! ([`SandboxReuse`]). The one place `execute` reaches the sandbox.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use warden_core::Mode;
use warden_core::Stream;
use warden_net::{BlockingProxy, ExecutionBudget, Traffic};
use warden_sandbox::{
    Backend, Job, LiveSandbox, OutputSink, Sandbox, SandboxRun, SandboxSpec, Stdin,
};

use super::network::NetworkPlan;
use super::pool::Pool;
use crate::cancel::Cancellation;
use crate::error::EngineError;
use crate::test_cases::SandboxReuse;

/// Runs jobs for one execution in its mode's backend.
pub(super) struct Runner<'e> {
    backend: Box<dyn Backend>,
    /// Ready native sandboxes to take instead of building one (`sandboxed` mode only).
    pool: Option<&'e Pool>,
    /// Whose runs these are: a pooled sandbox is reused only for the same owner.
    owner: String,
    spec: SandboxSpec,
    reuse: SandboxReuse,
    shared: Option<(LiveSandbox, Option<BlockingProxy>)>,
    /// The last sandbox let go ([`LiveSandbox::let_go`]) and not yet destroyed: it ends while
    /// the runner goes on (the next job's sandbox is built, the history is written), and is
    /// destroyed at the next release or at [`Runner::finish`]. At most one.
    ending: Option<LiveSandbox>,
    cancel: Option<Cancellation>,
    /// The network policy; with egress, each sandbox gets its own proxy and is never pooled.
    network: Option<NetworkPlan>,
    /// The policy's limits, spent by the proxies of all the sandboxes: they bound the
    /// execution, however many sandboxes it runs in (its compile stage, fresh test cases).
    budget: Option<ExecutionBudget>,
    /// What the sandboxes' proxies logged, once stopped.
    traffic: Traffic,
    /// Where the time went so far (`--profile`).
    timings: Timings,
    /// The caller's work to do while the first sandbox builds itself ([`Runner::meanwhile`]).
    meanwhile: Option<Box<dyn FnOnce() + 'e>>,
}

/// Time a runner spent building sandboxes, running jobs, and ending sandboxes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timings {
    /// Building sandboxes (or taking them from the pool).
    pub(super) setup: Duration,
    /// Running jobs, from handing each to its sandbox to its result; `program` included.
    jobs: Duration,
    /// The programs' own wall time within `jobs`, as the sandboxes' inits measured it.
    program: Duration,
    /// Ending sandboxes (or giving them back to the pool).
    teardown: Duration,
}

impl Timings {
    /// As phases of `--profile`: `setup`, `jobs` (warden's part of the jobs: handing each to
    /// its sandbox, and its end to the result), `program` (the programs' own run), `teardown`.
    pub(super) fn phases(&self) -> [(&'static str, Duration); 4] {
        [
            ("setup", self.setup),
            ("jobs", self.jobs.saturating_sub(self.program)),
            ("program", self.program),
            ("teardown", self.teardown),
        ]
    }

    fn job(&mut self, started: Instant, run: &Result<SandboxRun, warden_sandbox::SandboxError>) {
        self.jobs += started.elapsed();
        if let Ok(run) = run {
            self.program += run.usage.wall_time;
        }
    }
}

impl<'e> Runner<'e> {
    /// A runner for sandboxes of `spec` in `mode`'s backend; a mode this host cannot provide is
    /// an error, never a silent downgrade.
    pub(super) fn new(
        host: &Sandbox,
        mode: Mode,
        spec: SandboxSpec,
        reuse: SandboxReuse,
        cancel: Option<Cancellation>,
    ) -> Result<Self, EngineError> {
        let backend: Box<dyn Backend> = match mode {
            Mode::Sandboxed => Box::new(host.native()),
            Mode::Trusted => Box::new(host.trusted()),
            Mode::Isolated => Box::new(host.gvisor()?),
        };
        Ok(Self {
            backend,
            pool: None,
            owner: String::new(),
            spec,
            reuse,
            shared: None,
            ending: None,
            cancel,
            network: None,
            budget: None,
            traffic: Traffic::default(),
            timings: Timings::default(),
            meanwhile: None,
        })
    }

    /// Has `work` done once, right after the first sandbox is started and before its first job
    /// is handed over: a new sandbox builds itself in its own processes, so work of the
    /// caller's that the run does not need (opening the history) overlaps with it instead of
    /// following the run. Counted in `setup`.
    pub(super) fn meanwhile(mut self, work: impl FnOnce() + 'e) -> Self {
        self.meanwhile = Some(Box::new(work));
        self
    }

    /// Creates a sandbox ([`Runner::create`]; for `one_job` only, when it is sure to run no
    /// other), then does the caller's work meanwhile.
    fn start(
        &mut self,
        one_job: bool,
    ) -> Result<(LiveSandbox, Option<BlockingProxy>), EngineError> {
        let building = Instant::now();
        let created = self.create(one_job);
        if let (Ok(_), Some(work)) = (&created, self.meanwhile.take()) {
            work();
        }
        self.timings.setup += building.elapsed();
        created
    }

    /// Takes sandboxes from `pool` when it has them, and gives them back after use, for
    /// `owner` (`sandboxed` mode only).
    pub(super) fn with_pool(mut self, pool: Option<&'e Pool>, owner: &str) -> Self {
        if self.backend.name() == "native" {
            self.pool = pool;
            owner.clone_into(&mut self.owner);
        }
        self
    }

    /// Runs the sandboxes under `plan`: with egress, each gets warden's proxy in its network
    /// namespace and the proxy variables in its jobs' environment, and none is pooled; the
    /// proxies share one budget of the policy's limits, this runner's (one execution's).
    pub(super) fn with_network(mut self, plan: NetworkPlan) -> Self {
        if plan.has_egress() {
            self.pool = None;
            self.spec.egress = true;
        }
        self.budget = plan.new_budget();
        self.network = Some(plan);
        self
    }

    /// Ends the use of a sandbox: its proxy stopped (the log kept), then back to the pool
    /// (reset for the owner's next run, or destroyed off the request's path), or destroyed
    /// here.
    fn release(
        &mut self,
        sandbox: LiveSandbox,
        proxy: Option<BlockingProxy>,
    ) -> Result<(), EngineError> {
        let started = Instant::now();
        if let Some(cancel) = &self.cancel {
            cancel.unwatch(&sandbox.cancel_handle());
        }
        if let Some(proxy) = proxy {
            self.traffic.append(proxy.stop());
        }
        let released = match self.pool {
            Some(pool) => pool.give_back(sandbox, &self.owner),
            None => {
                let mut sandbox = sandbox;
                sandbox.let_go();
                match self.ending.replace(sandbox) {
                    Some(previous) => previous.destroy(),
                    None => Ok(()),
                }
            }
        };
        self.timings.teardown += started.elapsed();
        Ok(released?)
    }

    /// Destroys the sandbox let go last, if any: waits for its processes to be gone and
    /// removes its cgroup.
    fn end_the_last(&mut self) -> Result<(), EngineError> {
        Ok(self.ending.take().map_or(Ok(()), LiveSandbox::destroy)?)
    }

    /// Runs every job in `sandbox`, a session's (`sessions.rs`), which outlives the runner:
    /// take it back with [`Runner::give_back_session`]. With egress, it gets a proxy of this
    /// runner's at its first job, stopped when it is taken back: each call of a session has
    /// its own log and limits, as an execution has. Should it end, the next job builds another
    /// of the same spec.
    pub(super) fn with_session(mut self, sandbox: LiveSandbox) -> Self {
        self.pool = None;
        self.reuse = SandboxReuse::Shared;
        self.shared = Some((sandbox, None));
        self
    }

    /// The session's sandbox back, after its jobs ran, its proxy stopped (its log kept: take
    /// it with [`Runner::take_traffic`]); `None` if it could not be rebuilt after ending.
    pub(super) fn give_back_session(&mut self) -> Option<LiveSandbox> {
        let (sandbox, proxy) = self.shared.take()?;
        if let Some(proxy) = proxy {
            self.traffic.append(proxy.stop());
        }
        Some(sandbox)
    }

    /// Builds a sandbox for a new session, never a pooled one; with egress, its interception
    /// installed and no proxy yet: each call starts one ([`Runner::with_session`]).
    pub(super) fn open(&mut self) -> Result<LiveSandbox, EngineError> {
        self.pool = None;
        match self.network.as_ref().filter(|n| n.has_egress()) {
            None => Ok(self.create(false)?.0),
            Some(plan) => {
                // The interception goes into the sandbox's namespace: it must exist.
                let sandbox = self.backend.create(&self.spec)?;
                plan.intercept(&sandbox)?;
                Ok(sandbox)
            }
        }
    }

    /// Time spent building sandboxes, running jobs, and ending sandboxes, so far.
    pub(super) fn timings(&self) -> Timings {
        self.timings
    }

    /// What the proxies logged so far (all of it after `finish`).
    pub(super) fn take_traffic(&mut self) -> Traffic {
        std::mem::take(&mut self.traffic)
    }

    /// A new sandbox of this execution (a pooled one when there is one), registered with its
    /// cancellation, with its proxy when the policy lets traffic out. `one_job`: it will run
    /// one job only ([`Backend::start_single`]).
    fn create(&self, one_job: bool) -> Result<(LiveSandbox, Option<BlockingProxy>), EngineError> {
        if self.cancel.as_ref().is_some_and(Cancellation::is_cancelled) {
            return Err(warden_sandbox::SandboxError::cancelled().into());
        }
        let egress = self.network.as_ref().filter(|n| n.has_egress());
        let pooled = self
            .pool
            .and_then(|pool| pool.take(&self.spec, &self.owner));
        let (sandbox, proxy) = match (pooled, egress) {
            (Some(sandbox), _) => (sandbox, None),
            (None, None) if one_job => (self.backend.start_single(&self.spec)?, None),
            (None, None) => (self.backend.start(&self.spec)?, None),
            (None, Some(plan)) => {
                // The proxy opens its listeners in the sandbox's namespace: it must exist.
                let sandbox = self.backend.create(&self.spec)?;
                let proxy = plan.start(&sandbox, self.budget.as_ref())?;
                (sandbox, proxy)
            }
        };
        if let Some(cancel) = &self.cancel {
            cancel.watch(sandbox.cancel_handle());
        }
        Ok((sandbox, proxy))
    }

    /// `job` with the proxy variables when the sandboxes have egress.
    fn job<'j>(&self, job: &'j Job) -> Cow<'j, Job> {
        match &self.network {
            Some(plan) if plan.has_egress() => {
                let mut job = job.clone();
                // What the job sets itself wins (the dependency stage clears NO_PROXY).
                for (key, value) in warden_net::proxy_env() {
                    if !job.env.iter().any(|(k, _)| *k == key) {
                        job.env.push((key, value));
                    }
                }
                Cow::Owned(job)
            }
            _ => Cow::Borrowed(job),
        }
    }

    /// Runs one job: in the shared sandbox (created at the first job, and again should a limit
    /// have ended it), or in a fresh one.
    pub(super) fn run(&mut self, job: &Job, stdin: Stdin) -> Result<SandboxRun, EngineError> {
        self.run_streaming(job, stdin, &mut |_: Stream, _: &[u8]| true)
    }

    /// Runs one job as [`Runner::run`] does, its output the result's alone, and the signals of
    /// `caller`'s sink (an interactive run's: `OutputSink::signal_source`) reaching its
    /// program: a compile stage that a terminal's Ctrl-C interrupts.
    pub(super) fn run_signalled(
        &mut self,
        job: &Job,
        stdin: Stdin,
        caller: Option<&mut dyn OutputSink>,
    ) -> Result<SandboxRun, EngineError> {
        match caller {
            Some(sink) => self.run_streaming(job, stdin, &mut SignalsOnly(sink)),
            None => self.run(job, stdin),
        }
    }

    /// Runs one job as [`Runner::run`] does, its output handed to `sink` as it is read.
    pub(super) fn run_streaming(
        &mut self,
        job: &Job,
        stdin: Stdin,
        sink: &mut dyn OutputSink,
    ) -> Result<SandboxRun, EngineError> {
        // Neither the argv nor the output: a program's arguments and output are its data
        // (DESIGN.md §2.9).
        tracing::debug!(reuse = ?self.reuse, pooled = self.pool.is_some(), "job starting");
        let run = self.run_in_sandbox(job, stdin, sink)?;
        tracing::debug!(
            outcome = %run.outcome,
            cpu = ?run.usage.cpu_time,
            wall = ?run.usage.wall_time,
            peak_memory = %run.usage.peak_memory,
            "job ended"
        );
        Ok(run)
    }

    /// The body of [`Runner::run_streaming`]: the job in a fresh sandbox, or in the shared one.
    fn run_in_sandbox(
        &mut self,
        job: &Job,
        stdin: Stdin,
        sink: &mut dyn OutputSink,
    ) -> Result<SandboxRun, EngineError> {
        match self.reuse {
            SandboxReuse::Fresh => {
                let (mut sandbox, proxy) = self.start(self.pool.is_none())?;
                let running = Instant::now();
                let run = sandbox.run_streaming(&self.job(job), stdin, sink);
                self.timings.job(running, &run);
                let released = self.release(sandbox, proxy);
                let run = run?;
                released?;
                Ok(run)
            }
            SandboxReuse::Shared => {
                if !self.shared.as_ref().is_some_and(|(s, _)| s.is_alive()) {
                    if let Some((dead, proxy)) = self.shared.take() {
                        if let Some(cancel) = &self.cancel {
                            cancel.unwatch(&dead.cancel_handle());
                        }
                        if let Some(proxy) = proxy {
                            self.traffic.append(proxy.stop());
                        }
                        dead.destroy()?;
                    }
                    self.shared = Some(self.start(false)?);
                }
                let job = self.job(job);
                let (sandbox, proxy) = self.shared.as_mut().ok_or(EngineError::Sandbox(
                    warden_sandbox::SandboxError::Gone { why: "not created" },
                ))?;
                if proxy.is_none() {
                    // A session's sandbox ([`Runner::with_session`]).
                    if let Some(plan) = self.network.as_ref().filter(|n| n.has_egress()) {
                        *proxy = plan.serve(sandbox, self.budget.as_ref())?;
                    }
                }
                let running = Instant::now();
                let run = sandbox.run_streaming(&job, stdin, sink);
                self.timings.job(running, &run);
                Ok(run?)
            }
        }
    }

    /// Lets every sandbox go: the shared one is released (its proxy stopped, its log kept),
    /// and the last one starts ending without being waited for; [`Runner::finish`] waits.
    pub(super) fn let_go(&mut self) -> Result<(), EngineError> {
        match self.shared.take() {
            Some((sandbox, proxy)) => self.release(sandbox, proxy),
            None => Ok(()),
        }
    }

    /// Lets every sandbox go and waits until the last one is gone and removed.
    pub(super) fn finish(&mut self) -> Result<(), EngineError> {
        let released = self.let_go();
        let ended = self.end_the_last();
        released.and(ended)
    }
}

/// A sink that takes no output and passes its caller's signals on.
struct SignalsOnly<'s>(&'s mut dyn OutputSink);

impl OutputSink for SignalsOnly<'_> {
    fn chunk(&mut self, _: Stream, _: &[u8]) -> bool {
        true
    }

    fn signal_source(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.0.signal_source()
    }

    fn signals(&mut self) -> Vec<i32> {
        self.0.signals()
    }

    fn suspend(&mut self, signal: i32) {
        self.0.suspend(signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn jobs_is_what_the_program_did_not_take_and_never_below_zero() {
        let timings = Timings {
            setup: ms(1),
            jobs: ms(10),
            program: ms(7),
            teardown: ms(2),
        };
        assert_eq!(
            timings.phases(),
            [
                ("setup", ms(1)),
                ("jobs", ms(3)),
                ("program", ms(7)),
                ("teardown", ms(2)),
            ]
        );
        // The init's clock and the parent's are read at different moments: a program may
        // seem to outlast its job by a hair, which leaves warden's part at zero.
        let skewed = Timings {
            jobs: ms(5),
            program: ms(6),
            ..Timings::default()
        };
        assert_eq!(skewed.phases()[1], ("jobs", Duration::ZERO));
        assert_eq!(skewed.phases()[2], ("program", ms(6)));
    }
}
