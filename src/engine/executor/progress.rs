//! Progress reports of a running attempt, written under its lease. A
//! handler may report in a tight loop; only the latest report is worth
//! writing, so reports coalesce while one is being written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::engine::handler::ProgressSink;
use crate::model::{LeaseRef, Progress, Timestamp};
use crate::store::{Store, StoreError};

pub struct ProgressWriter {
    store: Arc<dyn Store>,
    lease: LeaseRef,
    latest: Mutex<Option<Progress>>,
    writing: AtomicBool,
}

impl ProgressWriter {
    pub fn new(store: Arc<dyn Store>, lease: LeaseRef) -> Arc<Self> {
        Arc::new(ProgressWriter {
            store,
            lease,
            latest: Mutex::new(None),
            writing: AtomicBool::new(false),
        })
    }

    /// Writes the latest report until none is left.
    async fn write_latest(self: Arc<Self>) {
        loop {
            let next = self.latest.lock().take();
            match next {
                Some(progress) => match self.store.record_progress(self.lease, progress, Timestamp::now()).await {
                    Ok(()) | Err(StoreError::LeaseLost { .. }) => {}
                    Err(error) => {
                        tracing::debug!(task_id = %self.lease.task_id, %error, "progress not recorded");
                    }
                },
                None => {
                    self.writing.store(false, Ordering::Release);
                    // A report that came in after the take above, before the
                    // flag was cleared, is written by this loop.
                    if self.latest.lock().is_none() || self.writing.swap(true, Ordering::AcqRel) {
                        return;
                    }
                }
            }
        }
    }
}

/// The sink handlers report to.
pub struct ProgressSinkHandle(pub Arc<ProgressWriter>);

impl ProgressSink for ProgressSinkHandle {
    fn report(&self, progress: Progress) {
        *self.0.latest.lock() = Some(progress);
        if !self.0.writing.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.0.clone().write_latest());
        }
    }
}
