//! taskd throughput and latency, over real gRPC on loopback, side by side
//! with the raw tonic unary round-trip rate of the same process on the same
//! machine (the standard health check RPC), so the figures read as ratios.
//!
//! Run: `cargo bench --bench throughput` (release build). Every phase runs
//! in this one process, one after the other, so their figures share the
//! machine's conditions. Knobs: BENCH_SECONDS (per rate phase, default 5),
//! BENCH_E2E_TASKS (default 100000), BENCH_CONCURRENCY (in-flight unary
//! calls, default 64), BENCH_QUEUED (tasks queued for the memory and
//! restart phase, default 1000000; 0 skips it; BENCH_TASKD_BIN runs it on
//! another build), BENCH_SYNCHRONOUS=normal (no fsync per commit),
//! BENCH_ONLY=raw|single|get|e2e|workers|list|lone|store|queued|overload|watches|postgres, or several separated by
//! commas (`raw,single` gives the ratio alone), for profiling.
//!
//! The raw unary and single-submit phases alternate over several rounds and
//! report medians; so do the one-at-a-time GetTask and SubmitTask calls. The
//! machines are shared and noisy, and a ratio is only meaningful when both
//! sides saw the same conditions.

mod measure;
mod overload;
mod postgres;
#[path = "../common/process.rs"]
mod process;
mod queued;
mod remote;
mod store_costs;

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use taskd::config::ServerConfig;
use taskd::engine::HandlerRegistry;
use taskd::store::Synchronous;
use taskd_client::{Client, NewTask, TaskStatus};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::measure::{env_number, fsync_micros, median, micros, percentile, rate, rounded};

/// mimalloc: the request path allocates a lot of small, short-lived objects
/// across threads, where it is markedly cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHANNELS: usize = 4;
/// A type no handler serves: its tasks are accepted and stay PENDING, so the
/// submit phases measure acceptance alone.
/// Known from the start (the design note names it) and served by no built-in
/// handler: its tasks stay PENDING.
const PARKED: &str = "document_processing";
const ECHO: &str = "diag.echo";
/// Rounds of the interleaved comparisons.
const ROUNDS: usize = 5;

