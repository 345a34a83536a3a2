//! Random sequences of operations, checked against the invariants every
//! backend must keep: no task is held by two leases, no task is lost or
//! stuck, dependents never start before their requirement, each attempt has
//! at most one accepted outcome, every status change is one the rules allow,
//! and the counts agree with the tasks.
//!
//! The sequences come from the caller's proptest (see
//! [`store_conformance_tests!`](crate::store_conformance_tests)), so this
//! library does not depend on proptest.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::{LEASE, at, draft, on_task, success};
use taskd::model::rules::attempts::AttemptEnd;
use taskd::model::rules::{may_enter, may_follow};
use taskd::model::{Lease, Progress, RetryPolicy, TaskId, TaskStatus, Timestamp};
use taskd::store::{AttemptReport, RenewRequest, RescueScope, Store, StoreError, Transition};

/// What a random step does.
#[derive(Clone, Debug)]
pub enum Operation {
    /// Submits a task depending on earlier ones (by index, modulo the
    /// number of tasks), due `delay` seconds from now (0: at once).
    Submit {
        dependencies: Vec<(usize, Requirement)>,
        delay: u8,
        max_retries: u8,
    },
    Claim {
        limit: u8,
    },
    /// Renews the lease at this index of every lease handed out so far.
    Renew {
        lease: usize,
    },
    Finish {
        lease: usize,
        end: End,
    },
    Progress {
        lease: usize,
    },
    Cancel {
        task: usize,
    },
    /// Moves the clock forward.
    Wait {
        seconds: u8,
    },
    Rescue,
    Promote,
}

#[derive(Clone, Copy, Debug)]
pub enum Requirement {
    Completed,
    Failed,
    Cancelled,
}

#[derive(Clone, Copy, Debug)]
pub enum End {
    Success,
    RetryableFailure,
    PermanentFailure,
    /// The executor hands the task back unfinished.
    HandBack,
}

const TYPE: &str = "sequence";

/// What the checks know from the store's own answers.
struct Knowledge {
    store: Arc<dyn Store>,
    now: Timestamp,
    tasks: Vec<TaskId>,
    dependencies: HashMap<TaskId, Vec<(TaskId, TaskStatus)>>,
    statuses: HashMap<TaskId, TaskStatus>,
    leases: Vec<Lease>,
    /// Attempts whose outcome the store accepted.
    accepted: HashSet<(TaskId, u32)>,
}

impl Knowledge {
    /// Takes in the transitions of one answer: each must be allowed and
    /// start where the last one left the task.
    fn learn(&mut self, transitions: &[Transition]) {
        for transition in transitions {
            match transition.from {
                None => assert!(may_enter(transition.to), "created {:?}", transition.to),
                Some(from) => {
                    assert!(may_follow(from, transition.to), "{from} -> {}", transition.to);
                    assert_eq!(
                        self.statuses.get(&transition.task_id),
                        Some(&from),
                        "task {} moved from a status it was not in",
                        transition.task_id
                    );
                }
            }
            self.statuses.insert(transition.task_id, transition.to);
        }
    }

    /// The store agrees with every answer it gave: no task lost, none
    /// changed unannounced, counts right.
    async fn check_store(&self) {
        let mut by_status: HashMap<TaskStatus, u64> = HashMap::new();
        for id in &self.tasks {
            let task = self.store.get(*id).await.expect("get").expect("no task is lost");
            assert_eq!(Some(&task.status), self.statuses.get(id), "task {id}");
            *by_status.entry(task.status).or_default() += 1;
        }
        let mut counted: HashMap<TaskStatus, u64> = HashMap::new();
        for count in self.store.counts().await.expect("counts") {
            *counted.entry(count.status).or_default() += count.count;
        }
        counted.retain(|_, count| *count > 0);
        assert_eq!(counted, by_status, "counts agree with the tasks");
    }

    fn lease(&self, index: usize) -> Option<Lease> {
        (!self.leases.is_empty()).then(|| self.leases[index % self.leases.len()].clone())
    }

