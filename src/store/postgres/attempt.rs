//! Ending attempts, the one path for an executor's report and for a lease
//! taken back: checks the lease, applies the verdict of the rules, and
//! resolves dependents in the same transaction. The task's row is locked
//! first (`FOR UPDATE`), so a cancel or a rescue on another node waits for
//! this end, or this end sees theirs.

use std::collections::{HashMap, VecDeque};

use deadpool_postgres::Transaction;

use crate::model::rules::attempts::{AttemptEnd, AttemptFacts, completed_progress, end_attempt};
use crate::model::rules::placement::Placement;
use crate::model::{EventKind, LeaseToken, MachineState, TaskId, TaskStatus, Timestamp};
use crate::store::columns::{duration, parse_priority, parse_status, to_json};
use crate::store::decide::{DependentMove, dependent_move};
use crate::store::leased::{LeasedTask, check_lease};
use crate::store::postgres::changes::{Changes, query, query_opt};
use crate::store::postgres::error::Step;
use crate::store::{AttemptReport, Finished, StoreError, Transition};

/// The lease-deciding facts of task `id`, its row locked.
pub async fn load(tx: &Transaction<'_>, id: TaskId) -> Step<Option<LeasedTask>> {
    let Some(row) = query_opt(
        tx,
        "SELECT status, task_type, priority, attempt_count, lease_owner, lease_token, lease_deadline, \
         dependent_count, retry_count, max_retries, timeout_us, started_at, backoff_initial_us, \
         backoff_multiplier, backoff_max_us, backoff_jitter FROM tasks WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(leased_task(&row, 0, id)?))
}

/// The lease-deciding facts from a row whose columns, from `first`, are
/// those `load` selects.
fn leased_task(row: &tokio_postgres::Row, first: usize, id: TaskId) -> Step<LeasedTask> {
    let at = |offset: usize| first + offset;
    let lease_token: Option<i64> = row.try_get(at(5))?;
    let lease_deadline: Option<i64> = row.try_get(at(6))?;
    let started_at: Option<i64> = row.try_get(at(11))?;
    Ok(LeasedTask {
        id,
        status: parse_status(row.try_get(at(0))?)?,
        task_type: row.try_get(at(1))?,
        priority: parse_priority(row.try_get(at(2))?)?,
        lease_owner: row.try_get(at(4))?,
        lease_token: lease_token.map(LeaseToken::from_i64),
        lease_deadline: lease_deadline.map(Timestamp),
        dependent_count: row.try_get(at(7))?,
        facts: AttemptFacts {
            attempt: u32::try_from(row.try_get::<_, i64>(at(3))?).unwrap_or(0),
            retry_count: u32::try_from(row.try_get::<_, i64>(at(8))?).unwrap_or(0),
            max_retries: u32::try_from(row.try_get::<_, i64>(at(9))?).unwrap_or(0),
            retry_policy: crate::model::RetryPolicy {
                initial_backoff: duration(row.try_get(at(12))?),
                multiplier: row.try_get(at(13))?,
                max_backoff: duration(row.try_get(at(14))?),
                jitter: row.try_get(at(15))?,
            },
            timeout: duration(row.try_get(at(10))?),
            started_at: Timestamp(started_at.unwrap_or(0)),
        },
    })
}

/// Sets fields of the last attempt: `attempts - -1` drops it, and it is
/// appended again with the fields merged in.
const CLOSE: &str = "UPDATE tasks SET status = $2, retry_count = $3, run_at = COALESCE($4, run_at), \
     completed_at = $5, result = $6, error = $7, status_reason = $8, progress = COALESCE($9, progress), \
     attempts = (attempts - -1) || jsonb_build_array((attempts -> -1) || jsonb_build_object('finished_at', $10::bigint, \
     'outcome', $11::text, 'error', $7::text, 'finished_under', $12::text::jsonb)), \
     lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = $13, \
     updated_at = $10, revision = revision + 1 WHERE id = $1";

/// Closes the running attempt of `task` with `end` and moves the task on
/// as the rules decide; returns its new status.
pub async fn close(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    task: LeasedTask,
    end: AttemptEnd,
    machine: Option<MachineState>,
    now: Timestamp,
) -> Step<TaskStatus> {
    let verdict = end_attempt(&task.facts, end, now, rand::random::<f64>());
    let queue_key = verdict
        .retry
        .as_ref()
        .and_then(|placement| placement.queue_key(task.priority, &changes.weights));
    let retry_at = verdict.retry.as_ref().map(|placement| match placement.due() {
        Some(at) => at,
        None => now,
    });
    let done = (verdict.status == TaskStatus::Completed).then(|| to_json(&completed_progress()));
    changes
        .update_task(
            tx,
            task.id,
            CLOSE,
            &[
                &task.id,
                &verdict.status.code(),
                &i64::from(verdict.retry_count),
                &retry_at.map(Timestamp::as_micros),
                &verdict.completed_at.map(Timestamp::as_micros),
                &verdict.result.as_ref().map(to_json),
                &verdict.error,
                &verdict.reason,
                &done,
                &now.as_micros(),
                &verdict.outcome.as_str(),
                &machine.as_ref().map(to_json),
                &queue_key,
            ],
            EventKind::StatusChanged,
            Some(TaskStatus::Running),
        )
        .await?;
    changes.transition(Transition {
        task_id: task.id,
        task_type: task.task_type,
        priority: task.priority,
        from: Some(TaskStatus::Running),
        to: verdict.status,
        due: verdict.retry.as_ref().and_then(|placement| placement.due()),
        waited: None,
        closed_attempt: Some((verdict.outcome, now.duration_since(task.facts.started_at))),
    });
    if verdict.status.is_terminal() && task.dependent_count > 0 {
        dependency_ended(tx, changes, task.id, verdict.status, now).await?;
    }
    Ok(verdict.status)
}

/// A dependent as its edge and row describe it.
struct Dependent {
    id: TaskId,
    required_status: i64,
    status: i64,
    unmet: i64,
    total: i64,
    run_at: Option<i64>,
    priority: i64,
    task_type: String,
    dependent_count: i64,
}

/// Resolves the dependents of `ended`, which just reached `status`, and so
/// on down the graph: each WAITING dependent counts one more dependency met
/// (placed once none is left) or is cancelled.
pub async fn dependency_ended(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    ended: TaskId,
    status: TaskStatus,
    now: Timestamp,
) -> Step<()> {
    let mut work = VecDeque::from([(ended, status)]);
    while let Some((dependency, status)) = work.pop_front() {
        for dependent in dependents_of(tx, dependency).await? {
            if parse_status(dependent.status)? != TaskStatus::Waiting {
                continue;
            }
            let movement = dependent_move(
                (dependency, status),
                parse_status(dependent.required_status)?,
                (dependent.unmet, dependent.total),
                dependent.run_at.map(Timestamp),
                now,
            );
            match movement {
                None => {}
                Some(DependentMove::OneLess { unmet, reason }) => {
                    one_less(tx, changes, &dependent, unmet, reason, now).await?
                }
                Some(DependentMove::Place(placement)) => {
                    let cancelled = placement.status() == TaskStatus::Cancelled;
                    place(tx, changes, &dependent, placement, now).await?;
                    if cancelled && dependent.dependent_count > 0 {
                        work.push_back((dependent.id, TaskStatus::Cancelled));
                    }
                }
            }
        }
    }
    Ok(())
}

async fn dependents_of(tx: &Transaction<'_>, dependency: TaskId) -> Step<Vec<Dependent>> {
    let rows = query(
        tx,
        "SELECT edge.task_id, edge.required_status, task.status, task.unmet_dependencies, \
         jsonb_array_length(task.dependencies::jsonb), task.run_at, task.priority, task.task_type, \
         task.dependent_count \
         FROM task_dependencies AS edge JOIN tasks AS task ON task.id = edge.task_id \
         WHERE edge.depends_on = $1 ORDER BY edge.task_id FOR UPDATE OF task",
        &[&dependency],
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Dependent {
                id: row.try_get(0)?,
                required_status: row.try_get(1)?,
                status: row.try_get(2)?,
                unmet: row.try_get(3)?,
                total: i64::from(row.try_get::<_, i32>(4)?),
                run_at: row.try_get(5)?,
                priority: row.try_get(6)?,
                task_type: row.try_get(7)?,
                dependent_count: row.try_get(8)?,
            })
        })
        .collect()
}