fn main() {
    if remote::run_as_worker_if_asked() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

struct Settings {
    seconds: u64,
    e2e_tasks: u64,
    concurrency: usize,
    queued: u64,
    synchronous: Synchronous,
    only: Option<String>,
}

impl Settings {
    fn from_env() -> Self {
        Settings {
            seconds: env_number("BENCH_SECONDS", 5),
            e2e_tasks: env_number("BENCH_E2E_TASKS", 100_000),
            concurrency: env_number("BENCH_CONCURRENCY", 64) as usize,
            queued: env_number("BENCH_QUEUED", 1_000_000),
            synchronous: if std::env::var("BENCH_SYNCHRONOUS").as_deref() == Ok("normal") {
                Synchronous::Normal
            } else {
                Synchronous::Full
            },
            only: std::env::var("BENCH_ONLY").ok(),
        }
    }

    fn runs(&self, phase: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|only| only.split(',').any(|listed| listed.trim() == phase))
    }
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

async fn run() {
    let settings = Settings::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    config.engine.max_concurrent_tasks = 256;
    // The submit phases park millions of tasks: past the default queue
    // depth they would be shed, which is not what they measure.
    config.engine.limits.max_queue_depth = u64::MAX;
    config.store.synchronous = settings.synchronous;
    let server = taskd::server::start(config, HandlerRegistry::new())
        .await
        .expect("server starts");
    let address = format!("http://{}", server.local_addr());
    let channels = channels(&address).await;
    let clients: Vec<Client> = channels.iter().cloned().map(Client::from_channel).collect();
    let health: Vec<HealthClient<Channel>> = channels.iter().cloned().map(HealthClient::new).collect();
    let (seconds, concurrency) = (settings.seconds, settings.concurrency);

    println!(
        "taskd benchmark: {} cores, concurrency {concurrency}, {seconds}s per rate phase, \
         store SQLite synchronous={:?}",
        std::thread::available_parallelism().map_or(1, |count| count.get()),
        settings.synchronous
    );
    let mut table: Vec<(String, String)> = Vec::new();
    let mut row = |measure: &str, value: String| {
        println!("{measure:<56} {value}");
        table.push((measure.to_string(), value));
    };

    if settings.runs("raw") || settings.runs("single") {
        // Raw tonic unary round trips and single submits, interleaved.
        let mut raw_rounds = Vec::new();
        let mut single_rounds = Vec::new();
        for _ in 0..ROUNDS {
            if settings.runs("raw") {
                raw_rounds.push(raw_unary_rate(health.clone(), concurrency, seconds).await);
            }
            if settings.runs("single") {
                single_rounds.push(single_submit_rate(clients.clone(), PARKED, concurrency, seconds).await);
            }
        }
        if !raw_rounds.is_empty() {
            let raw = median(&mut raw_rounds.clone());
            row(
                "raw tonic unary round trips (calls/s)",
                format!("{raw:.0}   (rounds {})", rounded(&raw_rounds)),
            );
            if !single_rounds.is_empty() {
                let single = median(&mut single_rounds.clone());
                row(
                    "single SubmitTask, durable (tasks/s)",
                    format!(
                        "{single:.0}   ({:.0}% of raw unary; rounds {})",
                        100.0 * single / raw,
                        rounded(&single_rounds)
                    ),
                );
            }
        } else if !single_rounds.is_empty() {
            row(
                "single SubmitTask, durable (tasks/s)",
                format!("{:.0}", median(&mut single_rounds)),
            );
        }
    }
    if settings.only.is_none() {
        // Completions, not submits: from the first submit until the last
        // of them has COMPLETED.
        let before = wait_for_echo(&clients[0], |_| true).await.completed;
        let started = Instant::now();
        single_submit_rate(clients.clone(), ECHO, concurrency, seconds).await;
        let after = wait_for_echo(&clients[0], |counts| counts.pending + counts.running == 0).await;
        let single_running = (after.completed - before) as f64 / started.elapsed().as_secs_f64();
        row(
            "  same, each task also run to COMPLETED (completed/s)",
            format!("{single_running:.0}   (first submit to last completion)"),
        );

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
        row("batch SubmitTasks x500, durable (tasks/s)", format!("{batch:.0}"));
    }
    if settings.runs("e2e") {
        let e2e = end_to_end(&clients, settings.e2e_tasks).await;
        row(
            "end to end, batch submit -> COMPLETED (tasks/s)",
            format!("{e2e:.0}   ({} tasks, in-process executor)", settings.e2e_tasks),
        );
    }
    if settings.runs("workers") {
        remote_workers(&clients, &address, &settings, &mut row).await;
    }
    if settings.runs("list") {
        list_pages(&clients, &address, concurrency, seconds, &mut row).await;
    }
    if settings.runs("get") {
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
        row("GetTask (calls/s)", format!("{gets:.0}"));
    }
    if settings.runs("lone") {
        lone_requests(&clients[0], dir.path(), &mut row).await;
    }
    if settings.only.is_none() {
        start_latency(&clients[0], &mut row).await;
    }
    if settings.runs("store") {
        let costs = store_costs::measure(50_000, settings.synchronous).await;
        row(
            "store alone: submit in batches of 500 (us/task)",
            format!("{:.1}", costs.submit_micros_per_task),
        );
        row(
            "store alone: claim (64 at a time) + finish (us/task)",
            format!(
                "{:.1}   ({:.0} tasks/s)",
                costs.claim_finish_micros_per_task,
                1e6 / costs.claim_finish_micros_per_task
            ),
        );
    }
    server.stop().await;

    if settings.runs("queued") && settings.queued > 0 {
        let queued = queued::measure(settings.queued).await;
        row(
            "queued tasks, real binary (a type nothing serves)",
            format!("{}   (submitted in {:.1}s)", queued.tasks, queued.submit_seconds),
        );
        row(
            "  resident memory with them queued (MiB)",
            format!("{:.0}   ({:.0} MiB at start)", queued.rss_mib, queued.rss_idle_mib),
        );
        row(
            "  restart until serving again (s)",
            format!("{:.2}", queued.restart_seconds),
        );
        if let Some((p50, p99)) = queued.claim_micros {
            row(
                "  claim of one task among them p50 / p99 (us)",
                format!("{p50:.0} / {p99:.0}"),
            );
        }
    }

    if settings.runs("overload") {
        for (label, pace) in [("10x capacity", Some(10.0)), ("unpaced", None)] {
            let flood = overload::flood(settings.seconds.max(5), pace).await;
            row(&format!("flood of submits at {label}"), String::new());
            row(
                "  real binary's capacity (completed/s, measured)",
                format!(
                    "{:.0}   (8 slots x 20 ms tasks, at most 400/s; queue depth limit 2000)",
                    flood.capacity
                ),
            );
            row(
                "  offered / accepted / shed (submits/s)",
                format!(
                    "{:.0} ({:.0}x capacity) / {:.0} / {:.0}",
                    flood.offered_per_second,
                    flood.offered_per_second / flood.capacity,
                    flood.accepted_per_second,
                    flood.shed_per_second
                ),
            );
            row(
                "  GetTask p50 / p99, quiet vs flood (us)",
                format!(
                    "{:.0} / {:.0}  vs  {:.0} / {:.0}",
                    flood.read_quiet_micros.0,
                    flood.read_quiet_micros.1,
                    flood.read_flood_micros.0,
                    flood.read_flood_micros.1
                ),
            );
            row(
                "  accepted tasks that completed",
                format!("{} of {}", flood.completed, flood.accepted),
            );
        }
    }
    if settings.runs("postgres") {
        for nodes in [1, 2] {
            let figures = postgres::measure(nodes, settings.seconds, settings.e2e_tasks.min(50_000)).await;
            row(
                &format!(
                    "postgresql, {} node(s): batch SubmitTasks x500 (tasks/s)",
                    figures.nodes
                ),
                format!("{:.0}", figures.batch_submit),
            );
            row(
                "  end to end, batch submit -> COMPLETED (tasks/s)",
                format!("{:.0}   ({} tasks)", figures.end_to_end, figures.e2e_tasks),
            );
            row(
                "  submit-to-start p50 / p99 (ms)",
                format!("{:.2} / {:.2}", figures.start_p50_ms, figures.start_p99_ms),
            );
        }
    }
    if settings.runs("watches") {
        let watches = overload::watches(env_number("BENCH_WATCHES", 10_000) as usize).await;
        row(
            "open watch streams, real binary",
            format!(
                "{}   (100 per connection; opened in {:.1}s)",
                watches.streams, watches.open_seconds
            ),
        );
        row(
            "  resident memory idle -> watching (MiB)",
            format!(
                "{:.0} -> {:.0}   ({:.1} KiB per stream)",
                watches.rss_idle_mib,
                watches.rss_watching_mib,
                (watches.rss_watching_mib - watches.rss_idle_mib) * 1024.0 / watches.streams as f64
            ),
        );
        row(
            "  one event reaching every stream (ms)",
            format!("{:.0}", watches.fan_out_millis),
        );
    }

    println!();
    println!("{:<56} value", "measure");
    for (measure, value) in table {
        println!("{measure:<56} {value}");
    }
}

/// The no-op end to end through workers in other processes, beside the
/// in-process executor measured again in the same phase, and the pickup
/// latency of each.
async fn remote_workers(clients: &[Client], address: &str, settings: &Settings, row: &mut impl FnMut(&str, String)) {
    // In-process and Rust-worker rounds alternate, so both see the same
    // machine; medians are reported.
    let tasks = (settings.e2e_tasks / 2).max(1000);
    let mut rust = remote::WorkerProcess::rust(address);
    rust.connected(&clients[0]).await;
    let (mut in_rounds, mut rust_rounds) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        in_rounds.push(end_to_end(clients, tasks).await);
        rust_rounds.push(end_to_end_of(clients, remote::NOOP, tasks).await);
    }
    let (p50, p99) = remote::pickup_latency(&clients[0], 300).await;
    drop(rust);
    let (in_p50, in_p99) = echo_pickup_latency(&clients[0], 300).await;
    let in_process = median(&mut in_rounds.clone());
    let remote_rate = median(&mut rust_rounds.clone());
    row(
        "workers: in-process executor, end to end (tasks/s)",
        format!(
            "{in_process:.0}   ({tasks} tasks a round; rounds {}; pickup p50 / p99 {in_p50:.3} / {in_p99:.3} ms)",
            rounded(&in_rounds)
        ),
    );
    row(
        "workers: Rust SDK worker process, end to end (tasks/s)",
        format!(
            "{remote_rate:.0}   ({:.0}% of in-process, target >= 70%; rounds {}; capacity {})",
            100.0 * remote_rate / in_process,
            rounded(&rust_rounds),
            remote::CAPACITY
        ),
    );
    row(
        "  submit to handler start p50 / p99 (ms; target p50 < 2)",
        format!("{p50:.3} / {p99:.3}"),
    );

    match remote::WorkerProcess::python(address) {
        Some(mut python) => {
            python.connected(&clients[0]).await;
            let python_tasks = tasks.min(20_000);
            let python_rate = end_to_end_of(clients, remote::NOOP, python_tasks).await;
            let (p50, p99) = remote::pickup_latency(&clients[0], 300).await;
            drop(python);
            row(
                "workers: Python SDK worker process, asyncio (tasks/s)",
                format!(
                    "{python_rate:.0}   ({python_tasks} tasks; {:.0}% of in-process; target >= 5000)",
                    100.0 * python_rate / in_process
                ),
            );
            row(
                "  submit to handler start p50 / p99 (ms)",
                format!("{p50:.3} / {p99:.3}"),
            );
        }
        None => println!("(no .tools/sdk-venv: run scripts/setup-test-tools.sh for the Python worker figures)"),
    }
}

