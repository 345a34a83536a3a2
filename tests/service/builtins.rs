//! The built-in task types end to end: real files under the data dir.

use serde_json::{Value, json};
use taskd_client::json::value_to_json;
use taskd_client::{NewTask, Task, TaskStatus};

use crate::support::TestServer;

fn result_of(task: &Task) -> Value {
    assert_eq!(task.status(), TaskStatus::Completed, "{}", task.error);
    value_to_json(task.result.as_ref().expect("a result")).expect("json result")
}

/// Runs one task that completes and one that fails; returns their ids.
async fn some_history(server: &TestServer) -> Vec<String> {
    let ok = server
        .client
        .submit(NewTask::new("diag.echo").label("team", "data"))
        .await
        .unwrap();
    let bad = server
        .client
        .submit(
            NewTask::new("diag.fail")
                .params(json!({"message": "disk on fire"}))
                .max_retries(0),
        )
        .await
        .unwrap();
    server.wait(&ok.id).await;
    server.wait(&bad.id).await;
    vec![ok.id, bad.id]
}

#[tokio::test]
async fn data_export_writes_the_matching_tasks_as_jsonl_and_names_the_file() {
    let server = TestServer::start().await;
    some_history(&server).await;
    let export = server
        .client
        .submit(NewTask::new("data_export").params(json!({"format": "jsonl", "labels": {"team": "data"}})))
        .await
        .unwrap();
    let result = result_of(&server.wait(&export.id).await);
    assert_eq!(result["rows"], 1);
    let path = result["path"].as_str().unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let row: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(row["task_type"], "diag.echo");
    assert_eq!(row["status"], "COMPLETED");
}

#[tokio::test]
async fn data_export_writes_csv_with_a_header() {
    let server = TestServer::start().await;
    some_history(&server).await;
    let export = server
        .client
        .submit(NewTask::new("data_export").params(json!({"format": "csv", "status": ["FAILED"]})))
        .await
        .unwrap();
    let result = result_of(&server.wait(&export.id).await);
    let text = std::fs::read_to_string(result["path"].as_str().unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("id,name,task_type"), "{}", lines[0]);
    assert_eq!(lines.len(), 2);
    assert!(lines[1].contains("disk on fire"), "{}", lines[1]);
}

#[tokio::test]
async fn a_bad_export_format_fails_the_task_with_the_param_named() {
    let server = TestServer::start().await;
    let export = server
        .client
        .submit(
            NewTask::new("data_export")
                .params(json!({"format": "xml"}))
                .max_retries(0),
        )
        .await
        .unwrap();
    let failed = server.wait(&export.id).await;
    assert_eq!(failed.status(), TaskStatus::Failed);
    assert!(failed.error.contains("params.format"), "{}", failed.error);
}

#[tokio::test]
async fn report_generation_writes_json_and_markdown_with_rates_percentiles_and_top_errors() {
    let server = TestServer::start().await;
    some_history(&server).await;
    let report = server.client.submit(NewTask::new("report_generation")).await.unwrap();
    let result = result_of(&server.wait(&report.id).await);
    assert!(result["tasks"].as_u64().unwrap() >= 2);
    assert!(result["top_errors"].to_string().contains("disk on fire"), "{result}");
    assert!(result["queue_wait_ms"]["p50"].is_number(), "{result}");
    let markdown = std::fs::read_to_string(result["markdown_path"].as_str().unwrap()).unwrap();
    assert!(markdown.contains("disk on fire"));
    let json_report: Value =
        serde_json::from_str(&std::fs::read_to_string(result["json_path"].as_str().unwrap()).unwrap()).unwrap();
    assert!(json_report.is_object());
}

#[tokio::test]
async fn system_maintenance_purges_old_finished_tasks_and_stats_follow() {
    let server = TestServer::start().await;
    let old = some_history(&server).await;
    let maintenance = server
        .client
        .submit(NewTask::new("system_maintenance").params(json!({"retention_seconds": 0})))
        .await
        .unwrap();
    let result = result_of(&server.wait(&maintenance.id).await);
    assert_eq!(result["purged"], 2, "{result}");
    let stats = server.client.stats().await.unwrap().counts.unwrap();
    // Only the maintenance task itself is left.
    assert_eq!(stats.total, 1, "{stats:?}");
    for id in old {
        let error = server.client.get(&id).await.unwrap_err();
        assert_eq!(error.code(), Some(tonic::Code::NotFound), "{id} was purged");
    }
}

