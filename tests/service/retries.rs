use std::time::Duration;

use serde_json::json;
use taskd_client::proto::attempt::Outcome;
use taskd_client::{NewTask, TaskStatus};

use crate::support::{TestServer, millis_between};

/// Effectively no jitter: an explicit 0 would mean the server default.
const NO_JITTER: f64 = 1e-9;

#[tokio::test]
async fn a_failing_task_is_retried_with_growing_backoff_until_it_succeeds() {
    let server = TestServer::start().await;
    // Delays of 50 ms, then 200 ms: far enough apart that scheduling noise
    // on a busy machine cannot reorder them.
    let task = server
        .client
        .submit(
            NewTask::new("diag.fail")
                .params(json!({"message": "flaky upstream", "succeed_on_attempt": 3}))
                .max_retries(5)
                .backoff(Duration::from_millis(50), 4.0, Duration::from_secs(1), NO_JITTER),
        )
        .await
        .unwrap();

    let task = server.wait(&task.id).await;
    assert_eq!(task.status(), TaskStatus::Completed, "{}", task.status_reason);
    assert_eq!(task.retry_count, 2);
    let result = taskd_client::json::value_to_json(task.result.as_ref().expect("result")).unwrap();
    assert_eq!(result, json!({"attempt": 3}));
    assert!(task.error.is_empty(), "a completed task has no error: {}", task.error);

    let attempts = &task.attempts;
    assert_eq!(attempts.len(), 3);
    for (index, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt.number, index as u32 + 1);
        assert!(attempt.finished_at.is_some(), "attempt {} has ended", attempt.number);
    }
    for failed in &attempts[..2] {
        assert_eq!(failed.outcome(), Outcome::Failed, "attempt {}", failed.number);
        assert_eq!(failed.error, "flaky upstream", "attempt {}", failed.number);
    }
    assert_eq!(attempts[2].outcome(), Outcome::Succeeded);
    assert!(attempts[2].error.is_empty());

    let gap = |before: usize| {
        millis_between(
            attempts[before].finished_at.as_ref().unwrap(),
            attempts[before + 1].started_at.as_ref().unwrap(),
        )
    };
    let (first_gap, second_gap) = (gap(0), gap(1));
    assert!(
        first_gap >= 49.0,
        "first backoff was {first_gap:.1} ms, expected at least 50"
    );
    assert!(
        second_gap >= 199.0,
        "second backoff was {second_gap:.1} ms, expected at least 200"
    );
    assert!(
        second_gap > first_gap,
        "backoff grows: {first_gap:.1} ms, then {second_gap:.1} ms"
    );
    assert!(second_gap < 5_000.0, "second backoff was {second_gap:.1} ms");

    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.failed_attempts_since_start, 2);
    assert_eq!(stats.retries_since_start, 2);
}

#[tokio::test]
async fn a_task_that_always_fails_ends_failed_after_its_last_retry() {
    let server = TestServer::start().await;
    let task = server
        .client
        .submit(
            NewTask::new("diag.fail")
                .params(json!({"message": "permanent failure"}))
                .max_retries(2)
                .backoff(Duration::from_millis(10), 2.0, Duration::from_millis(100), NO_JITTER),
        )
        .await
        .unwrap();

    let task = server.wait(&task.id).await;
    assert_eq!(task.status(), TaskStatus::Failed);
    assert_eq!(task.retry_count, 2);
    assert_eq!(task.max_retries, 2);
    assert_eq!(task.error, "permanent failure");
    assert!(task.completed_at.is_some());
    assert!(task.result.is_none());
    assert_eq!(task.attempts.len(), 3);
    for attempt in &task.attempts {
        assert_eq!(attempt.outcome(), Outcome::Failed, "attempt {}", attempt.number);
        assert_eq!(attempt.error, "permanent failure", "attempt {}", attempt.number);
    }

    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.failed_attempts_since_start, 3);
    assert_eq!(stats.retries_since_start, 2);
    assert_eq!(stats.counts.unwrap().failed, 1);
}

#[tokio::test]
async fn an_attempt_that_outlives_its_timeout_is_stopped_and_counted_as_timed_out() {
    let server = TestServer::start().await;
    let task = server
        .client
        .submit(
            NewTask::new("diag.sleep")
                .params(json!({"duration_ms": 10_000}))
                .timeout(Duration::from_millis(100))
                .max_retries(0),
        )
        .await
        .unwrap();

    let task = server.wait(&task.id).await;
    assert_eq!(task.status(), TaskStatus::Failed);
    assert_eq!(task.attempts.len(), 1);
    let attempt = &task.attempts[0];
    assert_eq!(attempt.outcome(), Outcome::TimedOut);
    assert!(attempt.error.contains("timed out"), "{}", attempt.error);
    assert!(task.error.contains("timed out"), "{}", task.error);
    let ran = millis_between(
        attempt.started_at.as_ref().unwrap(),
        attempt.finished_at.as_ref().unwrap(),
    );
    assert!(ran >= 99.0, "stopped after {ran:.1} ms, before its timeout");
    assert!(ran < 5_000.0, "stopped after {ran:.1} ms, not near its 100 ms timeout");

    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.failed_attempts_since_start, 1);
    assert_eq!(stats.retries_since_start, 0);
}

#[tokio::test]
async fn a_panicking_handler_fails_the_task_with_the_panic_message_and_the_server_goes_on() {
    let server = TestServer::start_with(|config| config.engine.diag_panic = true).await;
    let task = server
        .client
        .submit(
            NewTask::new("diag.panic")
                .params(json!({"message": "index out of bounds in page 7"}))
                .max_retries(0),
        )
        .await
        .unwrap();

    let task = server.wait(&task.id).await;
    assert_eq!(task.status(), TaskStatus::Failed);
    assert!(task.error.contains("index out of bounds in page 7"), "{}", task.error);
    assert_eq!(task.attempts.len(), 1);
    assert_eq!(task.attempts[0].outcome(), Outcome::Failed);
    assert!(
        task.attempts[0].error.contains("index out of bounds in page 7"),
        "{}",
        task.attempts[0].error
    );

    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.failed_attempts_since_start, 1);
    assert_eq!(stats.retries_since_start, 0);

    let next = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    assert_eq!(server.wait(&next.id).await.status(), TaskStatus::Completed);
}
