// The dashboard: pages by URL hash (#/, #/tasks, #/tasks/<id>, #/schedules,
// #/schedules/<name>, #/workers, #/alerts), read from the REST bridge and kept live by its event streams.
"use strict";

const $ = id => document.getElementById(id);
const STATUSES = ["PENDING", "SCHEDULED", "WAITING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"];
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
const PAGE_SIZE = 25;
const GRAPH_LIMIT = 80;

const view = {
  page: null,
  taskId: null,
  task: null,
  graph: null,          // {nodes: Map(id -> task), edges: [[from, to]]}
  tasksQuery: "",
  pageTokens: [""],
  pageIndex: 0,
  thresholds: null,
  historyInterval: 5,
  streams: {tasks: false, system: false},
};

// ---- Access --------------------------------------------------------------
// A server with tokens answers 401 without one: the page asks once and keeps
// the token in this tab's session (gone when the tab closes).

const TOKEN_KEY = "taskd.token";
let tokenAsked = null;

function withToken(options) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = new Headers((options && options.headers) || {});
  if (token) headers.set("authorization", "Bearer " + token);
  return {...(options || {}), headers};
}

// One dialog at a time, however many requests were refused.
function askToken(message) {
  if (tokenAsked) return tokenAsked;
  tokenAsked = new Promise(resolve => {
    const dialog = $("tokenDialog");
    $("tokenMessage").textContent = message;
    $("tokenInput").value = "";
    dialog.hidden = false;
    $("tokenInput").focus();
    $("tokenForm").onsubmit = event => {
      event.preventDefault();
      const token = $("tokenInput").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      dialog.hidden = true;
      tokenAsked = null;
      resolve();
    };
  });
  return tokenAsked;
}

// fetch with the token; on 401, ask for one and try again.
async function authorizedFetch(path, options) {
  for (;;) {
    const response = await fetch(path, withToken(options));
    if (response.status !== 401) return response;
    const hadToken = sessionStorage.getItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    await askToken(hadToken ? "That token was not accepted; enter another." : "This taskd needs a token.");
  }
}

async function api(path, options) {
  const response = await authorizedFetch(path, options);
  const text = await response.text();
  const body = text ? JSON.parse(text) : {};
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

// Server-Sent Events over fetch: EventSource cannot send a token. Calls
// handlers[event](data); reconnects a second after the stream ends.
function eventStream(path, handlers, onState) {
  const run = async () => {
    try {
      const response = await authorizedFetch(path, {headers: {accept: "text/event-stream"}});
      if (!response.ok) throw new Error(response.statusText);
      onState(true);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let kind = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (handlers[kind]) handlers[kind](data);
        }
      }
    } catch (e) { /* reconnect below */ }
    onState(false);
    setTimeout(run, 1000);
  };
  run();
}

function cell(value, className) {
  const td = document.createElement("td");
  if (value instanceof Node) td.append(value); else td.textContent = value === undefined || value === null ? "" : value;
  if (className) td.className = className;
  return td;
}

function emptyRow(body, message, columns) {
  const tr = document.createElement("tr");
  const td = cell(message, "muted");
  td.colSpan = columns;
  tr.append(td);
  body.append(tr);
}

function shortId(id) { return id ? id.slice(0, 8) + "…" + id.slice(-4) : ""; }
function taskLink(task) {
  const a = document.createElement("a");
  a.href = "#/tasks/" + task.id;
  a.textContent = (task.name && task.name !== task.task_type ? task.name + " " : "") + shortId(task.id);
  return a;
}
// Every time on the dashboard is UTC, as the API writes it: 2026-12-04 19:12:37 UTC.
function time(value) { return value ? new Date(value).toISOString().slice(0, 19).replace("T", " ") + " UTC" : ""; }
function clock(value) { return value ? new Date(value).toISOString().slice(11, 19) : ""; }
function millisBetween(a, b) { return Date.parse(b) - Date.parse(a); }
function duration(ms) {
  if (!(ms >= 0)) return "";
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  return Math.floor(ms / 60000) + " min " + Math.round(ms % 60000 / 1000) + " s";
}
function progressBar(percent) {
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("div");
  fill.style.width = Math.max(0, Math.min(100, percent || 0)) + "%";
  bar.append(fill);
  return bar;
}
function statusCell(status) { return cell(status, "status " + status); }

