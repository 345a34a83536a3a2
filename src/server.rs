//! Assembles the service: store, engine, handlers and gRPC (with health and
//! reflection) on one listener, and takes it all down in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::access::{self, Access};
use crate::api::guard::{self, Guard};
use crate::api::proto;
use crate::api::proto::schedule_service_server::ScheduleServiceServer;
use crate::api::proto::system_service_server::SystemServiceServer;
use crate::api::proto::task_service_server::TaskServiceServer;
use crate::api::proto::worker_service_server::WorkerServiceServer;
use crate::api::rest::{self, RestState};
use crate::api::schedule_calls::ScheduleCalls;
use crate::api::schedule_service::ScheduleServiceHandler;
use crate::api::system_service::SystemServiceHandler;
use crate::api::task_service::TaskServiceHandler;
use crate::api::worker_service::WorkerServiceHandler;
use crate::config::ServerConfig;
use crate::engine::{Engine, EngineError, HandlerRegistry};
use crate::monitor::system_source::SystemSource;
use crate::monitor::{History, Journal, ResourceMonitor, SampleSource};
use crate::net::Listener;
use crate::net::tls::ReloadableTls;
use crate::store::postgres::PostgresStore;
use crate::store::{Backend, SqliteStore, Store, StoreError, StoreOptions, redacted};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use data dir {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// A part of the server failed to start (reflection, a background task).
    #[error("startup: {0}")]
    Startup(String),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    Tls(#[from] crate::net::tls::TlsError),
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthError),
}

/// A started server. Dropping it does not stop it; call [`stop`](Self::stop).
pub struct RunningServer {
    local_addr: SocketAddr,
    engine: Engine,
    stop_accepting: CancellationToken,
    stopping: CancellationToken,
    serving: JoinHandle<()>,
    /// Keeps the monitor's history; its last write is awaited at the stop.
    recording: JoinHandle<()>,
    access: Access,
    tls: Option<ReloadableTls>,
    config: ServerConfig,
}

impl RunningServer {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Resolves when the listener stopped on its own.
    pub async fn wait(&mut self) -> Result<(), ServerError> {
        (&mut self.serving)
            .await
            .map_err(|join_error| ServerError::Startup(join_error.to_string()))
    }

    /// Reads the tokens and the TLS certificate, key and client CA again
    /// (SIGHUP). All or nothing: on any error what is in use stays.
    pub fn reload(&self) -> Result<(), ServerError> {
        let tokens = self.config.auth.load_tokens()?;
        if let Some(tls) = &self.tls {
            tls.reload()?;
        }
        let count = tokens.len();
        self.access.replace_tokens(tokens);
        tracing::info!(
            tokens = count,
            tls = self.tls.is_some(),
            "reloaded tokens and certificates"
        );
        Ok(())
    }

    /// Graceful stop: end watch streams and stop taking requests, let
    /// running tasks finish within the drain period (the rest are taken back
    /// and retried later), and close the store.
    pub async fn stop(mut self) {
        self.stopping.cancel();
        self.stop_accepting.cancel();
        let drain = self.config.shutdown_drain;
        if tokio::time::timeout(drain + Duration::from_secs(10), &mut self.serving)
            .await
            .is_err()
        {
            tracing::warn!("the listener did not stop in time; aborting open connections");
            self.serving.abort();
        }
        self.engine.shutdown(drain).await;
        if tokio::time::timeout(Duration::from_secs(5), &mut self.recording)
            .await
            .is_err()
        {
            tracing::warn!("the monitor's history was not written in time at the stop");
        }
        tracing::info!("taskd stopped");
    }
}

/// Binds `config.listen` and starts serving, sampling the real machine.
/// `registry` holds handlers of the embedding program, next to (or in place
/// of) the built-ins of the same types.
pub async fn start(config: ServerConfig, registry: HandlerRegistry) -> Result<RunningServer, ServerError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            address: config.listen,
            source,
        })?;
    start_on(listener, config, registry).await
}

/// Starts serving on an already bound listener (tests bind port 0),
/// sampling the real machine.
pub async fn start_on(
    listener: TcpListener,
    config: ServerConfig,
    registry: HandlerRegistry,
) -> Result<RunningServer, ServerError> {
    start_with_source(listener, config, registry, None).await
}

