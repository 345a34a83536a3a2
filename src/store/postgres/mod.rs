//! PostgreSQL: several taskd nodes on one database, which coordinates
//! them (no consensus of taskd's own).
//!
//! Every operation is one transaction on a pooled connection. Rows are
//! locked where a decision depends on them (`FOR UPDATE`), and claims,
//! promotions and rescues skip rows another node holds (`SKIP LOCKED`), so
//! nodes neither take the same task nor wait on each other's claims. A
//! transaction that loses a race (a deadlock, a unique key taken first) is
//! run again, whole. Operations are the shared transitions
//! ([`crate::store::transition`]); `driver.rs` holds their statements in
//! this database's SQL.

mod batch;
mod config;
mod driver;
mod error;
mod notify;
mod publisher;
mod reads;
mod row;
pub mod schema;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::broadcast;
use tokio_postgres::NoTls;

use crate::model::TaskStatus;
use crate::model::schedule::Schedule;
use crate::model::{LeaseRef, Progress, Task, TaskEvent, TaskId, Timestamp, WorkerInfo};
use crate::store::changes::Changes;
use crate::store::columns::from_json;
use crate::store::driver::Tx;
use crate::store::postgres::driver::PgTx;
use crate::store::postgres::error::{Failure, Step, database_error};
use crate::store::postgres::publisher::Publisher;
use crate::store::transition;
use crate::store::{
    AttemptReport, Cancelled, ClaimRequest, Claimed, CommitObserver, Finished, ForgetTaskTypes, ListQuery, Promoted,
    Purged, RenewRequest, Renewed, RescueScope, Rescued, ResyncHook, StatusCount, Store, StoreError, StoreOptions,
    StoreResult, SubmitBatch, Submitted,
};

pub use config::PostgresStoreConfig;

/// How many times an operation that lost a race to another transaction is
/// run again before the error is returned.
pub(crate) const MOST_RUNS: u32 = 8;

/// PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    db: Db,
    config: PostgresStoreConfig,
    /// Finishes wait here to be committed together.
    finishes: tokio::sync::mpsc::UnboundedSender<batch::FinishRequest>,
    remote_observer: Arc<parking_lot::RwLock<Option<CommitObserver>>>,
    resync: Arc<parking_lot::RwLock<Option<ResyncHook>>>,
    stop_listening: tokio_util::sync::CancellationToken,
}

/// Runs `$body` (which may use `$tx`, the transaction's driver) in a
/// transaction: committed and published on success, rolled back on a
/// refusal, and run again from the start when it lost a race.
macro_rules! transact {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store = $store;
        let mut run = 0;
        loop {
            run += 1;
            let mut client = store.db.client().await?;
            let transaction = match client.transaction().await {
                Ok(transaction) => transaction,
                // A pooled connection the database has closed: take another.
                Err(error) if error.is_closed() && run < MOST_RUNS => continue,
                Err(error) => break Err(database_error(&error)),
            };
            let mut driver = PgTx::new(&transaction, store.db.changes());
            let outcome: Step<_> = {
                let $tx = &mut driver;
                async { $body }.await
            };
            let changes = driver.into_changes();
            let outcome = match outcome {
                Ok(value) => notify::send(&transaction, &store.db.channel, &store.db.node, &changes)
                    .await
                    .map(|()| value),
                Err(failure) => Err(failure),
            };
            let (failure, before_commit) = match outcome {
                Ok(value) => {
                    let ticket = store.db.publisher.ticket();
                    match transaction.commit().await {
                        Ok(()) => {
                            ticket.publish(changes);
                            break Ok(value);
                        }
                        Err(error) => (Failure::Database(error), false),
                    }
                }
                Err(failure) => {
                    drop(transaction);
                    (failure, true)
                }
            };
            let again = failure.is_race() || (before_commit && failure.is_closed_connection());
            if again && run < MOST_RUNS {
                tokio::time::sleep(Duration::from_millis(u64::from(run) * rand::random_range(1..5))).await;
                continue;
            }
            break Err(failure.into_store_error());
        }
    }};
}

/// Runs `$body` (which may use `$client`) on a pooled connection outside
/// any transaction (a read sees committed state, one statement): run again
/// on another connection when the one taken was found closed.
macro_rules! read {
    ($store:expr, |$client:ident| $body:expr) => {{
        let store = $store;
        let mut run = 0;
        loop {
            run += 1;
            let $client = store.db.client().await?;
            let outcome: Step<_> = async { $body }.await;
            match outcome {
                Ok(value) => break Ok(value),
                Err(failure) if failure.is_closed_connection() && run < MOST_RUNS => continue,
                Err(failure) => break Err(failure.into_store_error()),
            }
        }
    }};
}

