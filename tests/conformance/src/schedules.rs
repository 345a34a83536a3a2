//! Schedules: one per name, changed only from the latest revision, found
//! when due.

use std::sync::Arc;
use std::time::Duration;

use taskd::model::schedule::{CatchUp, Overlap, Schedule, ScheduleSpec, ScheduleState, SpecKind, TaskTemplate};
use taskd::store::{Store, StoreError};

use crate::at;

fn schedule(name: &str, next_fire: f64) -> Schedule {
    Schedule {
        name: name.to_string(),
        spec: ScheduleSpec {
            kind: SpecKind::Interval {
                every: Duration::from_secs(60),
                offset: Duration::ZERO,
            },
            jitter: Duration::ZERO,
        },
        template: TaskTemplate {
            task_type: "diag.echo".into(),
            ..TaskTemplate::default()
        },
        overlap: Overlap::Skip,
        catch_up: CatchUp::default(),
        start_at: None,
        end_at: None,
        max_fires: None,
        paused: None,
        state: ScheduleState {
            next_fire: Some(at(next_fire)),
            created_at: at(0.0),
            updated_at: at(0.0),
            ..ScheduleState::default()
        },
    }
}

pub async fn a_schedule_is_created_once_and_changed_only_from_its_latest_revision(store: Arc<dyn Store>) {
    let created = store.create_schedule(schedule("nightly", 60.0)).await.expect("created");
    assert_eq!(created.state.revision, 1);
    let again = store.create_schedule(schedule("nightly", 60.0)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let mut paused = created.clone();
    paused.paused = Some("maintenance window".into());
    let updated = store.update_schedule(paused, 1).await.expect("updated from revision 1");
    assert_eq!(updated.state.revision, 2);
    let stale = store.update_schedule(created.clone(), 1).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict(_))),
        "a write from an old revision: {stale:?}"
    );
    assert_eq!(
        store.get_schedule("nightly").await.expect("read"),
        Some(updated),
        "the refused write changed nothing"
    );
    let missing = store.update_schedule(schedule("weekly", 60.0), 1).await;
    assert!(matches!(missing, Err(StoreError::ScheduleNotFound(_))), "{missing:?}");

    assert!(store.delete_schedule("nightly").await.expect("deleted"));
    assert!(!store.delete_schedule("nightly").await.expect("answered"));
    assert_eq!(store.get_schedule("nightly").await.expect("read"), None);
}

pub async fn due_schedules_are_those_not_paused_whose_fire_has_come(store: Arc<dyn Store>) {
    store
        .create_schedule(schedule("b-later", 120.0))
        .await
        .expect("created");
    store.create_schedule(schedule("a-soon", 60.0)).await.expect("created");
    let mut paused = schedule("c-paused", 30.0);
    paused.paused = Some("off".into());
    store.create_schedule(paused).await.expect("created");

    let names = |schedules: Vec<Schedule>| schedules.into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_schedules().await.expect("listed")),
        ["a-soon", "b-later", "c-paused"]
    );
    assert_eq!(
        names(store.due_schedules(at(59.0), 10).await.expect("due")),
        Vec::<String>::new()
    );
    assert_eq!(names(store.due_schedules(at(60.0), 10).await.expect("due")), ["a-soon"]);
    assert_eq!(
        names(store.due_schedules(at(500.0), 10).await.expect("due")),
        ["a-soon", "b-later"]
    );
    assert_eq!(names(store.due_schedules(at(500.0), 1).await.expect("due")), ["a-soon"]);
    assert_eq!(store.next_schedule_fire().await.expect("read"), Some(at(60.0)));
}
