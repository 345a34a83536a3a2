//! Deleting old finished tasks, a bounded number per step so that the
//! writer is never held for long.

use std::collections::BTreeMap;

use rusqlite::params;

use crate::model::{TaskId, TaskStatus, Timestamp};
use crate::store::sqlite::row::{TERMINAL_CODES, parse_status};
use crate::store::sqlite::writer::Batch;
use crate::store::{Purged, StatusCount, StoreResult};

pub fn apply(batch: &mut Batch<'_>, cutoff: Timestamp, limit: usize) -> StoreResult<Purged> {
    let limit = limit.max(1);
    let found: Vec<(TaskId, String, i64)> = {
        let mut statement = batch.connection.prepare_cached(&format!(
            "SELECT id, task_type, status FROM tasks WHERE completed_at < ?1 AND status IN {TERMINAL_CODES} \
             LIMIT ?2"
        ))?;
        statement
            .query_map(params![cutoff.as_micros(), (limit + 1) as i64], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    let more = found.len() > limit;
    let mut counts: BTreeMap<(String, TaskStatus), u64> = BTreeMap::new();
    for (id, task_type, status) in found.into_iter().take(limit) {
        let status = parse_status(status)?;
        batch
            .connection
            .prepare_cached("DELETE FROM tasks WHERE id = ?1")?
            .execute(params![id])?;
        for sql in [
            "DELETE FROM task_dependencies WHERE task_id = ?1",
            "DELETE FROM task_dependencies WHERE depends_on = ?1",
        ] {
            batch.connection.prepare_cached(sql)?.execute(params![id])?;
        }
        *counts.entry((task_type.clone(), status)).or_default() += 1;
        batch.removed.push((task_type, status));
    }
    Ok(Purged {
        counts: counts
            .into_iter()
            .map(|((task_type, status), count)| StatusCount {
                task_type,
                status,
                count,
            })
            .collect(),
        more,
    })
}
