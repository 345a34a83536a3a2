//! The OpenAPI 3 document of the REST bridge, served at
//! `/api/v1/openapi.json`. Schemas follow what the bridge writes
//! (`rest/json.rs`): the schema's snake_case field names, every field
//! present, enums as names, integers as JSON numbers, timestamps in RFC
//! 3339 UTC, durations as "1.5s". Requests may use these names or the
//! proto3 JSON mapping's lowerCamelCase ones.

use axum::Json;
use serde_json::{Value, json};

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": json_content(schema)})
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": json_content(reference("Error"))})
}

fn task_id_parameter() -> Value {
    json!({"name": "task_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"},
           "description": "The task's id"})
}

fn filter_parameters(paging: bool) -> Value {
    let mut parameters = vec![
        json!({"name": "status", "in": "query", "style": "form", "explode": true,
               "schema": {"type": "array", "items": reference("TaskStatus")},
               "description": "Only tasks in one of these statuses"}),
        json!({"name": "task_type", "in": "query", "style": "form", "explode": true,
               "schema": {"type": "array", "items": {"type": "string"}},
               "description": "Only tasks of one of these types"}),
        json!({"name": "priority", "in": "query", "style": "form", "explode": true,
               "schema": {"type": "array", "items": reference("TaskPriority")},
               "description": "Only tasks of one of these priorities"}),
        json!({"name": "label", "in": "query", "style": "form", "explode": true,
               "schema": {"type": "array", "items": {"type": "string", "pattern": "^[^:]*:.*$"}},
               "description": "key:value; only tasks carrying every given label"}),
        json!({"name": "created_after", "in": "query", "schema": {"type": "string", "format": "date-time"}}),
        json!({"name": "created_before", "in": "query", "schema": {"type": "string", "format": "date-time"}}),
        json!({"name": "name", "in": "query", "schema": {"type": "string", "maxLength": 256},
               "description": "Only tasks whose name contains this, ignoring case"}),
        json!({"name": "depends_on", "in": "query", "schema": {"type": "string", "format": "uuid"},
               "description": "Only the direct dependents of this task"}),
    ];
    if paging {
        parameters.push(json!({"name": "page_size", "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": 1000},
            "description": "Most tasks in one page; 0 or absent means 100"}));
        parameters.push(
            json!({"name": "page_token", "in": "query", "schema": {"type": "string"},
            "description": "next_page_token of the previous page"}),
        );
    }
    Value::Array(parameters)
}

