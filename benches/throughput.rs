//! taskd throughput and latency, over real gRPC on loopback, side by side
//! with the raw tonic unary round-trip rate of the same process on the same
//! machine (the standard health check RPC), so the figures read as ratios.
//!
//! Run: `cargo bench --bench throughput` (release build).
//! Knobs: BENCH_SECONDS (per rate phase, default 5), BENCH_E2E_TASKS
//! (default 100000), BENCH_CONCURRENCY (in-flight unary calls, default 64),
//! BENCH_SYNCHRONOUS=normal (no fsync per commit), BENCH_ONLY=single or raw
//! (one phase alone, for profiling).
//!
//! The raw unary and single-submit phases alternate over three rounds and
//! report medians: the machines are shared and noisy, and a ratio is only
//! meaningful when both sides saw the same conditions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use taskd::config::ServerConfig;
use taskd::engine::HandlerRegistry;
use taskd_client::{Client, NewTask, TaskStatus};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// mimalloc: the request path allocates a lot of small, short-lived objects
/// across threads, where it is markedly cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHANNELS: usize = 4;
/// A type no handler serves: its tasks are accepted and stay PENDING, so the
/// submit phases measure acceptance alone.
const PARKED: &str = "bench.parked";
const ECHO: &str = "diag.echo";
/// Rounds of the interleaved raw-unary / single-submit comparison.
const ROUNDS: usize = 5;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn channels(address: &str) -> Vec<Channel> {
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        let channel = Endpoint::from_shared(address.to_string())
            .expect("valid endpoint")
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connects");
        channels.push(channel);
    }
    channels
}

