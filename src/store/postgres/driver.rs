//! The statements of the transitions in PostgreSQL's SQL, inside one
//! transaction on a pooled connection.
//!
//! Rows a decision depends on are locked (`FOR UPDATE`), in id order where
//! there are several, so that transactions on other nodes wait for this
//! one or see what it wrote; rows that are looked for as work (ready, due,
//! expired, finished) skip those another transaction holds (`SKIP
//! LOCKED`). Statements over many tasks take them as arrays (`unnest`):
//! one round trip whatever their number.

use std::collections::HashMap;

use const_format::concatcp;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use crate::model::rules::attempts::AttemptFacts;
use crate::model::{Fingerprint, LeaseToken, RetryPolicy, TaskId, TaskStatus, Timestamp};
use crate::store::changes::{Changes, Event};
use crate::store::columns::status_code::{CANCELLED, PENDING, RUNNING, SCHEDULED, TERMINAL};
use crate::store::columns::{TaskRow, duration, micros, parse_priority, parse_status, to_json};
use crate::store::driver::{
    CLOSED, CancelWrite, Close, Dependent, DueTask, LeaseWrites, LeasedTask, NewRow, Placed, ScheduleRow, Tx,
};
use crate::store::postgres::error::{Failure, Step};
use crate::store::postgres::row::{COLUMNS, COLUMNS_OF_TASK, read};
use crate::store::postgres::sql::{Params, execute, query, query_opt};
use crate::store::{ForgetTaskTypes, StoreError};

/// One transaction, as the transitions use it.
pub struct PgTx<'t, 'c> {
    tx: &'t Transaction<'c>,
    pub changes: Changes,
    /// Rows [`Tx::ready`] read whole (it locks them anyway), handed out by
    /// [`Tx::claimable`] without another round trip.
    ready_rows: HashMap<TaskId, (i64, TaskRow)>,
}

impl<'t, 'c> PgTx<'t, 'c> {
    pub fn new(tx: &'t Transaction<'c>, changes: Changes) -> Self {
        PgTx {
            tx,
            changes,
            ready_rows: HashMap::new(),
        }
    }

    /// What the transaction changed, for its notice and its publication.
    pub fn into_changes(self) -> Changes {
        self.changes
    }