// ---- Routing ----------------------------------------------------------

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "tasks" && parts[1]) return {page: "task", id: decodeURIComponent(parts[1]), query: ""};
  if (parts[0] === "tasks") return {page: "tasks", query: query || ""};
  if (parts[0] === "schedules") return {page: "schedules", name: parts[1] ? decodeURIComponent(parts[1]) : null};
  if (parts[0] === "workers") return {page: "workers"};
  if (parts[0] === "alerts") return {page: "alerts"};
  return {page: "overview"};
}

function route() {
  const target = parseHash();
  view.page = target.page;
  for (const section of document.querySelectorAll("main.page")) section.hidden = section.id !== "page-" + target.page;
  for (const link of document.querySelectorAll("nav a")) {
    const active = link.dataset.page === target.page || (target.page === "task" && link.dataset.page === "tasks");
    link.classList.toggle("active", active);
  }
  if (target.page === "overview") { refreshOverview(); refreshCharts(); }
  if (target.page === "tasks") openTasks(target.query);
  if (target.page === "task") openTask(target.id);
  if (target.page === "schedules") SchedulesPage.open(target.name);
  if (target.page === "workers") refreshWorkers();
  if (target.page === "alerts") refreshAlerts();
}

// ---- Overview ----------------------------------------------------------

function renderCounts(stats) {
  const counts = stats.counts || {};
  const box = $("counts");
  box.replaceChildren();
  for (const status of STATUSES.concat(["total"])) {
    const card = document.createElement("a");
    card.className = "count";
    card.id = "count-" + status;
    card.href = status === "total" ? "#/tasks" : "#/tasks?status=" + status;
    const value = document.createElement("b");
    value.className = status === "total" ? "" : status;
    value.textContent = counts[status.toLowerCase()] ?? 0;
    const name = document.createElement("span");
    name.textContent = status;
    card.append(value, name);
    box.append(card);
  }
  $("limit").textContent = stats.effective_concurrency_limit;
  $("maxLimit").textContent = stats.max_concurrent_tasks;
  $("running").textContent = counts.running ?? 0;
  $("limitReason").textContent = stats.concurrency_limit_reason;
  const unserved = stats.unserved_task_types || [];
  $("unserved").textContent = unserved.length ? "waiting with no worker: " + unserved.join(", ") : "";
}

function renderRunning(tasks) {
  const body = $("runningTasks");
  body.replaceChildren();
  if (!tasks.length) emptyRow(body, "none", 4);
  for (const task of tasks) {
    const tr = document.createElement("tr");
    tr.dataset.taskId = task.id;
    const progress = task.progress || {};
    const bar = progressBar(progress.percent);
    bar.title = (progress.message || "") + " " + Math.round(progress.percent || 0) + "%";
    tr.append(cell(taskLink(task)), cell(task.task_type), cell(bar), cell(task.retry_count + 1));
    body.append(tr);
  }
}

function renderRecent(tasks) {
  const body = $("recentTasks");
  body.replaceChildren();
  if (!tasks.length) emptyRow(body, "none yet", 4);
  for (const task of tasks) {
    const tr = document.createElement("tr");
    tr.dataset.taskId = task.id;
    tr.append(cell(taskLink(task)), cell(task.task_type), statusCell(task.status), cell(task.error, "error"));
    body.append(tr);
  }
}

// Counts, the running table and the recent list come from one round of
// requests and are painted together, so they never disagree on screen.
let overviewPending = null;
async function refreshOverview() {
  try {
    const [stats, running, recent] = await Promise.all([
      api("/api/v1/tasks/stats"),
      api("/api/v1/tasks?status=RUNNING&page_size=50"),
      api("/api/v1/tasks?status=COMPLETED,FAILED,CANCELLED&page_size=10"),
    ]);
    renderCounts(stats);
    renderRunning(running.tasks || []);
    renderRecent(recent.tasks || []);
    markLoaded();
  } catch (e) { setConnection("down", "server unreachable: " + e.message); }
}
function scheduleOverview() {
  if (overviewPending) return;
  overviewPending = setTimeout(() => { overviewPending = null; if (view.page === "overview") refreshOverview(); }, 250);
}

