//! Black-box tests of taskd: a real server on an ephemeral port, reached
//! over TCP through the public client. One binary, one module per topic.

mod support;

mod bad_input;
mod builtins;
mod cancellation;
mod cli;
mod cluster;
mod crash;
mod cross_site;
mod dashboard;
mod dependencies;
mod durability;
mod fuzz;
mod grpcurl;
mod idempotency;
mod layout;
mod leases;
mod lifecycle;
mod migration;
mod monitoring;
mod openapi;
mod ownership;
mod readme;
mod recovery;
mod rest;
mod retries;
mod schedules;
mod scheduling;
mod security;
mod store_postgres;
mod store_sqlite;
mod taskctl;
mod watching;
mod worker_bounds;
mod workers;
