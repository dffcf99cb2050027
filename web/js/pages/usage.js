// Usage: what your tenant holds now against its limits, and what it used by UTC day
// (GET /api/v1/usage; docs/api.md, "Quotas and usage"). Refreshed every REFRESH_MS while open.

import { usage } from "../api.js";
import { fill, h } from "../dom.js";

const REFRESH_MS = 10000;
const DAYS = 7;

// [label, what it holds now (a key of `now`), the limit's name]
const LIMITS = [
  ["Tasks running", "tasks", "max_concurrent_tasks"],
  ["Phones held (tasks and sessions)", "devices", "max_concurrent_devices"],
  ["Personal phones", "personal_phones", "max_personal_phones"],
  ["Phone-minutes today (UTC)", "phone_minutes_today", "max_phone_minutes_per_day"],
];

function amount(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

export function mount(outlet) {
  let disposed = false;
  const status = h("p", { class: "hint", role: "status" });
  const limits = h("tbody", {});
  const days = h("tbody", {});
  outlet.append(
    h("div", { class: "page-head" }, h("h1", {}, "Usage"), status),
    h("section", { class: "panel", "aria-labelledby": "limits-title" },
      h("h2", { id: "limits-title" }, "Now and your limits"),
      h("table", { id: "limits-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "What"), h("th", { scope: "col" }, "Now"), h("th", { scope: "col" }, "Limit"))),
        limits),
      h("p", { class: "muted" }, "A task over a limit waits (“The quota”) and starts when there is room; a session over one is refused.")),
    h("section", { class: "panel", "aria-labelledby": "days-title" },
      h("h2", { id: "days-title" }, `The last ${DAYS} days (UTC)`),
      h("table", { id: "usage-table" },
        h("thead", {}, h("tr", {}, ["Day", "Tasks", "Succeeded", "Failed", "Phone-minutes", "Model tokens"].map((t) => h("th", { scope: "col" }, t)))),
        days)));

  async function load() {
    try {
      const got = await usage.get({ days: DAYS });
      if (disposed) return;
      fill(limits, LIMITS.map(([what, key, name]) => {
        const limit = got.limits[name];
        return h("tr", { dataset: { limit: name } },
          h("th", { scope: "row" }, what),
          h("td", { class: "now" }, amount(got.now[key])),
          h("td", { class: "limit" }, limit === null ? "Unlimited" : amount(limit)));
      }));
      fill(days, [...got.days].reverse().map((d) => h("tr", { dataset: { day: d.day } },
        h("th", { scope: "row" }, d.day),
        h("td", {}, String(d.tasks)), h("td", {}, String(d.tasks_succeeded)), h("td", {}, String(d.tasks_failed)),
        h("td", {}, amount(d.phone_minutes)), h("td", {}, String(d.prompt_tokens + d.completion_tokens)))));
      status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (failure) {
      if (!disposed) status.textContent = `Could not load the usage: ${failure.message}`;
    }
  }

  load();
  const timer = setInterval(load, REFRESH_MS);
  return () => {
    disposed = true;
    clearInterval(timer);
  };
}
