//! The store alone, no network: what submitting, claiming and finishing a
//! task costs in the SQLite backend, per task, with group commit.
//!
//! Run: `cargo bench --bench store`. Knobs: BENCH_TASKS (default 50000),
//! BENCH_SYNCHRONOUS=normal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use taskd::model::rules::attempts::AttemptEnd;
use taskd::model::{ExecutorId, RetryPolicy, TaskId, TaskPriority, Timestamp};
use taskd::store::{
    AttemptReport, ClaimRequest, SqliteStore, SqliteStoreConfig, Store, StoreOptions, SubmitBatch, Synchronous,
    TaskDraft,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TYPE: &str = "bench.noop";

fn draft(index: usize) -> TaskDraft {
    let mut params = serde_json::Map::new();
    params.insert("n".into(), index.into());
    TaskDraft {
        position: index,
        id: TaskId::new(),
        name: TYPE.into(),
        task_type: TYPE.into(),
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

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let tasks: usize = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(50_000);
    let synchronous = if std::env::var("BENCH_SYNCHRONOUS").as_deref() == Ok("normal") {
        Synchronous::Normal
    } else {
        Synchronous::Full
    };
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
            let drafts = (0..500).map(|index| draft(chunk * 500 + index)).collect();
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

    let per_task = |time: Duration| time.as_secs_f64() * 1e6 / tasks as f64;
    println!("store benchmark: SQLite, synchronous={synchronous:?}, {tasks} tasks");
    println!(
        "submit in batches of 500: {:.1} us/task ({:.0} tasks/s)",
        per_task(submit_time),
        tasks as f64 / submit_time.as_secs_f64()
    );
    println!(
        "claim (64 at a time, 4 claimers) + finish each: {:.1} us/task ({:.0} tasks/s)",
        per_task(run_time),
        tasks as f64 / run_time.as_secs_f64()
    );
}
