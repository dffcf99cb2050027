// Schedules: a task made again and again, by a cron expression in a time zone or every N seconds
// (POST /api/v1/schedules); each with its latest runs and next due time; pause, resume, delete.

import { schedules } from "../api.js";
import { act as actOn, h } from "../dom.js";
import { badge, relative, shortId, timeEl } from "../format.js";

const REFRESH_MS = 5000; // runs appear when due: the list is read again while the page is open
const RUNS_SHOWN = 3;

function timing(s) {
  if (s.cron) return h("span", {}, h("code", {}, s.cron), ` (${s.timezone})`);
  const every = s.interval_s % 3600 === 0 ? `${s.interval_s / 3600} h` : s.interval_s % 60 === 0 ? `${s.interval_s / 60} min` : `${s.interval_s} s`;
  return `every ${every}`;
}

function state(s) {
  if (s.paused && s.paused_reason === "failures") {
    return h("span", { class: "error", dataset: { state: "paused-failures" } },
      `Paused: its last ${s.consecutive_failures} runs failed`);
  }
  if (s.paused && s.paused_reason === "personal_phone_deleted") {
    return h("span", { class: "error", dataset: { state: "paused-phone-deleted" } },
      "Paused: its personal phone was deleted (give it another phone to resume)");
  }
  if (s.paused) return h("span", { class: "muted", dataset: { state: "paused" } }, "Paused");
  const failing = s.consecutive_failures > 0
    ? h("span", { class: "error" }, ` · ${s.consecutive_failures} failed in a row`) : null;
  return h("span", { dataset: { state: "active" } }, "Active", failing);
}

