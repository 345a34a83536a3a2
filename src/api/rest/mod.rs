//! The REST bridge: the seed's documented paths over the same engine as
//! gRPC (not a loopback gRPC client). Bodies are the proto3 JSON mapping of
//! the same messages, through the generated pbjson serde impls, so a task
//! reads the same from curl as from grpcurl.

mod error;
pub mod json;
mod openapi;
mod schedules;

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use self::json::RestJson;
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

use std::sync::Arc;

use crate::api::access;
use crate::api::convert;
use crate::api::proto;
use crate::api::schedule_calls::ScheduleCalls;
use crate::api::system_convert::{alert_to_proto, current_load};
use crate::api::worker_convert;
use crate::auth::Principal;
use crate::engine::{Admin, TaskManager, Workers};
use crate::model::{TaskEvent, TaskFilter, Timestamp};
use crate::monitor::{History, HistoryPoint, ResourceMonitor};
use crate::net::{ConnectionInfo, WatchSlot};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct RestState {
    pub tasks: TaskManager,
    pub workers: Workers,
    pub admin: Admin,
    pub schedules: ScheduleCalls,
    pub monitor: ResourceMonitor,
    /// The node's recent history, for charts that start full.
    pub history: History,
    /// Ends event streams when the server stops.
    pub stopping: CancellationToken,
}

/// The REST routes, to merge with the gRPC ones on one listener.
pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/api/v1/tasks", post(submit_task).get(list_tasks))
        .route("/api/v1/tasks/batch", post(submit_tasks))
        .route("/api/v1/tasks/run", post(run_task))
        .route("/api/v1/tasks/stats", get(task_stats))
        .route("/api/v1/tasks/{task_id}", get(get_task))
        .route("/api/v1/tasks/{task_id}/cancel", post(cancel_task))
        .route("/api/v1/tasks/{task_id}/attempts", get(task_attempts))
        .route("/api/v1/tasks/{task_id}/events", get(task_events))
        .route("/api/v1/events", get(events))
        .route("/api/v1/task-types", get(task_types))
        .route(
            "/api/v1/task-types/{task_type}",
            axum::routing::delete(delete_task_type),
        )
        .route("/api/v1/schedules", get(schedules::list).post(schedules::create))
        .route(
            "/api/v1/schedules/{name}",
            get(schedules::get).put(schedules::update).delete(schedules::delete),
        )
        .route("/api/v1/schedules/{name}/pause", post(schedules::pause))
        .route("/api/v1/schedules/{name}/resume", post(schedules::resume))
        .route("/api/v1/schedules/{name}/trigger", post(schedules::trigger))
        .route("/api/v1/schedules/{name}/backfill", post(schedules::backfill))
        .route("/api/v1/workers", get(workers))
        .route("/api/v1/system/load", get(system_load))
        .route("/api/v1/system/alerts", get(system_alerts))
        .route("/api/v1/system/history", get(system_history))
        .route("/api/v1/system/events", get(system_events))
        .route("/", get(crate::api::dashboard::page))
        .route("/dashboard", get(crate::api::dashboard::page))
        .route("/dashboard/{file}", get(crate::api::dashboard::asset))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such path")
}

/// Reads a JSON body into a generated message; errors name the field.
async fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    optional_json_body(body)
        .await?
        .ok_or_else(|| ApiError::invalid("body", "must be a JSON object"))
}

/// Like `json_body`, for bodies that may be left empty (`None`).
async fn optional_json_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<Option<T>, ApiError> {
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::invalid("body", format!("larger than {MAX_BODY_BYTES} bytes or unreadable")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut deserializer)
        .map(Some)
        .map_err(body_error)
}

/// A JSON decoding error, named by where in the body it happened.
fn body_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let field = match path.as_str() {
        "." | "?" | "" => "body".to_string(),
        _ => path,
    };
    ApiError::invalid(field, error.into_inner())
}

fn task_id(text: &str) -> Result<crate::model::TaskId, ApiError> {
    convert::task_id("task_id", text).map_err(ApiError::from)
}

async fn submit_task(
    State(state): State<RestState>,
    principal: Option<Extension<Arc<Principal>>>,
    body: Body,
) -> Result<RestJson<proto::Task>, ApiError> {
    let request: proto::SubmitTaskRequest = json_body(body).await?;
    access::check_task_types(
        principal.as_ref().map(|Extension(principal)| principal),
        [request.task_type.as_str()],
    )
    .map_err(ApiError::permission_denied)?;
    let new_task = convert::new_task(request, "")?;
    let task = state.tasks.submit(new_task).await?;
    Ok(RestJson(convert::task_to_proto(&task)))
}

