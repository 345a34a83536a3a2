//! What one node's commits tell the others, through PostgreSQL's
//! LISTEN/NOTIFY: the transitions (so that their executors wake for work
//! submitted elsewhere, and stop attempts ended elsewhere) and the tasks
//! changed (so that their watchers see every task, wherever it changed).
//!
//! A notice is sent inside the transaction it describes: PostgreSQL
//! delivers it only if that commits, and delivers notices in commit order.
//! A notice carries ids, not tasks (a payload is at most 8000 bytes); the
//! receiving node reads the tasks once per notice.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::model::{AttemptOutcome, EventKind, TaskId, TaskPriority, TaskStatus, Timestamp};
use crate::store::changes::{ChangedTask, Changes};
use crate::store::postgres::error::Step;
use crate::store::postgres::publisher::Publisher;
use crate::store::postgres::row::{COLUMNS, read};
use crate::store::postgres::sql::execute;
use crate::store::{CommitObserver, ResyncHook, Transition};

/// Payloads stay well under PostgreSQL's 8000-byte limit.
const MOST_BYTES: usize = 6000;

#[derive(Serialize, Deserialize, Default)]
struct Notice {
    /// The node that committed.
    n: String,
    t: Vec<WireTransition>,
    /// Changed tasks: id, event kind, previous status.
    c: Vec<(Uuid, u8, Option<i64>)>,
}

#[derive(Serialize, Deserialize)]
struct WireTransition {
    i: Uuid,
    y: String,
    p: i64,
    f: Option<i64>,
    s: i64,
    d: Option<i64>,
    w: Option<u64>,
    o: Option<(AttemptOutcome, u64)>,
}

fn kind_code(kind: EventKind) -> u8 {
    match kind {
        EventKind::Snapshot => 0,
        EventKind::Submitted => 1,
        EventKind::StatusChanged => 2,
        EventKind::Progress => 3,
        EventKind::Lagged => 4,
    }
}

fn kind_of(code: u8) -> EventKind {
    match code {
        0 => EventKind::Snapshot,
        1 => EventKind::Submitted,
        3 => EventKind::Progress,
        4 => EventKind::Lagged,
        _ => EventKind::StatusChanged,
    }
}

fn to_wire(transition: &Transition) -> WireTransition {
    WireTransition {
        i: transition.task_id.0,
        y: transition.task_type.clone(),
        p: transition.priority.code(),
        f: transition.from.map(TaskStatus::code),
        s: transition.to.code(),
        d: transition.due.map(Timestamp::as_micros),
        w: transition.waited.map(|waited| waited.as_micros() as u64),
        o: transition
            .closed_attempt
            .map(|(outcome, ran)| (outcome, ran.as_micros() as u64)),
    }
}

fn from_wire(wire: WireTransition) -> Option<Transition> {
    Some(Transition {
        task_id: TaskId(wire.i),
        task_type: wire.y,
        priority: TaskPriority::from_code(wire.p)?,
        from: match wire.f {
            Some(code) => Some(TaskStatus::from_code(code)?),
            None => None,
        },
        to: TaskStatus::from_code(wire.s)?,
        due: wire.d.map(Timestamp),
        waited: wire.w.map(Duration::from_micros),
        closed_attempt: wire.o.map(|(outcome, ran)| (outcome, Duration::from_micros(ran))),
    })
}

/// Sends what `changes` holds to the other nodes, from inside its
/// transaction.
pub async fn send(tx: &Transaction<'_>, channel: &str, node: &str, changes: &Changes) -> Step<()> {
    if changes.transitions.is_empty() && changes.changed.is_empty() {
        return Ok(());
    }
    let mut notices = vec![Notice {
        n: node.to_string(),
        ..Notice::default()
    }];
    let mut size = 0;
    let room = |notices: &mut Vec<Notice>, cost: usize, size: &mut usize| {
        if *size + cost > MOST_BYTES {
            notices.push(Notice {
                n: node.to_string(),
                ..Notice::default()
            });
            *size = 0;
        }
        *size += cost;
    };
    for transition in &changes.transitions {
        room(&mut notices, 120 + transition.task_type.len(), &mut size);
        if let Some(notice) = notices.last_mut() {
            notice.t.push(to_wire(transition));
        }
    }
    for (id, kind, previous) in &changes.changed {
        room(&mut notices, 50, &mut size);
        if let Some(notice) = notices.last_mut() {
            notice.c.push((id.0, kind_code(*kind), previous.map(TaskStatus::code)));
        }
    }
    for notice in notices {
        let payload = serde_json::to_string(&notice).unwrap_or_default();
        execute(tx, "SELECT pg_notify($1, $2)", &[&channel, &payload]).await?;
    }
    Ok(())
}

