use std::collections::HashMap;

use taskd_client::proto::attempt::Outcome;
use taskd_client::{ListTasksRequest, NewTask, Task, TaskStatus, labels};
use tonic::Code;

use crate::support::{TestServer, millis_between};

/// Asserts that `dependent`'s first attempt started no earlier than
/// `dependency` completed.
fn assert_started_after(dependent: &Task, dependency: &Task) {
    let completed_at = dependency.completed_at.as_ref().expect("dependency has completed_at");
    let started_at = dependent.attempts[0]
        .started_at
        .as_ref()
        .expect("attempt has started_at");
    let gap = millis_between(completed_at, started_at);
    assert!(
        gap >= 0.0,
        "{} started {gap:.3} ms relative to the completion of its dependency {}",
        dependent.name,
        dependency.name
    );
}

#[tokio::test]
async fn a_batch_dag_with_fan_out_and_fan_in_runs_each_task_after_its_dependencies() {
    let server = TestServer::start().await;
    // a -> b, a -> c, b + c -> d; listed dependents first, since a batch may
    // come in any order.
    let submitted = server
        .client
        .submit_batch([
            NewTask::new("test.gate")
                .name("d")
                .batch_ref("d")
                .depends_on_ref("b")
                .depends_on_ref("c"),
            NewTask::new("test.gate").name("c").batch_ref("c").depends_on_ref("a"),
            NewTask::new("test.gate").name("b").batch_ref("b").depends_on_ref("a"),
            NewTask::new("test.gate").name("a").batch_ref("a"),
        ])
        .await
        .unwrap();
    let names: Vec<&str> = submitted.iter().map(|task| task.name.as_str()).collect();
    assert_eq!(names, ["d", "c", "b", "a"], "tasks come back in request order");
    let id: HashMap<String, String> = submitted
        .iter()
        .map(|task| (task.name.clone(), task.id.clone()))
        .collect();
    let dependency_ids = |task: &Task| -> Vec<String> {
        let mut ids: Vec<String> = task
            .dependencies
            .iter()
            .map(|dependency| dependency.task_id.clone())
            .collect();
        ids.sort();
        ids
    };
    let mut b_and_c = vec![id["b"].clone(), id["c"].clone()];
    b_and_c.sort();
    assert_eq!(dependency_ids(&submitted[0]), b_and_c);
    assert_eq!(dependency_ids(&submitted[1]), vec![id["a"].clone()]);
    assert_eq!(dependency_ids(&submitted[2]), vec![id["a"].clone()]);
    assert!(submitted[3].dependencies.is_empty());

    // a runs; everything else waits for it.
    server.wait_for_status(&id["a"], TaskStatus::Running).await;
    for name in ["b", "c", "d"] {
        let task = server.client.get(&id[name]).await.unwrap();
        assert_eq!(task.status(), TaskStatus::Waiting, "{name} while a is gated");
        assert!(task.attempts.is_empty(), "{name} has not run");
        assert!(task.status_reason.contains("waiting"), "{name}: {}", task.status_reason);
    }

    // a completes: b and c run, d still waits for both.
    server.gate.open(1);
    server.wait_for_status(&id["b"], TaskStatus::Running).await;
    server.wait_for_status(&id["c"], TaskStatus::Running).await;
    assert_eq!(server.client.get(&id["d"]).await.unwrap().status(), TaskStatus::Waiting);

    // One of b and c completes: d still waits for the other.
    server.gate.open(1);
    let first = tokio::select! {
        task = server.wait(&id["b"]) => task,
        task = server.wait(&id["c"]) => task,
    };
    assert_eq!(first.status(), TaskStatus::Completed);
    let d = server.client.get(&id["d"]).await.unwrap();
    assert_eq!(
        d.status(),
        TaskStatus::Waiting,
        "d with one of its two dependencies done"
    );
    assert!(d.attempts.is_empty());

    // The other completes: d runs.
    server.gate.open(1);
    server.wait_for_status(&id["d"], TaskStatus::Running).await;
    server.gate.open(1);

    let mut finished: HashMap<&str, Task> = HashMap::new();
    for name in ["a", "b", "c", "d"] {
        let task = server.wait(&id[name]).await;
        assert_eq!(task.status(), TaskStatus::Completed, "{name}");
        assert_eq!(task.attempts.len(), 1, "{name}");
        assert_eq!(task.attempts[0].outcome(), Outcome::Succeeded, "{name}");
        finished.insert(name, task);
    }
    for (dependent, dependency) in [("b", "a"), ("c", "a"), ("d", "b"), ("d", "c")] {
        assert_started_after(&finished[dependent], &finished[dependency]);
    }
}