const ONE_LESS: &str = "UPDATE tasks SET unmet_dependencies = $2, status_reason = $3, updated_at = $4, \
     revision = revision + 1 WHERE id = $1";

const PLACE: &str = "UPDATE tasks SET status = $2, unmet_dependencies = 0, status_reason = $3, queue_key = $4, \
     completed_at = $5, error = $6, updated_at = $7, revision = revision + 1 WHERE id = $1";

async fn one_less(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    dependent: &Dependent,
    unmet: i64,
    reason: String,
    now: Timestamp,
) -> Step<()> {
    changes
        .update_task(
            tx,
            dependent.id,
            ONE_LESS,
            &[&dependent.id, &unmet, &reason, &now.as_micros()],
            EventKind::StatusChanged,
            Some(TaskStatus::Waiting),
        )
        .await
}

async fn place(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    dependent: &Dependent,
    placement: Placement,
    now: Timestamp,
) -> Step<()> {
    let priority = parse_priority(dependent.priority)?;
    let status = placement.status();
    let cancelled = status == TaskStatus::Cancelled;
    let reason = placement.reason();
    let queue_key = placement.queue_key(priority, &changes.weights);
    changes
        .update_task(
            tx,
            dependent.id,
            PLACE,
            &[
                &dependent.id,
                &status.code(),
                &reason,
                &queue_key,
                &cancelled.then_some(now.as_micros()),
                &cancelled.then(|| reason.clone()),
                &now.as_micros(),
            ],
            EventKind::StatusChanged,
            Some(TaskStatus::Waiting),
        )
        .await?;
    if cancelled {
        tracing::info!(task_id = %dependent.id, %reason, "dependent task cancelled");
    }
    changes.transition(Transition {
        task_id: dependent.id,
        task_type: dependent.task_type.clone(),
        priority,
        from: Some(TaskStatus::Waiting),
        to: status,
        due: placement.due(),
        waited: None,
        closed_attempt: None,
    });
    Ok(())
}

