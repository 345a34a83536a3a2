//! Output files that appear whole or not at all.
//!
//! Exports and reports are read by other programs, possibly while a handler
//! is still writing or after it failed half-way. So a handler writes to a
//! hidden temporary file next to the final one and renames it into place
//! only once everything is written and synced: a file under the final name
//! is always complete. A file that is never committed (error, cancellation,
//! the handler dropped after the cancel grace period) is removed on drop.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::engine::handler::HandlerError;

/// A file being written under a temporary name; see the module docs.
pub(crate) struct AtomicFile {
    file: Option<tokio::fs::File>,
    temp_path: PathBuf,
    final_path: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Starts `dir/file_name`, creating `dir` if needed. `attempt` keeps the
    /// temporary names of successive attempts apart.
    pub(crate) async fn create(dir: &Path, file_name: &str, attempt: u32) -> Result<Self, HandlerError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|error| HandlerError::new(format!("cannot create directory {}: {error}", dir.display())))?;
        let final_path = absolute(&dir.join(file_name));
        let temp_path = absolute(&dir.join(format!(".{file_name}.attempt-{attempt}.tmp")));
        let file = tokio::fs::File::create(&temp_path)
            .await
            .map_err(|error| HandlerError::new(format!("cannot create {}: {error}", temp_path.display())))?;
        Ok(AtomicFile {
            file: Some(file),
            temp_path,
            final_path,
            committed: false,
        })
    }

    /// Appends `bytes`.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> Result<(), HandlerError> {
        let Some(file) = self.file.as_mut() else {
            return Err(closed(&self.temp_path));
        };
        file.write_all(bytes)
            .await
            .map_err(|error| io_error("write", &self.temp_path, error))
    }

    /// Syncs the file and moves it to its final name; returns that path.
    pub(crate) async fn commit(mut self) -> Result<PathBuf, HandlerError> {
        let Some(mut file) = self.file.take() else {
            return Err(closed(&self.temp_path));
        };
        file.flush()
            .await
            .map_err(|error| io_error("flush", &self.temp_path, error))?;
        file.sync_all()
            .await
            .map_err(|error| io_error("sync", &self.temp_path, error))?;
        drop(file);
        tokio::fs::rename(&self.temp_path, &self.final_path)
            .await
            .map_err(|error| {
                HandlerError::new(format!(
                    "cannot move {} to {}: {error}",
                    self.temp_path.display(),
                    self.final_path.display()
                ))
            })?;
        self.committed = true;
        Ok(self.final_path.clone())
    }
}

fn closed(path: &Path) -> HandlerError {
    HandlerError::new(format!("{} is already closed", path.display()))
}

fn io_error(action: &str, path: &Path, error: std::io::Error) -> HandlerError {
    HandlerError::new(format!("cannot {action} {}: {error}", path.display()))
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            // Close before removing; a failed removal only leaves a hidden
            // temporary file behind, never a partial file under the final name.
            self.file.take();
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// `path` made absolute against the working directory, for results that
/// name files; unchanged if the working directory is unknown.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_committed_file_appears_under_its_final_name_with_no_temporary_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("out");
        let mut file = AtomicFile::create(&target, "result.txt", 1).await.expect("create");
        file.write_all(b"hello ").await.expect("write");
        file.write_all(b"world").await.expect("write");
        assert!(
            !target.join("result.txt").exists(),
            "nothing under the final name before commit"
        );
        let path = file.commit().await.expect("commit");
        assert!(path.is_absolute());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "hello world");
        let names: Vec<_> = std::fs::read_dir(&target)
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("result.txt")]);
    }

    #[tokio::test]
    async fn an_abandoned_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut file = AtomicFile::create(dir.path(), "result.txt", 2).await.expect("create");
        file.write_all(b"half").await.expect("write");
        drop(file);
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }
}
