//! The built-in task types: what a stock taskd can run without any remote
//! worker or embedding program.
//!
//! - [`diag`]: `diag.echo`, `diag.sleep`, `diag.fail`, `diag.panic`, which do
//!   no real work and exist for smoke tests and benchmarks.
//! - [`maintenance`]: `system_maintenance`, purging old finished tasks.
//! - [`export`]: `data_export`, writing tasks to JSON Lines or CSV.
//! - [`report`]: `report_generation`, summarising recent tasks as JSON and
//!   Markdown.
//!
//! Each handler reads its params through one shared module, so a bad param
//! fails the task with an error naming it (`params.format: ...`) rather than
//! a panic, and is not retried. The real work types say which params they
//! take: a submit with another (`data_export` with `path`) is refused,
//! naming it. The diagnostics take any others, to label benchmark runs. Files are written whole or not at all (see
//! `files`) under the server's data directory. Handlers that read or manage
//! tasks are given the engine when they are built, and use it like any
//! client.

pub mod diag;
pub mod export;
pub mod maintenance;
pub mod report;

mod aggregate;
mod files;
mod markdown;
mod params;
mod report_contents;
mod timestamps;

use std::path::Path;

use crate::engine::Engine;
use crate::engine::handler::HandlerRegistry;

/// Every task type [`builtins`] serves (`diag.panic` only when
/// `engine.diag_panic` is on).
pub const BUILTIN_TASK_TYPES: &[&str] = &[
    diag::ECHO,
    diag::SLEEP,
    diag::FAIL,
    diag::PANIC,
    maintenance::TASK_TYPE,
    export::TASK_TYPE,
    report::TASK_TYPE,
];

/// The handlers of [`BUILTIN_TASK_TYPES`]. Those that read or manage tasks
/// do it through `engine`, like any client; those that write files write
/// them under `data_dir`.
///
/// `document_processing` and `vector_store_update` are deliberately not
/// here: they are served by workers of the application that submits them.
/// Tasks of those types wait PENDING until something serves them.
pub fn builtins(engine: &Engine, data_dir: &Path) -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    registry
        .register(diag::ECHO, diag::echo)
        .register(diag::SLEEP, diag::sleep)
        .register(diag::FAIL, diag::fail);
    if engine.config().diag_panic {
        registry.register(diag::PANIC, diag::panic);
    }
    let maintenance = maintenance::Maintenance {
        admin: engine.admin(),
        tasks: engine.tasks(),
        exports_dir: data_dir.join("exports"),
    };
    registry.register_with_params(maintenance::TASK_TYPE, maintenance::PARAMS, move |context| {
        maintenance::run(maintenance.clone(), context)
    });
    let (export_engine, exports_dir) = (engine.tasks(), data_dir.join("exports"));
    registry.register_with_params(export::TASK_TYPE, export::PARAMS, move |context| {
        export::run(export_engine.clone(), exports_dir.clone(), context)
    });
    let (report_engine, reports_dir) = (engine.tasks(), data_dir.join("reports"));
    registry.register_with_params(report::TASK_TYPE, report::PARAMS, move |context| {
        report::run(report_engine.clone(), reports_dir.clone(), context)
    });
    registry
}

#[cfg(test)]
mod tests;
