// What the agent is waiting for, and the dialogs that answer it (docs/api.md, "Answering the agent").
//
// The agent's latest request is the newest task.confirmation_requested / task.takeover_requested /
// task.question event; it is pending until a task.confirmation / task.handback / task.reply follows.
// The task page replays the task's events from the start (after=0), so it knows this on any load.

import { tasks } from "./api.js";
import { h } from "./dom.js";
import { FormDialog } from "./dialogs.js";
import { sentences } from "./format.js";

const REQUESTS = new Set(["task.confirmation_requested", "task.takeover_requested", "task.question"]);
const ANSWERS = new Set(["task.confirmation", "task.handback", "task.reply"]);

const point = (p) => `(${p[0]}, ${p[1]})`;
const isPoint = (p) => Array.isArray(p) && p.length === 2;

/** An action as the agent sent it, for a person: {"name": "Tap", "element": [499, 393]} → "Tap at
 * (499, 393) on the screen"; with the element's label when known (the action's `label`, or the
 * request's `element_label`) → "Tap “Pay now”". */
export function describeAction(action, elementLabel = null) {
  if (!action || typeof action !== "object") return String(action ?? "");
  const { name, action: kind, message: _shownAbove, label, element_label: own, ...rest } = action;
  const verb = String(name ?? kind ?? "action").replaceAll("_", " ");
  const known = [label, own, elementLabel].find((v) => typeof v === "string" && v.trim());
  if (isPoint(rest.element)) return known ? `${verb} “${known.trim()}”` : `${verb} at ${point(rest.element)} on the screen`;
  if (typeof rest.text === "string") return `${verb} “${rest.text}”`;
  if (typeof rest.app === "string") return `Open ${rest.app}`;
  if (isPoint(rest.start) && isPoint(rest.end)) return `${verb} from ${point(rest.start)} to ${point(rest.end)} on the screen`;
  const args = Object.entries(rest).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(", ");
  return `${verb}${args ? ` (${args})` : ""}`;
}

export class Answers {
  constructor(taskId, { onAnswered = () => {} } = {}) {
    this.taskId = taskId;
    this.onAnswered = onAnswered;
    this.pending = null; // {type, payload, id}
    this.shown = new Set(); // request ids whose dialog opened once (closing it is "later", not "again")

    this.confirmText = h("p", { class: "confirm-message" });
    this.confirmAction = h("pre", { class: "confirm-action" });
    this.confirmDialog = new FormDialog({
      name: "confirm", title: "The agent asks you to confirm",
      body: [this.confirmText, h("p", { class: "hint" }, "Action:"), this.confirmAction],
      actions: [{ value: "approve", label: "Approve", kind: "primary" }, { value: "deny", label: "Deny", kind: "danger" }],
      cancelLabel: "Later",
      safeFocus: true,
      onSubmit: async (value) => this.answered(await tasks.confirm(taskId, value === "approve")),
    });

    this.questionText = h("p", { class: "question" });
    this.answer = h("textarea", { id: `answer-${taskId}`, name: "answer", required: true, maxlength: "2000", rows: "3" });
    this.questionDialog = new FormDialog({
      name: "question", title: "The agent asks you",
      body: [this.questionText, h("label", { for: `answer-${taskId}` }, "Your answer"), this.answer],
      actions: [{ value: "reply", label: "Send answer", kind: "primary" }],
      cancelLabel: "Later",
      onSubmit: async (_value, data) => this.answered(await tasks.reply(taskId, String(data.get("answer")).trim())),
    });

    // A question with choices (a task chain's failed subgoal: retry, skip or cancel): one button each.
    this.choiceText = h("p", { class: "question" });
    this.choiceDialog = new FormDialog({
      name: "choice", title: "A subgoal failed",
      body: [this.choiceText],
      actions: [{ value: "retry", label: "Retry it", kind: "primary" }, { value: "skip", label: "Skip it" },
        { value: "cancel-chain", label: "Cancel the task", kind: "danger" }],
      cancelLabel: "Later",
      safeFocus: true,
      // "cancel" is the dialog's own close button: the task's cancel is sent under another value.
      onSubmit: async (value) => this.answered(await tasks.reply(taskId, value === "cancel-chain" ? "cancel" : value)),
    });

    this.note = h("textarea", { id: `note-${taskId}`, name: "note", maxlength: "2000", rows: "3",
      placeholder: "e.g. I logged in; go on from the inbox." });
    this.handbackDialog = new FormDialog({
      name: "handback", title: "Hand the phone back to the agent",
      body: [h("label", { for: `note-${taskId}` }, "Note for the agent ", h("span", { class: "hint" }, "(optional: what you did)")), this.note],
      actions: [{ value: "handback", label: "Hand back", kind: "primary" }],
      onSubmit: async (_value, data) => this.answered(await tasks.handback(taskId, String(data.get("note") ?? ""))),
    });

    this.cancelDialog = new FormDialog({
      name: "cancel", title: "Cancel this task?",
      body: [h("p", {}, "The agent stops at its next step boundary and the phone goes back to the pool.")],
      actions: [{ value: "cancel-task", label: "Cancel task", kind: "danger" }],
      cancelLabel: "Keep it running",
      safeFocus: true,
      onSubmit: async () => this.answered(await tasks.cancel(taskId)),
    });
  }

