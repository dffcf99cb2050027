// A task's steps as a timeline that grows: each step's screenshot (the screen the model saw),
// the model's thinking, the action, its result and timings. Reloaded on each `task.step` event.
// A person's steps during a takeover (actor "user": their taps, typing, keys, and the hand-back
// with its note) are in the same sequence, marked "You" so the agent's part and theirs stay apart.

import { all, apiUrl, tasks } from "./api.js";
import { h } from "./dom.js";
import { coalesced } from "./events.js";
import { seconds } from "./format.js";

export class Timeline {
  constructor(taskId) {
    this.taskId = taskId;
    this.items = new Map(); // step index → <li>
    this.list = h("ol", { class: "timeline", id: "steps" });
    this.count = h("p", { class: "hint", role: "status" }, "No steps yet.");
    this.el = h("section", { class: "steps", "aria-labelledby": "steps-title" },
      h("div", { class: "page-head" }, h("h2", { id: "steps-title" }, "Steps"), this.count),
      this.list);
    this.refresh = coalesced(() => this.load());
    this.onSeek = null; // (ms) => …: a click on a step that is in the recording (its timings.video_ms)
    this.list.addEventListener("click", (event) => {
      const item = event.target.closest("li.step[data-video-ms]");
      if (!item || !this.onSeek || event.target.closest("a")) return;
      this.onSeek(Number(item.dataset.videoMs));
    });
  }

  /** Mark the step whose screen the recording shows at `ms` (the last one that began by then). */
  highlight(ms) {
    let current = null;
    for (const item of this.list.querySelectorAll("li.step[data-video-ms]")) {
      if (Number(item.dataset.videoMs) <= ms + 1) current = item;
    }
    for (const item of this.list.querySelectorAll("li.step.playing")) {
      if (item !== current) { item.classList.remove("playing"); item.removeAttribute("aria-current"); }
    }
    if (current && !current.classList.contains("playing")) {
      current.classList.add("playing");
      current.setAttribute("aria-current", "step");
    }
  }

  async load() {
    const steps = await all((query) => tasks.steps(this.taskId, query));
    const first = this.items.size === 0;
    for (const step of steps) {
      if (this.items.has(step.index)) continue;
      const item = stepItem(step, !first);
      this.items.set(step.index, item);
      const after = [...this.list.children].find((li) => Number(li.dataset.index) > step.index);
      this.list.insertBefore(item, after ?? null);
    }
    const n = this.items.size;
    this.count.textContent = n === 0 ? "No steps yet." : `${n} step${n === 1 ? "" : "s"}`;
  }
}

function stepItem(step, fresh) {
  const shot = step.screenshot_url
    ? h("a", { href: apiUrl(step.screenshot_url), target: "_blank", rel: "noopener", title: "Open the full screenshot" },
      h("img", { src: apiUrl(step.screenshot_url), alt: `Screen at step ${step.index}${step.current_app ? ` (${step.current_app})` : ""}`,
        loading: "lazy", width: "88" }))
    : h("div", { class: "no-shot" }, "no screenshot");
  const t = step.timings ?? {};
  const timings = [["capture", t.capture_s], ["model", t.model_s], ["planner", t.planner_s], ["grounder", t.grounder_s],
    ["act", t.act_s], ["settle", t.settle_s]]
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([name, v]) => `${name} ${seconds(v)}`);
  if (step.prompt_tokens) timings.push(`${step.prompt_tokens} + ${step.completion_tokens ?? 0} tokens`);
  // "waiting": the step asked a person and the answer has not come yet (it is rewritten once it has).
  const waiting = step.result === "waiting";
  const failed = step.result && step.result !== "ok" && !waiting;
  const person = step.actor === "user";
  const handBack = person && step.action?.name === "Hand_back";
  // Where its screen is in the task's recording: a click on the step seeks the video there.
  const videoMs = typeof t.video_ms === "number" ? { videoMs: String(t.video_ms) } : {};
  return h("li", { class: `step${person ? " by-user" : ""}${failed ? " result-error" : ""}${fresh ? " new-step" : ""}`,
    dataset: { index: String(step.index), actor: step.actor ?? "agent", ...videoMs },
    title: videoMs.videoMs ? "Show this step in the recording" : undefined },
    shot,
    h("div", {},
      h("p", { class: "step-head" },
        h("span", { class: "step-index" }, `#${step.index}`),
        h("span", { class: `actor actor-${person ? "user" : "agent"}` }, person ? "You" : "Agent"),
        step.current_app ? h("span", { class: "muted" }, step.current_app) : null,
        h("time", { datetime: step.created_at, class: "muted" }, new Date(step.created_at).toLocaleTimeString())),
      handBack
        ? h("p", { class: "handback-note" }, "Handed back to the agent", step.note ? `: “${step.note}”` : " (no note)")
        : h("p", {}, h("code", { class: "action" }, step.action_text ?? "—")),
      step.thinking ? h("p", { class: "thinking" }, step.thinking) : null,
      // A planner/grounder pair's step: both models' replies as they wrote them, with their seconds.
      step.replies?.length ? h("ul", { class: "replies" }, ...step.replies.map((r) =>
        h("li", { dataset: { role: r.role } }, h("strong", {}, r.role === "grounder" ? `Grounder (${r.target})` : "Planner"),
          ` ${seconds(r.model_s)}: `, h("code", {}, r.reply)))) : null,
      failed ? h("p", { class: "error" }, `Result: ${step.result}`) : null,
      waiting ? h("p", { class: "step-waiting" }, "Waiting for a person…") : null,
      step.note && !handBack ? h("p", { class: "muted" }, `Note: ${step.note}`) : null,
      timings.length ? h("p", { class: "timings" }, timings.join(" · ")) : null));
}
