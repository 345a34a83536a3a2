//! Schedules and retention, on the real `taskd` binary: how late fires
//! are, what purging a million finished tasks costs the submits that go on
//! meanwhile, and whether memory and the database level off under
//! continuous load with a short retention.
//!
//! Run: `cargo bench --bench retention` (release build). Knobs:
//! BENCH_ONLY=lateness|purge|soak (or several, comma-separated);
//! BENCH_SCHEDULES (default 1000) and BENCH_SECONDS (default 30) for the
//! lateness phase; BENCH_PURGE_TASKS (default 1000000); BENCH_POSTGRES (a
//! database URL; the purge phase runs there too unless it is `off`);
//! BENCH_SOAK_SECONDS (default 180), BENCH_SOAK_RATE (tasks/s, default
//! 2000), BENCH_SOAK_RETENTION (seconds, default 20).

#[allow(dead_code)]
#[path = "../throughput/measure.rs"]
mod measure;
#[path = "../common/process.rs"]
mod process;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use taskd_client::proto::{self, schedule_spec::Kind};
use taskd_client::{Client, ListTasksRequest, NewTask};

use crate::measure::{env_number, percentile};
use crate::process::{listening, rss_mib, stop};

/// Served by no built-in handler: its tasks stay PENDING.
const PARKED: &str = "document_processing";
const ECHO: &str = "diag.echo";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

fn runs(phase: &str) -> bool {
    std::env::var("BENCH_ONLY")
        .map(|only| only.split(',').any(|listed| listed.trim() == phase))
        .unwrap_or(true)
}

fn postgres_url() -> Option<String> {
    match std::env::var("BENCH_POSTGRES") {
        Ok(url) if url == "off" => None,
        Ok(url) => Some(url),
        Err(_) => Some("postgres://postgres@127.0.0.1:5432/test".to_string()),
    }
}

/// A `taskd serve` on a fresh data dir (and on PostgreSQL when `postgres`
/// is given, in a schema of its own).
fn serve(dir: &Path, postgres: Option<&str>) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskd"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--max-concurrent-tasks", "256"])
        .args(["--set", "monitor.enabled=false"])
        .args(["--set", "retention.enabled=false"])
        .args(["--set", "engine.limits.max_queue_depth=1000000000"])
        .env("TASKD_LOG", "error");
    if let Some(url) = postgres {
        let schema = format!(
            "taskd_retention_bench_{}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_micros())
        );
        command
            .args(["--store", url])
            .args(["--set", &format!("store.schema={schema}")]);
    }
    listening(&mut command)
}

fn micros_of(timestamp: Option<&pbjson_types::Timestamp>) -> Option<i64> {
    timestamp.map(|at| at.seconds * 1_000_000 + i64::from(at.nanos) / 1000)
}

fn summary(label: &str, values: &mut [f64]) -> String {
    format!(
        "{label} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(values, 0.5),
        percentile(values, 0.99),
        percentile(values, 1.0)
    )
}

async fn run() {
    println!(
        "taskd retention benchmark: {} cores",
        std::thread::available_parallelism().map_or(1, |count| count.get())
    );
    if runs("lateness") {
        lateness().await;
    }
    if runs("purge") {
        purge(None).await;
        if let Some(url) = postgres_url() {
            purge(Some(&url)).await;
        }
    }
    if runs("soak") {
        soak().await;
    }
}

