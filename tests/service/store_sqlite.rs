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

taskd::store_conformance_tests!(fresh_store());
