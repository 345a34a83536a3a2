//! `taskctl`'s command line on its own, without a server: what it offers,
//! and how it refuses what it cannot do. (Its commands against a real
//! server are tested in the workspace's service tests, which run this
//! binary; testing it here is also what has `cargo test --workspace` build
//! it.)

use std::process::{Command, Output};

fn taskctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskctl"))
        .args(args)
        .env_remove("TASKD_ADDRESS")
        .output()
        .expect("taskctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_command() {
    let help = taskctl(&["--help"]);
    assert!(help.status.success());
    let help = text(&help.stdout);
    for command in [
        "submit",
        "get",
        "list",
        "cancel",
        "watch",
        "stats",
        "workers",
        "types",
        "forget-type",
        "schedules",
    ] {
        assert!(help.contains(command), "{command} in:\n{help}");
    }
    assert!(help.contains("--json") && help.contains("TASKD_ADDRESS"), "{help}");
}

#[test]
fn bad_arguments_are_refused_before_anything_is_sent() {
    let priority = taskctl(&["submit", "diag.echo", "--priority", "urgent"]);
    assert_eq!(priority.status.code(), Some(2));
    assert!(text(&priority.stderr).contains("low, normal, high, critical"));

    let label = taskctl(&["list", "--label", "team"]);
    assert_eq!(label.status.code(), Some(2));
    assert!(text(&label.stderr).contains("KEY=VALUE"));

    let timeout = taskctl(&["submit", "diag.echo", "--timeout", "soon"]);
    assert_eq!(timeout.status.code(), Some(2));
    assert!(text(&timeout.stderr).contains("--timeout"));
}

#[test]
fn an_unreachable_server_is_named() {
    let stats = taskctl(&["--server", "http://127.0.0.1:1", "stats"]);
    assert_eq!(stats.status.code(), Some(1));
    let said = text(&stats.stderr);
    assert!(said.contains("cannot reach taskd at http://127.0.0.1:1"), "{said}");
    assert_eq!(said.matches("transport error").count(), 1, "each cause once: {said}");
    assert_eq!(said.matches("Connection refused").count(), 1, "each cause once: {said}");
}
