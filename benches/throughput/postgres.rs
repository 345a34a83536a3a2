//! The real binary on PostgreSQL (the database at BENCH_POSTGRES, default
//! `postgres://postgres@127.0.0.1:5432/test`, a fresh schema per run), with
//! one node and with two sharing the database: batch submit, end to end,
//! and submit-to-start latency, with clients spread over the nodes.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use taskd_client::{Client, NewTask};

use crate::measure::{percentile, rate};
use crate::queued::{listening, stop};

const PARKED: &str = "document_processing";

pub struct Figures {
    pub nodes: usize,
    pub batch_submit: f64,
    pub end_to_end: f64,
    pub e2e_tasks: u64,
    pub start_p50_ms: f64,
    pub start_p99_ms: f64,
}

fn database_url() -> String {
    std::env::var("BENCH_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn serve(schema: &str, index: usize) -> (Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskd"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--store", &database_url()])
        .args(["--set", &format!("store.schema={schema}")])
        .args(["--set", &format!("engine.node_id=bench{index}")])
        .args(["--set", "monitor.enabled=false", "--max-concurrent-tasks", "256"])
        .args(["--set", "engine.limits.max_queue_depth=1000000000"])
        .env("TASKD_LOG", "error");
    let (child, address) = listening(&mut command);
    (child, address, dir)
}

async fn completed_count(client: &Client, task_type: &str) -> u64 {
    let stats = client.stats().await.expect("stats");
    stats
        .by_type
        .iter()
        .find(|of| of.task_type == task_type)
        .and_then(|of| of.counts.as_ref())
        .map_or(0, |counts| counts.completed)
}

pub async fn measure(nodes: usize, seconds: u64, e2e_tasks: u64) -> Figures {
    let schema = format!(
        "taskd_bench_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_micros())
    );
    let servers: Vec<_> = (0..nodes).map(|index| serve(&schema, index)).collect();
    let mut clients = Vec::new();
    for (_, address, _) in &servers {
        for _ in 0..2 {
            clients.push(Client::connect(address.clone()).await.expect("connects"));
        }
    }

    const BATCH: usize = 500;
    let batch_clients = clients.clone();
    let batch_submit = rate(8, seconds, move |worker| {
        let client = batch_clients[worker % batch_clients.len()].clone();
        async move {
            let tasks = (0..BATCH).map(|index| NewTask::new(PARKED).params(json!({"n": index})));
            client.submit_batch(tasks).await.expect("batch submit");
            BATCH as u64
        }
    })
    .await;

    // End to end: batches of echo tasks submitted over every node, until
    // all of them completed (anywhere).
    let started = Instant::now();
    let per_sender = e2e_tasks / clients.len() as u64;
    let mut senders = Vec::new();
    for client in clients.clone() {
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < per_sender {
                let count = (per_sender - sent).min(BATCH as u64);
                let tasks = (0..count).map(|index| NewTask::new("diag.echo").params(json!({"n": index})));
                client.submit_batch(tasks).await.expect("batch submit");
                sent += count;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    let total = per_sender * clients.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while completed_count(&clients[0], "diag.echo").await < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end_to_end = total as f64 / started.elapsed().as_secs_f64();

    // Submit to start, one at a time, alternating nodes: the server's own
    // timestamps (created_at -> started_at).
    let mut latencies = Vec::new();
    for index in 0..300 {
        let client = &clients[index % clients.len()];
        let task = client.submit(NewTask::new("diag.echo")).await.expect("submit");
        let done = client.wait(&task.id).await.expect("wait");
        if let (Some(created), Some(started)) = (done.created_at, done.started_at) {
            let millis =
                (started.seconds - created.seconds) as f64 * 1000.0 + (started.nanos - created.nanos) as f64 / 1e6;
            latencies.push(millis);
        }
    }
    drop(clients);
    for (child, _, _) in servers {
        stop(child);
    }
    // The run's tables go with it.
    if let Ok((admin, connection)) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await {
        tokio::spawn(connection);
        let _ = admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
    }
    Figures {
        nodes,
        batch_submit,
        end_to_end,
        e2e_tasks: total,
        start_p50_ms: percentile(&mut latencies, 0.5),
        start_p99_ms: percentile(&mut latencies, 0.99),
    }
}