async function refreshCharts() {
  try {
    const [history, load] = await Promise.all([api("/api/v1/system/history"), api("/api/v1/system/load")]);
    view.historyInterval = history.interval_seconds || 5;
    view.thresholds = load.thresholds;
    drawCharts(history.points || [], load);
    renderLoad(load);
  } catch (e) { /* the connection state says so */ }
}

function drawCharts(points, load) {
  const at = p => Date.parse(p.time);
  const series = (name, color, read) => ({name, color, points: points.map(p => [at(p), read(p)])});
  const since = Date.now() - 3600 * 1000;
  const oldest = points.length ? at(points[0]) : Date.now();
  const window = {since: Math.max(since, oldest - view.historyInterval * 1000)};
  Charts.draw($("throughputChart"), [
    series("completed", "#3fb950", p => p.completed_per_second),
    series("failed", "#f85149", p => p.failed_per_second),
    series("submitted", "#58a6ff", p => p.submitted_per_second),
  ], {...window, unit: "/s"});
  Charts.draw($("queueWaitChart"), [
    series("p50", "#a371f7", p => p.queue_wait_p50_seconds),
    series("p95", "#d29922", p => p.queue_wait_p95_seconds),
  ], {...window, format: Charts.formatSeconds, empty: "no task started yet"});
  const thresholds = load.thresholds || {};
  Charts.draw($("resourceChart"), [
    series("cpu", "#58a6ff", p => p.cpu_percent),
    series("memory", "#a371f7", p => p.memory_percent),
    series("disk", "#d29922", p => p.disk_percent),
    series("io wait", "#f85149", p => p.io_wait_percent),
  ], {...window, max: 100, unit: "%", empty: load.monitoring_enabled ? "no sample yet" : "monitoring is off",
      thresholds: [
        {value: thresholds.cpu_percent, color: "#58a6ff"}, {value: thresholds.memory_percent, color: "#a371f7"},
        {value: thresholds.disk_percent, color: "#d29922"}, {value: thresholds.io_wait_percent, color: "#f85149"},
      ].filter(t => t.value)});
  Charts.draw($("queueChart"), [
    series("pending", "#58a6ff", p => p.pending),
    series("running", "#a371f7", p => p.running),
    series("limit", "#8b98a5", p => p.effective_concurrency_limit),
  ], window);
}

function renderLoad(load) {
  const u = load.usage;
  $("resourceNow").textContent = u
    ? `now: cpu ${Math.round(u.cpu_percent)}%, memory ${Math.round(u.memory_percent)}%, disk ${Math.round(u.disk_percent)}%` +
      (u.io_wait_percent !== undefined ? `, io wait ${Math.round(u.io_wait_percent)}%` : "")
    : "";
  $("limit").textContent = load.effective_concurrency_limit;
  $("maxLimit").textContent = load.max_concurrent_tasks;
  $("running").textContent = load.running_tasks;
  $("limitReason").textContent = load.concurrency_limit_reason;
}

// ---- Tasks explorer ----------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function filtersFromForm() {
  const params = new URLSearchParams();
  if ($("filterStatus").value) params.set("status", $("filterStatus").value);
  if ($("filterType").value.trim()) params.set("task_type", $("filterType").value.trim());
  if ($("filterPriority").value) params.set("priority", $("filterPriority").value);
  if ($("filterLabel").value.trim()) params.set("label", $("filterLabel").value.trim());
  if ($("filterAfter").value) params.set("created_after", new Date($("filterAfter").value + ":00Z").toISOString());
  const search = $("search").value.trim();
  if (search && !UUID.test(search)) params.set("name", search);
  return params;
}

function formFromFilters(params) {
  $("filterStatus").value = params.get("status") || "";
  $("filterType").value = params.get("task_type") || "";
  $("filterPriority").value = params.get("priority") || "";
  $("filterLabel").value = params.get("label") || "";
  const after = params.get("created_after");
  $("filterAfter").value = after ? new Date(Date.parse(after)).toISOString().slice(0, 16) : "";
  $("search").value = params.get("name") || "";
}

function openTasks(query) {
  if (query !== view.tasksQuery || view.pageTokens.length === 1) {
    view.tasksQuery = query;
    view.pageTokens = [""];
    view.pageIndex = 0;
  }
  formFromFilters(new URLSearchParams(query));
  loadTasksPage();
}

