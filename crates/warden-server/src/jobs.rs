//! Executions started with `wait=false`: their state (queued, running, finished) and, once
//! finished, their result, kept in memory for `GET /v1/executions/{id}`. Bounded: past
//! [`MAX_FINISHED`] finished jobs, or [`MAX_FINISHED_BYTES`] of their results, the oldest are
//! forgotten (their results stay in the history). Without the byte bound, ten thousand results
//! of a megabyte of output each would hold twenty gigabytes.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

/// The most finished jobs kept for polling.
const MAX_FINISHED: usize = 10_000;
/// The most bytes of finished jobs' results kept for polling (their JSON's length); the
/// newest result is kept whatever its size.
pub(crate) const MAX_FINISHED_BYTES: usize = 256 << 20;

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
#[derive(Debug)]
pub(crate) struct Jobs {
    inner: Mutex<Inner>,
    /// [`MAX_FINISHED_BYTES`], smaller in tests.
    max_bytes: usize,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::with_byte_bound(MAX_FINISHED_BYTES)
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, JobStatus>,
    /// The finished jobs, oldest first, with their results' sizes.
    finished: VecDeque<(String, usize)>,
    /// The sum of those sizes.
    finished_bytes: usize,
}

impl Jobs {
    /// Jobs that keep at most `max_bytes` of finished results.
    pub(crate) fn with_byte_bound(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_bytes,
        }
    }

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
        let value = match &outcome {
            Ok(result) | Err(result) => result,
        };
        // Measured outside the lock: a result's output may be megabytes.
        let bytes = serde_json::to_vec(value).map_or(0, |json| json.len());
        let max_bytes = self.max_bytes;
        self.with(|jobs| {
            if let Some(job) = jobs.by_id.get_mut(id) {
                job.state = JobState::Finished;
                match outcome {
                    Ok(result) => job.result = Some(result),
                    Err(error) => job.error = Some(error),
                }
            }
            jobs.finished.push_back((id.to_owned(), bytes));
            jobs.finished_bytes = jobs.finished_bytes.saturating_add(bytes);
            while jobs.finished.len() > MAX_FINISHED
                || (jobs.finished_bytes > max_bytes && jobs.finished.len() > 1)
            {
                if let Some((old, size)) = jobs.finished.pop_front() {
                    jobs.by_id.remove(&old);
                    jobs.finished_bytes = jobs.finished_bytes.saturating_sub(size);
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

    #[test]
    fn finished_results_past_the_byte_bound_are_forgotten_oldest_first() {
        let jobs = Jobs::with_byte_bound(10_000);
        let output = "x".repeat(3_000);
        for n in 0..10 {
            let id = format!("job-{n}");
            jobs.insert(&id);
            jobs.finish(&id, Ok(serde_json::json!({ "stdout": output })));
        }
        // About 3 kB each: the three newest fit in 10 kB.
        let kept: Vec<usize> = (0..10)
            .filter(|n| jobs.get(&format!("job-{n}")).is_some())
            .collect();
        assert_eq!(kept, [7, 8, 9]);
        // One result above the bound alone is still kept, until the next.
        jobs.insert("huge");
        jobs.finish(
            "huge",
            Ok(serde_json::json!({ "stdout": "y".repeat(20_000) })),
        );
        assert!(jobs.get("huge").is_some() && jobs.get("job-9").is_none());
        jobs.insert("next");
        jobs.finish("next", Err(serde_json::json!({ "error": "failed" })));
        assert!(jobs.get("huge").is_none() && jobs.get("next").is_some());
        // A job still running is never forgotten.
        jobs.insert("running");
        jobs.set_running("running");
        for n in 0..5 {
            let id = format!("more-{n}");
            jobs.insert(&id);
            jobs.finish(&id, Ok(serde_json::json!({ "stdout": output })));
        }
        assert_eq!(
            jobs.get("running").map(|j| j.state),
            Some(JobState::Running)
        );
    }
}
