//! The dashboard in a real headless Chromium, driven over WebDriver with
//! `fantoccini` (ChromeDriver from Debian's packages): every page, reached by
//! navigating as a user does; the overview right from the first paint; a
//! real DAG drawn and updating live; the explorer's filters, search and
//! bulk cancel; a cancel from a task's page; workers; alerts. Screenshots of
//! each page are left in `target/tmp/artifacts/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use taskd_client::{NewTask, TaskStatus};

use crate::support::{ScriptedLoad, TestServer};

/// How long any one thing on the page may take to appear.
const BOUND: Duration = Duration::from_secs(20);

struct Browser {
    client: Client,
    driver: Child,
    driver_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("address").port()
        };
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (scripts/setup-test-tools.sh installs it)");
        let driver_url = format!("http://127.0.0.1:{port}");
        // ChromeDriver's only readiness signal is its status endpoint.
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            if let Ok(response) = http.get(format!("{driver_url}/status")).send().await
                && response.status().is_success()
            {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1400,1200",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .expect("a WebDriver session");
        Browser {
            client,
            driver,
            driver_url,
            _profile: profile,
        }
    }

    async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigates");
    }

    /// Navigates inside the page, as a click on a link would.
    async fn go(&self, hash: &str) {
        self.client
            .execute("location.hash = arguments[0];", vec![json!(hash)])
            .await
            .expect("hash set");
    }

    async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(BOUND)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css}: {error}"))
            .click()
            .await
            .unwrap_or_else(|error| panic!("click {css}: {error}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.expect(css);
        element.clear().await.expect("cleared");
        element.send_keys(text).await.expect("typed");
    }

    /// Polls a JavaScript expression until it is truthy; returns its value.
    async fn until(&self, expression: &str) -> Value {
        let script = format!("try {{ return ({expression}); }} catch (e) {{ return null; }}");
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let value = self.client.execute(&script, vec![]).await.expect("script runs");
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(flag) => *flag,
                Value::Number(number) => number.as_f64() != Some(0.0),
                Value::String(text) => !text.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {BOUND:?} for `{expression}`"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self, expression: &str) -> String {
        self.until(expression).await.as_str().unwrap_or_default().to_string()
    }

    async fn screenshot(&self, name: &str) {
        let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
        std::fs::create_dir_all(&artifacts).expect("artifact dir");
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(artifacts.join(format!("{name}.png")), png).expect("screenshot saved");
    }

    /// SEVERE entries of the browser's console, through ChromeDriver's log
    /// endpoint (not in the WebDriver standard, so not in fantoccini).
    async fn console_errors(&self) -> Vec<String> {
        let session = self.client.session_id().await.expect("session").expect("a session id");
        let response: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("log request")
            .json()
            .await
            .expect("log response");
        response["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| entry["level"] == "SEVERE")
                    .map(|entry| entry["message"].to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn quit(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_reads_and_steers_taskd_from_the_dashboard() {
    let load = ScriptedLoad::new();
    let server = TestServer::start_scripted(
        |config| {
            config.monitor.interval = Duration::from_millis(100);
            config.monitor.history_interval = Duration::from_millis(200);
        },
        Some(load.clone()),
    )
    .await;
    let address = server.server.as_ref().expect("running").local_addr();
    let base = format!("http://{address}/");
    let client = &server.client;

    // Work done before anyone looks.
    let echo = client.submit(NewTask::new("diag.echo").name("before")).await.unwrap();
    server.wait(&echo.id).await;

    let browser = Browser::start().await;
    browser.open(&base).await;
    // Right from the first paint: counts, and the history's throughput.
    assert_eq!(
        browser
            .text("document.querySelector('#count-COMPLETED b').textContent")
            .await,
        "1"
    );
    browser
        .until("document.querySelector('#throughputChart path[data-series=\"completed\"]')")
        .await;
    let thresholds = browser
        .until("document.querySelectorAll('#resourceChart line.threshold').length")
        .await;
    assert_eq!(thresholds, 4, "a dashed line per resource threshold");
    assert_eq!(
        browser
            .text("document.getElementById('connection').textContent === 'live' && 'live'")
            .await,
        "live"
    );
    assert!(
        browser
            .text("document.getElementById('limitReason').textContent")
            .await
            .starts_with("nothing limits")
    );
    browser.screenshot("overview").await;

    // A DAG: a gated root, two branches after it, a join after both.
    let dag = client
        .submit_batch([
            NewTask::new("test.gate").name("root").batch_ref("root"),
            NewTask::new("diag.echo")
                .name("left")
                .batch_ref("left")
                .depends_on_ref("root"),
            NewTask::new("diag.echo")
                .name("right")
                .batch_ref("right")
                .depends_on_ref("root"),
            NewTask::new("diag.echo")
                .name("join")
                .depends_on_ref("left")
                .depends_on_ref("right"),
        ])
        .await
        .unwrap();
    server.wait_for_status(&dag[0].id, TaskStatus::Running).await;
    // From the overview's running table to the task's own page.
    browser
        .click(&format!("#runningTasks tr[data-task-id=\"{}\"] a", dag[0].id))
        .await;
    assert_eq!(
        browser
            .text("document.getElementById('detailStatus').textContent")
            .await,
        "RUNNING"
    );
    assert_eq!(
        browser
            .until("document.querySelectorAll('#dag g.node').length === 4 && 4")
            .await,
        4
    );
    assert_eq!(
        browser
            .until("document.querySelectorAll('#dag path.edge').length")
            .await,
        4
    );
    let join_status = format!(
        "document.querySelector('#dag g.node[data-task-id=\"{}\"]').dataset.status",
        dag[3].id
    );
    assert_eq!(browser.text(&join_status).await, "WAITING");
    browser.screenshot("task-dag-running").await;
    // The root finishes: the graph follows without a reload.
    server.gate.open(1);
    assert_eq!(
        browser
            .text(&format!("{join_status} === 'COMPLETED' && 'COMPLETED'"))
            .await,
        "COMPLETED"
    );
    assert_eq!(
        browser
            .text("document.getElementById('detailStatus').textContent === 'COMPLETED' && 'done'")
            .await,
        "done"
    );
    assert_eq!(
        browser.until("document.querySelectorAll('#attempts tr').length").await,
        1
    );
    browser.screenshot("task-dag-completed").await;
    // The join's own page, reached by a click on its node.
    browser
        .click(&format!("#dag g.node[data-task-id=\"{}\"]", dag[3].id))
        .await;
    assert!(browser.text("location.hash").await.ends_with(&dag[3].id));
    browser
        .until("document.getElementById('taskTitle').textContent.startsWith('join')")
        .await;

    // The explorer: a label filter, a name search, then a bulk cancel.
    for name in ["bulk one", "bulk two", "needle in bulk"] {
        client
            .submit(NewTask::new("document_processing").name(name).label("batch", "bulk"))
            .await
            .unwrap();
    }
    browser.click("nav a[data-page=\"tasks\"]").await;
    browser.type_into("#filterLabel", "batch:bulk").await;
    browser.click("#applyFilters").await;
    assert_eq!(
        browser
            .until("document.querySelectorAll('#taskTable tr[data-task-id]').length === 3 && 3")
            .await,
        3
    );
    assert!(
        browser.text("location.hash").await.contains("label=batch%3Abulk"),
        "the filter is in the URL"
    );
    browser.type_into("#search", "NEEDLE").await;
    browser.click("#applyFilters").await;
    assert_eq!(
        browser
            .until("document.querySelectorAll('#taskTable tr[data-task-id]').length === 1 && 1")
            .await,
        1
    );
    browser.type_into("#search", "").await;
    browser.click("#applyFilters").await;
    browser
        .until("document.querySelectorAll('#taskTable tr[data-task-id]').length === 3")
        .await;
    browser.screenshot("tasks").await;
    browser.click("#bulkCancel").await;
    let question = wait_for_alert(&browser).await;
    assert!(question.contains("Cancel 3 unfinished task(s)"), "{question}");
    browser.client.accept_alert().await.expect("confirmed");
    assert_eq!(
        browser
            .text("document.getElementById('bulkMessage').textContent.startsWith('cancelled 3') && 'ok'")
            .await,
        "ok"
    );
    let bulk = client
        .list_all(taskd_client::ListTasksRequest {
            labels: taskd_client::labels([("batch", "bulk")]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        bulk.iter().all(|task| task.status() == TaskStatus::Cancelled),
        "{bulk:?}"
    );

    // Cancel from a task's page.
    let gated = client.submit(NewTask::new("test.gate").name("stuck")).await.unwrap();
    server.wait_for_status(&gated.id, TaskStatus::Running).await;
    browser.go(&format!("#/tasks/{}", gated.id)).await;
    browser
        .until("document.getElementById('detailStatus').textContent === 'RUNNING'")
        .await;
    browser.click("#cancelButton").await;
    browser
        .until("document.getElementById('detailStatus').textContent === 'CANCELLED'")
        .await;
    assert_eq!(client.get(&gated.id).await.unwrap().status(), TaskStatus::Cancelled);

    // Workers.
    let worker = taskd_client::worker::Worker::new(client)
        .worker_id("page-worker")
        .capacity(2)
        .handle("thumbnails", |_run| async { Ok(json!({})) });
    let worker = tokio::spawn(worker.run_until(std::future::pending()));
    browser.click("nav a[data-page=\"workers\"]").await;
    let row = browser
        .text("document.querySelector('#workers tr[data-worker-id=\"page-worker\"]').textContent")
        .await;
    assert!(row.contains("thumbnails") && row.contains("0 / 2"), "{row}");
    browser.screenshot("workers").await;

    // Alerts: a CPU spike, shown active, then as one incident once over.
    load.set_cpu(97.0);
    browser.click("nav a[data-page=\"alerts\"]").await;
    let active = browser
        .text("document.querySelector('#activeAlerts td.error').textContent")
        .await;
    assert_eq!(active, "cpu");
    browser.screenshot("alerts").await;
    load.set_cpu(10.0);
    browser
        .until("document.querySelector('#alertHistory tr td') && document.querySelector('#alertHistory tr').textContent.includes('cpu') && !document.querySelector('#activeAlerts td.error')")
        .await;

    worker.abort();
    let errors = browser.console_errors().await;
    browser.quit().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// The text of the confirmation dialog, once it is open.
async fn wait_for_alert(browser: &Browser) -> String {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        if let Ok(text) = browser.client.get_alert_text().await {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "no confirmation dialog");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_server_with_tokens_the_dashboard_asks_for_one_once_and_goes_live() {
    const TOKEN: &str = "dashboard-token-0123456789";
    let server = TestServer::start_with(|config| {
        config.auth.tokens_text = Some(taskd::auth::Secret(format!("dash read {TOKEN}")));
    })
    .await;
    let address = server.server.as_ref().expect("running").local_addr();
    let browser = Browser::start().await;
    browser.open(&format!("http://{address}/")).await;

    // Nothing readable without a token: the page asks for one.
    browser.until("!document.getElementById('tokenDialog').hidden").await;
    browser.type_into("#tokenInput", "not-the-token-0123456789").await;
    browser.click("#tokenForm button").await;
    assert!(
        browser
            .text(
                "!document.getElementById('tokenDialog').hidden && document.getElementById('tokenMessage').textContent"
            )
            .await
            .contains("not accepted")
    );
    browser.type_into("#tokenInput", TOKEN).await;
    browser.click("#tokenForm button").await;
    // With it: data and both event streams (fetched with the token).
    assert_eq!(
        browser
            .text("document.getElementById('connection').textContent === 'live' && 'live'")
            .await,
        "live"
    );
    let task = server.client.submit(NewTask::new("diag.echo").name("seen live")).await;
    // The test's own client has no token: the server refuses it.
    assert!(task.is_err());
    // Kept for the tab's session: a reload does not ask again.
    browser.open(&format!("http://{address}/#/tasks")).await;
    assert_eq!(
        browser
            .text("document.getElementById('connection').textContent === 'live' && 'live'")
            .await,
        "live"
    );
    assert_eq!(
        browser.until("document.getElementById('tokenDialog').hidden").await,
        Value::Bool(true)
    );
    let token_in_logs = browser.console_errors().await.iter().any(|line| line.contains(TOKEN));
    assert!(!token_in_logs);
    browser.screenshot("token-dialog-done").await;
    browser.quit().await;
}

/// Every edge of the graph drawn in `svg`, sampled every 2 px along its
/// path, against every node's box (less a pixel of border): the points of
/// an edge that lie behind a node. Empty when every edge goes around.
const EDGES_BEHIND_NODES: &str = r#"
    (svg => {
      const boxes = [...svg.querySelectorAll('g.node')].map(group => {
        const [, x, y] = group.getAttribute('transform').match(/translate\(([-\d.]+),([-\d.]+)\)/).map(Number);
        const rect = group.querySelector('rect');
        return {id: group.dataset.taskId, x, y, w: +rect.getAttribute('width'), h: +rect.getAttribute('height')};
      });
      const behind = [];
      for (const edge of svg.querySelectorAll('path.edge')) {
        const length = edge.getTotalLength();
        for (let at = 0; at <= length; at += 2) {
          const p = edge.getPointAtLength(at);
          for (const box of boxes) {
            if (p.x > box.x + 1 && p.x < box.x + box.w - 1 && p.y > box.y + 1 && p.y < box.y + box.h - 1) {
              behind.push(`${edge.dataset.from.slice(-6)}->${edge.dataset.to.slice(-6)} behind ${box.id.slice(-6)}`);
            }
          }
        }
      }
      return [...new Set(behind)];
    })
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_graph_the_charts_and_the_times_read_as_they_should() {
    let server = TestServer::start().await;
    let address = server.server.as_ref().expect("running").local_addr();
    let client = &server.client;
    // The report's graph: fetch -> parse -> report, and bad -> report,
    // which skips a column; two unnamed tasks of one type after it.
    let tasks = client
        .submit_batch([
            NewTask::new("test.gate").name("fetch").batch_ref("fetch"),
            NewTask::new("diag.echo")
                .name("parse")
                .batch_ref("parse")
                .depends_on_ref("fetch"),
            NewTask::new("diag.echo").name("bad").batch_ref("bad"),
            NewTask::new("report_generation")
                .batch_ref("report")
                .depends_on_ref("parse")
                .depends_on_ref("bad"),
            NewTask::new("diag.echo").depends_on_ref("report"),
            NewTask::new("diag.echo").depends_on_ref("report"),
        ])
        .await
        .unwrap();
    let report = &tasks[3];

    let browser = Browser::start().await;
    browser.open(&format!("http://{address}/#/tasks/{}", report.id)).await;
    assert_eq!(
        browser
            .until("document.querySelectorAll('#dag g.node').length === 6 && 6")
            .await,
        6
    );
    assert_eq!(
        browser
            .until("document.querySelectorAll('#dag path.edge').length")
            .await,
        5
    );
    let behind = browser
        .until(&format!("{EDGES_BEHIND_NODES}(document.getElementById('dag'))"))
        .await;
    assert_eq!(behind, json!([]), "edges drawn behind nodes");
    browser.screenshot("dag-routed").await;

    // Larger graphs, drawn by the same code: layers skipped every which way.
    let random_graphs = r#"
      (() => {
        let seed = 7;
        const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
        const found = [];
        for (let graph = 0; graph < 20; graph++) {
          const count = 6 + Math.floor(random() * 14);
          const nodes = [...Array(count)].map((_, i) => ({id: `node-${graph}-${String(i).padStart(6, '0')}`,
                                                          name: '', task_type: 'diag.echo', status: 'PENDING'}));
          const edges = [];
          for (let to = 1; to < count; to++)
            for (let from = 0; from < to; from++)
              if (random() < 0.25) edges.push([nodes[from].id, nodes[to].id]);
          const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
          svg.setAttribute('class', 'dag');
          document.body.append(svg);
          Dag.draw(svg, nodes, edges, null, () => {});
          found.push(...EDGES(svg).map(point => `graph ${graph}: ${point}`));
          svg.remove();
        }
        return found;
      })()
    "#
    .replace("EDGES", EDGES_BEHIND_NODES);
    assert_eq!(browser.until(&format!("{random_graphs} || 'none'")).await, json!([]));

    // Unnamed tasks of one type read apart, by the tail of their ids.
    let labels = browser
        .until(
            "[...document.querySelectorAll('#dag g.node')].filter(g => g.querySelector('text').textContent.startsWith('diag.echo ')).map(g => g.querySelector('text').textContent)",
        )
        .await;
    let labels: Vec<String> = serde_json::from_value(labels).unwrap();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_ne!(labels[0], labels[1]);
    for task in &tasks[4..] {
        assert!(
            labels.contains(&format!("diag.echo {}", &task.id[task.id.len() - 6..])),
            "{labels:?}"
        );
    }
    // Seven statuses, seven colours far enough apart to tell at a glance.
    let colors: Vec<String> = serde_json::from_value(
        browser
            .until("[...document.querySelectorAll('#dagLegend i')].map(i => getComputedStyle(i).backgroundColor)")
            .await,
    )
    .unwrap();
    assert_eq!(colors.len(), 7);
    let rgb = |color: &str| -> Vec<f64> {
        color
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .map(|part| part.trim().parse().unwrap())
            .collect()
    };
    for (i, a) in colors.iter().enumerate() {
        for b in &colors[i + 1..] {
            let distance = rgb(a)
                .iter()
                .zip(rgb(b))
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(distance > 60.0, "{a} and {b} are too alike");
        }
    }

    // The title says the type once; times are UTC, like the API's.
    let title = browser.text("document.getElementById('taskTitle').textContent").await;
    assert_eq!(title.matches("report_generation").count(), 1, "{title}");
    assert!(title.ends_with(&report.id[report.id.len() - 6..]), "{title}");
    let created = browser
        .text("[...document.querySelectorAll('#detailFields tr')].find(r => r.cells[0].textContent === 'created')?.cells[1].textContent")
        .await;
    let expected_prefix = &report.created_at.as_ref().map(|at| {
        let seconds = at.seconds;
        let days = seconds.div_euclid(86_400);
        let (hour, minute, second) = (
            seconds.rem_euclid(86_400) / 3600,
            seconds.rem_euclid(3600) / 60,
            seconds.rem_euclid(60),
        );
        format!("{days} {hour:02}:{minute:02}:{second:02}")
    });
    let time_of_day = expected_prefix.as_ref().unwrap().split(' ').nth(1).unwrap().to_string();
    assert!(
        created.ends_with(&format!("{time_of_day} UTC")),
        "{created} (expected {time_of_day} UTC)"
    );

    // The queue-wait chart with one outlier among waits of a few ms: its
    // labels fit, the usual waits are not flattened, the peak is said.
    let chart = browser
        .until(
            r#"(() => {
              const svg = document.getElementById('queueWaitChart');
              const now = Date.now();
              const points = [...Array(40)].map((_, i) => [now - (40 - i) * 5000, i === 20 ? 600 : 0.002 + (i % 5) * 0.001]);
              Charts.draw(svg, [{name: 'p95', color: '#d29922', points}], {format: Charts.formatSeconds});
              const ticks = [...svg.querySelectorAll('text.tick')];
              const box = svg.getBBox();
              const path = svg.querySelector('path.series').getAttribute('d');
              const ys = [...path.matchAll(/[ML][\d.]+,([\d.]+)/g)].map(m => +m[1]);
              return {
                labels: ticks.map(t => t.textContent),
                leftmost: Math.min(...ticks.map(t => t.getBBox().x)),
                clipped: svg.querySelector('text.clipped')?.textContent || '',
                // The bottom of the plot is at 156 (180 less 24 below).
                usualHeight: 156 - Math.min(...ys.filter((_, i) => i !== 20)),
              };
            })()"#,
        )
        .await;
    assert!(chart["leftmost"].as_f64().unwrap() >= 0.0, "a label is cut: {chart}");
    assert!(
        chart["labels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|label| label.as_str().unwrap().ends_with("ms") || label == "0"),
        "{chart}"
    );
    assert!(chart["clipped"].as_str().unwrap().contains("10 min"), "{chart}");
    assert!(
        chart["usualHeight"].as_f64().unwrap() > 60.0,
        "the usual waits use the chart's height: {chart}"
    );
    browser.screenshot("queue-wait-outlier").await;
    server.gate.open(1);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedules_page_shows_next_fires_and_last_results_and_pauses_resumes_and_triggers() {
    use taskd_client::proto::{self, schedule_spec::Kind};
    let server = TestServer::start().await;
    let address = server.server.as_ref().expect("running").local_addr();
    let nightly = proto::ScheduleDefinition {
        name: "nightly-report".into(),
        spec: Some(proto::ScheduleSpec {
            kind: Some(Kind::Cron(proto::CronSpec {
                expression: "30 2 * * *".into(),
                time_zone: "Europe/Paris".into(),
            })),
            jitter: None,
        }),
        template: Some(proto::TaskTemplate {
            task_type: "diag.echo".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    server.client.create_schedule(nightly).await.expect("created");

    let browser = Browser::start().await;
    browser.open(&format!("http://{address}/")).await;
    browser.click("nav a[data-page=\"schedules\"]").await;
    let row = "document.querySelector('#scheduleTable tr[data-schedule=\"nightly-report\"]')";
    let text = browser.text(&format!("{row}.textContent")).await;
    assert!(text.contains("cron 30 2 * * * (Europe/Paris)"), "{text}");
    assert!(text.contains("never fired") && text.contains("active"), "{text}");
    // 02:30 in Paris is 00:30 or 01:30 UTC, whatever the season.
    assert!(text.contains(":30:00 UTC (in "), "{text}");

    // Trigger now: the message links the fire's task, whose result shows.
    browser
        .click("#scheduleTable tr[data-schedule=\"nightly-report\"] button:last-child")
        .await;
    let message = browser
        .text("document.querySelector('#scheduleMessage a') && document.getElementById('scheduleMessage').textContent")
        .await;
    assert!(message.starts_with("triggered nightly-report:"), "{message}");
    let fired = server
        .client
        .get_schedule("nightly-report")
        .await
        .expect("read")
        .recent_fires[0]
        .task_id
        .clone();
    server.wait(&fired).await;
    browser
        .until(&format!("{row}.querySelector('a.status.COMPLETED')"))
        .await;

    // Pause with a note, through the page's prompt; then resume.
    browser
        .click("#scheduleTable tr[data-schedule=\"nightly-report\"] button.secondary")
        .await;
    let asked = wait_for_alert(&browser).await;
    assert!(asked.starts_with("Pause nightly-report?"), "{asked}");
    browser
        .client
        .send_alert_text("maintenance window")
        .await
        .expect("typed");
    browser.client.accept_alert().await.expect("accepted");
    let state = browser
        .text(&format!(
            "{row}.querySelector('td.paused') && {row}.querySelector('td.paused').textContent"
        ))
        .await;
    assert_eq!(state, "paused: maintenance window");
    assert!(server.client.get_schedule("nightly-report").await.expect("read").paused);
    browser.screenshot("schedules-paused").await;
    browser
        .click("#scheduleTable tr[data-schedule=\"nightly-report\"] button:first-child")
        .await;
    browser
        .until(&format!(
            "!{row}.querySelector('td.paused') && {row}.textContent.includes('active')"
        ))
        .await;

    // One schedule opened: its coming fires and its recent ones.
    browser.go("#/schedules/nightly-report").await;
    let coming = browser
        .until("document.querySelectorAll('#scheduleNext tr').length === 5 && 5")
        .await;
    assert_eq!(coming, 5);
    let recent = browser
        .text("document.querySelector('#scheduleFires tr[data-task-id] a.status') && document.querySelector('#scheduleFires tr[data-task-id]').dataset.taskId")
        .await;
    assert_eq!(recent, fired);
    browser.screenshot("schedule").await;

    let errors = browser.console_errors().await;
    browser.quit().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
