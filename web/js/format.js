// Words and numbers for people: statuses, times, durations, ids.

import { h } from "./dom.js";

export const TASK_STATUSES = [
  "queued", "leasing", "running", "waiting_for_user", "awaiting_confirmation", "user_control",
  "succeeded", "failed", "cancelled", "timed_out",
];
export const FINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);
/** Statuses in which a task holds a phone that can be watched. */
export const HOLDS_PHONE = new Set(["running", "waiting_for_user", "awaiting_confirmation", "user_control"]);

const LABELS = {
  queued: "Queued", leasing: "Getting a phone", running: "Running", waiting_for_user: "Waiting for you",
  awaiting_confirmation: "Needs confirmation", user_control: "You have control", succeeded: "Succeeded",
  failed: "Failed", cancelled: "Cancelled", timed_out: "Timed out",
  provisioning: "Provisioning", idle: "Idle", leased: "Leased", resetting: "Resetting", unhealthy: "Unhealthy",
  retired: "Retired", active: "Active", closed: "Closed", expired: "Expired",
  asleep: "Asleep", waking: "Waking", ready: "Ready", in_use: "In use", sleeping: "Going to sleep",
};

export function label(status) {
  return LABELS[status] ?? String(status).replaceAll("_", " ");
}

/** A status badge; `data-status` carries the raw value (tests and styles read it). */
export function badge(status) {
  return h("span", { class: `badge s-${status}`, dataset: { status } }, label(status));
}

export function shortId(id) {
  return String(id ?? "").slice(0, 8);
}

/** A phone's name for people: its `name` label, else its serial (the operator sees it), else
 * what it is ("sim phone 5d0e8f57"): never a bare id prefix. */
export function deviceName(device) {
  if (!device) return "";
  const name = device.labels?.name ?? device.name;
  if (typeof name === "string" && name) return name;
  if (device.serial) return device.serial;
  return `${device.provider ? `${device.provider} ` : ""}phone ${shortId(device.id)}`;
}

/** How a task ended, as a sentence's start: "The task succeeded", "The task was cancelled". */
export function endedSentence(status) {
  const ends = { succeeded: "succeeded", failed: "failed", cancelled: "was cancelled", timed_out: "timed out" };
  return `The task ${ends[status] ?? label(status).toLowerCase()}`;
}

/** Join a sentence and the next one: no doubled full stop when the first already ends one. */
export function sentences(...parts) {
  return parts.map((p) => String(p ?? "").trim()).filter(Boolean)
    .map((p, i, all) => (i < all.length - 1 && !/[.!?…。！？]$/.test(p) ? `${p}.` : p)).join(" ");
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

/** A <time> element with the local time and the ISO value. */
export function timeEl(iso) {
  return iso ? h("time", { datetime: iso }, when(iso)) : "—";
}

export function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(value < 10 ? 2 : 1)} s`;
}

/** "in 4 min" / "2 min ago" for a future or past ISO time. */
export function relative(iso, now = Date.now()) {
  if (!iso) return "—";
  const diff = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(diff);
  const text = abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.round(abs / 60)} min` : `${(abs / 3600).toFixed(1)} h`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}
