//! Several taskd processes on one PostgreSQL database (a schema of the
//! test's own): work submitted anywhere runs exactly once somewhere, a
//! killed node's tasks are rescued by the others, dependencies and cancels
//! cross nodes, watchers see tasks wherever they run, and the nodes ride
//! out the database dropping their connections.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use taskd_client::proto::task_event::Kind;
use taskd_client::worker::Worker;
use taskd_client::{Client, ListTasksRequest, NewTask, TaskStatus};

use crate::store_postgres::{database_url, fresh_schema};
use crate::support::{terminate, within};

/// How long a whole cluster run may take.
const RUN_BOUND: Duration = Duration::from_secs(120);

struct Node {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

struct Cluster {
    nodes: Vec<Node>,
    schema: String,
}

impl Cluster {
    fn start(count: usize, settings: &[&str]) -> Cluster {
        let schema = fresh_schema();
        let url = format!("{}?application_name={schema}", database_url());
        let nodes = (0..count)
            .map(|index| {
                let dir = tempfile::tempdir().expect("dir");
                let (child, address) = crate::support::spawn_with(dir.path(), |command| {
                    command
                        .args(["--store", &url, "--set", &format!("store.schema={schema}")])
                        .args(["--set", &format!("engine.node_id=node{index}")])
                        .args(["--set", "monitor.enabled=false", "--set", "store.pool_size=6"]);
                    for setting in settings {
                        command.args(["--set", setting]);
                    }
                    command
                });
                Node {
                    child,
                    address,
                    _dir: dir,
                }
            })
            .collect();
        Cluster { nodes, schema }
    }

    async fn client(&self, index: usize) -> Client {
        Client::connect(self.nodes[index].address.clone())
            .await
            .expect("connects")
    }

