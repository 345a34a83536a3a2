//! Reads, and the writes that are not about tasks: the workers each node
//! publishes for the others.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use crate::model::{Task, TaskId, TaskStatus, Timestamp, WorkerInfo};
use crate::store::columns::parse_status;
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
    let filter = &list.filter;
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let bind = |value: Box<dyn ToSql + Sync + Send>, values: &mut Vec<Box<dyn ToSql + Sync + Send>>| {
        values.push(value);
        format!("${}", values.len())
    };
    if !filter.statuses.is_empty() {
        let codes: Vec<i64> = filter.statuses.iter().map(|status| status.code()).collect();
        let mark = bind(Box::new(codes), &mut values);
        conditions.push(format!("status = ANY({mark})"));
        if !filter.statuses.contains(&TaskStatus::Completed) {
            conditions.push(format!("status != {}", TaskStatus::Completed.code()));
        }
    }
    if !filter.task_types.is_empty() {
        let mark = bind(Box::new(filter.task_types.clone()), &mut values);
        conditions.push(format!("task_type = ANY({mark})"));
    }
    if !filter.priorities.is_empty() {
        let codes: Vec<i64> = filter.priorities.iter().map(|priority| priority.code()).collect();
        let mark = bind(Box::new(codes), &mut values);
        conditions.push(format!("priority = ANY({mark})"));
    }
    for (key, value) in &filter.labels {
        let key_mark = bind(Box::new(key.clone()), &mut values);
        let value_mark = bind(Box::new(value.clone()), &mut values);
        conditions.push(format!("labels ->> {key_mark} = {value_mark}"));
    }
    if let Some(after) = filter.created_after {
        let mark = bind(Box::new(after.as_micros()), &mut values);
        conditions.push(format!("created_at >= {mark}"));
    }
    if let Some(before) = filter.created_before {
        let mark = bind(Box::new(before.as_micros()), &mut values);
        conditions.push(format!("created_at < {mark}"));
    }
    if let Some(part) = &filter.name_contains {
        // strpos on lower(): no LIKE wildcards to escape in what users type.
        let mark = bind(Box::new(part.clone()), &mut values);
        conditions.push(format!("strpos(lower(name), lower({mark})) > 0"));
    }
    if let Some(upstream) = filter.depends_on {
        let mark = bind(Box::new(upstream), &mut values);
        conditions.push(format!(
            "id IN (SELECT task_id FROM task_dependencies WHERE depends_on = {mark})"
        ));
    }
    if let Some(before_id) = list.before_id {
        let mark = bind(Box::new(before_id), &mut values);
        conditions.push(format!("id < {mark}"));
    }
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = bind(Box::new(list.limit as i64), &mut values);
    let sql = format!("SELECT {COLUMNS} FROM tasks {where_clause} ORDER BY id DESC LIMIT {limit}");
    let params: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = tx.query(sql.as_str(), &params).await?;
    rows.iter().map(|row| Ok(read(row, 0)?.into_task()?)).collect()
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