async function loadTasksPage() {
  const params = new URLSearchParams(view.tasksQuery);
  params.set("page_size", PAGE_SIZE);
  const token = view.pageTokens[view.pageIndex];
  if (token) params.set("page_token", token);
  const body = $("taskTable");
  try {
    const page = await api("/api/v1/tasks?" + params);
    body.replaceChildren();
    const tasks = page.tasks || [];
    if (!tasks.length) emptyRow(body, "no tasks match", 6);
    for (const task of tasks) body.append(taskRow(task));
    view.pageTokens[view.pageIndex + 1] = page.next_page_token || "";
    $("nextPage").disabled = !page.next_page_token;
    $("prevPage").disabled = view.pageIndex === 0;
    $("pageInfo").textContent = `page ${view.pageIndex + 1}` + (tasks.length ? ` · ${tasks.length} tasks` : "");
    markLoaded();
  } catch (e) {
    body.replaceChildren();
    emptyRow(body, e.message, 6);
  }
}

function taskRow(task) {
  const tr = document.createElement("tr");
  tr.dataset.taskId = task.id;
  const progress = task.progress || {};
  tr.append(cell(taskLink(task)), cell(task.task_type), statusCell(task.status), cell(task.priority),
            cell(time(task.created_at)), cell(TERMINAL.has(task.status) ? "" : progressBar(progress.percent)));
  return tr;
}

// Cancels every unfinished task matching the filter, after asking.
async function bulkCancel() {
  const params = new URLSearchParams(view.tasksQuery);
  params.set("page_size", 1000);
  const targets = [];
  let token = "";
  try {
    do {
      if (token) params.set("page_token", token);
      const page = await api("/api/v1/tasks?" + params);
      for (const task of page.tasks || []) if (!TERMINAL.has(task.status)) targets.push(task.id);
      token = page.next_page_token || "";
    } while (token && targets.length < 10000);
  } catch (e) { $("bulkMessage").textContent = e.message; return; }
  if (!targets.length) { $("bulkMessage").textContent = "nothing to cancel: no unfinished task matches"; return; }
  if (!confirm(`Cancel ${targets.length} unfinished task(s) matching this filter?`)) {
    $("bulkMessage").textContent = "nothing cancelled";
    return;
  }
  let cancelled = 0, skipped = 0;
  const queue = targets.slice();
  async function worker() {
    while (queue.length) {
      const id = queue.pop();
      try {
        await api(`/api/v1/tasks/${id}/cancel`, {method: "POST", headers: {"content-type": "application/json"},
                                                body: JSON.stringify({reason: "cancelled from the dashboard"})});
        cancelled++;
      } catch (e) { skipped++; }
      $("bulkMessage").textContent = `cancelling… ${cancelled} of ${targets.length}`;
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()]);
  $("bulkMessage").textContent = `cancelled ${cancelled}` + (skipped ? `; ${skipped} had finished meanwhile` : "");
  loadTasksPage();
}

// ---- Task page ---------------------------------------------------------

async function openTask(id) {
  if (view.taskId !== id) { view.task = null; view.graph = null; $("dag").replaceChildren(); }
  view.taskId = id;
  try {
    const task = await api("/api/v1/tasks/" + encodeURIComponent(id));
    renderTask(task);
    loadGraph(task);
    markLoaded();
  } catch (e) {
    $("taskTitle").textContent = "task " + id;
    $("detailStatus").textContent = "";
    $("detailReason").textContent = e.message;
  }
}

