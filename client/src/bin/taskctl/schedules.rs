//! `taskctl schedules ...`: create, read, change and run schedules.

use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use taskd_client::proto::{self, schedule_spec};
use taskd_client::{Client, TaskPriority};

use crate::{Output, parse_label, parse_priority, read_params, render};

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Every schedule: its spec, next fire and what it did.
    List,
    /// One schedule, with its next fires and recent fires.
    Get { name: String },
    /// Create a schedule submitting TASK_TYPE on a cron spec or an interval.
    Create(ScheduleArgs),
    /// Replace what a schedule does (the options of create, all of them:
    /// what is left out takes its default); what it did stays.
    Update(ScheduleArgs),
    /// Pause a schedule; fires that come meanwhile are missed.
    Pause {
        name: String,
        /// Why; shown with the schedule.
        #[arg(long, default_value = "paused with taskctl")]
        note: String,
    },
    /// Resume a paused schedule.
    Resume { name: String },
    /// Fire a schedule now.
    Trigger { name: String },
    /// Fire a schedule at every time its spec names after --from up to
    /// --to (at most 1000 fires); each fire once, however often asked.
    Backfill {
        name: String,
        /// Start of the range (exclusive), RFC 3339: 2030-01-01T00:00:00Z.
        #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
        from: SystemTime,
        /// End of the range (inclusive), RFC 3339.
        #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
        to: SystemTime,
    },
    /// Delete a schedule (the tasks it submitted stay).
    Delete { name: String },
}

#[derive(Args)]
pub struct ScheduleArgs {
    name: String,
    /// The task type each fire submits.
    task_type: String,
    /// A cron expression, e.g. "30 2 * * *".
    #[arg(long, conflicts_with = "every", required_unless_present = "every")]
    cron: Option<String>,
    /// The cron expression's IANA time zone, e.g. Europe/Paris (default UTC).
    #[arg(long, requires = "cron")]
    time_zone: Option<String>,
    /// A fixed interval, e.g. 15m.
    #[arg(long, value_parser = humantime::parse_duration)]
    every: Option<Duration>,
    /// With --every: fire this far past each multiple of the interval.
    #[arg(long, requires = "every", value_parser = humantime::parse_duration)]
    offset: Option<Duration>,
    /// Start each fire's task up to this much late, spread by name.
    #[arg(long, value_parser = humantime::parse_duration)]
    jitter: Option<Duration>,
    /// Parameters of each fire's task: a JSON object, or @FILE.
    #[arg(long, default_value = "{}")]
    params: String,
    /// low, normal, high or critical.
    #[arg(long, value_parser = parse_priority)]
    priority: Option<TaskPriority>,
    /// A label KEY=VALUE of each fire's task (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    #[arg(long)]
    max_retries: Option<u32>,
    /// Per-attempt timeout of each fire's task, e.g. 30m.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// skip (default), buffer-one, allow-all or cancel-running.
    #[arg(long, value_parser = parse_overlap)]
    overlap: Option<proto::OverlapPolicy>,
    /// Fires missed (down, paused) at most this long ago still run.
    #[arg(long, value_parser = humantime::parse_duration)]
    catch_up_window: Option<Duration>,
    /// Of the missed fires, run only the latest.
    #[arg(long)]
    latest_only: bool,
    /// No fire before this time (RFC 3339).
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    start: Option<SystemTime>,
    /// No fire after this time (RFC 3339).
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    end: Option<SystemTime>,
    /// No more fires once this many have run.
    #[arg(long)]
    max_fires: Option<u64>,
}

