//! `taskctl`: taskd from the shell. Submit, inspect, cancel and watch tasks,
//! read the statistics and the connected workers; tables for people,
//! `--json` for scripts (the protobuf JSON mapping, one object per line when
//! watching).

mod render;
mod schedules;

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use taskd_client::proto::{ListTasksRequest, WatchTasksRequest};
use taskd_client::{Client, NewTask, TaskPriority, TaskStatus, is_terminal};

#[derive(Parser)]
#[command(name = "taskctl", version, about = "Command-line client for taskd")]
struct Cli {
    /// The taskd gRPC address.
    #[arg(long, global = true, env = "TASKD_ADDRESS", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Bearer token for a server with authentication.
    #[arg(long, global = true, env = "TASKD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificates to trust for an https:// server.
    #[arg(long, global = true, env = "TASKD_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate for a server that asks for one (mTLS).
    #[arg(long, global = true, env = "TASKD_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<std::path::PathBuf>,
    /// PEM key of --client-cert.
    #[arg(long, global = true, env = "TASKD_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<std::path::PathBuf>,
    /// Print JSON (the protobuf JSON mapping) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Submit a task.
    Submit(SubmitArgs),
    /// Show one task with its attempts.
    Get { task_id: String },
    /// List tasks, newest first.
    List(ListArgs),
    /// Cancel a task (and, through their dependencies, what waits on it).
    Cancel {
        task_id: String,
        #[arg(long, default_value = "cancelled with taskctl")]
        reason: String,
    },
    /// Follow changes live: one task until it finishes, or every task.
    Watch(WatchArgs),
    /// Counts by status and type, the concurrency in force and why.
    Stats,
    /// The connected workers.
    Workers,
    /// The task types taskd knows and who serves them.
    Types,
    /// Forget a task type that workers declared (needs scope admin):
    /// submits of it are refused until a worker declares it again.
    ForgetType { task_type: String },
    /// Schedules: tasks submitted on a clock.
    #[command(subcommand)]
    Schedules(schedules::ScheduleCommand),
}

#[derive(Args)]
struct SubmitArgs {
    /// The task type, e.g. report_generation.
    task_type: String,
    /// Parameters: a JSON object, or @FILE to read one.
    #[arg(long, default_value = "{}")]
    params: String,
    #[arg(long)]
    name: Option<String>,
    /// low, normal, high or critical.
    #[arg(long, value_parser = parse_priority)]
    priority: Option<TaskPriority>,
    /// A task that must complete first (repeatable).
    #[arg(long = "depends-on")]
    depends_on: Vec<String>,
    #[arg(long)]
    max_retries: Option<u32>,
    /// Per-attempt timeout, e.g. 30s or 5m.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Start no sooner than this long from now, e.g. 10m.
    #[arg(long, value_parser = humantime::parse_duration)]
    delay: Option<Duration>,
    /// A label KEY=VALUE (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Wait until the task finishes and print it then; the exit code says
    /// whether it completed.
    #[arg(long)]
    wait: bool,
}

#[derive(Args)]
struct ListArgs {
    /// Only these statuses (repeatable), e.g. --status running.
    #[arg(long = "status", value_parser = parse_status)]
    statuses: Vec<TaskStatus>,
    /// Only these types (repeatable).
    #[arg(long = "type")]
    task_types: Vec<String>,
    /// Only tasks with this label KEY=VALUE (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// The most tasks to show.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Args)]
struct WatchArgs {
    /// The task to follow until it finishes; every task when left out.
    task_id: Option<String>,
    /// With no task id: only these types (repeatable).
    #[arg(long = "type")]
    task_types: Vec<String>,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("taskctl: {error:#}");
            std::process::exit(1);
        }
    }
}

/// Runs the command; the exit code: 0, or 2 when a waited-for task did not
/// complete.
async fn run(cli: Cli) -> Result<i32> {
    let options = taskd_client::ConnectOptions {
        token: cli.token.clone(),
        ca_file: cli.ca_file.clone(),
        client_cert_file: cli.client_cert.clone(),
        client_key_file: cli.client_key.clone(),
        server_name: None,
    };
    let client = Client::connect_with(cli.server.clone(), &options)
        .await
        .with_context(|| format!("cannot reach taskd at {}", cli.server))?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::Submit(args) => return submit(&client, &out, args).await,
        Command::Get { task_id } => out.task(&client.get(&task_id).await?)?,
        Command::List(args) => list(&client, &out, args).await?,
        Command::Cancel { task_id, reason } => out.task(&client.cancel(&task_id, &reason).await?)?,
        Command::Watch(args) => watch(&client, &out, args).await?,
        Command::Stats => out.stats(&client.stats().await?)?,
        Command::Workers => out.workers(&client.workers().await?)?,
        Command::Types => out.task_types(&client.task_types().await?)?,
        Command::ForgetType { task_type } => {
            client.delete_task_type(&task_type).await?;
            if !out.json {
                println!("forgot task type {task_type}");
            }
        }
        Command::Schedules(command) => schedules::run(&client, &out, command).await?,
    }
    Ok(0)
}

