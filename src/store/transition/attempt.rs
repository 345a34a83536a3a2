//! Ending attempts: the one path for an executor's report and for a lease
//! taken back by a rescue. Checks the lease, applies the verdict of the
//! rules, and resolves dependents in the same step. Many ends share one
//! close statement (a backend may write them all at once).

use std::collections::HashMap;

use crate::model::rules::attempts::{AttemptEnd, completed_progress, end_attempt};
use crate::model::{MachineState, TaskId, TaskStatus, Timestamp};
use crate::store::columns::to_json;
use crate::store::driver::{Close, LeasedTask, Tx};
use crate::store::transition::cascade::dependency_ended;
use crate::store::transition::lease::check_lease;
use crate::store::{AttemptReport, Finished, StoreError, Transition};

/// Ends the attempts `reports` speak for, each answered on its own: a
/// refused report (a lost lease) changes nothing, the others go on.
pub async fn finish_many<T: Tx>(
    tx: &mut T,
    reports: Vec<AttemptReport>,
) -> Result<Vec<Result<Finished, StoreError>>, T::Error> {
    let mut ids: Vec<TaskId> = reports.iter().map(|report| report.lease.task_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut leased = Leased::new(tx.leased(&ids).await?);
    let mut endings = Vec::with_capacity(reports.len());
    let mut refusals: Vec<Option<StoreError>> = Vec::with_capacity(reports.len());
    for report in reports {
        match check_lease(leased.take(report.lease.task_id), &report.lease, report.now) {
            Ok(task) => {
                endings.push(Ending {
                    task,
                    end: report.end,
                    machine: report.machine,
                    now: report.now,
                });
                refusals.push(None);
            }
            Err(refusal) => refusals.push(Some(refusal)),
        }
    }
    let mut finished = close_all(tx, endings).await?.into_iter();
    Ok(refusals
        .into_iter()
        .map(|refusal| match refusal {
            Some(refusal) => Err(refusal),
            None => finished
                .next()
                .ok_or_else(|| StoreError::Unavailable("an attempt's end went missing".to_string())),
        })
        .collect())
}

/// The leased tasks one call read, each taken once. Most calls carry one
/// report: a short list is searched, a long one (a batch) hashed.
enum Leased {
    Few(Vec<LeasedTask>),
    Many(HashMap<TaskId, LeasedTask>),
}

impl Leased {
    fn new(tasks: Vec<LeasedTask>) -> Self {
        if tasks.len() <= 16 {
            Leased::Few(tasks)
        } else {
            Leased::Many(tasks.into_iter().map(|task| (task.id, task)).collect())
        }
    }

    fn take(&mut self, id: TaskId) -> Option<LeasedTask> {
        match self {
            Leased::Few(tasks) => {
                let index = tasks.iter().position(|task| task.id == id)?;
                Some(tasks.swap_remove(index))
            }
            Leased::Many(tasks) => tasks.remove(&id),
        }
    }
}

/// A running attempt to end.
pub struct Ending {
    pub task: LeasedTask,
    pub end: AttemptEnd,
    /// The machine when the attempt ended.
    pub machine: Option<MachineState>,
    pub now: Timestamp,
}

/// Closes every attempt of `endings` with one statement and moves each
/// task on as the rules decide, then resolves their dependents; one
/// answer per ending, in order.
pub async fn close_all<T: Tx>(tx: &mut T, endings: Vec<Ending>) -> Result<Vec<Finished>, T::Error> {
    let weights = tx.weights();
    let mut closes = Vec::with_capacity(endings.len());
    let mut accepted = Vec::with_capacity(endings.len());
    for Ending {
        task,
        end,
        machine,
        now,
    } in endings
    {
        let verdict = end_attempt(&task.facts, end, now, rand::random::<f64>());
        let due = verdict.retry.as_ref().and_then(|placement| placement.due());
        closes.push(Close {
            id: task.id,
            now,
            status: verdict.status,
            retry_count: i64::from(verdict.retry_count),
            retry_at: verdict.retry.as_ref().map(|_| due.unwrap_or(now)),
            completed_at: verdict.completed_at,
            result: verdict.result.as_ref().map(to_json),
            error: verdict.error,
            reason: verdict.reason,
            done: (verdict.status == TaskStatus::Completed).then(|| to_json(&completed_progress())),
            outcome: verdict.outcome.as_str(),
            machine: machine.as_ref().map(to_json),
            queue_key: verdict
                .retry
                .as_ref()
                .and_then(|placement| placement.queue_key(task.priority, &weights)),
        });
        let transition = Transition {
            task_id: task.id,
            task_type: task.task_type,
            priority: task.priority,
            from: Some(TaskStatus::Running),
            to: verdict.status,
            due,
            waited: None,
            closed_attempt: Some((verdict.outcome, now.duration_since(task.facts.started_at))),
        };
        tx.changes().transition(transition.clone());
        let cascade = (verdict.status.is_terminal() && task.dependent_count > 0).then_some((task.id, now));
        accepted.push((verdict.status, transition, cascade));
    }
    if !closes.is_empty() {
        tx.close_attempts(&closes).await?;
    }
    let mut finished = Vec::with_capacity(accepted.len());
    for (status, transition, cascade) in accepted {
        let start = tx.changes().transitions.len();
        if let Some((id, now)) = cascade {
            dependency_ended(tx, id, status, now).await?;
        }
        let mut transitions = vec![transition];
        transitions.extend(tx.changes().transitions_since(start));
        finished.push(Finished { status, transitions });
    }
    Ok(finished)
}
