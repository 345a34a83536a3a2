//! The accept loop and each connection's life.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::config::NetConfig;
use super::connection::{ConnectionInfo, TrackedBody};
use super::tls::ReloadableTls;

/// Connections beyond `max_connections` being answered with the refusal at
/// once; beyond this many more they are closed without a word.
const MAX_REFUSING: usize = 64;
/// How long a refused connection is kept to deliver its answer.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);
/// How long an idle connection may take to close after being told to.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A bound listener and, when TLS is on, its acceptor.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<ReloadableTls>,
}

/// Serves `router` on every connection `listener` accepts until `shutdown`;
/// then stops accepting, asks every connection to finish, and waits up to
/// `drain` (plus a margin) before closing the rest.
pub async fn serve(
    listener: Listener,
    router: Router,
    config: NetConfig,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let config = Arc::new(config);
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut refusing = JoinSet::new();
    let mut refusal_log = Throttled::default();
    let mut accept_log = Throttled::default();
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            Some(_) = refusing.join_next(), if !refusing.is_empty() => continue,
            accepted = listener.tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                // Without it a response written in two segments waits for
                // the peer's delayed ACK (~40 ms per call).
                let _ = stream.set_nodelay(true);
                let tls = listener.tls.as_ref().map(ReloadableTls::current);
                match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let router = router.clone();
                        let config = config.clone();
                        let shutdown = shutdown.clone();
                        connections.spawn(async move {
                            serve_connection(stream, peer, tls, router, config, shutdown, drain).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        refusal_log.warn(|suppressed| {
                            tracing::warn!(
                                %peer,
                                limit = config.max_connections,
                                suppressed,
                                "connection refused: net.max_connections reached"
                            );
                        });
                        if refusing.len() < MAX_REFUSING {
                            refusing.spawn(refuse_connection(stream, tls, config.max_connections));
                        }
                    }
                }
            }
            // The peer gave up between connecting and being accepted.
            Err(error) if is_one_connections_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors or memory: accepting again at once
                // would fail again at once, spinning a core. Pause, longer
                // each time, and say so.
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                accept_log.warn(|suppressed| {
                    tracing::error!(
                        %error,
                        pause_ms = backoff.as_millis() as u64,
                        suppressed,
                        "cannot accept connections; pausing (raise the file descriptor limit or lower net.max_connections)"
                    );
                });
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    drop(listener);
    refusing.abort_all();
    let drained = tokio::time::timeout(drain + CLOSE_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections did not close in time; closing them"
        );
        connections.abort_all();
    }
}

fn is_one_connections_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted | ErrorKind::WouldBlock
    )
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    config: Arc<NetConfig>,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let Some(tls) = tls else {
        return serve_http(stream, router, config, shutdown, drain).await;
    };
    // A plaintext client (or one that never finishes the handshake) gets no
    // further than this.
    match tokio::time::timeout(config.header_timeout, tls.accept(stream)).await {
        Ok(Ok(stream)) => serve_http(stream, router, config, shutdown, drain).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake not completed within net.header_timeout"),
    }
}

fn http_builder(config: &NetConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.max_streams_per_connection)
        // A peer whose machine vanished (no FIN, no RST) is noticed within
        // about 30 s, and a worker's leases taken back before they expire.
        .keep_alive_interval(Some(Duration::from_secs(10)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

async fn serve_http<I>(io: I, router: Router, config: Arc<NetConfig>, shutdown: CancellationToken, drain: Duration)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = ConnectionInfo::new(config.max_watches_per_connection);
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(connection.clone());
            let in_flight = connection.request_started();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, in_flight)))
            }
        })
    };
    let builder = http_builder(&config);
    let serving = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(serving);
    let shortest = config.header_timeout.min(config.idle_timeout);
    let mut check = tokio::time::interval((shortest / 2).clamp(Duration::from_millis(10), Duration::from_secs(5)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let grace = loop {
        tokio::select! {
            result = serving.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled() => break drain + CLOSE_GRACE,
            _ = check.tick() => {
                if let Some((quiet, served)) = connection.quiet_for() {
                    let allowed = if served { config.idle_timeout } else { config.header_timeout };
                    if quiet >= allowed {
                        break CLOSE_GRACE;
                    }
                }
            }
        }
    };
    serving.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, serving).await;
}

/// Answers every request on a connection over the limit with an error that
/// names the limit, then closes it.
async fn refuse_connection(stream: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>, limit: usize) {
    let message = format!("net.max_connections ({limit}) reached; retry later");
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let grpc = request
            .headers()
            .get("content-type")
            .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
        let response = refusal(grpc, &message);
        async move { Ok::<_, Infallible>(response) }
    });
    let deadline = Instant::now() + REFUSAL_GRACE;
    let run = async move {
        match tls {
            None => serve_refusal(TokioIo::new(stream), service).await,
            Some(tls) => {
                if let Ok(stream) = tls.accept(stream).await {
                    serve_refusal(TokioIo::new(stream), service).await;
                }
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline.into(), run).await;
}

async fn serve_refusal<I, S>(io: I, service: S)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(false);
    let serving = builder.serve_connection(io, service);
    tokio::pin!(serving);
    // Long enough for a request that was already on its way to be answered.
    if tokio::time::timeout(REFUSAL_GRACE / 2, serving.as_mut()).await.is_err() {
        serving.as_mut().graceful_shutdown();
        let _ = serving.await;
    }
}

fn refusal(grpc: bool, message: &str) -> Response<Body> {
    let mut response = if grpc {
        let mut response = Response::new(Body::empty());
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        // UNAVAILABLE: clients retry it.
        headers.insert("grpc-status", HeaderValue::from_static("14"));
        if let Ok(value) = HeaderValue::from_str(message) {
            headers.insert("grpc-message", value);
        }
        response
    } else {
        let body = serde_json::json!({"code": "UNAVAILABLE", "message": message}).to_string();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        response
    };
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    response
}

/// At most one log line per interval for a condition that can repeat
/// thousands of times a second; the line says how many were left out.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    const INTERVAL: Duration = Duration::from_secs(10);

    fn warn(&mut self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < Self::INTERVAL) {
            self.suppressed += 1;
            return;
        }
        log(self.suppressed);
        self.suppressed = 0;
        self.last = Some(now);
    }
}
