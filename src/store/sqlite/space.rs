//! Returning the space of deleted rows to the file system.
//!
//! SQLite keeps the pages of deleted rows in a free list and reuses them,
//! so a purged database stops growing but never shrinks. Databases are
//! created with `auto_vacuum = INCREMENTAL`, which lets the writer hand free
//! pages back in bounded steps (`PRAGMA incremental_vacuum(n)` moves n pages
//! off the end of the file), each its own commit, so that submits go on in
//! between. The file shrinks at the next checkpoint.

use rusqlite::Connection;

use crate::store::StoreResult;

/// `PRAGMA auto_vacuum` values.
const AUTO_VACUUM_NONE: i64 = 0;
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// Makes a new, empty database incremental; must come before its first
/// table (SQLite fixes the mode then).
pub fn make_incremental(connection: &Connection) -> StoreResult<()> {
    connection.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
    Ok(())
}

/// What opening found about a database's vacuum mode.
#[derive(Debug, PartialEq, Eq)]
pub enum VacuumMode {
    Incremental,
    /// Created before taskd set the mode, and converted now (a full
    /// `VACUUM`, which rewrote `bytes`).
    Converted {
        bytes: u64,
    },
    /// Created before taskd set the mode and too large to convert while
    /// starting: free pages are reused but the file does not shrink.
    Unconverted {
        bytes: u64,
    },
    /// Another mode (FULL) set by hand: left alone.
    Other(i64),
}

/// Converts a database created without incremental vacuum when it is at
/// most `convert_up_to` bytes: `VACUUM` rewrites the whole file, which takes
/// about a second per few hundred MiB and blocks everything meanwhile.
pub fn ensure_incremental(connection: &Connection, convert_up_to: u64) -> StoreResult<VacuumMode> {
    let mode: i64 = connection.query_row("PRAGMA auto_vacuum", [], |row| row.get(0))?;
    match mode {
        AUTO_VACUUM_INCREMENTAL => Ok(VacuumMode::Incremental),
        AUTO_VACUUM_NONE => {
            let bytes = size_in_bytes(connection)?;
            if bytes > convert_up_to {
                return Ok(VacuumMode::Unconverted { bytes });
            }
            connection.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
            Ok(VacuumMode::Converted { bytes })
        }
        other => Ok(VacuumMode::Other(other)),
    }
}

/// The database's size as its pages count it (the file may hold more
/// until the next checkpoint).
pub fn size_in_bytes(connection: &Connection) -> StoreResult<u64> {
    let pages: i64 = connection.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let page_size: i64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok((pages.max(0) as u64) * (page_size.max(0) as u64))
}

/// Pages on the free list.
pub fn free_pages(connection: &Connection) -> StoreResult<u64> {
    let free: i64 = connection.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    Ok(free.max(0) as u64)
}

/// Returns up to `pages` free pages to the file system (a write: the
/// writer's connection, inside its transaction); how many it returned.
pub fn reclaim(connection: &Connection, pages: u64) -> StoreResult<u64> {
    let before = free_pages(connection)?;
    if before == 0 {
        return Ok(0);
    }
    // The pragma frees one page per step of its statement: step it to the
    // end (a batch would run only its first step).
    let mut statement = connection.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    Ok(before.saturating_sub(free_pages(connection)?))
}
