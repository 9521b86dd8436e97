//! The submissions of this server, by token: what `wait=false` and the batch endpoints answer
//! later from. Each is kept in the server's database ([`Kept`]) as its attributes (Judge0's
//! `*` and warden's own, text as base64), written when it is accepted and when it finishes,
//! so that a restart forgets none. An asynchronous one the last server never started runs
//! when the next one starts ([`Store::resumable`]); one it started and did not finish (or a
//! `wait=true` one, whose client left with the server) is answered as an Internal Error
//! ([`Store::recover`]). The state "Processing" lives in memory only. Bounded as
//! [`Kept`] is: past its bounds, the oldest finished submissions are forgotten (their token
//! then answers 404).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde_json::{json, Map, Value};
use warden_engine::ExecutionResult;

use super::fields;
use super::statuses::Status;
use super::submission::Input;
use crate::kept::{Kept, Kind, Tally};

/// The message of a submission the last server did not finish.
pub(crate) const INTERRUPTED: &str =
    "warden stopped before this submission finished; submit it again";

/// One submission, until it finishes.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// Its token.
    pub(crate) token: String,
    /// What was submitted.
    pub(crate) input: Arc<Input>,
    /// Where it is.
    pub(crate) progress: Progress,
    /// When it was submitted.
    pub(crate) created_at: SystemTime,
    /// When it finished.
    pub(crate) finished_at: Option<SystemTime>,
    /// Kept with its request, to run again after a restart until it starts.
    pub(crate) resumable: bool,
    /// The name of the API token that submitted it (`None` without tokens): whose answer it
    /// is to the bounds on what is kept ([`Kept`]).
    pub(crate) caller: Option<String>,
}

/// Where a submission is.
#[derive(Debug, Clone)]
pub(crate) enum Progress {
    /// Waiting for a worker.
    Queued,
    /// Running.
    Processing,
    /// Ran to a result.
    Finished(Box<ExecutionResult>),
    /// warden could not run it (Judge0's "Internal Error", with this message).
    Failed(String),
    /// warden would not run it, for the submission's own fault found only when it was to run
    /// (the mode policy's refusal of what the analysis found, the `[response]` rule): Judge0's
    /// "Compilation Error", its reason as the compile output, since the program was refused
    /// before it ran and the client, not the server, is to act.
    Refused(String),
}

/// A submission's attributes, text as base64 ([`fields::attributes`]).
pub(crate) type Attributes = Map<String, Value>;

/// The shared store (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Store {
    /// The unfinished submissions.
    live: Arc<Mutex<HashMap<String, Record>>>,
    kept: Arc<Kept>,
    /// The last `/statistics` answer, until it expires (statistics.rs).
    statistics: Arc<Mutex<Option<(Instant, Value)>>>,
    /// The callbacks owed for the submissions answered at start-up ([`Store::answer_failed`]):
    /// their URL and attributes, until the running server sends them
    /// ([`Store::owed_callbacks`]).
    owed: Arc<Mutex<Vec<(String, Attributes)>>>,
}

impl Store {
    /// Submissions kept in `kept`.
    pub(crate) fn new(kept: Arc<Kept>) -> Self {
        Self {
            live: Arc::default(),
            kept,
            statistics: Arc::default(),
            owed: Arc::default(),
        }
    }

    /// Holds a new submission in memory, where it is read from until it finishes; its task
    /// writes it ([`Store::keep_queued`]) before it runs.
    pub(crate) fn insert(&self, record: Record) {
        self.live().insert(record.token.clone(), record);
    }

    /// Writes a submission held in memory as it stands (queued), so that a restart finds it;
    /// with `request` ([`crate::resume::Resubmission`], as JSON), a restart before it starts
    /// runs it.
    pub(crate) async fn keep_queued(&self, token: &str, request: Option<String>) {
        let held = self.live().get_mut(token).map(|record| {
            record.resumable = request.is_some();
            (fields::attributes(record), record.caller.clone())
        });
        let Some((attributes, caller)) = held else {
            return;
        };
        match request {
            Some(request) => {
                self.kept
                    .write_queued(Kind::Judge0, token.to_owned(), caller, attributes, request)
                    .await
            }
            None => self.keep(token.to_owned(), caller, false, attributes).await,
        }
    }