/// Runs `call` from `concurrency` loops for `seconds`; returns calls/s.
async fn rate<F, Fut>(concurrency: usize, seconds: u64, call: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u64> + Send,
{
    let call = Arc::new(call);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut loops = Vec::new();
    for worker in 0..concurrency {
        let (call, done, stop) = (call.clone(), done.clone(), stop.clone());
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let count = call(worker).await;
                done.fetch_add(count, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        let _ = handle.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index]
}

fn millis(from: SystemTime, to: &pbjson_types::Timestamp) -> f64 {
    let to = taskd_client::system_time(to);
    match to.duration_since(from) {
        Ok(after) => after.as_secs_f64() * 1000.0,
        Err(before) => -before.duration().as_secs_f64() * 1000.0,
    }
}

/// Polls the stats of the echo type until `done` holds; returns them.
async fn wait_for_echo(
    client: &Client,
    done: impl Fn(&taskd_client::proto::StatusCounts) -> bool,
) -> taskd_client::proto::StatusCounts {
    loop {
        let stats = client.stats().await.expect("stats");
        let counts = stats
            .by_type
            .into_iter()
            .find(|by_type| by_type.task_type == ECHO)
            .and_then(|by_type| by_type.counts)
            .unwrap_or_default();
        if done(&counts) {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
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
    let seconds = env_number("BENCH_SECONDS", 5);
    let e2e_tasks = env_number("BENCH_E2E_TASKS", 100_000);
    let concurrency = env_number("BENCH_CONCURRENCY", 64) as usize;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    config.engine.max_concurrent_tasks = 256;
    if std::env::var("BENCH_SYNCHRONOUS").as_deref() == Ok("normal") {
        config.store.synchronous = taskd::store::Synchronous::Normal;
    }
    let server = taskd::server::start(config, HandlerRegistry::new())
        .await
        .expect("server starts");
    let address = format!("http://{}", server.local_addr());
    let channels = channels(&address).await;
    let clients: Vec<Client> = channels.iter().cloned().map(Client::from_channel).collect();

    if std::env::var("BENCH_ONLY").as_deref() == Ok("raw") {
        let health: Vec<HealthClient<Channel>> = channels.iter().cloned().map(HealthClient::new).collect();
        let raw = raw_unary_rate(health, concurrency, seconds).await;
        println!("raw tonic unary round trips (calls/s): {raw:.0}");
        server.stop().await;
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("get") {
        // GetTask of one finished task: a full Task response with no store
        // write, to separate message costs from the durable submit path.
        let task = clients[0]
            .submit(NewTask::new(ECHO).params(json!({"n": 1})))
            .await
            .expect("submit");
        clients[0].wait(&task.id).await.expect("wait");
        let id = task.id.clone();
        let get_clients = clients.clone();
        let gets = rate(concurrency, seconds, move |worker| {
            let client = get_clients[worker % CHANNELS].clone();
            let id = id.clone();
            async move {
                client.get(&id).await.expect("get");
                1
            }
        })
        .await;
        println!("GetTask (calls/s): {gets:.0}");
        server.stop().await;
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("single") {
        // The submit path alone, for profiling.
        let single = single_submit_rate(clients.clone(), PARKED, concurrency, seconds).await;
        println!("single SubmitTask of {PARKED}, durable (tasks/s): {single:.0}");
        server.stop().await;
        return;
    }

    if std::env::var("BENCH_ONLY").as_deref() == Ok("e2e") {
        let e2e = end_to_end(&clients, e2e_tasks).await;
        println!("end to end, batch submit -> COMPLETED (tasks/s): {e2e:.0}");
        server.stop().await;
        return;
    }

    println!(
        "taskd benchmark: {} cores, concurrency {concurrency}, {seconds}s per rate phase",
        num_cpus()
    );
    println!("store: SQLite, synchronous=FULL (every acknowledged submit is fsynced)");

    // 1 and 2. Raw tonic unary round trips and single submits, interleaved
    // over ROUNDS rounds so that both see the same machine; medians reported.
    let health: Vec<HealthClient<Channel>> = channels.iter().cloned().map(HealthClient::new).collect();
    let mut raw_rounds = Vec::new();
    let mut single_rounds = Vec::new();
    for _ in 0..ROUNDS {
        let health = health.clone();
        raw_rounds.push(raw_unary_rate(health, concurrency, seconds).await);
        single_rounds.push(single_submit_rate(clients.clone(), PARKED, concurrency, seconds).await);
    }
    let raw = median(&mut raw_rounds);
    let single = median(&mut single_rounds);
    let single_running = single_submit_rate(clients.clone(), ECHO, concurrency, seconds).await;
    wait_for_echo(&clients[0], |counts| counts.pending + counts.running == 0).await;

    // 3. Batch submits, acceptance alone.
    const BATCH: usize = 500;
    let batch_clients = clients.clone();
    let batch = rate(8, seconds, move |worker| {
        let client = batch_clients[worker % CHANNELS].clone();
        async move {
            let tasks = (0..BATCH).map(|index| NewTask::new(PARKED).params(json!({"n": index})));
            client.submit_batch(tasks).await.expect("batch submit");
            BATCH as u64
        }
    })
    .await;

    // 4. End to end: batch submit to COMPLETED.
    let e2e = end_to_end(&clients, e2e_tasks).await;
    let per_sender = e2e_tasks / 4;

    // 5. Submit-to-start latency at low load: one task at a time.
    let mut latencies = Vec::new();
    for _ in 0..300 {
        let sent = SystemTime::now();
        let task = clients[0].submit(NewTask::new(ECHO)).await.expect("submit");
        let done = clients[0].wait(&task.id).await.expect("wait");
        assert_eq!(done.status(), TaskStatus::Completed);
        if let Some(start) = done.attempts.first().and_then(|attempt| attempt.started_at.as_ref()) {
            latencies.push(millis(sent, start));
        }
    }
    latencies.sort_by(f64::total_cmp);

    // 6. run_at punctuality: tasks due 50 to 250 ms ahead, lateness of their
    // start against their run_at.
    let mut scheduled = Vec::new();
    for index in 0..200u64 {
        let due = SystemTime::now() + Duration::from_millis(50 + index);
        let task = clients[0].submit(NewTask::new(ECHO).run_at(due)).await.expect("submit");
        scheduled.push((task.id, due));
    }
    let mut lateness = Vec::new();
    for (id, due) in scheduled {
        let done = clients[0].wait(&id).await.expect("wait");
        if let Some(start) = done.attempts.first().and_then(|attempt| attempt.started_at.as_ref()) {
            lateness.push(millis(due, start));
        }
    }
    lateness.sort_by(f64::total_cmp);

    println!();
    println!("{:<48} {:>14}", "measure", "value");
    println!(
        "{:<48} {:>14.0}   (median of {ROUNDS}: {})",
        "raw tonic unary round trips (calls/s)",
        raw,
        rounded(&raw_rounds)
    );
    println!(
        "{:<48} {:>14.0}   ({:.0}% of raw unary)",
        "single SubmitTask, durable (tasks/s)",
        single,
        100.0 * single / raw
    );
    println!("{:<48} {:>14}   (rounds)", "", rounded(&single_rounds));
    println!(
        "{:<48} {:>14.0}   ({:.0}% of raw unary)",
        "  same, each task also run to COMPLETED",
        single_running,
        100.0 * single_running / raw
    );
    println!("{:<48} {:>14.0}", "batch SubmitTasks x500, durable (tasks/s)", batch);
    println!(
        "{:<48} {:>14.0}   ({} tasks)",
        "end to end, batch submit -> COMPLETED (tasks/s)",
        e2e,
        per_sender * 4
    );
    println!(
        "{:<48} {:>14.3}",
        "submit-to-start latency p50 (ms)",
        percentile(&latencies, 0.5)
    );
    println!(
        "{:<48} {:>14.3}",
        "submit-to-start latency p99 (ms)",
        percentile(&latencies, 0.99)
    );
    println!(
        "{:<48} {:>14.3}",
        "run_at lateness p50 (ms)",
        percentile(&lateness, 0.5)
    );
    println!(
        "{:<48} {:>14.3}",
        "run_at lateness p99 (ms)",
        percentile(&lateness, 0.99)
    );

    server.stop().await;
}

/// Batch submits of `total` echo tasks from four clients; tasks/s until
/// every one is COMPLETED.
async fn end_to_end(clients: &[Client], total: u64) -> f64 {
    let completed_before = wait_for_echo(&clients[0], |_| true).await.completed;
    let started = Instant::now();
    let mut senders = Vec::new();
    let per_sender = total / 4;
    for client in clients.iter().take(4) {
        let client = client.clone();
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < per_sender {
                let count = (per_sender - sent).min(1000);
                let tasks = (0..count).map(|index| NewTask::new(ECHO).params(json!({"n": index})));
                client.submit_batch(tasks).await.expect("batch submit");
                sent += count;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    let expected = completed_before + per_sender * 4;
    wait_for_echo(&clients[0], |counts| counts.completed >= expected).await;
    (per_sender * 4) as f64 / started.elapsed().as_secs_f64()
}

/// Health checks: the cheapest unary call tonic serves.
async fn raw_unary_rate(health: Vec<HealthClient<Channel>>, concurrency: usize, seconds: u64) -> f64 {
    rate(concurrency, seconds, move |worker| {
        let mut client = health[worker % CHANNELS].clone();
        async move {
            client
                .check(HealthCheckRequest { service: String::new() })
                .await
                .expect("health check");
            1
        }
    })
    .await
}

/// Single submits of `task_type` from `concurrency` loops.
async fn single_submit_rate(clients: Vec<Client>, task_type: &'static str, concurrency: usize, seconds: u64) -> f64 {
    rate(concurrency, seconds, move |worker| {
        let client = clients[worker % CHANNELS].clone();
        async move {
            client
                .submit(NewTask::new(task_type).params(json!({"n": worker})))
                .await
                .expect("submit");
            1
        }
    })
    .await
}

fn rounded(values: &[f64]) -> String {
    values
        .iter()
        .map(|value| format!("{value:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |count| count.get())
}