/// Ends many attempts in one transaction with three statements whatever
/// their number (lock and read, close, and only for tasks with dependents,
/// the cascade): each report is answered on its own, refused ones changing
/// nothing.
pub async fn finish_many(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    reports: &[AttemptReport],
) -> Step<Vec<Result<Finished, StoreError>>> {
    let mut ids: Vec<TaskId> = reports.iter().map(|report| report.lease.task_id).collect();
    ids.sort();
    ids.dedup();
    let rows = query(
        tx,
        "SELECT id, status, task_type, priority, attempt_count, lease_owner, lease_token, lease_deadline, \
         dependent_count, retry_count, max_retries, timeout_us, started_at, backoff_initial_us, \
         backoff_multiplier, backoff_max_us, backoff_jitter FROM tasks WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&ids],
    )
    .await?;
    let mut leased: HashMap<TaskId, LeasedTask> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let task = leased_task(row, 1, row.try_get(0)?)?;
        leased.insert(task.id, task);
    }
    let mut closes = Closes::default();
    // Per report: its refusal, or its new status, its own transition and
    // (once known) those of the dependents its end moved.
    let mut outcomes: Vec<Result<Accepted, StoreError>> = Vec::with_capacity(reports.len());
    for report in reports {
        let task = match check_lease(leased.remove(&report.lease.task_id), &report.lease, report.now) {
            Ok(task) => task,
            Err(refusal) => {
                outcomes.push(Err(refusal));
                continue;
            }
        };
        let verdict = end_attempt(&task.facts, report.end.clone(), report.now, rand::random::<f64>());
        let now = report.now;
        closes.ids.push(task.id);
        closes.nows.push(now.as_micros());
        closes.statuses.push(verdict.status.code());
        closes.retry_counts.push(i64::from(verdict.retry_count));
        closes
            .retry_ats
            .push(verdict.retry.as_ref().map(|placement| match placement.due() {
                Some(at) => at.as_micros(),
                None => now.as_micros(),
            }));
        closes
            .completed_ats
            .push(verdict.completed_at.map(Timestamp::as_micros));
        closes.results.push(verdict.result.as_ref().map(to_json));
        closes.errors.push(verdict.error.clone());
        closes.reasons.push(verdict.reason.clone());
        closes
            .dones
            .push((verdict.status == TaskStatus::Completed).then(|| to_json(&completed_progress())));
        closes.outcomes.push(verdict.outcome.as_str().to_string());
        closes.machines.push(report.machine.as_ref().map(to_json));
        closes.queue_keys.push(
            verdict
                .retry
                .as_ref()
                .and_then(|placement| placement.queue_key(task.priority, &changes.weights)),
        );
        let transition = Transition {
            task_id: task.id,
            task_type: task.task_type.clone(),
            priority: task.priority,
            from: Some(TaskStatus::Running),
            to: verdict.status,
            due: verdict.retry.as_ref().and_then(|placement| placement.due()),
            waited: None,
            closed_attempt: Some((verdict.outcome, now.duration_since(task.facts.started_at))),
        };
        changes.transition(transition.clone());
        let cascade = (verdict.status.is_terminal() && task.dependent_count > 0).then_some((task.id, now));
        outcomes.push(Ok(Accepted {
            status: verdict.status,
            transition,
            cascade,
        }));
    }
    if !closes.ids.is_empty() {
        write_closes(tx, changes, &closes).await?;
    }
    let mut answers = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let Accepted {
            status,
            transition,
            cascade,
        } = match outcome {
            Ok(accepted) => accepted,
            Err(refusal) => {
                answers.push(Err(refusal));
                continue;
            }
        };
        let start = changes.transitions.len();
        if let Some((id, now)) = cascade {
            dependency_ended(tx, changes, id, status, now).await?;
        }
        let mut transitions = vec![transition];
        transitions.extend_from_slice(&changes.transitions[start..]);
        answers.push(Ok(Finished { status, transitions }));
    }
    Ok(answers)
}

