//! Leases as a running server keeps them: its executor renews them while
//! handlers run, and a lease some executor stopped renewing is taken back on
//! the rescuer's timer and the task retried.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use taskd::model::{ExecutorId, Timestamp};
use taskd::store::{ClaimRequest, SqliteStore, SqliteStoreConfig, Store, StoreOptions, SubmitBatch};
use taskd_client::proto::attempt::Outcome;
use taskd_client::{NewTask, TaskStatus};

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_outlives_many_lease_periods_keeps_its_lease() {
    let server = TestServer::start_with(|config| {
        config.engine.lease_duration = Duration::from_millis(300);
        config.engine.rescue_interval = Duration::from_millis(50);
    })
    .await;
    let task = server
        .client
        .submit(NewTask::new("diag.sleep").params(json!({"duration_ms": 1500})))
        .await
        .unwrap();
    let done = server.wait(&task.id).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{}", done.status_reason);
    assert_eq!(done.attempts.len(), 1, "renewed, never taken back");
    assert_eq!(done.attempts[0].outcome(), Outcome::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_nobody_renews_is_taken_back_on_the_rescuers_timer_and_the_task_retried() {
    let dir = tempfile::tempdir().unwrap();
    // An executor that is not this server took the task and vanished.
    let task_id = {
        let store = SqliteStore::open(
            dir.path().join("taskd.db"),
            SqliteStoreConfig::default(),
            StoreOptions::default(),
        )
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let mut draft = taskd_store_conformance::draft("diag.echo");
        draft.retry_policy.initial_backoff = Duration::from_millis(10);
        let id = draft.id;
        store
            .submit(SubmitBatch {
                drafts: vec![draft],
                now: Timestamp::now(),
            })
            .await
            .unwrap();
        let claimed = store
            .claim(ClaimRequest {
                executor: ExecutorId::new("ghost"),
                task_types: vec![("diag.echo".into(), 1)],
                limit: 1,
                lease_duration: Duration::from_millis(300),
                machine: None,
                now: Timestamp::now(),
            })
            .await
            .unwrap();
        assert_eq!(claimed.tasks.len(), 1);
        store.close().await;
        id
    };

    let server = TestServer::start_in(dir.path(), |config| {
        config.engine.rescue_interval = Duration::from_millis(50);
    })
    .await;
    let done = server.wait(&task_id.to_string()).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{}", done.status_reason);
    assert_eq!(done.attempts.len(), 2);
    assert_eq!(done.attempts[0].worker, "ghost");
    assert_eq!(done.attempts[0].outcome(), Outcome::LeaseExpired);
    assert_eq!(done.attempts[1].worker, "local");
    assert_eq!(done.attempts[1].outcome(), Outcome::Succeeded);
}
