//! What the monitor keeps across restarts: the alert history (active alerts
//! included) and the node's history of points and samples, so that the
//! dashboard's charts and `ListAlerts` do not start over at every restart.
//!
//! It is the machine's own record, so it lives in the data dir beside the
//! database (one per node when nodes share PostgreSQL), as one JSON file
//! replaced whole: written to a temporary file, synced, then renamed over
//! the old one, so a crash leaves the old record or the new, never half of
//! one. What happened since the last write is lost with a crash; the
//! history writes it every point and at every alert.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::monitor::alerts::Alert;
use crate::monitor::history_point::HistoryPoint;
use crate::monitor::sample::ResourceSample;

/// The file's name in the data dir.
pub const FILE_NAME: &str = "monitor.json";

/// The format written; a file of another is ignored (with a warning).
const FORMAT: u32 = 1;

/// Everything kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub alerts: Vec<Alert>,
    /// The id the next alert gets: ids are never reused.
    pub next_alert_id: u64,
    pub points: Vec<HistoryPoint>,
    pub samples: Vec<ResourceSample>,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    #[serde(flatten)]
    recorded: Recorded,
}

/// Why the record could not be read or written; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("monitor record {path}: {message}")]
pub struct JournalError {
    path: PathBuf,
    message: String,
}

/// The record of one data dir.
#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn in_dir(data_dir: &Path) -> Self {
        Journal {
            path: data_dir.join(FILE_NAME),
        }
    }

    fn error(&self, message: impl ToString) -> JournalError {
        JournalError {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    /// The last record written; empty when there is none yet.
    pub fn load(&self) -> Result<Recorded, JournalError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Recorded::default()),
            Err(error) => return Err(self.error(error)),
        };
        let file: File = serde_json::from_slice(&text).map_err(|error| self.error(error))?;
        if file.format != FORMAT {
            return Err(self.error(format!("format {} is not {FORMAT}", file.format)));
        }
        Ok(file.recorded)
    }

    /// Replaces the record with `recorded`, whole or not at all.
    pub fn save(&self, recorded: &Recorded) -> Result<(), JournalError> {
        let temporary = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            let body = serde_json::to_vec(&File {
                format: FORMAT,
                recorded: recorded.clone(),
            })?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        };
        write().map_err(|error| {
            let _ = std::fs::remove_file(&temporary);
            self.error(error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;
    use crate::monitor::alerts::Resource;

    #[test]
    fn a_record_reads_back_as_written_and_a_missing_one_as_empty() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = Journal::in_dir(dir.path());
        assert_eq!(journal.load().expect("empty"), Recorded::default());
        let recorded = Recorded {
            alerts: vec![Alert {
                id: 7,
                resource: Resource::Disk,
                value: 93.5,
                peak: 97.0,
                threshold: 90.0,
                started_at: Timestamp(1_000_000),
                ended_at: None,
            }],
            next_alert_id: 8,
            points: Vec::new(),
            samples: Vec::new(),
        };
        journal.save(&recorded).expect("saved");
        assert_eq!(journal.load().expect("read"), recorded);
        assert!(!dir.path().join("monitor.json.tmp").exists());
    }

    #[test]
    fn an_unreadable_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").expect("write");
        let error = Journal::in_dir(dir.path()).load().expect_err("refused");
        assert!(error.to_string().contains("monitor.json"), "{error}");
    }
}