function renderTask(task) {
  if (view.task && view.task.id === task.id && view.task.revision > task.revision) return; // an older copy
  view.task = task;
  // The name, then the type when it says more, then the id's tail.
  const title = $("taskTitle");
  const named = task.name && task.name !== task.task_type;
  const detail = document.createElement("span");
  detail.className = "muted";
  detail.textContent = (named ? task.task_type + " · " : "") + task.id.slice(-6);
  title.replaceChildren(document.createTextNode(named ? task.name : task.task_type), detail);
  const status = $("detailStatus");
  status.textContent = task.status;
  status.className = "status " + task.status;
  $("detailReason").textContent = task.status_reason || "";
  $("cancelButton").hidden = TERMINAL.has(task.status);
  const progress = task.progress || {};
  $("detailProgress").style.width = Math.max(0, Math.min(100, progress.percent || 0)) + "%";
  $("detailProgressMessage").textContent = progress.message ? `${Math.round(progress.percent)}% ${progress.message}` : "";
  const fields = $("detailFields");
  fields.replaceChildren();
  const row = (name, value) => {
    if (value === "" || value === undefined || value === null) return;
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = name;
    tr.append(th, cell(value));
    fields.append(tr);
  };
  row("id", task.id);
  row("priority", task.priority);
  row("retries", `${task.retry_count} of ${task.max_retries}`);
  row("timeout", task.timeout);
  row("created", time(task.created_at));
  row("run at", time(task.run_at));
  row("started", time(task.started_at));
  row("finished", time(task.completed_at));
  row("labels", Object.entries(task.labels || {}).map(([k, v]) => `${k}=${v}`).join(", "));
  row("error", task.error);
  $("detailParams").textContent = JSON.stringify(task.params || {}, null, 2);
  $("detailResult").textContent = task.result === undefined || task.result === null ? "–" : JSON.stringify(task.result, null, 2);

  const attempts = $("attempts");
  attempts.replaceChildren();
  if (!(task.attempts || []).length) emptyRow(attempts, "not started yet", 7);
  for (const attempt of task.attempts || []) {
    const tr = document.createElement("tr");
    const outcome = attempt.outcome ?? "running";
    const machine = m => m ? `cpu ${Math.round(m.cpu_percent)}% mem ${Math.round(m.memory_percent)}%` +
      (m.throttled ? ` (limit ${m.effective_concurrency_limit})` : "") : "";
    const took = attempt.finished_at ? duration(millisBetween(attempt.started_at, attempt.finished_at)) : "";
    tr.append(cell(attempt.number), cell(outcome, "status " + (outcome === "SUCCEEDED" ? "COMPLETED" : outcome === "running" ? "RUNNING" : "FAILED")),
              cell(attempt.worker), cell(clock(attempt.started_at)), cell(took),
              cell([machine(attempt.started_under), machine(attempt.finished_under)].filter(Boolean).join(" → ")),
              cell(attempt.error, "error"));
    attempts.append(tr);
  }
}

// Upstream through each task's dependencies, downstream through lists of
// dependents, both followed to the ends (up to GRAPH_LIMIT tasks).
async function loadGraph(task) {
  const nodes = new Map([[task.id, task]]);
  const edges = [];
  const seenEdges = new Set();
  const addEdge = (from, to) => {
    const key = from + ">" + to;
    if (!seenEdges.has(key)) { seenEdges.add(key); edges.push([from, to]); }
  };
  let upstream = [task];
  while (upstream.length && nodes.size < GRAPH_LIMIT) {
    const next = [];
    for (const node of upstream) {
      for (const dependency of node.dependencies || []) {
        addEdge(dependency.task_id, node.id);
        if (nodes.has(dependency.task_id) || nodes.size >= GRAPH_LIMIT) continue;
        try {
          const found = await api("/api/v1/tasks/" + dependency.task_id);
          nodes.set(found.id, found);
          next.push(found);
        } catch (e) { /* purged: the edge stays, the node is left out */ }
      }
    }
    upstream = next;
  }
  let downstream = [task];
  while (downstream.length && nodes.size < GRAPH_LIMIT) {
    const next = [];
    for (const node of downstream) {
      const page = await api(`/api/v1/tasks?depends_on=${node.id}&page_size=100`).catch(() => ({tasks: []}));
      for (const dependent of page.tasks || []) {
        addEdge(node.id, dependent.id);
        if (nodes.has(dependent.id) || nodes.size >= GRAPH_LIMIT) continue;
        nodes.set(dependent.id, dependent);
        next.push(dependent);
      }
    }
    downstream = next;
  }
  if (view.taskId !== task.id) return; // navigated away meanwhile
  view.graph = {nodes, edges: edges.filter(([a, b]) => nodes.has(a) && nodes.has(b))};
  drawGraph();
}

function drawGraph() {
  if (!view.graph) return;
  Dag.draw($("dag"), [...view.graph.nodes.values()], view.graph.edges, view.taskId,
           id => { location.hash = "#/tasks/" + id; });
  Dag.legend($("dagLegend"));
}

