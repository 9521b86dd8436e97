//! Executions started with `wait=false`: their state (queued, running, finished) and, once
//! finished, their result, for `GET /v1/executions/{id}`. Kept in the server's database
//! ([`Kept`]): written when admitted and when finished, so that a restart forgets none. One
//! the last server admitted and never started runs again when the next one starts
//! ([`Jobs::resume`]); one it started and did not finish is answered as interrupted
//! ([`Jobs::recover`]). The state `running` lives in memory only (the database only learns
//! that a job started). Bounded as [`Kept`] is: past its bounds, the oldest finished are
//! forgotten (their results stay in the history).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use warden_engine::Cancellation;

use crate::kept::{Kept, Kind};

/// Where an asynchronous execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Admitted, waiting for a worker.
    Queued,
    /// Running.
    Running,
    /// Done: `result` or `error` is set.
    Finished,
}

/// An asynchronous execution as `GET /v1/executions/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobStatus {
    /// The job's id.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// The result (docs/result-schema.md), once finished.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<serde_json::Value>,
    /// Why it has no result, once finished: `{error, kind}` as the synchronous call answers
    /// (`interrupted` for one the server's end stopped).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<serde_json::Value>,
    /// The name of the API token that asked for it (absent without tokens): only that token
    /// reaches it; for any other, it does not exist.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token: Option<String>,
}

/// The error of a job cancelled (`DELETE /v1/executions/{id}`) before it started, as the
/// engine answers a cancelled execution.
pub(crate) fn cancelled() -> serde_json::Value {
    crate::error::ApiError::from(warden_engine::EngineError::Cancelled { ran: None }).body()
}

/// The message of a job the last server did not finish.
pub(crate) const INTERRUPTED: &str =
    "the server stopped before this execution finished; submit it again";

/// The jobs.
#[derive(Debug)]
pub(crate) struct Jobs {
    /// The unfinished jobs.
    live: Mutex<HashMap<String, Live>>,
    kept: Arc<Kept>,
}

/// An unfinished job.
#[derive(Debug)]
struct Live {
    state: JobState,
    /// What cancels it.
    cancel: Cancellation,
    /// Kept with its request, to run again after a restart until it starts.
    resumable: bool,
    /// Whose it is ([`JobStatus::token`]).
    token: Option<String>,
}

/// What `DELETE /v1/executions/{id}` did.
#[derive(Debug)]
pub(crate) enum Deleted {
    /// The job was queued or running: it is cancelled, and will finish as `cancelled`.
    Cancelled(JobStatus),
    /// The job had finished: this was it, now forgotten.
    Forgotten(JobStatus),
}