    /// A submission's attributes, by token.
    pub(crate) async fn get(&self, token: &str) -> Option<Attributes> {
        if let Some(record) = self.live().get(token) {
            return Some(fields::attributes(record));
        }
        self.kept.read(Kind::Judge0, token).await
    }

    /// A page of the submissions, the newest first ([`Kept::page`]), each as it stands now
    /// (one running is shown as processing); and how many there are in all.
    pub(crate) async fn page(&self, offset: u64, limit: u64) -> (u64, Vec<Attributes>) {
        let (total, documents) = self
            .kept
            .off_thread(move |kept| kept.page(Kind::Judge0, offset, limit))
            .await
            .unwrap_or_default();
        let live = self.live();
        let shown = documents
            .into_iter()
            .filter_map(|(token, json)| match live.get(&token) {
                Some(record) => Some(fields::attributes(record)),
                None => serde_json::from_str(&json)
                    .map_err(
                        |e| tracing::error!(error = %e, token, "a kept submission is unreadable"),
                    )
                    .ok(),
            })
            .collect();
        (total, shown)
    }

    /// A submission runs (in memory; the database learns that a restart must not run it
    /// again). Called on the thread that runs it, before it runs.
    pub(crate) fn processing(&self, token: &str) {
        let resumable = match self.live().get_mut(token) {
            Some(record) => {
                record.progress = Progress::Processing;
                std::mem::take(&mut record.resumable)
            }
            None => false,
        };
        if resumable {
            self.kept.started(Kind::Judge0, token);
        }
    }

    /// The submissions the last server accepted to run later and never started, in the order
    /// they were accepted: to be parsed again and held ([`Store::insert`]) before they run.
    pub(crate) fn resumable(&self) -> Vec<crate::kept::Resumable> {
        self.kept.resumable(Kind::Judge0)
    }

    /// A submission finished (`progress` is `Finished` or `Failed`): it is kept and leaves
    /// the memory.
    pub(crate) async fn finish(&self, token: &str, progress: Progress) {
        let (attributes, caller) = {
            let mut live = self.live();
            let Some(record) = live.get_mut(token) else {
                return;
            };
            record.progress = progress;
            record.finished_at = Some(SystemTime::now());
            (fields::attributes(record), record.caller.clone())
        };
        self.keep(token.to_owned(), caller, true, attributes).await;
        // After it is kept: a reader in between still sees it in memory.
        self.live().remove(token);
    }

    /// Deletes a finished submission, answering what it was; `Err` with the status of one still
    /// queued or running (which Judge0 does not delete), `Ok(None)` for an unknown token.
    pub(crate) async fn delete(&self, token: &str) -> Result<Option<Attributes>, Status> {
        if let Some(record) = self.live().get(token) {
            return Err(match record.progress {
                Progress::Queued => Status::InQueue,
                _ => Status::Processing,
            });
        }
        let Some(attributes) = self.get(token).await else {
            return Ok(None);
        };
        let key = token.to_owned();
        let deleted = self
            .kept
            .off_thread(move |kept| kept.delete(Kind::Judge0, &key))
            .await;
        Ok(deleted.unwrap_or(false).then_some(attributes))
    }

    /// Answers the submissions the last server started (or ran for a `wait=true` client) and
    /// did not finish as Internal Errors; how many.
    pub(crate) fn recover(&self) -> usize {
        let unfinished = self.kept.interrupted(Kind::Judge0);
        for interrupted in &unfinished {
            self.answer_failed(
                &interrupted.key,
                interrupted.caller.as_deref(),
                &interrupted.body,
                INTERRUPTED,
            );
        }
        unfinished.len()
    }

