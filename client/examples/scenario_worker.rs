//! The Rust SDK's worker, driven by the worker scenario suite
//! (client/python/tests/test_worker_scenarios.py), which runs every
//! scenario against this and against the Python SDK's twin
//! (client/python/tests/scenario_worker.py). Same arguments, same output:
//!
//!     scenario_worker ADDRESS WORKER_ID [--capacity N] [--drain-timeout S]
//!                     [--cancel-grace S] [--token T]
//!
//! Serves:
//! - `scenario.quick`: returns at once;
//! - `scenario.wait_cancel`: waits until its lease stops counting (cancel,
//!   timeout, lost lease), prints `saw-cancel ID`, returns;
//! - `scenario.cleanup`: the same, then cleans up for 0.1 s and prints
//!   `cleaned-up ID` (within any sensible cancel grace);
//! - `scenario.ignore_cancel`: sleeps 60 s whatever happens.
//!
//! Prints `started ID` when a handler starts, `connected` once the server
//! lists the worker, `stopped` when it returns after a drain (SIGTERM),
//! and `refused CODE` (the gRPC status, as grpc names it) when the server
//! refuses the worker itself; then exits 3.

use std::time::Duration;

use serde_json::json;
use taskd_client::worker::Worker;
use taskd_client::{Client, ClientError, ConnectOptions};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1).cloned())
}

fn seconds(args: &[String], name: &str) -> Option<Duration> {
    flag(args, name)
        .and_then(|value| value.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
}

/// A status code as grpc spells it (`ALREADY_EXISTS`).
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::new();
    for (index, c) in camel.chars().enumerate() {
        if c.is_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(address), Some(worker_id)) = (args.get(1).cloned(), args.get(2).cloned()) else {
        eprintln!("usage: scenario_worker ADDRESS WORKER_ID [--capacity N] [--drain-timeout S] [--cancel-grace S]");
        std::process::exit(2);
    };
    let mut options = ConnectOptions::default();
    if let Some(token) = flag(&args, "--token") {
        options = options.token(token);
    }
    let client = Client::connect_with(format!("http://{address}"), &options)
        .await
        .expect("a client (connects lazily)");
    let mut worker = Worker::new(&client)
        .worker_id(worker_id.clone())
        .capacity(
            flag(&args, "--capacity")
                .and_then(|value| value.parse().ok())
                .unwrap_or(1),
        )
        .handle("scenario.quick", |run| async move {
            println!("started {}", run.id());
            Ok(json!({"sdk": "rust"}))
        })
        .handle("scenario.wait_cancel", |run| async move {
            println!("started {}", run.id());
            run.cancelled().await;
            println!("saw-cancel {}", run.id());
            Ok(json!(null))
        })
        .handle("scenario.cleanup", |run| async move {
            println!("started {}", run.id());
            run.cancelled().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            println!("cleaned-up {}", run.id());
            Ok(json!(null))
        })
        .handle("scenario.ignore_cancel", |run| async move {
            println!("started {}", run.id());
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(json!(null))
        });
    if let Some(drain) = seconds(&args, "--drain-timeout") {
        worker = worker.drain_timeout(drain);
    }
    if let Some(grace) = seconds(&args, "--cancel-grace") {
        worker = worker.cancel_grace(grace);
    }
    let announcer = tokio::spawn({
        let client = client.clone();
        async move {
            loop {
                if let Ok(workers) = client.workers().await
                    && workers.iter().any(|worker| worker.worker_id == worker_id)
                {
                    println!("connected");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    let ended = worker
        .run_until(async move {
            terminate.recv().await;
        })
        .await;
    announcer.abort();
    match ended {
        Ok(()) => println!("stopped"),
        Err(ClientError::Status(status)) => {
            println!("refused {}", code_name(status.code()));
            std::process::exit(3);
        }
        Err(error) => {
            println!("refused {error}");
            std::process::exit(3);
        }
    }
}