/// Pages of 100 tasks, over gRPC (ListTasks, protobuf) and over REST (the
/// same page as snake_case JSON through the descriptor set), alternating
/// in rounds; the ratio is what the REST bridge's JSON costs.
async fn list_pages(
    clients: &[Client],
    address: &str,
    concurrency: usize,
    seconds: u64,
    row: &mut impl FnMut(&str, String),
) {
    let tasks = (0..100).map(|index| {
        NewTask::new(PARKED)
            .name(format!("page member {index}"))
            .params(json!({"document_id": index, "path": "/data/in/report.pdf"}))
            .label("team", "search")
    });
    clients[0].submit_batch(tasks).await.expect("batch");
    let http = reqwest::Client::new();
    let url = format!("{address}/api/v1/tasks?page_size=100");
    let (mut grpc_rounds, mut rest_rounds) = (Vec::new(), Vec::new());
    let round_seconds = (seconds / 2).max(1);
    for _ in 0..ROUNDS {
        let grpc_clients = clients.to_vec();
        grpc_rounds.push(
            rate(concurrency.min(16), round_seconds, move |worker| {
                let client = grpc_clients[worker % CHANNELS].clone();
                async move {
                    let page = client
                        .list(taskd_client::ListTasksRequest {
                            page_size: 100,
                            ..Default::default()
                        })
                        .await
                        .expect("list");
                    assert_eq!(page.tasks.len(), 100);
                    1
                }
            })
            .await,
        );
        let (http, url) = (http.clone(), url.clone());
        rest_rounds.push(
            rate(concurrency.min(16), round_seconds, move |_| {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let body = http.get(&url).send().await.expect("get").bytes().await.expect("body");
                    assert!(body.len() > 10_000);
                    1
                }
            })
            .await,
        );
    }
    let grpc = median(&mut grpc_rounds.clone());
    let rest = median(&mut rest_rounds.clone());
    row(
        "list a page of 100 tasks over gRPC (pages/s)",
        format!("{grpc:.0}   (rounds {})", rounded(&grpc_rounds)),
    );
    row(
        "  same page over REST, snake_case JSON (pages/s)",
        format!(
            "{rest:.0}   ({:.0}% of gRPC; rounds {})",
            100.0 * rest / grpc,
            rounded(&rest_rounds)
        ),
    );
}

