//! `/api/v1/schedules`: the schedule calls over REST. Bodies are the
//! `ScheduleDefinition` and `Schedule` messages in the bridge's JSON, the
//! same as `ScheduleService` takes and answers.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};

use super::json::RestJson;
use super::{ApiError, RestState, json_body, optional_json_body};
use crate::api::proto;
use crate::auth::Principal;

type Caller = Option<Extension<Arc<Principal>>>;

fn principal(caller: &Caller) -> Option<&Arc<Principal>> {
    caller.as_ref().map(|Extension(principal)| principal)
}

pub(super) async fn list(State(state): State<RestState>) -> Result<RestJson<proto::ListSchedulesResponse>, ApiError> {
    Ok(RestJson(state.schedules.list().await?))
}

pub(super) async fn create(
    State(state): State<RestState>,
    caller: Caller,
    body: Body,
) -> Result<RestJson<proto::Schedule>, ApiError> {
    let written: proto::ScheduleDefinition = json_body(body).await?;
    Ok(RestJson(state.schedules.create(principal(&caller), written).await?))
}

pub(super) async fn get(
    State(state): State<RestState>,
    Path(name): Path<String>,
) -> Result<RestJson<proto::Schedule>, ApiError> {
    Ok(RestJson(state.schedules.get(&name).await?))
}

/// `PUT`: the body replaces the schedule named by the path; a name in the
/// body, if any, must be the same.
pub(super) async fn update(
    State(state): State<RestState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Body,
) -> Result<RestJson<proto::Schedule>, ApiError> {
    let mut written: proto::ScheduleDefinition = json_body(body).await?;
    if written.name.is_empty() {
        written.name = name;
    } else if written.name != name {
        return Err(ApiError::invalid(
            "name",
            format!(
                "{:?} differs from the path's {name:?}; rename by create and delete",
                written.name
            ),
        ));
    }
    Ok(RestJson(state.schedules.update(principal(&caller), written).await?))
}

pub(super) async fn delete(
    State(state): State<RestState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<RestJson<proto::DeleteScheduleResponse>, ApiError> {
    state.schedules.delete(principal(&caller), &name).await?;
    Ok(RestJson(proto::DeleteScheduleResponse {}))
}

/// Optional body of a pause: `{"note": "..."}`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    #[serde(default)]
    note: String,
}

pub(super) async fn pause(
    State(state): State<RestState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Body,
) -> Result<RestJson<proto::Schedule>, ApiError> {
    let note = optional_json_body::<PauseBody>(body).await?.unwrap_or_default().note;
    Ok(RestJson(state.schedules.pause(principal(&caller), &name, note).await?))
}

pub(super) async fn resume(
    State(state): State<RestState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<RestJson<proto::Schedule>, ApiError> {
    Ok(RestJson(state.schedules.resume(principal(&caller), &name).await?))
}

pub(super) async fn trigger(
    State(state): State<RestState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<RestJson<proto::Task>, ApiError> {
    Ok(RestJson(state.schedules.trigger(principal(&caller), &name).await?))
}

/// Body of a backfill: the range of nominal times, RFC 3339.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillBody {
    #[serde(alias = "startTime")]
    start_time: Option<pbjson_types::Timestamp>,
    #[serde(alias = "endTime")]
    end_time: Option<pbjson_types::Timestamp>,
}

pub(super) async fn backfill(
    State(state): State<RestState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Body,
) -> Result<RestJson<proto::BackfillScheduleResponse>, ApiError> {
    let range: BackfillBody = json_body(body).await?;
    let fired = state
        .schedules
        .backfill(principal(&caller), &name, range.start_time, range.end_time)
        .await?;
    Ok(RestJson(fired))
}
