//! The statements of the transitions in SQLite's SQL, run on the writer's
//! connection inside its open transaction. They answer at once: the writer
//! thread runs each transition to completion in one poll.
//!
//! SQLite has no row locks (the writer is alone), so reads that lock in
//! PostgreSQL are plain reads here. Changed rows are read back with a
//! separate select rather than `RETURNING`, which costs SQLite more.

use const_format::concatcp;
use rusqlite::{OptionalExtension, params};

use crate::model::rules::attempts::AttemptFacts;
use crate::model::{Fingerprint, LeaseToken, TaskId, TaskStatus, Timestamp};
use crate::store::changes::{Changes, Event};
use crate::store::columns::status_code::{CANCELLED, COMPLETED, PENDING, RUNNING, SCHEDULED, TERMINAL};
use crate::store::driver::{
    CLOSED, CancelWrite, Close, Dependent, DueTask, LeaseWrites, LeasedTask, NewRow, Placed, ScheduleRow, Tx,
};
use crate::store::sqlite::row::{
    COLUMNS, TaskRow, duration, micros, parse_priority, parse_status, read_retry_policy, read_row, to_json,
};
use crate::store::sqlite::writer::Batch;
use crate::store::{ForgetTaskTypes, StoreError, StoreResult};

impl Batch<'_> {
    /// Runs `sql`, an update of task `id`; when someone watches, reads the
    /// row back as the update left it and records the change.
    fn update_task(&mut self, sql: &str, params: impl rusqlite::Params, id: TaskId, event: Event) -> StoreResult<()> {
        self.connection.prepare_cached(sql)?.execute(params)?;
        if self.changes.wants_row() {
            if let Some(row) = read_row(self.connection, id)? {
                self.changes.record_row(id, event, || row);
            }
        } else {
            self.changes.record_unread(id, event);
        }
        Ok(())
    }
}

const BY_IDEMPOTENCY_KEY: &str = concatcp!(
    "SELECT request_fingerprint, ",
    COLUMNS,
    " FROM tasks WHERE idempotency_key = ?1"
);

const INSERT: &str = "INSERT INTO tasks (id, name, task_type, priority, status, params, dependencies, labels, \
     idempotency_key, request_fingerprint, max_retries, retry_count, timeout_us, backoff_initial_us, \
     backoff_multiplier, backoff_max_us, backoff_jitter, run_at, created_at, completed_at, updated_at, \
     error, status_reason, attempts, attempt_count, unmet_dependencies, dependent_count, queue_key, \
     revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13, ?14, ?15, ?16, ?17, \
     ?18, ?19, ?18, ?20, ?21, '[]', 0, ?22, 0, ?23, 1)";

/// Ready tasks of one type, best first. Only what the index holds: a
/// query that reads whole rows costs several times more, even when it
/// finds none (the common case for most types of most claims).
const READY: &str = concatcp!(
    "SELECT queue_key, id FROM tasks WHERE status = ",
    PENDING,
    " AND task_type = ?1 ORDER BY queue_key, id LIMIT ?2"
);

const CLAIMABLE: &str = concatcp!("SELECT attempt_count, ", COLUMNS, " FROM tasks WHERE id = ?1");

const LEASE: &str = concatcp!(
    "UPDATE tasks SET status = ",
    RUNNING,
    ", attempt_count = ?2, lease_owner = ?3, lease_token = ?4, \
     lease_deadline = ?5, started_at = ?6, progress = NULL, status_reason = ?7, \
     attempts = json_insert(attempts, '$[#]', json(?8)), queue_key = NULL, updated_at = ?6, \
     revision = revision + 1 WHERE id = ?1 AND status = ",
    PENDING
);

const LEASED: &str = "SELECT status, task_type, priority, attempt_count, lease_owner, lease_token, lease_deadline, \
     dependent_count, retry_count, max_retries, timeout_us, started_at, backoff_initial_us, \
     backoff_multiplier, backoff_max_us, backoff_jitter FROM tasks WHERE id = ?1";

