//! taskd: a durable background task service served over gRPC.
//!
//! The crate is layered, and data flows one way, every layer standing on
//! [`model`]:
//!
//! - [`model`]: the task model and its rules: plain data and pure
//!   functions. The status machine lives here, once, for every backend.
//! - [`store`]: the source of truth. Every transition is one atomic
//!   operation of the [`store::Store`] contract (submit, claim under a
//!   lease, renew, finish, cancel, rescue), written once in
//!   [`store::transition`] over the statements of a driver
//!   ([`store::driver::Tx`]); SQLite is the embedded default, PostgreSQL
//!   serves several nodes, and a conformance suite (a dev-only crate)
//!   defines the contract for every backend.
//! - [`engine`]: the transport-free core, entered through facades by
//!   capability: [`engine::Engine`] starts and stops it and hands out
//!   [`engine::TaskManager`] (tasks), [`engine::Workers`] (the worker
//!   protocol) and [`engine::Admin`] (administration); executors run
//!   attempts under leases, the in-process one among them.
//! - [`api`]: transports. gRPC services, the REST bridge, the dashboard and
//!   metrics; `api::convert` is the one place where wire messages become
//!   model types, `api::error_codes` the one table of error codes.
//! - [`handlers`]: the built-in task types. [`monitor`]: the
//!   ResourceMonitor.
//! - [`auth`]: bearer tokens and their scopes. [`net`]: the listener
//!   (TLS, connection limits and timeouts) that serves the transports.
//! - [`server`]: assembles all of it on one listener; [`config`] holds its
//!   settings.

pub mod api;
pub mod auth;
pub mod config;
pub mod engine;
pub mod handlers;
pub mod model;
pub mod monitor;
pub mod net;
pub mod server;
pub mod store;
