// The tasks list (newest first, filter by status, live status from the events WebSocket) and the
// new-task form (on one of your personal phones with `#/tasks?phone=<id>`, from My phones).

import { personalPhones, tasks } from "../api.js";
import { fill, h } from "../dom.js";
import { EventStream } from "../events.js";
import { TASK_STATUSES, badge, label, timeEl } from "../format.js";

export const EXAMPLES = [
  "Write a note titled Shopping with the text buy milk",
  "Open Settings and turn on airplane mode",
  "Turn on Bluetooth and turn off Wi-Fi",
  "Send a message to 5550123 saying hello",
  "Search the shop for coffee mug and add the first one to the cart",
  "打开蓝牙",
];

export function mount(outlet, { query, router }) {
  const filter = TASK_STATUSES.includes(query.get("status")) ? query.get("status") : "";
  const phoneId = query.get("phone") || null; // a personal phone: the task runs on it, with its data
  const rows = new Map(); // task id → <tr>
  let disposed = false;

  // --- the new-task form -------------------------------------------------------------------------
  const instruction = h("textarea", { id: "instruction", name: "instruction", required: true, maxlength: "2000", rows: "3",
    placeholder: EXAMPLES[0] });
  // Instructions the reference model carries out on a fresh virtual phone (bench/bench_phrasings.py):
  // a click fills the field, so a first task works without knowing what the rules understand.
  const examples = h("div", { class: "row examples", role: "group", "aria-label": "Example instructions" },
    h("span", { class: "hint" }, "Try:"),
    EXAMPLES.map((text) => h("button", { type: "button", class: "chip", onclick: () => {
      instruction.value = text;
      instruction.focus();
    } }, text)));
  const profile = h("input", { id: "device-profile", name: "device_profile", type: "text", autocomplete: "off",
    placeholder: 'pixel13  or  {"android": "13"}', "aria-describedby": "device-profile-hint" });
  const maxSteps = h("input", { id: "max-steps", name: "max_steps", type: "number", min: "1", max: "100", value: "30", required: true });
  // A task chain (docs/api.md "Task chains"): one subgoal a line, run in order; a failed one stops or asks.
  const subgoals = h("textarea", { id: "subgoals", name: "subgoals", rows: "2", "aria-describedby": "subgoals-hint",
    placeholder: "Open Settings\nTurn on Wi-Fi" });
  const onFailure = h("select", { id: "on-step-failure", name: "on_step_failure" },
    h("option", { value: "stop" }, "stop the chain"), h("option", { value: "ask" }, "ask me (retry, skip or cancel)"));
  const formError = h("p", { class: "error", role: "alert" });
  const onPhone = phoneId ? h("p", { id: "task-phone" }, "On your personal phone ", h("strong", {}, "…"),
    " (its apps' logins are kept). ", h("a", { href: "#/tasks" }, "Use a pooled phone instead")) : null;
  if (phoneId) {
    personalPhones.get(phoneId)
      .then((phone) => { if (!disposed) fill(onPhone.querySelector("strong"), phone.name); })
      .catch((error) => { if (!disposed) formError.textContent = `Cannot use that phone: ${error.message}`; });
  }
  const submit = h("button", { type: "submit", class: "primary" }, "Submit task");
  const form = h("form", { class: "panel", "aria-labelledby": "new-task-title", onsubmit: async (event) => {
    event.preventDefault();
    formError.textContent = "";
    const fields = { instruction: instruction.value.trim(), max_steps: Number(maxSteps.value) };
    if (phoneId) fields.personal_phone_id = phoneId;
    const parts = subgoals.value.split("\n").map((line) => line.trim()).filter(Boolean);
    if (parts.length) Object.assign(fields, { subgoals: parts, on_step_failure: onFailure.value });
    const raw = phoneId ? "" : profile.value.trim(); // a personal phone has the shape it was made with
    if (raw) {
      try {
        fields.device_profile = raw.startsWith("{") ? JSON.parse(raw) : raw;
      } catch (error) {
        formError.textContent = `The device profile is not valid JSON: ${error.message}`;
        profile.focus();
        return;
      }
    }
    submit.disabled = true;
    try {
      const task = await tasks.submit(fields);
      router.go(`#/tasks/${task.id}`);
    } catch (error) {
      formError.textContent = error.details?.length ? `${error.message}: ${error.details.map((d) => `${d.loc.at(-1)} ${d.msg}`).join("; ")}` : error.message;
    } finally {
      submit.disabled = false;
    }
  } },
  h("h2", { id: "new-task-title" }, phoneId ? "New task on your phone" : "New task"),
  onPhone,
  h("div", { class: "field" }, h("label", { for: "instruction" }, "Instruction"), instruction, examples),
  h("div", { class: "row" },
    h("div", { class: "field grow", hidden: Boolean(phoneId) },
      h("label", { for: "device-profile" }, "Device profile ", h("span", { class: "hint" }, "(optional)")),
      profile,
      h("p", { class: "hint", id: "device-profile-hint" }, "A profile name your operator defined, or a JSON object the phone must match.")),
    h("div", { class: "field" }, h("label", { for: "max-steps" }, "Max steps"), maxSteps)),
  h("div", { class: "row" },
    h("div", { class: "field grow" },
      h("label", { for: "subgoals" }, "Subgoals ", h("span", { class: "hint" }, "(optional: a chain, one a line)")),
      subgoals,
      h("p", { class: "hint", id: "subgoals-hint" }, "Run one after another on the same phone, each with its own result.")),
    h("div", { class: "field" }, h("label", { for: "on-step-failure" }, "When a subgoal fails"), onFailure)),
  formError,
  h("div", { class: "actions" }, submit));

  // --- the list ------------------------------------------------------------------------------------
  const select = h("select", { id: "status-filter", onchange: () => router.go(select.value ? `#/tasks?status=${select.value}` : "#/tasks") },
    h("option", { value: "" }, "All statuses"),
    TASK_STATUSES.map((s) => h("option", { value: s, selected: s === filter }, label(s))));
  select.value = filter;
  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, filter ? `No ${label(filter).toLowerCase()} tasks.` : "No tasks yet: submit one above.");
  const more = h("button", { type: "button", hidden: true, onclick: () => load(more.dataset.cursor) }, "Load more");
  const live = h("p", { class: "hint", role: "status" });

  outlet.append(
    h("div", { class: "page-head" }, h("h1", {}, "Tasks"), live),
    form,
    h("section", { class: "panel", "aria-labelledby": "task-list-title" },
      h("div", { class: "page-head" },
        h("h2", { id: "task-list-title" }, filter ? `${label(filter)} tasks` : "All tasks"),
        h("div", {}, h("label", { for: "status-filter" }, "Status"), select)),
      h("table", { id: "task-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Instruction"), h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "Outcome"))),
        body),
      empty,
      h("div", { class: "actions" }, more)));

  function row(task) {
    const tr = h("tr", { dataset: { taskId: task.id } });
    update(tr, task);
    return tr;
  }

  function update(tr, task) {
    fill(tr,
      h("td", { class: "instruction", "data-label": "Instruction" }, h("a", { href: `#/tasks/${task.id}` }, task.instruction)),
      h("td", { "data-label": "Status" }, badge(task.status)),
      h("td", { "data-label": "Created" }, timeEl(task.created_at)),
      h("td", { "data-label": "Outcome" }, [task.reason, task.message].filter(Boolean).join(": ") || "—"));
  }

  async function load(cursor) {
    more.disabled = true;
    try {
      const page = await tasks.list({ status: filter, limit: 20, cursor });
      if (disposed) return;
      for (const task of page.items) {
        if (rows.has(task.id)) continue;
        const tr = row(task);
        rows.set(task.id, tr);
        body.append(tr);
      }
      more.hidden = !page.next_cursor;
      more.dataset.cursor = page.next_cursor ?? "";
      empty.hidden = rows.size > 0;
    } catch (error) {
      live.textContent = `Cannot load the tasks: ${error.message}`;
    } finally {
      more.disabled = false;
    }
  }

  // Live: new tasks appear at the top, statuses change in place.
  const stream = new EventStream({
    onState: (state, detail) => { live.textContent = state === "live" ? "Live" : `Updates paused: ${detail}`; },
    onEvent: async (event) => {
      if (event.type === "task.created" && (!filter || filter === "queued") && !rows.has(event.task_id)) {
        const task = await tasks.get(event.task_id).catch(() => null);
        if (task && !disposed && !rows.has(task.id)) {
          const tr = row(task);
          rows.set(task.id, tr);
          body.prepend(tr);
          empty.hidden = true;
        }
      } else if ((event.type === "task.status" || event.type === "task.cancel_requested") && rows.has(event.task_id)) {
        const task = await tasks.get(event.task_id).catch(() => null);
        if (task && !disposed) update(rows.get(task.id), task);
      }
    },
  }).start();

  load(null);
  return () => {
    disposed = true;
    stream.stop();
  };
}