/// Many schedules firing every second: how long after its nominal time
/// each fire's task is durable, and when it starts.
async fn lateness() {
    let schedules = env_number("BENCH_SCHEDULES", 1000) as usize;
    let seconds = env_number("BENCH_SECONDS", 30);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, address) = serve(dir.path(), None);
    let client = Client::connect(address).await.expect("connects");
    let definition = |index: usize| proto::ScheduleDefinition {
        name: format!("every-second-{index}"),
        spec: Some(proto::ScheduleSpec {
            kind: Some(Kind::Interval(proto::IntervalSpec {
                every: Some(pbjson_types::Duration { seconds: 1, nanos: 0 }),
                offset: None,
            })),
            jitter: None,
        }),
        template: Some(proto::TaskTemplate {
            task_type: ECHO.into(),
            ..Default::default()
        }),
        overlap: proto::OverlapPolicy::AllowAll as i32,
        ..Default::default()
    };
    let created_at = Instant::now();
    futures::future::join_all((0..schedules).map(|index| {
        let client = client.clone();
        async move {
            client.create_schedule(definition(index)).await.expect("created");
        }
    }))
    .await;
    println!(
        "lateness: {schedules} schedules every 1s created in {:.1}s; firing for {seconds}s",
        created_at.elapsed().as_secs_f64()
    );
    let window_start = SystemTime::now() + Duration::from_secs(2);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let window_end = SystemTime::now();
    for index in 0..schedules {
        client
            .delete_schedule(&format!("every-second-{index}"))
            .await
            .expect("deleted");
    }
    let micros = |at: SystemTime| {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() as i64)
    };
    let (from, to) = (micros(window_start), micros(window_end));
    let tasks = client.list_all(ListTasksRequest::default()).await.expect("listed");
    let mut durable = Vec::new();
    let mut started = Vec::new();
    for task in &tasks {
        let Some(nominal) = task
            .name
            .rsplit_once(" @ ")
            .and_then(|(_, micros)| micros.parse::<i64>().ok())
        else {
            continue;
        };
        if nominal < from || nominal > to {
            continue;
        }
        if let Some(created) = micros_of(task.created_at.as_ref()) {
            durable.push((created - nominal) as f64 / 1000.0);
        }
        if let Some(began) = micros_of(task.started_at.as_ref()) {
            started.push((began - nominal) as f64 / 1000.0);
        }
    }
    let expected = schedules as f64 * (to - from) as f64 / 1e6;
    println!(
        "lateness: {} fires in the measured {:.0}s (about {expected:.0} due)",
        durable.len(),
        (to - from) as f64 / 1e6
    );
    println!("  {}", summary("fire to durable task:", &mut durable));
    println!("  {}", summary("fire to task started:", &mut started));
    stop(server);
}

/// Submits `count` echo tasks in batches and waits until all completed.
async fn fill(client: &Client, count: u64) -> f64 {
    let started = Instant::now();
    let senders = 8;
    let per_sender = count / senders;
    futures::future::join_all((0..senders).map(|_| {
        let client = client.clone();
        async move {
            let mut sent = 0;
            while sent < per_sender {
                let size = (per_sender - sent).min(1000);
                let batch = (0..size).map(|index| NewTask::new(ECHO).params(json!({"n": index})));
                client.submit_batch(batch).await.expect("batch submit");
                sent += size;
            }
        }
    }))
    .await;
    loop {
        let counts = client.stats().await.expect("stats").counts.unwrap_or_default();
        if counts.pending + counts.running + counts.scheduled == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed().as_secs_f64()
}

/// One submit at a time until `stop` says so: each one's latency (ms) and
/// when it ended.
async fn probe(client: Client, stop: tokio::sync::watch::Receiver<bool>) -> Vec<(Instant, f64)> {
    let mut samples = Vec::new();
    while !*stop.borrow() {
        let started = Instant::now();
        client.submit(NewTask::new(PARKED)).await.expect("probe submit");
        samples.push((Instant::now(), started.elapsed().as_secs_f64() * 1000.0));
    }
    samples
}

/// A million finished tasks purged by `system_maintenance` while a client
/// submits one task at a time: how long the purge takes, and the longest
/// submit meanwhile against the same before it.
async fn purge(postgres: Option<&str>) {
    let count = env_number("BENCH_PURGE_TASKS", 1_000_000);
    let store = if postgres.is_some() { "PostgreSQL" } else { "SQLite" };
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, address) = serve(dir.path(), postgres);
    let client = Client::connect(address.clone()).await.expect("connects");
    let filled = fill(&client, count).await;
    println!("purge ({store}): {count} tasks submitted and run in {filled:.1}s");

    let prober = Client::connect(address).await.expect("connects");
    let (stop_probe, stopped) = tokio::sync::watch::channel(false);
    let probing = tokio::spawn(probe(prober, stopped));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let purge_began = Instant::now();
    let maintenance = client
        .submit(NewTask::new("system_maintenance").params(json!({"retention_seconds": 0})))
        .await
        .expect("maintenance submitted");
    let done = client.wait(&maintenance.id).await.expect("maintenance ends");
    let purge_ended = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_probe.send(true).expect("probe running");
    let samples = probing.await.expect("probe joined");
    let result = done
        .result
        .as_ref()
        .and_then(|result| taskd_client::json::value_to_json(result).ok())
        .map(|result| result.to_string())
        .unwrap_or_default();
    let ran = match (
        micros_of(done.started_at.as_ref()),
        micros_of(done.completed_at.as_ref()),
    ) {
        (Some(start), Some(end)) => (end - start) as f64 / 1e6,
        _ => f64::NAN,
    };
    let mut before: Vec<f64> = samples
        .iter()
        .filter(|(at, _)| *at < purge_began)
        .map(|(_, ms)| *ms)
        .collect();
    let mut during: Vec<f64> = samples
        .iter()
        .filter(|(at, _)| *at >= purge_began && *at <= purge_ended)
        .map(|(_, ms)| *ms)
        .collect();
    println!("purge ({store}): {:?} in {ran:.1}s: {result}", done.status());
    println!("  {}", summary("one submit at a time, before:", &mut before));
    println!(
        "  {} ({} submits)",
        summary("one submit at a time, during the purge:", &mut during),
        during.len()
    );
    stop(server);
}

