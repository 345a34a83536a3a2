//! Taking leases back: from executors that let them expire, or from one
//! that is gone. Each attempt ends through the same path as a reported one,
//! so the task is retried or failed per its policy.

use rusqlite::params;

use crate::model::rules::attempts::{AttemptEnd, end_of_expired_lease};
use crate::model::{TaskId, Timestamp};
use crate::store::sqlite::attempt::{self, close};
use crate::store::sqlite::writer::Batch;
use crate::store::{RescueScope, Rescued, StoreResult};

pub fn apply(batch: &mut Batch<'_>, scope: RescueScope, now: Timestamp) -> StoreResult<Rescued> {
    let start = batch.transitions.len();
    let ids: Vec<TaskId> = match &scope {
        RescueScope::Expired => {
            let mut statement = batch
                .connection
                .prepare_cached("SELECT id FROM tasks WHERE status = 3 AND status != 4 AND lease_deadline <= ?1")?;
            statement
                .query_map(params![now.as_micros()], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        }
        RescueScope::HeldBy(executor, _) => {
            let mut statement = batch
                .connection
                .prepare_cached("SELECT id FROM tasks WHERE status = 3 AND status != 4 AND lease_owner = ?1")?;
            statement
                .query_map(params![executor.as_str()], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        }
    };
    let mut tasks = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(task) = attempt::load(batch, id)? else {
            continue;
        };
        let end = match &scope {
            RescueScope::Expired => end_of_expired_lease(&task.facts, now),
            RescueScope::HeldBy(_, why) => AttemptEnd::Interrupted { why: why.clone() },
        };
        let outcome = end.outcome();
        tracing::info!(task_id = %id, outcome = outcome.as_str(), "lease taken back");
        close(batch, task, end, None, now)?;
        tasks.push((id, outcome));
    }
    Ok(Rescued {
        tasks,
        transitions: batch.transitions_since(start),
    })
}
