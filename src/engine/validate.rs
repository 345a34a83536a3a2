//! Checks a submitted task against the limits before anything is written.
//! Every error names the field as the client spelled it.

use std::collections::HashSet;
use std::time::Duration;

use crate::engine::config::Limits;
use crate::engine::error::{EngineError, EngineResult};
use crate::model::{DependencyTarget, NewTask, Timestamp};

const MAX_TASK_TYPE_CHARS: usize = 64;
const MAX_LABEL_KEY_CHARS: usize = 63;
const MAX_LABEL_VALUE_CHARS: usize = 256;
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 256;
const MAX_BATCH_REF_CHARS: usize = 128;

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
        if timeout.is_zero() {
            return Err(EngineError::invalid(field("timeout"), "must be positive"));
        }
        if timeout > limits.max_timeout {
            return Err(EngineError::invalid(
                field("timeout"),
                format!("longer than the limit of {}s", limits.max_timeout.as_secs()),
            ));
        }
    }

    if let Some(run_at) = task.run_at
        && run_at > now.saturating_add(limits.max_schedule_ahead)
    {
        return Err(EngineError::invalid(
            field("run_at"),
            format!("more than {} days ahead", limits.max_schedule_ahead.as_secs() / 86_400),
        ));
    }

    if task.labels.len() > limits.max_labels {
        return Err(EngineError::invalid(
            field("labels"),
            format!(
                "{} labels, more than the limit of {}",
                task.labels.len(),
                limits.max_labels
            ),
        ));
    }
    for (key, value) in &task.labels {
        if key.is_empty() || key.chars().count() > MAX_LABEL_KEY_CHARS {
            return Err(EngineError::invalid(
                field("labels"),
                format!("key {key:?} must have 1 to {MAX_LABEL_KEY_CHARS} characters"),
            ));
        }
        if value.chars().count() > MAX_LABEL_VALUE_CHARS {
            return Err(EngineError::invalid(
                field(&format!("labels[{key}]")),
                format!("longer than {MAX_LABEL_VALUE_CHARS} characters"),
            ));
        }
    }

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

/// Bytes of compact JSON, counted without building the text.
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
