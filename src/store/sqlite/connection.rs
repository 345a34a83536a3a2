//! Opening connections the way every part of the store needs them.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;
use crate::store::sqlite::config::{SqliteStoreConfig, Synchronous};

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

/// More than the statements the store uses, reads and writes together.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// A connection for reads only: SQLite refuses any write on it. Only the
/// writer writes; a reader that wrote (ANALYZE, say) would take the write
/// lock from under the writer's transactions, which then fail as "database
/// is locked".
pub fn open_read_connection(path: &Path, config: &SqliteStoreConfig) -> Result<Connection, StoreError> {
    let connection = open_connection(path, config)?;
    connection.execute_batch("PRAGMA query_only = ON;")?;
    Ok(connection)
}

pub fn open_connection(path: &Path, config: &SqliteStoreConfig) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let synchronous = match config.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    connection.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16384;
         PRAGMA journal_size_limit = 67108864;"
    ))?;
    // journal_size_limit: after a checkpoint the write-ahead log is cut
    // back to 64 MiB, so one burst does not leave a large file for good.
    // Every operation's statements stay prepared: past the default of 16,
    // the cache would evict and parse SQL again on the hot path.
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(connection)
}
