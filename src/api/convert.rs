//! The one place where wire messages become engine types and back. Every
//! malformed value is reported with the field it came from.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::api::json;
use crate::api::proto;
use crate::engine::{EngineError, EngineResult, EngineStats};
use crate::model::{
    Attempt, AttemptOutcome, DependencyTarget, EventKind, MachineState, NewDependency, NewTask, PartialRetryPolicy,
    Progress, RetryPolicy, Task, TaskEvent, TaskFilter, TaskId, TaskPriority, TaskStatus, Timestamp,
};

const PAGE_TOKEN_PREFIX: &str = "v1:";

// ----- scalars -----

pub fn task_id(field: &str, text: &str) -> EngineResult<TaskId> {
    if text.is_empty() {
        return Err(EngineError::invalid(field, "must not be empty"));
    }
    text.parse::<TaskId>()
        .map_err(|_| EngineError::invalid(field, format!("{text:?} is not a task id (a UUID)")))
}

pub fn status_from_proto(field: &str, value: i32) -> EngineResult<Option<TaskStatus>> {
    let status = proto::TaskStatus::try_from(value)
        .map_err(|_| EngineError::invalid(field, format!("{value} is not a TaskStatus")))?;
    Ok(match status {
        proto::TaskStatus::Unspecified => None,
        proto::TaskStatus::Pending => Some(TaskStatus::Pending),
        proto::TaskStatus::Scheduled => Some(TaskStatus::Scheduled),
        proto::TaskStatus::Running => Some(TaskStatus::Running),
        proto::TaskStatus::Completed => Some(TaskStatus::Completed),
        proto::TaskStatus::Failed => Some(TaskStatus::Failed),
        proto::TaskStatus::Cancelled => Some(TaskStatus::Cancelled),
        proto::TaskStatus::Waiting => Some(TaskStatus::Waiting),
    })
}

pub fn status_to_proto(status: TaskStatus) -> proto::TaskStatus {
    match status {
        TaskStatus::Pending => proto::TaskStatus::Pending,
        TaskStatus::Scheduled => proto::TaskStatus::Scheduled,
        TaskStatus::Running => proto::TaskStatus::Running,
        TaskStatus::Completed => proto::TaskStatus::Completed,
        TaskStatus::Failed => proto::TaskStatus::Failed,
        TaskStatus::Cancelled => proto::TaskStatus::Cancelled,
        TaskStatus::Waiting => proto::TaskStatus::Waiting,
    }
}

pub fn priority_from_proto(field: &str, value: i32) -> EngineResult<Option<TaskPriority>> {
    let priority = proto::TaskPriority::try_from(value)
        .map_err(|_| EngineError::invalid(field, format!("{value} is not a TaskPriority")))?;
    Ok(match priority {
        proto::TaskPriority::Unspecified => None,
        proto::TaskPriority::Low => Some(TaskPriority::Low),
        proto::TaskPriority::Normal => Some(TaskPriority::Normal),
        proto::TaskPriority::High => Some(TaskPriority::High),
        proto::TaskPriority::Critical => Some(TaskPriority::Critical),
    })
}

pub fn priority_to_proto(priority: TaskPriority) -> proto::TaskPriority {
    match priority {
        TaskPriority::Low => proto::TaskPriority::Low,
        TaskPriority::Normal => proto::TaskPriority::Normal,
        TaskPriority::High => proto::TaskPriority::High,
        TaskPriority::Critical => proto::TaskPriority::Critical,
    }
}

pub fn timestamp_from_proto(field: &str, value: &pbjson_types::Timestamp) -> EngineResult<Timestamp> {
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(EngineError::invalid(field, "nanos must be in 0..1e9"));
    }
    let micros = value
        .seconds
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(i64::from(value.nanos / 1000)))
        .ok_or_else(|| EngineError::invalid(field, "out of range"))?;
    Ok(Timestamp(micros))
}

