// One task: its live phone, its steps as they happen, and the person's part — take over, hand back
// (with a note), cancel, confirm a sensitive action, answer a question — and the trajectory zip.

import { ApiError, devices, tasks } from "../api.js";
import { Answers } from "../answers.js";
import { fill, focusHeading, h, toast } from "../dom.js";
import { EventStream, coalesced } from "../events.js";
import { FINAL, HOLDS_PHONE, badge, deviceName, endedSentence, label, shortId, timeEl } from "../format.js";
import { PhonePanel } from "../phone.js";
import { shareControls } from "../sharing.js";
import { Timeline } from "../timeline.js";

// What a task waits for (its `waiting.kind`, docs/api.md "Why a task waits"), as a person reads it.
const WAITING_KINDS = {
  queued: "In the queue", broker_unavailable: "Queue unreachable", no_device: "A phone",
  model_unavailable: "The model server", takeover: "You, to take over", confirmation: "Your approval",
  question: "Your answer", retrying: "Its next attempt", personal_phone_busy: "Your phone", quota: "The quota",
};

export function mount(outlet, { params }) {
  const id = params[0];
  let task = null;
  let disposed = false;
  let takingOver = false; // asked to take over a running task; it pauses at the agent's next step boundary
  const parts = []; // what to tear down

  const heading = h("h1", {}, "Task");
  const statusEl = h("span", { id: "task-status" });
  const meta = h("dl", { class: "meta" });
  const banner = h("div", { class: "banner", role: "status", id: "task-banner" });
  const takeover = h("button", { type: "button", class: "primary", hidden: true, onclick: () => takeOver() }, "Take over");
  const handback = h("button", { type: "button", class: "primary", hidden: true, onclick: () => answers.handbackDialog.open() }, "Hand back…");
  const cancel = h("button", { type: "button", class: "danger", hidden: true, onclick: () => answers.cancelDialog.open() }, "Cancel task…");
  const trajectory = h("a", { class: "button", href: tasks.trajectoryUrl(id), download: `task-${id}.zip` }, "Download trajectory (zip)");
  const liveState = h("p", { class: "hint" });
  // Share: a link to the phone's live view for someone without a key (docs/api.md "Share links").
  const sharing = shareControls("task", id, "while the task waits for a person");
  outlet.append(h("p", { class: "muted" }, "Loading the task…"));

  const answers = new Answers(id, { onAnswered: (answer) => { show(answer); refreshTask(); } });
  const timeline = new Timeline(id);
  // The recording (docs/recordings.md), under the timeline once the task has ended: a click on a step
  // seeks it to that step's screen; while it plays, the step it shows is highlighted.
  const recording = h("section", { class: "recording", "aria-labelledby": "recording-title", hidden: true },
    h("h2", { id: "recording-title" }, "Recording"));
  let video = null;
  function showRecording() {
    if (video) return;
    video = h("video", { id: "task-recording", controls: true, preload: "auto", muted: true, playsinline: true,
      src: tasks.recordingUrl(id), "aria-label": "The task's recording" });
    const seekTo = (ms) => { video.currentTime = ms / 1000; };
    timeline.onSeek = seekTo;
    for (const type of ["timeupdate", "seeked"]) video.addEventListener(type, () => timeline.highlight(video.currentTime * 1000));
    video.addEventListener("error", () => {
      fill(recording, h("h2", { id: "recording-title" }, "Recording"), h("p", { class: "hint" }, "This task has no recording."));
      timeline.onSeek = null;
    });
    recording.append(video, h("p", { class: "hint" }, "Click a step to see its moment in the recording."));
    recording.hidden = false;
  }
  const phone = new PhonePanel("tasks", id, { label: "The task's phone", onEnded: () => refreshTask() });
  parts.push(() => answers.destroy(), () => phone.destroy(), () => sharing.destroy());

  const refreshTask = coalesced(async () => {
    try {
      show(await tasks.get(id));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) notFound();
      else liveState.textContent = `Cannot load the task: ${error.message}`;
    }
  });

  // The phone by its name (deviceName), read once per phone; its id prefix until then or if unreadable.
  const phoneNames = new Map();
  function phoneName(deviceId) {
    if (!phoneNames.has(deviceId)) {
      phoneNames.set(deviceId, `phone ${shortId(deviceId)}`);
      devices.get(deviceId).then((device) => {
        phoneNames.set(deviceId, deviceName(device));
        if (!disposed && task?.device_id === deviceId) show(task);
      }, () => {});
    }
    return phoneNames.get(deviceId);
  }

  function notFound() {
    disposed = true;
    teardown();
    fill(outlet,
      h("h1", {}, "Task not found"),
      h("p", {}, `There is no task ${id} for you. It may belong to another tenant, or the link is wrong.`),
      h("p", {}, h("a", { href: "#/tasks" }, "Back to the tasks")));
    document.title = "Task not found · PhoneFleet";
    focusHeading(outlet);
  }

  function layout() {
    fill(outlet,
      h("p", {}, h("a", { href: "#/tasks" }, "← Tasks")),
      h("div", { class: "page-head" }, heading, statusEl),
      banner,
      h("div", { class: "actions", role: "group", "aria-label": "Task actions" }, takeover, handback, cancel, sharing.button, trajectory),
      sharing.url,
      liveState,
      h("div", { class: "task-layout" },
        h("div", {}, phone.el),
        h("div", {}, h("section", { class: "panel", "aria-label": "Details" }, meta), timeline.el, recording)));
    // The heading arrives with the data: announce it, unless the person already moved on.
    if (!outlet.contains(document.activeElement) || document.activeElement === outlet) focusHeading(outlet);
  }

  function show(next) {
    if (disposed) return;
    const first = task === null;
    task = next;
    if (first) layout();
    heading.textContent = task.instruction;
    document.title = `${task.instruction.slice(0, 40)} · PhoneFleet`;
    fill(statusEl, badge(task.status));
    const result = task.result ?? {};
    fill(meta,
      h("dt", {}, "Task"), h("dd", {}, h("code", {}, task.id)),
      h("dt", {}, "Status"), h("dd", {}, label(task.status), task.cancel_requested && !FINAL.has(task.status) ? " (cancel requested)" : ""),
      h("dt", {}, "Phone"), h("dd", { id: "task-phone" }, task.device_id ? h("code", { title: task.device_id }, phoneName(task.device_id)) : "none yet"),
      h("dt", {}, "Created"), h("dd", {}, timeEl(task.created_at)),
      h("dt", {}, "Started"), h("dd", {}, timeEl(task.started_at)),
      h("dt", {}, "Finished"), h("dd", {}, timeEl(task.finished_at)),
      h("dt", {}, "Max steps"), h("dd", {}, String(task.max_steps)),
      // A task chain (docs/api.md "Task chains"): each subgoal's status, result and steps, in order.
      task.subgoals ? [h("dt", {}, "Chain"), h("dd", {},
        h("ol", { id: "task-chain", class: "chain" }, task.subgoals.map(subgoalItem)),
        h("p", { class: "hint" }, task.on_step_failure === "ask"
          ? "A failed subgoal asks you: retry it, skip it or cancel the task."
          : "A failed subgoal ends the chain."))] : null,
      // Tries (docs/api.md "Tries"): each one's end and the steps it made, once the task has ended.
      task.max_tries > 1 ? [h("dt", {}, "Tries"), h("dd", { id: "task-tries" }, triesText(task))] : null,
      // Why it is not moving (a device, the model server, a person…): the server's words, as they change.
      task.waiting ? [h("dt", {}, "Waiting"), h("dd", {},
        h("span", { class: "waiting-kind", dataset: { kind: task.waiting.kind } }, `${WAITING_KINDS[task.waiting.kind] ?? task.waiting.kind}: `),
        h("span", { id: "task-waiting" }, task.waiting.message),
        task.waiting.since ? [" (since ", timeEl(task.waiting.since), ")"] : null)] : null,
      task.reason || task.message ? [h("dt", {}, "Outcome"), h("dd", {}, [task.reason, task.message].filter(Boolean).join(": "))] : null,
      result.elapsed_s ? [h("dt", {}, "Elapsed"), h("dd", {}, `${Number(result.elapsed_s).toFixed(1)} s`)] : null);

    const status = task.status;
    if (status !== "running") takingOver = false;
    const waiting = answers.sync(status);
    takeover.hidden = status !== "running";
    takeover.disabled = takingOver;
    takeover.textContent = takingOver ? "Taking over…" : "Take over";
    handback.hidden = !(status === "user_control" || waiting === "takeover");
    cancel.hidden = FINAL.has(status) || task.cancel_requested;
    const lines = answers.banner(status);
    if (takingOver) lines.push("Taking over: the agent stops after its current step, then the phone is yours.");
    if (status === "user_control") lines.push(h("strong", {}, "You have the phone. "), "The agent waits until you hand it back.");
    fill(banner, lines);

    if (HOLDS_PHONE.has(status)) phone.start();
    else if (FINAL.has(status)) phone.stop(`${endedSentence(status)}; its phone went back to the pool.`);
    else phone.stop(status === "queued" ? "Queued: waiting for a worker." : "Getting a phone…");
    if (FINAL.has(status)) showRecording();
  }

  async function takeOver() {
    takingOver = true;
    takeover.disabled = true;
    try {
      show(await tasks.takeover(id));
      toast("Taking over: the agent stops after its current step.");
    } catch (error) {
      takingOver = false;
      toast(`Cannot take over: ${error.message}`);
      refreshTask();
    }
  }

  // The task's events from the first one: the page learns any pending request, then follows live.
  const stream = new EventStream({
    taskId: id,
    after: 0,
    onState: (state, detail) => {
      liveState.textContent = state === "live" ? "" : `Live updates paused: ${detail}`;
      if (state === "closed" && detail && /not found/i.test(detail)) notFound();
    },
    onEvent: (event) => {
      answers.track(event);
      if (event.type === "task.step") timeline.refresh();
      else refreshTask();
    },
  });

  function teardown() {
    stream.stop();
    for (const part of parts.splice(0)) part();
  }

  (async () => {
    try {
      const first = await tasks.get(id);
      if (disposed) return;
      show(first);
      stream.start();
      timeline.refresh();
    } catch (error) {
      if (disposed) return;
      if (error instanceof ApiError && (error.status === 404 || error.status === 422)) notFound();
      else fill(outlet, h("h1", {}, "Task"), h("p", { class: "error" }, `Cannot load the task: ${error.message}`));
    }
  })();

  return () => {
    disposed = true;
    teardown();
  };
}

