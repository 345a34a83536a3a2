//! Every request passes here first, gRPC and REST alike: who is asking
//! (bearer token), whether their scopes allow the call, and whether the
//! server takes one more submit right now. Handlers find the caller as a
//! [`Principal`] extension.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::RwLock;
use tokio::sync::Semaphore;

use crate::auth::{ADMIN_TASK_TYPES, AuthConfig, Principal, Scope, Tokens};
use crate::net::{ConnectionInfo, WatchSlot};

/// How long a client shed for load should wait before trying again.
pub const RETRY_AFTER_MS: u64 = 1000;

/// The access rules in force; cheap to clone.
#[derive(Clone)]
pub struct Access {
    tokens: Arc<RwLock<Arc<Tokens>>>,
    config: Arc<AuthConfig>,
    submits: Arc<Semaphore>,
    max_in_flight_submits: usize,
}

/// What a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Requirement {
    Open,
    Scope(Scope),
}

impl Access {
    pub fn new(tokens: Tokens, config: AuthConfig, max_in_flight_submits: usize) -> Self {
        Access {
            tokens: Arc::new(RwLock::new(Arc::new(tokens))),
            config: Arc::new(config),
            submits: Arc::new(Semaphore::new(max_in_flight_submits.max(1))),
            max_in_flight_submits: max_in_flight_submits.max(1),
        }
    }

    /// Replaces the token table (SIGHUP); requests already admitted keep
    /// going.
    pub fn replace_tokens(&self, tokens: Tokens) {
        *self.tokens.write() = Arc::new(tokens);
    }

    pub fn enabled(&self) -> bool {
        !self.tokens.read().is_empty()
    }

    fn requirement(&self, method: &Method, path: &str) -> Requirement {
        if is_grpc_path(path) {
            return grpc_requirement(path, &self.config);
        }
        rest_requirement(method, path, &self.config)
    }
}

/// Whether `path` names a gRPC method (`/package.Service/Method`). Decided
/// by the path alone, as tonic routes: what a request declares about
/// itself must not change which rules apply to it.
pub fn is_grpc_path(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|path| path.split_once('/'))
        .is_some_and(|(service, method)| service.contains('.') && !method.is_empty() && !method.contains('/'))
}

fn grpc_requirement(path: &str, config: &AuthConfig) -> Requirement {
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    match (service, method) {
        ("grpc.health.v1.Health", _) if config.open_health => Requirement::Open,
        ("taskd.v1.TaskService", "SubmitTask" | "SubmitTasks" | "RunTask") => Requirement::Scope(Scope::Submit),
        ("taskd.v1.TaskService", "CancelTask") => Requirement::Scope(Scope::Cancel),
        ("taskd.v1.TaskService", "DeleteTaskType") => Requirement::Scope(Scope::Admin),
        ("taskd.v1.WorkerService", "ListWorkers") => Requirement::Scope(Scope::Read),
        // A schedule submits tasks: changing one needs the submit scope.
        ("taskd.v1.ScheduleService", "GetSchedule" | "ListSchedules") => Requirement::Scope(Scope::Read),
        ("taskd.v1.ScheduleService", _) => Requirement::Scope(Scope::Submit),
        ("taskd.v1.WorkerService", _) => Requirement::Scope(Scope::Worker),
        // Reads, watches, stats, the system service, reflection, and paths
        // that do not exist (they get UNIMPLEMENTED once allowed).
        _ => Requirement::Scope(Scope::Read),
    }
}

fn rest_requirement(method: &Method, path: &str, config: &AuthConfig) -> Requirement {
    if method == Method::OPTIONS {
        // CORS preflights carry no credentials by design.
        return Requirement::Open;
    }
    match path {
        // The dashboard's page and scripts hold no data; its API calls
        // carry the token the page asks for.
        "/" | "/dashboard" => Requirement::Open,
        path if path.starts_with("/dashboard/") => Requirement::Open,
        "/api/v1/openapi.json" => Requirement::Open,
        "/healthz" | "/readyz" if config.open_health => Requirement::Open,
        "/metrics" if config.open_metrics => Requirement::Open,
        "/api/v1/tasks" | "/api/v1/tasks/batch" | "/api/v1/tasks/run" if method == Method::POST => {
            Requirement::Scope(Scope::Submit)
        }
        path if method == Method::POST && path.starts_with("/api/v1/tasks/") && path.ends_with("/cancel") => {
            Requirement::Scope(Scope::Cancel)
        }
        // A schedule submits tasks: changing or running one needs the
        // submit scope (and admin for an admin task type, checked by the
        // call).
        path if method != Method::GET && method != Method::HEAD && path.starts_with("/api/v1/schedules") => {
            Requirement::Scope(Scope::Submit)
        }
        // Anything but a read is an admin's, on a path that has no other.
        path if method != Method::GET && method != Method::HEAD && path.starts_with("/api/v1/task-types") => {
            Requirement::Scope(Scope::Admin)
        }
        _ => Requirement::Scope(Scope::Read),
    }
}

