//! The dashboard in a real headless Chromium, driven over WebDriver
//! (ChromeDriver from Debian's packages): the page loads without console
//! errors, shows tasks changing status live, and a cancel from the page
//! takes effect. A screenshot is saved as a test artifact.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use taskd_client::{NewTask, TaskStatus};

use crate::support::{ScriptedLoad, TestServer};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A minimal WebDriver client: just what this test needs.
struct Browser {
    http: reqwest::Client,
    session_url: String,
    driver: Child,
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
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        // ChromeDriver has no readiness signal but its status endpoint;
        // poll it, bounded.
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(response) = http.get(format!("{base}/status")).send().await
                && response.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "chromedriver did not come up");
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1400,1100",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let session: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("session request")
            .json()
            .await
            .expect("session response");
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_string();
        let browser = Browser {
            http,
            session_url: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        };
        browser
            .command("timeouts", json!({"script": 20_000, "pageLoad": 20_000}))
            .await;
        browser
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        self.try_command(path, body)
            .await
            .unwrap_or_else(|error| panic!("webdriver {path}: {error}"))
    }

    async fn try_command(&self, path: &str, body: Value) -> Result<Value, Value> {
        let response: Value = self
            .http
            .post(format!("{}/{path}", self.session_url))
            .json(&body)
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .expect("webdriver response");
        if response["value"]["error"].is_string() {
            return Err(response["value"].clone());
        }
        Ok(response["value"].clone())
    }

    async fn open(&self, url: &str) {
        self.command("url", json!({"url": url})).await;
    }

    async fn find(&self, css: &str) -> String {
        let element = self
            .command("element", json!({"using": "css selector", "value": css}))
            .await;
        element[ELEMENT_KEY].as_str().expect("element id").to_string()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(&format!("element/{element}/click"), json!({})).await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(&format!("element/{element}/clear"), json!({})).await;
        self.command(&format!("element/{element}/value"), json!({"text": text}))
            .await;
    }

    /// Waits in the page for a JavaScript condition to hold, and returns the
    /// value of `result` then.
    async fn wait_for(&self, condition: &str, result: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             (function check() {{
               try {{ if ({condition}) {{ done({result}); return; }} }} catch (e) {{}}
               setTimeout(check, 25);
             }})();"
        );
        match self
            .try_command("execute/async", json!({"script": script, "args": []}))
            .await
        {
            Ok(value) => value,
            Err(error) => {
                let seen = self
                    .try_command(
                        "execute/sync",
                        json!({"script": format!("return {result};"), "args": []}),
                    )
                    .await;
                panic!(
                    "waited for `{condition}`; `{result}` is {seen:?}; webdriver: {}",
                    error["error"]
                )
            }
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let response: Value = self
            .http
            .get(format!("{}/screenshot", self.session_url))
            .send()
            .await
            .expect("screenshot request")
            .json()
            .await
            .expect("screenshot response");
        base64::engine::general_purpose::STANDARD
            .decode(response["value"].as_str().expect("base64 png"))
            .expect("png")
    }

    async fn console_errors(&self) -> Vec<String> {
        let entries = self.command("se/log", json!({"type": "browser"})).await;
        entries
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
        let _ = self.http.delete(&self.session_url).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_tasks_live_and_cancels_from_the_page() {
    let load = ScriptedLoad::new();
    let server = TestServer::start_scripted(
        |config| config.monitor.interval = Duration::from_millis(100),
        Some(load.clone()),
    )
    .await;
    let address = server.server.as_ref().expect("running").local_addr();
    let browser = Browser::start().await;
    browser.open(&format!("http://{address}/")).await;
    browser
        .wait_for("document.getElementById('connection').textContent === 'live'", "true")
        .await;

    // A task submitted elsewhere shows up and reaches COMPLETED live.
    let echo = server
        .client
        .submit(NewTask::new("diag.echo").name("from-grpc"))
        .await
        .unwrap();
    let status = browser
        .wait_for(
            &format!(
                "document.querySelector('#recentTasks tr[data-task-id=\"{}\"] .status')",
                echo.id
            ),
            &format!(
                "document.querySelector('#recentTasks tr[data-task-id=\"{}\"] .status').textContent",
                echo.id
            ),
        )
        .await;
    assert_eq!(status, "COMPLETED");
    let completed = browser
        .wait_for(
            "document.querySelector('#count-COMPLETED b').textContent === '1'",
            "document.querySelector('#count-COMPLETED b').textContent",
        )
        .await;
    assert_eq!(completed, "1", "counts follow live");

    // Submit from the page: a gated task that runs until cancelled.
    browser.type_into("#taskType", "test.gate").await;
    browser.type_into("#taskName", "from-the-page").await;
    browser.click("#submitButton").await;
    let submitted = browser
        .wait_for(
            "document.getElementById('message').dataset.taskId",
            "document.getElementById('message').dataset.taskId",
        )
        .await;
    let task_id = submitted.as_str().expect("task id").to_string();
    let running = browser
        .wait_for(
            "document.getElementById('detailStatus').textContent === 'RUNNING'",
            "document.getElementById('detailStatus').textContent",
        )
        .await;
    assert_eq!(running, "RUNNING");
    browser
        .wait_for(
            &format!("document.querySelector('#runningTasks tr[data-task-id=\"{task_id}\"]')"),
            "true",
        )
        .await;
    browser
        .wait_for(
            "document.getElementById('resourceNow').textContent.includes('cpu 10%')",
            "true",
        )
        .await;

    // A worker that connects shows up with the types it serves.
    let worker = taskd_client::worker::Worker::new(&server.client)
        .worker_id("page-worker")
        .capacity(2)
        .handle("thumbnails", |_run| async { Ok(serde_json::json!({})) });
    let worker = tokio::spawn(worker.run_until(std::future::pending()));
    let row = browser
        .wait_for(
            "document.querySelector('#workers tr[data-worker-id=\"page-worker\"]')",
            "document.querySelector('#workers tr[data-worker-id=\"page-worker\"]').textContent",
        )
        .await;
    let row = row.as_str().expect("row text");
    assert!(row.contains("thumbnails") && row.contains("0 / 2"), "{row}");

    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifact dir");
    std::fs::write(artifacts.join("dashboard.png"), browser.screenshot().await).expect("screenshot saved");

    // Cancel from the page takes effect.
    browser.click("#cancelButton").await;
    let cancelled = browser
        .wait_for(
            "document.getElementById('detailStatus').textContent === 'CANCELLED'",
            "document.getElementById('detailStatus').textContent",
        )
        .await;
    assert_eq!(cancelled, "CANCELLED");
    assert_eq!(
        server.client.get(&task_id).await.unwrap().status(),
        TaskStatus::Cancelled
    );

    worker.abort();
    let errors = browser.console_errors().await;
    browser.quit().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
