//! tonic refuses a request message over its size limit with OUT_OF_RANGE;
//! the gRPC convention for a message too large is RESOURCE_EXHAUSTED, which
//! is what clients and their retry policies expect. The refusal leaves
//! before any handler runs, as a trailers-only response, so it is rewritten
//! on its way out.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// gRPC status codes, as tonic writes them in `grpc-status`.
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// The start of tonic's message for a request over the size limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

pub async fn oversized_as_resource_exhausted(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == OUT_OF_RANGE.as_bytes());
    if !out_of_range {
        return response;
    }
    let message = headers
        .get("grpc-message")
        .map(|message| percent_decode(message.as_bytes()))
        .unwrap_or_default();
    if let Some(details) = message.strip_prefix(TOO_LARGE) {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
        // ": found 5242896 bytes, the limit is: 4194304 bytes"
        let rewritten = format!(
            "request: message too large:{}",
            details
                .trim_start_matches(':')
                .replace(", the limit is:", "; the limit is")
        );
        if let Ok(value) = HeaderValue::from_str(&percent_encode(&rewritten)) {
            headers.insert("grpc-message", value);
        }
    }
    response
}

/// A gRPC error answered before any handler ran: response headers, then
/// the status in trailers. Not a trailers-only response: the request stream
/// may still be open, and the server then resets it (RST_STREAM NO_ERROR);
/// gRPC's C core (Python, Ruby, PHP clients) reads a reset after a single
/// header frame as INTERNAL, which it may do before it reads the status.
/// `trailers` may hold more (a retry hint); the status is added to them.
pub fn status_response(code: &'static str, message: &str, mut trailers: axum::http::HeaderMap) -> Response {
    trailers.insert("grpc-status", HeaderValue::from_static(code));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
        trailers.insert("grpc-message", value);
    }
    let mut response = Response::new(axum::body::Body::new(Trailers(Some(trailers))));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

/// A body of nothing but trailers.
struct Trailers(Option<axum::http::HeaderMap>);

impl http_body::Body for Trailers {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|trailers| Ok(http_body::Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[index + 1..index + 3]), 16)
        {
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// grpc-message is percent-encoded outside printable ASCII (and `%`).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding_round_trips() {
        let text = "request: 5% over, é";
        assert_eq!(percent_decode(percent_encode(text).as_bytes()), text);
        assert_eq!(percent_decode(b"Error%2C decoded"), "Error, decoded");
    }
}
