//! The live dashboard: one HTML page with its styles and script inside,
//! compiled into the binary (no CDN: the machine may be offline). It reads
//! the REST bridge and follows the task and system event streams (SSE).

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("index.html");

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}
