//! The `taskd` binary: `taskd serve` starts the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use taskd::config::{LogFormat, ServerConfig};
use taskd::engine::HandlerRegistry;
use taskd::store::Synchronous;

/// mimalloc: the request path allocates a lot of small, short-lived objects
/// across threads, where it is markedly cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "taskd",
    version,
    about = "A durable background task service served over gRPC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the service. Settings come from defaults, then the config file,
    /// then TASKD_* environment variables, then flags.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file (optional; every setting has a default).
    #[arg(long, env = "TASKD_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "TASKD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for the database, exports and reports [default: ./taskd-data].
    #[arg(long, env = "TASKD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Hard limit on tasks running at once [default: 10].
    #[arg(long, env = "TASKD_MAX_CONCURRENT_TASKS")]
    max_concurrent_tasks: Option<usize>,
    /// Durability of each commit: full (survives power loss) or normal
    /// (survives a taskd crash) [default: full].
    #[arg(long, env = "TASKD_SYNCHRONOUS", value_enum)]
    synchronous: Option<Synchronous>,
    /// Log format [default: text].
    #[arg(long, env = "TASKD_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// CPU usage, percent, above which new starts slow down and an alert is
    /// raised [default: 80].
    #[arg(long, env = "TASKD_CPU_THRESHOLD")]
    cpu_threshold: Option<f64>,
    /// Memory usage threshold, percent [default: 80].
    #[arg(long, env = "TASKD_MEMORY_THRESHOLD")]
    memory_threshold: Option<f64>,
    /// Disk usage threshold for the data dir's filesystem, percent [default: 90].
    #[arg(long, env = "TASKD_DISK_THRESHOLD")]
    disk_threshold: Option<f64>,
    /// I/O wait threshold, percent [default: 30].
    #[arg(long, env = "TASKD_IO_WAIT_THRESHOLD")]
    io_wait_threshold: Option<f64>,
    /// Time between resource samples, e.g. 500ms [default: 1s].
    #[arg(long, env = "TASKD_MONITOR_INTERVAL", value_parser = humantime::parse_duration)]
    monitor_interval: Option<std::time::Duration>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<ServerConfig> {
        let mut config = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(data_dir) = self.data_dir {
            config.data_dir = data_dir;
        }
        if let Some(max) = self.max_concurrent_tasks {
            anyhow::ensure!(max >= 1, "--max-concurrent-tasks must be at least 1");
            config.engine.max_concurrent_tasks = max;
        }
        if let Some(synchronous) = self.synchronous {
            config.store.synchronous = synchronous;
        }
        if let Some(format) = self.log_format {
            config.log_format = format;
        }
        let thresholds = &mut config.monitor.thresholds;
        for (flag, value, slot) in [
            ("--cpu-threshold", self.cpu_threshold, &mut thresholds.cpu_percent),
            (
                "--memory-threshold",
                self.memory_threshold,
                &mut thresholds.memory_percent,
            ),
            ("--disk-threshold", self.disk_threshold, &mut thresholds.disk_percent),
            (
                "--io-wait-threshold",
                self.io_wait_threshold,
                &mut thresholds.io_wait_percent,
            ),
        ] {
            if let Some(value) = value {
                anyhow::ensure!(
                    value > 0.0 && value <= 100.0,
                    "{flag} must be a percentage in (0, 100], got {value}"
                );
                *slot = value;
            }
        }
        if let Some(interval) = self.monitor_interval {
            anyhow::ensure!(!interval.is_zero(), "--monitor-interval must be positive");
            config.monitor.interval = interval;
        }
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(config)
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("TASKD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            init_logging(config.log_format);
            // The built-in handlers only: the server adds them itself.
            let mut server = taskd::server::start(config, HandlerRegistry::new())
                .await
                .context("taskd could not start")?;
            // Scripts and tests read this line to find the port.
            println!("taskd listening on {}", server.local_addr());
            tokio::select! {
                _ = shutdown_signal() => {
                    tracing::info!("shutdown requested");
                }
                result = server.wait() => {
                    result.context("transport failed")?;
                }
            }
            server.stop().await;
            Ok(())
        }
    }
}
