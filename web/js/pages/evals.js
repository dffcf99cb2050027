// Evals: suite runs (POST /api/v1/evals, `phonefleet eval run`), newest first, each with its success
// rate and Wilson 95 % interval per model; an eval's page has a bar per template and model and
// links to each of its tasks (their trajectory, steps and recording are on the task page).

import { evals } from "../api.js";
import { h } from "../dom.js";
import { badge, shortId, timeEl } from "../format.js";

const REFRESH_MS = 3000;

function pct(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`;
}

function rate(r) {
  return `${r.successes}/${r.runs} = ${pct(r.success_rate)} (95% CI ${pct(r.wilson_low)}–${pct(r.wilson_high)})`
    + (r.infra ? ` · ${r.infra} infra` : "") + (r.pending ? ` · ${r.pending} pending` : "");
}

function bar(r, label) {
  const fill = h("span", { class: "eval-bar-fill" });
  fill.style.width = `${r.success_rate === null ? 0 : Math.round(100 * r.success_rate)}%`; // CSSOM: the CSP allows no style attributes
  return h("div", { class: "eval-bar", title: `${label}: ${rate(r)}`, dataset: { rate: String(r.success_rate ?? "") } },
    fill,
    h("span", { class: "eval-bar-label" }, `${label} ${pct(r.success_rate)} (${r.successes}/${r.runs})`));
}

function listView(outlet) {
  const body = h("tbody");
  const error = h("p", { class: "error", role: "alert" });
  const empty = h("p", { class: "muted", hidden: true }, "No evals yet: run one with `phonefleet eval run builtin --model scripted`.");
  outlet.append(h("h1", {}, "Evals"), error, empty, h("table", { class: "list" },
    h("thead", {}, h("tr", {}, h("th", {}, "Eval"), h("th", {}, "Suite"), h("th", {}, "Started"),
      h("th", {}, "Done"), h("th", {}, "Models"))), body));
  async function refresh() {
    try {
      const rows = await evals.list();
      empty.hidden = rows.length > 0;
      body.replaceChildren(...rows.map((e) => h("tr", {},
        h("td", { "data-label": "Eval" }, h("a", { href: `#/evals/${e.id}` }, shortId(e.id))),
        h("td", { "data-label": "Suite" }, e.suite),
        h("td", { "data-label": "Started" }, timeEl(e.created_at)),
        h("td", { "data-label": "Done" }, `${e.done}/${e.tasks}`),
        h("td", { "data-label": "Models" }, ...e.models.map((m) => bar(e.by_model[m], m))))));
      error.textContent = "";
    } catch (failure) {
      error.textContent = failure.message;
    }
  }
  return refresh;
}

function evalView(outlet, id) {
  const head = h("p");
  const models = h("div");
  const body = h("tbody");
  const tasks = h("tbody");
  const error = h("p", { class: "error", role: "alert" });
  outlet.append(h("h1", {}, "Eval ", h("code", {}, shortId(id))), error, head, models,
    h("h2", {}, "Templates"),
    h("table", { class: "list" }, h("thead", {}, h("tr", {}, h("th", {}, "Template"), h("th", {}, "Category"),
      h("th", {}, "Per model"))), body),
    h("h2", {}, "Tasks"),
    h("table", { class: "list" }, h("thead", {}, h("tr", {}, h("th", {}, "Task"), h("th", {}, "Template"),
      h("th", {}, "Model"), h("th", {}, "Status"), h("th", {}, "Score"), h("th", {}, "Outcome"))), tasks));
  async function refresh() {
    try {
      const e = await evals.get(id);
      head.textContent = `${e.suite}, seed ${e.seed}, ${e.repeat}× each template: ${e.done}/${e.tasks} done`
        + (e.reset.runs ? ` · reset: ${e.reset.method}, ${e.reset.initialize_s_mean} s per task` : "");
      models.replaceChildren(...e.models.map((m) => h("p", {}, h("strong", {}, m), ": ", rate(e.by_model[m]))));
      body.replaceChildren(...e.templates.map((t) => h("tr", {},
        h("td", { "data-label": "Template" }, t.template),
        h("td", { "data-label": "Category" }, t.category ?? ""),
        h("td", { "data-label": "Per model" }, ...e.models.map((m) => bar(t.by_model[m], m))))));
      tasks.replaceChildren(...e.task_list.map((t) => h("tr", {},
        h("td", { "data-label": "Task" }, h("a", { href: `#/tasks/${t.task_id}` }, shortId(t.task_id))),
        h("td", { "data-label": "Template" }, t.template),
        h("td", { "data-label": "Model" }, t.model ?? ""),
        h("td", { "data-label": "Status" }, badge(t.status)),
        h("td", { "data-label": "Score" }, t.score === null ? "–" : String(t.score)),
        h("td", { "data-label": "Outcome" }, t.outcome + (t.reason ? ` (${t.reason})` : "")))));
      error.textContent = "";
      return e.done === e.tasks;
    } catch (failure) {
      error.textContent = failure.message;
      return false;
    }
  }
  return refresh;
}

export function mount(outlet, { params }) {
  const refresh = params.length ? evalView(outlet, params[0]) : listView(outlet);
  let timer = null;
  let disposed = false;
  const tick = async () => {
    const finished = await refresh();
    if (!disposed && !finished) timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
  return () => {
    disposed = true;
    clearTimeout(timer);
  };
}
