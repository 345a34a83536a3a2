//! Taking leases back: from executors that let them expire, or from one
//! that is gone. Each attempt ends through the same path as a reported one
//! (so the task is retried or failed per its policy); rows another
//! transaction is rescuing are skipped.

use crate::model::Timestamp;
use crate::model::rules::attempts::{AttemptEnd, end_of_expired_lease};
use crate::store::driver::Tx;
use crate::store::transition::attempt::{Ending, close_all};
use crate::store::{RescueScope, Rescued};

pub async fn rescue<T: Tx>(tx: &mut T, scope: RescueScope, now: Timestamp) -> Result<Rescued, T::Error> {
    let start = tx.changes().transitions.len();
    let mut ids = match &scope {
        RescueScope::Expired => tx.expired_leases(now).await?,
        RescueScope::HeldBy(executor, _) => tx.leases_held_by(executor.as_str()).await?,
    };
    ids.sort_unstable();
    let mut endings = Vec::with_capacity(ids.len());
    let mut tasks = Vec::with_capacity(ids.len());
    for task in tx.leased(&ids).await? {
        let end = match &scope {
            RescueScope::Expired => end_of_expired_lease(&task.facts, now),
            RescueScope::HeldBy(_, why) => AttemptEnd::Interrupted { why: why.clone() },
        };
        let outcome = end.outcome();
        tracing::info!(task_id = %task.id, outcome = outcome.as_str(), "lease taken back");
        tasks.push((task.id, outcome));
        endings.push(Ending {
            task,
            end,
            machine: None,
            now,
        });
    }
    close_all(tx, endings).await?;
    Ok(Rescued {
        tasks,
        transitions: tx.changes().transitions_since(start),
    })
}