pub fn timestamp_to_proto(value: Timestamp) -> pbjson_types::Timestamp {
    let micros = value.as_micros();
    pbjson_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

pub fn duration_from_proto(field: &str, value: &pbjson_types::Duration) -> EngineResult<Duration> {
    if value.seconds < 0 || value.nanos < 0 {
        return Err(EngineError::invalid(field, "must not be negative"));
    }
    if value.nanos >= 1_000_000_000 {
        return Err(EngineError::invalid(field, "nanos must be below 1e9"));
    }
    Ok(Duration::new(value.seconds as u64, value.nanos as u32))
}

pub fn duration_to_proto(value: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: value.as_secs().min(i64::MAX as u64) as i64,
        nanos: value.subsec_nanos() as i32,
    }
}

fn not_json(field: &str, error: json::NotJson) -> EngineError {
    EngineError::invalid(
        format!("{field}{}", error.path),
        "NaN and infinite numbers have no JSON form",
    )
}

// ----- submit -----

/// `error`, its field named from `field` down.
pub fn within(field: &str, error: EngineError) -> EngineError {
    match error {
        EngineError::InvalidArgument { field: inner, message } => EngineError::InvalidArgument {
            field: format!("{field}.{inner}"),
            message,
        },
        EngineError::PermissionDenied { field: inner, message } => EngineError::PermissionDenied {
            field: format!("{field}.{inner}"),
            message,
        },
        other => other,
    }
}

/// Longest wait of a RunTask call, and the wait when it names none.
pub const MAX_RUN_WAIT: Duration = Duration::from_secs(3600);
pub const DEFAULT_RUN_WAIT: Duration = Duration::from_secs(60);

/// A RunTask request: the task and how long to wait for it to end.
pub fn run_request(request: proto::RunTaskRequest) -> EngineResult<(NewTask, Duration)> {
    let task = request
        .task
        .ok_or_else(|| EngineError::invalid("task", "is required"))?;
    let wait = match &request.wait {
        Some(wait) => duration_from_proto("wait", wait)?,
        None => DEFAULT_RUN_WAIT,
    };
    if wait > MAX_RUN_WAIT {
        return Err(EngineError::invalid("wait", "at most 1h; watch the task for longer"));
    }
    Ok((new_task(task, "task.")?, wait))
}

pub fn new_task(request: proto::SubmitTaskRequest, prefix: &str) -> EngineResult<NewTask> {
    let field = |name: &str| format!("{prefix}{name}");
    let params = match &request.params {
        Some(params) => json::struct_to_json(params).map_err(|error| not_json(&field("params"), error))?,
        None => serde_json::Map::new(),
    };
    let priority = priority_from_proto(&field("priority"), request.priority)?.unwrap_or_default();
    let mut dependencies = Vec::with_capacity(request.dependencies.len());
    for (index, dependency) in request.dependencies.iter().enumerate() {
        let dependency_field = |name: &str| field(&format!("dependencies[{index}].{name}"));
        let target = match (dependency.task_id.is_empty(), dependency.batch_ref.is_empty()) {
            (false, true) => DependencyTarget::Task(task_id(&dependency_field("task_id"), &dependency.task_id)?),
            (true, false) => DependencyTarget::BatchRef(dependency.batch_ref.clone()),
            (false, false) => {
                return Err(EngineError::invalid(
                    dependency_field("task_id"),
                    "set task_id or batch_ref, not both",
                ));
            }
            (true, true) => {
                return Err(EngineError::invalid(
                    dependency_field("task_id"),
                    "must not be empty (or set batch_ref in SubmitTasks)",
                ));
            }
        };
        let required_status = status_from_proto(&dependency_field("required_status"), dependency.required_status)?
            .unwrap_or(TaskStatus::Completed);
        dependencies.push(NewDependency {
            target,
            required_status,
        });
    }
    let timeout = request
        .timeout
        .as_ref()
        .map(|value| duration_from_proto(&field("timeout"), value))
        .transpose()?;
    let run_at = request
        .run_at
        .as_ref()
        .map(|value| timestamp_from_proto(&field("run_at"), value))
        .transpose()?;
    let retry_policy = request
        .retry_policy
        .as_ref()
        .map(|policy| retry_policy(policy, &field("retry_policy")))
        .transpose()?;
    Ok(NewTask {
        name: request.name,
        task_type: request.task_type,
        params,
        priority,
        dependencies,
        max_retries: request.max_retries,
        timeout,
        run_at,
        labels: request.labels.into_iter().collect(),
        idempotency_key: Some(request.idempotency_key).filter(|key| !key.is_empty()),
        retry_policy,
        batch_ref: Some(request.batch_ref).filter(|reference| !reference.is_empty()),
    })
}