/// Submit to start of the in-process echo handler, one task at a time (ms).
async fn echo_pickup_latency(client: &Client, samples: usize) -> (f64, f64) {
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let sent = SystemTime::now();
        let task = client.submit(NewTask::new(ECHO)).await.expect("submit");
        let done = client.wait(&task.id).await.expect("wait");
        if let Some(start) = done.attempts.first().and_then(|attempt| attempt.started_at.as_ref()) {
            latencies.push(millis(sent, start));
        }
    }
    (percentile(&mut latencies, 0.5), percentile(&mut latencies, 0.99))
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

/// Polls the stats of the echo type until `done` holds; returns them.
async fn wait_for_echo(
    client: &Client,
    done: impl Fn(&taskd_client::proto::StatusCounts) -> bool,
) -> taskd_client::proto::StatusCounts {
    wait_for_type(client, ECHO, done).await
}

/// Polls the stats of `task_type` until `done` holds; returns them.
async fn wait_for_type(
    client: &Client,
    task_type: &str,
    done: impl Fn(&taskd_client::proto::StatusCounts) -> bool,
) -> taskd_client::proto::StatusCounts {
    loop {
        let stats = client.stats().await.expect("stats");
        let counts = stats
            .by_type
            .into_iter()
            .find(|by_type| by_type.task_type == task_type)
            .and_then(|by_type| by_type.counts)
            .unwrap_or_default();
        if done(&counts) {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Batch submits of `total` echo tasks from four clients; tasks/s until
/// every one is COMPLETED.
async fn end_to_end(clients: &[Client], total: u64) -> f64 {
    end_to_end_of(clients, ECHO, total).await
}

/// Batch submits of `total` tasks of `task_type` from four clients; tasks/s
/// until every one is COMPLETED.
async fn end_to_end_of(clients: &[Client], task_type: &'static str, total: u64) -> f64 {
    let completed_before = wait_for_type(&clients[0], task_type, |_| true).await.completed;
    let started = Instant::now();
    let mut senders = Vec::new();
    let per_sender = total / 4;
    for client in clients.iter().take(4) {
        let client = client.clone();
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < per_sender {
                let count = (per_sender - sent).min(1000);
                let tasks = (0..count).map(|index| NewTask::new(task_type).params(json!({"n": index})));
                client.submit_batch(tasks).await.expect("batch submit");
                sent += count;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    let expected = completed_before + per_sender * 4;
    wait_for_type(&clients[0], task_type, |counts| counts.completed >= expected).await;
    (per_sender * 4) as f64 / started.elapsed().as_secs_f64()
}

/// One request at a time, as an application that submits and waits for
/// each: GetTask, SubmitTask and a bare fdatasync of the data dir's disk,
/// interleaved in rounds.
async fn lone_requests(client: &Client, data_dir: &std::path::Path, row: &mut impl FnMut(&str, String)) {
    let known = client.submit(NewTask::new(PARKED)).await.expect("submit");
    let (mut gets, mut submits, mut syncs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for _ in 0..400 {
            let started = Instant::now();
            client.get(&known.id).await.expect("get");
            gets.push(micros(started.elapsed()));
        }
        for _ in 0..400 {
            let started = Instant::now();
            client
                .submit(NewTask::new(PARKED).params(json!({"n": 1})))
                .await
                .expect("submit");
            submits.push(micros(started.elapsed()));
        }
        syncs.extend(fsync_micros(data_dir, 400));
    }
    let get = percentile(&mut gets, 0.5);
    let submit = percentile(&mut submits, 0.5);
    let sync = percentile(&mut syncs, 0.5);
    row(
        "one at a time: GetTask p50 / p99 (us)",
        format!("{get:.0} / {:.0}", percentile(&mut gets, 0.99)),
    );
    row(
        "one at a time: SubmitTask, durable, p50 / p99 (us)",
        format!("{submit:.0} / {:.0}", percentile(&mut submits, 0.99)),
    );
    row(
        "one at a time: fdatasync of the data dir p50 / p99 (us)",
        format!("{sync:.0} / {:.0}", percentile(&mut syncs, 0.99)),
    );
    row(
        "  submit - GetTask - fdatasync, p50 (us; target <= 60)",
        format!("{:.0}", submit - get - sync),
    );
}

/// Submit-to-start latency at low load, and run_at punctuality.
async fn start_latency(client: &Client, row: &mut impl FnMut(&str, String)) {
    let mut latencies = Vec::new();
    for _ in 0..300 {
        let sent = SystemTime::now();
        let task = client.submit(NewTask::new(ECHO)).await.expect("submit");
        let done = client.wait(&task.id).await.expect("wait");
        assert_eq!(done.status(), TaskStatus::Completed);
        if let Some(start) = done.attempts.first().and_then(|attempt| attempt.started_at.as_ref()) {
            latencies.push(millis(sent, start));
        }
    }
    row(
        "submit-to-start latency p50 / p99 (ms)",
        format!(
            "{:.3} / {:.3}",
            percentile(&mut latencies, 0.5),
            percentile(&mut latencies, 0.99)
        ),
    );

    // Tasks due 50 to 250 ms ahead; lateness of their start against run_at.
    let mut scheduled = Vec::new();
    for index in 0..200u64 {
        let due = SystemTime::now() + Duration::from_millis(50 + index);
        let task = client.submit(NewTask::new(ECHO).run_at(due)).await.expect("submit");
        scheduled.push((task.id, due));
    }
    let mut lateness = Vec::new();
    for (id, due) in scheduled {
        let done = client.wait(&id).await.expect("wait");
        if let Some(start) = done.attempts.first().and_then(|attempt| attempt.started_at.as_ref()) {
            lateness.push(millis(due, start));
        }
    }
    row(
        "run_at lateness p50 / p99 (ms)",
        format!(
            "{:.3} / {:.3}",
            percentile(&mut lateness, 0.5),
            percentile(&mut lateness, 0.99)
        ),
    );
}

fn millis(from: SystemTime, to: &pbjson_types::Timestamp) -> f64 {
    let to = taskd_client::system_time(to);
    match to.duration_since(from) {
        Ok(after) => after.as_secs_f64() * 1000.0,
        Err(before) => -before.duration().as_secs_f64() * 1000.0,
    }
}
