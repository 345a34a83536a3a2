//! Checks a submitted task against the limits before anything is written.
//! Every error names the field as the client spelled it.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::engine::config::Limits;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::worker_registry::WorkerHello;
use crate::model::rules::attempts::AttemptEnd;
use crate::model::{DependencyTarget, ExecutorId, NewTask, Progress, Timestamp};

const MAX_TASK_TYPE_CHARS: usize = 64;
const MAX_LABEL_KEY_CHARS: usize = 63;
const MAX_LABEL_VALUE_CHARS: usize = 256;
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 256;
const MAX_BATCH_REF_CHARS: usize = 128;
const MAX_WORKER_ID_CHARS: usize = 128;
const MAX_ERROR_CHARS: usize = 16 * 1024;
const MAX_PROGRESS_MESSAGE_CHARS: usize = 1024;

/// Validates one task. `prefix` is prepended to field names, e.g. `tasks[3].`.
pub fn validate_new_task(task: &NewTask, limits: &Limits, now: Timestamp, prefix: &str) -> EngineResult<()> {
    let field = |name: &str| format!("{prefix}{name}");

    validate_task_type(&task.task_type).map_err(|message| EngineError::invalid(field("task_type"), message))?;

    if task.name.chars().count() > limits.max_name_chars {
        return Err(EngineError::invalid(
            field("name"),
            format!("longer than {} characters", limits.max_name_chars),
        ));
    }

    let params_depth = json_depth_of_map(&task.params);
    if params_depth > limits.max_json_depth {
        return Err(EngineError::invalid(
            field("params"),
            format!(
                "nested {params_depth} levels deep, more than the limit of {}",
                limits.max_json_depth
            ),
        ));
    }

    let params_bytes = json_size(&task.params);
    if params_bytes > limits.max_params_bytes {
        return Err(EngineError::invalid(
            field("params"),
            format!(
                "{params_bytes} bytes of JSON, more than the limit of {}",
                limits.max_params_bytes
            ),
        ));
    }

    if task.dependencies.len() > limits.max_dependencies {
        return Err(EngineError::invalid(
            field("dependencies"),
            format!(
                "{} dependencies, more than the limit of {}",
                task.dependencies.len(),
                limits.max_dependencies
            ),
        ));
    }
    let mut seen_targets = HashSet::new();
    for (index, dependency) in task.dependencies.iter().enumerate() {
        if !dependency.required_status.is_terminal() {
            return Err(EngineError::invalid(
                field(&format!("dependencies[{index}].required_status")),
                format!(
                    "{} is not a final status; use COMPLETED, FAILED or CANCELLED",
                    dependency.required_status
                ),
            ));
        }
        if let DependencyTarget::BatchRef(reference) = &dependency.target
            && reference.is_empty()
        {
            return Err(EngineError::invalid(
                field(&format!("dependencies[{index}].task_id")),
                "must not be empty",
            ));
        }
        if !seen_targets.insert(&dependency.target) {
            return Err(EngineError::invalid(
                field(&format!("dependencies[{index}]")),
                "names the same task as an earlier dependency",
            ));
        }
    }

    if let Some(max_retries) = task.max_retries
        && max_retries > limits.max_retries
    {
        return Err(EngineError::invalid(
            field("max_retries"),
            format!("{max_retries} is more than the limit of {}", limits.max_retries),
        ));
    }

    if let Some(timeout) = task.timeout {
        // Timeouts are kept in whole milliseconds: anything shorter would be
        // stored as zero, a timeout no attempt could meet.
        if timeout < Duration::from_millis(1) {
            return Err(EngineError::invalid(field("timeout"), "must be at least 1ms"));
        }
        if timeout > limits.max_timeout {
            return Err(EngineError::invalid(
                field("timeout"),
                format!("longer than the limit of {}s", limits.max_timeout.as_secs()),
            ));
        }
    }

    if let Some(run_at) = task.run_at
        && run_at.0 < 0
    {
        return Err(EngineError::invalid(field("run_at"), "before 1970-01-01T00:00:00Z"));
    }
    if let Some(run_at) = task.run_at
        && run_at > now.saturating_add(limits.max_schedule_ahead)
    {
        return Err(EngineError::invalid(
            field("run_at"),
            format!("more than {} days ahead", limits.max_schedule_ahead.as_secs() / 86_400),
        ));
    }

    validate_labels(&task.labels, limits, &field("labels"))?;

    if let Some(key) = &task.idempotency_key
        && key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS
    {
        return Err(EngineError::invalid(
            field("idempotency_key"),
            format!("longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
        ));
    }

    if let Some(reference) = &task.batch_ref
        && reference.chars().count() > MAX_BATCH_REF_CHARS
    {
        return Err(EngineError::invalid(
            field("batch_ref"),
            format!("longer than {MAX_BATCH_REF_CHARS} characters"),
        ));
    }

    if let Some(policy) = &task.retry_policy {
        if let Some(multiplier) = policy.multiplier
            && (!multiplier.is_finite() || !(1.0..=100.0).contains(&multiplier))
        {
            return Err(EngineError::invalid(
                field("retry_policy.multiplier"),
                "must be between 1 and 100",
            ));
        }
        if let Some(jitter) = policy.jitter
            && (!jitter.is_finite() || !(0.0..=1.0).contains(&jitter))
        {
            return Err(EngineError::invalid(
                field("retry_policy.jitter"),
                "must be between 0 and 1",
            ));
        }
        let ceiling = limits.max_timeout.max(Duration::from_secs(86_400));
        for (name, value) in [
            ("initial_backoff", policy.initial_backoff),
            ("max_backoff", policy.max_backoff),
        ] {
            if let Some(value) = value
                && value > ceiling
            {
                return Err(EngineError::invalid(
                    field(&format!("retry_policy.{name}")),
                    format!("longer than the limit of {}s", ceiling.as_secs()),
                ));
            }
        }
    }

    Ok(())
}

/// Labels: how many, and how long their keys and values are. `field` names
/// the labels field.
pub fn validate_labels(labels: &BTreeMap<String, String>, limits: &Limits, field: &str) -> EngineResult<()> {
    if labels.len() > limits.max_labels {
        return Err(EngineError::invalid(
            field,
            format!("{} labels, more than the limit of {}", labels.len(), limits.max_labels),
        ));
    }
    for (key, value) in labels {
        if key.is_empty() || key.chars().count() > MAX_LABEL_KEY_CHARS {
            return Err(EngineError::invalid(
                field,
                format!("key {key:?} must have 1 to {MAX_LABEL_KEY_CHARS} characters"),
            ));
        }
        if value.chars().count() > MAX_LABEL_VALUE_CHARS {
            return Err(EngineError::invalid(
                format!("{field}[{key}]"),
                format!("longer than {MAX_LABEL_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// A worker's introduction: the id it chose (or a fresh one), and its task
/// types, each once, in order. `prefix` is prepended to field names.
pub fn validate_worker_hello(
    hello: &WorkerHello,
    limits: &Limits,
    prefix: &str,
) -> EngineResult<(ExecutorId, Vec<String>)> {
    let field = |name: &str| format!("{prefix}{name}");
    let id = match hello.worker_id.as_deref() {
        None | Some("") => ExecutorId::new(format!("worker-{:012x}", rand::random::<u64>() >> 16)),
        Some(id) => {
            validate_worker_id(id).map_err(|message| EngineError::invalid(field("worker_id"), message))?;
            ExecutorId::new(id)
        }
    };
    if hello.task_types.is_empty() {
        return Err(EngineError::invalid(
            field("task_types"),
            "must name at least one task type the worker runs",
        ));
    }
    if hello.task_types.len() > limits.max_worker_task_types {
        return Err(EngineError::invalid(
            field("task_types"),
            format!(
                "{} task types, more than the limit of {}",
                hello.task_types.len(),
                limits.max_worker_task_types
            ),
        ));
    }
    let mut task_types: Vec<String> = Vec::with_capacity(hello.task_types.len());
    for (index, task_type) in hello.task_types.iter().enumerate() {
        validate_task_type(task_type)
            .map_err(|message| EngineError::invalid(field(&format!("task_types[{index}]")), message))?;
        if !task_types.contains(task_type) {
            task_types.push(task_type.clone());
        }
    }
    if hello.capacity == 0 || hello.capacity > limits.max_worker_capacity {
        return Err(EngineError::invalid(
            field("capacity"),
            format!("must be between 1 and {}", limits.max_worker_capacity),
        ));
    }
    validate_labels(&hello.labels, limits, &field("labels"))?;
    if hello.instance.chars().count() > MAX_WORKER_ID_CHARS {
        return Err(EngineError::invalid(
            field("instance"),
            format!("longer than {MAX_WORKER_ID_CHARS} characters"),
        ));
    }
    Ok((id, task_types))
}

/// A worker id: what operators read in lists and attempt histories.
fn validate_worker_id(id: &str) -> Result<(), String> {
    if id.chars().count() > MAX_WORKER_ID_CHARS {
        return Err(format!("longer than {MAX_WORKER_ID_CHARS} characters"));
    }
    if id == ExecutorId::LOCAL {
        return Err(format!("{id:?} is the name of taskd's own executor; choose another"));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '@')))
    {
        return Err(format!(
            "{id:?} contains {bad:?}; use letters, digits, '_', '.', '-', ':' and '@'"
        ));
    }
    Ok(())
}

/// What a worker reports when an attempt ends: a result within the size
/// limit, or an error message of bounded length. `prefix` is prepended to
/// field names.
pub fn validate_attempt_end(end: &AttemptEnd, limits: &Limits, prefix: &str) -> EngineResult<()> {
    match end {
        AttemptEnd::Succeeded(result) => {
            let depth = json_depth(result);
            if depth > limits.max_json_depth {
                return Err(EngineError::invalid(
                    format!("{prefix}result"),
                    format!(
                        "nested {depth} levels deep, more than the limit of {}",
                        limits.max_json_depth
                    ),
                ));
            }
            let bytes = json_size(result);
            if bytes > limits.max_result_bytes {
                return Err(EngineError::invalid(
                    format!("{prefix}result"),
                    format!(
                        "{bytes} bytes of JSON, more than the limit of {}",
                        limits.max_result_bytes
                    ),
                ));
            }
        }
        AttemptEnd::Failed { error, .. } => {
            if error.chars().count() > MAX_ERROR_CHARS {
                return Err(EngineError::invalid(
                    format!("{prefix}error.message"),
                    format!("longer than {MAX_ERROR_CHARS} characters"),
                ));
            }
        }
        AttemptEnd::Released { why } | AttemptEnd::Interrupted { why } => {
            if why.chars().count() > MAX_ERROR_CHARS {
                return Err(EngineError::invalid(
                    format!("{prefix}reason"),
                    format!("longer than {MAX_ERROR_CHARS} characters"),
                ));
            }
        }
        AttemptEnd::TimedOut | AttemptEnd::LeaseExpired => {}
    }
    Ok(())
}

/// Progress a worker reports: a message of bounded length.
pub fn validate_progress(progress: &Progress, prefix: &str) -> EngineResult<()> {
    if !progress.percent.is_finite() {
        return Err(EngineError::invalid(format!("{prefix}percent"), "must be a number"));
    }
    if progress.message.chars().count() > MAX_PROGRESS_MESSAGE_CHARS {
        return Err(EngineError::invalid(
            format!("{prefix}message"),
            format!("longer than {MAX_PROGRESS_MESSAGE_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Bytes of compact JSON, counted without building the text.
/// How deeply objects and arrays nest in `value` (a scalar is 0, `{}` 1).
/// Iterative: the value may be nested deeper than the stack would allow.
pub fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        match value {
            serde_json::Value::Array(items) => {
                deepest = deepest.max(depth + 1);
                pending.extend(items.iter().map(|item| (item, depth + 1)));
            }
            serde_json::Value::Object(fields) => {
                deepest = deepest.max(depth + 1);
                pending.extend(fields.values().map(|item| (item, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

fn json_depth_of_map(params: &serde_json::Map<String, serde_json::Value>) -> usize {
    1 + params.values().map(json_depth).max().unwrap_or(0)
}

/// Checks a cancel reason.
pub fn validate_reason(reason: &str, limits: &Limits) -> EngineResult<()> {
    if reason.chars().count() > limits.max_reason_chars {
        return Err(EngineError::invalid(
            "reason",
            format!("longer than {} characters", limits.max_reason_chars),
        ));
    }
    Ok(())
}

fn json_size(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// A task type is a short lower-case identifier, so it can be a metric label,
/// a file name part and a filter value without escaping.
pub fn validate_task_type(task_type: &str) -> Result<(), String> {
    if task_type.is_empty() {
        return Err("must not be empty".to_string());
    }
    if task_type.len() > MAX_TASK_TYPE_CHARS {
        return Err(format!("longer than {MAX_TASK_TYPE_CHARS} characters"));
    }
    if let Some(bad) = task_type
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{task_type:?} contains {bad:?}; use lower-case letters, digits, '_', '.' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewDependency, TaskId, TaskStatus};

    fn check(task: &NewTask) -> Result<(), String> {
        validate_new_task(task, &Limits::default(), Timestamp::now(), "").map_err(|error| error.to_string())
    }

    #[test]
    fn params_nested_deeper_than_the_limit_are_refused_naming_params() {
        let mut deep = serde_json::json!(1);
        for _ in 0..20 {
            deep = serde_json::json!({ "a": deep });
        }
        let mut task = NewTask::new("diag.echo");
        task.params = serde_json::Map::from_iter([("outer".to_string(), deep)]);
        let refused = check(&task).unwrap_err();
        assert!(refused.starts_with("params: nested 21 levels deep"), "{refused}");
        task.params = serde_json::Map::from_iter([("outer".to_string(), serde_json::json!([[1]]))]);
        assert!(check(&task).is_ok());
    }

    #[test]
    fn the_depth_of_json_counts_objects_and_arrays() {
        assert_eq!(json_depth(&serde_json::json!(3)), 0);
        assert_eq!(json_depth(&serde_json::json!({})), 1);
        assert_eq!(json_depth(&serde_json::json!({"a": [1, {"b": []}]})), 4);
    }

    #[test]
    fn a_timeout_shorter_than_a_millisecond_and_a_run_at_before_1970_are_refused() {
        let mut task = NewTask::new("diag.echo");
        task.timeout = Some(Duration::from_nanos(500));
        assert_eq!(check(&task).unwrap_err(), "timeout: must be at least 1ms");
        task.timeout = Some(Duration::from_millis(1));
        assert!(check(&task).is_ok());
        task.run_at = Some(Timestamp(-62_135_596_800_000_000));
        assert_eq!(check(&task).unwrap_err(), "run_at: before 1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_plain_task_is_valid() {
        assert_eq!(check(&NewTask::new("report_generation")), Ok(()));
    }

    #[test]
    fn an_empty_task_type_is_rejected_by_name() {
        let error = check(&NewTask::new("")).unwrap_err();
        assert!(error.starts_with("task_type:"), "{error}");
    }

    #[test]
    fn upper_case_task_types_are_rejected() {
        let error = check(&NewTask::new("Report")).unwrap_err();
        assert!(error.contains("task_type") && error.contains("'R'"), "{error}");
    }

    #[test]
    fn oversized_params_are_rejected() {
        let mut task = NewTask::new("diag.echo");
        task.params.insert("blob".into(), "x".repeat(70_000).into());
        let error = check(&task).unwrap_err();
        assert!(error.starts_with("params:"), "{error}");
    }

    #[test]
    fn a_dependency_on_a_non_final_status_is_rejected() {
        let mut task = NewTask::new("diag.echo");
        task.dependencies.push(NewDependency {
            target: DependencyTarget::Task(TaskId::new()),
            required_status: TaskStatus::Running,
        });
        let error = check(&task).unwrap_err();
        assert!(error.starts_with("dependencies[0].required_status:"), "{error}");
    }

    #[test]
    fn too_many_dependencies_are_rejected() {
        let mut task = NewTask::new("diag.echo");
        for _ in 0..101 {
            task.dependencies.push(NewDependency {
                target: DependencyTarget::Task(TaskId::new()),
                required_status: TaskStatus::Completed,
            });
        }
        let error = check(&task).unwrap_err();
        assert!(error.starts_with("dependencies:"), "{error}");
    }
}
