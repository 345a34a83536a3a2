//! The declared task types: what workers declared (or served), bounded,
//! renewed while they are served and forgotten when they are not.

use crate::model::Timestamp;
use crate::store::ForgetTaskTypes;
use crate::store::decide::check_declared_bound;
use crate::store::driver::Tx;

pub async fn declare_task_types<T: Tx>(
    tx: &mut T,
    names: &[String],
    now: Timestamp,
    max_declared: usize,
) -> Result<(), T::Error> {
    // Counted under a lock: declarations at once (on several nodes) count
    // one after the other, and the bound holds for all of them.
    let (declared, new) = tx.count_task_types(names).await?;
    check_declared_bound(declared, new, max_declared)?;
    tx.upsert_task_types(names, now).await
}

/// Forgets declared task types; the ones forgotten, sorted.
pub async fn forget_task_types<T: Tx>(tx: &mut T, which: &ForgetTaskTypes) -> Result<Vec<String>, T::Error> {
    let mut forgotten = tx.delete_task_types(which).await?;
    forgotten.sort();
    Ok(forgotten)
}