async fn submit(client: &Client, out: &Output, args: SubmitArgs) -> Result<i32> {
    let params = read_params(&args.params)?;
    let mut task = NewTask::new(args.task_type).params(params);
    if let Some(name) = args.name {
        task = task.name(name);
    }
    if let Some(priority) = args.priority {
        task = task.priority(priority);
    }
    for upstream in args.depends_on {
        task = task.depends_on(upstream);
    }
    if let Some(retries) = args.max_retries {
        task = task.max_retries(retries);
    }
    if let Some(timeout) = args.timeout {
        task = task.timeout(timeout);
    }
    if let Some(delay) = args.delay {
        task = task.run_at(SystemTime::now() + delay);
    }
    for (key, value) in args.labels {
        task = task.label(key, value);
    }
    if let Some(key) = args.idempotency_key {
        task = task.idempotency_key(key);
    }
    let submitted = client.submit(task).await?;
    if !args.wait {
        out.task(&submitted)?;
        return Ok(0);
    }
    let finished = client.wait(&submitted.id).await?;
    out.task(&finished)?;
    Ok(if finished.status() == TaskStatus::Completed {
        0
    } else {
        2
    })
}

async fn list(client: &Client, out: &Output, args: ListArgs) -> Result<()> {
    let mut request = ListTasksRequest {
        statuses: args.statuses.iter().map(|status| *status as i32).collect(),
        task_types: args.task_types,
        labels: args.labels.into_iter().collect(),
        page_size: args.limit.clamp(1, 1000) as i32,
        ..ListTasksRequest::default()
    };
    let mut tasks = Vec::new();
    loop {
        let page = client.list(request.clone()).await?;
        tasks.extend(page.tasks);
        if tasks.len() >= args.limit || page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    tasks.truncate(args.limit);
    out.tasks(&tasks)
}

async fn watch(client: &Client, out: &Output, args: WatchArgs) -> Result<()> {
    let mut events = match &args.task_id {
        Some(task_id) => client.watch(task_id).await?.boxed(),
        None => client
            .watch_all(WatchTasksRequest {
                task_types: args.task_types,
                ..WatchTasksRequest::default()
            })
            .await?
            .boxed(),
    };
    while let Some(event) = events.next().await {
        let event = event?;
        out.event(&event)?;
        let finished = event.task.as_ref().is_some_and(|task| is_terminal(task.status()));
        if args.task_id.is_some() && finished {
            break;
        }
    }
    Ok(())
}

/// `--params`: inline JSON or `@file`; it must be an object.
pub(crate) fn read_params(text: &str) -> Result<serde_json::Value> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("--params: cannot read {path}"))?,
        None => text.to_string(),
    };
    let params: serde_json::Value = serde_json::from_str(&text).context("--params: not valid JSON")?;
    if !params.is_object() {
        bail!("--params: must be a JSON object, like '{{\"key\": \"value\"}}'");
    }
    Ok(params)
}

fn parse_status(text: &str) -> Result<TaskStatus, String> {
    TaskStatus::from_str_name(&text.to_ascii_uppercase())
        .filter(|status| *status != TaskStatus::Unspecified)
        .ok_or_else(|| "expected one of pending, scheduled, running, completed, failed, cancelled, waiting".to_string())
}

pub(crate) fn parse_priority(text: &str) -> Result<TaskPriority, String> {
    TaskPriority::from_str_name(&text.to_ascii_uppercase())
        .filter(|priority| *priority != TaskPriority::Unspecified)
        .ok_or_else(|| "expected one of low, normal, high, critical".to_string())
}

pub(crate) fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err("expected KEY=VALUE".to_string()),
    }
}

/// Where results go: tables or JSON on stdout.
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    pub(crate) fn emit(&self, value: &impl serde::Serialize, table: impl FnOnce() -> String) -> Result<()> {
        let text = if self.json {
            let mut value = serde_json::to_value(value)?;
            taskd_client::json::whole_numbers_as_integers(&mut value);
            value.to_string()
        } else {
            table()
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", text.trim_end())?;
        // Watching pipes into other programs: each line as it happens.
        stdout.flush()?;
        Ok(())
    }

    pub(crate) fn task(&self, task: &taskd_client::Task) -> Result<()> {
        self.emit(task, || render::task(task))
    }

    fn tasks(&self, tasks: &[taskd_client::Task]) -> Result<()> {
        self.emit(&tasks, || render::tasks(tasks))
    }

    fn event(&self, event: &taskd_client::TaskEvent) -> Result<()> {
        self.emit(event, || render::event(event))
    }

    fn stats(&self, stats: &taskd_client::TaskStats) -> Result<()> {
        self.emit(stats, || render::stats(stats))
    }

    fn workers(&self, workers: &[taskd_client::proto::Worker]) -> Result<()> {
        self.emit(&workers, || render::workers(workers))
    }

    fn task_types(&self, types: &[taskd_client::proto::TaskTypeInfo]) -> Result<()> {
        self.emit(&types, || render::task_types(types))
    }
}
