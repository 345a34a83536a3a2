//! Engine settings: scheduling, defaults for submitted tasks, and input limits.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::model::SchedulingWeights;
use crate::model::{Clock, RetryPolicy};

/// How the engine schedules and runs tasks.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct EngineConfig {
    /// Hard limit on RUNNING tasks.
    pub max_concurrent_tasks: usize,
    /// Optional per-task-type limits on RUNNING tasks, within the global one.
    pub type_concurrency_limits: BTreeMap<String, usize>,
    /// Task types accepted at submit besides the design note's, the
    /// built-in handlers' and those workers declared: types whose workers
    /// have not connected yet.
    pub known_task_types: Vec<String>,
    /// Task types that taskd serves itself (its built-in or embedded
    /// handlers) or that need scope admin (`system_maintenance`), which
    /// workers may declare anyway. Any other worker declaring one is
    /// refused: a worker must not be handed a built-in's tasks and their
    /// params, nor report them done.
    pub worker_may_serve: Vec<String>,
    /// A type declared only by workers is forgotten when none has declared
    /// or served it for this long (those in `known_task_types` are kept):
    /// submits of it are refused again until a worker declares it.
    #[serde(with = "humantime_serde")]
    pub forget_task_types_after: Duration,
    /// Serve `diag.panic`, a handler that panics, to check that a panic
    /// fails only its own task. Off, a submit of it is refused.
    pub diag_panic: bool,
    /// Head start each priority gets in the claim order; see `SchedulingWeights`.
    pub priority_boost: SchedulingWeights,
    /// Retries a task gets when its submit does not say.
    pub default_max_retries: u32,
    /// Attempt timeout when a submit does not say.
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// Backoff between attempts when a submit does not say.
    pub default_retry_policy: RetryPolicyConfig,
    /// How long a cancelled handler may take to wind down before it is dropped.
    #[serde(with = "humantime_serde")]
    pub cancel_grace: Duration,
    /// How long a lease lasts unless renewed: an executor that stops
    /// renewing (crashed, hung, disconnected) loses its task this long after
    /// its last renewal. The in-process executor renews at a third of it.
    #[serde(with = "humantime_serde")]
    pub lease_duration: Duration,
    /// How often expired leases are looked for, at most.
    #[serde(with = "humantime_serde")]
    pub rescue_interval: Duration,
    /// Events buffered per watcher before it is told it lagged.
    pub event_buffer: usize,
    /// This node's name when several share a PostgreSQL database: its
    /// executors hold leases as `local@<node_id>` and `<worker>@<node_id>`.
    /// Empty: the host's name and a random suffix on PostgreSQL; plain
    /// `local` and worker names on SQLite.
    pub node_id: String,
    /// Limits on what a request may ask for.
    pub limits: Limits,
    /// Where every part of the engine reads the time: the system's clock,
    /// or a manual one a test moves. Not a setting.
    #[serde(skip)]
    pub clock: Clock,
}

impl EngineConfig {
    /// How often a lease holder renews its leases: a third of the lease,
    /// so that two renewals may fail before one expires. The one place
    /// this is decided, for the local executor and every worker alike.
    pub fn renew_interval(&self) -> Duration {
        self.lease_duration / 3
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_concurrent_tasks: 10,
            type_concurrency_limits: BTreeMap::new(),
            known_task_types: Vec::new(),
            worker_may_serve: Vec::new(),
            forget_task_types_after: Duration::from_secs(7 * 24 * 3600),
            diag_panic: false,
            priority_boost: SchedulingWeights::default(),
            default_max_retries: 3,
            default_timeout: Duration::from_secs(3600),
            default_retry_policy: RetryPolicyConfig::default(),
            cancel_grace: Duration::from_secs(5),
            lease_duration: Duration::from_secs(30),
            rescue_interval: Duration::from_secs(1),
            event_buffer: 4096,
            node_id: String::new(),
            limits: Limits::default(),
            clock: Clock::system(),
        }
    }
}

/// `RetryPolicy` as written in a config file.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicyConfig {
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    pub multiplier: f64,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    pub jitter: f64,
}

impl Default for RetryPolicyConfig {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        RetryPolicyConfig {
            initial_backoff: policy.initial_backoff,
            multiplier: policy.multiplier,
            max_backoff: policy.max_backoff,
            jitter: policy.jitter,
        }
    }
}

impl From<RetryPolicyConfig> for RetryPolicy {
    fn from(config: RetryPolicyConfig) -> Self {
        RetryPolicy {
            initial_backoff: config.initial_backoff,
            multiplier: config.multiplier,
            max_backoff: config.max_backoff,
            jitter: config.jitter,
        }
    }
}

/// Bounds on requests, so that no client can make the server do unbounded work.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest `params` object, in bytes of compact JSON.
    pub max_params_bytes: usize,
    /// Deepest nesting of `params` and results (objects and arrays inside
    /// each other). Each level costs a protobuf decoder two or three message
    /// levels, and Python's refuses past 100: 20 keeps every task readable
    /// by every standard runtime, in lists and watch events too.
    pub max_json_depth: usize,
    /// Longest cancel reason, in characters.
    pub max_reason_chars: usize,
    /// Most dependencies one task may have.
    pub max_dependencies: usize,
    /// Most tasks in one SubmitTasks batch.
    pub max_batch_size: usize,
    /// Most tasks waiting to run (PENDING, SCHEDULED, WAITING); submits
    /// beyond it are refused with RESOURCE_EXHAUSTED / 429 and a retry
    /// hint instead of piling up.
    pub max_queue_depth: u64,
    /// Largest ListTasks page.
    pub max_page_size: usize,
    /// A list page stops before about this many bytes, below the 4 MiB
    /// that gRPC clients accept by default.
    pub max_page_bytes: usize,
    /// ListTasks page size when the request leaves it at 0.
    pub default_page_size: usize,
    /// Most labels on one task.
    pub max_labels: usize,
    /// Longest task name, in characters.
    pub max_name_chars: usize,
    /// Most retries a task may ask for.
    pub max_retries: u32,
    /// Longest attempt timeout a task may ask for.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// Furthest in the future a run_at may be.
    #[serde(with = "humantime_serde")]
    pub max_schedule_ahead: Duration,
    /// Largest result a worker may report, in bytes of compact JSON.
    pub max_result_bytes: usize,
    /// Most task types one worker may serve.
    pub max_worker_task_types: usize,
    /// Most task types workers may have declared, on all nodes together; a
    /// hello that would declare more is refused with RESOURCE_EXHAUSTED.
    pub max_declared_task_types: usize,
    /// Most tasks one worker may hold at once.
    pub max_worker_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_params_bytes: 64 * 1024,
            max_json_depth: 20,
            max_reason_chars: 1024,
            max_dependencies: 100,
            max_batch_size: 1000,
            max_queue_depth: 1_000_000,
            max_page_size: 1000,
            max_page_bytes: 3 * 1024 * 1024,
            default_page_size: 100,
            max_labels: 32,
            max_name_chars: 256,
            max_retries: 100,
            max_timeout: Duration::from_secs(7 * 24 * 3600),
            max_schedule_ahead: Duration::from_secs(366 * 24 * 3600),
            max_result_bytes: 1024 * 1024,
            max_worker_task_types: 64,
            max_declared_task_types: 1000,
            max_worker_capacity: 1000,
        }
    }
}
