//! What the last server accepted to run later and never started: a `/v1` execution with
//! `wait=false`, a Judge0 submission without `wait=true` (one of a batch included). Each is
//! kept with its request as sent ([`Resubmission`]) until it starts; when the next server
//! starts, it is queued again under its own id or token, in the order the requests were
//! accepted, ahead of new requests, and runs as it would have (recorded with the token that
//! asked for it). One that had started is not run again: it is answered as interrupted, since
//! its program may have done part of its work (a volume written, a callback's target reached).
//! A request the new server's settings refuse (a language no longer configured, a limit above a
//! lowered maximum, a token no longer configured) is answered with that refusal, and never runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_engine::Cancellation;

use crate::execution_request::ExecutionBody;
use crate::judge0;
use crate::routes::executions;
use crate::state::{Api, AppState, Caller};

/// A request kept to run again after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Resubmission {
    /// The configured name of the token that asked, if any (the history records it; its
    /// quotas were taken when the request was accepted). A token the next server's
    /// configuration no longer has is refused ([`crate::auth::AuthError::Revoked`]).
    #[serde(default)]
    pub(crate) token: Option<String>,
    /// Judge0: whether the body's text fields are base64 (`base64_encoded`).
    #[serde(default)]
    pub(crate) base64: bool,
    /// Judge0: when the submission was accepted (its `created_at`), in milliseconds since the
    /// epoch.
    #[serde(default)]
    pub(crate) accepted_ms: Option<i64>,
    /// When the request was accepted ([`accepted_now`]): the order the next server runs the
    /// kept requests in, whatever their API. Missing in what older servers kept.
    #[serde(default)]
    pub(crate) accepted_us: Option<i64>,
    /// The request's body as sent (a Judge0 batch: the submission's own item).
    pub(crate) body: Value,
}

impl Resubmission {
    /// As kept.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a JSON value and plain fields serialize")
    }

    /// Where it goes in the order of what runs again: when it was accepted, in microseconds,
    /// else when it was first kept (`created_ms`).
    fn order(&self, created_ms: i64) -> i64 {
        self.accepted_us
            .or_else(|| self.accepted_ms.map(|ms| ms.saturating_mul(1000)))
            .unwrap_or_else(|| created_ms.saturating_mul(1000))
    }
}

/// Now, in microseconds since the epoch, and later than every earlier answer in this process:
/// two requests accepted one after the other never tie (milliseconds did, and a `/v1` job kept
/// in the same millisecond as a Judge0 submission accepted before it ran first after a restart).
pub(crate) fn accepted_now() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let previous = LAST
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or_else(|last| last);
    now.max(previous.saturating_add(1))
}

/// One request to run again.
enum Resumed {
    Job {
        id: String,
        cancel: Cancellation,
        kept: String,
    },
    Judge0 {
        token: String,
        kept: String,
    },
}

impl AppState {
    /// Queues again what the last server accepted and never started, and runs it in the
    /// background as workers free up; how many. Sends the callbacks of the submissions
    /// answered at start-up. Called once, at start-up, inside the runtime.
    pub(crate) fn resume(&self) -> usize {
        let mut queue: Vec<(i64, Resumed)> = self
            .jobs()
            .resume()
            .into_iter()
            .map(|(id, cancel, kept, created_ms)| {
                let order = serde_json::from_str::<Resubmission>(&kept)
                    .map_or(created_ms.saturating_mul(1000), |r| r.order(created_ms));
                (order, Resumed::Job { id, cancel, kept })
            })
            .collect();
        for resumable in self.judge0_store().resumable() {
            let Some(accepted) = self.hold_submission(&resumable) else {
                continue;
            };
            queue.push((
                accepted,
                Resumed::Judge0 {
                    token: resumable.key,
                    kept: resumable.request,
                },
            ));
        }
        // What the last server left unfinished, or this one refused to run, is answered: its
        // callback is sent as a finished submission's is (Judge0 calls back whatever the
        // status), if this server takes callbacks.
        let owed = self.judge0_store().owed_callbacks();
        if self.options().judge0_callbacks {
            for (url, attributes) in owed {
                judge0::call_back(url, &attributes);
            }
        }
        // Stable: the two kinds' own orders hold between equal times (only in what older
        // servers kept: `accepted_now` never ties).
        queue.sort_by_key(|(accepted, _)| *accepted);
        let count = queue.len();
        if count > 0 {
            tracing::warn!(
                count,
                "running again the requests the last server accepted and never started"
            );
            let state = self.clone();
            tokio::spawn(async move {
                for (_, resumed) in queue {
                    // Shutting down: the rest stay queued in the database for the next start.
                    let Ok(admitted) = state.admit_resumed().await else {
                        return;
                    };
                    match resumed {
                        Resumed::Job { id, cancel, kept } => {
                            state.resume_job(id, cancel, kept, admitted).await
                        }
                        Resumed::Judge0 { token, kept } => {
                            judge0::resume_submission(&state, token, kept, admitted)
                        }
                    }
                }
            });
        }
        count
    }

