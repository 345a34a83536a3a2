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
