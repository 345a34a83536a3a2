//! The engine as a whole: started on a store, stopped once, and entered
//! through one facade per capability: [`TaskManager`] (tasks),
//! [`Workers`] (the worker protocol) and [`Admin`] (administration).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::engine::admin::Admin;
use crate::engine::catalog::{FixedBy, SEED_TASK_TYPES};
use crate::engine::config::EngineConfig;
use crate::engine::core::Core;
use crate::engine::error::EngineResult;
use crate::engine::executor::LocalExecutor;
use crate::engine::handler::HandlerRegistry;
use crate::engine::manager::TaskManager;
use crate::engine::schedules::{self, Schedules};
use crate::engine::timers;
use crate::engine::workers::Workers;
use crate::engine::{cluster, task_types};
use crate::model::ExecutorId;
use crate::store::{RescueScope, Store};

/// Why the in-process executor's leases are taken back at start and stop.
const INTERRUPTED_BY_STOP: &str = "taskd stopped while this attempt ran";

/// Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    core: Arc<Core>,
    local: Arc<OnceLock<Arc<LocalExecutor>>>,
}

impl Engine {
    /// Starts the engine on `store`. Attempts a previous run of this
    /// server's in-process executor left running are taken back first (the
    /// same rescue as for any executor that is gone), then the stager and
    /// the rescuer start.
    pub async fn start(store: Arc<dyn Store>, config: EngineConfig) -> EngineResult<Self> {
        let counts = store.counts().await?;
        let core = Arc::new(Core::new(store, config, &counts));
        let observing = Arc::downgrade(&core);
        core.store.on_commit(Arc::new(move |transitions| {
            if let Some(core) = observing.upgrade() {
                core.observe(transitions);
            }
        }));
        let remote = Arc::downgrade(&core);
        let resyncing = Arc::downgrade(&core);
        core.store.on_remote_commit(
            Arc::new(move |transitions| {
                if let Some(core) = remote.upgrade() {
                    core.observe_remote(transitions);
                }
            }),
            Arc::new(move || {
                if let Some(core) = resyncing.upgrade() {
                    core.resync();
                }
            }),
        );
        core.catalog
            .fix(SEED_TASK_TYPES.iter().map(|name| name.to_string()), FixedBy::DesignNote);
        core.catalog
            .fix(core.config.known_task_types.iter().cloned(), FixedBy::Configuration);
        core.catalog.replace_declared(core.store.declared_task_types().await?);
        let rescued = core
            .store
            .rescue(
                RescueScope::HeldBy(core.executor_name(ExecutorId::LOCAL), INTERRUPTED_BY_STOP.to_string()),
                core.clock.now(),
            )
            .await?;
        if !rescued.tasks.is_empty() {
            tracing::info!(
                interrupted = rescued.tasks.len(),
                "took back attempts of the previous run"
            );
        }
        timers::spawn(core.clone());
        task_types::spawn_keeper(core.clone());
        cluster::spawn(core.clone());
        let local = Arc::new(OnceLock::new());
        schedules::spawn(core.clone(), TaskManager::new(core.clone(), local.clone()));
        Ok(Engine { core, local })
    }

    /// Starts the in-process executor with `registry`'s handlers. Once.
    pub fn run_local_executor(&self, registry: HandlerRegistry) {
        self.core
            .catalog
            .fix(registry.task_types().map(str::to_string), FixedBy::Handler);
        for task_type in registry.task_types() {
            if let Some(params) = registry.params_of(task_type) {
                self.core.catalog.limit_params(task_type.to_string(), params);
            }
        }
        let executor = LocalExecutor::start(self.core.clone(), registry);
        if self.local.set(executor).is_err() {
            tracing::warn!("the in-process executor was already running");
        }
    }

    /// Whether submits are accepted (false once shutdown began).
    pub fn is_accepting(&self) -> bool {
        self.core.is_accepting()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.core.config
    }

    /// Tasks: submit, get, list, cancel, watch, stats.
    pub fn tasks(&self) -> TaskManager {
        TaskManager::new(self.core.clone(), self.local.clone())
    }

    /// The worker protocol.
    pub fn workers(&self) -> Workers {
        Workers::new(self.core.clone())
    }

    /// Recurring tasks.
    pub fn schedules(&self) -> Schedules {
        Schedules::new(self.core.clone(), self.tasks())
    }

    /// Administration.
    pub fn admin(&self) -> Admin {
        Admin::new(self.core.clone())
    }

    /// Stops accepting work, lets running attempts finish for up to
    /// `drain`, stops the rest and takes their leases back (they are
    /// retried at the next start, or by another node), then stops the
    /// background loops and closes the store.
    pub async fn shutdown(&self, drain: Duration) {
        self.core.stop_accepting();
        if let Some(local) = self.local.get() {
            local.shutdown(drain).await;
            let rescue = self.core.store.rescue(
                RescueScope::HeldBy(local.id().clone(), INTERRUPTED_BY_STOP.to_string()),
                self.core.clock.now(),
            );
            match rescue.await {
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot take back running attempts; the next start will"),
            }
        }
        // Workers lose their connection with the server: what they hold is
        // taken back now, while the store still takes writes.
        for worker in self.core.workers.sessions() {
            worker.disconnect("lost its server (taskd stopped)").await;
        }
        self.core.stopping.cancel();
        self.core.store.close().await;
    }
}
