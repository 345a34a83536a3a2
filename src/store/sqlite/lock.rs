//! One process per database: the store holds an exclusive lock on a file
//! beside the database for as long as it is open. SQLite's own locks only
//! order transactions; they would let a second taskd run every task again.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// Held while the store is open; released when dropped (or when the process
/// dies, which is what makes a crashed server's data dir usable again).
#[derive(Debug)]
pub struct OwnerLock {
    _file: File,
}

pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.file_name().map(|name| name.to_os_string()).unwrap_or_default();
    name.push(".lock");
    database.with_file_name(name)
}

impl OwnerLock {
    /// Takes the lock of `database`, or says which process holds it.
    pub fn acquire(database: &Path) -> Result<Self, StoreError> {
        let path = lock_path(database);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| StoreError::Unavailable(format!("cannot open lock file {}: {error}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("another process ({holder})")
                };
                return Err(StoreError::Unavailable(format!(
                    "database {} is in use by {who}; one taskd owns a data dir at a time",
                    database.display()
                )));
            }
            Err(TryLockError::Error(error)) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot lock {}: {error}",
                    path.display()
                )));
            }
        }
        // Say who holds it, for the message a second process prints.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "pid {}", std::process::id());
        let _ = file.flush();
        Ok(OwnerLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("taskd.db");
        let first = OwnerLock::acquire(&database).expect("first owner");
        let refused = OwnerLock::acquire(&database).expect_err("second owner refused");
        let message = refused.to_string();
        assert!(message.contains("in use by another process (pid "), "{message}");
        drop(first);
        OwnerLock::acquire(&database).expect("free again");
    }
}
