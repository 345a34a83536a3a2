//! The store alone, no network: what submitting, claiming and finishing a
//! task costs the SQLite backend per task, with group commit. This is the
//! writer's share of the end-to-end figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use taskd::model::rules::attempts::AttemptEnd;
use taskd::model::{ExecutorId, RetryPolicy, TaskId, TaskPriority, Timestamp};
use taskd::store::{
    AttemptReport, ClaimRequest, SqliteStore, SqliteStoreConfig, Store, StoreOptions, SubmitBatch, Synchronous,
    TaskDraft,
};

use crate::measure::micros;

const TYPE: &str = "bench.noop";

pub struct StoreCosts {
    pub submit_micros_per_task: f64,
    pub claim_finish_micros_per_task: f64,
}

pub fn draft(task_type: &str, index: usize) -> TaskDraft {
    let mut params = serde_json::Map::new();
    params.insert("n".into(), index.into());
    TaskDraft {
        position: index,
        id: TaskId::new(),
        name: task_type.into(),
        task_type: task_type.into(),
        params,
        priority: TaskPriority::Normal,
        dependencies: Vec::new(),
        max_retries: 3,
        timeout: Duration::from_secs(3600),
        run_at: None,
        labels: Default::default(),
        idempotency_key: None,
        fingerprint: None,
        retry_policy: RetryPolicy::default(),
    }
}

/// Submits `tasks` in batches of 500, then claims them 64 at a time from
/// four claimers and finishes each; per-task costs of both halves.
pub async fn measure(tasks: usize, synchronous: Synchronous) -> StoreCosts {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SqliteStoreConfig {
        synchronous,
        ..SqliteStoreConfig::default()
    };
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("taskd.db"), config, StoreOptions::default()).expect("store"));

    let started = Instant::now();
    let mut submits = Vec::new();
    for chunk in 0..tasks / 500 {
        let store = store.clone();
        submits.push(tokio::spawn(async move {
            let drafts = (0..500).map(|index| draft(TYPE, chunk * 500 + index)).collect();
            store
                .submit(SubmitBatch {
                    drafts,
                    now: Timestamp::now(),
                })
                .await
                .expect("submit");
        }));
    }
    for submit in submits {
        submit.await.expect("submitter");
    }
    let submit_time = started.elapsed();

    let started = Instant::now();
    let mut claimers = Vec::new();
    for claimer in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let executor = ExecutorId::new(format!("bench-{claimer}"));
            loop {
                let claimed = store
                    .claim(ClaimRequest {
                        executor: executor.clone(),
                        task_types: vec![(TYPE.to_string(), 64)],
                        limit: 64,
                        lease_duration: Duration::from_secs(30),
                        machine: None,
                        now: Timestamp::now(),
                    })
                    .await
                    .expect("claim");
                if claimed.tasks.is_empty() {
                    return;
                }
                let mut finishes = Vec::new();
                for task in claimed.tasks {
                    let store = store.clone();
                    finishes.push(tokio::spawn(async move {
                        store
                            .finish(AttemptReport {
                                lease: task.lease.reference(),
                                end: AttemptEnd::Succeeded(serde_json::json!({"ok": true})),
                                machine: None,
                                now: Timestamp::now(),
                            })
                            .await
                            .expect("finish");
                    }));
                }
                for finish in finishes {
                    finish.await.expect("finisher");
                }
            }
        }));
    }
    for claimer in claimers {
        claimer.await.expect("claimer");
    }
    let run_time = started.elapsed();
    store.close().await;
    StoreCosts {
        submit_micros_per_task: micros(submit_time) / tasks as f64,
        claim_finish_micros_per_task: micros(run_time) / tasks as f64,
    }
}
