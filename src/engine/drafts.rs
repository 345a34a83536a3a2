//! Turns what clients submit into the drafts the store places: server
//! defaults filled in, batch references resolved into an order where every
//! member comes after the members it depends on, cycles refused, and the
//! store's refusals named by the client's own field names.

use std::collections::HashMap;

use crate::engine::catalog::TaskTypeCatalog;
use crate::engine::config::EngineConfig;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::validate::validate_new_task;
use crate::model::{DependencyTarget, NewTask, TaskId, Timestamp};
use crate::store::{DraftDependency, DraftTarget, StoreError, SubmitBatch, TaskDraft};

/// How a submit's fields are named to its client: `""` for a single
/// submit, `"tasks"` for a batch (`tasks[2].params`).
#[derive(Clone, Copy)]
pub struct FieldNames {
    list_field: &'static str,
}

impl FieldNames {
    /// Names a field of the member at request position `position`.
    pub fn field(&self, position: usize, name: &str) -> String {
        field_name(self.list_field, position, name)
    }

    /// The store's refusal of this submit, in the client's terms.
    pub fn refusal(&self, error: StoreError) -> EngineError {
        match error {
            StoreError::UnknownDependency {
                position,
                dependency,
                task_id,
            } => EngineError::invalid(
                self.field(position, &format!("dependencies[{dependency}].task_id")),
                format!("task {task_id} does not exist"),
            ),
            StoreError::IdempotencyConflict { position, key } => EngineError::IdempotencyConflict {
                field: self.field(position, "idempotency_key"),
                key,
            },
            other => EngineError::from(other),
        }
    }
}

fn field_name(list_field: &str, position: usize, name: &str) -> String {
    if list_field.is_empty() {
        name.to_string()
    } else {
        format!("{list_field}[{position}].{name}")
    }
}

fn prefix(list_field: &str, position: usize) -> String {
    field_name(list_field, position, "")
}

/// Validates `requests` and drafts them in dependency order. `list_field`
/// is `""` for SubmitTask and `"tasks"` for SubmitTasks.
pub fn draft(
    requests: Vec<NewTask>,
    config: &EngineConfig,
    catalog: &TaskTypeCatalog,
    list_field: &'static str,
    now: Timestamp,
) -> EngineResult<(SubmitBatch, FieldNames)> {
    for (position, request) in requests.iter().enumerate() {
        validate_new_task(request, &config.limits, now, &prefix(list_field, position))?;
        if !catalog.knows(&request.task_type) {
            return Err(EngineError::invalid(
                field_name(list_field, position, "task_type"),
                catalog.refusal(&request.task_type),
            ));
        }
        if let Some((name, accepted)) = catalog.unknown_param(&request.task_type, request.params.keys()) {
            return Err(EngineError::invalid(
                field_name(list_field, position, &format!("params.{name}")),
                format!("not a param of {}; it takes {}", request.task_type, accepted.join(", ")),
            ));
        }
        if list_field.is_empty() && request.batch_ref.is_some() {
            return Err(EngineError::invalid("batch_ref", "only allowed in SubmitTasks"));
        }
    }
    let mut keys: HashMap<&str, usize> = HashMap::new();
    for (position, request) in requests.iter().enumerate() {
        if let Some(key) = request.idempotency_key.as_deref()
            && let Some(first) = keys.insert(key, position)
        {
            return Err(EngineError::invalid(
                field_name(list_field, position, "idempotency_key"),
                format!("repeats the key of {}", prefix(list_field, first).trim_end_matches('.')),
            ));
        }
    }
    let order = order_batch(&requests, list_field)?;
    let mut draft_index = vec![0; requests.len()];
    for (index, position) in order.iter().enumerate() {
        draft_index[*position] = index;
    }
    let refs: HashMap<String, usize> = requests
        .iter()
        .enumerate()
        .filter_map(|(position, request)| request.batch_ref.clone().map(|reference| (reference, position)))
        .collect();

    let mut slots: Vec<Option<NewTask>> = requests.into_iter().map(Some).collect();
    let mut drafts = Vec::with_capacity(slots.len());
    for position in order {
        let Some(request) = slots[position].take() else {
            continue;
        };
        let fingerprint = request.idempotency_key.as_ref().map(|_| request.fingerprint());
        let dependencies = request
            .dependencies
            .iter()
            .map(|dependency| DraftDependency {
                target: match &dependency.target {
                    DependencyTarget::Task(id) => DraftTarget::Task(*id),
                    DependencyTarget::BatchRef(reference) => DraftTarget::Draft(draft_index[refs[reference]]),
                },
                required_status: dependency.required_status,
            })
            .collect();
        let name = if request.name.is_empty() {
            request.task_type.clone()
        } else {
            request.name
        };
        drafts.push(TaskDraft {
            position,
            id: TaskId::new(),
            name,
            task_type: request.task_type,
            params: request.params,
            priority: request.priority,
            dependencies,
            max_retries: request.max_retries.unwrap_or(config.default_max_retries),
            timeout: request.timeout.unwrap_or(config.default_timeout),
            run_at: request.run_at,
            labels: request.labels,
            idempotency_key: request.idempotency_key,
            fingerprint,
            retry_policy: request
                .retry_policy
                .unwrap_or_default()
                .or_defaults(config.default_retry_policy.into()),
        });
    }
    Ok((SubmitBatch { drafts, now }, FieldNames { list_field }))
}

