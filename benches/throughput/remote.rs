//! Remote workers: the same no-op tasks run through the worker protocol by a
//! worker in another process (the Rust SDK's `Worker`, this very bench binary
//! started again in the worker role; and the Python SDK's `Worker`), beside
//! the in-process executor in the same run.
//!
//! The handlers answer with the wall-clock time they started, so pickup
//! (submit to the handler running, across processes on one machine) is
//! measured where it happens rather than where the server hands it out.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use taskd_client::worker::{TaskRun, Worker};
use taskd_client::{Client, NewTask, TaskStatus};

use crate::measure::percentile;

/// The type the remote workers serve; the worker declares it on connect.
pub const NOOP: &str = "bench.noop";
/// Set in a child process to make it a Rust worker for `NOOP`.
const ROLE: &str = "TASKD_BENCH_WORKER_ADDRESS";
/// The tasks a worker takes at once: the node's limit in this bench, as the
/// in-process executor has.
pub const CAPACITY: u32 = 256;

/// In the worker role (the environment says so), serves `NOOP` until its
/// parent closes stdin, and returns true; otherwise false.
pub fn run_as_worker_if_asked() -> bool {
    let Ok(address) = std::env::var(ROLE) else {
        return false;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let client = Client::connect(address).await.expect("worker connects");
        let worker = Worker::new(&client)
            .capacity(CAPACITY)
            .handle(NOOP, |_run: TaskRun| async move {
                Ok(json!({"started_at_ns": now_nanos()}))
            });
        // The parent ends the worker by closing its stdin.
        let parent_gone = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        });
        worker
            .run_until(async move {
                let _ = parent_gone.await;
            })
            .await
            .expect("worker runs");
    });
    true
}

/// A worker process, stopped (stdin closed, then killed if it lingers) when
/// dropped.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    /// This binary again, in the worker role.
    pub fn rust(address: &str) -> Self {
        let child = Command::new(std::env::current_exe().expect("own path"))
            .env(ROLE, address)
            .stdin(Stdio::piped())
            .spawn()
            .expect("starts the Rust worker");
        WorkerProcess { child }
    }

    /// `benches/python/noop_worker.py` in the SDK's test virtualenv, when
    /// that exists (`scripts/setup-test-tools.sh` makes it).
    pub fn python(address: &str) -> Option<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python: PathBuf = root.join(".tools/sdk-venv/bin/python");
        if !python.is_file() {
            return None;
        }
        let child = Command::new(python)
            .arg(root.join("benches/python/noop_worker.py"))
            .arg(address.trim_start_matches("http://"))
            .arg(CAPACITY.to_string())
            .stdin(Stdio::piped())
            .spawn()
            .expect("starts the Python worker");
        Some(WorkerProcess { child })
    }

    /// Waits until the server lists a worker serving `NOOP`.
    pub async fn connected(&mut self, client: &Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let workers = client.workers().await.expect("workers");
            if workers
                .iter()
                .any(|worker| worker.task_types.iter().any(|served| served == NOOP))
            {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("worker status") {
                panic!("the worker exited before connecting: {status}");
            }
            assert!(Instant::now() < deadline, "the worker did not connect within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Submit-to-handler-start latency, one task at a time (ms): p50 and p99.
pub async fn pickup_latency(client: &Client, samples: usize) -> (f64, f64) {
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let sent = now_nanos();
        let task = client.submit(NewTask::new(NOOP)).await.expect("submit");
        let done = client.wait(&task.id).await.expect("wait");
        assert_eq!(done.status(), TaskStatus::Completed, "{done:?}");
        let started = done
            .result
            .as_ref()
            .and_then(|value| taskd_client::json::value_to_json(value).ok())
            .and_then(|result| result.get("started_at_ns").and_then(serde_json::Value::as_f64))
            .expect("the worker's result carries started_at_ns");
        // A double holds nanoseconds since 1970 to within a microsecond.
        latencies.push((started - sent as f64) / 1e6);
    }
    (percentile(&mut latencies, 0.5), percentile(&mut latencies, 0.99))
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}
