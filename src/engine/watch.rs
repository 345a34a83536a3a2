//! Watch streams over the event bus, free of any transport.

use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::engine::events::{EventKind, TaskEvent};
use crate::engine::manager::TaskManager;
use crate::engine::model::{Task, TaskFilter, Timestamp};

fn snapshot(task: Task) -> TaskEvent {
    TaskEvent {
        sequence: 0,
        kind: EventKind::Snapshot,
        time: task.updated_at,
        previous_status: None,
        task: Some(Arc::new(task)),
        missed: 0,
    }
}

enum SingleState {
    Start(Box<Task>),
    Follow,
    Done,
}

/// The current state, then each change of that task, ending after the
/// terminal one. A lagging watcher is resynchronised with a fresh snapshot:
/// it cannot miss the end.
pub fn single_task(
    manager: TaskManager,
    current: Task,
    receiver: broadcast::Receiver<Arc<TaskEvent>>,
) -> impl Stream<Item = TaskEvent> + Send + 'static {
    let id = current.id;
    futures::stream::unfold(
        (SingleState::Start(Box::new(current)), receiver, manager),
        move |(state, mut receiver, manager)| async move {
            match state {
                SingleState::Done => None,
                SingleState::Start(task) => {
                    let next = if task.status.is_terminal() {
                        SingleState::Done
                    } else {
                        SingleState::Follow
                    };
                    Some((snapshot(*task), (next, receiver, manager)))
                }
                SingleState::Follow => loop {
                    match receiver.recv().await {
                        Ok(event) => {
                            let Some(task) = &event.task else { continue };
                            if task.id != id {
                                continue;
                            }
                            let next = if task.status.is_terminal() {
                                SingleState::Done
                            } else {
                                SingleState::Follow
                            };
                            return Some((TaskEvent::clone(&event), (next, receiver, manager)));
                        }
                        Err(RecvError::Lagged(_)) => {
                            let task = manager.get(id).await.ok()?;
                            let next = if task.status.is_terminal() {
                                SingleState::Done
                            } else {
                                SingleState::Follow
                            };
                            return Some((snapshot(task), (next, receiver, manager)));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                },
            }
        },
    )
}

/// Events of tasks matching `filter`; a LAGGED event tells how many were
/// skipped when the watcher fell behind.
pub fn filtered(
    filter: TaskFilter,
    receiver: broadcast::Receiver<Arc<TaskEvent>>,
) -> impl Stream<Item = TaskEvent> + Send + 'static {
    futures::stream::unfold((filter, receiver), |(filter, mut receiver)| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    let matches = event.task.as_ref().is_some_and(|task| filter.matches(task));
                    if matches {
                        return Some((TaskEvent::clone(&event), (filter, receiver)));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let lagged = TaskEvent {
                        sequence: 0,
                        kind: EventKind::Lagged,
                        task: None,
                        previous_status: None,
                        time: Timestamp::now(),
                        missed,
                    };
                    return Some((lagged, (filter, receiver)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}