/// The members of a SubmitTasks batch, each field named as `tasks[i].field`.
/// The engine checks the batch size.
pub fn new_tasks(requests: Vec<proto::SubmitTaskRequest>) -> EngineResult<Vec<NewTask>> {
    requests
        .into_iter()
        .enumerate()
        .map(|(index, request)| new_task(request, &format!("tasks[{index}].")))
        .collect()
}

pub fn retry_policy(policy: &proto::RetryPolicy, prefix: &str) -> EngineResult<PartialRetryPolicy> {
    let duration = |name: &str, value: &Option<pbjson_types::Duration>| {
        value
            .as_ref()
            .map(|value| duration_from_proto(&format!("{prefix}.{name}"), value))
            .transpose()
    };
    Ok(PartialRetryPolicy {
        initial_backoff: duration("initial_backoff", &policy.initial_backoff)?,
        multiplier: Some(policy.multiplier).filter(|value| *value != 0.0),
        max_backoff: duration("max_backoff", &policy.max_backoff)?,
        // Zero is a meaningful jitter, but proto3 cannot tell it from unset;
        // an explicit 0 therefore means the server default. Use a tiny value
        // such as 1e-9 to ask for none.
        jitter: Some(policy.jitter).filter(|value| *value != 0.0),
    })
}

// ----- filters and pages -----

/// Longest name search: a task name is at most 256 characters.
const MAX_NAME_SEARCH_CHARS: usize = 256;

/// The filter of a list request; a watch request's through
/// [`watch_filter`].
pub fn list_filter(request: &proto::ListTasksRequest) -> EngineResult<TaskFilter> {
    let name_contains = request.name_contains.as_str();
    let depends_on = request.depends_on.as_str();
    let mut filter = TaskFilter::default();
    if name_contains.chars().count() > MAX_NAME_SEARCH_CHARS {
        return Err(EngineError::invalid(
            "name_contains",
            format!("at most {MAX_NAME_SEARCH_CHARS} characters"),
        ));
    }
    filter.name_contains = Some(name_contains.to_string()).filter(|part| !part.is_empty());
    if !depends_on.is_empty() {
        filter.depends_on = Some(task_id("depends_on", depends_on)?);
    }
    for (index, value) in request.statuses.iter().enumerate() {
        if let Some(status) = status_from_proto(&format!("statuses[{index}]"), *value)? {
            filter.statuses.push(status);
        }
    }
    for (index, value) in request.priorities.iter().enumerate() {
        if let Some(priority) = priority_from_proto(&format!("priorities[{index}]"), *value)? {
            filter.priorities.push(priority);
        }
    }
    filter.task_types = request
        .task_types
        .iter()
        .filter(|value| !value.is_empty())
        .cloned()
        .collect();
    filter.labels = request.labels.clone().into_iter().collect();
    filter.created_after = request
        .created_after
        .as_ref()
        .map(|value| timestamp_from_proto("created_after", value))
        .transpose()?;
    filter.created_before = request
        .created_before
        .as_ref()
        .map(|value| timestamp_from_proto("created_before", value))
        .transpose()?;
    Ok(filter)
}

/// The filter of a watch request.
pub fn watch_filter(request: &proto::WatchTasksRequest) -> EngineResult<TaskFilter> {
    list_filter(&proto::ListTasksRequest {
        statuses: request.statuses.clone(),
        task_types: request.task_types.clone(),
        labels: request.labels.clone(),
        ..Default::default()
    })
}

pub fn page_size(value: i32) -> EngineResult<usize> {
    usize::try_from(value).map_err(|_| EngineError::invalid("page_size", "must not be negative"))
}