/// The bytes of the data dir's files (the database, its log).
fn data_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(|metadata| metadata.is_file())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Continuous load with a short retention: memory and database size over
/// time.
async fn soak() {
    let seconds = env_number("BENCH_SOAK_SECONDS", 180);
    let rate = env_number("BENCH_SOAK_RATE", 2000);
    let retention = env_number("BENCH_SOAK_RETENTION", 20);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, address) = serve(dir.path(), None);
    let client = Client::connect(address).await.expect("connects");
    let mut params = pbjson_types::Struct::default();
    params
        .fields
        .insert("retention_seconds".into(), pbjson_types::Value::from(retention as f64));
    client
        .create_schedule(proto::ScheduleDefinition {
            name: "soak-retention".into(),
            spec: Some(proto::ScheduleSpec {
                kind: Some(Kind::Interval(proto::IntervalSpec {
                    every: Some(pbjson_types::Duration {
                        seconds: (retention / 2).max(1) as i64,
                        nanos: 0,
                    }),
                    offset: None,
                })),
                jitter: None,
            }),
            template: Some(proto::TaskTemplate {
                task_type: "system_maintenance".into(),
                params: Some(params),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("retention schedule");
    println!(
        "soak: {rate} tasks/s of 1 KiB for {seconds}s, finished tasks kept {retention}s (purged every {}s)",
        (retention / 2).max(1)
    );
    println!(
        "  {:>6}  {:>9}  {:>11}  {:>8}",
        "second", "RSS MiB", "data MiB", "tasks"
    );
    let padding = "x".repeat(1024);
    let began = Instant::now();
    let batch = 100;
    let interval = Duration::from_secs_f64(batch as f64 / rate.max(1) as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_sample = Duration::ZERO;
    let data_dir = dir.path().to_path_buf();
    let mut in_flight = tokio::task::JoinSet::new();
    while began.elapsed() < Duration::from_secs(seconds) {
        ticker.tick().await;
        let (sender, padding) = (client.clone(), padding.clone());
        in_flight.spawn(async move {
            let tasks = (0..batch).map(|index| NewTask::new(ECHO).params(json!({"n": index, "padding": padding})));
            sender.submit_batch(tasks).await.expect("batch submit");
        });
        while in_flight.len() > 16 {
            in_flight.join_next().await;
        }
        if began.elapsed() >= next_sample {
            let total = client
                .stats()
                .await
                .ok()
                .and_then(|stats| stats.counts)
                .map_or(0, |counts| counts.total);
            println!(
                "  {:>6}  {:>9.1}  {:>11.1}  {:>8}",
                began.elapsed().as_secs(),
                rss_mib(server.id()),
                data_bytes(&data_dir) as f64 / (1024.0 * 1024.0),
                total
            );
            next_sample += Duration::from_secs(15);
        }
    }
    while in_flight.join_next().await.is_some() {}
    stop(server);
}
