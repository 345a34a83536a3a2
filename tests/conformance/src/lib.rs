//! The executable contract of [`Store`]: every backend runs these checks,
//! unchanged.
//!
//! A backend's test file calls
//! [`store_conformance_tests!`](crate::store_conformance_tests) with an
//! expression that evaluates to a future yielding a fresh, empty store as
//! `Arc<dyn Store>`; the macro expands to one test per check. The caller
//! needs `tokio` and `proptest` as (dev-)dependencies.
//!
//! Operations take the time as an argument, so the checks move the clock
//! instead of sleeping: a lease expires because the next call says it is
//! later, not because the test waited.

pub mod claims;
pub mod dependencies;
pub mod events;
pub mod leases;
pub mod schedules;
pub mod sequences;
pub mod submits;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use taskd::model::rules::attempts::AttemptEnd;
use taskd::model::{ExecutorId, Lease, RetryPolicy, Task, TaskId, TaskPriority, TaskStatus, Timestamp};
use taskd::store::{
    AttemptReport, ClaimRequest, ClaimedTask, DraftDependency, DraftTarget, Finished, Store, StoreResult, SubmitBatch,
    TaskDraft,
};

/// The lease every check takes unless it says otherwise.
pub const LEASE: Duration = Duration::from_secs(30);

/// A fixed point the checks count time from.
pub fn epoch() -> Timestamp {
    // 2030-01-01T00:00:00Z: far from the real clock in both directions is
    // not needed, only a fixed, plausible origin.
    Timestamp(1_893_456_000_000_000)
}

/// `seconds` after [`epoch`].
pub fn at(seconds: f64) -> Timestamp {
    epoch().saturating_add(Duration::from_secs_f64(seconds))
}

/// A draft with every field set to something a round trip can check.
pub fn draft(task_type: &str) -> TaskDraft {
    let mut params = serde_json::Map::new();
    params.insert("document_id".into(), json!("123"));
    params.insert("nested".into(), json!({"list": [1, 2.5, null, true]}));
    TaskDraft {
        position: 0,
        id: TaskId::new(),
        name: format!("a {task_type}"),
        task_type: task_type.to_string(),
        params,
        priority: TaskPriority::Normal,
        dependencies: Vec::new(),
        max_retries: 3,
        timeout: Duration::from_secs(600),
        run_at: None,
        labels: BTreeMap::from([("team".to_string(), "search".to_string())]),
        idempotency_key: None,
        fingerprint: None,
        retry_policy: RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(60),
            jitter: 0.0,
        },
    }
}

/// A dependency on an existing task.
pub fn on_task(id: TaskId, required_status: TaskStatus) -> DraftDependency {
    DraftDependency {
        target: DraftTarget::Task(id),
        required_status,
    }
}

/// A dependency on an earlier draft of the same batch.
pub fn on_draft(index: usize, required_status: TaskStatus) -> DraftDependency {
    DraftDependency {
        target: DraftTarget::Draft(index),
        required_status,
    }
}

/// Submits `drafts` (positions numbered in order) at `now`; the tasks.
pub async fn submit(store: &Arc<dyn Store>, drafts: Vec<TaskDraft>, now: Timestamp) -> Vec<Task> {
    try_submit(store, drafts, now).await.expect("submit accepted")
}

pub async fn try_submit(store: &Arc<dyn Store>, mut drafts: Vec<TaskDraft>, now: Timestamp) -> StoreResult<Vec<Task>> {
    for (position, draft) in drafts.iter_mut().enumerate() {
        draft.position = position;
    }
    let submitted = store.submit(SubmitBatch { drafts, now }).await?;
    Ok(submitted
        .outcomes
        .into_iter()
        .map(|outcome| outcome.into_task())
        .collect())
}

/// Submits one draft at `now`.
pub async fn submit_one(store: &Arc<dyn Store>, draft: TaskDraft, now: Timestamp) -> Task {
    submit(store, vec![draft], now).await.remove(0)
}

/// A claim request by `executor` for up to `limit` tasks of `types`.
pub fn claim_request(executor: &str, types: &[&str], limit: usize, now: Timestamp) -> ClaimRequest {
    ClaimRequest {
        executor: ExecutorId::new(executor),
        task_types: types.iter().map(|task_type| (task_type.to_string(), limit)).collect(),
        limit,
        lease_duration: LEASE,
        machine: None,
        now,
    }
}

/// Claims up to `limit` tasks of `types` for `executor` at `now`.
pub async fn claim(
    store: &Arc<dyn Store>,
    executor: &str,
    types: &[&str],
    limit: usize,
    now: Timestamp,
) -> Vec<ClaimedTask> {
    store
        .claim(claim_request(executor, types, limit, now))
        .await
        .expect("claim answered")
        .tasks
}

/// Ends the attempt of `lease` with `end` at `now`.
pub async fn finish(store: &Arc<dyn Store>, lease: &Lease, end: AttemptEnd, now: Timestamp) -> StoreResult<Finished> {
    store
        .finish(AttemptReport {
            lease: lease.reference(),
            end,
            machine: None,
            now,
        })
        .await
}

