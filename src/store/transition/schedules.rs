//! Schedules: created once per name, changed only by whoever read the
//! latest revision (so two nodes, or an operator and the scheduler, never
//! overwrite each other's change), deleted.

use crate::model::schedule::Schedule;
use crate::store::StoreError;
use crate::store::columns::{from_json, to_json};
use crate::store::driver::{ScheduleRow, Tx};

pub async fn create_schedule<T: Tx>(tx: &mut T, mut schedule: Schedule) -> Result<Schedule, T::Error> {
    if tx.schedule(&schedule.name).await?.is_some() {
        return Err(StoreError::Conflict(format!("name: a schedule named {:?} exists already", schedule.name)).into());
    }
    schedule.state.revision = 1;
    write(tx, &schedule).await?;
    Ok(schedule)
}

/// Writes `schedule` in place of its revision `read`.
pub async fn update_schedule<T: Tx>(tx: &mut T, mut schedule: Schedule, read: u64) -> Result<Schedule, T::Error> {
    let Some(body) = tx.schedule(&schedule.name).await? else {
        return Err(StoreError::ScheduleNotFound(schedule.name).into());
    };
    let stored: Schedule = from_json("body", &body)?;
    if stored.state.revision != read {
        return Err(StoreError::Conflict(format!(
            "schedule {:?} changed since it was read (revision {read}, now {})",
            schedule.name, stored.state.revision
        ))
        .into());
    }
    schedule.state.revision = read + 1;
    write(tx, &schedule).await?;
    Ok(schedule)
}

pub async fn delete_schedule<T: Tx>(tx: &mut T, name: &str) -> Result<bool, T::Error> {
    tx.delete_schedule(name).await
}

async fn write<T: Tx>(tx: &mut T, schedule: &Schedule) -> Result<(), T::Error> {
    let body = to_json(schedule);
    tx.write_schedule(&ScheduleRow {
        name: &schedule.name,
        next_fire: schedule.state.next_look(),
        paused: schedule.paused.is_some(),
        revision: i64::try_from(schedule.state.revision).unwrap_or(i64::MAX),
        body: &body,
    })
    .await
}