#[tokio::test]
async fn a_task_that_requires_its_dependency_to_fail_runs_when_it_fails() {
    let server = TestServer::start().await;
    let root = server
        .client
        .submit(
            NewTask::new("diag.fail")
                .params(serde_json::json!({"message": "expected"}))
                .max_retries(0),
        )
        .await
        .unwrap();
    let on_failure = server
        .client
        .submit(NewTask::new("diag.echo").depends_on_status(&root.id, TaskStatus::Failed))
        .await
        .unwrap();
    assert_eq!(on_failure.dependencies[0].required_status(), TaskStatus::Failed);

    let root = server.wait(&root.id).await;
    assert_eq!(root.status(), TaskStatus::Failed);
    let on_failure = server.wait(&on_failure.id).await;
    assert_eq!(
        on_failure.status(),
        TaskStatus::Completed,
        "{}",
        on_failure.status_reason
    );
    assert_eq!(on_failure.attempts.len(), 1);
    assert_started_after(&on_failure, &root);
}

#[tokio::test]
async fn a_failing_root_cancels_its_dependents_transitively_and_each_names_its_dependency() {
    let server = TestServer::start().await;
    let submitted = server
        .client
        .submit_batch([
            NewTask::new("diag.fail").batch_ref("a").max_retries(0),
            NewTask::new("diag.echo").batch_ref("b").depends_on_ref("a"),
            NewTask::new("diag.echo").batch_ref("c").depends_on_ref("b"),
        ])
        .await
        .unwrap();
    let (a, b, c) = (&submitted[0].id, &submitted[1].id, &submitted[2].id);

    assert_eq!(server.wait(a).await.status(), TaskStatus::Failed);
    for (dependent, dependency) in [(b, a), (c, b)] {
        let task = server.wait(dependent).await;
        assert_eq!(task.status(), TaskStatus::Cancelled);
        assert!(task.attempts.is_empty(), "a cancelled dependent never ran");
        assert!(task.completed_at.is_some());
        assert!(
            task.status_reason.contains(dependency.as_str()),
            "status_reason names {dependency}: {}",
            task.status_reason
        );
        assert!(
            task.error.contains(dependency.as_str()),
            "error names {dependency}: {}",
            task.error
        );
    }
}

/// How a rejected submit is sent.
enum Submit {
    One(Box<NewTask>),
    Batch(Vec<NewTask>),
}