async fn submit_tasks(
    State(state): State<RestState>,
    principal: Option<Extension<Arc<Principal>>>,
    body: Body,
) -> Result<RestJson<proto::SubmitTasksResponse>, ApiError> {
    let request: proto::SubmitTasksRequest = json_body(body).await?;
    access::check_task_types(
        principal.as_ref().map(|Extension(principal)| principal),
        request.tasks.iter().map(|task| task.task_type.as_str()),
    )
    .map_err(ApiError::permission_denied)?;
    let new_tasks = convert::new_tasks(request.tasks)?;
    let tasks = state.tasks.submit_batch(new_tasks).await?;
    Ok(RestJson(proto::SubmitTasksResponse {
        tasks: tasks.iter().map(convert::task_to_proto).collect(),
    }))
}

/// Submits one task and answers it once it ended (or the wait passed).
async fn run_task(
    State(state): State<RestState>,
    principal: Option<Extension<Arc<Principal>>>,
    connection: Option<Extension<ConnectionInfo>>,
    body: Body,
) -> Result<RestJson<proto::Task>, ApiError> {
    let _slot = watch_slot(connection)?;
    let request: proto::RunTaskRequest = json_body(body).await?;
    if let Some(task) = &request.task {
        access::check_task_types(
            principal.as_ref().map(|Extension(principal)| principal),
            [task.task_type.as_str()],
        )
        .map_err(ApiError::permission_denied)?;
    }
    let (new_task, wait) = convert::run_request(request)?;
    let task = state
        .tasks
        .run(new_task, wait)
        .await
        .map_err(|error| convert::within("task", error))?;
    Ok(RestJson(convert::task_to_proto(&task)))
}

async fn get_task(State(state): State<RestState>, Path(id): Path<String>) -> Result<RestJson<proto::Task>, ApiError> {
    let task = state.tasks.get(task_id(&id)?).await?;
    Ok(RestJson(convert::task_to_proto(&task)))
}

/// The attempt history of a task.
async fn task_attempts(
    State(state): State<RestState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let task = json::to_value(&convert::task_to_proto(&state.tasks.get(task_id(&id)?).await?));
    Ok(Json(
        serde_json::json!({"task_id": task["id"], "attempts": task["attempts"]}),
    ))
}

/// Optional body of a cancel: `{"reason": "..."}`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: String,
}

async fn cancel_task(
    State(state): State<RestState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<RestJson<proto::Task>, ApiError> {
    let id = task_id(&id)?;
    let body: Option<CancelBody> = optional_json_body(body).await?;
    let reason = body.map(|body| body.reason).unwrap_or_default();
    let task = state.tasks.cancel(id, reason).await?;
    Ok(RestJson(convert::task_to_proto(&task)))
}

async fn task_stats(State(state): State<RestState>) -> Result<RestJson<proto::TaskStats>, ApiError> {
    Ok(RestJson(convert::stats_to_proto(&state.tasks.stats().await?)))
}

/// Query parameters of list and event-stream requests. Repeat a parameter
/// (or separate values with commas) to match any of several values.
#[derive(Default)]
struct ListQuery {
    filter: TaskFilter,
    page_size: i32,
    page_token: String,
}

fn parse_query(raw: Option<&str>, allow_paging: bool) -> Result<ListQuery, ApiError> {
    let mut statuses = Vec::new();
    let mut priorities = Vec::new();
    let mut task_types = Vec::new();
    let mut labels = std::collections::HashMap::new();
    let mut query = ListQuery::default();
    let mut created_after = None;
    let mut created_before = None;
    let mut name_contains = String::new();
    let mut depends_on = String::new();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let values = || value.split(',').map(str::trim).filter(|item| !item.is_empty());
        match key.as_ref() {
            "status" => {
                for name in values() {
                    let status = proto::TaskStatus::from_str_name(name)
                        .filter(|status| *status != proto::TaskStatus::Unspecified)
                        .ok_or_else(|| ApiError::invalid("status", format!("{name:?} is not a task status")))?;
                    statuses.push(status as i32);
                }
            }
            "priority" => {
                for name in values() {
                    let priority = proto::TaskPriority::from_str_name(name)
                        .filter(|priority| *priority != proto::TaskPriority::Unspecified)
                        .ok_or_else(|| ApiError::invalid("priority", format!("{name:?} is not a priority")))?;
                    priorities.push(priority as i32);
                }
            }
            "task_type" => task_types.extend(values().map(str::to_string)),
            "label" => {
                let (label_key, label_value) = value
                    .split_once(':')
                    .ok_or_else(|| ApiError::invalid("label", format!("{value:?} is not key:value")))?;
                labels.insert(label_key.to_string(), label_value.to_string());
            }
            "created_after" | "created_before" => {
                let time = humantime::parse_rfc3339_weak(&value)
                    .map_err(|error| ApiError::invalid(key.as_ref(), format!("{value:?}: {error}")))?;
                let time = Timestamp::from_system_time(time);
                if key == "created_after" {
                    created_after = Some(convert::timestamp_to_proto(time));
                } else {
                    created_before = Some(convert::timestamp_to_proto(time));
                }
            }
            "name" => name_contains = value.into_owned(),
            "depends_on" => depends_on = value.into_owned(),
            "page_size" if allow_paging => {
                query.page_size = value
                    .parse()
                    .map_err(|_| ApiError::invalid("page_size", format!("{value:?} is not a number")))?;
            }
            "page_token" if allow_paging => query.page_token = value.into_owned(),
            other => return Err(ApiError::invalid(other, "unknown query parameter")),
        }
    }
    let request = proto::ListTasksRequest {
        statuses,
        task_types,
        priorities,
        labels,
        created_after,
        created_before,
        name_contains,
        depends_on,
        ..Default::default()
    };
    query.filter = convert::list_filter(&request).map_err(|error| match error {
        // The query spells it `name`.
        crate::engine::EngineError::InvalidArgument { field, message } if field == "name_contains" => {
            ApiError::invalid("name", message)
        }
        other => other.into(),
    })?;
    Ok(query)
}