    /// Records the workers connected to `node` (not a task transition:
    /// only nodes sharing a database publish workers).
    pub async fn publish_workers(
        &mut self,
        node: &str,
        workers: &[crate::model::WorkerInfo],
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Step<()> {
        crate::store::postgres::reads::publish_workers(self.tx, node, workers, now, stale_before).await
    }

    /// Runs `sql`, an `UPDATE tasks ... WHERE id = $1` of one task; when
    /// someone watches, with the row as it left it (`RETURNING`) recorded.
    async fn update_task(&mut self, id: TaskId, sql: &str, params: Params<'_>, event: Event) -> Step<()> {
        if !self.changes.wants_row() {
            execute(self.tx, sql, params).await?;
            self.changes.record_unread(id, event);
            return Ok(());
        }
        let returning = format!("{sql} RETURNING {COLUMNS}");
        if let Some(row) = query_opt(self.tx, &returning, params).await? {
            let row = read(&row, 0)?;
            self.changes.record_row(id, event, || row);
        }
        Ok(())
    }
}

const BY_IDEMPOTENCY_KEY: &str = concatcp!(
    "SELECT request_fingerprint, ",
    COLUMNS,
    " FROM tasks WHERE idempotency_key = $1"
);

const INSERT: &str = "INSERT INTO tasks (id, name, task_type, priority, status, params, dependencies, labels, \
     idempotency_key, request_fingerprint, max_retries, retry_count, timeout_us, backoff_initial_us, \
     backoff_multiplier, backoff_max_us, backoff_jitter, run_at, created_at, completed_at, updated_at, error, \
     status_reason, attempts, attempt_count, unmet_dependencies, dependent_count, queue_key, revision) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10, $11, 0, $12, $13, $14, $15, $16, $17, $18, $19, \
     $18, $20, $21, '[]', 0, $22, 0, $23, 1)";

const READY: &str = concatcp!(
    "SELECT queue_key, attempt_count, ",
    COLUMNS,
    " FROM tasks WHERE status = ",
    PENDING,
    " AND task_type = $1 ORDER BY queue_key, id LIMIT $2 FOR UPDATE SKIP LOCKED"
);

/// Every claimed task's lease, written by one statement.
const LEASE_ALL: &str = concatcp!(
    "UPDATE tasks AS task SET status = ",
    RUNNING,
    ", attempt_count = lease.attempt, lease_owner = $2, \
     lease_token = lease.token, lease_deadline = lease.deadline, started_at = $3, progress = NULL, \
     status_reason = lease.reason, attempts = task.attempts || jsonb_build_array(lease.record::jsonb), \
     queue_key = NULL, updated_at = $3, revision = task.revision + 1 \
     FROM unnest($1::uuid[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[]) \
     AS lease(id, attempt, token, deadline, reason, record) WHERE task.id = lease.id"
);

const LEASED: &str = "SELECT id, status, task_type, priority, attempt_count, lease_owner, lease_token, lease_deadline, \
     dependent_count, retry_count, max_retries, timeout_us, started_at, backoff_initial_us, \
     backoff_multiplier, backoff_max_us, backoff_jitter FROM tasks WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// Every closed attempt, written by one statement. `attempts - -1` drops
/// the last attempt, appended again with the fields merged in.
const CLOSE_ALL: &str = "UPDATE tasks AS task SET status = close.status, retry_count = close.retry_count, \
     run_at = COALESCE(close.retry_at, task.run_at), completed_at = close.completed_at, result = close.result, \
     error = close.error, status_reason = close.reason, progress = COALESCE(close.done, task.progress), \
     attempts = (task.attempts - -1) || jsonb_build_array((task.attempts -> -1) || jsonb_build_object(\
     'finished_at', close.now, 'outcome', close.outcome, 'error', close.error, \
     'finished_under', close.machine::jsonb)), \
     lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = close.queue_key, \
     updated_at = close.now, revision = task.revision + 1 \
     FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], \
     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[]) \
     AS close(id, now, status, retry_count, retry_at, completed_at, result, error, reason, done, outcome, machine, \
     queue_key) WHERE task.id = close.id";

const CLOSE_ALL_RETURNING: &str = concatcp!(CLOSE_ALL, " RETURNING ", COLUMNS_OF_TASK);

const EXPIRED: &str = concatcp!(
    "SELECT id FROM tasks WHERE status = ",
    RUNNING,
    " AND lease_deadline <= $1 FOR UPDATE SKIP LOCKED"
);

const HELD_BY: &str = concatcp!(
    "SELECT id FROM tasks WHERE status = ",
    RUNNING,
    " AND lease_owner = $1 FOR UPDATE SKIP LOCKED"
);

const DEPENDENTS: &str = "SELECT edge.task_id, edge.required_status, task.status, task.unmet_dependencies, \
     jsonb_array_length(task.dependencies::jsonb), task.run_at, task.priority, task.task_type, \
     task.dependent_count \
     FROM task_dependencies AS edge JOIN tasks AS task ON task.id = edge.task_id \
     WHERE edge.depends_on = $1 ORDER BY edge.task_id FOR UPDATE OF task";

const ONE_LESS: &str = "UPDATE tasks SET unmet_dependencies = $2, status_reason = $3, updated_at = $4, \
     revision = revision + 1 WHERE id = $1";

const PLACE: &str = "UPDATE tasks SET status = $2, unmet_dependencies = 0, status_reason = $3, queue_key = $4, \
     completed_at = $5, error = $6, updated_at = $7, revision = revision + 1 WHERE id = $1";

const CANCEL: &str = concatcp!(
    "UPDATE tasks SET status = ",
    CANCELLED,
    ", completed_at = $2, error = $3, status_reason = $4, \
     attempts = CASE WHEN $5 THEN (attempts - -1) || jsonb_build_array((attempts -> -1) \
     || jsonb_build_object('finished_at', $2::bigint, 'outcome', $6::text)) ELSE attempts END, \
     lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = NULL, \
     updated_at = $2, revision = revision + 1 WHERE id = $1 RETURNING ",
    COLUMNS
);

const DUE: &str = concatcp!(
    "SELECT id, priority, run_at, task_type FROM tasks WHERE status = ",
    SCHEDULED,
    " AND run_at <= $1 ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED"
);

const PROMOTE: &str = concatcp!(
    "UPDATE tasks SET status = ",
    PENDING,
    ", queue_key = $2, status_reason = $3, updated_at = $4, revision = revision + 1 WHERE id = $1"
);

const NEXT_DUE: &str = concatcp!("SELECT MIN(run_at) FROM tasks WHERE status = ", SCHEDULED);

/// `$3` narrows to one status, or is NULL for every ended one.
const FINISHED_BEFORE: &str = concatcp!(
    "SELECT id, task_type, status FROM tasks WHERE completed_at < $1 AND status IN ",
    TERMINAL,
    " AND ($3::bigint IS NULL OR status = $3) LIMIT $2 FOR UPDATE SKIP LOCKED"
);

impl Tx for PgTx<'_, '_> {
    type Error = Failure;