/// A report whose lease held: the task's new status, its transition, and
/// the end to pass on to its dependents, if it has any.
struct Accepted {
    status: TaskStatus,
    transition: Transition,
    cascade: Option<(TaskId, Timestamp)>,
}

/// Writes every accepted close with one statement, reading the rows back
/// for watchers when there are any.
async fn write_closes(tx: &Transaction<'_>, changes: &mut Changes, closes: &Closes) -> Step<()> {
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
        &closes.ids,
        &closes.nows,
        &closes.statuses,
        &closes.retry_counts,
        &closes.retry_ats,
        &closes.completed_ats,
        &closes.results,
        &closes.errors,
        &closes.reasons,
        &closes.dones,
        &closes.outcomes,
        &closes.machines,
        &closes.queue_keys,
    ];
    if changes.wants_events {
        let returning = format!("{CLOSE_ALL} RETURNING {}", crate::store::postgres::row::COLUMNS_OF_TASK);
        let rows = query(tx, &returning, &params).await?;
        let mut by_id = HashMap::with_capacity(rows.len());
        for row in &rows {
            let row = crate::store::postgres::row::read(row, 0)?;
            by_id.insert(row.id, row);
        }
        for id in &closes.ids {
            if let Some(row) = by_id.remove(id) {
                changes.record_row(*id, EventKind::StatusChanged, Some(TaskStatus::Running), || row);
            }
        }
    } else {
        crate::store::postgres::changes::execute(tx, CLOSE_ALL, &params).await?;
        for id in &closes.ids {
            changes
                .changed
                .push((*id, EventKind::StatusChanged, Some(TaskStatus::Running)));
        }
    }
    Ok(())
}

/// Every closed attempt, written by one statement.
const CLOSE_ALL: &str = "UPDATE tasks AS task SET status = close.status, retry_count = close.retry_count, \
     run_at = COALESCE(close.retry_at, task.run_at), completed_at = close.completed_at, result = close.result, \
     error = close.error, status_reason = close.reason, progress = COALESCE(close.done, task.progress), \
     attempts = (task.attempts - -1) || jsonb_build_array((task.attempts -> -1) || jsonb_build_object(\
     'finished_at', close.now, 'outcome', close.outcome, 'error', close.error, \
     'finished_under', close.machine::jsonb)), \
     lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = close.queue_key, \
     updated_at = close.now, revision = task.revision + 1 \
     FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], \
     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[]) \
     AS close(id, now, status, retry_count, retry_at, completed_at, result, error, reason, done, outcome, machine, \
     queue_key) WHERE task.id = close.id";

/// The columns of [`CLOSE_ALL`], one entry per closed attempt.
#[derive(Default)]
struct Closes {
    ids: Vec<TaskId>,
    nows: Vec<i64>,
    statuses: Vec<i64>,
    retry_counts: Vec<i64>,
    retry_ats: Vec<Option<i64>>,
    completed_ats: Vec<Option<i64>>,
    results: Vec<Option<String>>,
    errors: Vec<Option<String>>,
    reasons: Vec<String>,
    dones: Vec<Option<String>>,
    outcomes: Vec<String>,
    machines: Vec<Option<String>>,
    queue_keys: Vec<Option<i64>>,
}
