//! The store conformance suite on PostgreSQL, unchanged: each check in a
//! schema of its own on the database at TASKD_TEST_POSTGRES (default
//! `postgres://postgres@127.0.0.1:5432/test`), so checks run in parallel
//! and again. Schemas of runs older than an hour are dropped as new ones
//! are made.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use taskd::store::postgres::{PostgresStore, PostgresStoreConfig};
use taskd::store::{Store, StoreOptions};

pub fn database_url() -> String {
    std::env::var("TASKD_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A schema name no other check uses: `taskd_test_<seconds>_<random>`.
pub fn fresh_schema() -> String {
    format!(
        "taskd_test_{}_{}",
        now_seconds(),
        taskd::model::TaskId::new().0.simple()
    )
}

/// Drops test schemas left by runs more than an hour old.
async fn drop_stale_schemas(url: &str) {
    let Ok((client, connection)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
        return;
    };
    tokio::spawn(connection);
    let Ok(rows) = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'taskd\\_test\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    let cutoff = now_seconds().saturating_sub(Duration::from_secs(3600).as_secs());
    for row in rows {
        let name: String = row.get(0);
        let made: Option<u64> = name.split('_').nth(2).and_then(|seconds| seconds.parse().ok());
        if made.is_some_and(|made| made < cutoff) {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
}

pub async fn fresh_store() -> Arc<dyn Store> {
    let url = database_url();
    drop_stale_schemas(&url).await;
    let mut config = PostgresStoreConfig::new(url.clone());
    config.schema = Some(fresh_schema());
    config.pool_size = 4;
    let store = PostgresStore::open(config, StoreOptions::default())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is needed at {url} (set TASKD_TEST_POSTGRES to another database; trust or password \
                 in the URL): {error}"
            )
        });
    Arc::new(store)
}

taskd_store_conformance::store_conformance_tests!(fresh_store());

/// On a machine with no PostgreSQL, `./scripts/test.sh` starts one of its
/// own with this script: it must give a database the suite can use, and
/// stop it again.
#[tokio::test(flavor = "multi_thread")]
async fn the_suites_own_postgres_starts_serves_and_stops() {
    let dir = tempfile::tempdir().expect("dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-postgres.sh");
    let started = tokio::task::block_in_place(|| {
        std::process::Command::new(script)
            .args(["start", &dir.path().display().to_string()])
            .output()
            .expect("the script runs")
    });
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let url = String::from_utf8(started.stdout).expect("utf-8").trim().to_string();
    let stop = || {
        std::process::Command::new(script)
            .args(["stop", &dir.path().display().to_string()])
            .output()
            .expect("the script runs")
    };
    let answered = async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let row = client.query_one("SHOW max_connections", &[]).await?;
        Ok::<String, tokio_postgres::Error>(row.get(0))
    }
    .await;
    let stopped = tokio::task::block_in_place(stop);
    let max_connections = answered.unwrap_or_else(|error| panic!("{url}: {error}"));
    assert_eq!(max_connections, "500", "room for the suite's pools");
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    assert!(
        tokio_postgres::connect(&url, tokio_postgres::NoTls).await.is_err(),
        "stopped: {url} no longer answers"
    );
}