    fn changes(&mut self) -> &mut Changes {
        &mut self.changes
    }

    async fn task_by_idempotency_key(&mut self, key: &str) -> Step<Option<(Option<Fingerprint>, TaskRow)>> {
        let Some(row) = query_opt(self.tx, BY_IDEMPOTENCY_KEY, &[&key]).await? else {
            return Ok(None);
        };
        let stored: Option<i64> = row.try_get(0)?;
        Ok(Some((stored.map(Fingerprint::from_i64), read(&row, 1)?)))
    }

    async fn dependency_status(&mut self, id: TaskId) -> Step<Option<TaskStatus>> {
        let row = query_opt(self.tx, "SELECT status FROM tasks WHERE id = $1 FOR UPDATE", &[&id]).await?;
        match row {
            Some(row) => Ok(Some(parse_status(row.try_get(0)?)?)),
            None => Ok(None),
        }
    }

    async fn insert_task(&mut self, new: &NewRow<'_>) -> Step<()> {
        let task = new.task;
        let policy = &task.retry_policy;
        execute(
            self.tx,
            INSERT,
            &[
                &task.id,
                &task.name,
                &task.task_type,
                &task.priority.code(),
                &task.status.code(),
                &to_json(&task.params),
                &to_json(&task.dependencies),
                &to_json(&task.labels),
                &task.idempotency_key,
                &new.fingerprint.map(Fingerprint::as_i64),
                &i64::from(task.max_retries),
                &micros(task.timeout),
                &micros(policy.initial_backoff),
                &policy.multiplier,
                &micros(policy.max_backoff),
                &policy.jitter,
                &task.run_at.map(Timestamp::as_micros),
                &task.created_at.as_micros(),
                &task.completed_at.map(Timestamp::as_micros),
                &task.error,
                &task.status_reason,
                &new.unmet,
                &new.queue_key,
            ],
        )
        .await?;
        Ok(())
    }

    async fn insert_dependency(&mut self, depends_on: TaskId, task_id: TaskId, required: TaskStatus) -> Step<()> {
        execute(
            self.tx,
            "INSERT INTO task_dependencies (depends_on, task_id, required_status) VALUES ($1, $2, $3)",
            &[&depends_on, &task_id, &required.code()],
        )
        .await?;
        execute(
            self.tx,
            "UPDATE tasks SET dependent_count = dependent_count + 1 WHERE id = $1",
            &[&depends_on],
        )
        .await?;
        Ok(())
    }

    async fn ready(&mut self, task_type: &str, most: usize) -> Step<Vec<(i64, TaskId)>> {
        let rows = query(self.tx, READY, &[&task_type, &(most as i64)]).await?;
        let mut ready = Vec::with_capacity(rows.len());
        for row in &rows {
            let queue_key: i64 = row.try_get(0)?;
            let attempt_count: i64 = row.try_get(1)?;
            let task = read(row, 2)?;
            ready.push((queue_key, task.id));
            self.ready_rows.insert(task.id, (attempt_count, task));
        }
        Ok(ready)
    }

    async fn claimable(&mut self, id: TaskId) -> Step<(i64, TaskRow)> {
        self.ready_rows
            .remove(&id)
            .ok_or_else(|| Failure::Refused(StoreError::Unavailable(format!("task {id} was not found ready"))))
    }

