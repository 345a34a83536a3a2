//! Settings of the SQLite store (`[store]` in the config file).

use serde::{Deserialize, Serialize};

/// How hard a commit pushes data to disk (SQLite's `synchronous` in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync the WAL on every commit: an acknowledged submit survives a power
    /// loss. The default.
    #[default]
    Full,
    /// No fsync per commit: an acknowledged submit survives a crash of taskd
    /// but the last commits before a power loss or kernel crash may be lost.
    Normal,
}

/// Settings of the SQLite store.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteStoreConfig {
    /// Durability of each commit; see [`Synchronous`].
    pub synchronous: Synchronous,
    /// Most operations applied in one transaction (one group commit).
    pub max_writes_per_commit: usize,
    /// Read connections kept open.
    pub read_connections: usize,
}

impl Default for SqliteStoreConfig {
    fn default() -> Self {
        SqliteStoreConfig {
            synchronous: Synchronous::Full,
            max_writes_per_commit: 4096,
            read_connections: 4,
        }
    }
}
