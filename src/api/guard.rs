//! The first look at every request, before who is asking is known: is it
//! what it says it is, and could a web page in the user's browser have
//! sent it on its own?
//!
//! Any page a user opens can send requests to 127.0.0.1. Three rules keep
//! it from driving taskd:
//! - A gRPC method's path (`/taskd.v1.TaskService/SubmitTask`) answers only
//!   gRPC: HTTP/2 with an `application/grpc` body. tonic routes by path and
//!   would decode a `text/plain` body sent by a browser without a preflight.
//! - A write (anything but GET and HEAD), on any path, is accepted from the
//!   page's own origin (the dashboard) or from origins the configuration
//!   names (`cors_origins`, which also get CORS headers), and a REST body
//!   must be declared JSON.
//! - Without tokens, the `Host` must be one the listener is meant to be
//!   reached by: an IP address, `localhost`, or a name in
//!   `net.allowed_hosts`. A page whose own name an attacker rebound to this
//!   address (DNS rebinding) is same-origin to the browser, so only the
//!   host name it sends gives it away. With tokens such a page has none.
//!
//! Clients that are not browsers send no `Origin` and are only held to the
//! first rule, which every gRPC client keeps.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::access::{self, Access, Refusal};

/// What the guard is told by the configuration; cheap to clone (axum
/// clones it for every request).
#[derive(Clone)]
pub struct Guard(Arc<GuardSettings>);

struct GuardSettings {
    /// Origins whose pages may write besides the page's own, e.g.
    /// `https://ops.example.com`.
    origins: Vec<String>,
    hosts: AllowedHosts,
    /// Whether tokens are in force now (they are reloaded on SIGHUP).
    access: Access,
}

impl Guard {
    pub fn new(origins: Vec<String>, allowed_hosts: &[String], access: Access) -> Self {
        Guard(Arc::new(GuardSettings {
            origins,
            hosts: AllowedHosts::new(allowed_hosts),
            access,
        }))
    }
}

/// The host names a server without tokens answers to.
struct AllowedHosts {
    any: bool,
    names: Vec<String>,
    /// `*.example.com` entries, kept as `.example.com`.
    suffixes: Vec<String>,
}

impl AllowedHosts {
    fn new(configured: &[String]) -> Self {
        let mut hosts = AllowedHosts {
            any: false,
            names: vec!["localhost".into()],
            suffixes: vec![".localhost".into()],
        };
        for entry in configured {
            let entry = entry.trim().trim_end_matches('.').to_ascii_lowercase();
            match entry.strip_prefix('*') {
                Some("") => hosts.any = true,
                Some(suffix) => hosts.suffixes.push(suffix.to_string()),
                None => hosts.names.push(entry),
            }
        }
        hosts
    }

    /// An IP address is always allowed: a page whose origin is an address
    /// was served from it, by this server.
    fn allows(&self, host: &str) -> bool {
        if self.any || host.parse::<IpAddr>().is_ok() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&host) || self.suffixes.iter().any(|suffix| host.ends_with(suffix.as_str()))
    }
}

/// The host name the request was sent to, without its port: the URI's
/// authority (HTTP/2) or the `Host` header (HTTP/1.1). `None` when neither
/// says, which no browser does.
fn requested_host(request: &Request<Body>) -> Option<&str> {
    let authority = match request.uri().authority() {
        Some(authority) => authority.as_str(),
        None => request.headers().get(header::HOST)?.to_str().ok()?,
    };
    Some(host_without_port(authority))
}

fn host_without_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        // `[::1]:8080`: the address is what the brackets hold.
        return rest.split_once(']').map_or(rest, |(address, _)| address);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Whether `origin` (`scheme://host[:port]`) is the server the request
/// was sent to.
fn same_origin(origin: &str, request: &Request<Body>) -> bool {
    let authority = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(header::HOST).and_then(|host| host.to_str().ok()),
    };
    let Some(authority) = authority else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, origin_authority)| origin_authority.eq_ignore_ascii_case(authority))
}

