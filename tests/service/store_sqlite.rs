//! The store conformance suite on the embedded SQLite backend, each check on
//! a fresh database file.

use std::sync::Arc;

use taskd::store::{SqliteStore, SqliteStoreConfig, Store, StoreOptions, Synchronous};

/// A new database file's path.
fn fresh_path() -> std::path::PathBuf {
    // Under cargo's per-target scratch dir, which outlives each test.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-conformance");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(format!("{}.db", taskd::model::TaskId::new()))
}

async fn fresh_store() -> Arc<dyn Store> {
    open(fresh_path())
}

fn open(path: std::path::PathBuf) -> Arc<dyn Store> {
    // Durability is the crash tests' subject; the contract is the same
    // without an fsync per commit, and much faster to check.
    let config = SqliteStoreConfig {
        synchronous: Synchronous::Normal,
        ..SqliteStoreConfig::default()
    };
    Arc::new(SqliteStore::open(path, config, StoreOptions::default()).expect("store opens"))
}

taskd_store_conformance::store_conformance_tests!(fresh_store());

/// taskd's own reads and housekeeping must never make a write fail: a
/// reader that wrote (`PRAGMA optimize` analyzing tables) took the write
/// lock from under the writer's transactions ("database is locked").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_while_tasks_are_claimed_and_finished_fails_no_write() {
    use taskd_store_conformance::{at, claim, draft, finish, submit, success};
    let store = fresh_store().await;
    let housekeeping = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                store.optimize().await.expect("optimize succeeds");
                tokio::task::yield_now().await;
            }
        })
    };
    for round in 0..200 {
        let now = at(f64::from(round));
        submit(&store, vec![draft("a"), draft("b"), draft("c")], now).await;
        for claimed in claim(&store, "x", &["a", "b", "c"], 3, now).await {
            finish(&store, &claimed.lease, success(), now)
                .await
                .unwrap_or_else(|error| panic!("round {round}: a finish failed: {error}"));
        }
    }
    housekeeping.await.expect("housekeeping ran");
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|metadata| metadata.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_space_goes_back_to_the_file_system_in_steps() {
    use taskd_store_conformance::{at, claim, draft, finish, submit, success};
    let path = fresh_path();
    let store = open(path.clone());
    let bulky = "x".repeat(4096);
    for round in 0..10 {
        let now = at(f64::from(round));
        let drafts = (0..200)
            .map(|_| {
                let mut task = draft("a");
                task.params.insert("text".into(), bulky.clone().into());
                task
            })
            .collect();
        submit(&store, drafts, now).await;
        for claimed in claim(&store, "x", &["a"], 200, now).await {
            finish(&store, &claimed.lease, success(), now).await.expect("finished");
        }
    }
    store.optimize().await.expect("checkpointed");
    let full = file_size(&path);
    assert!(full > 8 * 1024 * 1024, "2,000 tasks of 4 KiB: {full} bytes");

    loop {
        let purged = store.purge_finished_before(None, at(100.0), 500).await.expect("purged");
        if !purged.more {
            break;
        }
    }
    let report = store.optimize().await.expect("housekeeping");
    assert!(report.contains("returned"), "{report}");
    let left = file_size(&path);
    assert!(
        left < full / 4,
        "{full} bytes before the purge, {left} after: the space went back ({report})"
    );
}

#[tokio::test]
async fn a_database_from_before_incremental_vacuum_is_converted_when_opened() {
    let path = fresh_path();
    {
        let legacy = rusqlite::Connection::open(&path).expect("created");
        legacy
            .execute_batch("PRAGMA auto_vacuum = NONE; CREATE TABLE notes (text TEXT);")
            .expect("a table fixes the mode");
    }
    let store = open(path.clone());
    store.close().await;
    let reopened = rusqlite::Connection::open(&path).expect("reopened");
    let mode: i64 = reopened
        .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
        .expect("read");
    assert_eq!(mode, 2, "INCREMENTAL");
}