async fn list_tasks(
    State(state): State<RestState>,
    RawQuery(raw): RawQuery,
) -> Result<RestJson<proto::ListTasksResponse>, ApiError> {
    let query = parse_query(raw.as_deref(), true)?;
    let page_size = convert::page_size(query.page_size)?;
    let before = convert::decode_page_token(&query.page_token)?;
    let page = state.tasks.list(query.filter, page_size, before).await?;
    Ok(RestJson(proto::ListTasksResponse {
        tasks: page.tasks.iter().map(convert::task_to_proto).collect(),
        next_page_token: page.next_before.map(convert::encode_page_token).unwrap_or_default(),
    }))
}

fn sse_event(event: &TaskEvent) -> Result<Event, Infallible> {
    let message = convert::event_to_proto(event);
    let name = proto::task_event::Kind::try_from(message.kind)
        .map(|kind| kind.as_str_name())
        .unwrap_or("EVENT");
    Ok(Event::default().event(name).data(json::to_string(&message)))
}

fn event_stream(
    state: &RestState,
    events: impl Stream<Item = TaskEvent> + Send + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    let stopping = state.stopping.clone().cancelled_owned();
    Sse::new(events.map(|event| sse_event(&event)).take_until(stopping))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Server-Sent Events for one task: its state, each change, then the end.
async fn task_events(
    State(state): State<RestState>,
    connection: Option<Extension<ConnectionInfo>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let slot = watch_slot(connection)?;
    let events = state.tasks.watch_task(task_id(&id)?).await?;
    Ok(event_stream(&state, access::holding_slot(events, slot)).into_response())
}

/// A place for one more event stream on the caller's connection.
fn watch_slot(connection: Option<Extension<ConnectionInfo>>) -> Result<Option<WatchSlot>, ApiError> {
    access::open_watch(connection.as_ref().map(|Extension(connection)| connection)).map_err(ApiError::overloaded)
}

/// Server-Sent Events for every task matching the query's filter.
async fn events(
    State(state): State<RestState>,
    connection: Option<Extension<ConnectionInfo>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let slot = watch_slot(connection)?;
    let query = parse_query(raw.as_deref(), false)?;
    let events = state.tasks.watch_tasks(query.filter);
    Ok(event_stream(&state, access::holding_slot(events, slot)).into_response())
}

async fn task_types(State(state): State<RestState>) -> RestJson<proto::ListTaskTypesResponse> {
    RestJson(worker_convert::task_types_to_proto(&state.tasks.task_types()))
}

async fn delete_task_type(
    State(state): State<RestState>,
    Path(task_type): Path<String>,
) -> Result<RestJson<proto::DeleteTaskTypeResponse>, ApiError> {
    state.admin.delete_task_type(&task_type).await?;
    Ok(RestJson(proto::DeleteTaskTypeResponse {}))
}

async fn workers(State(state): State<RestState>) -> RestJson<proto::ListWorkersResponse> {
    RestJson(proto::ListWorkersResponse {
        workers: state
            .workers
            .list()
            .iter()
            .map(worker_convert::worker_to_proto)
            .collect(),
    })
}

async fn system_load(State(state): State<RestState>) -> RestJson<proto::SystemLoad> {
    RestJson(current_load(&state.monitor, &state.tasks))
}

async fn system_alerts(State(state): State<RestState>) -> RestJson<proto::ListAlertsResponse> {
    let (active, recent) = state.monitor.alerts(100);
    RestJson(proto::ListAlertsResponse {
        active: active.iter().map(alert_to_proto).collect(),
        recent: recent.iter().map(alert_to_proto).collect(),
    })
}

/// The node's history, oldest point first: task rates, queue wait, the
/// queue, the limit in force and the machine, one point per interval.
async fn system_history(State(state): State<RestState>) -> Json<serde_json::Value> {
    let points: Vec<serde_json::Value> = state.history.points().iter().map(history_point).collect();
    Json(serde_json::json!({
        "interval_seconds": state.history.interval().as_secs_f64(),
        "points": points,
    }))
}

fn history_point(point: &HistoryPoint) -> serde_json::Value {
    serde_json::json!({
        "time": point.time.to_rfc3339(),
        "submitted": point.submitted,
        "completed": point.completed,
        "failed": point.failed,
        "submitted_per_second": point.submitted_per_second,
        "completed_per_second": point.completed_per_second,
        "failed_per_second": point.failed_per_second,
        "queue_wait_p50_seconds": point.queue_wait_p50_seconds,
        "queue_wait_p95_seconds": point.queue_wait_p95_seconds,
        "pending": point.pending,
        "running": point.running,
        "effective_concurrency_limit": point.effective_concurrency_limit,
        "cpu_percent": point.cpu_percent,
        "memory_percent": point.memory_percent,
        "disk_percent": point.disk_percent,
        "io_wait_percent": point.io_wait_percent,
    })
}

/// Server-Sent Events of the machine: each sample (as the load it led to)
/// and every alert raised or cleared.
async fn system_events(
    State(state): State<RestState>,
    connection: Option<Extension<ConnectionInfo>>,
) -> Result<Response, ApiError> {
    let slot = watch_slot(connection)?;
    use tokio_stream::wrappers::BroadcastStream;

    use crate::monitor::MonitorEvent;
    let stream_state = state.clone();
    let events = BroadcastStream::new(state.monitor.subscribe()).filter_map(move |event| {
        let state = stream_state.clone();
        async move {
            let event = match event {
                Ok(MonitorEvent::Sampled(_)) => Event::default()
                    .event("SAMPLED")
                    .data(json::to_string(&current_load(&state.monitor, &state.tasks))),
                Ok(MonitorEvent::AlertRaised(alert)) => Event::default()
                    .event("ALERT_RAISED")
                    .data(json::to_string(&alert_to_proto(&alert))),
                Ok(MonitorEvent::AlertCleared(alert)) => Event::default()
                    .event("ALERT_CLEARED")
                    .data(json::to_string(&alert_to_proto(&alert))),
                Err(_) => Event::default().event("LAGGED").data("{}"),
            };
            Some(Ok::<Event, Infallible>(event))
        }
    });
    let stopping = state.stopping.clone().cancelled_owned();
    Ok(Sse::new(access::holding_slot(events.take_until(stopping), slot))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Liveness: the process serves requests.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the engine accepts work and the store answers.
async fn readyz(State(state): State<RestState>) -> Response {
    match state.admin.check_ready().await {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(crate::engine::EngineError::ShuttingDown) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "shutting down"})),
        )
            .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": format!("store unavailable: {error}")})),
        )
            .into_response(),
    }
}

/// `GET /metrics`: every metric, in the OpenMetrics text format.
async fn metrics(State(state): State<RestState>) -> Result<impl IntoResponse, ApiError> {
    let stats = state.tasks.stats().await?;
    let text = crate::api::metrics::render(&state.admin, &state.monitor, stats);
    Ok((
        [(axum::http::header::CONTENT_TYPE, crate::api::metrics::CONTENT_TYPE)],
        text,
    ))
}
