//! A real taskd server on an ephemeral port, over TCP, on its own data dir,
//! with a client connected to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use taskd::config::ServerConfig;
use taskd::engine::{HandlerError, HandlerRegistry, SchedulingWeights, TaskContext};
use taskd::model::Timestamp;
use taskd::monitor::{ResourceSample, SampleSource};
use taskd::server::RunningServer;
use taskd_client::{Client, Task, TaskStatus};
use tokio::sync::Semaphore;

/// Releases `test.gate` tasks one permit at a time, so tests decide when a
/// running task ends without sleeping.
#[derive(Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
}

impl Gate {
    pub fn new() -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(0)),
        }
    }

    /// Lets `count` gated tasks finish.
    pub fn open(&self, count: usize) {
        self.permits.add_permits(count);
    }
}

pub struct TestServer {
    pub client: Client,
    pub server: Option<RunningServer>,
    pub gate: Gate,
    pub config: ServerConfig,
    // Kept so the data dir lives as long as the test.
    dir: Option<tempfile::TempDir>,
}

/// With `TASKD_TEST_LOG` set (to a filter such as `debug`), tests print the
/// server's logs: the way to look inside a failing test.
fn log_if_asked() {
    if let Ok(filter) = std::env::var("TASKD_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Settings for fast tests: short backoffs and small priority steps.
pub fn test_config(data_dir: &Path) -> ServerConfig {
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        data_dir: data_dir.to_path_buf(),
        shutdown_drain: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    config.engine.max_concurrent_tasks = 4;
    // The real machine is busy while the suite runs; only the monitoring
    // tests, with scripted load, let load steer the scheduler.
    config.monitor.enabled = false;
    // No nightly purge firing into a test that counts tasks; the retention
    // tests turn it on.
    config.retention.enabled = false;
    config.engine.cancel_grace = Duration::from_secs(2);
    config.engine.default_retry_policy.initial_backoff = Duration::from_millis(20);
    config.engine.default_retry_policy.max_backoff = Duration::from_millis(200);
    config.engine.priority_boost = SchedulingWeights {
        low: Duration::ZERO,
        normal: Duration::from_millis(200),
        high: Duration::from_millis(400),
        critical: Duration::from_millis(600),
    };
    config
}

fn registry(gate: &Gate) -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    let permits = gate.permits.clone();
    registry.register("test.gate", move |context: TaskContext| {
        let permits = permits.clone();
        async move {
            tokio::select! {
                permit = permits.acquire() => {
                    permit.map_err(|_| HandlerError::new("gate closed"))?.forget();
                    Ok(serde_json::json!({"released": true}))
                }
                _ = context.cancellation.cancelled() => Err(HandlerError::new("cancelled at the gate")),
            }
        }
    });
    registry
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_scripted(adjust, None).await
    }

    /// Starts a server whose ResourceMonitor reads `source` (None: the real
    /// machine).
    pub async fn start_scripted(adjust: impl FnOnce(&mut ServerConfig), source: Option<ScriptedLoad>) -> Self {
        log_if_asked();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        if source.is_some() {
            config.monitor.enabled = true;
            config.monitor.interval = Duration::from_millis(20);
            // Scripted samples drive alerts at once; the hold itself is
            // specified in the monitor's own tests.
            config.monitor.alert_for = Duration::ZERO;
        }
        adjust(&mut config);
        let gate = Gate::new();
        let (server, client) = launch_with(config.clone(), &gate, source).await;
        TestServer {
            client,
            server: Some(server),
            gate,
            config,
            dir: Some(dir),
        }
    }

    /// Starts a server on `data_dir`, which the caller owns.
    pub async fn start_in(data_dir: &Path, adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        log_if_asked();
        let mut config = test_config(data_dir);
        adjust(&mut config);
        let gate = Gate::new();
        let (server, client) = launch_with(config.clone(), &gate, None).await;
        TestServer {
            client,
            server: Some(server),
            gate,
            config,
            dir: None,
        }
    }

    /// Stops the server gracefully.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Stops the server gracefully and starts a new one on the same data dir.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        let (server, client) = launch(self.config.clone(), &self.gate).await;
        self.server = Some(server);
        self.client = client;
    }

    /// Waits for a terminal status through a watch stream.
    pub async fn wait(&self, task_id: &str) -> Task {
        tokio::time::timeout(Duration::from_secs(30), self.client.wait(task_id))
            .await
            .expect("task finished within 30s")
            .expect("watch succeeded")
    }

    /// Waits until the task reaches `status` (watching, not polling).
    pub async fn wait_for_status(&self, task_id: &str, status: TaskStatus) -> Task {
        let watch = async {
            let mut events = Box::pin(self.client.watch(task_id).await.expect("watch"));
            while let Some(event) = events.next().await {
                let task = event.expect("event").task.expect("task in event");
                if task.status() == status {
                    return task;
                }
            }
            panic!("task {task_id} never reached {status:?}");
        };
        tokio::time::timeout(Duration::from_secs(30), watch)
            .await
            .expect("status reached within 30s")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Close the database before the temp dir goes away.
        drop(self.server.take());
        drop(self.dir.take());
    }
}

