//! Schedules over gRPC, on an engine clock the tests move: fires on time
//! and once each, missed fires per the catch-up policy, pause and resume,
//! trigger and backfill, the overlap policy, and bad specs refused naming
//! the field.

use std::time::Duration;

use futures::StreamExt;
use taskd::model::{Clock, Timestamp};
use taskd_client::proto::schedule_service_client::ScheduleServiceClient;
use taskd_client::proto::schedule_spec::Kind;
use taskd_client::proto::{self, task_event};
use taskd_client::{ListTasksRequest, Transport, WatchTasksRequest, labels};
use tonic::Code;

use crate::support::{TestServer, within};

/// 2030-01-01T12:00:00Z, on the minute: where every test's clock starts.
fn noon() -> Timestamp {
    Timestamp(1_893_499_200_000_000)
}

fn seconds(value: u64) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: value as i64,
        nanos: 0,
    }
}

fn timestamp(at: Timestamp) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: at.as_micros().div_euclid(1_000_000),
        nanos: (at.as_micros().rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn every_minute(name: &str, task_type: &str) -> proto::ScheduleDefinition {
    proto::ScheduleDefinition {
        name: name.into(),
        spec: Some(proto::ScheduleSpec {
            kind: Some(Kind::Cron(proto::CronSpec {
                expression: "* * * * *".into(),
                time_zone: "Europe/Paris".into(),
            })),
            jitter: None,
        }),
        template: Some(proto::TaskTemplate {
            task_type: task_type.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Scheduled {
    server: TestServer,
    clock: Clock,
    schedules: ScheduleServiceClient<Transport>,
}

async fn start() -> Scheduled {
    let clock = Clock::manual(noon().saturating_add(Duration::from_secs(30)));
    let server = TestServer::start_with({
        let clock = clock.clone();
        move |config| config.engine.clock = clock
    })
    .await;
    let schedules = ScheduleServiceClient::new(server.client.channel());
    Scheduled {
        server,
        clock,
        schedules,
    }
}

impl Scheduled {
    /// The tasks schedule `name` submitted, oldest first.
    async fn fired(&self, name: &str) -> Vec<taskd_client::Task> {
        let mut tasks = self
            .server
            .client
            .list_all(ListTasksRequest {
                labels: labels([("schedule", name)]),
                ..Default::default()
            })
            .await
            .unwrap();
        tasks.reverse();
        tasks
    }

    /// Moves the clock on and waits until schedule `name` has submitted
    /// `count` tasks in all.
    async fn advance_until_fired(&self, name: &str, by: Duration, count: usize) -> Vec<taskd_client::Task> {
        let mut submitted = Box::pin(
            self.server
                .client
                .watch_all(WatchTasksRequest {
                    labels: labels([("schedule", name)]),
                    ..Default::default()
                })
                .await
                .unwrap(),
        );
        let mut seen = self.fired(name).await.len();
        self.clock.advance(by);
        while seen < count {
            let event = within("a fire", submitted.next()).await.unwrap().unwrap();
            if event.kind() == task_event::Kind::Submitted {
                seen += 1;
            }
        }
        self.fired(name).await
    }

    /// The server's metrics page.
    async fn metrics(&self) -> String {
        let address = self.server.server.as_ref().expect("running").local_addr();
        reqwest::get(format!("http://{address}/metrics"))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("text")
    }

    async fn create(&mut self, definition: proto::ScheduleDefinition) -> proto::Schedule {
        self.schedules
            .create_schedule(proto::CreateScheduleRequest {
                schedule: Some(definition),
            })
            .await
            .expect("created")
            .into_inner()
    }

    /// Reads schedule `name` until `done` holds for it.
    async fn until(&mut self, name: &str, done: impl Fn(&proto::Schedule) -> bool) -> proto::Schedule {
        within("the schedule to get there", async {
            loop {
                let schedule = self.get(name).await;
                if done(&schedule) {
                    return schedule;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
    }

    /// Stops the server, moves the clock on by `down` while it is down,
    /// and starts it again on the same data dir.
    async fn restart_after(&mut self, down: Duration) {
        self.server.stop().await;
        self.clock.advance(down);
        self.server.restart().await;
        self.schedules = ScheduleServiceClient::new(self.server.client.channel());
    }

    async fn get(&mut self, name: &str) -> proto::Schedule {
        self.schedules
            .get_schedule(proto::GetScheduleRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner()
    }
}

#[tokio::test]
async fn a_schedule_fires_on_its_clock_once_per_fire() {
    let mut scheduled = start().await;
    // Fires beside each other: the two of one look are not an overlap.
    let mut tick = every_minute("tick", "diag.echo");
    tick.overlap = proto::OverlapPolicy::AllowAll as i32;
    let created = scheduled
        .schedules
        .create_schedule(proto::CreateScheduleRequest { schedule: Some(tick) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        created.next_fire_times.first(),
        Some(&timestamp(noon().saturating_add(Duration::from_secs(60)))),
        "the first fire is the next minute"
    );
    assert_eq!(created.next_fire_times.len(), 5);

    let fired = scheduled.advance_until_fired("tick", Duration::from_secs(30), 1).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].labels.get("schedule").map(String::as_str), Some("tick"));
    assert_eq!(
        fired[0].labels.get("schedule_time").map(String::as_str),
        Some("2030-01-01T12:01:00.000000Z"),
        "the nominal fire time, readable"
    );
    let fired = scheduled.advance_until_fired("tick", Duration::from_secs(120), 3).await;
    assert_eq!(fired.len(), 3, "12:02 and 12:03 fired, each once");
    let schedule = scheduled.get("tick").await;
    assert_eq!(schedule.fires, 3);
    assert_eq!(schedule.recent_fires.len(), 3);
    assert_eq!(
        schedule.recent_fires[0].nominal_time,
        Some(timestamp(noon().saturating_add(Duration::from_secs(180))))
    );
    assert_eq!(schedule.recent_fires[0].task_id, fired[2].id);

    let metrics = scheduled.metrics().await;
    assert!(
        metrics.contains("taskd_schedule_fires_total{schedule=\"tick\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("taskd_schedule_fire_lateness_seconds_count{schedule=\"tick\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_paused_schedule_misses_its_fires_and_catches_up_per_its_policy_on_resume() {
    let mut scheduled = start().await;
    let mut definition = every_minute("catch-up", "diag.echo");
    definition.catch_up = Some(proto::CatchUpPolicy {
        window: Some(seconds(600)),
        latest_only: true,
    });
    scheduled.create(definition).await;
    let paused = scheduled
        .schedules
        .pause_schedule(proto::PauseScheduleRequest {
            name: "catch-up".into(),
            note: "reindexing by hand".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(paused.paused);
    assert_eq!(paused.pause_note, "reindexing by hand");
    assert!(paused.next_fire_times.is_empty());
    scheduled.clock.advance(Duration::from_secs(5 * 60));
    scheduled
        .schedules
        .resume_schedule(proto::ResumeScheduleRequest {
            name: "catch-up".into(),
        })
        .await
        .unwrap();
    let fired = scheduled.advance_until_fired("catch-up", Duration::ZERO, 1).await;
    assert_eq!(fired.len(), 1, "only the latest of the five missed fires runs");
    let schedule = scheduled.get("catch-up").await;
    assert_eq!((schedule.fires, schedule.skipped_late), (1, 4));
    let metrics = scheduled.metrics().await;
    assert!(
        metrics.contains("taskd_schedule_skips_total{schedule=\"catch-up\",reason=\"late\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn trigger_fires_now_and_backfill_fires_a_past_range_once() {
    let mut scheduled = start().await;
    scheduled
        .schedules
        .create_schedule(proto::CreateScheduleRequest {
            schedule: Some(every_minute("by-hand", "diag.echo")),
        })
        .await
        .unwrap();
    let triggered = scheduled
        .schedules
        .trigger_schedule(proto::TriggerScheduleRequest { name: "by-hand".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(triggered.labels.get("schedule").map(String::as_str), Some("by-hand"));
    // How the fire went is read with the schedule: every recent fire's
    // outcome from a get, the latest one's from a list.
    let finished = scheduled.server.wait(&triggered.id).await;
    let fires = scheduled.get("by-hand").await.recent_fires;
    assert_eq!(fires[0].task_id, triggered.id);
    assert_eq!(fires[0].status(), finished.status());
    assert_eq!(finished.status(), proto::TaskStatus::Completed);
    let listed = scheduled
        .schedules
        .list_schedules(proto::ListSchedulesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .schedules;
    assert_eq!(listed[0].recent_fires[0].status(), proto::TaskStatus::Completed);

    let range = proto::BackfillScheduleRequest {
        name: "by-hand".into(),
        start_time: Some(timestamp(noon().saturating_sub(Duration::from_secs(3 * 60)))),
        end_time: Some(timestamp(noon())),
    };
    let backfilled = scheduled
        .schedules
        .backfill_schedule(range.clone())
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(backfilled.len(), 3, "11:58, 11:59 and 12:00");
    let again = scheduled
        .schedules
        .backfill_schedule(range)
        .await
        .unwrap()
        .into_inner()
        .tasks;
    let ids = |tasks: &[proto::Task]| tasks.iter().map(|task| task.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&again),
        ids(&backfilled),
        "a fire is submitted once, however often it is asked for"
    );
    assert_eq!(scheduled.fired("by-hand").await.len(), 4);
}

#[tokio::test]
async fn a_fire_is_skipped_while_the_last_one_runs_and_counted() {
    let mut scheduled = start().await;
    scheduled
        .schedules
        .create_schedule(proto::CreateScheduleRequest {
            schedule: Some(every_minute("gated", "test.gate")),
        })
        .await
        .unwrap();
    let fired = scheduled.advance_until_fired("gated", Duration::from_secs(30), 1).await;
    scheduled
        .server
        .wait_for_status(&fired[0].id, taskd_client::TaskStatus::Running)
        .await;
    // 12:02 comes while 12:01's task still runs: skipped (the default
    // overlap policy), and counted.
    scheduled.clock.advance(Duration::from_secs(60));
    let schedule = loop {
        let schedule = scheduled.get("gated").await;
        if schedule.skipped_overlap > 0 {
            break schedule;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!((schedule.fires, schedule.skipped_overlap), (1, 1));
    assert_eq!(scheduled.fired("gated").await.len(), 1);
    scheduled.server.gate.open(1);
}

/// `status` is a refusal whose message starts with `expected`.
fn assert_refused(status: &tonic::Status, expected: &str) {
    assert!(status.message().starts_with(expected), "{}", status.message());
}

#[tokio::test]
async fn a_bad_schedule_is_refused_naming_the_field() {
    let mut scheduled = start().await;
    let mut refusal = async |definition: proto::ScheduleDefinition| {
        scheduled
            .schedules
            .create_schedule(proto::CreateScheduleRequest {
                schedule: Some(definition),
            })
            .await
            .expect_err("refused")
    };
    let mut bad_cron = every_minute("bad", "diag.echo");
    bad_cron.spec = Some(proto::ScheduleSpec {
        kind: Some(Kind::Cron(proto::CronSpec {
            expression: "61 * * * *".into(),
            time_zone: String::new(),
        })),
        jitter: None,
    });
    let status = refusal(bad_cron).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_refused(&status, "schedule.spec.cron.expression: \"61 * * * *\"");

    let mut bad_zone = every_minute("bad", "diag.echo");
    bad_zone.spec = Some(proto::ScheduleSpec {
        kind: Some(Kind::Cron(proto::CronSpec {
            expression: "0 3 * * *".into(),
            time_zone: "Europe/Atlantis".into(),
        })),
        jitter: None,
    });
    let status = refusal(bad_zone).await;
    assert_refused(&status, "schedule.spec.cron.time_zone: \"Europe/Atlantis\"");

    let status = refusal(every_minute("bad", "no.such.type")).await;
    assert_refused(&status, "schedule.template.task_type: unknown task type");

    let status = refusal(every_minute("has space", "diag.echo")).await;
    assert_refused(&status, "schedule.name: \"has space\" contains ' '");

    scheduled
        .schedules
        .create_schedule(proto::CreateScheduleRequest {
            schedule: Some(every_minute("twice", "diag.echo")),
        })
        .await
        .unwrap();
    let taken = scheduled
        .schedules
        .create_schedule(proto::CreateScheduleRequest {
            schedule: Some(every_minute("twice", "diag.echo")),
        })
        .await
        .expect_err("a name is taken once");
    assert_eq!(taken.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn retention_is_a_schedule_created_at_first_start_and_editable_like_any_other() {
    let server = TestServer::start_with(|config| {
        config.retention.enabled = true;
        config.retention.failed = Duration::from_secs(3 * 24 * 3600);
    })
    .await;
    let mut schedules = ScheduleServiceClient::new(server.client.channel());
    let maintenance = schedules
        .get_schedule(proto::GetScheduleRequest {
            name: "system_maintenance".into(),
        })
        .await
        .expect("created at start")
        .into_inner();
    let definition = maintenance.definition.expect("defined");
    let template = definition.template.expect("a template");
    assert_eq!(template.task_type, "system_maintenance");
    let params = taskd_client::json::struct_to_json(&template.params.expect("params")).expect("json");
    assert_eq!(params["completed"], "7days");
    assert_eq!(params["failed"], "3days");
    assert_eq!(params["cancelled"], "7days");
    let Some(Kind::Cron(cron)) = definition.spec.and_then(|spec| spec.kind) else {
        panic!("a cron spec")
    };
    assert_eq!(cron.expression, "17 3 * * *");
    // Editable like any schedule: an operator pauses it.
    let paused = schedules
        .pause_schedule(proto::PauseScheduleRequest {
            name: "system_maintenance".into(),
            note: "keeping everything during the audit".into(),
        })
        .await
        .expect("paused")
        .into_inner();
    assert!(paused.paused);
}

#[tokio::test]
async fn the_rust_client_updates_and_backfills_a_schedule() {
    let scheduled = start().await;
    let client = &scheduled.server.client;
    client
        .create_schedule(every_minute("rust-client", "diag.echo"))
        .await
        .expect("created");
    let mut hourly = every_minute("rust-client", "diag.echo");
    hourly.spec = Some(proto::ScheduleSpec {
        kind: Some(Kind::Interval(proto::IntervalSpec {
            every: Some(seconds(3600)),
            offset: None,
        })),
        jitter: None,
    });
    let updated = client.update_schedule(hourly).await.expect("updated");
    assert_eq!(
        updated.next_fire_times.first(),
        Some(&timestamp(noon().saturating_add(Duration::from_secs(3600)))),
        "the next fire is computed again from now"
    );
    let epoch = std::time::UNIX_EPOCH;
    let end = epoch + Duration::from_micros(noon().as_micros() as u64);
    let tasks = client
        .backfill_schedule("rust-client", end - Duration::from_secs(3 * 3600), end)
        .await
        .expect("backfilled");
    assert_eq!(tasks.len(), 3, "09:00 (exclusive) to 12:00: 10:00, 11:00, 12:00");
}

/// A REST call on the test server: its status and JSON body.
async fn rest(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let address = server.server.as_ref().expect("running").local_addr();
    let mut request = reqwest::Client::new().request(method, format!("http://{address}/api/v1{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn schedules_are_created_run_and_deleted_over_rest_as_over_grpc() {
    use reqwest::Method;
    use serde_json::json;
    let scheduled = start().await;
    let server = &scheduled.server;
    let (status, created) = rest(
        server,
        Method::POST,
        "/schedules",
        Some(json!({
            "name": "reindex",
            "spec": {"cron": {"expression": "0 * * * *", "time_zone": "Asia/Kolkata"}},
            "template": {"task_type": "diag.echo", "params": {"corpus": "docs"}, "priority": "HIGH",
                         "retry_policy": {"initial_backoff": "2s"}},
            "overlap": "OVERLAP_POLICY_ALLOW_ALL"
        })),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    // Kolkata is UTC+5:30: its whole hours fall on half past in UTC.
    assert_eq!(created["next_fire_times"][0], "2030-01-01T12:30:00Z", "{created}");
    assert_eq!(
        created["definition"]["template"]["retry_policy"]["initial_backoff"],
        "2s"
    );
    assert_eq!(created["definition"]["overlap"], "OVERLAP_POLICY_ALLOW_ALL");

    let (status, listed) = rest(server, Method::GET, "/schedules", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["schedules"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|schedule| schedule["definition"]["name"].as_str())
        .collect();
    assert_eq!(names, ["reindex"]);

    let mut changed = created["definition"].clone();
    changed["spec"] = json!({"interval": {"every": "900s"}});
    changed["name"] = json!("");
    let (status, updated) = rest(server, Method::PUT, "/schedules/reindex", Some(changed.clone())).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["next_fire_times"][0], "2030-01-01T12:15:00Z");
    changed["name"] = json!("other");
    let (status, refused) = rest(server, Method::PUT, "/schedules/reindex", Some(changed)).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("name")), "{refused}");

    let (status, paused) = rest(
        server,
        Method::POST,
        "/schedules/reindex/pause",
        Some(json!({"note": "corpus moving"})),
    )
    .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        (paused["paused"].as_bool(), paused["pause_note"].as_str()),
        (Some(true), Some("corpus moving"))
    );
    let (status, resumed) = rest(server, Method::POST, "/schedules/reindex/resume", None).await;
    assert_eq!((status, resumed["paused"].as_bool()), (200, Some(false)));

    let (status, task) = rest(server, Method::POST, "/schedules/reindex/trigger", None).await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["labels"]["schedule"], "reindex");
    assert_eq!(task["params"], json!({"corpus": "docs"}));
    assert_eq!(task["retry_policy"]["initial_backoff"], "2s");

    let (status, backfilled) = rest(
        server,
        Method::POST,
        "/schedules/reindex/backfill",
        Some(json!({"start_time": "2030-01-01T10:00:00Z", "end_time": "2030-01-01T11:00:00Z"})),
    )
    .await;
    assert_eq!(status, 200, "{backfilled}");
    assert_eq!(
        backfilled["tasks"].as_array().map(Vec::len),
        Some(4),
        "after 10:00 up to 11:00, every 15 minutes"
    );
    let (status, refused) = rest(
        server,
        Method::POST,
        "/schedules/reindex/backfill",
        Some(json!({"start_time": "2030-01-01T10:00:00Z"})),
    )
    .await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (400, Some("end_time")),
        "{refused}"
    );

    let (status, refused) = rest(
        server,
        Method::POST,
        "/schedules",
        Some(json!({"name": "bad", "spec": {"cron": {"expression": "61 * * * *"}},
                    "template": {"task_type": "diag.echo"}})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["field"], "spec.cron.expression", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("spec.cron.expression: "))
    );

    let (status, _) = rest(server, Method::DELETE, "/schedules/reindex", None).await;
    assert_eq!(status, 200);
    let (status, missing) = rest(server, Method::GET, "/schedules/reindex", None).await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{missing}"
    );
}

#[tokio::test]
async fn a_fire_beyond_the_queue_depth_is_shed_like_any_submit() {
    let server = TestServer::start_with(|config| config.engine.limits.max_queue_depth = 1).await;
    let mut schedules = ScheduleServiceClient::new(server.client.channel());
    schedules
        .create_schedule(proto::CreateScheduleRequest {
            schedule: Some(every_minute("shed", "document_processing")),
        })
        .await
        .unwrap();
    // document_processing has no handler here: it stays queued.
    server
        .client
        .submit(taskd_client::NewTask::new("document_processing"))
        .await
        .unwrap();
    let shed = schedules
        .trigger_schedule(proto::TriggerScheduleRequest { name: "shed".into() })
        .await
        .expect_err("the queue is full");
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    assert!(shed.message().contains("max_queue_depth"), "{}", shed.message());
}

/// The nominal time a fire's task was submitted for, from its name.
fn nominal_of(task: &taskd_client::Task) -> Timestamp {
    let micros = task
        .name
        .rsplit_once(" @ ")
        .and_then(|(_, micros)| micros.parse().ok())
        .expect("a fire's name ends with its nominal time");
    Timestamp(micros)
}

fn minute(minutes_past_noon: u64) -> Timestamp {
    noon().saturating_add(Duration::from_secs(60 * minutes_past_noon))
}

#[tokio::test]
async fn fires_missed_while_the_server_was_down_run_per_the_catch_up_window() {
    let mut scheduled = start().await;
    let mut definition = every_minute("downtime", "diag.echo");
    definition.overlap = proto::OverlapPolicy::AllowAll as i32;
    definition.catch_up = Some(proto::CatchUpPolicy {
        window: Some(seconds(180)),
        latest_only: false,
    });
    scheduled.create(definition).await;
    scheduled
        .advance_until_fired("downtime", Duration::from_secs(30), 1)
        .await;
    // Down from 12:01 to 12:11: 12:08 to 12:11 are at most 3 minutes late
    // and run, once each; 12:02 to 12:07 are counted as too late.
    scheduled.restart_after(Duration::from_secs(10 * 60)).await;
    let schedule = scheduled.until("downtime", |schedule| schedule.fires == 5).await;
    assert_eq!(schedule.skipped_late, 6);
    let nominal: Vec<Timestamp> = scheduled.fired("downtime").await.iter().map(nominal_of).collect();
    assert_eq!(nominal, [1, 8, 9, 10, 11].map(minute));
}

#[tokio::test]
async fn a_buffered_fire_outlives_a_restart_and_runs_once_the_earlier_task_ends() {
    let mut scheduled = start().await;
    let mut definition = every_minute("buffered", "test.gate");
    definition.overlap = proto::OverlapPolicy::BufferOne as i32;
    scheduled.create(definition).await;
    let first = scheduled
        .advance_until_fired("buffered", Duration::from_secs(30), 1)
        .await;
    scheduled
        .server
        .wait_for_status(&first[0].id, taskd_client::TaskStatus::Running)
        .await;
    // 12:02 waits for 12:01's task; 12:03 finds the buffer taken: skipped.
    scheduled.clock.advance(Duration::from_secs(120));
    scheduled
        .until("buffered", |schedule| schedule.skipped_overlap == 1)
        .await;

    scheduled.restart_after(Duration::ZERO).await;
    // 12:01's task was interrupted by the stop and runs again after its
    // backoff; once it ends, the buffered 12:02 fire runs, and nothing else.
    scheduled.clock.advance(Duration::from_secs(1));
    scheduled
        .server
        .wait_for_status(&first[0].id, taskd_client::TaskStatus::Running)
        .await;
    scheduled.server.gate.open(1);
    scheduled.server.wait(&first[0].id).await;
    let fired = scheduled
        .advance_until_fired("buffered", Duration::from_secs(1), 2)
        .await;
    assert_eq!(fired.iter().map(nominal_of).collect::<Vec<_>>(), [minute(1), minute(2)]);
    let schedule = scheduled.get("buffered").await;
    assert_eq!((schedule.fires, schedule.skipped_overlap), (2, 1));
    scheduled.server.gate.open(1);
}

#[tokio::test]
async fn cancel_running_cancels_the_earlier_task_even_one_from_before_a_restart() {
    let mut scheduled = start().await;
    let mut definition = every_minute("replace", "test.gate");
    definition.overlap = proto::OverlapPolicy::CancelRunning as i32;
    scheduled.create(definition).await;
    let first = scheduled
        .advance_until_fired("replace", Duration::from_secs(30), 1)
        .await;
    // Interrupted by the stop, 12:01's task runs again after its backoff.
    scheduled.restart_after(Duration::ZERO).await;
    scheduled.clock.advance(Duration::from_secs(1));
    scheduled
        .server
        .wait_for_status(&first[0].id, taskd_client::TaskStatus::Running)
        .await;
    let fired = scheduled
        .advance_until_fired("replace", Duration::from_secs(59), 2)
        .await;
    let cancelled = scheduled.server.wait(&first[0].id).await;
    assert_eq!(cancelled.status(), taskd_client::TaskStatus::Cancelled);
    assert!(
        cancelled.status_reason.contains("cancel_running"),
        "{}",
        cancelled.status_reason
    );
    assert_eq!(nominal_of(&fired[1]), minute(2));
    scheduled.server.gate.open(1);
}

#[tokio::test]
async fn retention_purges_each_ended_status_after_its_own_time_and_nothing_unfinished() {
    use taskd_client::{NewTask, TaskStatus};
    let clock = Clock::manual(noon());
    let mut server = TestServer::start_with({
        let clock = clock.clone();
        move |config| {
            config.engine.clock = clock;
            config.retention.enabled = true;
            config.retention.completed = Duration::from_secs(3600);
            config.retention.failed = Duration::from_secs(3 * 3600);
            config.retention.cancelled = Duration::from_secs(1800);
        }
    })
    .await;
    let client = server.client.clone();
    let completed = client.submit(NewTask::new("diag.echo")).await.unwrap();
    let failed = client.submit(NewTask::new("diag.fail").max_retries(0)).await.unwrap();
    let cancelled = client.submit(NewTask::new("document_processing")).await.unwrap();
    client.cancel(&cancelled.id, "not needed").await.unwrap();
    let pending = client.submit(NewTask::new("document_processing")).await.unwrap();
    let running = client.submit(NewTask::new("test.gate")).await.unwrap();
    let later = client
        .submit(
            NewTask::new("diag.echo")
                .run_at(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_499_200 + 10 * 86_400)),
        )
        .await
        .unwrap();
    server.wait(&completed.id).await;
    assert_eq!(server.wait(&failed.id).await.status(), TaskStatus::Failed);
    server.wait_for_status(&running.id, TaskStatus::Running).await;

    // Two hours on: COMPLETED (kept 1h) and CANCELLED (30m) tasks go,
    // FAILED (3h) stays, and so does everything unfinished or recent.
    clock.advance(Duration::from_secs(2 * 3600));
    let recent = client.submit(NewTask::new("diag.echo")).await.unwrap();
    server.wait(&recent.id).await;
    let mut schedules = ScheduleServiceClient::new(client.channel());
    let run = schedules
        .trigger_schedule(proto::TriggerScheduleRequest {
            name: "system_maintenance".into(),
        })
        .await
        .expect("the retention schedule runs now")
        .into_inner();
    let done = server.wait(&run.id).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{}", done.error);
    let result = taskd_client::json::value_to_json(done.result.as_ref().expect("a result")).unwrap();
    assert_eq!(result["purged"], 2, "{result}");
    for gone in [&completed, &cancelled] {
        assert_eq!(client.get(&gone.id).await.unwrap_err().code(), Some(Code::NotFound));
    }
    for kept in [&failed, &pending, &running, &later, &recent] {
        client.get(&kept.id).await.expect("kept");
    }
    server.gate.open(1);
    server.stop().await;
}