impl PostgresStore {
    /// Connects, creates the schema if asked, and migrates it.
    pub async fn open(config: PostgresStoreConfig, options: StoreOptions) -> StoreResult<Self> {
        let mut pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|error| StoreError::Unavailable(format!("store url: {error}")))?;
        let mut settings = pg.get_options().unwrap_or_default().to_string();
        settings.push_str(&format!(
            " -c statement_timeout={}",
            config.statement_timeout.as_millis().max(1)
        ));
        if let Some(schema) = &config.schema {
            settings.push_str(&format!(" -c search_path={schema}"));
        }
        pg.options(settings.trim());
        pg.connect_timeout(config.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("taskd");
        }
        let listener_config = pg.clone();
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| StoreError::Unavailable(format!("postgresql pool: {error}")))?;
        // Channels are the database's, not a schema's: nodes of another
        // schema (another taskd cluster, a parallel test) must not hear
        // these.
        let channel = format!(
            "taskd_{}",
            config
                .schema
                .as_deref()
                .unwrap_or("public")
                .chars()
                .take(56)
                .collect::<String>()
        );
        let db = Db {
            pool,
            publisher: Arc::new(Publisher::new(options.event_buffer)),
            weights: options.weights,
            channel,
            node: config.node_id.clone(),
        };
        let (finishes, waiting) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(batch::finish_in_batches(db.clone(), waiting));
        let store = PostgresStore {
            db,
            config,
            finishes,
            remote_observer: Arc::new(parking_lot::RwLock::new(None)),
            resync: Arc::new(parking_lot::RwLock::new(None)),
            stop_listening: tokio_util::sync::CancellationToken::new(),
        };
        let mut client = store.db.client().await?;
        schema::migrate(&mut client, store.config.schema.as_deref()).await?;
        let receiver = notify::Receiver {
            node: store.db.node.clone(),
            channel: store.db.channel.clone(),
            config: listener_config,
            pool: store.db.pool.clone(),
            publisher: store.db.publisher.clone(),
            observer: store.remote_observer.clone(),
            resync: store.resync.clone(),
        };
        tokio::spawn(receiver.run(store.stop_listening.clone()));
        Ok(store)
    }
}

/// What every transaction of this node needs: connections, the order of
/// publication, and where notices go.
#[derive(Clone)]
pub(crate) struct Db {
    pool: Pool,
    publisher: Arc<Publisher>,
    weights: crate::model::SchedulingWeights,
    /// The LISTEN/NOTIFY channel of this schema's nodes.
    channel: String,
    node: String,
}

