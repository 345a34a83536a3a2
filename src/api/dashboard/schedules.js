// The Schedules page (#/schedules, #/schedules/<name>): every schedule with
// its next fire and last result, pause/resume and trigger now; the one
// named in the URL opened below with its coming and recent fires.
// Uses app.js's helpers; app.js calls SchedulesPage.open on navigation.
"use strict";

const SchedulesPage = (() => {
  let selected = null;

  const path = name => "/api/v1/schedules/" + encodeURIComponent(name);
  const post = (url, body) => api(url, {method: "POST", headers: {"content-type": "application/json"},
                                        body: JSON.stringify(body || {})});

  function specText(definition) {
    const spec = definition.spec || {};
    if (spec.cron) return `cron ${spec.cron.expression} (${spec.cron.time_zone || "UTC"})`;
    if (spec.interval) {
      const offset = spec.interval.offset && spec.interval.offset !== "0s" ? ` + ${spec.interval.offset}` : "";
      return `every ${spec.interval.every}${offset}`;
    }
    return "";
  }

  // "in 3 min", "in 2 h": how far a coming time is.
  function fromNow(value) {
    const ms = Date.parse(value) - Date.now();
    if (!(ms > 0)) return "due";
    if (ms < 60000) return `in ${Math.ceil(ms / 1000)} s`;
    if (ms < 3600000) return `in ${Math.round(ms / 60000)} min`;
    if (ms < 172800000) return `in ${(ms / 3600000).toFixed(1)} h`;
    return `in ${Math.round(ms / 86400000)} days`;
  }

  function outcome(fire) {
    if (!fire) return cell("never fired", "muted");
    const link = document.createElement("a");
    link.href = "#/tasks/" + fire.task_id;
    const known = fire.status && fire.status !== "TASK_STATUS_UNSPECIFIED";
    link.textContent = known ? fire.status : "purged";
    if (known) link.className = "status " + fire.status;
    link.title = "fired for " + time(fire.nominal_time);
    return cell(link);
  }

  function button(text, className, action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    if (className) b.className = className;
    b.addEventListener("click", action);
    return b;
  }

  function say(text, task) {
    const box = $("scheduleMessage");
    box.textContent = text;
    if (task) { box.append(" "); box.append(taskLink(task)); }
  }

  async function act(name, run, done) {
    try {
      const answer = await run();
      say(done, answer && answer.id ? answer : null);
    } catch (e) { say(`${name}: ${e.message}`); }
    refresh();
  }

  function pause(name) {
    const note = prompt(`Pause ${name}? Fires that come meanwhile are missed; say why:`, "paused from the dashboard");
    if (note === null) return;
    act(name, () => post(path(name) + "/pause", {note}), `paused ${name}`);
  }

  function row(schedule) {
    const definition = schedule.definition || {};
    const name = definition.name;
    const tr = document.createElement("tr");
    tr.dataset.schedule = name;
    if (name === selected) tr.className = "selected";
    const link = document.createElement("a");
    link.href = "#/schedules/" + encodeURIComponent(name);
    link.textContent = name;
    const next = (schedule.next_fire_times || [])[0];
    const nextCell = cell(next ? `${time(next)} (${fromNow(next)})` : schedule.paused ? "–" : "none: ended");
    const state = schedule.paused ? cell("paused: " + schedule.pause_note, "paused") : cell("active");
    const skipped = Number(schedule.skipped_overlap) + Number(schedule.skipped_late);
    const actions = cell(schedule.paused
      ? button("Resume", "", () => act(name, () => post(path(name) + "/resume"), `resumed ${name}`))
      : button("Pause", "secondary", () => pause(name)));
    actions.append(button("Trigger now", "", () => act(name, () => post(path(name) + "/trigger"), `triggered ${name}:`)));
    tr.append(cell(link), cell(specText(definition)), cell((definition.template || {}).task_type), nextCell,
              outcome((schedule.recent_fires || [])[0]), state, cell(`${schedule.fires} / ${skipped}`), actions);
    return tr;
  }

  function renderDetail(schedule) {
    const box = $("scheduleDetail");
    box.hidden = !schedule;
    if (!schedule) return;
    const definition = schedule.definition || {};
    $("scheduleTitle").textContent = definition.name;
    const coming = $("scheduleNext");
    coming.replaceChildren();
    if (!(schedule.next_fire_times || []).length) emptyRow(coming, schedule.paused ? "paused" : "no more fires", 2);
    for (const at of schedule.next_fire_times || []) {
      const tr = document.createElement("tr");
      tr.append(cell(time(at)), cell(fromNow(at), "muted"));
      coming.append(tr);
    }
    const fires = $("scheduleFires");
    fires.replaceChildren();
    if (!(schedule.recent_fires || []).length) emptyRow(fires, "never fired", 2);
    for (const fire of schedule.recent_fires || []) {
      const tr = document.createElement("tr");
      tr.dataset.taskId = fire.task_id;
      tr.append(cell(time(fire.nominal_time)), outcome(fire));
      fires.append(tr);
    }
    const template = definition.template || {};
    $("scheduleTemplate").textContent = JSON.stringify({
      task_type: template.task_type, params: template.params, priority: template.priority,
      overlap: definition.overlap, catch_up: definition.catch_up,
      skipped: {overlapping: schedule.skipped_overlap, late: schedule.skipped_late},
    }, null, 2);
  }

  async function refresh() {
    const body = $("scheduleTable");
    try {
      const [list, detail] = await Promise.all([
        api("/api/v1/schedules"),
        selected ? api(path(selected)).catch(e => ({error: e.message})) : null,
      ]);
      body.replaceChildren();
      const schedules = list.schedules || [];
      if (!schedules.length) emptyRow(body, "no schedules: create one with taskctl schedules create, the SDKs or POST /api/v1/schedules", 8);
      for (const schedule of schedules) body.append(row(schedule));
      if (detail && detail.error) { renderDetail(null); say(detail.error); }
      else renderDetail(detail);
      markLoaded();
    } catch (e) {
      body.replaceChildren();
      emptyRow(body, e.message, 8);
    }
  }

  return {
    open(name) { selected = name || null; say(""); refresh(); },
    refresh,
  };
})();