impl Jobs {
    /// Jobs kept in `kept`.
    pub(crate) fn new(kept: Arc<Kept>) -> Self {
        Self {
            live: Mutex::default(),
            kept,
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        // A panic while holding the lock leaves the map as valid as before it.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `status` (on a blocking thread: see [`Kept::off_thread`]).
    async fn keep(&self, status: JobStatus) {
        let finished = status.state == JobState::Finished;
        let (id, token) = (status.id.clone(), status.token.clone());
        self.kept
            .write(Kind::Job, id, token, finished, status)
            .await;
    }

    /// A new job of `token`, queued, that `cancel` cancels: in memory, where it is read from
    /// until it finishes; its task writes it ([`Jobs::keep_queued`]) before it runs.
    pub(crate) fn insert(&self, id: &str, cancel: Cancellation, token: Option<&str>) -> JobStatus {
        let status = JobStatus {
            id: id.to_owned(),
            state: JobState::Queued,
            result: None,
            error: None,
            token: token.map(str::to_owned),
        };
        self.live().insert(
            id.to_owned(),
            Live {
                state: JobState::Queued,
                cancel,
                resumable: false,
                token: token.map(str::to_owned),
            },
        );
        status
    }

    /// The token of a job in memory.
    fn token_of(&self, id: &str) -> Option<String> {
        self.live().get(id).and_then(|live| live.token.clone())
    }

    /// Writes a job as queued, so that a restart finds it, with `request`
    /// ([`crate::resume::Resubmission`], as JSON) to run it again if it has not started by
    /// then.
    pub(crate) async fn keep_queued(&self, id: &str, request: String) {
        let (token, cancel) = match self.live().get_mut(id) {
            Some(live) => {
                live.resumable = true;
                (live.token.clone(), Some(live.cancel.clone()))
            }
            None => (None, None),
        };
        let status = JobStatus {
            id: id.to_owned(),
            state: JobState::Queued,
            result: None,
            error: None,
            token: token.clone(),
        };
        self.kept
            .write_queued(Kind::Job, id.to_owned(), token.clone(), status, request)
            .await;
        // Checked after the write: a `DELETE` that cancelled it meanwhile may have kept it as
        // cancelled before this write replaced that; either way it ends kept as cancelled.
        if cancel.is_some_and(|cancel| cancel.is_cancelled()) {
            self.keep_cancelled(id, token).await;
        }
    }

    /// Keeps a job cancelled before it started as finished with [`cancelled`]: a restart
    /// answers it so rather than running it again.
    async fn keep_cancelled(&self, id: &str, token: Option<String>) {
        self.keep(JobStatus {
            id: id.to_owned(),
            state: JobState::Finished,
            result: None,
            error: Some(cancelled()),
            token,
        })
        .await;
    }

    /// The job runs: after a restart it is interrupted, not run again. Writes to the
    /// database: called on the thread that runs the job, before it runs.
    pub(crate) fn set_running(&self, id: &str) {
        let resumable = match self.live().get_mut(id) {
            Some(live) => {
                live.state = JobState::Running;
                std::mem::take(&mut live.resumable)
            }
            None => false,
        };
        if resumable {
            self.kept.started(Kind::Job, id);
        }
    }

    pub(crate) async fn finish(
        &self,
        id: &str,
        outcome: Result<serde_json::Value, serde_json::Value>,
    ) {
        let (result, error) = match outcome {
            Ok(result) => (Some(result), None),
            Err(error) => (None, Some(error)),
        };
        self.keep(JobStatus {
            id: id.to_owned(),
            state: JobState::Finished,
            result,
            error,
            token: self.token_of(id),
        })
        .await;
        // After it is kept: a reader in between still sees it running.
        self.live().remove(id);
    }

    /// A job of `caller` (an API token's name; `None` without tokens); `None` for an unknown
    /// id or another's job.
    pub(crate) async fn get(&self, id: &str, caller: Option<&str>) -> Option<JobStatus> {
        if let Some(live) = self.live().get(id) {
            // Cancelled while queued (`DELETE`): finished as cancelled already, as it is kept,
            // though its task gives back its place in the queue only when a worker frees.
            let withdrawn = live.state == JobState::Queued && live.cancel.is_cancelled();
            return (live.token.as_deref() == caller).then(|| JobStatus {
                id: id.to_owned(),
                state: if withdrawn {
                    JobState::Finished
                } else {
                    live.state
                },
                result: None,
                error: withdrawn.then(cancelled),
                token: live.token.clone(),
            });
        }
        let kept: JobStatus = self.kept.read(Kind::Job, id).await?;
        (kept.token.as_deref() == caller).then_some(kept)
    }

    /// Cancels a job of `caller` still queued or running, or forgets a finished one; `None`
    /// for an unknown id or another's job.
    pub(crate) async fn delete(&self, id: &str, caller: Option<&str>) -> Option<Deleted> {
        let cancelled = self.live().get(id).map(|live| {
            if live.token.as_deref() != caller {
                return None;
            }
            // Under the lock `set_running` takes: a job seen queued here is cancelled before
            // it can start, and never runs.
            live.cancel.cancel();
            Some(JobStatus {
                id: id.to_owned(),
                state: live.state,
                result: None,
                error: None,
                token: live.token.clone(),
            })
        });
        if let Some(cancelled) = cancelled {
            let status = cancelled?;
            if status.state == JobState::Queued {
                // Kept as cancelled now, not when a worker frees up: a server that stops
                // before then must not leave it to the next one to run.
                self.keep_cancelled(id, status.token.clone()).await;
            }
            return Some(Deleted::Cancelled(status));
        }
        let status = self.get(id, caller).await?;
        // A job that finished between the two looks is forgotten as finished.
        let key = id.to_owned();
        let deleted = self
            .kept
            .off_thread(move |kept| kept.delete(Kind::Job, &key))
            .await?;
        deleted.then_some(Deleted::Forgotten(status))
    }

    /// Answers the jobs the last server started and did not finish as interrupted; how many.
    pub(crate) fn recover(&self) -> usize {
        let unfinished = self.kept.interrupted(Kind::Job);
        for interrupted in &unfinished {
            let token = serde_json::from_str::<JobStatus>(&interrupted.body)
                .ok()
                .and_then(|status| status.token);
            let status = JobStatus {
                id: interrupted.key.clone(),
                state: JobState::Finished,
                result: None,
                error: Some(serde_json::json!({ "error": INTERRUPTED, "kind": "interrupted" })),
                token,
            };
            self.kept.put_json(
                Kind::Job,
                &interrupted.key,
                interrupted.caller.as_deref(),
                true,
                &status,
            );
        }
        unfinished.len()
    }
}

impl Jobs {
    /// The jobs the last server admitted and never started, queued again in memory (`GET`
    /// shows them queued, `DELETE` cancels them): each one's id, what cancels it, its
    /// request as kept, and when it was accepted; in the order they were accepted.
    pub(crate) fn resume(&self) -> Vec<(String, Cancellation, String, i64)> {
        let resumable = self.kept.resumable(Kind::Job);
        let mut live = self.live();
        resumable
            .into_iter()
            .map(|r| {
                let cancel = Cancellation::new();
                let token = serde_json::from_str::<JobStatus>(&r.body)
                    .ok()
                    .and_then(|status| status.token);
                live.insert(
                    r.key.clone(),
                    Live {
                        state: JobState::Queued,
                        cancel: cancel.clone(),
                        resumable: true,
                        token,
                    },
                );
                (r.key, cancel, r.request, r.created_ms)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kept::Bounds;

    #[tokio::test]
    async fn a_job_goes_from_queued_to_finished() {
        let jobs = Jobs::new(Arc::new(Kept::in_memory(Bounds::IN_MEMORY)));
        assert_eq!(
            jobs.insert("a", Cancellation::new(), None).state,
            JobState::Queued
        );
        jobs.set_running("a");
        assert_eq!(
            jobs.get("a", None).await.map(|j| j.state),
            Some(JobState::Running)
        );
        jobs.finish("a", Ok(serde_json::json!({"outcome": "x"})))
            .await;
        let done = jobs.get("a", None).await.expect("kept");
        assert_eq!(done.state, JobState::Finished);
        assert!(done.result.is_some() && done.error.is_none());
        assert!(jobs.get("b", None).await.is_none());
    }

    /// A job is its token's: another token, or a caller without one, finds nothing to show
    /// or cancel, while it runs and once it is kept.
    #[tokio::test]
    async fn a_job_is_reached_by_its_token_alone() {
        let jobs = Jobs::new(Arc::new(Kept::in_memory(Bounds::IN_MEMORY)));
        let cancel = Cancellation::new();
        assert_eq!(
            jobs.insert("a", cancel.clone(), Some("alice"))
                .token
                .as_deref(),
            Some("alice")
        );
        for other in [Some("bob"), None] {
            assert!(jobs.get("a", other).await.is_none());
            assert!(jobs.delete("a", other).await.is_none());
        }
        assert!(!cancel.is_cancelled(), "nobody else cancelled it");
        jobs.finish("a", Ok(serde_json::json!({"outcome": "x"})))
            .await;
        assert!(jobs.get("a", Some("bob")).await.is_none());
        assert!(jobs.delete("a", Some("bob")).await.is_none());
        let done = jobs.get("a", Some("alice")).await.expect("alice's");
        assert_eq!(done.state, JobState::Finished);
        assert_eq!(done.token.as_deref(), Some("alice"));
        assert!(matches!(
            jobs.delete("a", Some("alice")).await,
            Some(Deleted::Forgotten(_))
        ));
    }

    #[tokio::test]
    async fn finished_results_past_the_byte_bound_are_forgotten_oldest_first() {
        let jobs = Jobs::new(Arc::new(Kept::in_memory(Bounds {
            documents: 10_000,
            bytes: 10_000,
            ..Bounds::IN_MEMORY
        })));
        let output = "x".repeat(3_000);
        for n in 0..10 {
            let id = format!("job-{n}");
            jobs.insert(&id, Cancellation::new(), None);
            jobs.finish(&id, Ok(serde_json::json!({ "stdout": output })))
                .await;
        }
        // About 3 kB each: the three newest fit in 10 kB.
        let mut kept = Vec::new();
        for n in 0..10 {
            if jobs.get(&format!("job-{n}"), None).await.is_some() {
                kept.push(n);
            }
        }
        assert_eq!(kept, [7, 8, 9]);
        // One result above the bound alone is still kept, until the next.
        jobs.insert("huge", Cancellation::new(), None);
        jobs.finish(
            "huge",
            Ok(serde_json::json!({ "stdout": "y".repeat(20_000) })),
        )
        .await;
        assert!(jobs.get("huge", None).await.is_some() && jobs.get("job-9", None).await.is_none());
        jobs.insert("next", Cancellation::new(), None);
        jobs.finish("next", Err(serde_json::json!({ "error": "failed" })))
            .await;
        assert!(jobs.get("huge", None).await.is_none() && jobs.get("next", None).await.is_some());
        // A job still running is never forgotten.
        jobs.insert("running", Cancellation::new(), None);
        jobs.set_running("running");
        for n in 0..5 {
            let id = format!("more-{n}");
            jobs.insert(&id, Cancellation::new(), None);
            jobs.finish(&id, Ok(serde_json::json!({ "stdout": output })))
                .await;
        }
        assert_eq!(
            jobs.get("running", None).await.map(|j| j.state),
            Some(JobState::Running)
        );
    }

    #[tokio::test]
    async fn a_job_the_last_server_started_is_interrupted_and_one_it_queued_runs_again() {
        let kept = Arc::new(Kept::in_memory(Bounds::IN_MEMORY));
        let before = Jobs::new(Arc::clone(&kept));
        before.insert("queued", Cancellation::new(), None);
        before.keep_queued("queued", "again".into()).await;
        before.insert("running", Cancellation::new(), None);
        before.keep_queued("running", "never".into()).await;
        before.set_running("running");
        before.insert("done", Cancellation::new(), None);
        before
            .finish("done", Ok(serde_json::json!({"stdout": "hi"})))
            .await;
        drop(before);
        let after = Jobs::new(Arc::clone(&kept));
        assert_eq!(after.recover(), 1);
        let job = after.get("running", None).await.expect("kept");
        assert_eq!(job.state, JobState::Finished);
        assert_eq!(job.error.expect("an error")["kind"], "interrupted");
        let resumed = after.resume();
        assert_eq!(resumed.len(), 1);
        assert_eq!(
            (resumed[0].0.as_str(), resumed[0].2.as_str()),
            ("queued", "again")
        );
        assert_eq!(
            after.get("queued", None).await.map(|j| j.state),
            Some(JobState::Queued)
        );
        let done = after.get("done", None).await.expect("kept");
        assert_eq!(done.result.expect("its result")["stdout"], "hi");
        assert_eq!(after.recover(), 0);
        // Started this time: a third server interrupts it.
        after.set_running("queued");
        drop(after);
        let third = Jobs::new(kept);
        assert!(third.resume().is_empty());
        assert_eq!(third.recover(), 1);
    }

    /// Bug hunt: a queued job cancelled by `DELETE` stayed kept as resumable, and the next
    /// server ran it. Cancelled before or after its task kept it queued, a restart finds it
    /// finished as cancelled, with nothing to run.
    #[tokio::test]
    async fn a_job_deleted_while_queued_is_kept_cancelled_and_never_runs_again() {
        let kept = Arc::new(Kept::in_memory(Bounds::IN_MEMORY));
        let before = Jobs::new(Arc::clone(&kept));
        let (late, early) = (Cancellation::new(), Cancellation::new());
        before.insert("late", late.clone(), Some("alice"));
        before.keep_queued("late", "again".into()).await;
        before.insert("early", early.clone(), Some("alice"));
        for id in ["late", "early"] {
            assert!(matches!(
                before.delete(id, Some("alice")).await,
                Some(Deleted::Cancelled(JobStatus {
                    state: JobState::Queued,
                    ..
                }))
            ));
        }
        assert!(late.is_cancelled() && early.is_cancelled());
        // Bug hunt "regr2": it read `queued` until a worker freed up.
        for id in ["late", "early"] {
            let job = before.get(id, Some("alice")).await.expect("live");
            assert_eq!(job.state, JobState::Finished, "{job:?}");
            assert_eq!(job.error.expect("an error")["kind"], "cancelled");
        }
        // The task that keeps it queued ran after the `DELETE`.
        before.keep_queued("early", "again".into()).await;
        drop(before);
        let after = Jobs::new(kept);
        assert!(after.resume().is_empty(), "nothing runs again");
        assert_eq!(after.recover(), 0, "nor is interrupted");
        for id in ["late", "early"] {
            let job = after.get(id, Some("alice")).await.expect("kept");
            assert_eq!(job.state, JobState::Finished, "{job:?}");
            assert_eq!(job.error.expect("an error")["kind"], "cancelled");
        }
    }

    #[tokio::test]
    async fn deleting_cancels_an_unfinished_job_and_forgets_a_finished_one() {
        let jobs = Jobs::new(Arc::new(Kept::in_memory(Bounds::IN_MEMORY)));
        let cancel = Cancellation::new();
        jobs.insert("running", cancel.clone(), None);
        jobs.set_running("running");
        assert!(matches!(
            jobs.delete("running", None).await,
            Some(Deleted::Cancelled(JobStatus {
                state: JobState::Running,
                ..
            }))
        ));
        assert!(cancel.is_cancelled());
        jobs.finish("running", Err(serde_json::json!({"kind": "cancelled"})))
            .await;
        let Some(Deleted::Forgotten(status)) = jobs.delete("running", None).await else {
            panic!("a finished job is forgotten");
        };
        assert_eq!(status.error.expect("its error")["kind"], "cancelled");
        assert!(
            jobs.get("running", None).await.is_none()
                && jobs.delete("running", None).await.is_none()
        );
    }
}
