//! Group commit of finishes: reports that arrive while a commit is under
//! way are ended together in the next transaction, one commit (and one
//! notice) for all of them. A lone report is committed at once; a busy node
//! commits many per round trip to the disk.
//!
//! Each report is checked before anything is written for it, so one
//! refused (a lost lease) leaves the others alone; a transaction that
//! fails or loses a race to another node is run again whole, or every
//! report in it is told why it failed.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::postgres::driver::PgTx;
use crate::store::postgres::error::Failure;
use crate::store::postgres::{Db, MOST_RUNS, notify};
use crate::store::transition;
use crate::store::{AttemptReport, Finished, StoreError, StoreResult};

/// Most reports ended in one transaction.
const MOST_PER_BATCH: usize = 512;

pub struct FinishRequest {
    pub report: AttemptReport,
    pub reply: oneshot::Sender<StoreResult<Finished>>,
}

pub async fn finish_in_batches(db: Db, mut waiting: mpsc::UnboundedReceiver<FinishRequest>) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MOST_PER_BATCH {
            match waiting.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        // Rows locked in one order by every node's batches: fewer deadlocks.
        batch.sort_by_key(|request| request.report.lease.task_id);
        let answers = finish_batch(&db, &batch).await;
        for (request, answer) in batch.into_iter().zip(answers) {
            let _ = request.reply.send(answer);
        }
    }
}

async fn finish_batch(db: &Db, batch: &[FinishRequest]) -> Vec<StoreResult<Finished>> {
    let fail_all = |error: StoreError| batch.iter().map(|_| Err(error.clone())).collect();
    let mut run = 0;
    loop {
        run += 1;
        let mut client = match db.client().await {
            Ok(client) => client,
            Err(error) => return fail_all(error),
        };
        let tx = match client.transaction().await {
            Ok(tx) => tx,
            Err(error) if error.is_closed() && run < MOST_RUNS => continue,
            Err(error) => return fail_all(crate::store::postgres::error::database_error(&error)),
        };
        let reports: Vec<AttemptReport> = batch.iter().map(|request| request.report.clone()).collect();
        let mut driver = PgTx::new(&tx, db.changes());
        let (mut answers, mut failure) = match transition::finish_many(&mut driver, reports).await {
            Ok(answers) => (answers, None),
            Err(failure) => (Vec::new(), Some(failure)),
        };
        let changes = driver.into_changes();
        if failure.is_none()
            && let Err(error) = notify::send(&tx, &db.channel, &db.node, &changes).await
        {
            failure = Some(error);
        }
        let (failure, before_commit) = match failure {
            Some(failure) => {
                drop(tx);
                (failure, true)
            }
            None => {
                let ticket = db.publisher.ticket();
                match tx.commit().await {
                    Ok(()) => {
                        ticket.publish(changes);
                        return std::mem::take(&mut answers);
                    }
                    Err(error) => (Failure::Database(error), false),
                }
            }
        };
        let again = failure.is_race() || (before_commit && failure.is_closed_connection());
        if again && run < MOST_RUNS {
            tokio::time::sleep(Duration::from_millis(u64::from(run) * rand::random_range(1..5))).await;
            continue;
        }
        return fail_all(failure.into_store_error());
    }
}
