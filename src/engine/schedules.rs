//! Schedules: the facade that creates, changes, pauses, triggers and
//! deletes them, and the scheduler that fires them.
//!
//! Every node runs the scheduler. A fire is an ordinary task whose
//! idempotency key is made of the schedule's name and the fire's nominal
//! time, so two nodes firing at once, or a node firing again after a crash
//! before it recorded the fire, submit it once. The schedule's record is
//! then written from the revision that was read; a node that lost that
//! race leaves it to the winner.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use crate::engine::core::Core;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::manager::TaskManager;
use crate::engine::validate::validate_new_task;
use crate::model::schedule::{
    self, Fire, FireTimes, Overlap, RECENT_FIRES, Schedule, ScheduleState, SpecError, check_name, fire_key, jitter_of,
};
use crate::model::{NewTask, Task, TaskId, TaskPriority, TaskStatus, Timestamp};
use crate::store::StoreError;

/// Fires submitted for one schedule in one look; a long catch-up takes
/// several looks.
const MOST_FIRES_PER_LOOK: usize = 100;

/// Due schedules fired at once in one look.
const FIRES_AT_ONCE: usize = MOST_SCHEDULES_PER_LOOK;

/// Due schedules taken in one look.
const MOST_SCHEDULES_PER_LOOK: usize = 256;

/// The most fires one backfill submits.
pub const MAX_BACKFILL: usize = 1000;

/// How many upcoming fire times a schedule shows.
const UPCOMING: usize = 5;

/// How long the scheduler sleeps when no schedule is due; a change wakes
/// it sooner. On a store shared by several nodes, another node's change
/// is seen within this.
const IDLE: Duration = Duration::from_secs(1);

/// Lookups of fire outcomes running at once while listing schedules.
const OUTCOME_LOOKUPS: usize = 16;

/// A schedule with the fire times it has coming and how its last fires
/// went.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleView {
    pub schedule: Schedule,
    pub upcoming: Vec<Timestamp>,
    /// The status of each recent fire's task, in the order of
    /// `schedule.state.recent`: `None` when its task is gone (purged) or
    /// was not looked up (a list looks up the latest fire only).
    pub outcomes: Vec<Option<TaskStatus>>,
}

fn spec_error(error: SpecError) -> EngineError {
    EngineError::invalid(error.field, error.message)
}

/// Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct Schedules {
    core: Arc<Core>,
    /// Fires are submitted, and overlapping runs cancelled, as any client's
    /// tasks are: admission, the catalog and revocation included.
    tasks: TaskManager,
}

impl Schedules {
    pub(crate) fn new(core: Arc<Core>, tasks: TaskManager) -> Self {
        Schedules { core, tasks }
    }

    /// Creates a schedule from `draft` (its state is ignored); refused with
    /// ALREADY_EXISTS when the name is taken.
    pub async fn create(&self, draft: Schedule) -> EngineResult<ScheduleView> {
        let now = self.core.clock.now();
        let times = self.check(&draft)?;
        let schedule = Schedule {
            state: ScheduleState {
                next_fire: first_fire(&draft, &times, now),
                created_at: now,
                updated_at: now,
                ..ScheduleState::default()
            },
            ..draft
        };
        let created = self.core.store.create_schedule(schedule).await?;
        self.core.schedules_changed.notify_one();
        Ok(view(created))
    }

    /// One schedule, with the outcome of each of its recent fires.
    pub async fn get(&self, name: &str) -> EngineResult<ScheduleView> {
        self.with_outcomes(view(self.load(name).await?), RECENT_FIRES).await
    }

    /// Every schedule, by name, with the outcome of its latest fire.
    pub async fn list(&self) -> EngineResult<Vec<ScheduleView>> {
        let schedules = self.core.store.list_schedules().await?;
        futures::stream::iter(schedules)
            .map(|schedule| self.with_outcomes(view(schedule), 1))
            .buffered(OUTCOME_LOOKUPS)
            .try_collect()
            .await
    }