pub fn encode_page_token(before: TaskId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PAGE_TOKEN_PREFIX}{before}"))
}

pub fn decode_page_token(token: &str) -> EngineResult<Option<TaskId>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || EngineError::invalid("page_token", "not a token returned by ListTasks");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let id = text.strip_prefix(PAGE_TOKEN_PREFIX).ok_or_else(invalid)?;
    id.parse::<TaskId>().map(Some).map_err(|_| invalid())
}

// ----- outgoing -----

pub fn task_to_proto(task: &Task) -> proto::Task {
    proto::Task {
        id: task.id.to_string(),
        name: task.name.clone(),
        task_type: task.task_type.clone(),
        params: Some(json::json_to_struct(&task.params)),
        priority: priority_to_proto(task.priority) as i32,
        status: status_to_proto(task.status) as i32,
        dependencies: task
            .dependencies
            .iter()
            .map(|dependency| proto::TaskDependency {
                task_id: dependency.task_id.to_string(),
                required_status: status_to_proto(dependency.required_status) as i32,
                batch_ref: String::new(),
            })
            .collect(),
        max_retries: task.max_retries,
        retry_count: task.retry_count,
        timeout: Some(duration_to_proto(task.timeout)),
        run_at: task.run_at.map(timestamp_to_proto),
        created_at: Some(timestamp_to_proto(task.created_at)),
        started_at: task.started_at.map(timestamp_to_proto),
        completed_at: task.completed_at.map(timestamp_to_proto),
        progress: task.progress.as_ref().map(progress_to_proto),
        result: task.result.as_ref().map(json::json_to_value),
        error: task.error.clone().unwrap_or_default(),
        labels: task.labels.clone().into_iter().collect(),
        idempotency_key: task.idempotency_key.clone().unwrap_or_default(),
        attempts: task.attempts.iter().map(attempt_to_proto).collect(),
        retry_policy: Some(retry_policy_to_proto(&task.retry_policy)),
        status_reason: task.status_reason.clone(),
        updated_at: Some(timestamp_to_proto(task.updated_at)),
        revision: task.revision,
    }
}

fn progress_to_proto(progress: &Progress) -> proto::Progress {
    proto::Progress {
        percent: progress.percent,
        message: progress.message.clone(),
    }
}

fn attempt_to_proto(attempt: &Attempt) -> proto::Attempt {
    use proto::attempt::Outcome;
    let outcome = match attempt.outcome {
        AttemptOutcome::Running => None,
        AttemptOutcome::Succeeded => Some(Outcome::Succeeded),
        AttemptOutcome::Failed => Some(Outcome::Failed),
        AttemptOutcome::TimedOut => Some(Outcome::TimedOut),
        AttemptOutcome::Cancelled => Some(Outcome::Cancelled),
        AttemptOutcome::Interrupted => Some(Outcome::Interrupted),
        AttemptOutcome::LeaseExpired => Some(Outcome::LeaseExpired),
        AttemptOutcome::Released => Some(Outcome::Released),
    };
    proto::Attempt {
        number: attempt.number,
        started_at: Some(timestamp_to_proto(attempt.started_at)),
        finished_at: attempt.finished_at.map(timestamp_to_proto),
        outcome: outcome.map(|outcome| outcome as i32),
        error: attempt.error.clone().unwrap_or_default(),
        worker: attempt.worker.clone(),
        started_under: attempt.started_under.as_ref().map(machine_to_proto),
        finished_under: attempt.finished_under.as_ref().map(machine_to_proto),
    }
}

fn machine_to_proto(state: &MachineState) -> proto::MachineState {
    proto::MachineState {
        cpu_percent: state.cpu_percent,
        memory_percent: state.memory_percent,
        io_wait_percent: state.io_wait_percent,
        effective_concurrency_limit: state.effective_limit,
        throttled: state.throttled,
    }
}