fn schemas() -> Value {
    let timestamp = json!({"type": "string", "format": "date-time"});
    let duration = json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"});
    let uint64 = json!({"type": "integer", "minimum": 0});
    let counts = json!({"type": "object", "properties": {
        "pending": uint64, "scheduled": uint64, "running": uint64, "completed": uint64,
        "failed": uint64, "cancelled": uint64, "waiting": uint64, "total": uint64}});
    let machine = json!({"type": "object", "properties": {
        "cpu_percent": {"type": "number"}, "memory_percent": {"type": "number"},
        "io_wait_percent": {"type": "number"}, "effective_concurrency_limit": {"type": "integer"},
        "throttled": {"type": "boolean"}}});
    let usage = json!({"type": "object", "properties": {
        "time": timestamp, "cpu_percent": {"type": "number"}, "memory_percent": {"type": "number"},
        "disk_percent": {"type": "number"}, "io_wait_percent": {"type": "number"}}});
    let history = history_schema(&timestamp);
    let mut all = json!({
        "Error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "description": "INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, UNAVAILABLE, ..."},
            "message": {"type": "string"},
            "field": {"type": "string", "description": "The offending field, for INVALID_ARGUMENT"}}},
        "TaskStatus": {"type": "string", "enum": ["PENDING", "SCHEDULED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "WAITING"]},
        "TaskPriority": {"type": "string", "enum": ["LOW", "NORMAL", "HIGH", "CRITICAL"]},
        "TaskDependency": {"type": "object", "properties": {
            "task_id": {"type": "string"},
            "required_status": {"type": "string", "enum": ["TASK_STATUS_UNSPECIFIED", "COMPLETED", "FAILED", "CANCELLED", "PENDING", "SCHEDULED", "RUNNING", "WAITING"]},
            "batch_ref": {"type": "string"}}},
        "RetryPolicy": {"type": "object", "properties": {
            "initial_backoff": duration, "multiplier": {"type": "number"},
            "max_backoff": duration, "jitter": {"type": "number"}}},
        "SubmitTaskRequest": {"type": "object", "required": ["task_type"], "properties": {
            "name": {"type": "string"},
            "task_type": {"type": "string", "pattern": "^[a-z0-9_.-]{1,64}$",
                         "description": "lower-case letters, digits, '_', '.', '-'"},
            "params": {"type": "object"},
            "priority": {"type": "string", "enum": ["TASK_PRIORITY_UNSPECIFIED", "LOW", "NORMAL", "HIGH", "CRITICAL"]},
            "dependencies": {"type": "array", "items": reference("TaskDependency")},
            "max_retries": {"type": "integer", "minimum": 0},
            "timeout": duration,
            "run_at": timestamp,
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "idempotency_key": {"type": "string"},
            "retry_policy": reference("RetryPolicy"),
            "batch_ref": {"type": "string"}}},
        "SubmitTasksRequest": {"type": "object", "properties": {
            "tasks": {"type": "array", "items": reference("SubmitTaskRequest")}}},
        "SubmitTasksResponse": {"type": "object", "properties": {
            "tasks": {"type": "array", "items": reference("Task")}}},
        "Attempt": {"type": "object", "properties": {
            "number": {"type": "integer"}, "started_at": timestamp, "finished_at": timestamp,
            "outcome": {"type": "string", "enum": ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "INTERRUPTED", "LEASE_EXPIRED", "RELEASED"],
                "description": "absent while the attempt runs"},
            "error": {"type": "string"}, "worker": {"type": "string"},
            "started_under": machine, "finished_under": machine}},
        "Task": {"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "task_type": {"type": "string"},
            "params": {"type": "object"}, "priority": reference("TaskPriority"), "status": reference("TaskStatus"),
            "dependencies": {"type": "array", "items": reference("TaskDependency")},
            "max_retries": {"type": "integer"}, "retry_count": {"type": "integer"},
            "timeout": duration, "run_at": timestamp, "created_at": timestamp, "started_at": timestamp,
            "completed_at": timestamp,
            "progress": {"type": "object", "properties": {"percent": {"type": "number"}, "message": {"type": "string"}}},
            "result": {}, "error": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "idempotency_key": {"type": "string"},
            "attempts": {"type": "array", "items": reference("Attempt")},
            "retry_policy": reference("RetryPolicy"), "status_reason": {"type": "string"}, "updated_at": timestamp,
            "revision": uint64}},
        "ListTasksResponse": {"type": "object", "properties": {
            "tasks": {"type": "array", "items": reference("Task")}, "next_page_token": {"type": "string"}}},
        "TaskStats": {"type": "object", "properties": {
            "counts": counts,
            "by_type": {"type": "array", "items": {"type": "object", "properties": {
                "task_type": {"type": "string"}, "counts": counts, "handler_available": {"type": "boolean"},
                "concurrency_limit": {"type": "integer"}, "workers": {"type": "integer"}}}},
            "max_concurrent_tasks": {"type": "integer"}, "effective_concurrency_limit": {"type": "integer"},
            "concurrency_limit_reason": {"type": "string"},
            "unserved_task_types": {"type": "array", "items": {"type": "string"}},
            "submitted_since_start": uint64, "failed_attempts_since_start": uint64, "retries_since_start": uint64,
            "success_rate": {"type": "number", "description": "completed over ended tasks; absent until a task has ended"},
            "uptime": duration}},
        "Attempts": {"type": "object", "properties": {
            "task_id": {"type": "string"}, "attempts": {"type": "array", "items": reference("Attempt")}}},
        "SystemLoad": {"type": "object", "properties": {
            "usage": usage, "load": {"type": "number"}, "pressure": {"type": "number"},
            "most_loaded_resource": {"type": "string"}, "max_concurrent_tasks": {"type": "integer"},
            "recommended_concurrency": {"type": "integer"}, "effective_concurrency_limit": {"type": "integer"},
            "concurrency_limit_reason": {"type": "string"}, "throttled": {"type": "boolean"},
            "running_tasks": {"type": "integer"},
            "thresholds": {"type": "object", "properties": {
                "cpu_percent": {"type": "number"}, "memory_percent": {"type": "number"},
                "disk_percent": {"type": "number"}, "io_wait_percent": {"type": "number"}}},
            "monitoring_enabled": {"type": "boolean"}}},
        "Alert": {"type": "object", "properties": {
            "id": uint64, "resource": {"type": "string", "enum": ["RESOURCE_UNSPECIFIED", "CPU", "MEMORY", "DISK", "IO_WAIT"]},
            "value": {"type": "number"}, "peak": {"type": "number"}, "threshold": {"type": "number"},
            "started_at": timestamp, "ended_at": timestamp, "active": {"type": "boolean"}, "message": {"type": "string"}}},
        "Alerts": {"type": "object", "properties": {
            "active": {"type": "array", "items": reference("Alert")},
            "recent": {"type": "array", "items": reference("Alert")}}},
        "TaskTypes": {"type": "object", "properties": {
            "task_types": {"type": "array", "items": {"type": "object", "properties": {
                "task_type": {"type": "string"}, "handler_available": {"type": "boolean"},
                "workers": {"type": "integer"}}}}}},
        "Workers": {"type": "object", "properties": {
            "workers": {"type": "array", "items": {"type": "object", "properties": {
                "worker_id": {"type": "string"},
                "task_types": {"type": "array", "items": {"type": "string"}},
                "capacity": {"type": "integer"}, "held": {"type": "integer"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "connected_at": timestamp, "last_seen": timestamp, "draining": {"type": "boolean"},
                "finished": uint64}}}}},
        "History": history,
        "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
    });
    if let (Some(all), Value::Object(schedules)) = (all.as_object_mut(), schedule_schemas(&timestamp, &duration)) {
        all.extend(schedules);
    }
    all
}

