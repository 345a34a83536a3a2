//! Client deadlines: a gRPC call's `grpc-timeout` bounds the server's work
//! on it. When it passes, the handler's future is dropped (its work
//! cancelled) and the client gets DEADLINE_EXCEEDED.

use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

const DEADLINE_EXCEEDED: &str = "4";

pub async fn grpc_deadline(request: Request, next: Next) -> Response {
    let Some(timeout) = parse_grpc_timeout(request.headers()) else {
        return next.run(request).await;
    };
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::api::grpc_limits::status_response(
            DEADLINE_EXCEEDED,
            "the client's deadline (grpc-timeout) passed before the server answered",
            HeaderMap::new(),
        ),
    }
}

/// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    fn parsed(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "grpc-timeout",
            axum::http::HeaderValue::from_str(value).expect("header"),
        );
        parse_grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeouts_read_in_every_unit_and_nonsense_is_ignored() {
        assert_eq!(parsed("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parsed("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parsed("99999999H"), Some(Duration::from_secs(99_999_999 * 3600)));
        assert_eq!(parsed("5n"), Some(Duration::from_nanos(5)));
        assert_eq!(parsed("S"), None);
        assert_eq!(parsed("123456789S"), None);
        assert_eq!(parsed("12x"), None);
        assert_eq!(parsed("-1S"), None);
    }

    /// Set when dropped: the handler's work was cancelled.
    struct Dropped(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_clients_deadline_the_call_is_cancelled_and_answered_deadline_exceeded() {
        use tower::ServiceExt as _;
        let cancelled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cancelled.clone();
        let router = axum::Router::new()
            .route(
                "/slow",
                axum::routing::post(move || {
                    let guard = Dropped(flag.clone());
                    async move {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        drop(guard);
                        "done"
                    }
                }),
            )
            .layer(axum::middleware::from_fn(grpc_deadline));
        let request = axum::http::Request::post("/slow")
            .header("grpc-timeout", "50m")
            .body(axum::body::Body::empty())
            .expect("request");
        let started = tokio::time::Instant::now();
        let response = router.oneshot(request).await.expect("infallible");
        let mut body = response.into_body();
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx))
            .await
            .expect("a frame")
            .expect("infallible");
        let trailers = frame.into_trailers().expect("the status, in trailers");
        assert_eq!(trailers["grpc-status"], DEADLINE_EXCEEDED);
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        assert!(
            cancelled.load(std::sync::atomic::Ordering::SeqCst),
            "the handler's work was dropped"
        );
    }
}
