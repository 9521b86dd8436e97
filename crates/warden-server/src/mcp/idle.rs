//! When a session of `/mcp` is idle, and its closing then: no message either way for
//! [`IDLE`], and no request in flight. rmcp's own keep-alive counts messages only, so it
//! closed a session whose one call ran past 5 minutes, cancelling the call and leaving its
//! `POST` unanswered (hunt mcp 6); warden's sessions run without it and are closed here.
//! Runs in the server process: a task per session, asleep until the session may be idle.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a session with nothing in flight lasts after its last message.
pub(crate) const IDLE: Duration = Duration::from_secs(5 * 60);

/// What a session's transport saw last: told by [`super::unique_ids::UniqueIds`].
#[derive(Debug)]
pub(crate) struct Activity(Mutex<Seen>);

#[derive(Debug)]
struct Seen {
    in_flight: usize,
    last: Instant,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Seen {
            in_flight: 0,
            last: Instant::now(),
        })))
    }

    /// A message went either way; `in_flight` requests now await their answers.
    pub(crate) fn touch(&self, in_flight: usize) {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *seen = Seen {
            in_flight,
            last: Instant::now(),
        };
    }

    /// How long until the session may be idle, after `idle` without a message; `None` when
    /// it is idle now. A request in flight keeps it busy however long it runs.
    pub(crate) fn idle_in(&self, idle: Duration) -> Option<Duration> {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.in_flight > 0 {
            return Some(idle);
        }
        idle.checked_sub(seen.last.elapsed())
            .filter(|left| !left.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_in_flight_keeps_a_session_busy_and_its_answer_starts_the_idle_time() {
        let activity = Activity::new();
        let idle = Duration::from_millis(50);
        assert!(activity.idle_in(idle).is_some(), "just opened");
        activity.touch(1);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(activity.idle_in(idle), Some(idle), "a call runs: busy");
        activity.touch(0);
        assert!(activity.idle_in(idle).is_some(), "answered just now");
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(activity.idle_in(idle), None, "idle since the answer");
    }
}