/// A successful end with a small result.
pub fn success() -> AttemptEnd {
    AttemptEnd::Succeeded(json!({"ok": true}))
}

/// A failed end that may be retried.
pub fn failure(error: &str) -> AttemptEnd {
    AttemptEnd::Failed {
        error: error.to_string(),
        retryable: true,
    }
}

/// The stored task; panics when it is gone.
pub async fn stored(store: &Arc<dyn Store>, id: TaskId) -> Task {
    store
        .get(id)
        .await
        .expect("get answered")
        .unwrap_or_else(|| panic!("task {id} is stored"))
}

/// Expands to one test per conformance check for the store made by
/// `$make`, an expression evaluating to a future that yields a fresh
/// `Arc<dyn Store>`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@async $make;
            submits::a_submitted_task_reads_back_as_it_was_answered,
            submits::a_batch_with_an_unknown_dependency_is_refused_whole,
            submits::a_repeated_idempotency_key_returns_the_first_task,
            submits::a_key_reused_for_a_different_request_is_refused_naming_it,
            submits::one_hundred_concurrent_submits_of_one_key_make_one_task,
            submits::list_filters_and_pages_newest_first,
            submits::list_finds_by_name_and_by_the_task_depended_on,
            submits::counts_follow_every_transition,
            submits::purge_deletes_only_old_finished_tasks,
            submits::purge_of_one_status_leaves_the_others,
            submits::declared_task_types_are_remembered_once_each,
            submits::declared_task_types_are_bounded_and_forgotten_unless_renewed,
            claims::claims_follow_priority_and_age_together,
            claims::claims_take_only_requested_types_within_each_cap,
            claims::a_claim_promotes_due_tasks_first,
            claims::eight_concurrent_claimers_take_each_task_exactly_once,
            claims::a_submit_hands_the_new_task_to_a_claimer_in_its_own_commit,
            claims::a_submit_that_hands_off_still_takes_the_best_ready_task_first,
            leases::renewing_extends_a_lease_but_never_past_the_timeout,
            leases::an_expired_lease_is_rescued_and_the_task_retried,
            leases::a_lease_cut_short_by_the_timeout_ends_timed_out,
            leases::a_stale_finish_is_refused_and_changes_nothing,
            leases::each_attempt_has_exactly_one_accepted_outcome,
            leases::cancelling_a_running_task_revokes_its_lease,
            leases::progress_is_recorded_only_under_a_live_lease,
            leases::an_executor_that_is_gone_loses_every_lease_it_held,
            leases::a_handed_back_task_is_ready_at_once_and_keeps_its_retries,
            dependencies::a_finish_releases_and_cancels_dependents_in_the_same_step,
            dependencies::a_cascade_reaches_every_level_below,
            dependencies::members_of_a_batch_depend_on_each_other,
            dependencies::a_retry_waits_its_backoff_then_runs_again,
            dependencies::a_permanent_failure_fails_at_once,
            events::events_follow_commits_in_order_with_the_task_as_changed,
            events::a_watch_snapshot_and_its_events_miss_nothing,
            schedules::a_schedule_is_created_once_and_changed_only_from_its_latest_revision,
            schedules::due_schedules_are_those_not_paused_whose_fire_has_come,
        );
        #[test]
        fn random_operation_sequences_keep_the_invariants() {
            use ::proptest::prelude::*;
            let config = ProptestConfig {
                cases: 48,
                failure_persistence: None,
                ..ProptestConfig::default()
            };
            use $crate::sequences::{End, Operation, Requirement};
            let requirement = prop_oneof![
                Just(Requirement::Completed),
                Just(Requirement::Failed),
                Just(Requirement::Cancelled),
            ];
            let end = prop_oneof![
                Just(End::Success),
                Just(End::RetryableFailure),
                Just(End::PermanentFailure),
                Just(End::HandBack),
            ];
            let operation = prop_oneof![
                4 => (
                    prop::collection::vec((any::<usize>(), requirement), 0..3),
                    prop_oneof![3 => Just(0_u8), 1 => 1_u8..20],
                    0_u8..3,
                )
                    .prop_map(|(dependencies, delay, max_retries)| Operation::Submit {
                        dependencies,
                        delay,
                        max_retries,
                    }),
                3 => (1_u8..4).prop_map(|limit| Operation::Claim { limit }),
                1 => any::<usize>().prop_map(|lease| Operation::Renew { lease }),
                3 => (any::<usize>(), end).prop_map(|(lease, end)| Operation::Finish { lease, end }),
                1 => any::<usize>().prop_map(|lease| Operation::Progress { lease }),
                1 => any::<usize>().prop_map(|task| Operation::Cancel { task }),
                2 => (1_u8..40).prop_map(|seconds| Operation::Wait { seconds }),
                1 => Just(Operation::Rescue),
                1 => Just(Operation::Promote),
            ];
            proptest!(config, |(operations in prop::collection::vec(operation, 1..40))| {
                let runtime = ::tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    let store = $make.await;
                    $crate::sequences::run(store, operations).await;
                });
            });
        }
    };
    (@async $make:expr; $($module:ident :: $check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = $make.await;
                $crate::$module::$check(store).await;
            }
        )*
    };
}
