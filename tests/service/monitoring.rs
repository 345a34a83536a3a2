//! The ResourceMonitor steering the scheduler, with scripted load: starts
//! slow down under pressure and recover after it, running tasks are never
//! stopped, alerts are raised once and cleared with hysteresis, and the RPCs
//! report all of it.

use futures::{Stream, StreamExt};
use serde_json::json;
use taskd_client::proto::system_event::Kind;
use taskd_client::proto::system_service_client::SystemServiceClient;
use taskd_client::proto::{GetSystemLoadRequest, ListAlertsRequest, SystemEvent, SystemLoad, WatchSystemRequest};
use taskd_client::{ListTasksRequest, NewTask, TaskStatus, labels};
use tonic::transport::Channel;

use crate::support::{ScriptedLoad, TestServer};

async fn system_client(server: &TestServer) -> SystemServiceClient<Channel> {
    let address = format!("http://{}", server.server.as_ref().expect("running").local_addr());
    SystemServiceClient::connect(address).await.expect("connects")
}

type Events = std::pin::Pin<Box<dyn Stream<Item = Result<SystemEvent, tonic::Status>> + Send>>;

async fn watch(client: &mut SystemServiceClient<Channel>) -> Events {
    Box::pin(
        client
            .watch_system(WatchSystemRequest {})
            .await
            .expect("watch")
            .into_inner(),
    )
}

/// Waits (on sample events, not on time) until the load satisfies `done`.
async fn until_load(events: &mut Events, done: impl Fn(&SystemLoad) -> bool) -> SystemLoad {
    let wait = async {
        while let Some(event) = events.next().await {
            let event = event.expect("event");
            if event.kind() == Kind::Sampled
                && let Some(load) = event.load
                && done(&load)
            {
                return load;
            }
        }
        panic!("system stream ended");
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), wait)
        .await
        .expect("load reached within 20s")
}

/// The alert of the next event of `kind` (raised or cleared).
async fn next_alert(events: &mut Events, kind: Kind) -> taskd_client::proto::Alert {
    let wait = async {
        while let Some(event) = events.next().await {
            let event = event.expect("event");
            if event.kind() == kind {
                return event.alert.expect("an alert");
            }
        }
        panic!("system stream ended");
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("{kind:?} within 20s"))
}

/// Lets `count` more samples go by.
async fn samples(events: &mut Events, count: usize) {
    for _ in 0..count {
        until_load(events, |_| true).await;
    }
}

async fn running_count(server: &TestServer) -> u64 {
    server.client.stats().await.unwrap().counts.unwrap().running
}

