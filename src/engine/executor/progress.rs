//! Progress reports of a running attempt, written under its lease. A
//! handler may report in a tight loop; only the latest report is worth
//! writing, so reports coalesce while one is being written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::engine::handler::ProgressSink;
use crate::model::{Clock, LeaseRef, Progress};
use crate::store::{Store, StoreError};

/// Writes the progress of one attempt; what its handler reports to.
pub struct ProgressWriter(Arc<Pending>);

struct Pending {
    store: Arc<dyn Store>,
    clock: Clock,
    lease: LeaseRef,
    latest: Mutex<Option<Progress>>,
    writing: AtomicBool,
}

impl ProgressWriter {
    pub fn new(store: Arc<dyn Store>, clock: Clock, lease: LeaseRef) -> Self {
        ProgressWriter(Arc::new(Pending {
            store,
            clock,
            lease,
            latest: Mutex::new(None),
            writing: AtomicBool::new(false),
        }))
    }
}

impl ProgressSink for ProgressWriter {
    fn report(&self, progress: Progress) {
        *self.0.latest.lock() = Some(progress);
        if !self.0.writing.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.0.clone().write_latest());
        }
    }
}

impl Pending {
    /// Writes the latest report until none is left.
    async fn write_latest(self: Arc<Self>) {
        loop {
            let next = self.latest.lock().take();
            match next {
                Some(progress) => match self.store.record_progress(self.lease, progress, self.clock.now()).await {
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