  answered(task) {
    this.onAnswered(task);
  }

  /** Follow the task's events in order. */
  track(event) {
    if (REQUESTS.has(event.type)) this.pending = { type: event.type, payload: event.payload ?? {}, id: event.id };
    else if (ANSWERS.has(event.type)) this.pending = null;
  }

  /** What the agent waits for in `status`: "confirmation", "question", "takeover" or null. */
  waitingFor(status) {
    const type = this.pending?.type;
    if (status === "awaiting_confirmation" && type === "task.confirmation_requested") return "confirmation";
    if (status === "waiting_for_user" && type === "task.question") return "question";
    if (status === "waiting_for_user" && type === "task.takeover_requested") return "takeover";
    return null;
  }

  /** Open the dialog of a new request once; close dialogs whose request is gone. */
  sync(status) {
    const waiting = this.waitingFor(status);
    if (waiting !== "confirmation") this.confirmDialog.close();
    if (waiting !== "question") {
      this.questionDialog.close();
      this.choiceDialog.close();
    }
    if (waiting === "confirmation" || waiting === "question") {
      if (!this.shown.has(this.pending.id)) {
        this.shown.add(this.pending.id);
        this.openRequest(waiting);
      }
    }
    return waiting;
  }

  openRequest(waiting = this.waitingFor("awaiting_confirmation") ?? this.waitingFor("waiting_for_user")) {
    const payload = this.pending?.payload ?? {};
    if (waiting === "confirmation") {
      this.confirmText.textContent = payload.message || "The agent wants to do something sensitive.";
      this.confirmAction.textContent = describeAction(payload.action, payload.element_label);
      this.confirmDialog.open();
    } else if (waiting === "question" && Array.isArray(payload.choices)) {
      this.choiceText.textContent = payload.question ?? "";
      this.choiceDialog.open();
    } else if (waiting === "question") {
      this.questionText.textContent = payload.question || "Several options fit the task: which one should the agent take?";
      this.questionDialog.open();
      this.answer.focus();
    }
  }

  /** A line for the banner: what the agent waits for, with a button to answer. */
  banner(status) {
    const waiting = this.waitingFor(status);
    const payload = this.pending?.payload ?? {};
    if (waiting === "confirmation") {
      return [h("strong", {}, "The agent asks you to confirm: "), payload.message ?? "", " ",
        h("button", { type: "button", onclick: () => this.openRequest("confirmation") }, "Answer…")];
    }
    if (waiting === "question") {
      return [h("strong", {}, "The agent asks: "), payload.question ?? "which option to take", " ",
        h("button", { type: "button", onclick: () => this.openRequest("question") }, "Answer…")];
    }
    if (waiting === "takeover") {
      return [h("strong", {}, "The agent asks you to take over: "),
        sentences(payload.message, "Use the phone, then press Hand back.")];
    }
    return [];
  }

  destroy() {
    for (const dialog of [this.confirmDialog, this.questionDialog, this.choiceDialog, this.handbackDialog, this.cancelDialog]) dialog.remove();
  }
}
