//! The `taskd` binary: `taskd serve` starts the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
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
    Serve(Box<ServeArgs>),
    /// Print a new random token, to put in auth.tokens_file as
    /// `<name> <scope>[,<scope>...] <token>`.
    Token,
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
    /// How long a resource must stay above (or back below) its threshold
    /// before an alert is raised (or cleared) [default: 30s].
    #[arg(long, env = "TASKD_ALERT_FOR", value_parser = humantime::parse_duration)]
    alert_for: Option<std::time::Duration>,
    /// How long running tasks may finish on shutdown before they are
    /// stopped and retried at the next start [default: 10s].
    #[arg(long, env = "TASKD_SHUTDOWN_DRAIN", value_parser = humantime::parse_duration)]
    shutdown_drain: Option<std::time::Duration>,
    /// How long a lease lasts unless renewed: a crashed worker's task is
    /// retried this long after its last renewal [default: 30s].
    #[arg(long, env = "TASKD_LEASE_DURATION", value_parser = humantime::parse_duration)]
    lease_duration: Option<std::time::Duration>,
    /// Where tasks are kept: a postgres:// URL for PostgreSQL (several nodes
    /// may share it) [default: the SQLite file in the data dir].
    #[arg(long, env = "TASKD_STORE", hide_env_values = true)]
    store: Option<String>,
    /// File of bearer tokens, one per line: `<name> <scopes> <token>`,
    /// scopes from read, submit, cancel, worker, admin (comma-separated).
    /// TASKD_AUTH_TOKENS takes the same lines, separated by `;` [default:
    /// none: no authentication].
    #[arg(long, env = "TASKD_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// PEM certificate chain; with --tls-key the listener speaks only TLS.
    #[arg(long, env = "TASKD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TASKD_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate they signed
    /// (mTLS).
    #[arg(long, env = "TASKD_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Any setting by its config-file key, e.g. --set engine.cancel_grace=2s
    /// (repeatable; applied after the file and the flags above). TASKD_SET
    /// takes the same, separated by semicolons.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.trim().to_string())),
        _ => Err("expected KEY=VALUE, e.g. engine.cancel_grace=2s".to_string()),
    }
}

/// The list of every setting and its default, shown by `taskd serve --help`.
fn settings_help() -> String {
    let mut help = String::from(
        "Every setting, as a config-file key with its default (set one with --set KEY=VALUE, \
         or TASKD_SET=\"KEY=VALUE;KEY=VALUE\"):\n",
    );
    for (key, value) in ServerConfig::default().settings() {
        help.push_str(&format!("  {key} = {value}\n"));
    }
    help
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
        if let Some(hold) = self.alert_for {
            config.monitor.alert_for = hold;
        }
        if let Some(drain) = self.shutdown_drain {
            config.shutdown_drain = drain;
        }
        if let Some(lease) = self.lease_duration {
            config.engine.lease_duration = lease;
        }
        if let Some(url) = self.store {
            config.store.url = url;
        }
        if let Some(file) = self.tokens_file {
            config.auth.tokens_file = file;
        }
        if let Some(cert) = self.tls_cert {
            config.tls.cert_file = cert;
        }
        if let Some(key) = self.tls_key {
            config.tls.key_file = key;
        }
        if let Some(ca) = self.tls_client_ca {
            config.tls.client_ca_file = ca;
        }
        if let Ok(tokens) = std::env::var("TASKD_AUTH_TOKENS") {
            config.auth.tokens_text = Some(taskd::auth::Secret(tokens));
        }
        let from_env = std::env::var("TASKD_SET").unwrap_or_default();
        let env_settings = from_env
            .split(';')
            .filter(|item| !item.trim().is_empty())
            .map(|item| parse_setting(item).map_err(|error| anyhow::anyhow!("TASKD_SET: {error}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (key, value) in env_settings.iter().chain(&self.settings) {
            config
                .set(key, value)
                .map_err(|error| anyhow::anyhow!("--set {error}"))?;
        }
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(config)
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("TASKD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: in a file, a pipe or
    // a log collector they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when
/// this is called, not when it is first polled: a signal that arrives just
/// after the server says it listens must still stop it gracefully.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// SIGHUP: read tokens and certificates again.
#[cfg(unix)]
fn reload_signal() -> anyhow::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup()).context("cannot handle SIGHUP")
}

/// Servers hold a descriptor per connection: take the whole allowance the
/// system grants (the soft limit is often 1024 while the hard one is far
/// higher), and say so when it is below what net.max_connections asks.
fn raise_file_limit(config: &ServerConfig) {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            let _ = setrlimit(Resource::Nofile, limit);
        }
        let current = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        let wanted = config.net.max_connections as u64 + 256;
        if current < wanted {
            tracing::warn!(
                file_limit = current,
                max_connections = config.net.max_connections,
                "the file descriptor limit is below net.max_connections plus the store's and the system's needs; \
                 connections beyond it wait until others close"
            );
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::command().mut_subcommand("serve", |serve| serve.after_long_help(settings_help()));
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|error| error.exit());
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            init_logging(config.log_format);
            raise_file_limit(&config);
            // The built-in handlers only: the server adds them itself.
            let mut server = taskd::server::start(config, HandlerRegistry::new())
                .await
                .context("taskd could not start")?;
            let shutdown = shutdown_signal()?;
            tokio::pin!(shutdown);
            let mut reload = reload_signal()?;
            // Scripts and tests read this line to find the port.
            println!("taskd listening on {}", server.local_addr());
            loop {
                tokio::select! {
                    _ = &mut shutdown => {
                        tracing::info!("shutdown requested");
                        break;
                    }
                    _ = reload.recv() => {
                        if let Err(error) = server.reload() {
                            tracing::error!(%error, "reload failed; the tokens and certificates in use stay");
                        }
                    }
                    result = server.wait() => {
                        result.context("listener failed")?;
                        break;
                    }
                }
            }
            server.stop().await;
            Ok(())
        }
        Command::Token => {
            println!("{}", taskd::auth::generate_token());
            Ok(())
        }
    }
}