#[tokio::test]
async fn high_cpu_slows_new_starts_without_stopping_running_tasks_and_recovery_restores_them() {
    let load = ScriptedLoad::new();
    let server = TestServer::start_scripted(|config| config.engine.max_concurrent_tasks = 8, Some(load.clone())).await;
    let mut system = system_client(&server).await;
    let mut events = watch(&mut system).await;
    until_load(&mut events, |load| load.effective_concurrency_limit == 8).await;

    let first: Vec<NewTask> = (0..8).map(|_| NewTask::new("test.gate").label("wave", "1")).collect();
    let first = server.client.submit_batch(first).await.unwrap();
    for task in &first {
        server.wait_for_status(&task.id, TaskStatus::Running).await;
    }

    load.set_cpu(95.0);
    let throttled = until_load(&mut events, |load| load.effective_concurrency_limit == 2).await;
    assert!(throttled.throttled);
    // The smoothed CPU usage on its way to 95%, named with what it costs.
    let reason = &throttled.concurrency_limit_reason;
    assert!(
        reason.starts_with("cpu ") && reason.ends_with("% > 80%: 2 of 8 slots"),
        "{reason}"
    );
    // Nothing running was stopped to shrink the pool.
    samples(&mut events, 3).await;
    assert_eq!(running_count(&server).await, 8);

    // Once those finish, only two new ones start.
    server.gate.open(8);
    for task in &first {
        assert_eq!(server.wait(&task.id).await.status(), TaskStatus::Completed);
    }
    let second: Vec<NewTask> = (0..6).map(|_| NewTask::new("test.gate").label("wave", "2")).collect();
    let second = server.client.submit_batch(second).await.unwrap();
    samples(&mut events, 3).await;
    assert_eq!(running_count(&server).await, 2);
    let started: Vec<_> = server
        .client
        .list_all(ListTasksRequest {
            labels: labels([("wave", "2")]),
            statuses: vec![TaskStatus::Running as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    let attempt = &started[0].attempts[0];
    let under = attempt.started_under.as_ref().expect("machine state recorded");
    assert_eq!(under.cpu_percent, 95.0);
    assert!(under.throttled);
    assert_eq!(under.effective_concurrency_limit, 2);

    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.effective_concurrency_limit, 2);
    assert_eq!(stats.concurrency_limit_reason, "cpu 95% > 80%: 2 of 8 slots");

    // Load drops: the pool grows back and the waiting tasks start.
    load.set_cpu(20.0);
    until_load(&mut events, |load| {
        load.effective_concurrency_limit == 8 && !load.throttled
    })
    .await;
    for task in &second {
        server.wait_for_status(&task.id, TaskStatus::Running).await;
    }
    server.gate.open(6);
    for task in &second {
        let done = server.wait(&task.id).await;
        let finished_under = done.attempts[0]
            .finished_under
            .as_ref()
            .expect("machine state at the end");
        assert!(!finished_under.throttled);
    }
}

#[tokio::test]
async fn one_spike_does_not_halve_the_pool() {
    let load = ScriptedLoad::new();
    let server = TestServer::start_scripted(
        |config| {
            config.engine.max_concurrent_tasks = 10;
            // Slow sampling so the test can place exactly one spike.
            config.monitor.interval = std::time::Duration::from_millis(200);
        },
        Some(load.clone()),
    )
    .await;
    let mut system = system_client(&server).await;
    let mut events = watch(&mut system).await;
    until_load(&mut events, |load| load.usage.is_some()).await;
    load.set_cpu(100.0);
    let spiked = until_load(&mut events, |load| {
        load.usage.as_ref().is_some_and(|u| u.cpu_percent == 100.0)
    })
    .await;
    load.set_cpu(10.0);
    assert!(
        spiked.effective_concurrency_limit > 5,
        "one spike cut the pool to {}",
        spiked.effective_concurrency_limit
    );
}

#[tokio::test]
async fn an_alert_is_raised_once_and_cleared_only_below_the_hysteresis_margin() {
    let load = ScriptedLoad::new();
    let server = TestServer::start_scripted(|_| {}, Some(load.clone())).await;
    let mut system = system_client(&server).await;
    let mut events = watch(&mut system).await;
    samples(&mut events, 1).await;

    load.set_cpu(93.0);
    samples(&mut events, 5).await;
    // Within 5 points of the threshold: still active.
    load.set_cpu(78.0);
    samples(&mut events, 5).await;
    let alerts = system
        .list_alerts(ListAlertsRequest { limit: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alerts.active.len(), 1, "{alerts:?}");
    assert_eq!(alerts.recent.len(), 1, "raised once, not repeated: {alerts:?}");
    let active = &alerts.active[0];
    assert_eq!(active.value, 93.0);
    assert_eq!(active.threshold, 80.0);
    assert!(active.started_at.is_some() && active.ended_at.is_none());

    load.set_cpu(70.0);
    let cleared = next_alert(&mut events, Kind::AlertCleared).await;
    assert_eq!(cleared.id, active.id);
    assert!(cleared.ended_at.is_some() && !cleared.active);
    let alerts = system
        .list_alerts(ListAlertsRequest { limit: 0 })
        .await
        .unwrap()
        .into_inner();
    assert!(alerts.active.is_empty());
    assert_eq!(alerts.recent.len(), 1);

    let error = system.list_alerts(ListAlertsRequest { limit: 5000 }).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.message().starts_with("limit:"), "{}", error.message());
}

#[tokio::test]
async fn a_disk_alert_submits_a_maintenance_run() {
    let load = ScriptedLoad::new();
    let server = TestServer::start_scripted(|_| {}, Some(load.clone())).await;
    let mut system = system_client(&server).await;
    let mut events = watch(&mut system).await;
    samples(&mut events, 1).await;
    load.set(|levels| levels.disk_percent = 96.0);
    let raised = next_alert(&mut events, Kind::AlertRaised).await;
    assert!(raised.message.contains("disk"), "{}", raised.message);
    samples(&mut events, 2).await;
    let maintenance = server
        .client
        .list(ListTasksRequest {
            labels: labels([("trigger", "disk_alert")]),
            ..Default::default()
        })
        .await
        .unwrap()
        .tasks;
    assert_eq!(maintenance.len(), 1);
    assert_eq!(maintenance[0].task_type, "system_maintenance");
    let done = server.wait(&maintenance[0].id).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{}", done.error);
}

/// What `df` says of the filesystem holding `path`, in percent used.
fn df_percent(path: &std::path::Path) -> f64 {
    let output = std::process::Command::new("df")
        .args(["--output=pcent"])
        .arg(path)
        .output()
        .expect("df runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().trim_end_matches('%').parse().ok())
        .expect("df prints a percentage")
}

#[tokio::test]
async fn the_real_sampler_reports_this_machines_figures_through_the_api() {
    let server = TestServer::start_with(|config| {
        config.monitor.enabled = true;
        config.monitor.interval = std::time::Duration::from_millis(250);
    })
    .await;
    let mut system = system_client(&server).await;
    let mut events = watch(&mut system).await;
    let load = until_load(&mut events, |load| load.usage.is_some()).await;
    let usage = load.usage.unwrap();
    // The data dir's disk, as df sees it (df rounds up).
    let disk = df_percent(&server.config.data_dir);
    assert!(
        (usage.disk_percent - disk).abs() <= 2.0,
        "disk: {} vs df {disk}",
        usage.disk_percent
    );
    if cfg!(target_os = "linux") {
        assert!(usage.io_wait_percent.is_some(), "Linux reports I/O wait: {usage:?}");
    }
    // The figures the stream carried are the ones the RPC answers with,
    // with the configured limits and thresholds.
    let direct = system
        .get_system_load(GetSystemLoadRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(direct.max_concurrent_tasks, 4);
    assert_eq!(direct.thresholds.unwrap().cpu_percent, 80.0);
    assert!(direct.monitoring_enabled);
    let _ = json!({});
}

#[tokio::test]
async fn alerts_and_the_history_outlive_a_restart() {
    let load = ScriptedLoad::new();
    let mut server = TestServer::start_scripted(
        |config| config.monitor.history_interval = std::time::Duration::from_millis(30),
        Some(load.clone()),
    )
    .await;
    let mut system = system_client(&server).await;
    let mut events = watch(&mut system).await;
    load.set_cpu(95.0);
    let raised = next_alert(&mut events, Kind::AlertRaised).await;
    let address = server.server.as_ref().unwrap().local_addr();
    let history = |address: std::net::SocketAddr| async move {
        let body: serde_json::Value = reqwest::get(format!("http://{address}/api/v1/system/history"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["points"].as_array().cloned().unwrap_or_default()
    };
    let before = crate::support::within("a few history points", async {
        loop {
            let points = history(address).await;
            if points.len() >= 3 {
                return points;
            }
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    })
    .await;

    // The next run samples nothing: what it shows is what it kept.
    server.config.monitor.enabled = false;
    server.restart().await;
    let mut system = system_client(&server).await;
    let alerts = system
        .list_alerts(ListAlertsRequest { limit: 0 })
        .await
        .unwrap()
        .into_inner();
    let kept = alerts
        .recent
        .iter()
        .find(|alert| alert.id == raised.id)
        .unwrap_or_else(|| panic!("alert {} kept: {alerts:?}", raised.id));
    assert_eq!(kept.started_at, raised.started_at);
    assert_eq!(kept.value, 95.0);
    assert!(
        alerts.active.iter().any(|alert| alert.id == raised.id),
        "still active: nothing has cleared it"
    );
    let after = history(server.server.as_ref().unwrap().local_addr()).await;
    assert!(
        after.len() >= before.len(),
        "{} points kept of {}",
        after.len(),
        before.len()
    );
    assert_eq!(after[..before.len()], before[..], "the same points, oldest first");
}