impl Db {
    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|error| StoreError::Unavailable(format!("postgresql: cannot get a connection: {error}")))
    }

    fn changes(&self) -> Changes {
        Changes::new(self.weights, self.publisher.wants_events(), true)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn submit(&self, batch: SubmitBatch) -> StoreResult<Submitted> {
        transact!(self, |tx| transition::submit(tx, batch.clone()).await)
    }

    async fn submit_and_claim(&self, batch: SubmitBatch, claim: ClaimRequest) -> StoreResult<(Submitted, Claimed)> {
        transact!(self, |tx| transition::submit_and_claim(
            tx,
            batch.clone(),
            claim.clone()
        )
        .await)
    }

    async fn claim(&self, request: ClaimRequest) -> StoreResult<Claimed> {
        transact!(self, |tx| transition::claim(tx, request.clone()).await)
    }

    async fn renew(&self, request: RenewRequest) -> StoreResult<Renewed> {
        transact!(self, |tx| transition::renew(tx, request.clone()).await)
    }

    async fn record_progress(&self, lease: LeaseRef, progress: Progress, now: Timestamp) -> StoreResult<()> {
        transact!(self, |tx| transition::record_progress(tx, lease, progress.clone(), now)
            .await)
    }

    async fn finish(&self, report: AttemptReport) -> StoreResult<Finished> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.finishes
            .send(batch::FinishRequest { report, reply })
            .map_err(|_| StoreError::Unavailable("the store is closed".to_string()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the store is closed".to_string())))
    }

    async fn cancel(&self, id: TaskId, reason: String, now: Timestamp) -> StoreResult<Cancelled> {
        transact!(self, |tx| transition::cancel(tx, id, reason.clone(), now).await)
    }

    async fn rescue(&self, scope: RescueScope, now: Timestamp) -> StoreResult<Rescued> {
        transact!(self, |tx| transition::rescue(tx, scope.clone(), now).await)
    }

    async fn promote_due(&self, now: Timestamp) -> StoreResult<Promoted> {
        transact!(self, |tx| transition::promote(tx, now).await)
    }

    async fn purge_finished_before(
        &self,
        status: Option<TaskStatus>,
        cutoff: Timestamp,
        limit: usize,
    ) -> StoreResult<Purged> {
        transact!(self, |tx| transition::purge(tx, status, cutoff, limit).await)
    }

    async fn get(&self, id: TaskId) -> StoreResult<Option<Task>> {
        read!(self, |client| reads::get(&client, id).await)
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Vec<Task>> {
        read!(self, |client| reads::list(&client, query).await)
    }

    async fn counts(&self) -> StoreResult<Vec<StatusCount>> {
        read!(self, |client| reads::counts(&client).await)
    }

    async fn declare_task_types(
        &self,
        task_types: Vec<String>,
        now: Timestamp,
        max_declared: usize,
    ) -> StoreResult<()> {
        transact!(self, |tx| transition::declare_task_types(
            tx,
            &task_types,
            now,
            max_declared
        )
        .await)
    }

    async fn forget_task_types(&self, which: ForgetTaskTypes) -> StoreResult<Vec<String>> {
        transact!(self, |tx| transition::forget_task_types(tx, &which).await)
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn publish_workers(
        &self,
        node: &str,
        workers: Vec<WorkerInfo>,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<()> {
        transact!(self, |tx| tx.publish_workers(node, &workers, now, stale_before).await)
    }

    async fn workers_elsewhere(&self, node: &str, seen_after: Timestamp) -> StoreResult<Vec<WorkerInfo>> {
        read!(self, |client| reads::workers_elsewhere(&client, node, seen_after).await)
    }

    async fn declared_task_types(&self) -> StoreResult<Vec<String>> {
        read!(self, |client| reads::declared_task_types(&client).await)
    }

    async fn create_schedule(&self, schedule: Schedule) -> StoreResult<Schedule> {
        transact!(self, |tx| transition::create_schedule(tx, schedule.clone()).await)
    }

    async fn get_schedule(&self, name: &str) -> StoreResult<Option<Schedule>> {
        let body: Option<String> = read!(self, |client| {
            let row =
                crate::store::postgres::sql::query_opt(&client, "SELECT body FROM schedules WHERE name = $1", &[&name])
                    .await?;
            match row {
                Some(row) => Ok(Some(row.try_get(0)?)),
                None => Ok(None),
            }
        })?;
        body.map(|body| from_json("body", &body)).transpose()
    }

    async fn list_schedules(&self) -> StoreResult<Vec<Schedule>> {
        let bodies = read!(self, |client| reads::schedules(&client).await)?;
        bodies.iter().map(|body| from_json("body", body)).collect()
    }

    async fn update_schedule(&self, schedule: Schedule, read: u64) -> StoreResult<Schedule> {
        transact!(self, |tx| transition::update_schedule(tx, schedule.clone(), read).await)
    }

    async fn delete_schedule(&self, name: &str) -> StoreResult<bool> {
        transact!(self, |tx| transition::delete_schedule(tx, name).await)
    }

    async fn due_schedules(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Schedule>> {
        let bodies = read!(self, |client| reads::due_schedules(&client, now.as_micros(), limit)
            .await)?;
        bodies.iter().map(|body| from_json("body", body)).collect()
    }

    async fn next_schedule_fire(&self) -> StoreResult<Option<Timestamp>> {
        Ok(read!(self, |client| reads::next_schedule_fire(&client).await)?.map(Timestamp))
    }

    async fn check_writable(&self, now: Timestamp) -> StoreResult<()> {
        transact!(self, |tx| tx.touch_health(now).await)
    }

    async fn optimize(&self) -> StoreResult<String> {
        let client = self.db.client().await?;
        client
            .batch_execute("ANALYZE tasks; ANALYZE task_dependencies")
            .await
            .map_err(|error| database_error(&error))?;
        Ok("analyzed tables (postgresql vacuums on its own)".to_string())
    }

    fn on_commit(&self, observer: CommitObserver) {
        *self.db.publisher.observer.write() = Some(observer);
    }

    fn on_remote_commit(&self, observer: CommitObserver, resync: ResyncHook) {
        *self.remote_observer.write() = Some(observer);
        *self.resync.write() = Some(resync);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<TaskEvent>> {
        self.db.publisher.events.subscribe()
    }

    async fn watch(&self, id: TaskId) -> StoreResult<(Option<Task>, broadcast::Receiver<Arc<TaskEvent>>)> {
        // Subscribed first, then read: every commit published before the
        // read is in the snapshot, every later one reaches the receiver.
        let receiver = self.db.publisher.events.subscribe();
        let snapshot = self.get(id).await?;
        Ok((snapshot, receiver))
    }

    async fn close(&self) {
        self.stop_listening.cancel();
        self.db.pool.close();
    }
}