    async fn write_leases(&mut self, leases: &LeaseWrites<'_>) -> Step<()> {
        execute(
            self.tx,
            LEASE_ALL,
            &[
                &leases.ids,
                &leases.executor,
                &leases.now.as_micros(),
                &leases.attempts,
                &leases.tokens,
                &leases.deadlines,
                &leases.reasons,
                &leases.records,
            ],
        )
        .await?;
        Ok(())
    }

    async fn leased(&mut self, ids: &[TaskId]) -> Step<Vec<LeasedTask>> {
        let rows = query(self.tx, LEASED, &[&ids]).await?;
        rows.iter().map(leased_task).collect()
    }

    async fn set_lease_deadline(&mut self, id: TaskId, deadline: Timestamp) -> Step<()> {
        execute(
            self.tx,
            "UPDATE tasks SET lease_deadline = $2 WHERE id = $1",
            &[&id, &deadline.as_micros()],
        )
        .await?;
        Ok(())
    }

    async fn set_progress(&mut self, id: TaskId, progress: &str, now: Timestamp) -> Step<()> {
        self.update_task(
            id,
            "UPDATE tasks SET progress = $2, updated_at = $3, revision = revision + 1 WHERE id = $1",
            &[&id, &progress, &now.as_micros()],
            Event::progress(),
        )
        .await
    }

    async fn close_attempts(&mut self, closes: &[Close]) -> Step<()> {
        let ids: Vec<TaskId> = closes.iter().map(|close| close.id).collect();
        let nows: Vec<i64> = closes.iter().map(|close| close.now.as_micros()).collect();
        let statuses: Vec<i64> = closes.iter().map(|close| close.status.code()).collect();
        let retry_counts: Vec<i64> = closes.iter().map(|close| close.retry_count).collect();
        let retry_ats: Vec<Option<i64>> = closes
            .iter()
            .map(|close| close.retry_at.map(Timestamp::as_micros))
            .collect();
        let completed_ats: Vec<Option<i64>> = closes
            .iter()
            .map(|close| close.completed_at.map(Timestamp::as_micros))
            .collect();
        let results: Vec<Option<&str>> = closes.iter().map(|close| close.result.as_deref()).collect();
        let errors: Vec<Option<&str>> = closes.iter().map(|close| close.error.as_deref()).collect();
        let reasons: Vec<&str> = closes.iter().map(|close| close.reason.as_str()).collect();
        let dones: Vec<Option<&str>> = closes.iter().map(|close| close.done.as_deref()).collect();
        let outcomes: Vec<&str> = closes.iter().map(|close| close.outcome).collect();
        let machines: Vec<Option<&str>> = closes.iter().map(|close| close.machine.as_deref()).collect();
        let queue_keys: Vec<Option<i64>> = closes.iter().map(|close| close.queue_key).collect();
        let params: Params<'_> = &[
            &ids,
            &nows,
            &statuses,
            &retry_counts,
            &retry_ats,
            &completed_ats,
            &results,
            &errors,
            &reasons,
            &dones,
            &outcomes,
            &machines,
            &queue_keys,
        ];
        if !self.changes.wants_row() {
            execute(self.tx, CLOSE_ALL, params).await?;
            for id in ids {
                self.changes.record_unread(id, CLOSED);
            }
            return Ok(());
        }
        let rows = query(self.tx, CLOSE_ALL_RETURNING, params).await?;
        let mut by_id = HashMap::with_capacity(rows.len());
        for row in &rows {
            let row = read(row, 0)?;
            by_id.insert(row.id, row);
        }
        for id in ids {
            if let Some(row) = by_id.remove(&id) {
                self.changes.record_row(id, CLOSED, || row);
            }
        }
        Ok(())
    }

    async fn expired_leases(&mut self, now: Timestamp) -> Step<Vec<TaskId>> {
        let rows = query(self.tx, EXPIRED, &[&now.as_micros()]).await?;
        Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
    }

    async fn leases_held_by(&mut self, executor: &str) -> Step<Vec<TaskId>> {
        let rows = query(self.tx, HELD_BY, &[&executor]).await?;
        Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
    }

