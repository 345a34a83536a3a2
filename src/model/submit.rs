//! What a client asks for: the seed's `TaskManager.submit` arguments, and
//! the fingerprint that tells a repeated request from a different one.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::model::{Params, PartialRetryPolicy, TaskId, TaskPriority, TaskStatus, Timestamp};

/// Where a dependency in a submit points.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DependencyTarget {
    /// An existing task.
    Task(TaskId),
    /// Another member of the same batch, by its batch reference.
    BatchRef(String),
}

/// A dependency as a client submits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDependency {
    pub target: DependencyTarget,
    pub required_status: TaskStatus,
}

/// A task as a client submits it. Unset options take the server's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewTask {
    pub name: String,
    pub task_type: String,
    pub params: Params,
    pub priority: TaskPriority,
    pub dependencies: Vec<NewDependency>,
    pub max_retries: Option<u32>,
    pub timeout: Option<Duration>,
    pub run_at: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
    pub retry_policy: Option<PartialRetryPolicy>,
    pub batch_ref: Option<String>,
}

impl NewTask {
    pub fn new(task_type: impl Into<String>) -> Self {
        NewTask {
            task_type: task_type.into(),
            ..NewTask::default()
        }
    }

    /// What makes two submits under one idempotency key the same request:
    /// the task type, the params and the dependencies as written.
    pub fn fingerprint(&self) -> Fingerprint {
        let dependencies: Vec<Value> = self
            .dependencies
            .iter()
            .map(|dependency| {
                let target = match &dependency.target {
                    DependencyTarget::Task(id) => json!({"task_id": id.to_string()}),
                    DependencyTarget::BatchRef(reference) => json!({"batch_ref": reference}),
                };
                json!([target, dependency.required_status.as_str()])
            })
            .collect();
        // serde_json maps are sorted by key, so equal content always
        // serializes to equal text.
        let canonical = json!([self.task_type, self.params, dependencies]).to_string();
        Fingerprint(fnv1a_64(canonical.as_bytes()))
    }
}

/// A stable 64-bit digest of a request's content (FNV-1a): the same in
/// every process and release, unlike the standard library's hashers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// The fingerprint's bits as a signed integer, the way SQL columns
    /// keep it.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    pub fn from_i64(value: i64) -> Self {
        Fingerprint(value as u64)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(task_type: &str, params: Value) -> NewTask {
        let Value::Object(params) = params else {
            panic!("params must be an object")
        };
        NewTask {
            params,
            ..NewTask::new(task_type)
        }
    }

    #[test]
    fn equal_content_has_equal_fingerprints_whatever_the_key_order_or_other_options() {
        let first = request("data_export", json!({"format": "csv", "limit": 10}));
        let mut second = request("data_export", json!({"limit": 10, "format": "csv"}));
        second.priority = TaskPriority::High;
        second.name = "another name".into();
        assert_eq!(first.fingerprint(), second.fingerprint());
    }

    #[test]
    fn type_params_and_dependencies_each_change_the_fingerprint() {
        let base = request("data_export", json!({"format": "csv"}));
        let other_type = request("report_generation", json!({"format": "csv"}));
        let other_params = request("data_export", json!({"format": "jsonl"}));
        let mut with_dependency = base.clone();
        with_dependency.dependencies.push(NewDependency {
            target: DependencyTarget::BatchRef("a".into()),
            required_status: TaskStatus::Completed,
        });
        let mut other_requirement = with_dependency.clone();
        other_requirement.dependencies[0].required_status = TaskStatus::Failed;
        let prints = [
            base.fingerprint(),
            other_type.fingerprint(),
            other_params.fingerprint(),
            with_dependency.fingerprint(),
            other_requirement.fingerprint(),
        ];
        for (index, print) in prints.iter().enumerate() {
            for other in &prints[index + 1..] {
                assert_ne!(print, other);
            }
        }
    }

    #[test]
    fn fingerprints_read_back_from_their_stored_form() {
        let print = request("a", json!({})).fingerprint();
        assert_eq!(Fingerprint::from_i64(print.as_i64()), print);
    }
}
