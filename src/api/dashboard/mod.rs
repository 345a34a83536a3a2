//! The dashboard: a page, its styles and scripts, compiled into the binary
//! (no CDN: the machine may be offline). It reads the REST bridge and
//! follows the task and system event streams (SSE); pages are addressed by
//! the URL's hash (`/#/tasks/<id>`), so each one can be shared.
//!
//! - `index.html`: the markup of every page.
//! - `app.js`: routing, the pages and the live updates.
//! - `charts.js`: line charts with axes, units and thresholds (SVG).
//! - `dag.js`: a task's dependency graph, laid out in layers (SVG).
//! - `schedules.js`: the Schedules page.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("index.html");

/// The assets, by the name the page asks for.
const ASSETS: [(&str, &str, &str); 5] = [
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("dashboard.css"),
    ),
    ("app.js", "text/javascript; charset=utf-8", include_str!("app.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("charts.js")),
    ("dag.js", "text/javascript; charset=utf-8", include_str!("dag.js")),
    (
        "schedules.js",
        "text/javascript; charset=utf-8",
        include_str!("schedules.js"),
    ),
];

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such dashboard file").into_response(),
    }
}
