//! What a transition makes of a task, the same in every backend: the task a
//! draft becomes, a claimed task under its new lease, and what an ended
//! dependency does to a waiting dependent. Backends only write it down.

use std::collections::HashMap;

use crate::model::rules::attempts::{lease_deadline, running_reason};
use crate::model::rules::dependencies::{DependencyState, dependency_state};
use crate::model::rules::placement::{DependencyAtPlacement, Placement, place_new, place_ready, waiting_reason};
use crate::model::{
    Attempt, AttemptOutcome, Lease, LeaseToken, SchedulingWeights, Task, TaskDependency, TaskId, TaskStatus, Timestamp,
};
use crate::store::{ClaimRequest, ClaimedTask, DraftTarget, StoreError, StoreResult, TaskDraft, Transition};

/// A draft placed: the task to insert, its dependency edges and how many
/// of them are unmet.
pub struct NewTask {
    pub task: Task,
    pub dependencies: Vec<DependencyAtPlacement>,
    pub placement: Placement,
    pub unmet: usize,
}

impl NewTask {
    pub fn transition(&self) -> Transition {
        Transition {
            task_id: self.task.id,
            task_type: self.task.task_type.clone(),
            priority: self.task.priority,
            from: None,
            to: self.task.status,
            due: self.placement.due(),
            waited: None,
            closed_attempt: None,
        }
    }
}

/// Places `draft` against the statuses of its dependencies (`ids` are the
/// tasks of the batch's earlier drafts).
pub fn new_task(draft: TaskDraft, ids: &[TaskId], statuses: &HashMap<TaskId, TaskStatus>, now: Timestamp) -> NewTask {
    let mut dependencies: Vec<DependencyAtPlacement> = Vec::with_capacity(draft.dependencies.len());
    for dependency in &draft.dependencies {
        let task_id = match dependency.target {
            DraftTarget::Task(id) => id,
            DraftTarget::Draft(index) => ids[index],
        };
        // Two targets may name one task (a batch member standing for an
        // existing task): it counts once.
        if dependencies.iter().any(|seen| seen.task_id == task_id) {
            continue;
        }
        dependencies.push(DependencyAtPlacement {
            task_id,
            status: statuses[&task_id],
            required_status: dependency.required_status,
        });
    }
    let placement = place_new(&dependencies, draft.run_at, now);
    let status = placement.status();
    let cancelled = status == TaskStatus::Cancelled;
    let unmet = match &placement {
        Placement::Waiting { unmet, .. } => *unmet,
        _ => 0,
    };
    let task = Task {
        id: draft.id,
        name: draft.name,
        task_type: draft.task_type,
        params: draft.params,
        priority: draft.priority,
        status,
        dependencies: dependencies
            .iter()
            .map(|dependency| TaskDependency {
                task_id: dependency.task_id,
                required_status: dependency.required_status,
            })
            .collect(),
        max_retries: draft.max_retries,
        retry_count: 0,
        timeout: draft.timeout,
        run_at: draft.run_at,
        created_at: now,
        started_at: None,
        completed_at: cancelled.then_some(now),
        progress: None,
        result: None,
        error: cancelled.then(|| placement.reason()),
        labels: draft.labels,
        idempotency_key: draft.idempotency_key,
        attempts: Vec::new(),
        retry_policy: draft.retry_policy,
        status_reason: placement.reason(),
        updated_at: now,
        revision: 1,
    };
    NewTask {
        task,
        dependencies,
        placement,
        unmet,
    }
}

/// A ready task claimed: the task as the lease leaves it, the attempt
/// record to append and the transition.
pub struct Leased {
    pub claimed: ClaimedTask,
    pub record: Attempt,
    pub transition: Transition,
}

/// Leases `task` (PENDING, `attempt_count` attempts so far, ready under
/// `queue_key`) to the claiming executor.
pub fn lease(
    mut task: Task,
    request: &ClaimRequest,
    attempt_count: i64,
    queue_key: i64,
    weights: &SchedulingWeights,
) -> Leased {
    let now = request.now;
    let attempt = u32::try_from(attempt_count).unwrap_or(0) + 1;
    let token = LeaseToken::from_random(rand::random());
    let deadline = lease_deadline(now, request.lease_duration, now, task.timeout);
    let record = Attempt {
        number: attempt,
        started_at: now,
        finished_at: None,
        outcome: AttemptOutcome::Running,
        error: None,
        worker: request.executor.to_string(),
        started_under: request.machine,
        finished_under: None,
    };
    task.status = TaskStatus::Running;
    task.started_at = Some(now);
    task.progress = None;
    task.status_reason = running_reason(attempt);
    task.attempts.push(record.clone());
    task.updated_at = now;
    task.revision += 1;
    // The key is the ready time moved earlier by the priority's boost.
    let ready_since = Timestamp(queue_key).saturating_add(weights.boost(task.priority));
    let transition = Transition {
        task_id: task.id,
        task_type: task.task_type.clone(),
        priority: task.priority,
        from: Some(TaskStatus::Pending),
        to: TaskStatus::Running,
        due: None,
        waited: Some(now.duration_since(ready_since)),
        closed_attempt: None,
    };
    Leased {
        claimed: ClaimedTask {
            lease: Lease {
                task_id: task.id,
                attempt,
                token,
                executor: request.executor.clone(),
                deadline,
            },
            task,
        },
        record,
        transition,
    }
}

/// What an ended dependency does to a WAITING dependent.
pub enum DependentMove {
    /// One more dependency met, others remain: the new unmet count and
    /// reason.
    OneLess { unmet: i64, reason: String },
    /// Placed (ready, scheduled, or cancelled when the dependency can no
    /// longer be met).
    Place(Placement),
}

/// The move of a WAITING dependent (`unmet` of its `total` dependencies
/// unmet, due at `run_at`, requiring `required` of `ended`) now that
/// `ended` reached `status`; `None` while it still waits on it.
pub fn dependent_move(
    (ended, status): (TaskId, TaskStatus),
    required: TaskStatus,
    (unmet, total): (i64, i64),
    run_at: Option<Timestamp>,
    now: Timestamp,
) -> Option<DependentMove> {
    match dependency_state(ended, status, required) {
        DependencyState::Unmet => None,
        DependencyState::Met if unmet > 1 => {
            let unmet = unmet - 1;
            let reason = waiting_reason(usize::try_from(unmet).unwrap_or(0), usize::try_from(total).unwrap_or(0));
            Some(DependentMove::OneLess { unmet, reason })
        }
        DependencyState::Met => Some(DependentMove::Place(place_ready(run_at, now))),
        DependencyState::Broken { reason } => Some(DependentMove::Place(Placement::Cancelled { reason })),
    }
}

/// Refuses a declaration of `new` types when `declared` are already and
/// the bound is `max_declared`.
pub fn check_declared_bound(declared: usize, new: usize, max_declared: usize) -> StoreResult<()> {
    if new > 0 && declared + new > max_declared {
        return Err(StoreError::LimitReached(format!(
            "task_types: {new} new task type(s) would make {} declared, over engine.limits.max_declared_task_types \
             ({max_declared}); an admin may remove unused ones (DeleteTaskType)",
            declared + new
        )));
    }
    Ok(())
}
