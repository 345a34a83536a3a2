//! `[store]`: which backend keeps the tasks, and its settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::postgres::PostgresStoreConfig;
use crate::store::{SqliteStoreConfig, Synchronous};

/// Settings of the store, for either backend.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `""` (or `sqlite`): the embedded SQLite file in the data dir.
    /// `postgres://user@host:port/database`: PostgreSQL, shared by every
    /// node pointed at it.
    pub url: String,
    /// SQLite: durability of each commit.
    pub synchronous: Synchronous,
    /// SQLite: most operations in one group commit.
    pub max_writes_per_commit: usize,
    /// SQLite: read connections kept open.
    pub read_connections: usize,
    /// PostgreSQL: connections this node keeps open.
    pub pool_size: usize,
    /// PostgreSQL: longest a statement may run.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// PostgreSQL: longest to wait for a connection before answering
    /// UNAVAILABLE.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// PostgreSQL: the schema of taskd's tables (created if missing).
    pub schema: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let sqlite = SqliteStoreConfig::default();
        let postgres = PostgresStoreConfig::new("");
        StoreConfig {
            url: String::new(),
            synchronous: sqlite.synchronous,
            max_writes_per_commit: sqlite.max_writes_per_commit,
            read_connections: sqlite.read_connections,
            pool_size: postgres.pool_size,
            statement_timeout: postgres.statement_timeout,
            connect_timeout: postgres.connect_timeout,
            schema: "public".to_string(),
        }
    }
}

/// The backend a [`StoreConfig`] names.
pub enum Backend {
    Sqlite(SqliteStoreConfig),
    Postgres(PostgresStoreConfig),
}

impl StoreConfig {
    pub fn backend(&self) -> Result<Backend, String> {
        let url = self.url.trim();
        if url.is_empty() || url == "sqlite" {
            return Ok(Backend::Sqlite(SqliteStoreConfig {
                synchronous: self.synchronous,
                max_writes_per_commit: self.max_writes_per_commit,
                read_connections: self.read_connections,
            }));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(PostgresStoreConfig {
                url: url.to_string(),
                pool_size: self.pool_size,
                statement_timeout: self.statement_timeout,
                connect_timeout: self.connect_timeout,
                schema: Some(self.schema.clone()).filter(|schema| !schema.is_empty()),
                ..PostgresStoreConfig::new(url)
            }));
        }
        Err(format!(
            "store.url: {:?} is neither empty (SQLite in the data dir) nor a postgres:// URL",
            redacted(url)
        ))
    }
}

/// A database URL fit for logs: the password replaced.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_picks_the_backend_and_anything_else_is_refused_naming_it() {
        let mut config = StoreConfig::default();
        assert!(matches!(config.backend(), Ok(Backend::Sqlite(_))));
        config.url = "postgres://taskd@db:5432/tasks".into();
        assert!(matches!(config.backend(), Ok(Backend::Postgres(_))));
        config.url = "mysql://x:secret@db/tasks".into();
        let error = config.backend().err().unwrap_or_default();
        assert!(error.starts_with("store.url:") && !error.contains("secret"), "{error}");
    }

    #[test]
    fn passwords_never_reach_a_log_line() {
        assert_eq!(
            redacted("postgres://taskd:hunter2@db/tasks"),
            "postgres://taskd:***@db/tasks"
        );
        assert_eq!(redacted("postgres://taskd@db/tasks"), "postgres://taskd@db/tasks");
    }
}
