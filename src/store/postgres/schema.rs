//! The versioned schema. Entry `n` of [`MIGRATIONS`] moves a database from
//! version `n` to `n + 1`. Every node runs them at start, each in a
//! transaction holding an advisory lock, so two nodes starting at once
//! apply each migration once.
//!
//! The same columns as the SQLite backend (times in microseconds, nested
//! parts as JSON), with labels and attempts as `jsonb` so that statements
//! can filter on a label and append or close an attempt in place.

use deadpool_postgres::Object as Client;

use crate::store::StoreError;
use crate::store::postgres::error::database_error;

const MIGRATIONS: &[&str] = &[
    // 1: tasks, their dependency edges, known task types, the health row.
    "CREATE TABLE tasks (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        task_type text NOT NULL,
        priority bigint NOT NULL,
        status bigint NOT NULL,
        params text NOT NULL,
        dependencies text NOT NULL,
        labels jsonb NOT NULL,
        idempotency_key text,
        request_fingerprint bigint,
        max_retries bigint NOT NULL,
        retry_count bigint NOT NULL,
        timeout_us bigint NOT NULL,
        backoff_initial_us bigint NOT NULL,
        backoff_multiplier double precision NOT NULL,
        backoff_max_us bigint NOT NULL,
        backoff_jitter double precision NOT NULL,
        run_at bigint,
        created_at bigint NOT NULL,
        started_at bigint,
        completed_at bigint,
        updated_at bigint NOT NULL,
        progress text,
        result text,
        error text,
        status_reason text NOT NULL,
        attempts jsonb NOT NULL,
        attempt_count bigint NOT NULL,
        unmet_dependencies bigint NOT NULL,
        dependent_count bigint NOT NULL,
        queue_key bigint,
        lease_owner text,
        lease_token bigint,
        lease_deadline bigint,
        revision bigint NOT NULL
    );
    CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE INDEX tasks_by_status ON tasks (status, id) WHERE status != 4;
    CREATE INDEX tasks_by_type ON tasks (task_type, id);
    CREATE INDEX tasks_finished ON tasks (completed_at) WHERE completed_at IS NOT NULL;
    CREATE INDEX tasks_ready ON tasks (task_type, queue_key, id) WHERE status = 1;
    CREATE INDEX tasks_due ON tasks (run_at) WHERE status = 2;
    CREATE INDEX tasks_leased ON tasks (lease_deadline) WHERE status = 3;
    CREATE TABLE task_dependencies (
        depends_on uuid NOT NULL,
        task_id uuid NOT NULL,
        required_status bigint NOT NULL,
        PRIMARY KEY (depends_on, task_id)
    );
    CREATE INDEX task_dependencies_by_dependent ON task_dependencies (task_id);
    CREATE TABLE task_types (
        name text PRIMARY KEY,
        declared_at bigint NOT NULL
    );
    CREATE TABLE health (
        id bigint PRIMARY KEY CHECK (id = 1),
        checked_at bigint NOT NULL
    );
    INSERT INTO health (id, checked_at) VALUES (1, 0);",
    // 2: the workers connected to each node, as the node last said (a
    // JSON description), so that every node lists the whole cluster's.
    "CREATE TABLE workers (
        node text NOT NULL,
        worker_id text NOT NULL,
        info text NOT NULL,
        seen_at bigint NOT NULL,
        PRIMARY KEY (node, worker_id)
    );",
    // 3: schedules. The record is JSON; what the scheduler looks up by
    // (the next fire of those not paused) is a column with its index.
    "CREATE TABLE schedules (
        name text PRIMARY KEY,
        next_fire bigint,
        paused boolean NOT NULL,
        revision bigint NOT NULL,
        body text NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (next_fire) WHERE NOT paused;",
];

/// The schema version this taskd migrates a database to.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database (the connection's schema, created if `schema`
/// names one that does not exist) to the newest version. Everything runs in
/// one transaction under an advisory lock on the schema's name: nodes
/// starting together take turns, and the later ones find the work done.
pub async fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), StoreError> {
    let fail = |error: tokio_postgres::Error| database_error(&error);
    let transaction = client.transaction().await.map_err(fail)?;
    let name = schema.unwrap_or("public");
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('taskd_migrations.' || $1))",
            &[&name],
        )
        .await
        .map_err(fail)?;
    if let Some(schema) = schema {
        transaction
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                schema.replace('"', "\"\"")
            ))
            .await
            .map_err(fail)?;
    }
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS taskd_schema_version (version bigint NOT NULL)")
        .await
        .map_err(fail)?;
    let known = MIGRATIONS.len() as i64;
    let version: i64 = match transaction
        .query_opt("SELECT version FROM taskd_schema_version", &[])
        .await
        .map_err(fail)?
    {
        Some(row) => row.get(0),
        None => {
            transaction
                .execute("INSERT INTO taskd_schema_version (version) VALUES (0)", &[])
                .await
                .map_err(fail)?;
            0
        }
    };
    if version > known {
        return Err(StoreError::Unavailable(format!(
            "database schema version {version} is newer than this taskd knows ({known}); upgrade taskd"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        transaction.batch_execute(sql).await.map_err(fail)?;
        transaction
            .execute("UPDATE taskd_schema_version SET version = $1", &[&(index as i64 + 1)])
            .await
            .map_err(fail)?;
        tracing::info!(version = index + 1, "applied schema migration (postgresql)");
    }
    transaction.commit().await.map_err(fail)
}
