//! The built-in handlers run by a real engine on a SQLite store in a
//! temporary directory: registration, results, retries, panics,
//! cancellation and the files exports and reports leave behind.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::engine::Engine;
use crate::engine::config::EngineConfig;
use crate::model::{NewTask, Params, PartialRetryPolicy, Task, TaskId, TaskStatus};
use crate::store::{SqliteStore, SqliteStoreConfig, StoreOptions, Synchronous};

struct Harness {
    engine: Engine,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(
            dir.path().join("taskd.db"),
            SqliteStoreConfig {
                synchronous: Synchronous::Normal,
                ..SqliteStoreConfig::default()
            },
            StoreOptions::default(),
        )
        .expect("open store");
        let config = EngineConfig {
            cancel_grace: Duration::from_secs(2),
            diag_panic: true,
            ..EngineConfig::default()
        };
        let engine = Engine::start(Arc::new(store), config).await.expect("start engine");
        engine.run_local_executor(builtins(&engine, dir.path()));
        Harness { engine, dir }
    }

    async fn submit(&self, task_type: &str, params: Value) -> TaskId {
        let Value::Object(params) = params else {
            panic!("params must be an object");
        };
        let task = NewTask {
            params,
            max_retries: Some(0),
            ..NewTask::new(task_type)
        };
        self.engine.tasks().submit(task).await.expect("submit").id
    }

    async fn wait_until(&self, id: TaskId, done: impl Fn(&Task) -> bool) -> Task {
        let waiting = async {
            loop {
                let task = self.engine.tasks().get(id).await.expect("get");
                if done(&task) {
                    return task;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .expect("task did not get there within 20s")
    }

    async fn finished(&self, id: TaskId) -> Task {
        self.wait_until(id, |task| task.status.is_terminal()).await
    }

    async fn run(&self, task_type: &str, params: Value) -> Task {
        let id = self.submit(task_type, params).await;
        self.finished(id).await
    }

    async fn stop(self) {
        self.engine.shutdown(Duration::from_secs(2)).await;
    }
}

fn result(task: &Task) -> &Value {
    task.result.as_ref().unwrap_or(&Value::Null)
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|entry| entry.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_builtin_type_is_registered_and_remote_worker_types_are_not() {
    let harness = Harness::start().await;
    let registry = builtins(&harness.engine, harness.dir.path());
    let served: Vec<&str> = registry.task_types().collect();
    let mut expected = BUILTIN_TASK_TYPES.to_vec();
    expected.sort_unstable();
    assert_eq!(served, expected);
    assert!(!registry.serves("document_processing"));
    assert!(!registry.serves("vector_store_update"));
    harness.stop().await;
}

#[tokio::test]
async fn echo_returns_its_params() {
    let harness = Harness::start().await;
    let task = harness.run(diag::ECHO, json!({"hello": "world", "n": 1})).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(result(&task), &json!({"hello": "world", "n": 1}));
    harness.stop().await;
}

#[tokio::test]
async fn fail_fails_until_the_attempt_it_should_succeed_on() {
    let harness = Harness::start().await;
    let task = NewTask {
        params: Params::from_iter([
            ("succeed_on_attempt".to_string(), json!(2)),
            ("message".to_string(), json!("not yet")),
        ]),
        max_retries: Some(2),
        retry_policy: Some(PartialRetryPolicy {
            initial_backoff: Some(Duration::from_millis(10)),
            jitter: Some(0.0),
            ..PartialRetryPolicy::default()
        }),
        ..NewTask::new(diag::FAIL)
    };
    let id = harness.engine.tasks().submit(task).await.expect("submit").id;
    let task = harness.finished(id).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(result(&task), &json!({"attempt": 2}));
    assert_eq!(task.attempts[0].error.as_deref(), Some("not yet"));

    let plain = harness.run(diag::FAIL, json!({})).await;
    assert_eq!(plain.status, TaskStatus::Failed);
    assert_eq!(plain.error.as_deref(), Some("diag.fail"));
    harness.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_failed_attempt() {
    let harness = Harness::start().await;
    let task = harness.run(diag::PANIC, json!({"message": "kaboom"})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.error.as_deref(), Some("handler panicked: kaboom"));
    harness.stop().await;
}

#[tokio::test]
async fn sleep_returns_how_long_it_slept_and_rejects_a_missing_duration() {
    let harness = Harness::start().await;
    let task = harness.run(diag::SLEEP, json!({"duration_ms": 30})).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(result(&task), &json!({"slept_ms": 30}));

    let missing = harness.run(diag::SLEEP, json!({})).await;
    assert_eq!(missing.status, TaskStatus::Failed);
    assert_eq!(missing.error.as_deref(), Some("params.duration_ms: is required"));
    let too_long = harness
        .run(diag::SLEEP, json!({"duration_ms": diag::MAX_SLEEP_MS + 1}))
        .await;
    assert_eq!(too_long.status, TaskStatus::Failed);
    harness.stop().await;
}

#[tokio::test]
async fn a_cancelled_sleep_stops_early() {
    let harness = Harness::start().await;
    let id = harness.submit(diag::SLEEP, json!({"duration_ms": 60_000})).await;
    harness.wait_until(id, |task| task.status == TaskStatus::Running).await;
    let started = std::time::Instant::now();
    let task = harness.engine.tasks().cancel(id, "test".into()).await.expect("cancel");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped within the grace period"
    );
    assert_eq!(task.status, TaskStatus::Cancelled);
    harness.stop().await;
}

#[tokio::test]
async fn an_export_writes_every_matching_task_and_leaves_no_temporary_file() {
    let harness = Harness::start().await;
    for n in 0..3 {
        harness.run(diag::ECHO, json!({ "n": n })).await;
    }
    harness.run(diag::FAIL, json!({"message": "with, comma"})).await;

    let csv = harness
        .run(
            export::TASK_TYPE,
            json!({"format": "csv", "task_type": ["diag.echo", "diag.fail"]}),
        )
        .await;
    assert_eq!(csv.status, TaskStatus::Completed, "{:?}", csv.error);
    assert_eq!(result(&csv)["rows"], 4);
    assert_eq!(result(&csv)["format"], "csv");
    let path = result(&csv)["path"].as_str().unwrap_or_default().to_string();
    assert!(path.ends_with(&format!("exports/{}.csv", csv.id)), "{path}");
    let text = std::fs::read_to_string(&path).expect("read export");
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines[0], export::CSV_COLUMNS.join(","));
    assert_eq!(lines.len(), 5);
    assert!(
        lines[1].contains(",diag.fail,NORMAL,FAILED,"),
        "newest first: {}",
        lines[1]
    );
    assert!(lines[1].ends_with(",0,\"with, comma\""), "quoted error: {}", lines[1]);

    let jsonl = harness
        .run(
            export::TASK_TYPE,
            json!({"status": ["COMPLETED"], "task_type": ["diag.echo"], "limit": 2}),
        )
        .await;
    assert_eq!(result(&jsonl)["rows"], 2);
    let path = result(&jsonl)["path"].as_str().unwrap_or_default().to_string();
    let records: Vec<Value> = std::fs::read_to_string(&path)
        .expect("read export")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["params"], json!({"n": 2}));
    assert_eq!(records[0]["attempt_count"], 1);

    let exports = harness.dir.path().join("exports");
    assert_eq!(
        file_names(&exports),
        vec![format!("{}.csv", csv.id), format!("{}.jsonl", jsonl.id)]
    );
    harness.stop().await;
}

#[tokio::test]
async fn an_export_with_a_bad_param_fails_naming_it_and_writes_nothing() {
    let harness = Harness::start().await;
    let task = harness.run(export::TASK_TYPE, json!({"format": "xml"})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(
        task.error.as_deref(),
        Some("params.format: must be \"jsonl\" or \"csv\", got \"xml\"")
    );
    assert!(!harness.dir.path().join("exports").exists());
    harness.stop().await;
}

#[tokio::test]
async fn a_report_counts_recent_tasks_and_writes_json_and_markdown() {
    let harness = Harness::start().await;
    harness.run(diag::ECHO, json!({})).await;
    harness.run(diag::ECHO, json!({})).await;
    harness.run(diag::FAIL, json!({"message": "boom"})).await;

    let task = harness
        .run(
            report::TASK_TYPE,
            json!({"since": "1h", "task_type": ["diag.echo", "diag.fail"]}),
        )
        .await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let summary = result(&task);
    assert_eq!(summary["tasks"], 3);
    assert_eq!(summary["top_errors"], json!([{"error": "boom", "count": 1}]));
    let rate = summary["success_rate"].as_f64().unwrap_or_default();
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(summary["queue_wait_ms"]["samples"], 3);
    assert_eq!(summary["run_time_ms"]["samples"], 3);

    let json_path = summary["json_path"].as_str().unwrap_or_default();
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(json_path).expect("read json")).expect("json");
    assert_eq!(stored["counts_by_type"]["diag.echo"]["COMPLETED"], 2);
    let markdown_path = summary["markdown_path"].as_str().unwrap_or_default();
    let markdown = std::fs::read_to_string(markdown_path).expect("read markdown");
    assert!(markdown.contains("| diag.echo | 2 | 0 | 2 |"), "{markdown}");
    let reports = harness.dir.path().join("reports");
    assert_eq!(
        file_names(&reports),
        vec![format!("{}.json", task.id), format!("{}.md", task.id)]
    );
    harness.stop().await;
}

#[tokio::test]
async fn maintenance_purges_finished_tasks_and_the_counts_follow() {
    let harness = Harness::start().await;
    let echo = harness.run(diag::ECHO, json!({})).await;
    harness.run(diag::FAIL, json!({})).await;

    let kept = harness.run(maintenance::TASK_TYPE, json!({"retention": "1h"})).await;
    assert_eq!(kept.status, TaskStatus::Completed, "{:?}", kept.error);
    assert_eq!(result(&kept)["purged"], 0);

    // Let the finish times fall strictly before the cutoff.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let purge = harness
        .run(
            maintenance::TASK_TYPE,
            json!({"retention_seconds": 0, "optimize": false}),
        )
        .await;
    let outcome = result(&purge);
    assert_eq!(outcome["purged"], 3, "{outcome}");
    assert_eq!(outcome["purged_by_status"], json!({"COMPLETED": 2, "FAILED": 1}));
    assert_eq!(outcome["optimize"], "skipped: params.optimize is false");
    assert!(matches!(
        harness.engine.tasks().get(echo.id).await,
        Err(crate::engine::EngineError::TaskNotFound(_))
    ));
    let echo_counts = harness
        .engine
        .tasks()
        .stats()
        .await
        .expect("stats")
        .by_type
        .into_iter()
        .find(|by_type| by_type.task_type == diag::ECHO)
        .map(|by_type| by_type.counts[TaskStatus::Completed.index()]);
    assert_eq!(echo_counts, Some(0));

    let optimized = harness.run(maintenance::TASK_TYPE, json!({})).await;
    assert!(
        result(&optimized)["optimize"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
    harness.stop().await;
}