#[tokio::test]
async fn system_maintenance_exports_what_it_purges_first_when_asked() {
    let server = TestServer::start().await;
    let old = some_history(&server).await;
    let maintenance = server
        .client
        .submit(NewTask::new("system_maintenance").params(json!({"retention_seconds": 0, "export": "jsonl"})))
        .await
        .unwrap();
    let result = result_of(&server.wait(&maintenance.id).await);
    assert_eq!(result["purged"], 2, "{result}");
    assert_eq!(result["export"]["rows"], 2, "{result}");
    let path = result["export"]["path"].as_str().expect("an export path");
    let exported: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut ids: Vec<&str> = exported.iter().filter_map(|task| task["id"].as_str()).collect();
    ids.sort_unstable();
    let mut purged: Vec<&str> = old.iter().map(String::as_str).collect();
    purged.sort_unstable();
    assert_eq!(ids, purged, "the file holds exactly the purged tasks");
    for id in &old {
        assert_eq!(
            server.client.get(id).await.unwrap_err().code(),
            Some(tonic::Code::NotFound)
        );
    }

    // A format it does not write fails the run at once, purging nothing.
    let bad = server
        .client
        .submit(NewTask::new("system_maintenance").params(json!({"export": "xml"})))
        .await
        .unwrap();
    let failed = server.wait(&bad.id).await;
    assert_eq!(failed.status(), TaskStatus::Failed);
    assert!(failed.error.starts_with("params.export: "), "{}", failed.error);
    assert_eq!(failed.attempts.len(), 1, "not retried");
}

/// As the report had it: the real binary on a fresh data dir with its
/// defaults, the three built-ins in one batch. Their housekeeping (ANALYZE)
/// and the claims and finishes of the others met; three fresh runs made it
/// fail most times.
#[tokio::test(flavor = "multi_thread")]
async fn the_three_built_ins_at_once_on_a_fresh_store_fail_no_write() {
    for run in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, address) = crate::support::spawn_taskd(dir.path());
        let client = taskd_client::Client::connect(address.clone()).await.unwrap();
        let tasks = client
            .submit_batch([
                NewTask::new("system_maintenance").params(json!({"retention_seconds": 3600})),
                NewTask::new("report_generation"),
                NewTask::new("data_export"),
            ])
            .await
            .unwrap();
        for task in &tasks {
            let task = crate::support::within("a built-in task ends", client.wait(&task.id))
                .await
                .unwrap();
            assert_eq!(task.status(), TaskStatus::Completed, "run {run}: {}", task.error);
            assert_eq!(
                task.attempts.len(),
                1,
                "run {run}: no attempt was lost to a failed commit"
            );
        }
        let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
        let status = ready.status();
        let body = ready.text().await.unwrap_or_default();
        tokio::task::block_in_place(|| crate::support::terminate(&mut child));
        assert_eq!(status, reqwest::StatusCode::OK, "run {run}: no commit failed: {body}");
    }
}

#[tokio::test]
async fn a_built_in_refuses_params_it_does_not_take_naming_them_at_submit() {
    let server = TestServer::start().await;
    for (task_type, params, unknown, takes) in [
        ("data_export", json!({"path": "/tmp/x"}), "path", "format"),
        (
            "data_export",
            json!({"format": "csv", "filename": "x.csv"}),
            "filename",
            "limit",
        ),
        ("report_generation", json!({"sinse": "1h"}), "sinse", "since"),
        (
            "system_maintenance",
            json!({"retention": "1h", "vacuum": true}),
            "vacuum",
            "optimize",
        ),
    ] {
        let refused = server
            .client
            .submit(NewTask::new(task_type).params(params))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some(tonic::Code::InvalidArgument));
        let message = refused.to_string();
        assert!(
            message.contains(&format!("params.{unknown}:")) && message.contains(takes),
            "{task_type}: {message}"
        );
    }
    // In a batch, the member is named.
    let refused = server
        .client
        .submit_batch([
            NewTask::new("diag.echo"),
            NewTask::new("data_export").params(json!({"path": "/tmp/x"})),
        ])
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("tasks[1].params.path:"), "{refused}");
    assert_eq!(server.client.stats().await.unwrap().counts.unwrap().total, 0);
    // Diagnostics take anything besides their own, to label benchmark runs.
    let echo = server
        .client
        .submit(NewTask::new("diag.sleep").params(json!({"duration_ms": 1, "run": 7})))
        .await
        .unwrap();
    assert_eq!(server.wait(&echo.id).await.status(), TaskStatus::Completed);
}