let graphReload = null;
function onGraphEvent(task) {
  if (!view.graph) return;
  const known = view.graph.nodes.get(task.id);
  if (known) {
    if (known.revision > task.revision) return;
    view.graph.nodes.set(task.id, task);
    Dag.update($("dag"), task);
    return;
  }
  // A new task depending on one drawn: the graph grew.
  if ((task.dependencies || []).some(d => view.graph.nodes.has(d.task_id)) && !graphReload) {
    graphReload = setTimeout(() => { graphReload = null; if (view.task) loadGraph(view.task); }, 200);
  }
}

// ---- Workers and alerts ------------------------------------------------

async function refreshWorkers() {
  try {
    const [list, stats] = await Promise.all([api("/api/v1/workers"), api("/api/v1/tasks/stats")]);
    const body = $("workers");
    body.replaceChildren();
    const workers = list.workers || [];
    if (!workers.length) emptyRow(body, "none connected", 6);
    for (const worker of workers) {
      const tr = document.createElement("tr");
      tr.dataset.workerId = worker.worker_id;
      tr.append(cell(worker.worker_id + (worker.draining ? " (draining)" : "")),
                cell((worker.task_types || []).join(", ")), cell(`${worker.held} / ${worker.capacity}`),
                cell(worker.finished), cell(time(worker.connected_at)), cell(clock(worker.last_seen)));
      body.append(tr);
    }
    const unserved = stats.unserved_task_types || [];
    $("workersUnserved").textContent = unserved.length ? "task types waiting with no worker: " + unserved.join(", ") : "";
    markLoaded();
  } catch (e) { /* the connection state says so */ }
}

// Alerts of one resource that follow each other within this gap are one
// incident: a resource that flaps reads as one line.
const INCIDENT_GAP_MS = 10 * 60 * 1000;

function incidents(alerts) {
  const ordered = alerts.slice().sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
  const open = new Map();
  const result = [];
  for (const alert of ordered) {
    const current = open.get(alert.resource);
    const start = Date.parse(alert.started_at);
    if (current && (current.active || start - Date.parse(current.ended_at) <= INCIDENT_GAP_MS)) {
      current.episodes++;
      current.peak = Math.max(current.peak, alert.peak || alert.value);
      current.ended_at = alert.ended_at;
      current.active = alert.active;
    } else {
      const incident = {resource: alert.resource, episodes: 1, peak: alert.peak || alert.value,
                        threshold: alert.threshold, started_at: alert.started_at, ended_at: alert.ended_at,
                        active: alert.active};
      open.set(alert.resource, incident);
      result.push(incident);
    }
  }
  return result.reverse();
}

async function refreshAlerts() {
  try {
    const alerts = await api("/api/v1/system/alerts");
    const active = alerts.active || [];
    const badge = $("alertBadge");
    badge.hidden = !active.length;
    badge.textContent = active.length;
    $("activeAlertsSummary").textContent = active.length
      ? active.map(a => `${a.resource.toLowerCase()} ${Math.round(a.value)}% > ${a.threshold}% since ${clock(a.started_at)}`).join("; ")
      : "none";
    if (view.page !== "alerts") return;
    const activeBody = $("activeAlerts");
    activeBody.replaceChildren();
    if (!active.length) emptyRow(activeBody, "none", 4);
    for (const alert of active) {
      const tr = document.createElement("tr");
      tr.append(cell(alert.resource.toLowerCase(), "error"),
                cell(`${Math.round(alert.value)}% / ${Math.round(alert.peak)}%`), cell(alert.threshold + "%"),
                cell(time(alert.started_at)));
      activeBody.append(tr);
    }
    const history = $("alertHistory");
    history.replaceChildren();
    const grouped = incidents(alerts.recent || []);
    if (!grouped.length) emptyRow(history, "no alerts so far", 6);
    for (const incident of grouped) {
      const tr = document.createElement("tr");
      tr.append(cell(incident.resource.toLowerCase(), incident.active ? "error" : ""), cell(incident.episodes),
                cell(Math.round(incident.peak) + "%"), cell(incident.threshold + "%"),
                cell(time(incident.started_at)), cell(incident.active ? "active" : time(incident.ended_at)));
      history.append(tr);
    }
  } catch (e) { /* the connection state says so */ }
}

// ---- Live updates ------------------------------------------------------