    async fn submit(&mut self, dependencies: Vec<(usize, Requirement)>, delay: u8, max_retries: u8) {
        let mut request = draft(TYPE);
        request.max_retries = u32::from(max_retries);
        request.timeout = Duration::from_secs(50);
        request.retry_policy = RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(4),
            jitter: 0.0,
        };
        if delay > 0 {
            request.run_at = Some(self.now.saturating_add(Duration::from_secs(u64::from(delay))));
        }
        let mut wanted = Vec::new();
        if !self.tasks.is_empty() {
            for (index, requirement) in dependencies {
                let id = self.tasks[index % self.tasks.len()];
                if wanted.iter().any(|(seen, _)| *seen == id) {
                    continue;
                }
                let required = match requirement {
                    Requirement::Completed => TaskStatus::Completed,
                    Requirement::Failed => TaskStatus::Failed,
                    Requirement::Cancelled => TaskStatus::Cancelled,
                };
                wanted.push((id, required));
            }
        }
        request.dependencies = wanted.iter().map(|(id, required)| on_task(*id, *required)).collect();
        let id = request.id;
        let submitted = self
            .store
            .submit(taskd::store::SubmitBatch {
                drafts: vec![request],
                now: self.now,
            })
            .await
            .expect("submit accepted");
        self.learn(&submitted.transitions);
        self.tasks.push(id);
        self.dependencies.insert(id, wanted);
    }

    async fn claim(&mut self, limit: u8) {
        let claimed = self
            .store
            .claim(crate::claim_request("executor", &[TYPE], usize::from(limit), self.now))
            .await
            .expect("claim answered");
        self.learn(&claimed.transitions);
        for claimed in claimed.tasks {
            let id = claimed.task.id;
            for (dependency, required) in &self.dependencies[&id] {
                let status = self.store.get(*dependency).await.expect("get").expect("exists").status;
                assert_eq!(
                    status, *required,
                    "task {id} started before its dependency {dependency} ended as required"
                );
            }
            let earlier: Vec<Lease> = self
                .leases
                .iter()
                .filter(|lease| lease.task_id == id)
                .cloned()
                .collect();
            for lease in earlier {
                assert!(self.renew(&lease).await.is_err(), "task {id} held by two leases");
            }
            self.leases.push(claimed.lease);
        }
    }

    async fn renew(&self, lease: &Lease) -> Result<Timestamp, taskd::model::LeaseLost> {
        let mut renewed = self
            .store
            .renew(RenewRequest {
                leases: vec![lease.reference()],
                lease_duration: LEASE,
                now: self.now,
            })
            .await
            .expect("renew answered");
        renewed.remove(0)
    }

    async fn finish(&mut self, lease: Lease, end: End) {
        let end = match end {
            End::Success => success(),
            End::RetryableFailure => AttemptEnd::Failed {
                error: "flaky".into(),
                retryable: true,
            },
            End::PermanentFailure => AttemptEnd::Failed {
                error: "broken".into(),
                retryable: false,
            },
            End::HandBack => AttemptEnd::Released { why: "draining".into() },
        };
        let answer = self
            .store
            .finish(AttemptReport {
                lease: lease.reference(),
                end,
                machine: None,
                now: self.now,
            })
            .await;
        match answer {
            Ok(finished) => {
                assert!(
                    self.accepted.insert((lease.task_id, lease.attempt)),
                    "a second outcome accepted for attempt {} of {}",
                    lease.attempt,
                    lease.task_id
                );
                self.learn(&finished.transitions);
            }
            Err(StoreError::LeaseLost { .. }) => {}
            Err(error) => panic!("finish failed: {error}"),
        }
    }

    async fn cancel(&mut self, index: usize) {
        if self.tasks.is_empty() {
            return;
        }
        let id = self.tasks[index % self.tasks.len()];
        match self.store.cancel(id, "random".into(), self.now).await {
            Ok(cancelled) => self.learn(&cancelled.transitions),
            Err(StoreError::AlreadyFinished { status, .. }) => assert!(status.is_terminal()),
            Err(error) => panic!("cancel failed: {error}"),
        }
    }

    async fn rescue(&mut self) {
        let rescued = self.store.rescue(RescueScope::Expired, self.now).await.expect("rescue");
        self.learn(&rescued.transitions);
    }

    async fn promote(&mut self) {
        let promoted = self.store.promote_due(self.now).await.expect("promote");
        self.learn(&promoted.transitions);
    }

    async fn apply(&mut self, operation: Operation) {
        match operation {
            Operation::Submit {
                dependencies,
                delay,
                max_retries,
            } => self.submit(dependencies, delay, max_retries).await,
            Operation::Claim { limit } => self.claim(limit).await,
            Operation::Renew { lease } => {
                if let Some(lease) = self.lease(lease) {
                    let _ = self.renew(&lease).await;
                }
            }
            Operation::Finish { lease, end } => {
                if let Some(lease) = self.lease(lease) {
                    self.finish(lease, end).await;
                }
            }
            Operation::Progress { lease } => {
                if let Some(lease) = self.lease(lease) {
                    let progress = Progress {
                        percent: 10.0,
                        message: "working".into(),
                    };
                    match self.store.record_progress(lease.reference(), progress, self.now).await {
                        Ok(()) | Err(StoreError::LeaseLost { .. }) => {}
                        Err(error) => panic!("progress failed: {error}"),
                    }
                }
            }
            Operation::Cancel { task } => self.cancel(task).await,
            Operation::Wait { seconds } => {
                self.now = self.now.saturating_add(Duration::from_secs(u64::from(seconds)));
            }
            Operation::Rescue => self.rescue().await,
            Operation::Promote => self.promote().await,
        }
    }
}

/// Applies `operations` to a fresh store, checking the invariants after
/// each, then runs everything left to its end.
pub async fn run(store: Arc<dyn Store>, operations: Vec<Operation>) {
    let mut knowledge = Knowledge {
        store,
        now: at(0.0),
        tasks: Vec::new(),
        dependencies: HashMap::new(),
        statuses: HashMap::new(),
        leases: Vec::new(),
        accepted: HashSet::new(),
    };
    for operation in operations {
        knowledge.apply(operation).await;
        knowledge.check_store().await;
    }
    // Liveness: with time moving on and an executor that always succeeds,
    // every task ends.
    for _ in 0..50 {
        if knowledge.statuses.values().all(|status| status.is_terminal()) {
            return;
        }
        knowledge.now = knowledge.now.saturating_add(Duration::from_secs(100));
        knowledge.rescue().await;
        let before = knowledge.leases.len();
        knowledge.claim(100).await;
        let fresh: Vec<Lease> = knowledge.leases[before..].to_vec();
        for lease in fresh {
            knowledge.finish(lease, End::Success).await;
        }
        knowledge.check_store().await;
    }
    let stuck: Vec<_> = knowledge
        .statuses
        .iter()
        .filter(|(_, status)| !status.is_terminal())
        .collect();
    panic!("tasks never ended: {stuck:?}");
}
