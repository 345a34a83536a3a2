//! The versioned schema. Entry `n` of [`MIGRATIONS`] moves a database from
//! version `n` to `n + 1`; each runs in its own transaction at open.
//!
//! Every index costs every write that touches it, so there are only those a
//! hot query needs: claims (`tasks_ready`), due times (`tasks_due`), lists by
//! status or type, purges (`tasks_finished`), idempotency keys. RUNNING tasks
//! are few (bounded by the concurrency limits), so rescues find them through
//! `tasks_by_status` without an index of their own. Ids are the UUIDs' 16
//! bytes: every index entry carries one. A query that wants
//! `tasks_by_status` says `status != 4` in so many words: SQLite uses a
//! partial index only when the query repeats its condition.

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::rules::dependencies::{DependencyState, dependency_state, missing_dependency_reason};
use crate::model::rules::placement::{Placement, place_ready};
use crate::model::{SchedulingWeights, TaskDependency, TaskId, Timestamp};
use crate::store::sqlite::row::{parse_priority, parse_status};
use crate::store::{StoreError, StoreResult};

/// One step of the schema's history.
struct Migration {
    sql: &'static str,
    /// Work SQL alone cannot do, in the same transaction, after `sql`.
    then: Option<fn(&Connection, &SchedulingWeights) -> StoreResult<()>>,
}