/// Starts serving with the ResourceMonitor reading `source` instead of the
/// machine (`None`: the machine). Tests script their load this way.
pub async fn start_with_source(
    listener: TcpListener,
    config: ServerConfig,
    registry: HandlerRegistry,
    source: Option<Box<dyn SampleSource>>,
) -> Result<RunningServer, ServerError> {
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        address: config.listen,
        source,
    })?;
    // Settings that can be wrong are read before anything is opened, so a
    // refused start leaves nothing behind.
    let tokens = config.auth.load_tokens()?;
    let access = Access::new(tokens, config.auth.clone(), config.net.max_in_flight_submits);
    let tls = if config.tls.enabled() {
        Some(ReloadableTls::load(&config.tls)?)
    } else {
        None
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let data_dir = config.data_dir.canonicalize().map_err(|source| ServerError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let options = StoreOptions {
        weights: config.engine.priority_boost,
        event_buffer: config.engine.event_buffer,
    };
    let mut engine_config = config.engine.clone();
    let store: Arc<dyn Store> = match config.store.backend().map_err(ServerError::Startup)? {
        Backend::Sqlite(store_config) => {
            let path = data_dir.join("taskd.db");
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(path, store_config, options))
                .await
                .map_err(|error| ServerError::Startup(error.to_string()))??;
            Arc::new(store)
        }
        Backend::Postgres(mut store_config) => {
            tracing::info!(url = %redacted(&store_config.url), schema = ?store_config.schema, "store: postgresql");
            // Nodes share the database: each names its executors apart.
            if engine_config.node_id.is_empty() {
                engine_config.node_id = node_name();
            }
            store_config.node_id = engine_config.node_id.clone();
            Arc::new(PostgresStore::open(store_config, options).await?)
        }
    };
    let engine = Engine::start(store, engine_config).await?;
    let mut handlers = crate::handlers::builtins(&engine, &data_dir);
    handlers.extend(registry);
    engine.run_local_executor(handlers);
    if let Err(error) = crate::engine::retention::ensure_schedule(&engine.schedules(), &config.retention).await {
        tracing::warn!(%error, "cannot create the retention schedule; finished tasks are kept until one exists");
    }

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<TaskServiceServer<TaskServiceHandler>>()
        .await;
    health_reporter
        .set_serving::<SystemServiceServer<SystemServiceHandler>>()
        .await;
    health_reporter
        .set_serving::<WorkerServiceServer<WorkerServiceHandler>>()
        .await;
    health_reporter
        .set_serving::<ScheduleServiceServer<ScheduleServiceHandler>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| ServerError::Startup(error.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|error| ServerError::Startup(error.to_string()))?;

    let stopping = CancellationToken::new();
    let monitor = ResourceMonitor::new(config.monitor.clone());
    let history = History::new(config.monitor.history_interval, config.monitor.history_points);
    let journal = Journal::in_dir(&data_dir);
    match journal.load() {
        Ok(recorded) => {
            monitor.restore(&recorded);
            history.restore(recorded.points);
        }
        Err(error) => tracing::warn!(%error, "the monitor's history starts empty"),
    }
    if config.monitor.enabled {
        let source = match source {
            Some(source) => source,
            None => {
                let data_dir = data_dir.clone();
                let source = tokio::task::spawn_blocking(move || SystemSource::new(&data_dir))
                    .await
                    .map_err(|error| ServerError::Startup(error.to_string()))?;
                Box::new(source) as Box<dyn SampleSource>
            }
        };
        monitor.clone().spawn(source, engine.clone(), stopping.clone());
    }
    let recording = history
        .clone()
        .spawn(engine.clone(), monitor.clone(), journal, stopping.clone());
    let task_service = TaskServiceServer::new(TaskServiceHandler::new(
        engine.tasks(),
        engine.admin(),
        stopping.clone(),
    ));
    let system_service = SystemServiceServer::new(SystemServiceHandler::new(
        monitor.clone(),
        engine.tasks(),
        stopping.clone(),
    ));
    let worker_service = WorkerServiceServer::new(WorkerServiceHandler::new(engine.workers(), stopping.clone()));
    let schedule_calls = ScheduleCalls::new(engine.schedules());
    let schedule_service = ScheduleServiceServer::new(ScheduleServiceHandler::new(schedule_calls.clone()));
    // One listener for gRPC (HTTP/2) and the REST bridge, dashboard and
    // metrics (HTTP/1.1 or HTTP/2): REST routes are the fallback of the
    // gRPC router.
    let rest = rest::router(RestState {
        tasks: engine.tasks(),
        workers: engine.workers(),
        admin: engine.admin(),
        schedules: schedule_calls,
        monitor: monitor.clone(),
        history,
        stopping: stopping.clone(),
    });
    warn_if_exposed(local_addr, &access, tls.is_some());
    let router = tonic::service::Routes::from(rest)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(task_service)
        .add_service(system_service)
        .add_service(worker_service)
        .add_service(schedule_service)
        .prepare()
        .into_axum_router()
        // Outermost last here, first on the way in: is the request what it
        // says and not a web page's doing, who is asking and may they, then
        // the client's deadline over everything the call does.
        .layer(axum::middleware::from_fn(
            crate::api::grpc_limits::oversized_as_resource_exhausted,
        ))
        .layer(axum::middleware::from_fn(crate::api::deadline::grpc_deadline))
        .layer(axum::middleware::from_fn_with_state(access.clone(), access::check))
        .layer(axum::middleware::from_fn_with_state(
            Guard::new(config.cors_origins.clone(), &config.net.allowed_hosts, access.clone()),
            guard::check,
        ));
    let stop_accepting = CancellationToken::new();
    let serving = tokio::spawn(crate::net::serve(
        Listener {
            tcp: listener,
            tls: tls.clone(),
        },
        router,
        config.net.clone(),
        stop_accepting.clone(),
        config.shutdown_drain,
    ));
    tracing::info!(
        address = %local_addr,
        data_dir = %data_dir.display(),
        tls = tls.is_some(),
        auth = access.enabled(),
        "taskd serving gRPC"
    );
    Ok(RunningServer {
        local_addr,
        engine,
        stop_accepting,
        stopping,
        serving,
        recording,
        access,
        tls,
        config,
    })
}

/// A listener others can reach, open to anyone or in plaintext, deserves a
/// line the operator will see.
fn warn_if_exposed(address: SocketAddr, access: &Access, tls: bool) {
    if address.ip().is_loopback() {
        return;
    }
    if !access.enabled() {
        tracing::warn!(
            %address,
            "listening on a non-loopback address WITHOUT authentication: anyone who can reach it can submit, \
             cancel and read every task; set auth.tokens_file or TASKD_AUTH_TOKENS. Until then clients must \
             reach it by an IP address or a host name in net.allowed_hosts"
        );
    } else if !tls {
        tracing::warn!(
            %address,
            "listening on a non-loopback address without TLS: tokens and tasks cross the network in plaintext; \
             set tls.cert_file and tls.key_file"
        );
    }
}

/// This node's name among those sharing a database: the host's name and a
/// random suffix (two processes on one host are two nodes).
fn node_name() -> String {
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    format!("{host}-{:06x}", rand::random::<u32>() >> 8)
}