    async fn dependents(&mut self, id: TaskId) -> Step<Vec<Dependent>> {
        let rows = query(self.tx, DEPENDENTS, &[&id]).await?;
        rows.iter()
            .map(|row| {
                Ok(Dependent {
                    id: row.try_get(0)?,
                    required_status: parse_status(row.try_get(1)?)?,
                    status: parse_status(row.try_get(2)?)?,
                    unmet: row.try_get(3)?,
                    total: i64::from(row.try_get::<_, i32>(4)?),
                    run_at: row.try_get::<_, Option<i64>>(5)?.map(Timestamp),
                    priority: parse_priority(row.try_get(6)?)?,
                    task_type: row.try_get(7)?,
                    dependent_count: row.try_get(8)?,
                })
            })
            .collect()
    }

    async fn count_dependency_met(&mut self, id: TaskId, unmet: i64, reason: &str, now: Timestamp) -> Step<()> {
        self.update_task(
            id,
            ONE_LESS,
            &[&id, &unmet, &reason, &now.as_micros()],
            Event::status_changed(TaskStatus::Waiting),
        )
        .await
    }

    async fn place_waiting(&mut self, placed: &Placed<'_>) -> Step<()> {
        self.update_task(
            placed.id,
            PLACE,
            &[
                &placed.id,
                &placed.status.code(),
                &placed.reason,
                &placed.queue_key,
                &placed.completed_at.map(Timestamp::as_micros),
                &placed.error,
                &placed.now.as_micros(),
            ],
            Event::status_changed(TaskStatus::Waiting),
        )
        .await
    }

    async fn cancel(&mut self, cancel: &CancelWrite<'_>) -> Step<Option<TaskRow>> {
        let row = query_opt(
            self.tx,
            CANCEL,
            &[
                &cancel.id,
                &cancel.now.as_micros(),
                &cancel.error,
                &cancel.reason,
                &cancel.was_running,
                &cancel.outcome,
            ],
        )
        .await?;
        match row {
            Some(row) => Ok(Some(read(&row, 0)?)),
            None => Ok(None),
        }
    }

    async fn due(&mut self, now: Timestamp, most: i64) -> Step<Vec<DueTask>> {
        let rows = query(self.tx, DUE, &[&now.as_micros(), &most]).await?;
        rows.iter()
            .map(|row| {
                Ok(DueTask {
                    id: row.try_get(0)?,
                    priority: parse_priority(row.try_get(1)?)?,
                    run_at: Timestamp(row.try_get(2)?),
                    task_type: row.try_get(3)?,
                })
            })
            .collect()
    }

    async fn promote(&mut self, id: TaskId, queue_key: Option<i64>, reason: &str, now: Timestamp) -> Step<()> {
        self.update_task(
            id,
            PROMOTE,
            &[&id, &queue_key, &reason, &now.as_micros()],
            Event::status_changed(TaskStatus::Scheduled),
        )
        .await
    }

    async fn next_due(&mut self) -> Step<Option<Timestamp>> {
        let rows = query(self.tx, NEXT_DUE, &[]).await?;
        let next: Option<i64> = match rows.first() {
            Some(row) => row.try_get(0)?,
            None => None,
        };
        Ok(next.map(Timestamp))
    }

