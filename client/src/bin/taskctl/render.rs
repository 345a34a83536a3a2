//! The tables and detail views `taskctl` prints for people.

use std::fmt::Write;

use taskd_client::proto::{Worker, attempt, task_event};
use taskd_client::{Task, TaskEvent, TaskStats, TaskStatus, json, system_time};

/// Columns aligned on the widest cell, two spaces apart.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[&str]) -> Self {
        Table {
            rows: vec![headers.iter().map(|header| header.to_string()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|column| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(column))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                if column + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ", width = widths[column]);
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

fn time(timestamp: Option<&pbjson_types::Timestamp>) -> String {
    timestamp.map_or_else(
        || "-".to_string(),
        |timestamp| humantime::format_rfc3339_millis(system_time(timestamp)).to_string(),
    )
}

fn status_name(status: TaskStatus) -> String {
    status.as_str_name().to_ascii_lowercase()
}

fn progress(task: &Task) -> String {
    match &task.progress {
        Some(progress) if progress.message.is_empty() => format!("{:.0}%", progress.percent),
        Some(progress) => format!("{:.0}% {}", progress.percent, progress.message),
        None => String::new(),
    }
}

fn shorten(text: &str, most: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= most && line.len() == text.len() {
        return line.to_string();
    }
    let kept: String = line.chars().take(most.saturating_sub(3)).collect();
    format!("{kept}...")
}

/// One task in detail, with its attempts.
pub fn task(task: &Task) -> String {
    let mut text = String::new();
    let mut field = |name: &str, value: String| {
        if !value.is_empty() {
            let _ = writeln!(text, "{:<14}{value}", format!("{name}:"));
        }
    };
    field("id", task.id.clone());
    field("name", task.name.clone());
    field("type", task.task_type.clone());
    field("status", status_name(task.status()));
    field("reason", task.status_reason.clone());
    field("priority", task.priority().as_str_name().to_ascii_lowercase());
    field("retries", format!("{} of {}", task.retry_count, task.max_retries));
    field("created", time(task.created_at.as_ref()));
    field(
        "run at",
        task.run_at.as_ref().map(|at| time(Some(at))).unwrap_or_default(),
    );
    field(
        "started",
        task.started_at.as_ref().map(|at| time(Some(at))).unwrap_or_default(),
    );
    field(
        "finished",
        task.completed_at.as_ref().map(|at| time(Some(at))).unwrap_or_default(),
    );
    field("progress", progress(task));
    let mut labels: Vec<String> = task
        .labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    labels.sort();
    field("labels", labels.join(", "));
    let upstream: Vec<String> = task
        .dependencies
        .iter()
        .map(|dependency| format!("{} ({})", dependency.task_id, status_name(dependency.required_status())))
        .collect();
    field("depends on", upstream.join(", "));
    if let Some(params) = &task.params {
        field(
            "params",
            json::struct_to_json(params)
                .map(|params| serde_json::Value::Object(params).to_string())
                .unwrap_or_default(),
        );
    }
    if let Some(result) = &task.result {
        field(
            "result",
            json::value_to_json(result)
                .map(|result| result.to_string())
                .unwrap_or_default(),
        );
    }
    field("error", task.error.clone());
    if !task.attempts.is_empty() {
        let mut attempts = Table::new(&["ATTEMPT", "OUTCOME", "WORKER", "STARTED", "FINISHED", "ERROR"]);
        for attempt in &task.attempts {
            let outcome = match attempt.outcome() {
                attempt::Outcome::Unspecified => "running".to_string(),
                outcome => outcome.as_str_name().to_ascii_lowercase(),
            };
            attempts.row(vec![
                attempt.number.to_string(),
                outcome,
                attempt.worker.clone(),
                time(attempt.started_at.as_ref()),
                attempt
                    .finished_at
                    .as_ref()
                    .map(|at| time(Some(at)))
                    .unwrap_or_default(),
                shorten(&attempt.error, 60),
            ]);
        }
        text.push('\n');
        text.push_str(&attempts.render());
    }
    text
}

/// Tasks, one line each.
pub fn tasks(tasks: &[Task]) -> String {
    if tasks.is_empty() {
        return "no tasks".to_string();
    }
    let mut table = Table::new(&["ID", "TYPE", "STATUS", "PRIORITY", "CREATED", "PROGRESS", "NAME"]);
    for task in tasks {
        table.row(vec![
            task.id.clone(),
            task.task_type.clone(),
            status_name(task.status()),
            task.priority().as_str_name().to_ascii_lowercase(),
            time(task.created_at.as_ref()),
            progress(task),
            task.name.clone(),
        ]);
    }
    table.render()
}

/// A watch event, one line.
pub fn event(event: &TaskEvent) -> String {
    let Some(task) = &event.task else {
        // LAGGED carries no task: the watcher fell behind.
        return format!(
            "{}  fell behind: {} events missed",
            time(event.time.as_ref()),
            event.missed
        );
    };
    let what = match event.kind() {
        task_event::Kind::Snapshot => format!("is {}", status_name(task.status())),
        task_event::Kind::Submitted => format!("submitted, {}", status_name(task.status())),
        task_event::Kind::StatusChanged => format!(
            "{} -> {}",
            status_name(event.previous_status()),
            status_name(task.status())
        ),
        task_event::Kind::Progress => format!("progress {}", progress(task)),
        task_event::Kind::Lagged => format!("is {} (after falling behind)", status_name(task.status())),
        task_event::Kind::Unspecified => status_name(task.status()),
    };
    let mut line = format!(
        "{}  {}  {:<22} {what}",
        time(event.time.as_ref()),
        task.id,
        task.task_type
    );
    if is_failure(task) && !task.error.is_empty() {
        let _ = write!(line, ": {}", shorten(&task.error, 80));
    }
    if event.missed > 0 {
        let _ = write!(line, "  ({} events missed)", event.missed);
    }
    line
}

fn is_failure(task: &Task) -> bool {
    matches!(task.status(), TaskStatus::Failed | TaskStatus::Cancelled)
}

/// Counts by status and type, and the concurrency in force.
pub fn stats(stats: &TaskStats) -> String {
    let mut text = String::new();
    let counts = stats.counts.unwrap_or_default();
    let _ = writeln!(
        text,
        "tasks: {} total: {} pending, {} scheduled, {} waiting, {} running, {} completed, {} failed, {} cancelled",
        counts.total,
        counts.pending,
        counts.scheduled,
        counts.waiting,
        counts.running,
        counts.completed,
        counts.failed,
        counts.cancelled
    );
    let _ = writeln!(
        text,
        "concurrency: {} of {} ({})",
        stats.effective_concurrency_limit, stats.max_concurrent_tasks, stats.concurrency_limit_reason
    );
    let _ = writeln!(
        text,
        "since start: {} submitted, {} failed attempts, {} retries, success rate {}",
        stats.submitted_since_start,
        stats.failed_attempts_since_start,
        stats.retries_since_start,
        match stats.success_rate {
            Some(rate) => format!("{:.1}%", rate * 100.0),
            None => "- (nothing ended yet)".to_string(),
        }
    );
    if !stats.unserved_task_types.is_empty() {
        let _ = writeln!(
            text,
            "waiting with nothing to run them: {}",
            stats.unserved_task_types.join(", ")
        );
    }
    if !stats.by_type.is_empty() {
        let mut table = Table::new(&[
            "TYPE",
            "PENDING",
            "RUNNING",
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "WORKERS",
            "SERVED",
        ]);
        for by_type in &stats.by_type {
            let counts = by_type.counts.unwrap_or_default();
            table.row(vec![
                by_type.task_type.clone(),
                (counts.pending + counts.scheduled + counts.waiting).to_string(),
                counts.running.to_string(),
                counts.completed.to_string(),
                counts.failed.to_string(),
                counts.cancelled.to_string(),
                by_type.workers.to_string(),
                if by_type.handler_available { "yes" } else { "no" }.to_string(),
            ]);
        }
        text.push('\n');
        text.push_str(&table.render());
    }
    text
}

/// The connected workers.
pub fn workers(workers: &[Worker]) -> String {
    if workers.is_empty() {
        return "no workers connected".to_string();
    }
    let mut table = Table::new(&["WORKER", "HELD", "CAPACITY", "FINISHED", "STATE", "LAST SEEN", "TYPES"]);
    for worker in workers {
        table.row(vec![
            worker.worker_id.clone(),
            worker.held.to_string(),
            worker.capacity.to_string(),
            worker.finished.to_string(),
            if worker.draining { "draining" } else { "serving" }.to_string(),
            time(worker.last_seen.as_ref()),
            worker.task_types.join(", "),
        ]);
    }
    table.render()
}

/// The known task types.
pub fn task_types(types: &[taskd_client::proto::TaskTypeInfo]) -> String {
    let mut table = Table::new(&["TYPE", "SERVED", "WORKERS"]);
    for info in types {
        table.row(vec![
            info.task_type.clone(),
            if info.handler_available { "yes" } else { "no" }.to_string(),
            info.workers.to_string(),
        ]);
    }
    table.render()
}

/// A schedule's spec in one line.
fn spec_line(schedule: &taskd_client::proto::Schedule) -> String {
    use taskd_client::proto::schedule_spec::Kind;
    let spec = schedule
        .definition
        .as_ref()
        .and_then(|definition| definition.spec.as_ref());
    match spec.and_then(|spec| spec.kind.as_ref()) {
        Some(Kind::Cron(cron)) if cron.time_zone.is_empty() => format!("cron {} (UTC)", cron.expression),
        Some(Kind::Cron(cron)) => format!("cron {} ({})", cron.expression, cron.time_zone),
        Some(Kind::Interval(interval)) => {
            let every = interval.every.as_ref().map_or(0, |every| every.seconds);
            format!(
                "every {}",
                humantime::format_duration(std::time::Duration::from_secs(every as u64))
            )
        }
        None => "-".to_string(),
    }
}

/// Every schedule, a row each.
pub fn schedules(schedules: &[taskd_client::proto::Schedule]) -> String {
    if schedules.is_empty() {
        return "no schedules".to_string();
    }
    let mut table = Table::new(&[
        "SCHEDULE",
        "TYPE",
        "SPEC",
        "NEXT FIRE",
        "STATE",
        "LAST RESULT",
        "FIRES",
        "SKIPPED",
    ]);
    for schedule in schedules {
        let definition = schedule.definition.clone().unwrap_or_default();
        table.row(vec![
            definition.name.clone(),
            definition
                .template
                .map(|template| template.task_type)
                .unwrap_or_default(),
            spec_line(schedule),
            time(schedule.next_fire_times.first()),
            if schedule.paused { "paused" } else { "active" }.to_string(),
            schedule.recent_fires.first().map_or("-".to_string(), fire_outcome),
            schedule.fires.to_string(),
            (schedule.skipped_overlap + schedule.skipped_late).to_string(),
        ]);
    }
    table.render()
}

/// One schedule: what it is, what comes, what it did.
pub fn schedule(schedule: &taskd_client::proto::Schedule) -> String {
    let definition = schedule.definition.clone().unwrap_or_default();
    let mut text = format!(
        "schedule {}\n  submits   {}\n  spec      {}\n  state     {}\n  fires     {} (skipped: {} overlapping, {} late)\n",
        definition.name,
        definition
            .template
            .map(|template| template.task_type)
            .unwrap_or_default(),
        spec_line(schedule),
        if schedule.paused {
            format!("paused: {}", schedule.pause_note)
        } else {
            "active".to_string()
        },
        schedule.fires,
        schedule.skipped_overlap,
        schedule.skipped_late,
    );
    if !schedule.next_fire_times.is_empty() {
        text.push_str("  next      ");
        let next: Vec<String> = schedule.next_fire_times.iter().map(|at| time(Some(at))).collect();
        text.push_str(&next.join(", "));
        text.push('\n');
    }
    for fire in &schedule.recent_fires {
        text.push_str(&format!(
            "  fired     {}  task {}  {}\n",
            time(fire.nominal_time.as_ref()),
            fire.task_id,
            fire_outcome(fire)
        ));
    }
    text
}

/// How a fire went: its task's status, or `-` when not known.
fn fire_outcome(fire: &taskd_client::proto::ScheduleFire) -> String {
    match fire.status() {
        taskd_client::TaskStatus::Unspecified => "-".to_string(),
        status => status.as_str_name().to_string(),
    }
}