/// Checks batch references and returns an order in which every member comes
/// after the members it depends on; refuses duplicates, unknown references
/// and cycles.
fn order_batch(requests: &[NewTask], list_field: &str) -> EngineResult<Vec<usize>> {
    let uses_refs = requests.iter().any(|request| {
        request.batch_ref.is_some()
            || request
                .dependencies
                .iter()
                .any(|dependency| matches!(dependency.target, DependencyTarget::BatchRef(_)))
    });
    if !uses_refs {
        return Ok((0..requests.len()).collect());
    }
    let mut refs: HashMap<&str, usize> = HashMap::new();
    for (index, request) in requests.iter().enumerate() {
        if let Some(reference) = request.batch_ref.as_deref() {
            if reference.is_empty() {
                continue;
            }
            if let Some(first) = refs.insert(reference, index) {
                return Err(EngineError::invalid(
                    field_name(list_field, index, "batch_ref"),
                    format!(
                        "{reference:?} is already used by {}",
                        prefix(list_field, first).trim_end_matches('.')
                    ),
                ));
            }
        }
    }
    let count = requests.len();
    let mut blocking: Vec<usize> = vec![0; count];
    let mut unblocks: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (index, request) in requests.iter().enumerate() {
        for (dependency_index, dependency) in request.dependencies.iter().enumerate() {
            if let DependencyTarget::BatchRef(reference) = &dependency.target {
                let field = field_name(
                    list_field,
                    index,
                    &format!("dependencies[{dependency_index}].batch_ref"),
                );
                let Some(&member) = refs.get(reference.as_str()) else {
                    return Err(EngineError::invalid(
                        field,
                        format!("no task in this batch has batch_ref {reference:?}"),
                    ));
                };
                if member == index {
                    return Err(EngineError::invalid(field, "a task cannot depend on itself"));
                }
                blocking[index] += 1;
                unblocks[member].push(index);
            }
        }
    }
    let mut order: Vec<usize> = (0..count).filter(|index| blocking[*index] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let member = order[next];
        next += 1;
        for &dependent in &unblocks[member] {
            blocking[dependent] -= 1;
            if blocking[dependent] == 0 {
                order.push(dependent);
            }
        }
    }
    if order.len() < count {
        let in_cycle: Vec<String> = (0..count)
            .filter(|index| blocking[*index] > 0)
            .map(|index| requests[index].batch_ref.clone().unwrap_or_else(|| format!("#{index}")))
            .collect();
        let first = (0..count).find(|index| blocking[*index] > 0).unwrap_or(0);
        return Err(EngineError::invalid(
            field_name(list_field, first, "dependencies"),
            format!("dependencies form a cycle among batch members {}", in_cycle.join(", ")),
        ));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewDependency, TaskStatus};

    fn known() -> TaskTypeCatalog {
        let catalog = TaskTypeCatalog::default();
        catalog.fix(
            ["diag.echo".to_string(), "a".to_string()],
            crate::engine::catalog::FixedBy::Handler,
        );
        catalog
    }

    #[test]
    fn an_unknown_type_is_refused_naming_the_members_field() {
        let requests = vec![NewTask::new("diag.echo"), NewTask::new("diag.ecko")];
        let error = draft(requests, &EngineConfig::default(), &known(), "tasks", Timestamp::now())
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with("tasks[1].task_type: unknown task type \"diag.ecko\" (did you mean \"diag.echo\"?)"),
            "{error}"
        );
    }

    fn member(reference: &str, after: &[&str]) -> NewTask {
        NewTask {
            batch_ref: Some(reference.to_string()),
            dependencies: after
                .iter()
                .map(|reference| NewDependency {
                    target: DependencyTarget::BatchRef(reference.to_string()),
                    required_status: TaskStatus::Completed,
                })
                .collect(),
            ..NewTask::new("diag.echo")
        }
    }

    #[test]
    fn members_are_drafted_after_what_they_depend_on() {
        let requests = vec![
            member("d", &["b", "c"]),
            member("b", &["a"]),
            member("c", &["a"]),
            member("a", &[]),
        ];
        let (batch, _) = draft(requests, &EngineConfig::default(), &known(), "tasks", Timestamp::now()).expect("valid");
        let positions: Vec<usize> = batch.drafts.iter().map(|draft| draft.position).collect();
        assert_eq!(positions, vec![3, 1, 2, 0]);
        assert_eq!(
            batch.drafts[3].dependencies[0].target,
            DraftTarget::Draft(1),
            "d's first dependency, b, is the second draft"
        );
    }

    #[test]
    fn a_cycle_is_refused_naming_its_members() {
        let requests = vec![member("a", &["b"]), member("b", &["a"])];
        let error = draft(requests, &EngineConfig::default(), &known(), "tasks", Timestamp::now())
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            error.as_deref(),
            Some("tasks[0].dependencies: dependencies form a cycle among batch members a, b")
        );
    }

    #[test]
    fn a_key_repeated_within_a_batch_is_refused() {
        let mut first = NewTask::new("diag.echo");
        first.idempotency_key = Some("k".into());
        let second = first.clone();
        let error = draft(
            vec![first, second],
            &EngineConfig::default(),
            &known(),
            "tasks",
            Timestamp::now(),
        )
        .err()
        .map(|error| error.to_string());
        assert_eq!(
            error.as_deref(),
            Some("tasks[1].idempotency_key: repeats the key of tasks[0]")
        );
    }

    #[test]
    fn store_refusals_name_the_clients_field() {
        let (_, names) = draft(
            vec![NewTask::new("a")],
            &EngineConfig::default(),
            &known(),
            "",
            Timestamp::now(),
        )
        .expect("valid");
        let error = names.refusal(StoreError::IdempotencyConflict {
            position: 0,
            key: "k".into(),
        });
        assert_eq!(error.field(), Some("idempotency_key"));
    }
}