pub async fn run(client: &Client, out: &Output, command: ScheduleCommand) -> Result<()> {
    match command {
        ScheduleCommand::List => {
            let schedules = client.schedules().await?;
            out.emit(&schedules, || render::schedules(&schedules))?;
        }
        ScheduleCommand::Get { name } => {
            let schedule = client.get_schedule(&name).await?;
            out.emit(&schedule, || render::schedule(&schedule))?;
        }
        ScheduleCommand::Create(args) => {
            let schedule = client.create_schedule(definition(args)?).await?;
            out.emit(&schedule, || render::schedule(&schedule))?;
        }
        ScheduleCommand::Update(args) => {
            let schedule = client.update_schedule(definition(args)?).await?;
            out.emit(&schedule, || render::schedule(&schedule))?;
        }
        ScheduleCommand::Pause { name, note } => {
            let schedule = client.pause_schedule(&name, &note).await?;
            out.emit(&schedule, || render::schedule(&schedule))?;
        }
        ScheduleCommand::Resume { name } => {
            let schedule = client.resume_schedule(&name).await?;
            out.emit(&schedule, || render::schedule(&schedule))?;
        }
        ScheduleCommand::Trigger { name } => out.task(&client.trigger_schedule(&name).await?)?,
        ScheduleCommand::Backfill { name, from, to } => {
            let tasks = client.backfill_schedule(&name, from, to).await?;
            out.emit(&tasks, || render::tasks(&tasks))?;
        }
        ScheduleCommand::Delete { name } => {
            client.delete_schedule(&name).await?;
            if !out.json {
                println!("deleted schedule {name}");
            }
        }
    }
    Ok(())
}

fn duration(value: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: value.as_secs() as i64,
        nanos: value.subsec_nanos() as i32,
    }
}

fn timestamp(value: SystemTime) -> pbjson_types::Timestamp {
    let since_epoch = value.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    pbjson_types::Timestamp {
        seconds: since_epoch.as_secs() as i64,
        nanos: since_epoch.subsec_nanos() as i32,
    }
}

/// The definition the options describe.
fn definition(args: ScheduleArgs) -> Result<proto::ScheduleDefinition> {
    let kind = match (args.cron, args.every) {
        (Some(expression), _) => schedule_spec::Kind::Cron(proto::CronSpec {
            expression,
            time_zone: args.time_zone.unwrap_or_default(),
        }),
        (None, Some(every)) => schedule_spec::Kind::Interval(proto::IntervalSpec {
            every: Some(duration(every)),
            offset: args.offset.map(duration),
        }),
        (None, None) => bail!("--cron or --every: say when the schedule fires"),
    };
    let params = match read_params(&args.params)? {
        serde_json::Value::Object(map) => taskd_client::json::json_to_struct(&map),
        _ => bail!("--params: must be a JSON object"),
    };
    Ok(proto::ScheduleDefinition {
        name: args.name,
        spec: Some(proto::ScheduleSpec {
            kind: Some(kind),
            jitter: args.jitter.map(duration),
        }),
        template: Some(proto::TaskTemplate {
            task_type: args.task_type,
            params: Some(params),
            priority: args.priority.unwrap_or(TaskPriority::Unspecified) as i32,
            labels: args.labels.into_iter().collect(),
            max_retries: args.max_retries,
            timeout: args.timeout.map(duration),
            retry_policy: None,
        }),
        overlap: args.overlap.unwrap_or(proto::OverlapPolicy::Skip) as i32,
        catch_up: Some(proto::CatchUpPolicy {
            window: args.catch_up_window.map(duration),
            latest_only: args.latest_only,
        }),
        start_time: args.start.map(timestamp),
        end_time: args.end.map(timestamp),
        max_fires: args.max_fires,
    })
}

fn parse_overlap(text: &str) -> Result<proto::OverlapPolicy, String> {
    use proto::OverlapPolicy;
    match text {
        "skip" => Ok(OverlapPolicy::Skip),
        "buffer-one" => Ok(OverlapPolicy::BufferOne),
        "allow-all" => Ok(OverlapPolicy::AllowAll),
        "cancel-running" => Ok(OverlapPolicy::CancelRunning),
        other => Err(format!("{other:?}: one of skip, buffer-one, allow-all, cancel-running")),
    }
}
