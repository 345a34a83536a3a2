//! The store conformance suite on the embedded SQLite backend, each check on
//! a fresh database file.

use std::sync::Arc;

use taskd::store::{SqliteStore, SqliteStoreConfig, Store};

fn fresh_store() -> Arc<dyn Store> {
    // Under cargo's per-target scratch dir, which outlives each test.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-conformance");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(format!("{}.db", taskd::engine::TaskId::new()));
    Arc::new(SqliteStore::open(path, SqliteStoreConfig::default()).expect("store opens"))
}

taskd::store_conformance_tests!(fresh_store());
