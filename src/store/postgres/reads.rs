//! Reads, and the writes that are not about tasks: the workers each node
//! publishes for the others.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use crate::model::{Task, TaskId, Timestamp, WorkerInfo};
use crate::store::columns::parse_status;
use crate::store::list_sql::{self, FilterDialect, FilterList, FilterValue};
use crate::store::postgres::error::Step;
use crate::store::postgres::row::{COLUMNS, read};
use crate::store::postgres::sql::{execute, query};
use crate::store::{ListQuery, StatusCount};

pub async fn get(tx: &impl GenericClient, id: TaskId) -> Step<Option<Task>> {
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = $1");
    match query(tx, &sql, &[&id]).await?.first() {
        Some(row) => Ok(Some(read(row, 0)?.into_task()?)),
        None => Ok(None),
    }
}

pub async fn list(tx: &impl GenericClient, list: &ListQuery) -> Step<Vec<Task>> {
    let mut values = PostgresValues::default();
    let where_clause = list_sql::where_clause(list, &mut values);
    let limit = values.push(Box::new(list.limit as i64));
    let sql = format!("SELECT {COLUMNS} FROM tasks {where_clause} ORDER BY id DESC LIMIT {limit}");
    let params: Vec<&(dyn ToSql + Sync)> = values
        .0
        .iter()
        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = tx.query(sql.as_str(), &params).await?;
    rows.iter().map(|row| Ok(read(row, 0)?.into_task()?)).collect()
}

/// The values of a list's conditions, bound to `$1`, `$2`, ... in order.
#[derive(Default)]
struct PostgresValues(Vec<Box<dyn ToSql + Sync + Send>>);

impl PostgresValues {
    fn push(&mut self, value: Box<dyn ToSql + Sync + Send>) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }
}

impl FilterDialect for PostgresValues {
    fn bind(&mut self, value: FilterValue) -> String {
        match value {
            FilterValue::Int(number) => self.push(Box::new(number)),
            FilterValue::Id(id) => self.push(Box::new(id)),
        }
    }

    fn any_of(&mut self, column: &str, values: FilterList) -> String {
        let mark = match values {
            FilterList::Ints(numbers) => self.push(Box::new(numbers)),
            FilterList::Texts(texts) => self.push(Box::new(texts)),
        };
        format!("{column} = ANY({mark})")
    }

    fn label_is(&mut self, key: &str, value: &str) -> String {
        let key = self.push(Box::new(key.to_string()));
        let value = self.push(Box::new(value.to_string()));
        format!("labels ->> {key} = {value}")
    }

    fn contains(&mut self, column: &str, part: &str) -> String {
        // strpos on lower(): no LIKE wildcards to escape in what users type.
        let mark = self.push(Box::new(part.to_string()));
        format!("strpos(lower({column}), lower({mark})) > 0")
    }
}

pub async fn counts(tx: &impl GenericClient) -> Step<Vec<StatusCount>> {
    let rows = query(
        tx,
        "SELECT task_type, status, COUNT(*) FROM tasks GROUP BY task_type, status",
        &[],
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StatusCount {
                task_type: row.try_get(0)?,
                status: parse_status(row.try_get(1)?)?,
                count: row.try_get::<_, i64>(2)? as u64,
            })
        })
        .collect()
}

pub async fn declared_task_types(tx: &impl GenericClient) -> Step<Vec<String>> {
    let rows = query(tx, "SELECT name FROM task_types ORDER BY name", &[]).await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

pub async fn publish_workers(
    tx: &Transaction<'_>,
    node: &str,
    workers: &[WorkerInfo],
    now: Timestamp,
    stale_before: Timestamp,
) -> Step<()> {
    execute(
        tx,
        "DELETE FROM workers WHERE node = $1 OR seen_at < $2",
        &[&node, &stale_before.as_micros()],
    )
    .await?;
    if workers.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = workers.iter().map(|worker| worker.worker_id.as_str()).collect();
    let infos: Vec<String> = workers
        .iter()
        .map(|worker| serde_json::to_string(worker).unwrap_or_default())
        .collect();
    execute(
        tx,
        "INSERT INTO workers (node, worker_id, info, seen_at) \
         SELECT $1, worker_id, info, $4 FROM unnest($2::text[], $3::text[]) AS w(worker_id, info)",
        &[&node, &ids, &infos, &now.as_micros()],
    )
    .await?;
    Ok(())
}

pub async fn workers_elsewhere(
    client: &impl GenericClient,
    node: &str,
    seen_after: Timestamp,
) -> Step<Vec<WorkerInfo>> {
    let rows = query(
        client,
        "SELECT info FROM workers WHERE node <> $1 AND seen_at >= $2 ORDER BY worker_id",
        &[&node, &seen_after.as_micros()],
    )
    .await?;
    let mut workers = Vec::with_capacity(rows.len());
    for row in &rows {
        let info: String = row.try_get(0)?;
        match serde_json::from_str(&info) {
            Ok(worker) => workers.push(worker),
            Err(error) => tracing::warn!(%error, "a worker another node recorded cannot be read; skipped"),
        }
    }
    Ok(workers)
}

/// Every schedule's record, by name.
pub async fn schedules(client: &impl GenericClient) -> Step<Vec<String>> {
    let rows = query(client, "SELECT body FROM schedules ORDER BY name", &[]).await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// The records of schedules not paused whose next fire is at or before
/// `now`, soonest first.
pub async fn due_schedules(client: &impl GenericClient, now: i64, limit: usize) -> Step<Vec<String>> {
    let rows = query(
        client,
        "SELECT body FROM schedules WHERE NOT paused AND next_fire <= $1 ORDER BY next_fire LIMIT $2",
        &[&now, &(limit as i64)],
    )
    .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// When the soonest schedule not paused fires next.
pub async fn next_schedule_fire(client: &impl GenericClient) -> Step<Option<i64>> {
    let rows = query(client, "SELECT MIN(next_fire) FROM schedules WHERE NOT paused", &[]).await?;
    match rows.first() {
        Some(row) => Ok(row.try_get(0)?),
        None => Ok(None),
    }
}