fn retry_policy_to_proto(policy: &RetryPolicy) -> proto::RetryPolicy {
    proto::RetryPolicy {
        initial_backoff: Some(duration_to_proto(policy.initial_backoff)),
        multiplier: policy.multiplier,
        max_backoff: Some(duration_to_proto(policy.max_backoff)),
        jitter: policy.jitter,
    }
}

pub fn event_to_proto(event: &TaskEvent) -> proto::TaskEvent {
    use proto::task_event::Kind;
    let kind = match event.kind {
        EventKind::Snapshot => Kind::Snapshot,
        EventKind::Submitted => Kind::Submitted,
        EventKind::StatusChanged => Kind::StatusChanged,
        EventKind::Progress => Kind::Progress,
        EventKind::Lagged => Kind::Lagged,
    };
    proto::TaskEvent {
        kind: kind as i32,
        task: event.task.as_deref().map(task_to_proto),
        previous_status: event.previous_status.map(|status| status_to_proto(status) as i32),
        time: Some(timestamp_to_proto(event.time)),
        sequence: event.sequence,
        missed: event.missed,
    }
}

fn counts_to_proto(counts: &[u64; 7]) -> proto::StatusCounts {
    let at = |status: TaskStatus| counts[status.index()];
    proto::StatusCounts {
        pending: at(TaskStatus::Pending),
        scheduled: at(TaskStatus::Scheduled),
        running: at(TaskStatus::Running),
        completed: at(TaskStatus::Completed),
        failed: at(TaskStatus::Failed),
        cancelled: at(TaskStatus::Cancelled),
        waiting: at(TaskStatus::Waiting),
        total: counts.iter().sum(),
    }
}

pub fn stats_to_proto(stats: &EngineStats) -> proto::TaskStats {
    proto::TaskStats {
        counts: Some(counts_to_proto(&stats.counts)),
        by_type: stats
            .by_type
            .iter()
            .map(|by_type| proto::TaskTypeStats {
                task_type: by_type.task_type.clone(),
                counts: Some(counts_to_proto(&by_type.counts)),
                handler_available: by_type.handler_available,
                concurrency_limit: by_type.concurrency_limit as u32,
                workers: by_type.workers as u32,
            })
            .collect(),
        max_concurrent_tasks: stats.max_concurrent_tasks as u32,
        effective_concurrency_limit: stats.effective_concurrency_limit as u32,
        concurrency_limit_reason: stats.concurrency_limit_reason.clone(),
        unserved_task_types: stats.unserved_task_types.clone(),
        submitted_since_start: stats.submitted_since_start,
        failed_attempts_since_start: stats.failed_attempts_since_start,
        retries_since_start: stats.retries_since_start,
        success_rate: stats.success_rate,
        uptime: Some(duration_to_proto(stats.uptime)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let id = TaskId::new();
        assert_eq!(decode_page_token(&encode_page_token(id)).unwrap(), Some(id));
        assert_eq!(decode_page_token("").unwrap(), None);
        let error = decode_page_token("not-a-token").unwrap_err().to_string();
        assert!(error.starts_with("page_token:"), "{error}");
    }

    #[test]
    fn unknown_enum_values_name_their_field() {
        let error = status_from_proto("statuses[0]", 42).unwrap_err().to_string();
        assert!(error.starts_with("statuses[0]:"), "{error}");
        let error = priority_from_proto("priority", -1).unwrap_err().to_string();
        assert!(error.starts_with("priority:"), "{error}");
    }

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        let now = Timestamp::now();
        assert_eq!(timestamp_from_proto("t", &timestamp_to_proto(now)).unwrap(), now);
        let before_epoch = Timestamp(-1_500_000);
        assert_eq!(
            timestamp_from_proto("t", &timestamp_to_proto(before_epoch)).unwrap(),
            before_epoch
        );
    }

    #[test]
    fn a_dependency_needs_exactly_one_target() {
        let request = proto::SubmitTaskRequest {
            task_type: "diag.echo".into(),
            dependencies: vec![proto::TaskDependency::default()],
            ..Default::default()
        };
        let error = new_task(request, "").unwrap_err().to_string();
        assert!(error.starts_with("dependencies[0].task_id:"), "{error}");
    }
}