    async fn finished_before(
        &mut self,
        status: Option<TaskStatus>,
        cutoff: Timestamp,
        most: usize,
    ) -> Step<Vec<(TaskId, String, TaskStatus)>> {
        let status = status.map(TaskStatus::code);
        let rows = query(
            self.tx,
            FINISHED_BEFORE,
            &[&cutoff.as_micros(), &(most as i64), &status],
        )
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, parse_status(row.try_get(2)?)?)))
            .collect()
    }

    async fn delete_tasks(&mut self, ids: &[TaskId]) -> Step<()> {
        for sql in [
            "DELETE FROM tasks WHERE id = ANY($1)",
            "DELETE FROM task_dependencies WHERE task_id = ANY($1)",
            "DELETE FROM task_dependencies WHERE depends_on = ANY($1)",
        ] {
            execute(self.tx, sql, &[&ids]).await?;
        }
        Ok(())
    }

    async fn count_task_types(&mut self, names: &[String]) -> Step<(usize, usize)> {
        // Nodes declaring at once count one after the other.
        execute(self.tx, "LOCK TABLE task_types IN SHARE ROW EXCLUSIVE MODE", &[]).await?;
        let row = query_opt(
            self.tx,
            "SELECT (SELECT COUNT(*) FROM task_types), \
             (SELECT COUNT(*) FROM unnest($1::text[]) AS name WHERE name NOT IN (SELECT name FROM task_types))",
            &[&names],
        )
        .await?
        .ok_or_else(|| Failure::Refused(StoreError::Corrupt("no count of task types".into())))?;
        let declared = usize::try_from(row.try_get::<_, i64>(0)?).unwrap_or(usize::MAX);
        let new = usize::try_from(row.try_get::<_, i64>(1)?).unwrap_or(usize::MAX);
        Ok((declared, new))
    }

    async fn upsert_task_types(&mut self, names: &[String], now: Timestamp) -> Step<()> {
        execute(
            self.tx,
            "INSERT INTO task_types (name, declared_at) SELECT name, $2 FROM unnest($1::text[]) AS name \
             ON CONFLICT (name) DO UPDATE SET declared_at = GREATEST(task_types.declared_at, excluded.declared_at)",
            &[&names, &now.as_micros()],
        )
        .await?;
        Ok(())
    }

    async fn delete_task_types(&mut self, which: &ForgetTaskTypes) -> Step<Vec<String>> {
        let rows = match which {
            ForgetTaskTypes::Named(name) => {
                query(
                    self.tx,
                    "DELETE FROM task_types WHERE name = $1 RETURNING name",
                    &[name],
                )
                .await?
            }
            ForgetTaskTypes::DeclaredBefore { cutoff, keep } => {
                query(
                    self.tx,
                    "DELETE FROM task_types WHERE declared_at < $1 AND NOT (name = ANY($2)) RETURNING name",
                    &[&cutoff.as_micros(), keep],
                )
                .await?
            }
        };
        Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
    }

    async fn schedule(&mut self, name: &str) -> Step<Option<String>> {
        let row = query_opt(
            self.tx,
            "SELECT body FROM schedules WHERE name = $1 FOR UPDATE",
            &[&name],
        )
        .await?;
        match row {
            Some(row) => Ok(Some(row.try_get(0)?)),
            None => Ok(None),
        }
    }

    async fn write_schedule(&mut self, row: &ScheduleRow<'_>) -> Step<()> {
        execute(
            self.tx,
            "INSERT INTO schedules (name, next_fire, paused, revision, body) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET next_fire = excluded.next_fire, paused = excluded.paused, \
             revision = excluded.revision, body = excluded.body",
            &[
                &row.name,
                &row.next_fire.map(Timestamp::as_micros),
                &row.paused,
                &row.revision,
                &row.body,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_schedule(&mut self, name: &str) -> Step<bool> {
        Ok(execute(self.tx, "DELETE FROM schedules WHERE name = $1", &[&name]).await? > 0)
    }

    async fn touch_health(&mut self, now: Timestamp) -> Step<()> {
        execute(
            self.tx,
            "UPDATE health SET checked_at = $1 WHERE id = 1",
            &[&now.as_micros()],
        )
        .await?;
        Ok(())
    }
}

/// The lease-deciding facts from a row of [`LEASED`].
fn leased_task(row: &Row) -> Step<LeasedTask> {
    let lease_token: Option<i64> = row.try_get(6)?;
    let lease_deadline: Option<i64> = row.try_get(7)?;
    let started_at: Option<i64> = row.try_get(12)?;
    Ok(LeasedTask {
        id: row.try_get(0)?,
        status: parse_status(row.try_get(1)?)?,
        task_type: row.try_get(2)?,
        priority: parse_priority(row.try_get(3)?)?,
        lease_owner: row.try_get(5)?,
        lease_token: lease_token.map(LeaseToken::from_i64),
        lease_deadline: lease_deadline.map(Timestamp),
        dependent_count: row.try_get(8)?,
        facts: AttemptFacts {
            attempt: u32::try_from(row.try_get::<_, i64>(4)?).unwrap_or(0),
            retry_count: u32::try_from(row.try_get::<_, i64>(9)?).unwrap_or(0),
            max_retries: u32::try_from(row.try_get::<_, i64>(10)?).unwrap_or(0),
            retry_policy: RetryPolicy {
                initial_backoff: duration(row.try_get(13)?),
                multiplier: row.try_get(14)?,
                max_backoff: duration(row.try_get(15)?),
                jitter: row.try_get(16)?,
            },
            timeout: duration(row.try_get(11)?),
            started_at: Timestamp(started_at.unwrap_or(0)),
        },
    })
}