const CLOSE: &str = "UPDATE tasks SET status = ?2, retry_count = ?3, run_at = COALESCE(?4, run_at), completed_at = ?5, \
     result = ?6, error = ?7, status_reason = ?8, progress = COALESCE(?9, progress), \
     attempts = json_set(attempts, '$[#-1].finished_at', ?10, '$[#-1].outcome', ?11, \
     '$[#-1].error', ?7, '$[#-1].finished_under', json(?12)), \
     lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = ?13, \
     updated_at = ?10, revision = revision + 1 WHERE id = ?1";

/// Running tasks are found through `tasks_by_status`, whose condition
/// (`status != COMPLETED`) the statement repeats so that SQLite uses it.
const EXPIRED: &str = concatcp!(
    "SELECT id FROM tasks WHERE status = ",
    RUNNING,
    " AND status != ",
    COMPLETED,
    " AND lease_deadline <= ?1"
);

const HELD_BY: &str = concatcp!(
    "SELECT id FROM tasks WHERE status = ",
    RUNNING,
    " AND status != ",
    COMPLETED,
    " AND lease_owner = ?1"
);

const DEPENDENTS: &str = "SELECT edge.task_id, edge.required_status, task.status, task.unmet_dependencies, \
     json_array_length(task.dependencies), task.run_at, task.priority, task.task_type, task.dependent_count \
     FROM task_dependencies AS edge JOIN tasks AS task ON task.id = edge.task_id WHERE edge.depends_on = ?1";

const ONE_LESS: &str = "UPDATE tasks SET unmet_dependencies = ?2, status_reason = ?3, updated_at = ?4, \
     revision = revision + 1 WHERE id = ?1";

const PLACE: &str = "UPDATE tasks SET status = ?2, unmet_dependencies = 0, status_reason = ?3, queue_key = ?4, \
     completed_at = ?5, error = ?6, updated_at = ?7, revision = revision + 1 WHERE id = ?1";

const CANCEL: &str = concatcp!(
    "UPDATE tasks SET status = ",
    CANCELLED,
    ", completed_at = ?2, error = ?3, status_reason = ?4, \
     attempts = CASE WHEN ?5 THEN json_set(attempts, '$[#-1].finished_at', ?2, \
     '$[#-1].outcome', ?6) ELSE attempts END, \
     lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = NULL, \
     updated_at = ?2, revision = revision + 1 WHERE id = ?1"
);

const DUE: &str = concatcp!(
    "SELECT id, priority, run_at, task_type FROM tasks WHERE status = ",
    SCHEDULED,
    " AND run_at <= ?1 ORDER BY run_at LIMIT ?2"
);

const PROMOTE: &str = concatcp!(
    "UPDATE tasks SET status = ",
    PENDING,
    ", queue_key = ?2, status_reason = ?3, updated_at = ?4, revision = revision + 1 WHERE id = ?1"
);

const NEXT_DUE: &str = concatcp!("SELECT MIN(run_at) FROM tasks WHERE status = ", SCHEDULED);

/// `?3` narrows to one status, or is NULL for every ended one.
const FINISHED_BEFORE: &str = concatcp!(
    "SELECT id, task_type, status FROM tasks WHERE completed_at < ?1 AND status IN ",
    TERMINAL,
    " AND (?3 IS NULL OR status = ?3) LIMIT ?2"
);

const DECLARE: &str = "INSERT INTO task_types (name, declared_at) VALUES (?1, ?2) \
    ON CONFLICT (name) DO UPDATE SET declared_at = MAX(declared_at, excluded.declared_at)";