    /// Rewrites a kept unfinished submission of `caller` (`json`, its attributes) as an
    /// Internal Error with `message`, now; its callback, if it asked for one, is owed
    /// ([`Store::owed_callbacks`]), as for any submission that finishes.
    pub(crate) fn answer_failed(
        &self,
        token: &str,
        caller: Option<&str>,
        json: &str,
        message: &str,
    ) {
        let mut attributes: Attributes = serde_json::from_str(json).unwrap_or_default();
        let status = Status::InternalError;
        attributes.insert("token".into(), json!(token));
        attributes.insert("status".into(), status.json());
        attributes.insert("status_id".into(), json!(status.id()));
        attributes.insert("message".into(), fields::text_value(message.as_bytes()));
        attributes.insert(
            "finished_at".into(),
            json!(fields::timestamp(SystemTime::now())),
        );
        self.kept
            .put_json(Kind::Judge0, token, caller, true, &attributes);
        let url = attributes.get("callback_url").and_then(Value::as_str);
        if let Some(url) = url.filter(|u| !u.trim().is_empty()) {
            let owed = (url.to_owned(), attributes.clone());
            self.owed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(owed);
        }
    }

    /// The callbacks owed for submissions answered since the last call, to send: answered as
    /// the server starts, before it runs anything that could send them.
    pub(crate) fn owed_callbacks(&self) -> Vec<(String, Attributes)> {
        std::mem::take(&mut *self.owed.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Holds a kept submission of `caller` that will run again, queued, as accepted at
    /// `accepted_ms`.
    pub(crate) fn hold(&self, token: &str, caller: Option<String>, input: Input, accepted_ms: i64) {
        let since_epoch = std::time::Duration::from_millis(u64::try_from(accepted_ms).unwrap_or(0));
        self.insert(Record {
            token: token.to_owned(),
            input: Arc::new(input),
            progress: Progress::Queued,
            created_at: SystemTime::UNIX_EPOCH + since_epoch,
            finished_at: None,
            resumable: true,
            caller,
        });
    }

    /// What a held submission runs.
    pub(crate) fn input(&self, token: &str) -> Option<Arc<Input>> {
        self.live().get(token).map(|r| Arc::clone(&r.input))
    }

    /// The kept submissions counted ([`Kept::tally`]: by language id and status id), from UTC
    /// day `since_day` on, with each unfinished one's status as it stands in memory (a running
    /// one is kept as queued).
    pub(crate) async fn tally(&self, since_day: i64) -> Tally {
        let mut tally = self
            .kept
            .off_thread(move |kept| {
                kept.tally(Kind::Judge0, since_day, "$.language_id", "$.status_id")
            })
            .await
            .unwrap_or_default();
        let live = self.live();
        for (token, status) in &mut tally.unfinished {
            match live.get(token.as_str()).map(|r| &r.progress) {
                Some(Progress::Queued) => *status = Some(Status::InQueue.id().into()),
                Some(Progress::Processing) => *status = Some(Status::Processing.id().into()),
                _ => {}
            }
        }
        tally
    }

    /// The statistics answered last, unless they are older than `max_age`.
    pub(crate) fn cached_statistics(&self, max_age: std::time::Duration) -> Option<Value> {
        let cached = self.statistics.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `statistics` as the last answered, computed at `at`.
    pub(crate) fn cache_statistics(&self, at: Instant, statistics: Value) {
        *self.statistics.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, statistics));
    }

    /// Writes `attributes` (on a blocking thread: see [`Kept::off_thread`]).
    async fn keep(
        &self,
        token: String,
        caller: Option<String>,
        finished: bool,
        attributes: Attributes,
    ) {
        self.kept
            .write(Kind::Judge0, token, caller, finished, attributes)
            .await;
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A panic while holding the lock leaves whole records behind (each update is one
        // assignment), so the data is still good.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fresh token, shaped as Judge0's (a version 4 UUID) from an execution id's 128 random bits;
/// `Err` when the kernel gives none (the submission fails rather than get a guessable token).
pub(crate) fn token() -> Result<String, warden_engine::RandomError> {
    let hex = warden_engine::ExecutionId::random()?.to_string();
    let mut chars: Vec<char> = hex.chars().collect();
    if chars.len() != 32 {
        return Ok(hex);
    }
    chars[12] = '4';
    chars[16] = match chars[16].to_digit(16).unwrap_or(0) & 0x3 {
        0 => '8',
        1 => '9',
        2 => 'a',
        _ => 'b',
    };
    let text: String = chars.into_iter().collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &text[0..8],
        &text[8..12],
        &text[12..16],
        &text[16..20],
        &text[20..32]
    ))
}

/// A python submission of `code_bytes` bytes of comments, queued, for tests.
#[cfg(test)]
pub(crate) fn submission(token: &str, code_bytes: usize) -> Record {
    Record {
        token: token.to_owned(),
        input: Arc::new(Input {
            language_id: 71,
            language: "python".into(),
            language_name: "Python".into(),
            source_code: vec![b'#'; code_bytes],
            additional_files: Vec::new(),
            stdin: None,
            expected_output: None,
            args: Vec::new(),
            compile_options: Vec::new(),
            limits: warden_core::LimitOverrides::default(),
            planned: None,
            redirect_stderr_to_stdout: false,
            number_of_runs: 1,
            project: false,
            cpu_time_limit: None,
            callback_url: None,
            echo: serde_json::Map::new(),
        }),
        progress: Progress::Queued,
        created_at: SystemTime::now(),
        finished_at: None,
        resumable: false,
        caller: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_version_4_uuids() {
        let t = token().expect("random bytes");
        assert_eq!(t.len(), 36);
        assert_eq!(t.as_bytes()[14], b'4');
        assert!(matches!(t.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(t, token().expect("random bytes"));
    }

    #[tokio::test]
    async fn a_submission_is_kept_through_a_restart_and_an_unfinished_one_is_interrupted() {
        let kept = Arc::new(Kept::in_memory(crate::kept::Bounds::IN_MEMORY));
        let before = Store::new(Arc::clone(&kept));
        before.insert(submission("queued", 10));
        before.keep_queued("queued", None).await;
        before.insert(submission("later", 10));
        before.keep_queued("later", Some("again".into())).await;
        before.insert(submission("running", 10));
        before.keep_queued("running", Some("never".into())).await;
        before.processing("running");
        assert_eq!(before.get("running").await.expect("kept")["status_id"], 2);
        before.insert(submission("failed", 10));
        before.finish("failed", Progress::Failed("no".into())).await;
        drop(before);
        let after = Store::new(kept);
        assert_eq!(after.recover(), 2);
        for token in ["queued", "running"] {
            let shown = after.get(token).await.expect("kept");
            assert_eq!(shown["status_id"], 13);
            assert_eq!(shown["token"], token);
            assert!(shown["finished_at"].is_string());
        }
        let failed = after.get("failed").await.expect("kept");
        assert_eq!(failed["status_id"], 13);
        assert_eq!(failed["source_code"], "IyMjIyMjIyMjIw==");
        assert_eq!(after.recover(), 0);
        // Accepted to run later and never started: queued, to run again.
        let resumable = after.resumable();
        assert_eq!(resumable.len(), 1);
        assert_eq!(
            (resumable[0].key.as_str(), resumable[0].request.as_str()),
            ("later", "again")
        );
        assert_eq!(after.get("later").await.expect("kept")["status_id"], 1);
        assert!(after.get("unknown").await.is_none());
    }

    #[tokio::test]
    async fn a_page_shows_each_submission_as_it_stands_now() {
        let store = Store::new(Arc::new(Kept::in_memory(crate::kept::Bounds::IN_MEMORY)));
        for token in ["first", "second", "third"] {
            store.insert(submission(token, 1));
            store.keep_queued(token, None).await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        store.processing("second");
        store.finish("first", Progress::Failed("no".into())).await;
        let (total, page) = store.page(0, 10).await;
        let shown: Vec<(&Value, &Value)> = page
            .iter()
            .map(|a| (&a["token"], &a["status_id"]))
            .collect();
        assert_eq!(total, 3);
        assert_eq!(
            shown,
            [
                (&json!("third"), &json!(1)),
                (&json!("second"), &json!(2)),
                (&json!("first"), &json!(13)),
            ]
        );
        assert_eq!(store.page(2, 10).await.1.len(), 1);
    }
}
