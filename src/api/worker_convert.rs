//! Worker messages: wire to engine and back. Every malformed value is
//! reported with the field it came from.

use crate::api::convert::{self, status_to_proto, timestamp_to_proto};
use crate::api::error_codes::wire_codes;
use crate::api::json;
use crate::api::proto;
use crate::engine::EngineError;
use crate::engine::{TaskTypeInfo, WorkerHello};
use crate::model::ClaimedTask;
use crate::model::WorkerInfo;
use crate::model::rules::attempts::AttemptEnd;
use crate::model::{Lease, LeaseLost, LeaseRef, LeaseToken, Progress, TaskStatus, Timestamp};

pub fn hello(hello: proto::WorkerHello) -> WorkerHello {
    WorkerHello {
        worker_id: Some(hello.worker_id).filter(|id| !id.is_empty()),
        task_types: hello.task_types,
        capacity: hello.capacity as usize,
        labels: hello.labels.into_iter().collect(),
        instance: hello.instance,
    }
}

/// The lease a request presents; `field` names it.
pub fn lease_ref(field: &str, lease: Option<&proto::Lease>) -> Result<LeaseRef, EngineError> {
    let lease = lease.ok_or_else(|| EngineError::invalid(field, "is required"))?;
    let task_id = convert::task_id(&format!("{field}.task_id"), &lease.task_id)?;
    if lease.attempt == 0 {
        return Err(EngineError::invalid(format!("{field}.attempt"), "must be 1 or more"));
    }
    Ok(LeaseRef {
        task_id,
        attempt: lease.attempt,
        token: LeaseToken(lease.token),
    })
}

pub fn lease_to_proto(lease: &Lease) -> proto::Lease {
    proto::Lease {
        task_id: lease.task_id.to_string(),
        attempt: lease.attempt,
        token: lease.token.0,
        deadline: Some(timestamp_to_proto(lease.deadline)),
    }
}

fn lease_ref_to_proto(lease: &LeaseRef) -> proto::Lease {
    proto::Lease {
        task_id: lease.task_id.to_string(),
        attempt: lease.attempt,
        token: lease.token.0,
        deadline: None,
    }
}

/// How an attempt ended, as a worker reports it; `prefix` names the
/// result's fields (`finish.results[2].`).
pub fn attempt_result(result: &proto::AttemptResult, prefix: &str) -> Result<(LeaseRef, AttemptEnd), EngineError> {
    let lease = lease_ref(&format!("{prefix}lease"), result.lease.as_ref())?;
    let end = match &result.outcome {
        Some(proto::attempt_result::Outcome::Result(value)) => {
            let value = json::value_to_json(value).map_err(|error| {
                EngineError::invalid(
                    format!("{prefix}result{}", error.path),
                    "NaN and infinite numbers have no JSON form",
                )
            })?;
            AttemptEnd::Succeeded(value)
        }
        Some(proto::attempt_result::Outcome::Failure(failure)) => AttemptEnd::Failed {
            error: if failure.message.is_empty() {
                "the worker reported a failure without a message".to_string()
            } else {
                failure.message.clone()
            },
            retryable: !failure.permanent,
        },
        Some(proto::attempt_result::Outcome::Released(why)) => AttemptEnd::Released {
            why: if why.is_empty() {
                "handed back by its worker".to_string()
            } else {
                why.clone()
            },
        },
        None => {
            return Err(EngineError::invalid(
                format!("{prefix}outcome"),
                "set one of result, failure or released",
            ));
        }
    };
    Ok((lease, end))
}

pub fn progress_report(report: &proto::ProgressReport, prefix: &str) -> Result<(LeaseRef, Progress), EngineError> {
    let lease = lease_ref(&format!("{prefix}lease"), report.lease.as_ref())?;
    if !report.percent.is_finite() {
        return Err(EngineError::invalid(format!("{prefix}percent"), "must be a number"));
    }
    Ok((
        lease,
        Progress {
            percent: report.percent.clamp(0.0, 100.0),
            message: report.message.clone(),
        },
    ))
}

pub fn refusal(error: &EngineError) -> proto::Refusal {
    proto::Refusal {
        code: wire_codes(error.code()).grpc as i32,
        message: error.to_string(),
    }
}

pub fn finish_outcome(lease: &LeaseRef, answer: Result<TaskStatus, EngineError>) -> proto::FinishOutcome {
    let (status, refusal) = match answer {
        Ok(status) => (status_to_proto(status) as i32, None),
        Err(error) => (0, Some(refusal(&error))),
    };
    proto::FinishOutcome {
        task_id: lease.task_id.to_string(),
        attempt: lease.attempt,
        status,
        refusal,
    }
}

/// One renewal's outcome.
pub fn renew_outcome(lease: &LeaseRef, renewed: Result<Timestamp, LeaseLost>) -> proto::RenewOutcome {
    let (deadline, refusal) = match renewed {
        Ok(deadline) => (Some(timestamp_to_proto(deadline)), None),
        Err(reason) => (
            None,
            Some(refusal(&EngineError::LeaseLost {
                task_id: lease.task_id,
                reason,
            })),
        ),
    };
    proto::RenewOutcome {
        task_id: lease.task_id.to_string(),
        attempt: lease.attempt,
        deadline,
        refusal,
    }
}

pub fn assigned(tasks: &[ClaimedTask]) -> proto::AssignedTasks {
    proto::AssignedTasks {
        tasks: tasks
            .iter()
            .map(|claimed| proto::AssignedTask {
                task: Some(convert::task_to_proto(&claimed.task)),
                lease: Some(lease_to_proto(&claimed.lease)),
            })
            .collect(),
    }
}

pub fn revoked(lease: &LeaseRef, reason: &str) -> proto::LeaseRevoked {
    proto::LeaseRevoked {
        lease: Some(lease_ref_to_proto(lease)),
        reason: reason.to_string(),
    }
}

pub fn worker_to_proto(worker: &WorkerInfo) -> proto::Worker {
    proto::Worker {
        worker_id: worker.worker_id.clone(),
        task_types: worker.task_types.clone(),
        capacity: worker.capacity as u32,
        held: worker.held as u32,
        labels: worker.labels.clone().into_iter().collect(),
        connected_at: Some(timestamp_to_proto(worker.connected_at)),
        last_seen: Some(timestamp_to_proto(worker.last_seen)),
        draining: worker.draining,
        finished: worker.finished,
        node: worker.node.clone(),
    }
}

pub fn task_types_to_proto(task_types: &[TaskTypeInfo]) -> proto::ListTaskTypesResponse {
    proto::ListTaskTypesResponse {
        task_types: task_types
            .iter()
            .map(|info| proto::TaskTypeInfo {
                task_type: info.task_type.clone(),
                handler_available: info.served,
                workers: info.workers as u32,
            })
            .collect(),
    }
}