impl Tx for Batch<'_> {
    type Error = StoreError;

    fn changes(&mut self) -> &mut Changes {
        &mut self.changes
    }

    async fn task_by_idempotency_key(&mut self, key: &str) -> StoreResult<Option<(Option<Fingerprint>, TaskRow)>> {
        let found = self
            .connection
            .prepare_cached(BY_IDEMPOTENCY_KEY)?
            .query_row(params![key], |row| {
                Ok((row.get::<_, Option<i64>>(0)?, TaskRow::read(row, 1)?))
            })
            .optional()?;
        Ok(found.map(|(fingerprint, row)| (fingerprint.map(Fingerprint::from_i64), row)))
    }

    async fn dependency_status(&mut self, id: TaskId) -> StoreResult<Option<TaskStatus>> {
        let code: Option<i64> = self
            .connection
            .prepare_cached("SELECT status FROM tasks WHERE id = ?1")?
            .query_row(params![id], |row| row.get(0))
            .optional()?;
        code.map(parse_status).transpose()
    }

    async fn insert_task(&mut self, new: &NewRow<'_>) -> StoreResult<()> {
        let task = new.task;
        let policy = &task.retry_policy;
        self.connection.prepare_cached(INSERT)?.execute(params![
            task.id,
            task.name,
            task.task_type,
            task.priority.code(),
            task.status.code(),
            to_json(&task.params),
            to_json(&task.dependencies),
            to_json(&task.labels),
            task.idempotency_key,
            new.fingerprint.map(Fingerprint::as_i64),
            i64::from(task.max_retries),
            micros(task.timeout),
            micros(policy.initial_backoff),
            policy.multiplier,
            micros(policy.max_backoff),
            policy.jitter,
            task.run_at.map(Timestamp::as_micros),
            task.created_at.as_micros(),
            task.completed_at.map(Timestamp::as_micros),
            task.error,
            task.status_reason,
            new.unmet,
            new.queue_key,
        ])?;
        Ok(())
    }

    async fn insert_dependency(
        &mut self,
        depends_on: TaskId,
        task_id: TaskId,
        required: TaskStatus,
    ) -> StoreResult<()> {
        self.connection
            .prepare_cached("INSERT INTO task_dependencies (depends_on, task_id, required_status) VALUES (?1, ?2, ?3)")?
            .execute(params![depends_on, task_id, required.code()])?;
        self.connection
            .prepare_cached("UPDATE tasks SET dependent_count = dependent_count + 1 WHERE id = ?1")?
            .execute(params![depends_on])?;
        Ok(())
    }

    /// Whether `task_type` had PENDING tasks at the last commit, or this
    /// transaction made some: the counts in memory answer without a query.
    fn may_have_ready(&mut self, task_type: &str) -> bool {
        self.shared.counts.lock().of(task_type, TaskStatus::Pending) > 0
            || self
                .changes
                .transitions
                .iter()
                .any(|transition| transition.to == TaskStatus::Pending && transition.task_type == task_type)
    }

    async fn ready(&mut self, task_type: &str, most: usize) -> StoreResult<Vec<(i64, TaskId)>> {
        let mut statement = self.connection.prepare_cached(READY)?;
        let rows = statement.query_map(params![task_type, most as i64], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    async fn claimable(&mut self, id: TaskId) -> StoreResult<(i64, TaskRow)> {
        Ok(self
            .connection
            .prepare_cached(CLAIMABLE)?
            .query_row(params![id], |row| Ok((row.get::<_, i64>(0)?, TaskRow::read(row, 1)?)))?)
    }

    async fn write_leases(&mut self, leases: &LeaseWrites<'_>) -> StoreResult<()> {
        let mut statement = self.connection.prepare_cached(LEASE)?;
        for (index, id) in leases.ids.iter().enumerate() {
            statement.execute(params![
                id,
                leases.attempts[index],
                leases.executor,
                leases.tokens[index],
                leases.deadlines[index],
                leases.now.as_micros(),
                leases.reasons[index],
                leases.records[index],
            ])?;
        }
        Ok(())
    }

    async fn leased(&mut self, ids: &[TaskId]) -> StoreResult<Vec<LeasedTask>> {
        let mut statement = self.connection.prepare_cached(LEASED)?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let row = statement
                .query_row(params![id], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, Option<i64>>(6)?,
                        row.get::<_, i64>(7)?,
                        row.get::<_, i64>(8)?,
                        row.get::<_, i64>(9)?,
                        row.get::<_, i64>(10)?,
                        row.get::<_, Option<i64>>(11)?,
                        read_retry_policy(row, 12)?,
                    ))
                })
                .optional()?;
            let Some((
                status,
                task_type,
                priority,
                attempt_count,
                lease_owner,
                lease_token,
                lease_deadline,
                dependent_count,
                retry_count,
                max_retries,
                timeout_us,
                started_at,
                retry_policy,
            )) = row
            else {
                continue;
            };
            found.push(LeasedTask {
                id: *id,
                status: parse_status(status)?,
                task_type,
                priority: parse_priority(priority)?,
                lease_owner,
                lease_token: lease_token.map(LeaseToken::from_i64),
                lease_deadline: lease_deadline.map(Timestamp),
                dependent_count,
                facts: AttemptFacts {
                    attempt: u32::try_from(attempt_count).unwrap_or(0),
                    retry_count: u32::try_from(retry_count).unwrap_or(0),
                    max_retries: u32::try_from(max_retries).unwrap_or(0),
                    retry_policy,
                    timeout: duration(timeout_us),
                    started_at: Timestamp(started_at.unwrap_or(0)),
                },
            });
        }
        Ok(found)
    }

    async fn set_lease_deadline(&mut self, id: TaskId, deadline: Timestamp) -> StoreResult<()> {
        self.connection
            .prepare_cached("UPDATE tasks SET lease_deadline = ?2 WHERE id = ?1")?
            .execute(params![id, deadline.as_micros()])?;
        Ok(())
    }

    async fn set_progress(&mut self, id: TaskId, progress: &str, now: Timestamp) -> StoreResult<()> {
        self.update_task(
            "UPDATE tasks SET progress = ?2, updated_at = ?3, revision = revision + 1 WHERE id = ?1",
            params![id, progress, now.as_micros()],
            id,
            Event::progress(),
        )
    }

    async fn close_attempts(&mut self, closes: &[Close]) -> StoreResult<()> {
        for close in closes {
            self.update_task(
                CLOSE,
                params![
                    close.id,
                    close.status.code(),
                    close.retry_count,
                    close.retry_at.map(Timestamp::as_micros),
                    close.completed_at.map(Timestamp::as_micros),
                    close.result,
                    close.error,
                    close.reason,
                    close.done,
                    close.now.as_micros(),
                    close.outcome,
                    close.machine,
                    close.queue_key,
                ],
                close.id,
                CLOSED,
            )?;
        }
        Ok(())
    }

    async fn expired_leases(&mut self, now: Timestamp) -> StoreResult<Vec<TaskId>> {
        let mut statement = self.connection.prepare_cached(EXPIRED)?;
        let ids = statement.query_map(params![now.as_micros()], |row| row.get(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    }

    async fn leases_held_by(&mut self, executor: &str) -> StoreResult<Vec<TaskId>> {
        let mut statement = self.connection.prepare_cached(HELD_BY)?;
        let ids = statement.query_map(params![executor], |row| row.get(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    }

    async fn dependents(&mut self, id: TaskId) -> StoreResult<Vec<Dependent>> {
        let mut statement = self.connection.prepare_cached(DEPENDENTS)?;
        let rows = statement.query_map(params![id], |row| {
            Ok((
                row.get::<_, TaskId>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<i64>>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, String>(7)?,
                row.get::<_, i64>(8)?,
            ))
        })?;
        let mut dependents = Vec::new();
        for row in rows {
            let (id, required, status, unmet, total, run_at, priority, task_type, dependent_count) = row?;
            dependents.push(Dependent {
                id,
                required_status: parse_status(required)?,
                status: parse_status(status)?,
                unmet,
                total,
                run_at: run_at.map(Timestamp),
                priority: parse_priority(priority)?,
                task_type,
                dependent_count,
            });
        }
        Ok(dependents)
    }

    async fn count_dependency_met(&mut self, id: TaskId, unmet: i64, reason: &str, now: Timestamp) -> StoreResult<()> {
        self.update_task(
            ONE_LESS,
            params![id, unmet, reason, now.as_micros()],
            id,
            Event::status_changed(TaskStatus::Waiting),
        )
    }

    async fn place_waiting(&mut self, placed: &Placed<'_>) -> StoreResult<()> {
        self.update_task(
            PLACE,
            params![
                placed.id,
                placed.status.code(),
                placed.reason,
                placed.queue_key,
                placed.completed_at.map(Timestamp::as_micros),
                placed.error,
                placed.now.as_micros(),
            ],
            placed.id,
            Event::status_changed(TaskStatus::Waiting),
        )
    }

    async fn cancel(&mut self, cancel: &CancelWrite<'_>) -> StoreResult<Option<TaskRow>> {
        self.connection.prepare_cached(CANCEL)?.execute(params![
            cancel.id,
            cancel.now.as_micros(),
            cancel.error,
            cancel.reason,
            cancel.was_running,
            cancel.outcome,
        ])?;
        read_row(self.connection, cancel.id)
    }

    async fn due(&mut self, now: Timestamp, most: i64) -> StoreResult<Vec<DueTask>> {
        let mut statement = self.connection.prepare_cached(DUE)?;
        let rows = statement.query_map(params![now.as_micros(), most], |row| {
            Ok((
                row.get::<_, TaskId>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        let mut due = Vec::new();
        for row in rows {
            let (id, priority, run_at, task_type) = row?;
            due.push(DueTask {
                id,
                priority: parse_priority(priority)?,
                run_at: Timestamp(run_at),
                task_type,
            });
        }
        Ok(due)
    }

    async fn promote(&mut self, id: TaskId, queue_key: Option<i64>, reason: &str, now: Timestamp) -> StoreResult<()> {
        self.update_task(
            PROMOTE,
            params![id, queue_key, reason, now.as_micros()],
            id,
            Event::status_changed(TaskStatus::Scheduled),
        )
    }

    async fn next_due(&mut self) -> StoreResult<Option<Timestamp>> {
        let next: Option<i64> = self
            .connection
            .prepare_cached(NEXT_DUE)?
            .query_row([], |row| row.get(0))?;
        Ok(next.map(Timestamp))
    }

    async fn finished_before(
        &mut self,
        status: Option<TaskStatus>,
        cutoff: Timestamp,
        most: usize,
    ) -> StoreResult<Vec<(TaskId, String, TaskStatus)>> {
        let mut statement = self.connection.prepare_cached(FINISHED_BEFORE)?;
        let status = status.map(TaskStatus::code);
        let rows = statement.query_map(params![cutoff.as_micros(), most as i64, status], |row| {
            Ok((
                row.get::<_, TaskId>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (id, task_type, status) = row?;
            found.push((id, task_type, parse_status(status)?));
        }
        Ok(found)
    }

    async fn delete_tasks(&mut self, ids: &[TaskId]) -> StoreResult<()> {
        for id in ids {
            for sql in [
                "DELETE FROM tasks WHERE id = ?1",
                "DELETE FROM task_dependencies WHERE task_id = ?1",
                "DELETE FROM task_dependencies WHERE depends_on = ?1",
            ] {
                self.connection.prepare_cached(sql)?.execute(params![id])?;
            }
        }
        Ok(())
    }

    async fn count_task_types(&mut self, names: &[String]) -> StoreResult<(usize, usize)> {
        let declared: i64 = self
            .connection
            .prepare_cached("SELECT COUNT(*) FROM task_types")?
            .query_row([], |row| row.get(0))?;
        let mut exists = self
            .connection
            .prepare_cached("SELECT 1 FROM task_types WHERE name = ?1")?;
        let mut new = 0;
        for name in names {
            if !exists.exists(params![name])? {
                new += 1;
            }
        }
        Ok((usize::try_from(declared).unwrap_or(usize::MAX), new))
    }

    async fn upsert_task_types(&mut self, names: &[String], now: Timestamp) -> StoreResult<()> {
        let mut statement = self.connection.prepare_cached(DECLARE)?;
        for name in names {
            statement.execute(params![name, now.as_micros()])?;
        }
        Ok(())
    }

    async fn delete_task_types(&mut self, which: &ForgetTaskTypes) -> StoreResult<Vec<String>> {
        let forgotten = match which {
            ForgetTaskTypes::Named(name) => self
                .connection
                .prepare_cached("DELETE FROM task_types WHERE name = ?1 RETURNING name")?
                .query_map(params![name], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?,
            ForgetTaskTypes::DeclaredBefore { cutoff, keep } => {
                let keep = serde_json::to_string(keep).map_err(|error| StoreError::Corrupt(error.to_string()))?;
                self.connection
                    .prepare_cached(
                        "DELETE FROM task_types WHERE declared_at < ?1 \
                         AND name NOT IN (SELECT value FROM json_each(?2)) RETURNING name",
                    )?
                    .query_map(params![cutoff.as_micros(), keep], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?
            }
        };
        Ok(forgotten)
    }

    async fn touch_health(&mut self, now: Timestamp) -> StoreResult<()> {
        self.connection
            .prepare_cached("UPDATE health SET checked_at = ?1 WHERE id = 1")?
            .execute(params![now.as_micros()])?;
        Ok(())
    }

    async fn schedule(&mut self, name: &str) -> StoreResult<Option<String>> {
        Ok(self
            .connection
            .prepare_cached("SELECT body FROM schedules WHERE name = ?1")?
            .query_row(params![name], |row| row.get(0))
            .optional()?)
    }

    async fn write_schedule(&mut self, row: &ScheduleRow<'_>) -> StoreResult<()> {
        self.connection
            .prepare_cached(
                "INSERT INTO schedules (name, next_fire, paused, revision, body) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (name) DO UPDATE SET next_fire = excluded.next_fire, paused = excluded.paused, \
                 revision = excluded.revision, body = excluded.body",
            )?
            .execute(params![
                row.name,
                row.next_fire.map(Timestamp::as_micros),
                row.paused,
                row.revision,
                row.body
            ])?;
        Ok(())
    }

    async fn delete_schedule(&mut self, name: &str) -> StoreResult<bool> {
        let deleted = self
            .connection
            .prepare_cached("DELETE FROM schedules WHERE name = ?1")?
            .execute(params![name])?;
        Ok(deleted > 0)
    }
}

/// Runs a transition on the writer's connection to its end. SQLite's
/// statements never wait, so one poll finishes it.
pub fn run_now<T>(transition: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let mut transition = std::pin::pin!(transition);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match transition.as_mut().poll(&mut context) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => Err(StoreError::Unavailable(
            "a SQLite statement waited, which it never does".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite makes for `sql` on a database of the current schema.
    fn plan(sql: &str) -> String {
        let mut connection = rusqlite::Connection::open_in_memory().expect("an in-memory database");
        crate::store::sqlite::schema::migrate(&mut connection, &Default::default()).expect("the schema");
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("a statement SQLite can plan");
        let count = statement.parameter_count();
        let values: Vec<rusqlite::types::Value> = (0..count).map(|_| rusqlite::types::Value::Null).collect();
        let rows = statement
            .query_map(rusqlite::params_from_iter(values), |row| row.get::<_, String>(3))
            .expect("a plan");
        rows.map(|row| row.expect("a plan row")).collect::<Vec<_>>().join("; ")
    }

    /// The partial indexes were created with status numbers written out
    /// (migrations are history); the statements spell statuses through
    /// `TaskStatus`. SQLite uses a partial index only when the statement
    /// implies its condition, so a status code that drifted from the one
    /// the index names would show here as a scan.
    #[test]
    fn the_hot_statements_use_the_partial_indexes_their_status_codes_name() {
        for (name, sql, index) in [
            ("ready", READY, "tasks_ready"),
            ("due", DUE, "tasks_due"),
            ("next due", NEXT_DUE, "tasks_due"),
            ("expired leases", EXPIRED, "tasks_by_status"),
            ("leases held by", HELD_BY, "tasks_by_status"),
        ] {
            let plan = plan(sql);
            assert!(
                plan.contains(index),
                "{name} should use {index}, but SQLite plans: {plan}"
            );
        }
    }
}
