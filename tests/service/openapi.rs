//! schemathesis (from PyPI, installed by scripts/setup-test-tools.sh) against
//! the served OpenAPI document: for a bounded number of generated requests
//! per operation, no response is a 5xx or contradicts the document.

use std::path::PathBuf;
use std::process::Command;

use crate::support::TestServer;

fn schemathesis_path() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/schemathesis"));
    assert!(
        path.exists(),
        "schemathesis not found at {}; run scripts/setup-test-tools.sh",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_requests_never_get_a_5xx_or_a_response_the_document_does_not_describe() {
    let server = TestServer::start().await;
    let document = format!(
        "http://{}/api/v1/openapi.json",
        server.server.as_ref().expect("running").local_addr()
    );
    // schemathesis keeps a cache in its working directory: a temporary one,
    // so that running the tests leaves nothing in the checkout.
    let workdir = tempfile::tempdir().expect("temp dir");
    let output = tokio::task::block_in_place(|| {
        // `timeout` bounds the run; schemathesis's own --max-time would
        // instead keep fuzzing until the budget is spent.
        Command::new("timeout")
            .arg("300")
            .arg(schemathesis_path())
            .args(["run", &document])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                "15",
                "--seed",
                "20261128",
                // Event streams stay open by design, and a run waits for its
                // task (up to the wait it is given); their status and first
                // event, and runs, are covered by the REST tests.
                "--exclude-path-regex",
                "(events|tasks/run)$",
            ])
            .env("NO_COLOR", "1")
            .current_dir(workdir.path())
            .output()
            .expect("schemathesis runs")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
