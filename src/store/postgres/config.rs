//! Settings of the PostgreSQL store.

use std::time::Duration;

/// Where the database is and how the node talks to it.
#[derive(Clone, Debug)]
pub struct PostgresStoreConfig {
    /// `postgres://user@host:port/database` (libpq's URL form; `options`,
    /// `sslmode` and the rest as libpq reads them).
    pub url: String,
    /// Connections this node keeps open for operations (one more listens
    /// for other nodes' changes).
    pub pool_size: usize,
    /// Longest a statement may run before the database cancels it.
    pub statement_timeout: Duration,
    /// Longest connecting (or waiting for a pooled connection) may take
    /// before an operation answers that the store is unavailable.
    pub connect_timeout: Duration,
    /// The schema the tables live in (created if missing); `None`: the
    /// connection's default (`public`).
    pub schema: Option<String>,
    /// This node's name in the notices it sends (it ignores its own).
    pub node_id: String,
}

impl PostgresStoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresStoreConfig {
            url: url.into(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            schema: None,
            node_id: format!("node-{:08x}", rand::random::<u32>()),
        }
    }
}
