//! Reads, and the small writes that are not task transitions: purges,
//! known task types, the health row.

use std::collections::BTreeMap;

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use crate::model::{Task, TaskId, TaskStatus, Timestamp, WorkerInfo};
use crate::store::columns::parse_status;
use crate::store::decide::check_declared_bound;
use crate::store::postgres::changes::{execute, query};
use crate::store::postgres::error::{Failure, Step};
use crate::store::postgres::row::{COLUMNS, read};
use crate::store::{ForgetTaskTypes, ListQuery, Purged, StatusCount, StoreError};

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

pub async fn purge(tx: &Transaction<'_>, cutoff: Timestamp, limit: usize) -> Step<Purged> {
    let limit = limit.max(1);
    let rows = query(
        tx,
        "SELECT id, task_type, status FROM tasks WHERE completed_at < $1 AND status IN (4, 5, 6) \
         LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&cutoff.as_micros(), &((limit + 1) as i64)],
    )
    .await?;
    let more = rows.len() > limit;
    let mut counts: BTreeMap<(String, TaskStatus), u64> = BTreeMap::new();
    let mut ids: Vec<TaskId> = Vec::new();
    for row in rows.iter().take(limit) {
        ids.push(row.try_get(0)?);
        let status = parse_status(row.try_get(2)?)?;
        *counts.entry((row.try_get(1)?, status)).or_default() += 1;
    }
    if !ids.is_empty() {
        execute(tx, "DELETE FROM tasks WHERE id = ANY($1)", &[&ids]).await?;
        execute(tx, "DELETE FROM task_dependencies WHERE task_id = ANY($1)", &[&ids]).await?;
        execute(tx, "DELETE FROM task_dependencies WHERE depends_on = ANY($1)", &[&ids]).await?;
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

pub async fn declare_task_types(
    tx: &Transaction<'_>,
    task_types: &[String],
    now: Timestamp,
    max_declared: usize,
) -> Step<()> {
    // Nodes declaring at once count one after the other: the bound holds
    // for the whole cluster.
    execute(tx, "LOCK TABLE task_types IN SHARE ROW EXCLUSIVE MODE", &[]).await?;
    let counted = query(
        tx,
        "SELECT (SELECT COUNT(*) FROM task_types), \
         (SELECT COUNT(*) FROM unnest($1::text[]) AS name WHERE name NOT IN (SELECT name FROM task_types))",
        &[&task_types],
    )
    .await?;
    let row = counted
        .first()
        .ok_or_else(|| Failure::Refused(StoreError::Corrupt("no count".into())))?;
    let declared = usize::try_from(row.try_get::<_, i64>(0)?).unwrap_or(usize::MAX);
    let new = usize::try_from(row.try_get::<_, i64>(1)?).unwrap_or(usize::MAX);
    check_declared_bound(declared, new, max_declared).map_err(Failure::Refused)?;
    execute(
        tx,
        "INSERT INTO task_types (name, declared_at) SELECT name, $2 FROM unnest($1::text[]) AS name \
         ON CONFLICT (name) DO UPDATE SET declared_at = GREATEST(task_types.declared_at, excluded.declared_at)",
        &[&task_types, &now.as_micros()],
    )
    .await?;
    Ok(())
}

pub async fn forget_task_types(tx: &Transaction<'_>, which: &ForgetTaskTypes) -> Step<Vec<String>> {
    let rows = match which {
        ForgetTaskTypes::Named(name) => {
            query(tx, "DELETE FROM task_types WHERE name = $1 RETURNING name", &[name]).await?
        }
        ForgetTaskTypes::DeclaredBefore { cutoff, keep } => {
            query(
                tx,
                "DELETE FROM task_types WHERE declared_at < $1 AND NOT (name = ANY($2)) RETURNING name",
                &[&cutoff.as_micros(), keep],
            )
            .await?
        }
    };
    let mut forgotten = rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    forgotten.sort();
    Ok(forgotten)
}

pub async fn declared_task_types(tx: &impl GenericClient) -> Step<Vec<String>> {
    let rows = query(tx, "SELECT name FROM task_types ORDER BY name", &[]).await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

pub async fn touch_health(tx: &Transaction<'_>, now: Timestamp) -> Step<()> {
    execute(
        tx,
        "UPDATE health SET checked_at = $1 WHERE id = 1",
        &[&now.as_micros()],
    )
    .await?;
    Ok(())
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