/// The schedule messages (`/api/v1/schedules`).
fn schedule_schemas(timestamp: &Value, duration: &Value) -> Value {
    let uint64 = json!({"type": "integer", "minimum": 0});
    let name = json!({"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"});
    let overlap = json!({"type": "string", "enum": ["OVERLAP_POLICY_UNSPECIFIED", "OVERLAP_POLICY_SKIP",
        "OVERLAP_POLICY_BUFFER_ONE", "OVERLAP_POLICY_ALLOW_ALL", "OVERLAP_POLICY_CANCEL_RUNNING"],
        "description": "What a fire does while the task of an earlier one runs; unset means SKIP"});
    let cron = json!({"type": "object", "required": ["expression"], "properties": {
        "expression": {"type": "string", "description": "Five fields (minute hour day-of-month month day-of-week), or six with seconds first"},
        "time_zone": {"type": "string", "description": "An IANA time zone, e.g. Europe/Paris; empty means UTC"}}});
    let interval = json!({"type": "object", "required": ["every"], "properties": {
        "every": duration, "offset": duration}});
    let spec = json!({"type": "object", "description": "Exactly one of cron and interval", "properties": {
        "cron": cron, "interval": interval, "jitter": duration}});
    let template = json!({"type": "object", "required": ["task_type"], "properties": {
        "task_type": {"type": "string"}, "params": {"type": "object"},
        "priority": {"type": "string", "enum": ["TASK_PRIORITY_UNSPECIFIED", "LOW", "NORMAL", "HIGH", "CRITICAL"]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "max_retries": {"type": "integer", "minimum": 0, "nullable": true}, "timeout": duration,
        "retry_policy": reference("RetryPolicy")}});
    let catch_up = json!({"type": "object", "properties": {
        "window": duration, "latest_only": {"type": "boolean"}}});
    json!({
        "ScheduleDefinition": {"type": "object", "required": ["name", "spec", "template"], "properties": {
            "name": name, "spec": spec, "template": template, "overlap": overlap, "catch_up": catch_up,
            "start_time": timestamp, "end_time": timestamp,
            "max_fires": {"type": "integer", "minimum": 0, "nullable": true}}},
        "Schedule": {"type": "object", "properties": {
            "definition": reference("ScheduleDefinition"),
            "paused": {"type": "boolean"}, "pause_note": {"type": "string"},
            "next_fire_times": {"type": "array", "items": timestamp},
            "recent_fires": {"type": "array", "items": {"type": "object", "properties": {
                "nominal_time": timestamp, "task_id": {"type": "string"},
                "status": {"type": "string", "enum": ["TASK_STATUS_UNSPECIFIED", "PENDING", "SCHEDULED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "WAITING"],
                           "description": "The fire's task's status now; unspecified when purged or not looked up (a list looks up the latest fire only)"}}}},
            "fires": uint64, "skipped_overlap": uint64, "skipped_late": uint64,
            "created_at": timestamp, "updated_at": timestamp}},
        "ListSchedulesResponse": {"type": "object", "properties": {
            "schedules": {"type": "array", "items": reference("Schedule")}}},
        "BackfillRange": {"type": "object", "required": ["start_time", "end_time"], "additionalProperties": false,
            "properties": {"start_time": timestamp, "end_time": timestamp}},
        "BackfillScheduleResponse": {"type": "object", "properties": {
            "tasks": {"type": "array", "items": reference("Task")}}},
        "Empty": {"type": "object"}
    })
}

/// The node's history (`/api/v1/system/history`), apart: one macro
/// holding every schema would pass the compiler's recursion limit.
fn history_schema(timestamp: &Value) -> Value {
    let number = json!({"type": "number"});
    let maybe = json!({"type": "number", "nullable": true});
    let count = json!({"type": "integer", "minimum": 0});
    let point = json!({"type": "object", "properties": {
        "time": timestamp, "submitted": count, "completed": count, "failed": count,
        "submitted_per_second": number, "completed_per_second": number, "failed_per_second": number,
        "queue_wait_p50_seconds": maybe, "queue_wait_p95_seconds": maybe,
        "pending": count, "running": count, "effective_concurrency_limit": count,
        "cpu_percent": maybe, "memory_percent": maybe, "disk_percent": maybe, "io_wait_percent": maybe}});
    json!({"type": "object", "required": ["interval_seconds", "points"], "properties": {
        "interval_seconds": number, "points": {"type": "array", "items": point}}})
}

/// The `/api/v1/schedules` paths.
fn schedule_paths(bad_request: &Value, foreign: &Value, not_json: &Value, unavailable: &Value) -> Value {
    let name = json!({"name": "name", "in": "path", "required": true,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}, "description": "The schedule's name"});
    let not_found = error("No schedule with this name");
    // Beside a foreign page's write: a token whose scopes do not allow it.
    let denied = error(&format!(
        "{} Or the token's scopes do not allow it: a schedule of an admin task type needs scope admin.",
        foreign["description"].as_str().unwrap_or_default()
    ));
    let refused = |extra: Vec<(&str, Value)>| {
        let mut responses =
            json!({"400": bad_request, "403": denied, "404": not_found, "415": not_json, "503": unavailable});
        for (code, response) in extra {
            responses[code] = response;
        }
        responses
    };
    let with = |mut responses: Value, code: &str, response: Value| {
        responses[code] = response;
        responses
    };
    json!({
        "/api/v1/schedules": {
            "get": {"summary": "Every schedule, by name, with its next fire times and recent fires", "operationId": "listSchedules",
                "responses": {"200": ok("The schedules", reference("ListSchedulesResponse")), "503": unavailable}},
            "post": {"summary": "Create a schedule", "operationId": "createSchedule",
                "requestBody": {"required": true, "content": json_content(reference("ScheduleDefinition"))},
                "responses": with(refused(vec![("409", error("A schedule with this name exists"))]), "200",
                    ok("The schedule, with its next fire times", reference("Schedule")))}},
        "/api/v1/schedules/{name}": {
            "get": {"summary": "One schedule", "operationId": "getSchedule", "parameters": [name],
                "responses": {"200": ok("The schedule", reference("Schedule")), "400": bad_request,
                              "404": error("No schedule with this name"), "503": unavailable}},
            "put": {"summary": "Replace a schedule's spec, template and policies", "operationId": "updateSchedule",
                "parameters": [name],
                "requestBody": {"required": true, "content": json_content(reference("ScheduleDefinition"))},
                "responses": with(refused(vec![("409", error("The schedule changed meanwhile; try again"))]), "200",
                    ok("The schedule as it now is", reference("Schedule")))},
            "delete": {"summary": "Delete a schedule; its tasks stay", "operationId": "deleteSchedule", "parameters": [name],
                "responses": with(refused(vec![]), "200", ok("Deleted", reference("Empty")))}},
        "/api/v1/schedules/{name}/pause": {
            "post": {"summary": "Pause a schedule, with a note", "operationId": "pauseSchedule", "parameters": [name],
                "requestBody": {"required": false, "content": json_content(json!({"type": "object",
                    "properties": {"note": {"type": "string"}}, "additionalProperties": false}))},
                "responses": with(refused(vec![]), "200", ok("The paused schedule", reference("Schedule")))}},
        "/api/v1/schedules/{name}/resume": {
            "post": {"summary": "Resume a paused schedule", "operationId": "resumeSchedule", "parameters": [name],
                "responses": with(refused(vec![]), "200", ok("The schedule", reference("Schedule")))}},
        "/api/v1/schedules/{name}/trigger": {
            "post": {"summary": "Fire a schedule now; its overlap policy applies", "operationId": "triggerSchedule",
                "parameters": [name],
                "responses": with(refused(vec![("409", error("The overlap policy skipped the fire"))]), "200",
                    ok("The task of the fire", reference("Task")))}},
        "/api/v1/schedules/{name}/backfill": {
            "post": {"summary": "Fire a schedule at each time its spec names after start_time up to end_time (at most 1000)",
                "operationId": "backfillSchedule", "parameters": [name],
                "requestBody": {"required": true, "content": json_content(reference("BackfillRange"))},
                "responses": with(refused(vec![]), "200", ok("The tasks, oldest first", reference("BackfillScheduleResponse")))}}
    })
}

/// The document itself.
pub fn spec() -> Value {
    let bad_request = error(
        "Bad input: malformed JSON, a wrong type, an unknown enum name, an oversized body, or a value out of range; `field` names it",
    );
    let not_found = error("No task with this id");
    let key_reused =
        error("The idempotency key was already used by a different request (type, params or dependencies)");
    let unavailable = error("The server is shutting down or its store is unavailable");
    let foreign = error("Sent by a web page of another origin than this server's or those in cors_origins");
    let not_json = error("A body whose content-type is not application/json");
    let event_stream = json!({"description": "Server-Sent Events; each `data` is a TaskEvent in the same JSON as the other responses",
                              "content": {"text/event-stream": {"schema": {"type": "string"}}}});
    let schedules = schedule_paths(&bad_request, &foreign, &not_json, &unavailable);
    let mut document = json!({
        "openapi": "3.0.3",
        "info": {"title": "taskd REST bridge", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The Background Task System's endpoints over the same engine as the gRPC API (taskd.v1). Bodies are the taskd.v1 messages in JSON with their snake_case field names (requests may also use the proto3 JSON mapping's lowerCamelCase names), every field present in responses, 64-bit integers as numbers, timestamps in RFC 3339 UTC."},
        "paths": {
            "/api/v1/tasks": {
                "post": {"summary": "Create a new background task", "operationId": "submitTask",
                    "requestBody": {"required": true, "content": json_content(reference("SubmitTaskRequest"))},
                    "responses": {"200": ok("The accepted task, durable (or the original task for a repeated request with its idempotency key)", reference("Task")),
                                  "400": bad_request, "403": foreign.clone(), "409": key_reused.clone(),
                                  "415": not_json.clone(), "503": unavailable}},
                "get": {"summary": "List background tasks with optional filtering", "operationId": "listTasks",
                    "parameters": filter_parameters(true),
                    "responses": {"200": ok("One page of tasks, newest first", reference("ListTasksResponse")),
                                  "400": bad_request, "503": unavailable}}},
            "/api/v1/tasks/batch": {
                "post": {"summary": "Create several tasks atomically (a DAG via batch_ref)", "operationId": "submitTasks",
                    "requestBody": {"required": true, "content": json_content(reference("SubmitTasksRequest"))},
                    "responses": {"200": ok("The accepted tasks, in request order", reference("SubmitTasksResponse")),
                                  "400": bad_request, "403": foreign.clone(), "409": key_reused,
                                  "415": not_json.clone(), "503": unavailable}}},
            "/api/v1/tasks/run": {
                "post": {"summary": "Submit one task and answer it once it has ended (or the wait passed)", "operationId": "runTask",
                    "requestBody": {"required": true, "content": json_content(json!({"type": "object", "required": ["task"], "properties": {
                        "task": reference("SubmitTaskRequest"),
                        "wait": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?s$", "description": "Longest wait; default 60s, at most 3600s"}}}))},
                    "responses": {"200": ok("The task as it ended, or as it is when the wait passed", reference("Task")),
                                  "400": bad_request.clone(), "403": foreign.clone(), "409": error("The idempotency key was already used by a different request"),
                                  "415": not_json.clone(), "429": error("The connection's watch places are taken, or the queue is full"), "503": unavailable.clone()}}},
            "/api/v1/tasks/stats": {
                "get": {"summary": "Get task statistics", "operationId": "getTaskStats",
                    "responses": {"200": ok("Counts by status and type, and the scheduler's state", reference("TaskStats"))}}},
            "/api/v1/tasks/{task_id}": {
                "get": {"summary": "Get a task by ID", "operationId": "getTask", "parameters": [task_id_parameter()],
                    "responses": {"200": ok("The task with its attempt history", reference("Task")),
                                  "400": bad_request, "404": not_found, "503": unavailable}}},
            "/api/v1/tasks/{task_id}/cancel": {
                "post": {"summary": "Cancel a task", "operationId": "cancelTask", "parameters": [task_id_parameter()],
                    "requestBody": {"required": false, "content": json_content(json!({"type": "object", "properties": {"reason": {"type": "string"}}, "additionalProperties": false}))},
                    "responses": {"200": ok("The cancelled task", reference("Task")),
                                  "400": bad_request, "403": foreign, "404": not_found,
                                  "409": error("The task had already finished"), "415": not_json,
                                  "503": unavailable}}},
            "/api/v1/tasks/{task_id}/attempts": {
                "get": {"summary": "A task's attempt history, with each attempt's error", "operationId": "getTaskAttempts",
                    "parameters": [task_id_parameter()],
                    "responses": {"200": ok("The attempts, oldest first", reference("Attempts")),
                                  "400": bad_request, "404": not_found, "503": unavailable}}},
            "/api/v1/tasks/{task_id}/events": {
                "get": {"summary": "Watch one task: its state, each change, then the end", "operationId": "watchTask",
                    "parameters": [task_id_parameter()],
                    "responses": {"200": event_stream.clone(), "400": bad_request, "404": not_found, "503": unavailable}}},
            "/api/v1/events": {
                "get": {"summary": "Watch the events of every task matching a filter", "operationId": "watchTasks",
                    "parameters": filter_parameters(false),
                    "responses": {"200": event_stream, "400": bad_request}}},
            "/api/v1/system/load": {
                "get": {"summary": "Resource usage, load and the concurrency limit in force", "operationId": "getSystemLoad",
                    "responses": {"200": ok("The latest sample and what the scheduler makes of it", reference("SystemLoad"))}}},
            "/api/v1/task-types": {
                "get": {"summary": "The task types a submit may use, and what runs each", "operationId": "listTaskTypes",
                    "responses": {"200": ok("Known task types", reference("TaskTypes"))}}},
            "/api/v1/workers": {
                "get": {"summary": "The workers connected to this server", "operationId": "listWorkers",
                    "responses": {"200": ok("Connected workers", reference("Workers"))}}},
            "/api/v1/system/history": {
                "get": {"summary": "The node's recent history: task rates, queue wait, queue, limit and machine, one point per interval", "operationId": "getSystemHistory",
                    "responses": {"200": ok("Points, oldest first (the last hour by default)", reference("History"))}}},
            "/api/v1/system/alerts": {
                "get": {"summary": "Active and recent resource alerts", "operationId": "listAlerts",
                    "responses": {"200": ok("Alerts", reference("Alerts"))}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                "responses": {"200": {"description": "OpenMetrics text format 1.0.0 (Prometheus reads it)",
                                      "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}}}},
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz",
                "responses": {"200": ok("Serving", reference("Status"))}}},
            "/readyz": {"get": {"summary": "Readiness: accepting work and the store answers", "operationId": "readyz",
                "responses": {"200": ok("Ready", reference("Status")), "503": ok("Not ready", reference("Status"))}}}
        },
        "components": {"schemas": schemas()}
    });
    if let (Some(paths), Value::Object(schedules)) = (document["paths"].as_object_mut(), schedules) {
        paths.extend(schedules);
    }
    document
}

pub async fn document() -> Json<Value> {
    Json(spec())
}
