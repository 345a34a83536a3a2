//! The store conformance suite on the embedded SQLite backend, each check on
//! a fresh database file.

use std::sync::Arc;

use taskd::store::{SqliteStore, SqliteStoreConfig, Store, StoreOptions, Synchronous};

async fn fresh_store() -> Arc<dyn Store> {
    // Under cargo's per-target scratch dir, which outlives each test.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-conformance");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(format!("{}.db", taskd::model::TaskId::new()));
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