    fn stop(mut self) {
        for node in &mut self.nodes {
            if node.child.try_wait().ok().flatten().is_none() {
                terminate(&mut node.child);
            }
        }
        self.nodes.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

/// Every task, following pages.
async fn all_tasks(client: &Client) -> Vec<taskd_client::Task> {
    client
        .list_all(ListTasksRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
}

/// Waits (polling, bounded) until `client`'s node lists a worker named
/// `name` (on any node: `name@node`); returns it.
async fn listed_worker(client: &Client, name: &str) -> taskd_client::proto::Worker {
    let prefix = format!("{name}@");
    within(&format!("worker {name} to be listed"), async {
        loop {
            let workers = client.workers().await.expect("workers");
            if let Some(worker) = workers.into_iter().find(|worker| worker.worker_id.starts_with(&prefix)) {
                return worker;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Waits (polling the counts, bounded) until nothing waits or runs.
async fn drained(client: &Client) {
    within("the cluster to finish every task", async {
        loop {
            let counts = client.stats().await.expect("stats").counts.expect("counts");
            if counts.pending + counts.running + counts.scheduled + counts.waiting == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_run_ten_thousand_tasks_each_exactly_once() {
    let cluster = Cluster::start(3, &[]);
    let mut submitters = Vec::new();
    for index in 0..3 {
        let client = cluster.client(index).await;
        submitters.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for batch in 0..7 {
                let tasks = (0..500).map(|n| NewTask::new("diag.echo").params(json!({"n": n, "batch": batch})));
                ids.extend(
                    client
                        .submit_batch(tasks)
                        .await
                        .expect("batch")
                        .into_iter()
                        .map(|task| task.id),
                );
            }
            ids
        }));
    }
    let mut submitted = BTreeSet::new();
    for submitter in submitters {
        submitted.extend(submitter.await.expect("joined"));
    }
    assert_eq!(submitted.len(), 10_500);
    let client = cluster.client(0).await;
    tokio::time::timeout(RUN_BOUND, drained(&client))
        .await
        .expect("bounded");
    let tasks = all_tasks(&client).await;
    assert_eq!(tasks.len(), 10_500, "nothing acknowledged is lost");
    let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
    for task in &tasks {
        assert!(submitted.contains(&task.id));
        assert_eq!(task.status(), TaskStatus::Completed, "{}", task.status_reason);
        assert_eq!(
            task.attempts.len(),
            1,
            "each task ran exactly once: {:?}",
            task.attempts
        );
        *by_node.entry(task.attempts[0].worker.clone()).or_default() += 1;
    }
    assert!(by_node.len() >= 2, "the work spread over the nodes: {by_node:?}");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_nodes_tasks_are_rescued_by_the_others() {
    let mut cluster = Cluster::start(
        3,
        &[
            "engine.lease_duration=2s",
            "engine.rescue_interval=200ms",
            "engine.max_concurrent_tasks=8",
        ],
    );
    let client = cluster.client(0).await;
    let tasks = (0..60).map(|n| NewTask::new("diag.sleep").params(json!({"duration_ms": 300, "n": n})));
    let ids: Vec<String> = client
        .submit_batch(tasks)
        .await
        .expect("batch")
        .into_iter()
        .map(|task| task.id)
        .collect();
    // Node 2 dies holding tasks.
    within("node 2 to hold a task", async {
        loop {
            let running = client
                .list(ListTasksRequest {
                    statuses: vec![TaskStatus::Running as i32],
                    page_size: 100,
                    ..Default::default()
                })
                .await
                .expect("list");
            if running.tasks.iter().any(|task| {
                task.attempts
                    .last()
                    .is_some_and(|attempt| attempt.worker.ends_with("@node2"))
            }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    cluster.nodes[2].child.kill().expect("SIGKILL");
    tokio::time::timeout(RUN_BOUND, drained(&client))
        .await
        .expect("bounded");
    let tasks = all_tasks(&client).await;
    assert_eq!(tasks.len(), ids.len());
    let mut rescued = 0;
    for task in &tasks {
        assert_eq!(task.status(), TaskStatus::Completed, "{}", task.status_reason);
        if task.attempts.len() > 1 {
            rescued += 1;
            assert!(task.attempts[0].worker.ends_with("@node2"), "{:?}", task.attempts);
            assert!(!task.attempts.last().expect("attempt").worker.ends_with("@node2"));
        }
    }
    assert!(
        rescued >= 1,
        "the killed node held at least one task that another node ran"
    );
    cluster.nodes.remove(2);
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_on_one_node_serves_tasks_submitted_and_watched_on_another() {
    let cluster = Cluster::start(2, &[]);
    let (on_a, on_b) = (cluster.client(0).await, cluster.client(1).await);
    let (release, released) = tokio::sync::watch::channel(false);
    let worker = Worker::new(&on_b).worker_id("w").handle("cluster.work", move |task| {
        let mut released = released.clone();
        async move {
            if task.params().get("hold").is_some() {
                tokio::select! {
                    _ = released.wait_for(|open| *open) => {}
                    _ = task.cancelled() => {}
                }
            }
            Ok(json!({"done": true}))
        }
    });
    let worker = tokio::spawn(worker.run_until(futures::future::pending()));
    listed_worker(&on_b, "w").await;

    // Submitted and watched on node 0, run by the worker on node 1.
    let task = on_a
        .submit(NewTask::new("cluster.work").params(json!({"hold": true})))
        .await
        .expect("node 0 knows the type node 1's worker declared");
    let mut events = Box::pin(on_a.watch(&task.id).await.expect("watch"));
    let mut seen = Vec::new();
    let running = within("RUNNING seen on node 0", async {
        while let Some(event) = events.next().await {
            let task = event.expect("event").task.expect("task");
            seen.push(task.status());
            if task.status() == TaskStatus::Running {
                return task;
            }
        }
        panic!("stream ended: {seen:?}");
    })
    .await;
    assert_eq!(running.attempts[0].worker, "w@node1");
    release.send(true).expect("release");
    within("COMPLETED seen on node 0", async {
        while let Some(event) = events.next().await {
            if event.expect("event").task.expect("task").status() == TaskStatus::Completed {
                return;
            }
        }
        panic!("stream ended");
    })
    .await;

    // A cancel on node 0 reaches the handler on node 1 at once (not at its
    // next lease renewal).
    let _ = release.send(false);
    let held = on_a
        .submit(NewTask::new("cluster.work").params(json!({"hold": true})))
        .await
        .expect("submit");
    crate::support::within("the held task to run", async {
        loop {
            if on_a.get(&held.id).await.expect("get").status() == TaskStatus::Running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    on_a.cancel(&held.id, "from node 0").await.expect("cancel");
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let workers = on_b.workers().await.expect("workers");
            if workers.iter().all(|worker| worker.held == 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the worker on node 1 let go of the cancelled task within 5 s");
    worker.abort();
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn dependencies_and_cascades_cross_nodes() {
    let cluster = Cluster::start(2, &[]);
    let (on_a, on_b) = (cluster.client(0).await, cluster.client(1).await);
    // A chain submitted on node 0 runs in order on whichever nodes.
    let chain = on_a
        .submit_batch([
            NewTask::new("diag.echo").batch_ref("a"),
            NewTask::new("diag.echo").batch_ref("b").depends_on_ref("a"),
            NewTask::new("diag.echo").batch_ref("c").depends_on_ref("b"),
        ])
        .await
        .expect("chain");
    drained(&on_b).await;
    let mut finished = Vec::new();
    for task in &chain {
        let task = on_b.get(&task.id).await.expect("get");
        assert_eq!(task.status(), TaskStatus::Completed);
        finished.push((task.started_at.expect("started"), task.completed_at.expect("done")));
    }
    for pair in finished.windows(2) {
        let ended = pair[0].1.seconds as f64 + pair[0].1.nanos as f64 / 1e9;
        let started = pair[1].0.seconds as f64 + pair[1].0.nanos as f64 / 1e9;
        assert!(started >= ended, "a dependent started before its dependency ended");
    }
    // A cascade: dependents submitted on node 1 of a task cancelled on node 0.
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    let root = on_a
        .submit(NewTask::new("diag.echo").run_at(later))
        .await
        .expect("root");
    let child = on_b
        .submit(NewTask::new("diag.echo").depends_on(&root.id))
        .await
        .expect("child");
    let grandchild = on_b
        .submit(NewTask::new("diag.echo").depends_on(&child.id))
        .await
        .expect("grandchild");
    let mut watching = Box::pin(on_b.watch_all(Default::default()).await.expect("watch on node 1"));
    on_a.cancel(&root.id, "cascade").await.expect("cancel");
    for id in [&child.id, &grandchild.id] {
        assert_eq!(on_b.get(id).await.expect("get").status(), TaskStatus::Cancelled);
    }
    // Node 1's watchers hear of the cancels node 0 committed.
    let mut cancelled = BTreeSet::new();
    within("node 1 to see the three cancels", async {
        while let Some(event) = watching.next().await {
            let event = event.expect("event");
            if event.kind() == Kind::StatusChanged
                && let Some(task) = event.task
                && task.status() == TaskStatus::Cancelled
            {
                cancelled.insert(task.id);
                if cancelled.len() == 3 {
                    return;
                }
            }
        }
    })
    .await;
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_report_the_database_gone_and_carry_on_when_it_is_back() {
    let cluster = Cluster::start(2, &["store.connect_timeout=2s"]);
    let client = cluster.client(0).await;
    let before = client.submit(NewTask::new("diag.echo")).await.expect("submit");
    client.wait(&before.id).await.expect("done");
    // Work under way when the connections go.
    let busy: Vec<String> = client
        .submit_batch((0..500).map(|n| NewTask::new("diag.sleep").params(json!({"duration_ms": 20, "n": n}))))
        .await
        .expect("batch")
        .into_iter()
        .map(|task| task.id)
        .collect();
    // Every connection of this cluster is cut, as a database restart would.
    let (admin, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(connection);
    let cut = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&cluster.schema],
        )
        .await
        .expect("terminate");
    assert!(!cut.is_empty(), "the cluster's connections were found");
    // The nodes carry on: new connections are made as needed, and the
    // listeners listen again.
    let after = within("a submit once the connections are back", async {
        loop {
            match client.submit(NewTask::new("diag.echo")).await {
                Ok(task) => return task,
                Err(error) => {
                    assert_eq!(error.code(), Some(tonic::Code::Unavailable), "{error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
    .await;
    let done = within("the task to run", client.wait(&after.id)).await.expect("wait");
    assert_eq!(done.status(), TaskStatus::Completed);
    // Nothing acknowledged is lost: the work under way all ends COMPLETED.
    tokio::time::timeout(RUN_BOUND, drained(&client))
        .await
        .expect("bounded");
    for id in &busy {
        let task = client.get(id).await.expect("get");
        assert_eq!(task.status(), TaskStatus::Completed, "{}", task.status_reason);
    }
    let on_b = cluster.client(1).await;
    let cross = on_b
        .submit(NewTask::new("diag.sleep").params(json!({"duration_ms": 300})))
        .await
        .expect("node 1 submits");
    // Watched on node 0 from before it ends, whenever node 0's listener is
    // back: what it missed meanwhile reaches the watch as a lag, and the
    // watch reads the task again.
    let watched = {
        let client = client.clone();
        let id = cross.id.clone();
        tokio::spawn(async move { client.wait(&id).await })
    };
    within("node 1's task to run", async {
        loop {
            let task = on_b.get(&cross.id).await.expect("get");
            if task.status() == TaskStatus::Completed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        within("node 0 to see it ended", watched)
            .await
            .expect("joined")
            .expect("wait")
            .status(),
        TaskStatus::Completed
    );
    cluster.stop();
}

#[test]
fn a_database_that_cannot_be_reached_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("dir");
    let started = std::time::Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args([
            "--store",
            "postgres://taskd:secret@127.0.0.1:1/tasks",
            "--set",
            "store.connect_timeout=1s",
        ])
        .env("TASKD_LOG", "warn")
        .output()
        .expect("taskd runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("postgresql"), "{stderr}");
    assert!(!stderr.contains("secret"), "the password reached the log: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a bounded wait, not a hang"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiter_sees_the_end_of_every_task_whichever_node_runs_it() {
    let cluster = Cluster::start(2, &[]);
    let clients = [cluster.client(0).await, cluster.client(1).await];
    // Tasks that end within a millisecond or two, often on the other node,
    // while their waiter is still subscribing: none may be missed.
    for index in 0..200 {
        let client = &clients[index % 2];
        let task = client.submit(NewTask::new("diag.echo")).await.expect("submit");
        let done = within("the waiter to see the end", client.wait(&task.id))
            .await
            .expect("wait");
        assert_eq!(done.status(), TaskStatus::Completed);
    }
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_starting_together_on_a_new_database_migrate_it_once() {
    let schema = fresh_schema();
    let url = database_url();
    let starts: Vec<_> = (0..3)
        .map(|index| {
            let (url, schema) = (url.clone(), schema.clone());
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().expect("dir");
                let (child, address) = crate::support::spawn_with(dir.path(), |command| {
                    command
                        .args(["--store", &url, "--set", &format!("store.schema={schema}")])
                        .args(["--set", &format!("engine.node_id=together{index}")])
                        .args(["--set", "monitor.enabled=false"])
                });
                Node {
                    child,
                    address,
                    _dir: dir,
                }
            })
        })
        .collect();
    // Held by a cluster from here: its drop kills them if an assertion fails.
    let cluster = Cluster {
        nodes: starts.into_iter().map(|start| start.join().expect("started")).collect(),
        schema: schema.clone(),
    };
    for node in &cluster.nodes {
        let client = Client::connect(node.address.clone()).await.expect("connects");
        let task = client.submit(NewTask::new("diag.echo")).await.expect("submit");
        assert_eq!(
            within("a task to run", client.wait(&task.id))
                .await
                .expect("wait")
                .status(),
            TaskStatus::Completed
        );
    }
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let version: i64 = admin
        .query_one(&format!("SELECT version FROM \"{schema}\".taskd_schema_version"), &[])
        .await
        .expect("one version row")
        .get(0);
    assert_eq!(version, taskd::store::postgres::schema::LATEST_VERSION);
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_reports_the_whole_cluster_over_rest_and_metrics() {
    let cluster = Cluster::start(2, &[]);
    let on_a = cluster.client(0).await;
    let tasks = on_a
        .submit_batch((0..30).map(|n| NewTask::new("diag.echo").params(json!({"n": n}))))
        .await
        .expect("batch");
    drained(&on_a).await;
    let node_b = &cluster.nodes[1].address;
    // The explorer's list and the stats the dashboard reads, from node 1.
    let listed: serde_json::Value = reqwest::get(format!("{node_b}/api/v1/tasks?task_type=diag.echo&page_size=100"))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["tasks"].as_array().map(Vec::len), Some(tasks.len()));
    let stats: serde_json::Value = reqwest::get(format!("{node_b}/api/v1/tasks/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["counts"]["completed"], 30, "{stats}");
    // Prometheus scraping node 1 sees the tasks node 0 took in.
    let metrics = reqwest::get(format!("{node_b}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let completed = metrics
        .lines()
        .find(|line| line.starts_with("taskd_tasks{") && line.contains("diag.echo") && line.contains("\"COMPLETED\""))
        .unwrap_or_else(|| panic!("no completed diag.echo gauge in\n{metrics}"));
    assert!(
        completed.ends_with(" 30") || completed.ends_with(" 30.0"),
        "{completed}"
    );
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_sees_each_end_once_and_only_as_a_status_change_whichever_node_ran_it() {
    let cluster = Cluster::start(2, &[]);
    let (on_a, on_b) = (cluster.client(0).await, cluster.client(1).await);
    // Only node 0 serves the sentinel: its end reaches node 1 through node
    // 0's notices, after every notice node 0 sent before.
    let sentinel_worker = Worker::new(&on_a)
        .worker_id("sentinel")
        .handle("cluster.sentinel", |_task| async { Ok(json!("last")) });
    let sentinel_worker = tokio::spawn(sentinel_worker.run_until(futures::future::pending()));
    listed_worker(&on_a, "sentinel").await;
    let mut completed = Box::pin(
        on_b.watch_all(taskd_client::proto::WatchTasksRequest {
            statuses: vec![TaskStatus::Completed as i32],
            ..Default::default()
        })
        .await
        .expect("watch on node 1"),
    );
    // Tasks that report progress while they run: a node that read a task
    // for another's progress notice after it had ended published its end
    // as PROGRESS, then again for the end's own notice.
    for batch in 0..4 {
        on_a.submit_batch(
            (0..500).map(|n| NewTask::new("diag.sleep").params(json!({"duration_ms": 25, "n": n, "batch": batch}))),
        )
        .await
        .expect("batch");
    }
    drained(&on_a).await;
    let sentinel = on_a.submit(NewTask::new("cluster.sentinel")).await.expect("sentinel");
    let mut seen = BTreeSet::new();
    within("every end, then the sentinel's, on node 1", async {
        while let Some(event) = completed.next().await {
            let event = event.expect("event");
            assert_eq!(event.kind(), Kind::StatusChanged, "{event:?}");
            let task = event.task.expect("task");
            assert_eq!(task.status(), TaskStatus::Completed);
            assert!(
                seen.insert(task.id.clone()),
                "task {} delivered twice (revision {})",
                task.id,
                task.revision
            );
            if task.id == sentinel.id {
                return;
            }
        }
        panic!("the watch ended");
    })
    .await;
    assert_eq!(seen.len(), 2001, "every end was seen");
    sentinel_worker.abort();
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_sees_the_workers_of_the_whole_cluster() {
    let cluster = Cluster::start(2, &[]);
    let (on_a, on_b) = (cluster.client(0).await, cluster.client(1).await);
    let (release, released) = tokio::sync::watch::channel(false);
    let worker = Worker::new(&on_b).worker_id("far").handle("cluster.far", move |_task| {
        let mut released = released.clone();
        async move {
            let _ = released.wait_for(|open| *open).await;
            Ok(json!("done"))
        }
    });
    let worker = tokio::spawn(worker.run_until(futures::future::pending()));
    // Node 0 learns of node 1's worker: listed with its node, its type served.
    let listed = listed_worker(&on_a, "far").await;
    assert_eq!(listed.node, "node1");
    assert_eq!(listed.task_types, ["cluster.far"]);
    let types = on_a.task_types().await.expect("types");
    let far = types
        .iter()
        .find(|info| info.task_type == "cluster.far")
        .expect("declared type known on node 0");
    assert!(far.handler_available, "node 0 knows a worker serves it");
    assert_eq!(far.workers, 1);
    let first = on_a
        .submit(NewTask::new("cluster.far"))
        .await
        .expect("submit on node 0");
    assert!(
        !first.status_reason.contains("no handler or worker"),
        "{}",
        first.status_reason
    );
    // A second task queues behind the first (the worker holds one at a
    // time): still not "unserved" in node 0's stats.
    on_a.submit(NewTask::new("cluster.far")).await.expect("second");
    let stats = on_a.stats().await.expect("stats");
    assert!(
        !stats.unserved_task_types.contains(&"cluster.far".to_string()),
        "{:?}",
        stats.unserved_task_types
    );

    // Once the worker is gone, node 0 says so.
    worker.abort();
    within("node 0 to see node 1's worker gone", async {
        loop {
            let stats = on_a.stats().await.expect("stats");
            if stats.unserved_task_types.contains(&"cluster.far".to_string()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        !on_a
            .workers()
            .await
            .expect("workers")
            .iter()
            .any(|worker| worker.worker_id.starts_with("far@"))
    );
    let _ = release.send(true);
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_an_admin_removes_on_one_node_is_refused_on_the_others() {
    let cluster = Cluster::start(2, &[]);
    let (on_a, on_b) = (cluster.client(0).await, cluster.client(1).await);
    let worker = Worker::new(&on_b)
        .worker_id("brief")
        .handle("cluster.brief", |_task| async { Ok(json!("done")) });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    within("node 0 to know node 1's type", async {
        while !on_a
            .task_types()
            .await
            .expect("types")
            .iter()
            .any(|info| info.task_type == "cluster.brief" && info.workers == 1)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = stop.send(());
    worker.await.expect("joined").expect("drained");
    // Removed on node 0 once no worker of the cluster serves it...
    within("the removal on node 0", async {
        loop {
            match on_a.delete_task_type("cluster.brief").await {
                Ok(()) => return,
                Err(error) if error.code() == Some(tonic::Code::FailedPrecondition) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(error) => panic!("{error}"),
            }
        }
    })
    .await;
    // ... and refused on node 1 too, within its refresh.
    within("node 1 to refuse the removed type", async {
        while on_b.submit(NewTask::new("cluster.brief")).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let refused = on_b.submit(NewTask::new("cluster.brief")).await.unwrap_err();
    assert_eq!(refused.code(), Some(tonic::Code::InvalidArgument), "{refused}");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_running_the_scheduler_fire_each_time_exactly_once() {
    use taskd_client::proto::schedule_service_client::ScheduleServiceClient;
    use taskd_client::proto::{self, schedule_spec};

    let cluster = Cluster::start(2, &[]);
    let first = cluster.client(0).await;
    let second = cluster.client(1).await;
    let mut watch = Box::pin(
        second
            .watch_all(taskd_client::WatchTasksRequest {
                labels: taskd_client::labels([("schedule", "every-second")]),
                ..Default::default()
            })
            .await
            .expect("watch"),
    );
    let mut schedules = ScheduleServiceClient::new(first.channel());
    schedules
        .create_schedule(proto::CreateScheduleRequest {
            schedule: Some(proto::ScheduleDefinition {
                name: "every-second".into(),
                spec: Some(proto::ScheduleSpec {
                    kind: Some(schedule_spec::Kind::Interval(proto::IntervalSpec {
                        every: Some(pbjson_types::Duration { seconds: 1, nanos: 0 }),
                        offset: None,
                    })),
                    jitter: None,
                }),
                template: Some(proto::TaskTemplate {
                    task_type: "diag.echo".into(),
                    ..Default::default()
                }),
                overlap: proto::OverlapPolicy::AllowAll as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("created");
    // Both nodes look at the schedule every time it is due.
    let mut submitted = 0;
    while submitted < 5 {
        let event = within("a fire", watch.next()).await.expect("open").expect("event");
        if event.kind() == Kind::Submitted {
            submitted += 1;
        }
    }
    schedules
        .delete_schedule(proto::DeleteScheduleRequest {
            name: "every-second".into(),
        })
        .await
        .expect("deleted");
    let fired: Vec<taskd_client::Task> = all_tasks(&first)
        .await
        .into_iter()
        .filter(|task| task.labels.get("schedule").map(String::as_str) == Some("every-second"))
        .collect();
    let mut nominals: Vec<i64> = fired
        .iter()
        .map(|task| {
            task.name
                .rsplit(' ')
                .next()
                .and_then(|micros| micros.parse().ok())
                .expect("the fire's nominal time in its name")
        })
        .collect();
    nominals.sort();
    let distinct: BTreeSet<i64> = nominals.iter().copied().collect();
    assert_eq!(distinct.len(), nominals.len(), "no time fired twice: {nominals:?}");
    for pair in nominals.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1_000_000,
            "no time was missed between two fires: {nominals:?}"
        );
    }
    assert!(nominals.len() >= 5);
    cluster.stop();
}