fn is_submit(method: &Method, path: &str) -> bool {
    if is_grpc_path(path) {
        return matches!(
            path,
            "/taskd.v1.TaskService/SubmitTask" | "/taskd.v1.TaskService/SubmitTasks"
        );
    }
    method == Method::POST && matches!(path, "/api/v1/tasks" | "/api/v1/tasks/batch")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The middleware: authenticate, authorize, admit.
pub async fn check(State(access): State<Access>, mut request: Request, next: Next) -> Response {
    // `guard::check` ran first: a gRPC path here is a gRPC request.
    let grpc = is_grpc_path(request.uri().path());
    let submit = is_submit(request.method(), request.uri().path());
    let tokens = access.tokens.read().clone();
    if !tokens.is_empty()
        && let Requirement::Scope(scope) = access.requirement(request.method(), request.uri().path())
    {
        let Some(presented) = bearer(request.headers()) else {
            return Refusal::unauthenticated("no bearer token: send `authorization: Bearer <token>`").respond(grpc);
        };
        let Some(principal) = tokens.authenticate(presented) else {
            return Refusal::unauthenticated("the bearer token is not valid").respond(grpc);
        };
        if !principal.allows(scope) {
            return Refusal::permission_denied(&principal, scope.name()).respond(grpc);
        }
        request.extensions_mut().insert(principal);
    }
    if !submit {
        return next.run(request).await;
    }
    let Ok(_permit) = access.submits.clone().try_acquire_owned() else {
        return Refusal::overloaded(format!(
            "net.max_in_flight_submits: {} submits in flight, the limit; retry in {RETRY_AFTER_MS} ms",
            access.max_in_flight_submits
        ))
        .respond(grpc);
    };
    next.run(request).await
}

/// Whether the caller may submit tasks of these types: some act on the
/// whole server and need `admin`. With auth off there is no principal and
/// everything is allowed.
pub fn check_task_types<'a>(
    principal: Option<&Arc<Principal>>,
    task_types: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let Some(principal) = principal else {
        return Ok(());
    };
    if principal.allows(Scope::Admin) {
        return Ok(());
    }
    match task_types
        .into_iter()
        .find(|task_type| ADMIN_TASK_TYPES.contains(task_type))
    {
        Some(task_type) => Err(format!(
            "token {:?} may not submit {task_type:?} tasks: they need scope admin",
            principal.name
        )),
        None => Ok(()),
    }
}

/// Takes a place for a watch stream on the request's connection (the
/// returned slot must live as long as the stream); the error names the
/// limit. Requests that did not come through a listener (in-process tests)
/// have no connection and no limit.
pub fn open_watch(connection: Option<&ConnectionInfo>) -> Result<Option<WatchSlot>, String> {
    connection.map(ConnectionInfo::open_watch).transpose()
}

/// `stream`, holding `slot` until it ends or is dropped.
pub fn holding_slot<S: futures::Stream>(stream: S, slot: Option<WatchSlot>) -> impl futures::Stream<Item = S::Item> {
    use futures::StreamExt as _;
    stream.map(move |item| {
        let _held = &slot;
        item
    })
}

/// A refusal before any handler ran, written for the transport asked.
pub struct Refusal {
    grpc_code: &'static str,
    http: StatusCode,
    name: &'static str,
    message: String,
    retry_after_ms: Option<u64>,
    /// The request's part that is wrong, for HTTP answers (`content-type`).
    field: Option<&'static str>,
}

impl Refusal {
    fn new(grpc_code: &'static str, http: StatusCode, name: &'static str, message: String) -> Self {
        Refusal {
            grpc_code,
            http,
            name,
            message,
            retry_after_ms: None,
            field: None,
        }
    }

    fn unauthenticated(message: &str) -> Self {
        Refusal::new("16", StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message.to_string())
    }

