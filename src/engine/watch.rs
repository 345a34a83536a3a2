//! Watch streams over the store's events, free of any transport.

use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::model::{EventKind, Task, TaskEvent, TaskFilter};
use crate::store::Store;

enum Single {
    Start(Box<Task>),
    Follow,
    Done,
}

/// The current state, then each change of that task, ending after the
/// terminal one. Events from before the snapshot are skipped by revision;
/// a lagging watcher is resynchronised with a fresh snapshot, so it cannot
/// miss the end.
pub fn single_task(
    store: Arc<dyn Store>,
    current: Task,
    receiver: broadcast::Receiver<Arc<TaskEvent>>,
) -> impl Stream<Item = TaskEvent> + Send + 'static {
    let id = current.id;
    let seen = current.revision;
    futures::stream::unfold(
        (Single::Start(Box::new(current)), receiver, store, seen),
        move |(state, mut receiver, store, seen)| async move {
            let next_state = |task: &Task| {
                if task.status.is_terminal() {
                    Single::Done
                } else {
                    Single::Follow
                }
            };
            match state {
                Single::Done => None,
                Single::Start(task) => {
                    let next = next_state(&task);
                    Some((TaskEvent::snapshot(*task), (next, receiver, store, seen)))
                }
                Single::Follow => loop {
                    match receiver.recv().await {
                        // The store itself missed changes (made on another
                        // node): read the task again, as for a lag here.
                        Ok(event) if event.kind == EventKind::Lagged => {
                            let task = store.get(id).await.ok()??;
                            if task.revision <= seen {
                                continue;
                            }
                            let next = next_state(&task);
                            let revision = task.revision;
                            return Some((TaskEvent::snapshot(task), (next, receiver, store, revision)));
                        }
                        Ok(event) => {
                            let Some(task) = &event.task else { continue };
                            if task.id != id || task.revision <= seen {
                                continue;
                            }
                            let next = next_state(task);
                            let revision = task.revision;
                            return Some((TaskEvent::clone(&event), (next, receiver, store, revision)));
                        }
                        Err(RecvError::Lagged(_)) => {
                            let task = store.get(id).await.ok()??;
                            let next = next_state(&task);
                            let revision = task.revision;
                            return Some((TaskEvent::snapshot(task), (next, receiver, store, revision)));
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
                Ok(event) if event.kind == EventKind::Lagged => {
                    return Some((TaskEvent::clone(&event), (filter, receiver)));
                }
                Ok(event) => {
                    let matches = event.task.as_ref().is_some_and(|task| filter.matches(task));
                    if matches {
                        return Some((TaskEvent::clone(&event), (filter, receiver)));
                    }
                }
                Err(RecvError::Lagged(missed)) => return Some((TaskEvent::lagged(missed), (filter, receiver))),
                Err(RecvError::Closed) => return None,
            }
        }
    })
}