    /// `view` with the status of the tasks of its `most` latest fires.
    async fn with_outcomes(&self, mut view: ScheduleView, most: usize) -> EngineResult<ScheduleView> {
        for fire in view.schedule.state.recent.iter().take(most) {
            let task = self.core.store.get(fire.task_id).await?;
            view.outcomes.push(task.map(|task| task.status));
        }
        Ok(view)
    }

    /// Replaces what `name` does (spec, template, policies); what it has
    /// done (its fires and counts) stays, and its next fire is computed
    /// again from now.
    pub async fn update(&self, draft: Schedule) -> EngineResult<ScheduleView> {
        let times = self.check(&draft)?;
        let current = self.load(&draft.name).await?;
        let now = self.core.clock.now();
        let read = current.state.revision;
        let updated = Schedule {
            state: ScheduleState {
                next_fire: first_fire(&draft, &times, now),
                updated_at: now,
                ..current.state
            },
            paused: current.paused,
            ..draft
        };
        let written = self.core.store.update_schedule(updated, read).await?;
        self.core.schedules_changed.notify_one();
        Ok(view(written))
    }

    /// Pauses `name`, saying why; fires that come meanwhile are missed (its
    /// catch-up policy decides, on resume).
    pub async fn pause(&self, name: &str, note: String) -> EngineResult<ScheduleView> {
        let note = if note.trim().is_empty() {
            "paused".to_string()
        } else {
            note
        };
        self.change(name, |schedule| schedule.paused = Some(note.clone())).await
    }

    pub async fn resume(&self, name: &str) -> EngineResult<ScheduleView> {
        self.change(name, |schedule| schedule.paused = None).await
    }

    pub async fn delete(&self, name: &str) -> EngineResult<()> {
        if !self.core.store.delete_schedule(name).await? {
            return Err(EngineError::NotFound(format!("schedule {name:?} not found")));
        }
        Ok(())
    }

    /// Fires `name` now, outside its spec (its overlap policy applies); the
    /// task of the fire.
    pub async fn trigger(&self, name: &str) -> EngineResult<Task> {
        let schedule = self.load(name).await?;
        let now = self.core.clock.now();
        let mut fired = fire_tasks(&self.tasks, &schedule, &[now], false).await?;
        let (task, fire) = fired
            .tasks
            .pop()
            .ok_or_else(|| EngineError::FailedPrecondition(format!("schedule {name:?}: {}", fired.why_none())))?;
        self.record(schedule, |state| {
            state.fires += 1;
            remember(state, fire.clone());
        })
        .await?;
        Ok(task)
    }

    /// Fires `name` at every nominal time of its spec in `(from, to]`, at
    /// most [`MAX_BACKFILL`], beside whatever runs (no overlap policy); the
    /// tasks, oldest first.
    pub async fn backfill(&self, name: &str, from: Timestamp, to: Timestamp) -> EngineResult<Vec<Task>> {
        if to <= from {
            return Err(EngineError::invalid("end_time", "must be after start_time"));
        }
        let schedule = self.load(name).await?;
        let times = FireTimes::of(&schedule.spec).map_err(spec_error)?;
        let (nominals, more) = times.between(from, to, MAX_BACKFILL);
        if more {
            return Err(EngineError::invalid(
                "end_time",
                format!("the range holds more than {MAX_BACKFILL} fires; backfill it in parts"),
            ));
        }
        let fired = fire_tasks(&self.tasks, &schedule, &nominals, true).await?;
        let count = fired.tasks.len() as u64;
        let last = fired.tasks.last().map(|(_, fire)| fire.clone());
        self.record(schedule, |state| {
            state.fires += count;
            if let Some(fire) = &last {
                remember(state, fire.clone());
            }
        })
        .await?;
        Ok(fired.tasks.into_iter().map(|(task, _)| task).collect())
    }

