//! One taskd owns a data dir: a second one is refused, with a message that
//! says why, and the dir is free again once the first is gone, however it
//! went.

use std::process::Command;

use crate::support::spawn_taskd;

fn second_serve(data_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("TASKD_LOG", "warn")
        .output()
        .expect("taskd runs")
}

#[test]
fn a_second_taskd_on_the_same_data_dir_is_refused_and_names_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, _) = spawn_taskd(dir.path());

    let second = second_serve(dir.path());
    assert!(!second.status.success(), "the second taskd must not serve");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("is in use by another process (pid {})", first.id())),
        "{stderr}"
    );
    assert!(stderr.contains("one taskd owns a data dir at a time"), "{stderr}");

    // Killed, not stopped: the lock dies with the process.
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let (mut next, _) = spawn_taskd(dir.path());
    next.kill().expect("SIGKILL");
    let _ = next.wait();
}