export function mount(outlet) {
  let disposed = false;
  const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const instruction = h("textarea", { id: "schedule-instruction", rows: 2, required: true, placeholder: "Open Settings and turn on Wi-Fi" });
  const kind = h("select", { id: "schedule-kind" },
    h("option", { value: "interval" }, "Every N seconds"), h("option", { value: "cron" }, "Cron expression"));
  const interval = h("input", { id: "schedule-interval", type: "number", min: "1", step: "1", value: "3600" });
  const cron = h("input", { id: "schedule-cron", type: "text", autocomplete: "off", value: "0 9 * * 1-5" });
  const zone = h("input", { id: "schedule-timezone", type: "text", autocomplete: "off", value: localZone });
  const overlap = h("select", { id: "schedule-overlap" },
    h("option", { value: "skip" }, "skip the new run"), h("option", { value: "queue" }, "queue it after the running one"));
  const catchUp = h("select", { id: "schedule-catch-up" },
    h("option", { value: "skip" }, "skip them"), h("option", { value: "run_once" }, "run once for all"));
  const intervalField = h("div", { class: "field" }, h("label", { for: "schedule-interval" }, "Seconds between runs"), interval);
  const cronFields = h("div", { class: "row", hidden: true },
    h("div", { class: "field" }, h("label", { for: "schedule-cron" }, "Cron ", h("span", { class: "hint" }, "(minute hour day month weekday)")), cron),
    h("div", { class: "field" }, h("label", { for: "schedule-timezone" }, "Time zone"), zone));
  kind.addEventListener("change", () => {
    intervalField.hidden = kind.value !== "interval";
    cronFields.hidden = kind.value !== "cron";
  });
  // The runs may be task chains (docs/api.md "Task chains"): one subgoal a line.
  const subgoals = h("textarea", { id: "schedule-subgoals", rows: 2, placeholder: "Open Settings\nTurn on Wi-Fi" });
  const onFailure = h("select", { id: "schedule-on-step-failure" },
    h("option", { value: "stop" }, "stop the chain"), h("option", { value: "ask" }, "ask (retry, skip or cancel)"));
  const error = h("p", { class: "error", role: "alert" });
  const create = h("button", { type: "submit", class: "primary" }, "Create schedule");
  const form = h("form", { class: "panel", "aria-labelledby": "new-schedule-title", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    const fields = { task: { instruction: instruction.value }, overlap: overlap.value, catch_up: catchUp.value };
    const parts = subgoals.value.split("\n").map((line) => line.trim()).filter(Boolean);
    if (parts.length) Object.assign(fields.task, { subgoals: parts, on_step_failure: onFailure.value });
    if (kind.value === "interval") fields.interval_s = Number(interval.value);
    else Object.assign(fields, { cron: cron.value.trim(), timezone: zone.value.trim() });
    create.disabled = true;
    try {
      await schedules.create(fields);
      instruction.value = "";
      subgoals.value = "";
      await refresh();
    } catch (failure) {
      error.textContent = failure.message;
    } finally {
      create.disabled = false;
    }
  } },
  h("h2", { id: "new-schedule-title" }, "New schedule"),
  h("div", { class: "field" }, h("label", { for: "schedule-instruction" }, "Task instruction"), instruction),
  h("div", { class: "row" },
    h("div", { class: "field grow" }, h("label", { for: "schedule-subgoals" }, "Subgoals ", h("span", { class: "hint" }, "(optional: a chain, one a line)")), subgoals),
    h("div", { class: "field" }, h("label", { for: "schedule-on-step-failure" }, "When a subgoal fails"), onFailure)),
  h("div", { class: "row" }, h("div", { class: "field" }, h("label", { for: "schedule-kind" }, "Runs"), kind), intervalField, cronFields),
  h("div", { class: "row" },
    h("div", { class: "field" }, h("label", { for: "schedule-overlap" }, "When a run is still going"), overlap),
    h("div", { class: "field" }, h("label", { for: "schedule-catch-up" }, "Due times missed while down"), catchUp)),
  error,
  h("div", { class: "actions" }, create));

  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, "No schedules yet: create one above.");
  const listError = h("p", { class: "error", role: "alert" });
  outlet.append(
    h("h1", {}, "Schedules"),
    form,
    h("section", { class: "panel", "aria-labelledby": "schedules-title" },
      h("h2", { id: "schedules-title" }, "Your schedules"),
      listError,
      h("table", {},
        h("thead", {}, h("tr", {}, ["Task", "When", "Next due", "Last runs", "State", ""].map((t) => h("th", { scope: "col" }, t)))),
        body),
      empty));

  const act = (button, work) => actOn(button, work, { errorEl: listError, refresh });

  function row(s, runs) {
    const toggle = h("button", { type: "button", class: "quiet", dataset: { action: s.paused ? "resume" : "pause" } },
      s.paused ? "Resume" : "Pause");
    toggle.addEventListener("click", () => act(toggle, () => schedules.update(s.id, { paused: !s.paused })));
    const remove = h("button", { type: "button", class: "danger", dataset: { action: "delete" } }, "Delete");
    remove.addEventListener("click", () => {
      if (window.confirm(`Delete the schedule "${s.task.instruction}"? Its runs stay as tasks.`)) {
        act(remove, () => schedules.remove(s.id));
      }
    });
    const runCells = runs.length
      ? runs.map((t) => h("a", { href: `#/tasks/${t.id}`, title: `due ${t.due_at ?? "—"}`, class: "run", dataset: { runId: t.id } },
        badge(t.status), " ", timeEl(t.created_at)))
      : [h("span", { class: "muted" }, "none yet")];
    return h("tr", { dataset: { scheduleId: s.id } },
      h("td", { class: "instruction", "data-label": "Task" }, s.task.instruction,
        s.task.subgoals ? h("div", { class: "hint chain-size" }, `a chain of ${s.task.subgoals.length} subgoals`) : null,
        h("div", { class: "hint" }, shortId(s.id))),
      h("td", { "data-label": "When" }, timing(s)),
      h("td", { "data-label": "Next due", class: "next-due" }, s.paused ? h("span", { class: "muted" }, "—") : [timeEl(s.next_due_at), h("div", { class: "hint" }, relative(s.next_due_at))]),
      h("td", { "data-label": "Last runs", class: "runs" }, h("div", { class: "stack" }, runCells)),
      h("td", { "data-label": "State", class: "state" }, state(s)),
      h("td", { class: "actions" }, toggle, remove));
  }

  // A schedule's latest runs are read again only when its latest run changed (a new one, or its
  // status): the older ones have ended, so a refresh costs one request while nothing moves.
  const seen = new Map(); // schedule id → {key, runs}
  async function runsOf(s) {
    if (!s.last_run) return [];
    const key = `${s.last_run.id}:${s.last_run.status}`;
    const cached = seen.get(s.id);
    if (cached?.key === key) return cached.runs;
    const runs = (await schedules.runs(s.id, { limit: RUNS_SHOWN })).items;
    seen.set(s.id, { key, runs });
    return runs;
  }

  let busy = false;
  async function refresh() {
    if (busy || disposed) return;
    busy = true;
    try {
      const page = await schedules.list({ limit: 100 });
      const runs = await Promise.all(page.items.map(runsOf));
      if (disposed) return;
      body.replaceChildren(...page.items.map((s, i) => row(s, runs[i])));
      empty.hidden = page.items.length > 0;
    } catch (failure) {
      if (!disposed) listError.textContent = `Cannot load your schedules: ${failure.message}`;
    } finally {
      busy = false;
    }
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => {
    disposed = true;
    clearInterval(timer);
  };
}