/// What a node does with other nodes' notices.
pub struct Receiver {
    pub node: String,
    pub channel: String,
    pub config: tokio_postgres::Config,
    pub pool: Pool,
    pub publisher: Arc<Publisher>,
    pub observer: Arc<parking_lot::RwLock<Option<CommitObserver>>>,
    /// Told after a reconnect, when notices may have been missed.
    pub resync: Arc<parking_lot::RwLock<Option<ResyncHook>>>,
}

impl Receiver {
    /// Listens until `stop`, connecting again (with growing pauses) when
    /// the connection drops.
    pub async fn run(self, stop: CancellationToken) {
        let mut pause = Duration::from_millis(100);
        let mut connected_before = false;
        loop {
            let listened = tokio::select! {
                _ = stop.cancelled() => return,
                result = self.listen(connected_before) => result,
            };
            match listened {
                Ok(()) => pause = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "listening for other nodes' changes failed");
                }
            }
            connected_before = true;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn listen(&self, reconnected: bool) -> Result<(), tokio_postgres::Error> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (sender, mut notices) = tokio::sync::mpsc::unbounded_channel::<String>();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(notice)) => {
                        if sender.send(notice.payload().to_string()).is_err() {
                            return Ok(());
                        }
                    }
                    Ok(_) => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        });
        client
            .batch_execute(&format!("LISTEN \"{}\"", self.channel.replace('"', "\"\"")))
            .await?;
        if reconnected {
            // Notices sent while this node was not listening are gone:
            // whoever keeps state from them reads it again, watchers
            // included.
            if let Some(resync) = self.resync.read().clone() {
                resync();
            }
            self.publisher.publish_lagged(1);
        }
        while let Some(payload) = notices.recv().await {
            self.receive(&payload).await;
        }
        drop(client);
        match driver.await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }

    async fn receive(&self, payload: &str) {
        let Ok(notice) = serde_json::from_str::<Notice>(payload) else {
            tracing::warn!("an unreadable notice from another node");
            return;
        };
        if notice.n == self.node {
            return;
        }
        let transitions: Vec<Transition> = notice.t.into_iter().filter_map(from_wire).collect();
        if !transitions.is_empty()
            && let Some(observer) = self.observer.read().clone()
        {
            observer(&transitions);
        }
        if notice.c.is_empty() || !self.publisher.wants_events() {
            return;
        }
        let ids: Vec<TaskId> = notice.c.iter().map(|(id, _, _)| TaskId(*id)).collect();
        let Some(rows) = self.read_tasks(&ids).await else {
            tracing::warn!(
                tasks = ids.len(),
                "cannot read tasks another node changed; their watchers are told they lagged"
            );
            self.publisher.publish_lagged(ids.len() as u64);
            return;
        };
        let mut tasks = std::collections::HashMap::new();
        for row in &rows {
            if let Ok(task) = read(row, 0) {
                tasks.insert(task.id, task);
            }
        }
        let changes = notice
            .c
            .into_iter()
            .filter_map(|(id, kind, previous)| {
                let row = tasks.get(&TaskId(id))?.clone();
                Some((
                    kind_of(kind),
                    previous.and_then(TaskStatus::from_code),
                    ChangedTask::Row(Box::new(row)),
                ))
            })
            .collect();
        self.publisher.publish_remote(changes);
    }

    /// The rows of `ids`, trying a few connections (pooled ones may have
    /// been closed by the database since their last use).
    async fn read_tasks(&self, ids: &[TaskId]) -> Option<Vec<tokio_postgres::Row>> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = ANY($1)");
        for _ in 0..3 {
            let Ok(client) = self.pool.get().await else {
                continue;
            };
            match client.query(sql.as_str(), &[&ids]).await {
                Ok(rows) => return Some(rows),
                Err(error) => tracing::debug!(%error, "reading changed tasks failed"),
            }
        }
        None
    }
}
