//! The signals that end a long-running command (`warden batch`, `warden mcp`, `warden mcp
//! wrap`): SIGINT, SIGTERM, SIGHUP and SIGQUIT are taken from the start and reported, the
//! first one only, on a thread of their own, so that the command ends what runs, records it
//! and exits with 128 + the signal's number, as a shell reports a command that a signal
//! ended. They are the four `warden run` passes on to its program (`passed_on.rs`), and as
//! there, one the process was started with ignored stays ignored: its sender meant the
//! command to go on (a job started with `&` by a shell without job control).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use anyhow::Context;
use nix::sys::signal::Signal;

/// The signals taken.
const TAKEN: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Takes [`TAKEN`] (those not ignored) from its start until it is stopped, and calls its
/// callback at the first one.
pub(crate) struct SignalWatcher {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
    received: Arc<AtomicI32>,
}

impl SignalWatcher {
    /// Takes the signals now (before anything runs, so that none falls between) and calls
    /// `on_signal` with the first one's number on the watcher's thread.
    pub(crate) fn start(on_signal: impl FnOnce(i32) + Send + 'static) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("starting the signal watcher")?;
        let streams = runtime.block_on(async {
            let mut streams = Vec::new();
            for taken in TAKEN {
                if warden_sys::signals::is_ignored(taken as i32) == Ok(true) {
                    continue;
                }
                let kind = tokio::signal::unix::SignalKind::from_raw(taken as i32);
                streams.push((taken, tokio::signal::unix::signal(kind)?));
            }
            Ok::<_, std::io::Error>(streams)
        })?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let received = Arc::new(AtomicI32::new(0));
        let thread = std::thread::Builder::new()
            .name("warden-signals".into())
            .spawn({
                let received = Arc::clone(&received);
                move || {
                    runtime.block_on(async {
                        let signal = tokio::select! {
                            signal = first_of(streams) => signal,
                            _ = stopped => return,
                        };
                        received.store(signal as i32, Ordering::SeqCst);
                        on_signal(signal as i32);
                    });
                }
            })
            .context("starting the signal watcher")?;
        Ok(Self {
            stop,
            thread,
            received,
        })
    }

    /// The number of the signal received so far, if any.
    pub(crate) fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// Stops watching (a signal after this one is ignored: the handlers stay installed) and
    /// returns the signal received, if any, once its callback has returned.
    pub(crate) fn stop(self) -> Option<i32> {
        let Self {
            stop,
            thread,
            received,
        } = self;
        let _ = stop.send(());
        let _ = thread.join();
        match received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }
}

/// The first of `streams`' signals to come (never, when there are none).
async fn first_of(streams: Vec<(Signal, tokio::signal::unix::Signal)>) -> Signal {
    let (signals, mut streams): (Vec<Signal>, Vec<_>) = streams.into_iter().unzip();
    std::future::poll_fn(|cx| {
        for (signal, stream) in signals.iter().zip(streams.iter_mut()) {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*signal);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The exit status of a command that `signal` ended: 128 + its number.
pub(crate) fn exit_status(signal: i32) -> std::process::ExitCode {
    std::process::ExitCode::from(
        u8::try_from(128 + signal).unwrap_or(crate::exit_code::WARDEN_ERROR),
    )
}