const MIGRATIONS: &[Migration] = &[
    // 1: tasks, as the single-process design kept them.
    Migration {
        sql: "CREATE TABLE tasks (
            id TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            task_type TEXT NOT NULL,
            priority INTEGER NOT NULL,
            status INTEGER NOT NULL,
            params TEXT NOT NULL,
            dependencies TEXT NOT NULL,
            max_retries INTEGER NOT NULL,
            retry_count INTEGER NOT NULL,
            timeout_us INTEGER NOT NULL,
            run_at INTEGER,
            created_at INTEGER NOT NULL,
            started_at INTEGER,
            completed_at INTEGER,
            progress TEXT,
            result TEXT,
            error TEXT,
            labels TEXT NOT NULL,
            idempotency_key TEXT,
            attempts TEXT NOT NULL,
            retry_policy TEXT NOT NULL,
            status_reason TEXT NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE INDEX tasks_by_status ON tasks (status, id);
        CREATE INDEX tasks_by_type ON tasks (task_type, id);
        CREATE INDEX tasks_finished ON tasks (completed_at) WHERE completed_at IS NOT NULL;",
        then: None,
    },
    // 2: the store decides. Leases, dependency edges, the claim order and
    // what an idempotent repeat must match are stored; ids become 16 bytes
    // and the retry policy plain numbers.
    Migration {
        sql: "CREATE TABLE tasks_next (
            id BLOB PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            task_type TEXT NOT NULL,
            priority INTEGER NOT NULL,
            status INTEGER NOT NULL,
            params TEXT NOT NULL,
            dependencies TEXT NOT NULL,
            labels TEXT NOT NULL,
            idempotency_key TEXT,
            request_fingerprint INTEGER,
            max_retries INTEGER NOT NULL,
            retry_count INTEGER NOT NULL,
            timeout_us INTEGER NOT NULL,
            backoff_initial_us INTEGER NOT NULL,
            backoff_multiplier REAL NOT NULL,
            backoff_max_us INTEGER NOT NULL,
            backoff_jitter REAL NOT NULL,
            run_at INTEGER,
            created_at INTEGER NOT NULL,
            started_at INTEGER,
            completed_at INTEGER,
            updated_at INTEGER NOT NULL,
            progress TEXT,
            result TEXT,
            error TEXT,
            status_reason TEXT NOT NULL,
            attempts TEXT NOT NULL,
            attempt_count INTEGER NOT NULL,
            unmet_dependencies INTEGER NOT NULL,
            dependent_count INTEGER NOT NULL,
            queue_key INTEGER,
            lease_owner TEXT,
            lease_token INTEGER,
            lease_deadline INTEGER,
            revision INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO tasks_next
            SELECT unhex(replace(id, '-', '')), name, task_type, priority, status, params, dependencies,
                labels, idempotency_key, NULL, max_retries, retry_count, timeout_us,
                json_extract(retry_policy, '$.initial_backoff.secs') * 1000000
                    + json_extract(retry_policy, '$.initial_backoff.nanos') / 1000,
                json_extract(retry_policy, '$.multiplier'),
                json_extract(retry_policy, '$.max_backoff.secs') * 1000000
                    + json_extract(retry_policy, '$.max_backoff.nanos') / 1000,
                json_extract(retry_policy, '$.jitter'),
                run_at, created_at, started_at, completed_at, updated_at, progress, result, error,
                status_reason, attempts, json_array_length(attempts), 0, 0, NULL,
                -- The single-process design kept no leases: a task it left
                -- RUNNING belonged to its own executor, which is gone.
                CASE WHEN status = 3 THEN 'local' END,
                CASE WHEN status = 3 THEN 0 END,
                CASE WHEN status = 3 THEN 0 END,
                1
            FROM tasks;
        DROP TABLE tasks;
        ALTER TABLE tasks_next RENAME TO tasks;
        CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        -- COMPLETED, the status most tasks end in, is left out: the index
        -- holds what is still to do and what went wrong, and completing a
        -- task removes its entry instead of moving it. Lists of COMPLETED
        -- tasks walk the table newest first, where nearly every row is one.
        CREATE INDEX tasks_by_status ON tasks (status, id) WHERE status != 4;
        CREATE INDEX tasks_by_type ON tasks (task_type, id);
        CREATE INDEX tasks_finished ON tasks (completed_at) WHERE completed_at IS NOT NULL;
        CREATE INDEX tasks_ready ON tasks (task_type, queue_key, id) WHERE status = 1;
        CREATE INDEX tasks_due ON tasks (run_at) WHERE status = 2;
        CREATE TABLE task_dependencies (
            depends_on BLOB NOT NULL,
            task_id BLOB NOT NULL,
            required_status INTEGER NOT NULL,
            PRIMARY KEY (depends_on, task_id)
        ) WITHOUT ROWID;
        CREATE INDEX task_dependencies_by_dependent ON task_dependencies (task_id);
        INSERT OR IGNORE INTO task_dependencies (depends_on, task_id, required_status)
            SELECT unhex(replace(json_extract(edge.value, '$.task_id'), '-', '')), dependent.id,
                CASE json_extract(edge.value, '$.required_status')
                    WHEN 'FAILED' THEN 5 WHEN 'CANCELLED' THEN 6 ELSE 4 END
            FROM tasks AS dependent, json_each(dependent.dependencies) AS edge
            WHERE EXISTS (SELECT 1 FROM tasks AS dependency
                WHERE dependency.id = unhex(replace(json_extract(edge.value, '$.task_id'), '-', '')));
        UPDATE tasks SET unmet_dependencies = (
                SELECT COUNT(*) FROM task_dependencies AS edge JOIN tasks AS dependency
                    ON dependency.id = edge.depends_on
                WHERE edge.task_id = tasks.id AND dependency.status NOT IN (4, 5, 6))
            WHERE status = 7;
        UPDATE tasks SET dependent_count =
            (SELECT COUNT(*) FROM task_dependencies AS edge WHERE edge.depends_on = tasks.id)
            WHERE id IN (SELECT depends_on FROM task_dependencies);",
        then: Some(place_tasks_of_version_1),
    },
    // 3: task types are known before a task may use them. Types that
    // stored tasks already have were accepted before, and stay known.
    Migration {
        sql: "CREATE TABLE task_types (
            name TEXT PRIMARY KEY NOT NULL,
            declared_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO task_types (name, declared_at)
            SELECT task_type, MIN(created_at) FROM tasks GROUP BY task_type;",
        then: None,
    },
    // 4: one row that readiness checks rewrite: a commit that changes
    // nothing never touches the disk, so only a real write says whether
    // writes still succeed (a full disk fails it).
    Migration {
        sql: "CREATE TABLE health (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            checked_at INTEGER NOT NULL
        );
        INSERT INTO health (id, checked_at) VALUES (1, 0);",
        then: None,
    },
    // 5: schedules. The record is JSON; what the scheduler looks up by
    // (the next fire of those not paused) is a column with its index.
    Migration {
        sql: "CREATE TABLE schedules (
            name TEXT PRIMARY KEY NOT NULL,
            next_fire INTEGER,
            paused INTEGER NOT NULL,
            revision INTEGER NOT NULL,
            body TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX schedules_due ON schedules (next_fire) WHERE paused = 0;",
        then: None,
    },
];

