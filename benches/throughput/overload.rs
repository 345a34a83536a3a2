//! Overload and watch fan-out, on the real `taskd` binary in its own
//! process (its resident memory is its own):
//! - a flood of submits at many times what the server can run: how many
//!   are accepted and how many shed (RESOURCE_EXHAUSTED at once), the
//!   latency of reads made during the flood beside the same reads before
//!   it, and whether every accepted task still completes;
//! - 10,000 open watch streams: resident memory, and how long one event
//!   takes to reach all of them.

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use taskd_client::{Client, NewTask};

use crate::measure::{micros, percentile};
use crate::queued::{listening, rss_mib, stop};

fn serve(data_dir: &std::path::Path, settings: &[&str]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskd"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("TASKD_LOG", "error");
    for setting in settings {
        command.args(["--set", setting]);
    }
    listening(&mut command)
}

pub struct Flood {
    /// Tasks the server completed per second when given more than enough,
    /// measured before the flood (at most slots / task length).
    pub capacity: f64,
    pub offered_per_second: f64,
    pub accepted_per_second: f64,
    pub shed_per_second: f64,
    pub read_quiet_micros: (f64, f64),
    pub read_flood_micros: (f64, f64),
    pub accepted: u64,
    pub completed: u64,
}

/// Serial GetTask calls until `stop`; their latencies in µs.
async fn reads(client: Client, id: String, stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        client.get(&id).await.expect("reads answer during the flood");
        latencies.push(micros(started.elapsed()));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    latencies
}

/// `pace`: the total submits per second offered, as multiples of the
/// capacity (`None`: as fast as answers come).
pub async fn flood(seconds: u64, pace: Option<f64>) -> Flood {
    const SLOTS: usize = 8;
    const TASK_MS: u64 = 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, address) = serve(
        dir.path(),
        &[
            "engine.max_concurrent_tasks=8",
            "engine.limits.max_queue_depth=2000",
            "monitor.enabled=false",
        ],
    );
    let reader = Client::connect(address.clone()).await.expect("connects");
    let probe = reader.submit(NewTask::new("diag.echo")).await.expect("submit");
    reader.wait(&probe.id).await.expect("done");
    let capacity = measured_capacity(&reader, (SLOTS * 50) as u64, TASK_MS).await;

    let stop = Arc::new(AtomicBool::new(false));
    let quiet = tokio::spawn(reads(reader.clone(), probe.id.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut quiet = quiet.await.expect("joined");

    // The flood: 128 submitters on 8 connections, each submitting again as
    // soon as it has an answer, accepted or shed.
    let mut submitters = Vec::new();
    for _ in 0..8 {
        submitters.push(Client::connect(address.clone()).await.expect("connects"));
    }
    let (accepted, shed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let flood_reads = tokio::spawn(reads(reader.clone(), probe.id.clone(), stop.clone()));
    let started = Instant::now();
    let mut loops = Vec::new();
    const LOOPS: usize = 128;
    let period = pace.map(|times| Duration::from_secs_f64(LOOPS as f64 / (times * capacity)));
    for index in 0..LOOPS {
        let client = submitters[index % submitters.len()].clone();
        let (accepted, shed, stop) = (accepted.clone(), shed.clone(), stop.clone());
        loops.push(tokio::spawn(async move {
            let mut ticks = period.map(|period| {
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks
            });
            while !stop.load(Ordering::Relaxed) {
                if let Some(ticks) = ticks.as_mut() {
                    ticks.tick().await;
                }
                let task = NewTask::new("diag.sleep").params(json!({"duration_ms": TASK_MS}));
                match client.submit(task).await {
                    Ok(_) => accepted.fetch_add(1, Ordering::Relaxed),
                    Err(error) if error.code() == Some(tonic::Code::ResourceExhausted) => {
                        shed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(error) => panic!("a submit during the flood failed otherwise: {error}"),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.await.expect("joined");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut during = flood_reads.await.expect("joined");
    let (accepted, shed) = (accepted.load(Ordering::Relaxed), shed.load(Ordering::Relaxed));

    // Everything accepted still runs to the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    let completed = loop {
        let counts = reader.stats().await.expect("stats").counts.expect("counts");
        if counts.pending + counts.running == 0 || Instant::now() > deadline {
            break counts.completed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop_server(server);
    Flood {
        capacity,
        offered_per_second: (accepted + shed) as f64 / elapsed,
        accepted_per_second: accepted as f64 / elapsed,
        shed_per_second: shed as f64 / elapsed,
        read_quiet_micros: (percentile(&mut quiet, 0.5), percentile(&mut quiet, 0.99)),
        read_flood_micros: (percentile(&mut during, 0.5), percentile(&mut during, 0.99)),
        // The probe task and the capacity run's are among the completed.
        accepted: accepted + 1 + (SLOTS * 50) as u64,
        completed,
    }
}

/// Completions per second of `count` tasks of `task_ms` submitted at once:
/// what the binary really runs, queue full, with its overheads.
async fn measured_capacity(client: &Client, count: u64, task_ms: u64) -> f64 {
    let completed = |client: &Client| {
        let client = client.clone();
        async move { client.stats().await.expect("stats").counts.expect("counts").completed }
    };
    let before = completed(client).await;
    let started = Instant::now();
    let tasks = (0..count).map(|_| NewTask::new("diag.sleep").params(json!({"duration_ms": task_ms})));
    client.submit_batch(tasks).await.expect("batch submit");
    while completed(client).await < before + count {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn stop_server(server: Child) {
    stop(server);
}

pub struct Watches {
    pub streams: usize,
    pub rss_idle_mib: f64,
    pub rss_watching_mib: f64,
    pub open_seconds: f64,
    pub fan_out_millis: f64,
}

pub async fn watches(streams: usize) -> Watches {
    const PER_CONNECTION: usize = 100;
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, address) = serve(dir.path(), &["monitor.enabled=false"]);
    let pid = server.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle_mib = rss_mib(pid);
    let started = Instant::now();
    let mut connections = Vec::new();
    for _ in 0..streams.div_ceil(PER_CONNECTION) {
        connections.push(Client::connect(address.clone()).await.expect("connects"));
    }
    let mut opened = Vec::with_capacity(streams);
    for index in 0..streams {
        let client = connections[index / PER_CONNECTION].clone();
        opened.push(tokio::spawn(async move {
            client.watch_all(Default::default()).await.expect("watch opens")
        }));
    }
    let mut open = Vec::with_capacity(streams);
    for handle in opened {
        open.push(Box::pin(handle.await.expect("joined")));
    }
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_watching_mib = rss_mib(pid);

    // One event to every stream.
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(streams);
    for mut stream in open {
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            if let Some(event) = stream.next().await {
                event.expect("event");
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let submitted = Instant::now();
    connections[0]
        .submit(NewTask::new("document_processing"))
        .await
        .expect("submit");
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(60), reader).await;
    }
    let fan_out_millis = submitted.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(
        received.load(Ordering::Relaxed) as usize,
        streams,
        "every stream got the event"
    );
    drop(connections);
    stop(server);
    Watches {
        streams,
        rss_idle_mib,
        rss_watching_mib,
        open_seconds,
        fan_out_millis,
    }
}
