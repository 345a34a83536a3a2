//! Browsers must not be able to drive taskd from another site: any web page
//! a user opens can send a POST to 127.0.0.1. Writes are accepted only from
//! the page's own origin (the dashboard) or from origins the configuration
//! names (`cors_origins`, which also get CORS headers), and a body must be
//! declared JSON: a cross-site form or `text/plain` request, which a browser
//! sends without asking first, is refused before it reaches a handler.
//! Clients that are not browsers send no `Origin` and are not affected.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origins allowed besides the page's own, e.g. `https://ops.example.com`.
#[derive(Clone, Default)]
pub struct AllowedOrigins(pub Arc<Vec<String>>);

fn refusal(status: StatusCode, code: &str, message: String, field: Option<&str>) -> Response {
    let mut body = serde_json::json!({"code": code, "message": message});
    if let Some(field) = field {
        body["field"] = field.into();
    }
    (status, axum::Json(body)).into_response()
}

/// Whether `origin` (`scheme://host[:port]`) is the server the request
/// was sent to.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|host| host.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    length.is_some_and(|length| length > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

fn cors_headers(response: &mut Response, origin: &str) {
    if let Ok(origin) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

pub async fn guard_writes(State(allowed): State<AllowedOrigins>, request: Request<Body>, next: Next) -> Response {
    let headers = request.headers();
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let listed = origin
        .as_deref()
        .is_some_and(|origin| allowed.0.iter().any(|allowed| allowed == origin));
    let method = request.method().clone();

    if method == Method::OPTIONS {
        // A preflight: answered for the configured origins only.
        return match origin.as_deref() {
            Some(origin) if listed => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                cors_headers(&mut response, origin);
                let headers = response.headers_mut();
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST"),
                );
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("content-type, authorization"),
                );
                headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
                response
            }
            _ => refusal(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "cross-origin requests are allowed only from the origins in the cors_origins setting".into(),
                None,
            ),
        };
    }
    let writes = method != Method::GET && method != Method::HEAD;
    if writes {
        if let Some(origin) = origin.as_deref()
            && !listed
            && !same_origin(origin, headers)
        {
            return refusal(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                format!(
                    "a request from the web page at {origin} may not change tasks here; list that origin in cors_origins to allow it"
                ),
                None,
            );
        }
        if has_body(headers) && !declares_json(headers) {
            return refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "INVALID_ARGUMENT",
                "content-type: must be application/json".into(),
                Some("content-type"),
            );
        }
    }
    let mut response = next.run(request).await;
    if let Some(origin) = origin.as_deref()
        && listed
    {
        cors_headers(&mut response, origin);
    }
    response
}