/// `application/grpc`, alone or with a subtype (`+proto`) or parameters.
fn declares_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().strip_prefix("application/grpc"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'))
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

fn preflight_answer(origin: &str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors_headers(&mut response, origin);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

pub async fn check(State(guard): State<Guard>, request: Request<Body>, next: Next) -> Response {
    let grpc_path = access::is_grpc_path(request.uri().path());
    let headers = request.headers();
    // A refusal is written as gRPC only to a client that speaks it.
    let speaks_grpc = grpc_path && request.version() == Version::HTTP_2 && declares_grpc(headers);

    let guard = &*guard.0;
    if !guard.access.enabled()
        && let Some(host) = requested_host(&request)
        && !guard.hosts.allows(host)
    {
        return Refusal::forbidden(format!(
            "host {host:?} is not one this server answers to without tokens; add it to net.allowed_hosts \
             (or configure tokens)"
        ))
        .respond(speaks_grpc);
    }

    // Browsers send it; gRPC clients and curl do not.
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let listed = origin
        .as_deref()
        .is_some_and(|origin| guard.origins.iter().any(|allowed| allowed == origin));
    let method = request.method().clone();
    if method == Method::OPTIONS {
        // A preflight: answered for the configured origins only.
        return match origin.as_deref() {
            Some(origin) if listed => preflight_answer(origin),
            _ => Refusal::forbidden(
                "cross-origin requests are allowed only from the origins in the cors_origins setting".into(),
            )
            .respond(false),
        };
    }
    let writes = method != Method::GET && method != Method::HEAD;
    if writes
        && let Some(origin) = origin.as_deref()
        && !listed
        && !same_origin(origin, &request)
    {
        return Refusal::forbidden(format!(
            "a request from the web page at {origin} may not change tasks here; list that origin in cors_origins to allow it"
        ))
        .respond(speaks_grpc);
    }

    if grpc_path {
        if !declares_grpc(headers) {
            return Refusal::unsupported_media_type(
                "content-type: a gRPC method takes application/grpc; the REST API is under /api/v1",
            )
            .respond(false);
        }
        if request.version() != Version::HTTP_2 {
            return Refusal::http_version_not_supported(format!(
                "gRPC needs HTTP/2, this request came as {:?}; the REST API is under /api/v1",
                request.version()
            ))
            .respond(false);
        }
    } else if writes && has_body(headers) && !declares_json(headers) {
        return Refusal::unsupported_media_type("content-type: must be application/json").respond(false);
    }

    let mut response = next.run(request).await;
    if let Some(origin) = origin.as_deref()
        && listed
    {
        cors_headers(&mut response, origin);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_localhost_are_always_allowed_and_other_names_only_when_listed() {
        let hosts = AllowedHosts::new(&["taskd.internal".into(), "*.corp.example".into()]);
        for host in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "localhost",
            "LOCALHOST",
            "api.localhost",
            "taskd.internal",
            "a.corp.example",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "taskd.internal.evil.example",
            "corp.example.evil",
            "localhost.evil.example",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
        assert!(AllowedHosts::new(&["*".into()]).allows("anything.example"));
    }

    #[test]
    fn the_port_is_not_part_of_the_host_name() {
        assert_eq!(host_without_port("evil.example:8080"), "evil.example");
        assert_eq!(host_without_port("[::1]:8080"), "::1");
        assert_eq!(host_without_port("[::1]"), "::1");
        assert_eq!(host_without_port("localhost"), "localhost");
    }

    #[test]
    fn only_application_grpc_and_its_subtypes_declare_grpc() {
        let declared = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            declares_grpc(&headers)
        };
        assert!(declared("application/grpc"));
        assert!(declared("application/grpc+proto"));
        assert!(declared("application/grpc; charset=utf-8"));
        assert!(!declared("application/grpcx"));
        assert!(!declared("text/plain"));
        assert!(!declares_grpc(&HeaderMap::new()));
    }
}
