//! A database written by the single-process taskd (schema 1) opens in this
//! one: every task comes back, what that design decided in memory is decided
//! again by the store, and work goes on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use serde_json::json;
use taskd_client::proto::attempt::Outcome;
use taskd_client::{NewTask, TaskStatus};

use crate::support::TestServer;

/// Schema 1, as the previous release created it.
const SCHEMA_1: &str = "CREATE TABLE tasks (
    id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, task_type TEXT NOT NULL,
    priority INTEGER NOT NULL, status INTEGER NOT NULL, params TEXT NOT NULL,
    dependencies TEXT NOT NULL, max_retries INTEGER NOT NULL, retry_count INTEGER NOT NULL,
    timeout_us INTEGER NOT NULL, run_at INTEGER, created_at INTEGER NOT NULL,
    started_at INTEGER, completed_at INTEGER, progress TEXT, result TEXT, error TEXT,
    labels TEXT NOT NULL, idempotency_key TEXT, attempts TEXT NOT NULL,
    retry_policy TEXT NOT NULL, status_reason TEXT NOT NULL, updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_by_status ON tasks (status, id);
CREATE INDEX tasks_by_type ON tasks (task_type, id);
CREATE INDEX tasks_finished ON tasks (completed_at) WHERE completed_at IS NOT NULL;
PRAGMA user_version = 1;";

const RETRY_POLICY: &str = r#"{"initial_backoff":{"secs":0,"nanos":20000000},"multiplier":2.0,"max_backoff":{"secs":1,"nanos":0},"jitter":0.0}"#;

fn micros_ago(ago: Duration) -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now - ago).as_micros() as i64
}

/// A task row of schema 1; statuses: 1 PENDING, 2 SCHEDULED, 3 RUNNING,
/// 4 COMPLETED, 5 FAILED, 7 WAITING.
struct Row {
    id: String,
    task_type: &'static str,
    status: i64,
    params: serde_json::Value,
    dependencies: serde_json::Value,
    run_at: Option<i64>,
    result: Option<serde_json::Value>,
    attempts: serde_json::Value,
    idempotency_key: Option<&'static str>,
}

impl Row {
    fn new(task_type: &'static str, status: i64) -> Self {
        Row {
            id: uuid::Uuid::now_v7().to_string(),
            task_type,
            status,
            params: json!({}),
            dependencies: json!([]),
            run_at: None,
            result: None,
            attempts: json!([]),
            idempotency_key: None,
        }
    }

    fn after(mut self, dependency: &Row, required: &str) -> Self {
        self.dependencies = json!([{"task_id": dependency.id, "required_status": required}]);
        self
    }

    fn insert(&self, connection: &Connection) {
        let created = micros_ago(Duration::from_secs(600));
        let terminal = matches!(self.status, 4..=6);
        connection
            .execute(
                "INSERT INTO tasks VALUES (?1, ?2, ?2, 2, ?3, ?4, ?5, 2, 0, 3600000000, ?6, ?7, ?8, ?9, NULL, ?10, \
                 ?11, '{}', ?12, ?13, ?14, 'as written by schema 1', ?7)",
                params![
                    self.id,
                    self.task_type,
                    self.status,
                    self.params.to_string(),
                    self.dependencies.to_string(),
                    self.run_at,
                    created,
                    (self.status >= 3).then_some(created),
                    terminal.then_some(created),
                    self.result.as_ref().map(ToString::to_string),
                    (self.status == 5).then_some("it broke"),
                    self.idempotency_key,
                    self.attempts.to_string(),
                    RETRY_POLICY,
                ],
            )
            .unwrap();
    }
}

fn attempt(outcome: &str, finished: bool) -> serde_json::Value {
    let at = micros_ago(Duration::from_secs(300));
    json!({
        "number": 1, "started_at": at, "finished_at": if finished { json!(at) } else { json!(null) },
        "outcome": outcome, "error": null, "worker": "local", "started_under": null, "finished_under": null
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_single_process_design_opens_and_its_work_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut done = Row::new("diag.echo", 4);
    done.result = Some(json!({"v": 1}));
    done.attempts = json!([attempt("SUCCEEDED", true)]);
    done.idempotency_key = Some("kept-key");
    let pending = Row::new("diag.echo", 1);
    let mut running = Row::new("diag.sleep", 3);
    running.params = json!({"duration_ms": 60_000});
    running.attempts = json!([attempt("RUNNING", false)]);
    let failed = Row::new("diag.fail", 5);
    // A type of the application's own, accepted by the design that did not
    // check types.
    let legacy = Row::new("legacy.thumbnails", 1);
    let mut scheduled = Row::new("diag.echo", 2);
    scheduled.run_at = Some(micros_ago(Duration::ZERO) + 3_600_000_000);
    let waits_on_running = Row::new("diag.echo", 7).after(&running, "COMPLETED");
    let waits_on_done = Row::new("diag.echo", 7).after(&done, "COMPLETED");
    let waits_on_failed = Row::new("diag.echo", 7).after(&failed, "COMPLETED");
    {
        let connection = Connection::open(dir.path().join("taskd.db")).unwrap();
        connection.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        connection.execute_batch(SCHEMA_1).unwrap();
        for row in [
            &done,
            &pending,
            &running,
            &failed,
            &legacy,
            &scheduled,
            &waits_on_running,
            &waits_on_done,
            &waits_on_failed,
        ] {
            row.insert(&connection);
        }
    }

    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let client = &server.client;

    let kept = client.get(&done.id).await.unwrap();
    assert_eq!(kept.status(), TaskStatus::Completed);
    assert_eq!(kept.attempts.len(), 1);
    assert_eq!(kept.attempts[0].outcome(), Outcome::Succeeded);
    assert_eq!(kept.retry_policy.unwrap().multiplier, 2.0);
    let repeated = client
        .submit(NewTask::new("diag.echo").idempotency_key("kept-key"))
        .await
        .unwrap();
    assert_eq!(repeated.id, done.id, "keys of schema 1 still make submits idempotent");
    let same_type = client.submit(NewTask::new("legacy.thumbnails")).await.unwrap();
    assert_eq!(
        same_type.status(),
        TaskStatus::Pending,
        "types that stored tasks have stay known"
    );

    assert_eq!(server.wait(&pending.id).await.status(), TaskStatus::Completed);
    assert_eq!(server.wait(&waits_on_done.id).await.status(), TaskStatus::Completed);
    let broken = client.get(&waits_on_failed.id).await.unwrap();
    assert_eq!(broken.status(), TaskStatus::Cancelled);
    assert!(broken.status_reason.contains(&failed.id), "{}", broken.status_reason);
    assert_eq!(client.get(&scheduled.id).await.unwrap().status(), TaskStatus::Scheduled);

    // What schema 1 left RUNNING belonged to an executor that is gone: its
    // attempt is closed as interrupted and the task runs again.
    let retried = server.wait_for_status(&running.id, TaskStatus::Running).await;
    let retried = if retried.attempts.len() == 2 {
        retried
    } else {
        client.get(&running.id).await.unwrap()
    };
    assert_eq!(retried.attempts.len(), 2);
    assert_eq!(retried.attempts[0].outcome(), Outcome::Interrupted);
    assert_eq!(
        client.get(&waits_on_running.id).await.unwrap().status(),
        TaskStatus::Waiting
    );
    client.cancel(&running.id, "done testing").await.unwrap();
    let cascaded = client.get(&waits_on_running.id).await.unwrap();
    assert_eq!(cascaded.status(), TaskStatus::Cancelled);
}