async fn launch(config: ServerConfig, gate: &Gate) -> (RunningServer, Client) {
    launch_with(config, gate, None).await
}

async fn launch_with(config: ServerConfig, gate: &Gate, source: Option<ScriptedLoad>) -> (RunningServer, Client) {
    let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
    let source = source.map(|load| Box::new(load) as Box<dyn SampleSource>);
    let server = taskd::server::start_with_source(listener, config, registry(gate), source)
        .await
        .expect("server starts");
    let client = Client::connect(format!("http://{}", server.local_addr()))
        .await
        .expect("client connects");
    (server, client)
}

/// A scripted machine: every sample reads the levels last set by the test.
#[derive(Clone)]
pub struct ScriptedLoad {
    levels: Arc<std::sync::Mutex<ResourceSample>>,
}

impl ScriptedLoad {
    /// Starts idle: 10% CPU and memory, 20% disk, no I/O wait.
    pub fn new() -> Self {
        ScriptedLoad {
            levels: Arc::new(std::sync::Mutex::new(ResourceSample {
                time: Timestamp::now(),
                cpu_percent: 10.0,
                memory_percent: 10.0,
                disk_percent: 20.0,
                io_wait_percent: Some(0.0),
            })),
        }
    }

    pub fn set(&self, change: impl FnOnce(&mut ResourceSample)) {
        change(&mut self.levels.lock().expect("levels"));
    }

    pub fn set_cpu(&self, percent: f64) {
        self.set(|levels| levels.cpu_percent = percent);
    }
}

impl SampleSource for ScriptedLoad {
    fn sample(&mut self) -> ResourceSample {
        let mut sample = *self.levels.lock().expect("levels");
        sample.time = Timestamp::now();
        sample
    }
}

/// Milliseconds between two wire timestamps.
pub fn millis_between(from: &pbjson_types::Timestamp, to: &pbjson_types::Timestamp) -> f64 {
    let from = from.seconds as f64 * 1000.0 + from.nanos as f64 / 1e6;
    let to = to.seconds as f64 * 1000.0 + to.nanos as f64 / 1e6;
    to - from
}

/// Starts `taskd serve` on port 0 and returns it with its address.
pub fn spawn_taskd(data_dir: &std::path::Path) -> (Child, String) {
    spawn_with(data_dir, |command| command)
}

pub fn spawn_with(data_dir: &std::path::Path, adjust: impl FnOnce(&mut Command) -> &mut Command) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskd"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(["--set", "retention.enabled=false"])
        .env("TASKD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = adjust(&mut command).spawn().expect("taskd starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let address = line
        .trim()
        .strip_prefix("taskd listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, format!("http://{address}"))
}

/// Stops a spawned taskd with SIGTERM and waits (bounded) for it to exit;
/// one that does not stop within 15 s is killed and the test fails.
pub fn terminate(child: &mut Child) {
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(signalled.success(), "SIGTERM delivered");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("taskd did not stop within 15 s of SIGTERM");
}

/// How long one awaited thing (an event, a chunk, an answer) may take.
pub const BOUND: Duration = Duration::from_secs(30);

/// Awaits `future` for at most [`BOUND`]: a regression fails the test,
/// naming what did not happen, instead of hanging the suite.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {BOUND:?}"))
}
