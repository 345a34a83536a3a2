//! The catalogue of known task types: what workers declared, and what
//! stored tasks already used when the catalogue began.

use rusqlite::{Connection, params};

use crate::model::Timestamp;
use crate::store::decide::check_declared_bound;
use crate::store::{ForgetTaskTypes, StoreError, StoreResult};

const DECLARE: &str = "INSERT INTO task_types (name, declared_at) VALUES (?1, ?2) \
    ON CONFLICT (name) DO UPDATE SET declared_at = MAX(declared_at, excluded.declared_at)";

pub fn declare(connection: &Connection, task_types: &[String], now: Timestamp, max_declared: usize) -> StoreResult<()> {
    let declared: i64 = connection
        .prepare_cached("SELECT COUNT(*) FROM task_types")?
        .query_row([], |row| row.get(0))?;
    let mut exists = connection.prepare_cached("SELECT 1 FROM task_types WHERE name = ?1")?;
    let mut new = 0;
    for task_type in task_types {
        if !exists.exists(params![task_type])? {
            new += 1;
        }
    }
    check_declared_bound(usize::try_from(declared).unwrap_or(usize::MAX), new, max_declared)?;
    let mut statement = connection.prepare_cached(DECLARE)?;
    for task_type in task_types {
        statement.execute(params![task_type, now.as_micros()])?;
    }
    Ok(())
}

pub fn forget(connection: &Connection, which: &ForgetTaskTypes) -> StoreResult<Vec<String>> {
    let mut forgotten = match which {
        ForgetTaskTypes::Named(name) => connection
            .prepare_cached("DELETE FROM task_types WHERE name = ?1 RETURNING name")?
            .query_map(params![name], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?,
        ForgetTaskTypes::DeclaredBefore { cutoff, keep } => {
            let keep = serde_json::to_string(keep).map_err(|error| StoreError::Corrupt(error.to_string()))?;
            connection
                .prepare_cached(
                    "DELETE FROM task_types WHERE declared_at < ?1 \
                     AND name NOT IN (SELECT value FROM json_each(?2)) RETURNING name",
                )?
                .query_map(params![cutoff.as_micros(), keep], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?
        }
    };
    forgotten.sort();
    Ok(forgotten)
}

pub fn declared(connection: &Connection) -> StoreResult<Vec<String>> {
    let mut statement = connection.prepare_cached("SELECT name FROM task_types ORDER BY name")?;
    let names = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

/// Rewrites the health row: a write that reaches the disk.
pub fn touch_health(connection: &Connection, now: Timestamp) -> StoreResult<()> {
    connection
        .prepare_cached("UPDATE health SET checked_at = ?1 WHERE id = 1")?
        .execute(params![now.as_micros()])?;
    Ok(())
}