#[tokio::test]
async fn malformed_dependencies_are_rejected_with_invalid_argument_naming_the_field() {
    let server = TestServer::start().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let cases = [
        (
            "a cycle in a batch",
            Submit::Batch(vec![
                NewTask::new("diag.echo").batch_ref("x").depends_on_ref("z"),
                NewTask::new("diag.echo").batch_ref("y").depends_on_ref("x"),
                NewTask::new("diag.echo").batch_ref("z").depends_on_ref("y"),
                NewTask::new("diag.echo").batch_ref("free"),
            ]),
            "tasks[0].dependencies",
            "cycle",
        ),
        (
            "an unknown dependency task id",
            Submit::One(Box::new(NewTask::new("diag.echo").depends_on(&unknown))),
            "dependencies[0].task_id",
            unknown.as_str(),
        ),
        (
            "a self-dependency in a batch",
            Submit::Batch(vec![NewTask::new("diag.echo").batch_ref("me").depends_on_ref("me")]),
            "tasks[0].dependencies[0]",
            "itself",
        ),
        (
            "a malformed dependency id",
            Submit::One(Box::new(NewTask::new("diag.echo").depends_on("not-a-uuid"))),
            "dependencies[0].task_id",
            "not-a-uuid",
        ),
    ];
    for (case, submit, field, fragment) in cases {
        let error = match submit {
            Submit::One(task) => server.client.submit(*task).await.map(drop),
            Submit::Batch(tasks) => server.client.submit_batch(tasks).await.map(drop),
        }
        .expect_err(case);
        let taskd_client::ClientError::Status(status) = error else {
            panic!("{case}: not a server error: {error}");
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {}", status.message());
        assert!(
            status.message().starts_with(field),
            "{case}: names {field}: {}",
            status.message()
        );
        assert!(
            status.message().contains(fragment),
            "{case}: mentions {fragment:?}: {}",
            status.message()
        );
    }
    let counts = server.client.stats().await.unwrap().counts.unwrap();
    assert_eq!(counts.total, 0, "no rejected submit created a task");
}

#[tokio::test]
async fn a_dependency_on_an_already_completed_task_lets_the_new_task_run_at_once() {
    let server = TestServer::start().await;
    let done = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    let done = server.wait(&done.id).await;
    assert_eq!(done.status(), TaskStatus::Completed);

    let dependent = server
        .client
        .submit(NewTask::new("diag.echo").depends_on(&done.id))
        .await
        .unwrap();
    assert!(
        matches!(
            dependent.status(),
            TaskStatus::Pending | TaskStatus::Running | TaskStatus::Completed
        ),
        "runnable at once, not {:?}: {}",
        dependent.status(),
        dependent.status_reason
    );
    let dependent = server.wait(&dependent.id).await;
    assert_eq!(dependent.status(), TaskStatus::Completed);
    assert_started_after(&dependent, &done);
}

#[tokio::test]
async fn a_dependency_on_an_already_failed_task_that_must_complete_cancels_the_new_task_at_once() {
    let server = TestServer::start().await;
    let failed = server
        .client
        .submit(NewTask::new("diag.fail").max_retries(0))
        .await
        .unwrap();
    assert_eq!(server.wait(&failed.id).await.status(), TaskStatus::Failed);

    let dependent = server
        .client
        .submit(NewTask::new("diag.echo").depends_on(&failed.id))
        .await
        .unwrap();
    assert_eq!(dependent.status(), TaskStatus::Cancelled, "{}", dependent.status_reason);
    assert!(
        dependent.status_reason.contains(&failed.id),
        "{}",
        dependent.status_reason
    );
    assert!(dependent.error.contains(&failed.id), "{}", dependent.error);
    assert!(dependent.completed_at.is_some());
    assert!(dependent.attempts.is_empty());
    let stored = server.client.get(&dependent.id).await.unwrap();
    assert_eq!(stored.status(), TaskStatus::Cancelled);
}

#[tokio::test]
async fn a_batch_with_an_invalid_third_member_creates_none_of_its_tasks() {
    let server = TestServer::start().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    // One third member fails the per-task checks, the other only fails once
    // the engine looks its dependency up.
    let invalid_members = [
        ("an empty task type", NewTask::new(""), "tasks[2].task_type"),
        (
            "an unknown dependency",
            NewTask::new("diag.echo").depends_on(&unknown),
            "tasks[2].dependencies[0].task_id",
        ),
    ];
    for (case, invalid, field) in invalid_members {
        let batch_label = uuid::Uuid::now_v7().to_string();
        let error = server
            .client
            .submit_batch([
                NewTask::new("diag.echo")
                    .label("batch", &batch_label)
                    .batch_ref("first"),
                NewTask::new("diag.echo")
                    .label("batch", &batch_label)
                    .depends_on_ref("first"),
                invalid.label("batch", &batch_label),
                NewTask::new("diag.echo").label("batch", &batch_label),
            ])
            .await
            .expect_err(case);
        assert_eq!(error.code(), Some(Code::InvalidArgument), "{case}: {error}");
        assert!(error.to_string().contains(field), "{case}: names {field}: {error}");

        let listed = server
            .client
            .list(ListTasksRequest {
                labels: labels([("batch", batch_label.as_str())]),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            listed.tasks.is_empty(),
            "{case}: {} tasks were created",
            listed.tasks.len()
        );
    }
    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.submitted_since_start, 0);
    assert_eq!(stats.counts.unwrap().total, 0);
}
