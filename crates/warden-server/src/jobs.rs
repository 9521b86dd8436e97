//! Executions started with `wait=false`: their state (queued, running, finished) and, once
//! finished, their result, kept in memory for `GET /v1/executions/{id}`. Bounded: past
//! [`MAX_FINISHED`] finished jobs the oldest are forgotten (their results stay in the history).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

/// The most finished jobs kept for polling.
const MAX_FINISHED: usize = 10_000;

/// Where an asynchronous execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatus {
    /// The job's id.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// The result (docs/result-schema.md), once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it has no result, once finished: `{error, kind}` as the synchronous call answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

/// The jobs.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, JobStatus>,
    finished: VecDeque<String>,
}

impl Jobs {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding the lock leaves the map as valid as before it.
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn insert(&self, id: &str) -> JobStatus {
        let status = JobStatus {
            id: id.to_owned(),
            state: JobState::Queued,
            result: None,
            error: None,
        };
        self.with(|jobs| jobs.by_id.insert(id.to_owned(), status.clone()));
        status
    }

    pub(crate) fn set_running(&self, id: &str) {
        self.with(|jobs| {
            if let Some(job) = jobs.by_id.get_mut(id) {
                job.state = JobState::Running;
            }
        });
    }

    pub(crate) fn finish(&self, id: &str, outcome: Result<serde_json::Value, serde_json::Value>) {
        self.with(|jobs| {
            if let Some(job) = jobs.by_id.get_mut(id) {
                job.state = JobState::Finished;
                match outcome {
                    Ok(result) => job.result = Some(result),
                    Err(error) => job.error = Some(error),
                }
            }
            jobs.finished.push_back(id.to_owned());
            while jobs.finished.len() > MAX_FINISHED {
                if let Some(old) = jobs.finished.pop_front() {
                    jobs.by_id.remove(&old);
                }
            }
        });
    }

    pub(crate) fn get(&self, id: &str) -> Option<JobStatus> {
        self.with(|jobs| jobs.by_id.get(id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_goes_from_queued_to_finished() {
        let jobs = Jobs::default();
        assert_eq!(jobs.insert("a").state, JobState::Queued);
        jobs.set_running("a");
        assert_eq!(jobs.get("a").map(|j| j.state), Some(JobState::Running));
        jobs.finish("a", Ok(serde_json::json!({"outcome": "x"})));
        let done = jobs.get("a").expect("kept");
        assert_eq!(done.state, JobState::Finished);
        assert!(done.result.is_some() && done.error.is_none());
        assert!(jobs.get("b").is_none());
    }
}
