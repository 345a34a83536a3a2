//! taskd: a durable background task service served over gRPC.
//!
//! The crate is layered, and data flows one way:
//!
//! - [`api`]: transports. `api::task_service` implements the gRPC
//!   `taskd.v1.TaskService`; `api::convert` is the one place where wire
//!   messages become engine types; `api::status` maps engine errors to gRPC
//!   codes.
//! - [`engine`]: the transport-free core. [`engine::TaskManager`] accepts,
//!   schedules, runs, retries, cancels and reports tasks; its
//!   `scheduler` holds the state machine, `queue` the priority-and-age run
//!   queue, `executor` runs one attempt with timeout and cancellation.
//! - [`store`]: durable state behind the [`store::Store`] trait, with the
//!   embedded SQLite default (group commit) and a conformance suite every
//!   backend must pass.
//! - [`handlers`]: the built-in task types.
//! - [`server`]: assembles all of it on one listener; [`config`] holds its
//!   settings.

pub mod api;
pub mod config;
pub mod engine;
pub mod handlers;
pub mod monitor;
pub mod server;
pub mod store;
