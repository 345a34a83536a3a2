//! A large queue: the real `taskd` binary with a million tasks waiting.
//! What it holds in memory (its resident set), how long a restart takes
//! until it serves again, and what a claim costs with that many queued.
//! BENCH_TASKD_BIN measures another build of taskd (an older release, for a
//! before-and-after); the claim figure is then left out, since it reads the
//! data dir with this build's store.

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use taskd::model::{ExecutorId, Timestamp};
use taskd::store::{ClaimRequest, SqliteStore, SqliteStoreConfig, Store, StoreOptions};
use taskd_client::{Client, NewTask};

use crate::measure::{micros, percentile};
pub use crate::process::{listening, rss_mib, stop};

/// Known from the start (the design note names it) and served by no built-in
/// handler: its tasks stay PENDING.
const PARKED: &str = "document_processing";

pub struct Queued {
    pub tasks: u64,
    pub submit_seconds: f64,
    pub rss_mib: f64,
    pub rss_idle_mib: f64,
    pub restart_seconds: f64,
    /// p50 and p99 of claiming one task, when measured.
    pub claim_micros: Option<(f64, f64)>,
}

fn binary() -> (String, bool) {
    match std::env::var("BENCH_TASKD_BIN") {
        Ok(other) => (other, false),
        Err(_) => (env!("CARGO_BIN_EXE_taskd").to_string(), true),
    }
}

/// Starts `taskd serve` on `data_dir`; returns it, its address and how long
/// it took to print that it listens.
fn serve(data_dir: &std::path::Path) -> (Child, String, Duration) {
    let started = Instant::now();
    let mut command = Command::new(binary().0);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(["--set", "engine.limits.max_queue_depth=1000000000"])
        .env("TASKD_LOG", "warn")
        .env("TASKD_MONITOR_INTERVAL", "1s");
    let (child, address) = listening(&mut command);
    (child, address, started.elapsed())
}

/// Starts `command` (a `taskd serve` on port 0) and waits for the line
/// saying it listens; returns it and its `http://` address.
pub async fn measure(tasks: u64) -> Queued {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, address, _) = serve(dir.path());
    let client = Client::connect(address).await.expect("connects");
    let rss_idle_mib = rss_mib(server.id());

    let started = Instant::now();
    let mut senders = Vec::new();
    let per_sender = tasks / 4;
    for _ in 0..4 {
        let client = client.clone();
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < per_sender {
                let count = (per_sender - sent).min(1000);
                let batch = (0..count).map(|index| NewTask::new(PARKED).params(json!({"n": index})));
                client.submit_batch(batch).await.expect("batch submit");
                sent += count;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    let submit_seconds = started.elapsed().as_secs_f64();
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.counts.map(|counts| counts.pending), Some(per_sender * 4));
    let rss_mib = rss_mib(server.id());
    stop(server);

    let (server, address, restart) = serve(dir.path());
    Client::connect(address)
        .await
        .expect("connects")
        .stats()
        .await
        .expect("serves after the restart");
    stop(server);
    let claim_micros = if binary().1 {
        Some(claim_latency(dir.path()).await)
    } else {
        None
    };
    Queued {
        tasks: per_sender * 4,
        submit_seconds,
        rss_mib,
        rss_idle_mib,
        restart_seconds: restart.as_secs_f64(),
        claim_micros,
    }
}

/// Claims one task at a time among the queued ones; p50 and p99.
async fn claim_latency(data_dir: &std::path::Path) -> (f64, f64) {
    let store = SqliteStore::open(
        data_dir.join("taskd.db"),
        SqliteStoreConfig::default(),
        StoreOptions::default(),
    )
    .expect("store");
    let store: Arc<dyn Store> = Arc::new(store);
    let mut claims = Vec::new();
    for _ in 0..1000 {
        let started = Instant::now();
        let claimed = store
            .claim(ClaimRequest {
                executor: ExecutorId::new("bench"),
                task_types: vec![(PARKED.to_string(), 1)],
                limit: 1,
                lease_duration: Duration::from_secs(30),
                machine: None,
                now: Timestamp::now(),
            })
            .await
            .expect("claim");
        claims.push(micros(started.elapsed()));
        assert_eq!(claimed.tasks.len(), 1);
    }
    store.close().await;
    (percentile(&mut claims, 0.5), percentile(&mut claims, 0.99))
}