    /// Holds a kept submission in memory as queued, parsed again from its request; its place
    /// in the order of what runs again. `None` when it cannot run (answered as such).
    fn hold_submission(&self, resumable: &crate::kept::Resumable) -> Option<i64> {
        let store = self.judge0_store();
        let refused = |why: String| {
            store.answer_failed(
                &resumable.key,
                resumable.caller.as_deref(),
                &resumable.body,
                &why,
            );
            None
        };
        let resubmission: Resubmission = match serde_json::from_str(&resumable.request) {
            Ok(r) => r,
            Err(e) => return refused(format!("its kept request is unreadable: {e}")),
        };
        if let Err(revoked) = self.tokens().still_accepts(resubmission.token.as_deref()) {
            return refused(format!("this server refuses it: {revoked}"));
        }
        let input = match judge0::submission::parse(self, &resubmission.body, resubmission.base64) {
            Ok(input) => input,
            Err(invalid) => {
                let why = serde_json::to_string(&invalid).unwrap_or_default();
                return refused(format!("this server refuses it: {why}"));
            }
        };
        let accepted = resubmission.accepted_ms.unwrap_or(resumable.created_ms);
        store.hold(&resumable.key, resumable.caller.clone(), input, accepted);
        Some(resubmission.order(resumable.created_ms))
    }