    /// Refused whoever asks: a host name or a web page not allowed here.
    pub fn forbidden(message: String) -> Self {
        Refusal::new("7", StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }

    /// The body is not of the type the path takes; `message` starts with
    /// the header's name.
    pub fn unsupported_media_type(message: &str) -> Self {
        Refusal {
            field: Some("content-type"),
            ..Refusal::new(
                "3",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "INVALID_ARGUMENT",
                message.to_string(),
            )
        }
    }

    pub fn http_version_not_supported(message: String) -> Self {
        Refusal::new("3", StatusCode::HTTP_VERSION_NOT_SUPPORTED, "INVALID_ARGUMENT", message)
    }

    fn permission_denied(principal: &Principal, needed: &str) -> Self {
        let held: Vec<&str> = principal.scopes().map(Scope::name).collect();
        Refusal::forbidden(format!(
            "token {:?} lacks scope {needed} (it has {})",
            principal.name,
            held.join(", ")
        ))
    }

    pub fn overloaded(message: String) -> Self {
        Refusal {
            retry_after_ms: Some(RETRY_AFTER_MS),
            ..Refusal::new("8", StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", message)
        }
    }

    pub fn respond(self, grpc: bool) -> Response {
        if grpc {
            let mut trailers = HeaderMap::new();
            if let Some(retry_after_ms) = self.retry_after_ms {
                insert_retry_hint(&mut trailers, retry_after_ms);
            }
            return crate::api::grpc_limits::status_response(self.grpc_code, &self.message, trailers);
        }
        let mut body = serde_json::json!({"code": self.name, "message": self.message});
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        let mut response = (self.http, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.http == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"taskd\""),
            );
        }
        if let Some(retry_after_ms) = self.retry_after_ms {
            insert_retry_hint(headers, retry_after_ms);
        }
        response
    }
}