    async fn load(&self, name: &str) -> EngineResult<Schedule> {
        self.core
            .store
            .get_schedule(name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("schedule {name:?} not found")))
    }

    /// Changes `name` with `change`, from the revision just read; tried
    /// again when the scheduler wrote it meanwhile.
    async fn change(&self, name: &str, change: impl Fn(&mut Schedule)) -> EngineResult<ScheduleView> {
        for _ in 0..8 {
            let mut schedule = self.load(name).await?;
            let read = schedule.state.revision;
            change(&mut schedule);
            schedule.state.updated_at = self.core.clock.now();
            match self.core.store.update_schedule(schedule, read).await {
                Ok(written) => {
                    self.core.schedules_changed.notify_one();
                    return Ok(view(written));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(EngineError::Unavailable(format!(
            "schedule {name:?} kept changing; try again"
        )))
    }

    /// Records what a trigger or backfill did to `schedule`'s state.
    async fn record(&self, schedule: Schedule, change: impl Fn(&mut ScheduleState)) -> EngineResult<()> {
        let name = schedule.name.clone();
        self.change(&name, |schedule| change(&mut schedule.state)).await?;
        Ok(())
    }

    /// Checks a schedule as a client wrote it; a refusal names the field.
    fn check(&self, draft: &Schedule) -> EngineResult<FireTimes> {
        check_name(&draft.name).map_err(spec_error)?;
        let times = FireTimes::of(&draft.spec).map_err(spec_error)?;
        if !self.core.catalog.knows(&draft.template.task_type) {
            return Err(EngineError::invalid(
                "template.task_type",
                format!("unknown task type {:?}", draft.template.task_type),
            ));
        }
        let limits = &self.core.config.limits;
        validate_new_task(
            &task_of(draft, self.core.clock.now()),
            limits,
            self.core.clock.now(),
            "template.",
        )?;
        if draft.catch_up.window < Duration::from_secs(1) {
            return Err(EngineError::invalid("catch_up.window", "at least 1s"));
        }
        if let (Some(start), Some(end)) = (draft.start_at, draft.end_at)
            && end <= start
        {
            return Err(EngineError::invalid("end_time", "must be after start_time"));
        }
        if draft.max_fires == Some(0) {
            return Err(EngineError::invalid("max_fires", "at least 1 (or unset: no limit)"));
        }
        Ok(times)
    }
}

/// The first fire of `schedule` after `now` (or at its start).
fn first_fire(schedule: &Schedule, times: &FireTimes, now: Timestamp) -> Option<Timestamp> {
    let after = match schedule.start_at {
        Some(start) if start > now => Timestamp(start.as_micros() - 1),
        _ => now,
    };
    times
        .next_after(after)
        .filter(|next| schedule.end_at.is_none_or(|end| *next <= end))
}

fn view(schedule: Schedule) -> ScheduleView {
    let mut upcoming = Vec::new();
    if schedule.paused.is_none()
        && let (Some(next), Ok(times)) = (schedule.state.next_fire, FireTimes::of(&schedule.spec))
    {
        upcoming.push(next);
        while upcoming.len() < UPCOMING {
            match times.next_after(upcoming[upcoming.len() - 1]) {
                Some(after) if schedule.end_at.is_none_or(|end| after <= end) => upcoming.push(after),
                _ => break,
            }
        }
    }
    ScheduleView {
        schedule,
        upcoming,
        outcomes: Vec::new(),
    }
}

fn remember(state: &mut ScheduleState, fire: Fire) {
    state.recent.retain(|kept| kept.nominal != fire.nominal);
    state.recent.insert(0, fire);
    state.recent.truncate(RECENT_FIRES);
}

/// The task a fire at `nominal` submits.
fn task_of(schedule: &Schedule, nominal: Timestamp) -> NewTask {
    let template = &schedule.template;
    let mut labels: BTreeMap<String, String> = template.labels.clone();
    labels.insert("schedule".to_string(), schedule.name.clone());
    labels.insert("schedule_time".to_string(), nominal.to_rfc3339());
    let jitter = jitter_of(&schedule.name, nominal, schedule.spec.jitter);
    NewTask {
        name: format!("{} @ {}", schedule.name, nominal.as_micros()),
        task_type: template.task_type.clone(),
        params: template.params.clone(),
        priority: TaskPriority::from_code(template.priority).unwrap_or_default(),
        max_retries: template.max_retries,
        timeout: template.timeout,
        retry_policy: template.retry_policy,
        run_at: (!jitter.is_zero()).then(|| nominal.saturating_add(jitter)),
        labels,
        idempotency_key: Some(fire_key(&schedule.name, nominal)),
        ..NewTask::default()
    }
}

/// What submitting some fires did.
struct Fired {
    /// Each fire's task, oldest first.
    tasks: Vec<(Task, Fire)>,
    /// Fires not run because the task of an earlier one had not ended.
    skipped: Vec<Timestamp>,
}

impl Fired {
    fn why_none(&self) -> &'static str {
        if !self.skipped.is_empty() {
            "skipped: the task of its last fire has not ended (overlap policy skip)"
        } else {
            "nothing fired"
        }
    }
}

/// Submits the fires at `nominals` of `schedule`, one task each, applying
/// its overlap policy to the task of its last fire unless `beside`.
async fn fire_tasks(
    tasks: &TaskManager,
    schedule: &Schedule,
    nominals: &[Timestamp],
    beside: bool,
) -> EngineResult<Fired> {
    let mut fired = Fired {
        tasks: Vec::new(),
        skipped: Vec::new(),
    };
    let mut previous = schedule.state.recent.first().map(|fire| fire.task_id);
    for nominal in nominals {
        // Allowing every overlap, there is nothing to look up.
        if !beside
            && schedule.overlap != Overlap::AllowAll
            && let Some(previous_id) = previous
            && still_running(tasks, previous_id).await?
        {
            match schedule.overlap {
                Overlap::AllowAll => {}
                Overlap::Skip | Overlap::BufferOne => {
                    // BufferOne's one waiting fire is kept by the
                    // scheduler (`buffered`).
                    fired.skipped.push(*nominal);
                    continue;
                }
                Overlap::CancelRunning => cancel_previous(tasks, previous_id, &schedule.name).await?,
            }
        }
        let task = tasks.submit(task_of(schedule, *nominal)).await?;
        tracing::debug!(schedule = %schedule.name, task_id = %task.id, nominal = nominal.as_micros(), "schedule fired");
        previous = Some(task.id);
        let fire = Fire {
            nominal: *nominal,
            task_id: task.id,
        };
        fired.tasks.push((task, fire));
    }
    Ok(fired)
}

async fn cancel_previous(tasks: &TaskManager, id: TaskId, schedule: &str) -> EngineResult<()> {
    let reason = format!("schedule {schedule:?} fired again (overlap policy cancel_running)");
    match tasks.cancel(id, reason).await {
        // It ended meanwhile: nothing to cancel.
        Ok(_) | Err(EngineError::AlreadyFinished { .. }) | Err(EngineError::TaskNotFound(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The scheduler: fires due schedules, then sleeps until the next is due
/// or a schedule changes.
pub fn spawn(core: Arc<Core>, tasks: TaskManager) {
    tokio::spawn(async move {
        loop {
            let next = match fire_due(&core, &tasks).await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(%error, "cannot fire due schedules; trying again");
                    None
                }
            };
            let idle = core.clock.now().saturating_add(IDLE);
            let wake = next.map_or(idle, |next| next.min(idle));
            tokio::select! {
                _ = core.clock.sleep_until(wake) => {}
                _ = core.schedules_changed.notified() => {}
                _ = core.stopping.cancelled() => return,
            }
        }
    });
}

/// Fires every due schedule; when the next one is due.
async fn fire_due(core: &Core, tasks: &TaskManager) -> EngineResult<Option<Timestamp>> {
    let now = core.clock.now();
    let due = core.store.due_schedules(now, MOST_SCHEDULES_PER_LOOK).await?;
    // Schedules are independent: fired together, their submits and
    // records share the store's commits instead of taking one each.
    futures::stream::iter(due)
        .for_each_concurrent(FIRES_AT_ONCE, |schedule| async move {
            let name = schedule.name.clone();
            if let Err(error) = fire_schedule(core, tasks, schedule, now).await {
                tracing::warn!(schedule = %name, %error, "schedule not fired; trying again at the next look");
            }
        })
        .await;
    Ok(core.store.next_schedule_fire().await?)
}

/// One look at a due schedule: its fires per catch-up and overlap, then
/// its record, from the revision read.
async fn fire_schedule(core: &Core, tasks: &TaskManager, schedule: Schedule, now: Timestamp) -> EngineResult<()> {
    let times = FireTimes::of(&schedule.spec).map_err(spec_error)?;
    let due = schedule::due(&schedule, &times, now, MOST_FIRES_PER_LOOK);
    let mut nominals: Vec<Timestamp> = Vec::new();
    let mut ended = false;
    let mut fires_left = schedule.max_fires.map(|most| most.saturating_sub(schedule.state.fires));
    // BufferOne: the fire waiting for the earlier task goes first, once
    // that task has ended.
    let mut buffered = schedule.state.buffered;
    if let Some(waiting) = buffered
        && !previous_running(tasks, &schedule).await?
    {
        nominals.push(waiting);
        buffered = None;
        fires_left = fires_left.map(|left| left.saturating_sub(1));
    }
    for nominal in &due.fire {
        if schedule.start_at.is_some_and(|start| *nominal < start) {
            continue;
        }
        if schedule.end_at.is_some_and(|end| *nominal > end) || fires_left == Some(0) {
            ended = true;
            break;
        }
        nominals.push(*nominal);
        fires_left = fires_left.map(|left| left - 1);
    }
    if fires_left == Some(0) {
        ended = true;
    }
    let fired = fire_tasks(tasks, &schedule, &nominals, false).await?;
    let mut skipped = fired.skipped.len() as u64;
    // As across looks, the first fire to wait is the one kept; later ones
    // are skipped.
    if schedule.overlap == Overlap::BufferOne
        && buffered.is_none()
        && let Some(first) = fired.skipped.first()
    {
        buffered = Some(*first);
        skipped -= 1;
    }
    let lateness: Vec<Duration> = fired
        .tasks
        .iter()
        .map(|(_, fire)| now.duration_since(fire.nominal))
        .collect();
    core.metrics
        .lock()
        .observe_fires(&schedule.name, &lateness, skipped, due.too_late);
    let read = schedule.state.revision;
    let mut next = schedule;
    next.state.skipped_late += due.too_late;
    next.state.skipped_overlap += skipped;
    next.state.buffered = buffered;
    next.state.fires += fired.tasks.len() as u64;
    for (_, fire) in fired.tasks {
        remember(&mut next.state, fire);
    }
    next.state.next_fire = if ended {
        None
    } else {
        due.next_fire
            .filter(|next_fire| next.end_at.is_none_or(|end| *next_fire <= end))
    };
    next.state.updated_at = core.clock.now();
    match core.store.update_schedule(next, read).await {
        // Another node looked at it too: its record stands, and the fires
        // were the same tasks (same idempotency keys).
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

async fn previous_running(tasks: &TaskManager, schedule: &Schedule) -> EngineResult<bool> {
    match schedule.state.recent.first() {
        Some(previous) => still_running(tasks, previous.task_id).await,
        None => Ok(false),
    }
}

/// Whether task `id` exists and has not ended.
async fn still_running(tasks: &TaskManager, id: TaskId) -> EngineResult<bool> {
    match tasks.get(id).await {
        Ok(task) => Ok(!task.status.is_terminal()),
        Err(EngineError::TaskNotFound(_)) => Ok(false),
        Err(error) => Err(error),
    }
}