let loaded = false;
function markLoaded() { loaded = true; updateConnection(); }
function setConnection(kind, text) {
  const box = $("connection");
  box.className = kind;
  box.textContent = text;
}
function updateConnection() {
  if (!loaded) return;
  if (view.streams.tasks && view.streams.system) setConnection("live", "live");
  else setConnection("down", "reconnecting…");
}

function onTaskEvent(event) {
  const task = event.task;
  if (!task) return;
  if (view.page === "overview") scheduleOverview();
  if (view.page === "task") {
    if (task.id === view.taskId) renderTask(task);
    onGraphEvent(task);
  }
  if (view.page === "tasks") {
    const row = document.querySelector(`#taskTable tr[data-task-id="${task.id}"]`);
    if (row) row.replaceWith(taskRow(task));
  }
}

function connect() {
  const onTask = data => onTaskEvent(JSON.parse(data));
  eventStream("/api/v1/events",
    {SUBMITTED: onTask, STATUS_CHANGED: onTask, PROGRESS: onTask, LAGGED: () => route()},
    open => { view.streams.tasks = open; updateConnection(); });
  eventStream("/api/v1/system/events",
    {SAMPLED: data => { if (view.page === "overview") renderLoad(JSON.parse(data)); },
     ALERT_RAISED: () => refreshAlerts(), ALERT_CLEARED: () => refreshAlerts()},
    open => { view.streams.system = open; updateConnection(); });
}

// ---- Wiring ------------------------------------------------------------

$("submitForm").addEventListener("submit", async event => {
  event.preventDefault();
  let params;
  try { params = JSON.parse($("params").value || "{}"); }
  catch (e) { $("message").textContent = "params: " + e.message; return; }
  const body = {task_type: $("taskType").value.trim(), priority: $("priority").value, params};
  if ($("taskName").value.trim()) body.name = $("taskName").value.trim();
  try {
    const task = await api("/api/v1/tasks", {method: "POST", headers: {"content-type": "application/json"},
                                             body: JSON.stringify(body)});
    $("message").textContent = "submitted ";
    $("message").append(taskLink(task));
    $("message").dataset.taskId = task.id;
  } catch (e) { $("message").textContent = e.message; }
});

$("filters").addEventListener("submit", event => {
  event.preventDefault();
  const search = $("search").value.trim();
  if (UUID.test(search)) { location.hash = "#/tasks/" + search.toLowerCase(); return; }
  view.pageTokens = [""];
  view.pageIndex = 0;
  const query = filtersFromForm().toString();
  if ("#/tasks" + (query ? "?" + query : "") === location.hash) loadTasksPage();
  else location.hash = "#/tasks" + (query ? "?" + query : "");
});
$("nextPage").addEventListener("click", () => { view.pageIndex++; loadTasksPage(); });
$("prevPage").addEventListener("click", () => { view.pageIndex = Math.max(0, view.pageIndex - 1); loadTasksPage(); });
$("bulkCancel").addEventListener("click", bulkCancel);
$("cancelButton").addEventListener("click", async () => {
  if (!view.taskId) return;
  try {
    const task = await api(`/api/v1/tasks/${view.taskId}/cancel`, {method: "POST", headers: {"content-type": "application/json"},
                                                                  body: JSON.stringify({reason: "cancelled from the dashboard"})});
    renderTask(task);
  } catch (e) { $("detailReason").textContent = e.message; }
});
for (const status of STATUSES) {
  const option = document.createElement("option");
  option.textContent = status;
  $("filterStatus").append(option);
}

async function loadTaskTypes() {
  try {
    const types = await api("/api/v1/task-types");
    const list = $("knownTypes");
    list.replaceChildren();
    for (const info of types.task_types || []) {
      const option = document.createElement("option");
      option.value = info.task_type;
      list.append(option);
    }
  } catch (e) { /* typing still works */ }
}

window.addEventListener("hashchange", route);
route();
connect();
refreshAlerts();
loadTaskTypes();
// Counts follow events; these follow the clock.
setInterval(() => { if (view.page === "overview") refreshOverview(); }, 2000);
setInterval(() => { if (view.page === "overview") refreshCharts(); }, 5000);
setInterval(() => { if (view.page === "workers") refreshWorkers(); }, 1000);
setInterval(() => { if (view.page === "schedules") SchedulesPage.refresh(); }, 5000);
setInterval(refreshAlerts, 10000);