/// Brings a database to the newest schema.
pub fn migrate(connection: &mut Connection, weights: &SchedulingWeights) -> StoreResult<()> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Unavailable(format!(
            "database schema version {version} is newer than this taskd knows ({known}); upgrade taskd"
        )));
    }
    if version == 0 {
        // A new database: its mode is fixed with its first table.
        crate::store::sqlite::space::make_incremental(connection)?;
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration.sql)?;
        if let Some(then) = migration.then {
            then(&transaction, weights)?;
        }
        transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        transaction.commit()?;
        tracing::info!(version = index + 1, "applied schema migration");
    }
    Ok(())
}

/// Version 1 decided dependencies and the run queue in memory: give its
/// PENDING tasks their claim-order key, and place the WAITING ones whose
/// dependencies ended while that memory was lost: cancelled if one ended
/// otherwise than required (or is gone), ready if none is left unmet.
fn place_tasks_of_version_1(connection: &Connection, weights: &SchedulingWeights) -> StoreResult<()> {
    let pending: Vec<(TaskId, i64, i64, Option<i64>, i64)> = {
        let mut statement =
            connection.prepare("SELECT id, priority, created_at, run_at, updated_at FROM tasks WHERE status = 1")?;
        statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    for (id, priority, created_at, run_at, updated_at) in pending {
        let ready_since = Timestamp(run_at.unwrap_or(updated_at).max(created_at));
        let key = weights.queue_key(parse_priority(priority)?, ready_since);
        connection.execute("UPDATE tasks SET queue_key = ?2 WHERE id = ?1", params![id, key])?;
    }

    let waiting: Vec<(TaskId, String, i64, Option<i64>, i64)> = {
        let mut statement = connection
            .prepare("SELECT id, dependencies, priority, run_at, unmet_dependencies FROM tasks WHERE status = 7")?;
        statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    let now = Timestamp::now();
    for (id, dependencies, priority, run_at, unmet) in waiting {
        let dependencies: Vec<TaskDependency> = serde_json::from_str(&dependencies)
            .map_err(|error| StoreError::Corrupt(format!("column dependencies: {error}")))?;
        let mut broken = None;
        for dependency in &dependencies {
            let status: Option<i64> = connection
                .query_row(
                    "SELECT status FROM tasks WHERE id = ?1",
                    params![dependency.task_id],
                    |row| row.get(0),
                )
                .optional()?;
            let state = match status {
                Some(code) => dependency_state(dependency.task_id, parse_status(code)?, dependency.required_status),
                None => DependencyState::Broken {
                    reason: missing_dependency_reason(dependency.task_id),
                },
            };
            if let DependencyState::Broken { reason } = state {
                broken = Some(reason);
                break;
            }
        }
        let placement = match broken {
            Some(reason) => Placement::Cancelled { reason },
            None if unmet == 0 => place_ready(run_at.map(Timestamp), now),
            None => continue,
        };
        let key = placement.queue_key(parse_priority(priority)?, weights);
        let cancelled = placement.status().is_terminal();
        connection.execute(
            "UPDATE tasks SET status = ?2, status_reason = ?3, queue_key = ?4, completed_at = ?5, \
             error = COALESCE(?6, error), updated_at = ?7 WHERE id = ?1",
            params![
                id,
                placement.status().code(),
                placement.reason(),
                key,
                cancelled.then_some(now.as_micros()),
                cancelled.then(|| placement.reason()),
                now.as_micros(),
            ],
        )?;
    }
    Ok(())
}
