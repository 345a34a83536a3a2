//! Black-box tests of taskd: a real server on an ephemeral port, reached
//! over TCP through the public client. One binary, one module per topic.

mod support;

mod bad_input;
mod builtins;
mod cancellation;
mod crash;
mod dashboard;
mod dependencies;
mod grpcurl;
mod idempotency;
mod lifecycle;
mod monitoring;
mod openapi;
mod recovery;
mod rest;
mod retries;
mod scheduling;
mod store_sqlite;
mod watching;