const SUBGOAL_STATES = { pending: "not run yet", running: "running", succeeded: "succeeded", failed: "failed",
  timed_out: "timed out", cancelled: "cancelled", skipped: "skipped" };

function subgoalItem(part) {
  const steps = part.first_step === null || part.first_step === undefined ? null
    : `steps #${part.first_step}–#${part.last_step}`;
  const runs = part.runs > 1 ? `run ${part.runs} times` : null;
  const outcome = [part.reason, part.message].filter(Boolean).join(": ");
  return h("li", { dataset: { status: part.status, index: String(part.index) } },
    h("span", { class: "subgoal-goal" }, part.goal), " — ",
    h("span", { class: "subgoal-status" }, SUBGOAL_STATES[part.status] ?? part.status),
    [steps, runs].some(Boolean) ? ` (${[steps, runs].filter(Boolean).join(", ")})` : null,
    outcome ? h("div", { class: "subgoal-result" }, outcome) : null);
}

function triesText(task) {
  const tries = task.result?.tries ?? [];
  if (!tries.length) return `up to ${task.max_tries}`;
  const each = tries.map((t) => {
    const steps = t.first_step === null ? "no steps" : `steps #${t.first_step}–#${t.last_step}`;
    return `try ${t.try}: ${t.reason ?? t.status} (${steps})`;
  });
  return `${tries.length} of ${task.max_tries} — ${each.join("; ")}`;
}