    /// Runs a kept `/v1` job again.
    async fn resume_job(
        &self,
        id: String,
        cancel: Cancellation,
        kept: String,
        admitted: crate::state::Admitted,
    ) {
        if cancel.is_cancelled() {
            // `DELETE` while it waited for its turn: kept as cancelled already.
            return self.jobs().finish(&id, Err(crate::jobs::cancelled())).await;
        }
        let parsed = serde_json::from_str::<Resubmission>(&kept)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let body: ExecutionBody =
                    serde_json::from_value(r.body).map_err(|e| e.to_string())?;
                Ok((r.token, body))
            });
        let (token, body) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                let error = crate::error::ApiError::unprocessable(format!(
                    "its kept request is unreadable: {e}"
                ));
                return self.jobs().finish(&id, Err(error.body())).await;
            }
        };
        if let Err(revoked) = self.tokens().still_accepts(token.as_deref()) {
            let error = crate::error::ApiError::from(revoked);
            return self.jobs().finish(&id, Err(error.body())).await;
        }
        let mut request = match body.into_request(self.options()) {
            Ok(request) => request,
            Err(error) => return self.jobs().finish(&id, Err(error.body())).await,
        };
        request.cancel = Some(cancel);
        let caller = Caller {
            api: Api::Own,
            token,
        };
        executions::launch(self, id, request, caller, admitted, kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept request's resubmission by `token`, as JSON.
    fn resubmitted(token: Option<&str>, body: Value) -> String {
        Resubmission {
            token: token.map(str::to_owned),
            base64: false,
            accepted_ms: None,
            accepted_us: None,
            body,
        }
        .to_json()
    }

    /// A kept Judge0 submission's `message`, decoded from its base64.
    fn kept_message(submission: &serde_json::Map<String, Value>) -> String {
        use base64::Engine as _;
        let encoded = submission["message"].as_str().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64, as kept");
        String::from_utf8(bytes).expect("text")
    }

    /// The job `id` of `token` once it finished (within 10 s).
    async fn finished(state: &AppState, id: &str, token: Option<&str>) -> crate::jobs::JobStatus {
        let start = std::time::Instant::now();
        loop {
            let job = state.jobs().get(id, token).await.expect("kept");
            if job.state == crate::JobState::Finished {
                return job;
            }
            assert!(start.elapsed().as_secs() < 10, "never answered");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn acceptances_never_tie() {
        let times: Vec<i64> = (0..1000).map(|_| accepted_now()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    }

    #[test]
    fn a_resubmission_reads_back_as_kept() {
        let kept = Resubmission {
            token: Some("grader".into()),
            base64: true,
            accepted_ms: Some(5),
            accepted_us: Some(5_000_001),
            body: serde_json::json!({"source_code": "cHJpbnQoMSk=", "language_id": 71}),
        };
        let back: Resubmission = serde_json::from_str(&kept.to_json()).expect("read back");
        assert_eq!(back, kept);
        let bare: Resubmission = serde_json::from_str(r#"{"body": {}}"#).expect("defaults");
        assert_eq!(
            (&bare.token, bare.base64, bare.accepted_ms, bare.accepted_us),
            (&None, false, None, None)
        );
        assert_eq!(bare.order(7), 7000, "when it was first kept");
        assert_eq!(back.order(7), 5_000_001, "when it was accepted");
        let ms_only = Resubmission {
            accepted_us: None,
            ..back
        };
        assert_eq!(ms_only.order(7), 5000);
    }

    /// Bug hunt: what a token removed from the configuration had queued ran after the restart,
    /// under no quota. It is answered as the token is now: not accepted.
    #[tokio::test]
    async fn a_kept_request_of_a_removed_token_is_refused_and_never_runs() {
        use crate::kept::{Kept, Kind};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("results.sqlite3");
        let kept = Kept::open(&path, std::time::Duration::from_secs(60)).expect("opened");
        let again = |body: Value| resubmitted(Some("gone"), body);
        kept.put_queued(
            Kind::Judge0,
            "t",
            Some("gone"),
            r#"{"status_id": 1}"#,
            &again(serde_json::json!({"language_id": 46, "source_code": "echo x"})),
        );
        kept.put_queued(
            Kind::Job,
            "j",
            Some("gone"),
            r#"{"id": "j", "state": "queued", "token": "gone"}"#,
            &again(serde_json::json!({"language": "bash", "code": "echo x"})),
        );
        drop(kept);
        let engine = warden_engine::Engine::new(warden_engine::EngineConfig::new(
            "/nonexistent/warden".into(),
        ))
        .expect("engine");
        let options = crate::ServerOptions {
            results: Some(path.clone()),
            tokens: vec![warden_core::TokenConfig {
                name: "kept".into(),
                token: "s3cret".into(),
                max_concurrent: None,
                requests_per_minute: None,
                admin: false,
            }],
            ..crate::ServerOptions::default()
        };
        let state = AppState::with_options(engine, options);
        assert_eq!(state.resume(), 1, "the submission is answered at once");
        let submission = state.judge0_store().get("t").await.expect("kept");
        assert_eq!(submission["status_id"], 13, "{submission:?}");
        let message = kept_message(&submission);
        assert!(message.contains("\"gone\""), "{message}");
        assert!(message.contains("no longer accepted"), "{message}");
        let job = finished(&state, "j", Some("gone")).await;
        let error = job.error.expect("refused");
        assert_eq!(error["kind"], "unauthorized", "{error}");
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.contains("\"gone\" that asked for this is no longer accepted")),
            "{error}"
        );
    }

    /// What the new server's settings refuse is answered with the refusal, not run, and not
    /// run again by the server after it.
    #[tokio::test]
    async fn a_kept_request_the_next_server_refuses_is_answered_with_why() {
        use crate::kept::{Kept, Kind};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("results.sqlite3");
        let kept = Kept::open(&path, std::time::Duration::from_secs(60)).expect("opened");
        let again = |body: Value| resubmitted(None, body);
        kept.put_queued(
            Kind::Judge0,
            "t",
            None,
            r#"{"status_id": 1}"#,
            &again(serde_json::json!({"language_id": 99999, "source_code": "x"})),
        );
        kept.put_queued(
            Kind::Job,
            "j",
            None,
            r#"{"id": "j", "state": "queued"}"#,
            &again(serde_json::json!({"code": "x", "limits": {"wall_time": "1000h"}})),
        );
        kept.put_queued(Kind::Job, "broken", None, "{}", "not json");
        drop(kept);
        let engine = warden_engine::Engine::new(warden_engine::EngineConfig::new(
            "/nonexistent/warden".into(),
        ))
        .expect("engine");
        let options = crate::ServerOptions {
            results: Some(path.clone()),
            ..crate::ServerOptions::default()
        };
        let state = AppState::with_options(engine, options);
        assert_eq!(
            state.resume(),
            2,
            "the refused submission is answered at once"
        );
        let submission = state.judge0_store().get("t").await.expect("kept");
        assert_eq!(submission["status_id"], 13);
        let message = kept_message(&submission);
        assert!(message.contains("this server refuses it"), "{message}");
        assert!(message.contains("language_id"), "{message}");
        for (id, says) in [("j", "wall_time"), ("broken", "unreadable")] {
            let job = finished(&state, id, None).await;
            let error = job.error.expect("refused");
            assert_eq!(error["kind"], "request", "{error}");
            assert!(
                error["error"].as_str().is_some_and(|e| e.contains(says)),
                "{error}"
            );
        }
        drop(state);
        let kept = Kept::open(&path, std::time::Duration::from_secs(60)).expect("opened again");
        assert!(kept.resumable(Kind::Job).is_empty() && kept.resumable(Kind::Judge0).is_empty());
    }
}
