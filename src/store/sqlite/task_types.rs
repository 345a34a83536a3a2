//! The catalogue of known task types: what workers declared, and what
//! stored tasks already used when the catalogue began.

use rusqlite::{Connection, params};

use crate::model::Timestamp;
use crate::store::StoreResult;

const DECLARE: &str = "INSERT OR IGNORE INTO task_types (name, declared_at) VALUES (?1, ?2)";

pub fn declare(connection: &Connection, task_types: &[String], now: Timestamp) -> StoreResult<()> {
    let mut statement = connection.prepare_cached(DECLARE)?;
    for task_type in task_types {
        statement.execute(params![task_type, now.as_micros()])?;
    }
    Ok(())
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
