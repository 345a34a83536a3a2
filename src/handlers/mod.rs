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
//! fails the attempt with an error naming it (`params.format: ...`) rather
//! than a panic. Files are written whole or not at all (see `files`) under
//! the engine's data directory.

pub mod diag;
pub mod export;
pub mod maintenance;
pub mod report;

mod aggregate;
mod files;
mod markdown;
mod params;
mod timestamps;

use crate::engine::handler::HandlerRegistry;

/// Every task type [`register_builtins`] serves.
pub const BUILTIN_TASK_TYPES: &[&str] = &[
    diag::ECHO,
    diag::SLEEP,
    diag::FAIL,
    diag::PANIC,
    maintenance::TASK_TYPE,
    export::TASK_TYPE,
    report::TASK_TYPE,
];

/// Registers the handlers of [`BUILTIN_TASK_TYPES`].
///
/// `document_processing` and `vector_store_update` are deliberately not
/// registered: they are to be served by remote workers, which do not exist
/// yet. Tasks of those types are accepted and wait PENDING (with the reason
/// "no handler serves task type ...") until something serves them; they are
/// not failed.
pub fn register_builtins(registry: &mut HandlerRegistry) {
    registry
        .register(diag::ECHO, diag::echo)
        .register(diag::SLEEP, diag::sleep)
        .register(diag::FAIL, diag::fail)
        .register(diag::PANIC, diag::panic)
        .register(maintenance::TASK_TYPE, maintenance::run)
        .register(export::TASK_TYPE, export::run)
        .register(report::TASK_TYPE, report::run);
}

#[cfg(test)]
mod tests;
