//! Reads, on a small pool of connections beside the writer: WAL lets them
//! run while it commits, and they only ever see committed state.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params, params_from_iter};

use crate::model::{Task, TaskId};
use crate::store::list_sql::{self, FilterDialect, FilterList, FilterValue};
use crate::store::sqlite::row::parse_status;
use crate::store::sqlite::row::{COLUMNS, query_tasks};
use crate::store::{ListQuery, StatusCount, StoreResult};

pub fn get(connection: &Connection, id: TaskId) -> StoreResult<Option<Task>> {
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1");
    Ok(query_tasks(connection, &sql, params![id])?.pop())
}

pub fn list(connection: &Connection, query: &ListQuery) -> StoreResult<Vec<Task>> {
    let mut values = SqliteValues::default();
    let where_clause = list_sql::where_clause(query, &mut values);
    values.0.push((query.limit as i64).into());
    let sql = format!("SELECT {COLUMNS} FROM tasks {where_clause} ORDER BY id DESC LIMIT ?");
    query_tasks(connection, &sql, params_from_iter(values.0))
}

/// The values of a list's conditions, bound in order to `?` marks.
#[derive(Default)]
struct SqliteValues(Vec<SqlValue>);

impl FilterDialect for SqliteValues {
    fn bind(&mut self, value: FilterValue) -> String {
        self.0.push(match value {
            FilterValue::Int(number) => number.into(),
            FilterValue::Id(id) => id.0.as_bytes().to_vec().into(),
        });
        "?".to_string()
    }

    fn any_of(&mut self, column: &str, values: FilterList) -> String {
        let items: Vec<SqlValue> = match values {
            FilterList::Ints(numbers) => numbers.into_iter().map(SqlValue::from).collect(),
            FilterList::Texts(texts) => texts.into_iter().map(SqlValue::from).collect(),
        };
        let marks = vec!["?"; items.len()].join(", ");
        self.0.extend(items);
        format!("{column} IN ({marks})")
    }

    fn label_is(&mut self, key: &str, value: &str) -> String {
        self.0.push(format!("$.\"{}\"", key.replace('"', "\\\"")).into());
        self.0.push(value.to_string().into());
        "json_extract(labels, ?) = ?".to_string()
    }

    fn contains(&mut self, column: &str, part: &str) -> String {
        // instr on lower(): no LIKE wildcards to escape in what users type.
        self.0.push(part.to_string().into());
        format!("instr(lower({column}), lower(?)) > 0")
    }
}

/// Tasks by type and status, counted in the table (once, at open).
pub fn count_by_type_and_status(connection: &Connection) -> StoreResult<Vec<StatusCount>> {
    let mut statement =
        connection.prepare_cached("SELECT task_type, status, COUNT(*) FROM tasks GROUP BY task_type, status")?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(task_type, status, count)| {
            Ok(StatusCount {
                task_type,
                status: parse_status(status)?,
                count: count as u64,
            })
        })
        .collect()
}

/// Refreshes the query planner's statistics (a write).
pub fn analyze(connection: &Connection) -> StoreResult<()> {
    connection.execute_batch("PRAGMA optimize;")?;
    Ok(())
}

/// Copies the write-ahead log into the database as far as readers allow,
/// and says how the files stand. A checkpoint takes no write lock.
pub fn checkpoint(connection: &Connection) -> StoreResult<String> {
    let (busy, log_frames, checkpointed): (i64, i64, i64) =
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    let pages: i64 = connection.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let free: i64 = connection.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    Ok(format!(
        "analyzed tables; checkpointed {checkpointed} of {log_frames} WAL frames{}; \
         database has {pages} pages, {free} free",
        if busy != 0 { " (readers busy)" } else { "" }
    ))
}

/// Every declared task type, sorted.
pub fn declared_task_types(connection: &Connection) -> StoreResult<Vec<String>> {
    let mut statement = connection.prepare_cached("SELECT name FROM task_types ORDER BY name")?;
    let names = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

/// Every schedule's record, by name.
pub fn schedules(connection: &Connection) -> StoreResult<Vec<String>> {
    let mut statement = connection.prepare_cached("SELECT body FROM schedules ORDER BY name")?;
    let bodies = statement.query_map([], |row| row.get(0))?;
    Ok(bodies.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// The records of schedules not paused whose next fire is at or before
/// `now`, soonest first.
pub fn due_schedules(connection: &Connection, now: i64, limit: usize) -> StoreResult<Vec<String>> {
    let mut statement = connection.prepare_cached(
        "SELECT body FROM schedules WHERE paused = 0 AND next_fire <= ?1 ORDER BY next_fire LIMIT ?2",
    )?;
    let bodies = statement.query_map(params![now, limit as i64], |row| row.get(0))?;
    Ok(bodies.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// When the soonest schedule not paused fires next.
pub fn next_schedule_fire(connection: &Connection) -> StoreResult<Option<i64>> {
    Ok(connection
        .prepare_cached("SELECT MIN(next_fire) FROM schedules WHERE paused = 0")?
        .query_row([], |row| row.get(0))?)
}
