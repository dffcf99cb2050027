// My phones: your personal phones (docs/personal-phones.md), each with its state, its last tasks,
// Open (a session on it, to log in to apps by hand through the live view), New task on this phone,
// rename, and delete (typed confirmation: its data goes for good); and the new-phone form.

import { apiUrl, personalPhones, sessions, tasks } from "../api.js";
import { FormDialog } from "../dialogs.js";
import { fill, h } from "../dom.js";
import { badge, seconds, shortId, timeEl } from "../format.js";

const REFRESH_MS = 5000; // a phone wakes, is used and sleeps while the page is open
const TASKS_SHOWN = 3;
const SESSION_TTL_S = 1800; // long enough to log in to a few apps by hand; the session page keeps it alive

// Its thumbnail is the latest screenshot a task on it recorded (GET …/thumbnail: what it showed when
// it was last put down; it wakes nothing). Over it or, before any task, alone: what its state means.
const SCREEN = {
  asleep: "Asleep: its data is kept; Open or a task wakes it",
  waking: "Waking on a device…",
  ready: "Awake, nobody is using it",
  in_use: "In use by a task or session",
  sleeping: "Going to sleep…",
  failed: "Its last wake failed; the next use tries again",
};

/** The profile field's value as the API takes it: a name, a JSON object, or nothing. */
function parseProfile(raw) {
  const text = raw.trim();
  if (!text) return undefined;
  return text.startsWith("{") ? JSON.parse(text) : text;
}

