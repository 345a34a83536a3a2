//! The `taskd` command line: every setting is discoverable from `--help`
//! and documented in docs/configuration.md, and its logs read cleanly in a file.

use std::io::Read;
use std::process::{Command, Stdio};

use taskd::config::ServerConfig;

use crate::support::spawn_with;

#[test]
fn serve_help_lists_every_setting_with_its_default() {
    let output = Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args(["serve", "--help"])
        .output()
        .expect("taskd runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (key, value) in ServerConfig::default().settings() {
        assert!(
            help.contains(&format!("  {key} = {value}\n")),
            "{key} = {value} in:\n{help}"
        );
    }
    for flag in ["--shutdown-drain", "--alert-for", "--set <KEY=VALUE>"] {
        assert!(help.contains(flag), "{flag}");
    }
}

#[test]
fn the_configuration_page_documents_every_setting() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md"))
        .expect("docs/configuration.md");
    let missing: Vec<String> = ServerConfig::default()
        .settings()
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| !page.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "settings missing from docs/configuration.md: {missing:?}"
    );
}

#[test]
fn a_bad_setting_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--set", "monitor.alert_for=2h"])
        .output()
        .expect("taskd runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("monitor.alert_for must be at most 1h"), "{stderr}");
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _) = spawn_with(dir.path(), |command| {
        command
            .env("TASKD_LOG", "info")
            .env("TASKD_SET", "monitor.enabled=false")
            .stderr(Stdio::piped())
    });
    let pid = child.id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("reads the logs");
    child.wait().expect("exits");
    assert!(logs.contains("shutdown requested"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in {logs:?}");
}
