//! Events: published after the commit, in commit order, with the task as
//! the change left it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::{at, claim, draft, finish, submit_one, success};
use taskd::model::{EventKind, Progress, TaskEvent, TaskId, TaskStatus};
use taskd::store::Store;

async fn next_event_of(receiver: &mut broadcast::Receiver<Arc<TaskEvent>>, id: TaskId) -> Arc<TaskEvent> {
    let wait = async {
        loop {
            let event = receiver.recv().await.expect("events keep coming");
            if event.task.as_ref().is_some_and(|task| task.id == id) {
                return event;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("an event within 10s")
}

pub async fn events_follow_commits_in_order_with_the_task_as_changed(store: Arc<dyn Store>) {
    let mut receiver = store.subscribe();
    let task = submit_one(&store, draft("a"), at(0.0)).await;
    let claimed = claim(&store, "x", &["a"], 1, at(1.0)).await.remove(0);
    let progress = Progress {
        percent: 50.0,
        message: "half".into(),
    };
    store
        .record_progress(claimed.lease.reference(), progress.clone(), at(2.0))
        .await
        .unwrap();
    finish(&store, &claimed.lease, success(), at(3.0)).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_event_of(&mut receiver, task.id).await);
    }
    let kinds: Vec<_> = seen
        .iter()
        .map(|event| {
            let task = event.task.as_ref().expect("task");
            (event.kind, event.previous_status, task.status)
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Submitted, None, TaskStatus::Pending),
            (EventKind::StatusChanged, Some(TaskStatus::Pending), TaskStatus::Running),
            (EventKind::Progress, Some(TaskStatus::Running), TaskStatus::Running),
            (
                EventKind::StatusChanged,
                Some(TaskStatus::Running),
                TaskStatus::Completed
            ),
        ]
    );
    assert_eq!(
        seen[2].task.as_ref().and_then(|task| task.progress.clone()),
        Some(progress)
    );
    for pair in seen.windows(2) {
        assert!(pair[0].sequence < pair[1].sequence, "sequence follows commit order");
        let revisions = (
            pair[0].task.as_ref().map(|task| task.revision),
            pair[1].task.as_ref().map(|task| task.revision),
        );
        assert!(
            revisions.0 < revisions.1,
            "each change is a new revision: {revisions:?}"
        );
    }
    assert_eq!(seen[3].time, at(3.0));
}

pub async fn a_watch_snapshot_and_its_events_miss_nothing(store: Arc<dyn Store>) {
    // The task ends while the watch starts: whichever comes first, the
    // watcher learns of the end from the snapshot or from an event.
    for round in 0..20 {
        let task = submit_one(&store, draft("a"), at(f64::from(round))).await;
        let runner = {
            let store = store.clone();
            tokio::spawn(async move {
                let claimed = claim(&store, "x", &["a"], 1, at(f64::from(round))).await.remove(0);
                finish(&store, &claimed.lease, success(), at(f64::from(round) + 0.5))
                    .await
                    .unwrap();
            })
        };
        let (snapshot, mut receiver) = store.watch(task.id).await.unwrap();
        let snapshot = snapshot.expect("the task exists");
        let mut status = snapshot.status;
        let mut revision = snapshot.revision;
        while status != TaskStatus::Completed {
            let event = next_event_of(&mut receiver, task.id).await;
            let changed = event.task.as_ref().expect("task");
            if changed.revision <= revision {
                continue;
            }
            revision = changed.revision;
            status = changed.status;
        }
        runner.await.expect("runner");
    }
}