export function mount(outlet, { router }) {
  let disposed = false;
  const cards = new Map(); // phone id → {el, key}
  const opening = new Set(); // phones whose Open is under way (a refresh may rebuild their card meanwhile)
  const problems = new Map(); // phone id → why its last Open failed

  // --- the new-phone form ------------------------------------------------------------------------
  const name = h("input", { id: "phone-name", type: "text", required: true, maxlength: "200", autocomplete: "off", placeholder: "work phone" });
  const profile = h("input", { id: "phone-profile", type: "text", autocomplete: "off", placeholder: 'pixel13  or  {"android": "13"}' });
  const formError = h("p", { class: "error", role: "alert" });
  const create = h("button", { type: "submit", class: "primary" }, "Create phone");
  const form = h("form", { class: "panel", "aria-labelledby": "new-phone-title", onsubmit: async (event) => {
    event.preventDefault();
    formError.textContent = "";
    const fields = { name: name.value };
    try {
      const shape = parseProfile(profile.value);
      if (shape !== undefined) fields.device_profile = shape;
    } catch (failure) {
      formError.textContent = `The device profile is not valid JSON: ${failure.message}`;
      profile.focus();
      return;
    }
    create.disabled = true;
    try {
      await personalPhones.create(fields);
      name.value = "";
      profile.value = "";
      await refresh();
    } catch (failure) {
      formError.textContent = failure.message;
    } finally {
      create.disabled = false;
    }
  } },
  h("h2", { id: "new-phone-title" }, "New phone"),
  h("p", { class: "muted" }, "A phone of your own: what you do on it — apps you log in to, settings, files — is kept " +
    "for every later task on it. It sleeps when idle and wakes for the next use."),
  h("div", { class: "row" },
    h("div", { class: "field grow" }, h("label", { for: "phone-name" }, "Phone name"), name),
    h("div", { class: "field grow" }, h("label", { for: "phone-profile" }, "Device profile ", h("span", { class: "hint" }, "(optional)")), profile)),
  formError,
  h("div", { class: "actions" }, create));

  // --- the list ----------------------------------------------------------------------------------
  const grid = h("ul", { class: "grid", id: "phone-grid" });
  const empty = h("p", { class: "muted", hidden: true }, "No phones yet: create one above.");
  const listError = h("p", { class: "error", role: "alert" });
  outlet.append(
    h("h1", {}, "My phones"),
    form,
    h("section", { class: "panel", "aria-labelledby": "phones-title" },
      h("h2", { id: "phones-title" }, "Your phones"),
      listError,
      grid,
      empty));

  // --- rename and delete -------------------------------------------------------------------------
  let target = null; // the phone the open dialog is about
  const newName = h("input", { id: "rename-name", name: "name", type: "text", required: true, maxlength: "200", autocomplete: "off" });
  const renameDialog = new FormDialog({
    title: "Rename the phone",
    name: "rename",
    body: [h("div", { class: "field" }, h("label", { for: "rename-name" }, "New name"), newName)],
    actions: [{ value: "rename", label: "Rename", kind: "primary" }],
    onSubmit: async () => {
      await personalPhones.rename(target.id, newName.value);
      await refresh();
    },
  });
  const typed = h("input", { id: "delete-confirm", name: "confirm", type: "text", required: true, autocomplete: "off" });
  const deleteWhat = h("p", {});
  const deleteDialog = new FormDialog({
    title: "Delete the phone and its data",
    name: "delete",
    safeFocus: true,
    body: [deleteWhat, h("div", { class: "field" }, h("label", { for: "delete-confirm" }, "Type the phone's name to confirm"), typed)],
    actions: [{ value: "delete", label: "Delete for good", kind: "danger" }],
    // The API compares the typed name too (422 confirmation_mismatch, shown in the dialog).
    onSubmit: async () => {
      await personalPhones.remove(target.id, typed.value);
      await refresh();
    },
  });

  function openRename(phone) {
    target = phone;
    renameDialog.open();
    newName.value = phone.name;
    newName.select();
  }

  function openDelete(phone) {
    target = phone;
    fill(deleteWhat, "Deleting ", h("strong", {}, phone.name),
      " removes its data — app logins, settings, files — for good. Its tasks stay in your task list.");
    typed.value = "";
    deleteDialog.open();
  }

  async function openSession(phone) {
    opening.add(phone.id);
    refresh(); // its card shows the wait
    let problem = "";
    try {
      const session = await sessions.create({ personal_phone_id: phone.id, ttl_s: SESSION_TTL_S, wait_s: 10 });
      opening.delete(phone.id);
      if (!disposed) router.go(`#/sessions/${session.id}`);
      return;
    } catch (failure) {
      problem = failure.status === 503
        ? `It is busy${failure.retryAfter ? `; try again in ${failure.retryAfter} s` : ""}: ${failure.message}`
        : failure.message;
    }
    opening.delete(phone.id);
    problems.set(phone.id, problem);
    refresh();
  }

  /** The phone's last screen (none before its first task's screenshot: the image then hides). */
  function thumbnail(phone, recent) {
    if (!recent.length) return null;
    // The latest task and its status in the URL: a new screenshot is fetched when they change.
    const version = `${recent[0].id}-${recent[0].status}`;
    const img = h("img", { class: "thumb-img", alt: `Last screen of ${phone.name}`, loading: "lazy",
      src: apiUrl(`api/v1/personal-phones/${encodeURIComponent(phone.id)}/thumbnail?v=${encodeURIComponent(version)}`) });
    img.addEventListener("error", () => img.remove());
    return img;
  }

  function card(phone, recent) {
    const note = h("p", { class: "error", role: "alert" }, problems.get(phone.id) ?? "");
    const pending = opening.has(phone.id);
    const open = h("button", { type: "button", class: "primary", disabled: pending, onclick: () => {
      problems.delete(phone.id);
      openSession(phone);
    } }, pending ? (phone.state === "asleep" || phone.state === "failed" ? "Waking it…" : "Opening…") : "Open");
    const last = recent.length
      ? recent.map((t) => h("a", { href: `#/tasks/${t.id}`, class: "run", dataset: { taskId: t.id } }, badge(t.status), " ", t.instruction))
      : [h("span", { class: "muted" }, "no tasks yet")];
    return h("li", { class: "device personal-phone", dataset: { phoneId: phone.id }, "aria-label": `Phone ${phone.name}, ${phone.state}` },
      h("div", { class: "thumb" }, thumbnail(phone, recent), h("span", { class: "screen-note" }, SCREEN[phone.state] ?? phone.state)),
      h("div", { class: "device-head" }, h("strong", { class: "phone-name" }, phone.name), h("span", { class: "state" }, badge(phone.state))),
      h("p", { class: "muted" }, phone.last_used_at ? ["Last used ", timeEl(phone.last_used_at)] : "Never used",
        phone.wake_ms !== null && phone.wake_ms !== undefined ? ` · last wake ${seconds(phone.wake_ms / 1000)}` : ""),
      phone.last_error ? h("p", { class: "error" }, phone.last_error) : null,
      h("div", { class: "runs", "aria-label": "Its last tasks" }, h("div", { class: "stack" }, last)),
      note,
      h("div", { class: "actions" },
        open,
        h("a", { href: `#/tasks?phone=${encodeURIComponent(phone.id)}`, class: "button" }, "New task on this phone"),
        h("button", { type: "button", class: "quiet", onclick: () => openRename(phone) }, "Rename"),
        h("button", { type: "button", class: "danger", onclick: () => openDelete(phone) }, "Delete")),
      h("p", { class: "hint" }, shortId(phone.id)));
  }

  let busy = false;
  let again = false; // a refresh asked for while one was under way runs after it
  async function refresh() {
    if (disposed) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const page = await personalPhones.list({ limit: 100 });
      const recent = await Promise.all(page.items.map((p) => tasks.list({ personal_phone_id: p.id, limit: TASKS_SHOWN })));
      if (disposed) return;
      listError.textContent = "";
      const seen = new Set();
      let before = null;
      for (const [i, phone] of page.items.entries()) {
        seen.add(phone.id);
        // A card is rebuilt only when what it shows changed, so a button being pressed stays put.
        const key = JSON.stringify([phone, recent[i].items.map((t) => [t.id, t.status]), opening.has(phone.id), problems.get(phone.id)]);
        let entry = cards.get(phone.id);
        if (!entry || entry.key !== key) {
          const el = card(phone, recent[i].items);
          if (entry) entry.el.replaceWith(el);
          entry = { el, key };
          cards.set(phone.id, entry);
        }
        if (before) before.after(entry.el);
        else grid.prepend(entry.el);
        before = entry.el;
      }
      for (const [id, entry] of cards) {
        if (!seen.has(id)) {
          entry.el.remove();
          cards.delete(id);
        }
      }
      empty.hidden = cards.size > 0;
    } catch (failure) {
      if (!disposed) listError.textContent = `Cannot load your phones: ${failure.message}`;
    } finally {
      busy = false;
    }
    if (again) {
      again = false;
      await refresh();
    }
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => {
    disposed = true;
    clearInterval(timer);
    renameDialog.remove();
    deleteDialog.remove();
  };
}