/// The retry hint in the forms clients read: `retry-after` (seconds,
/// HTTP) and `grpc-retry-pushback-ms` (gRPC retry policies).
pub fn insert_retry_hint(headers: &mut HeaderMap, retry_after_ms: u64) {
    let seconds = retry_after_ms.div_ceil(1000).max(1);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    if let Ok(value) = HeaderValue::from_str(&retry_after_ms.to_string()) {
        headers.insert("grpc-retry-pushback-ms", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig::default()
    }

    #[test]
    fn grpc_methods_need_the_scope_of_what_they_do() {
        let config = config();
        let needs = |path| grpc_requirement(path, &config);
        assert_eq!(
            needs("/taskd.v1.TaskService/SubmitTasks"),
            Requirement::Scope(Scope::Submit)
        );
        assert_eq!(
            needs("/taskd.v1.TaskService/RunTask"),
            Requirement::Scope(Scope::Submit)
        );
        assert_eq!(
            needs("/taskd.v1.TaskService/CancelTask"),
            Requirement::Scope(Scope::Cancel)
        );
        assert_eq!(
            needs("/taskd.v1.TaskService/WatchTasks"),
            Requirement::Scope(Scope::Read)
        );
        assert_eq!(needs("/taskd.v1.WorkerService/Work"), Requirement::Scope(Scope::Worker));
        assert_eq!(
            needs("/taskd.v1.TaskService/DeleteTaskType"),
            Requirement::Scope(Scope::Admin)
        );
        assert_eq!(
            needs("/taskd.v1.WorkerService/ListWorkers"),
            Requirement::Scope(Scope::Read)
        );
        assert_eq!(needs("/grpc.health.v1.Health/Check"), Requirement::Open);
        assert_eq!(
            needs("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Requirement::Scope(Scope::Read)
        );
    }

    #[test]
    fn rest_paths_need_the_scope_of_what_they_do_and_static_pages_are_open() {
        let config = config();
        let needs = |method, path| rest_requirement(&method, path, &config);
        assert_eq!(needs(Method::POST, "/api/v1/tasks"), Requirement::Scope(Scope::Submit));
        assert_eq!(needs(Method::GET, "/api/v1/tasks"), Requirement::Scope(Scope::Read));
        assert_eq!(
            needs(Method::POST, "/api/v1/tasks/run"),
            Requirement::Scope(Scope::Submit)
        );
        assert_eq!(
            needs(Method::POST, "/api/v1/tasks/x/cancel"),
            Requirement::Scope(Scope::Cancel)
        );
        assert_eq!(needs(Method::GET, "/api/v1/events"), Requirement::Scope(Scope::Read));
        assert_eq!(
            needs(Method::DELETE, "/api/v1/task-types/thumbnails"),
            Requirement::Scope(Scope::Admin)
        );
        assert_eq!(
            needs(Method::GET, "/api/v1/task-types"),
            Requirement::Scope(Scope::Read)
        );
        assert_eq!(needs(Method::GET, "/api/v1/schedules"), Requirement::Scope(Scope::Read));
        for (method, path) in [
            (Method::POST, "/api/v1/schedules"),
            (Method::PUT, "/api/v1/schedules/nightly"),
            (Method::DELETE, "/api/v1/schedules/nightly"),
            (Method::POST, "/api/v1/schedules/nightly/trigger"),
        ] {
            assert_eq!(needs(method, path), Requirement::Scope(Scope::Submit), "{path}");
        }
        assert_eq!(needs(Method::GET, "/metrics"), Requirement::Scope(Scope::Read));
        assert_eq!(needs(Method::GET, "/readyz"), Requirement::Open);
        assert_eq!(needs(Method::GET, "/dashboard/app.js"), Requirement::Open);
        let closed = AuthConfig {
            open_health: false,
            open_metrics: true,
            ..AuthConfig::default()
        };
        assert_eq!(
            rest_requirement(&Method::GET, "/readyz", &closed),
            Requirement::Scope(Scope::Read)
        );
        assert_eq!(rest_requirement(&Method::GET, "/metrics", &closed), Requirement::Open);
    }

    #[test]
    fn a_grpc_method_is_told_by_its_path_alone() {
        assert!(is_grpc_path("/taskd.v1.TaskService/SubmitTask"));
        assert!(is_grpc_path("/grpc.health.v1.Health/Check"));
        for path in [
            "/api/v1/tasks",
            "/dashboard/app.js",
            "/favicon.ico",
            "/",
            "/metrics",
            "/taskd.v1.TaskService/",
            "/a.b/c/d",
        ] {
            assert!(!is_grpc_path(path), "{path}");
        }
        let access = Access::new(Tokens::default(), config(), 1);
        assert_eq!(
            access.requirement(&Method::POST, "/taskd.v1.TaskService/SubmitTask"),
            Requirement::Scope(Scope::Submit)
        );
        assert!(is_submit(&Method::POST, "/taskd.v1.TaskService/SubmitTasks"));
    }

    #[test]
    fn bearer_tokens_are_read_whatever_the_scheme_case() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }

    #[tokio::test]
    async fn submits_beyond_the_in_flight_limit_are_shed_at_once_while_reads_pass() {
        use tower::ServiceExt as _;
        let release = Arc::new(tokio::sync::Notify::new());
        let entered = Arc::new(tokio::sync::Notify::new());
        let (hold, signal) = (release.clone(), entered.clone());
        let access = Access::new(Tokens::default(), AuthConfig::default(), 1);
        let router = axum::Router::new()
            .route(
                "/api/v1/tasks",
                axum::routing::post(move || {
                    let (hold, signal) = (hold.clone(), signal.clone());
                    async move {
                        signal.notify_one();
                        hold.notified().await;
                        "submitted"
                    }
                })
                .get(|| async { "listed" }),
            )
            .layer(axum::middleware::from_fn_with_state(access, check));
        let request = |method: Method| {
            axum::http::Request::builder()
                .method(method)
                .uri("/api/v1/tasks")
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let first = tokio::spawn(router.clone().oneshot(request(Method::POST)));
        entered.notified().await;
        let shed = router.clone().oneshot(request(Method::POST)).await.expect("infallible");
        assert_eq!(shed.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        let read = router.clone().oneshot(request(Method::GET)).await.expect("infallible");
        assert_eq!(read.status(), StatusCode::OK);
        release.notify_one();
        let first = first.await.expect("joined").expect("infallible");
        assert_eq!(first.status(), StatusCode::OK);
        let again = tokio::spawn(router.oneshot(request(Method::POST)));
        entered.notified().await;
        release.notify_one();
        assert_eq!(
            again.await.expect("joined").expect("infallible").status(),
            StatusCode::OK
        );
    }

    #[test]
    fn system_maintenance_needs_admin() {
        let submitter = Arc::new(Principal::new("ci", vec![Scope::Submit]));
        let admin = Arc::new(Principal::new("ops", vec![Scope::Admin]));
        assert!(check_task_types(Some(&submitter), ["data_processing"]).is_ok());
        let refused = check_task_types(Some(&submitter), ["data_processing", "system_maintenance"]);
        assert!(refused.is_err_and(|message| message.contains("admin")));
        assert!(check_task_types(Some(&admin), ["system_maintenance"]).is_ok());
        assert!(check_task_types(None, ["system_maintenance"]).is_ok());
    }
}
