// Sessions: hold a phone for yourself (POST /api/v1/sessions) and use it by hand; the list of yours.

import { sessions } from "../api.js";
import { h } from "../dom.js";
import { badge, deviceName, relative, shortId, timeEl } from "../format.js";

const TTLS = [[600, "10 minutes"], [1800, "30 minutes"], [3600, "1 hour"], [14400, "4 hours"]];

export function mount(outlet, { router }) {
  let disposed = false;
  const ttl = h("select", { id: "session-ttl", name: "ttl_s" }, TTLS.map(([s, text]) => h("option", { value: String(s) }, text)));
  const profile = h("input", { id: "session-profile", type: "text", autocomplete: "off", placeholder: 'pixel13  or  {"android": "13"}' });
  const error = h("p", { class: "error", role: "alert" });
  const open = h("button", { type: "submit", class: "primary" }, "Open a phone");
  const form = h("form", { class: "panel", "aria-labelledby": "open-title", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    const fields = { ttl_s: Number(ttl.value), wait_s: 10 };
    const raw = profile.value.trim();
    if (raw) {
      try {
        fields.device_profile = raw.startsWith("{") ? JSON.parse(raw) : raw;
      } catch (failure) {
        error.textContent = `The device profile is not valid JSON: ${failure.message}`;
        return;
      }
    }
    open.disabled = true;
    open.textContent = "Finding a phone…";
    try {
      const session = await sessions.create(fields);
      router.go(`#/sessions/${session.id}`);
    } catch (failure) {
      error.textContent = failure.status === 503
        ? `No phone is free right now${failure.retryAfter ? `; try again in ${failure.retryAfter} s` : ""}.`
        : failure.message;
    } finally {
      open.disabled = false;
      open.textContent = "Open a phone";
    }
  } },
  h("h2", { id: "open-title" }, "Open a phone"),
  h("p", { class: "muted" }, "The phone is yours alone until you close the session or leave it idle past its time; " +
    "the page keeps it alive while it is open. Then the pool resets it."),
  h("div", { class: "row" },
    h("div", { class: "field" }, h("label", { for: "session-ttl" }, "Keep it for"), ttl),
    h("div", { class: "field grow" }, h("label", { for: "session-profile" }, "Device profile ", h("span", { class: "hint" }, "(optional)")), profile)),
  error,
  h("div", { class: "actions" }, open));

  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, "No sessions yet.");
  outlet.append(
    h("h1", {}, "Sessions"),
    form,
    h("section", { class: "panel", "aria-labelledby": "sessions-title" },
      h("h2", { id: "sessions-title" }, "Your sessions"),
      h("table", {},
        h("thead", {}, h("tr", {}, ["Session", "State", "Phone", "Created", "Expires"].map((t) => h("th", { scope: "col" }, t)))),
        body),
      empty));

  sessions.list({ limit: 50 }).then((page) => {
    if (disposed) return;
    for (const s of page.items) {
      body.append(h("tr", { dataset: { sessionId: s.id } },
        h("td", { "data-label": "Session" }, h("a", { href: `#/sessions/${s.id}` }, shortId(s.id))),
        h("td", { "data-label": "State" }, badge(s.state)),
        h("td", { "data-label": "Phone" }, s.device ? h("code", { title: s.device.id }, deviceName(s.device)) : "—"),
        h("td", { "data-label": "Created" }, timeEl(s.created_at)),
        h("td", { "data-label": "Expires" }, s.state === "active" ? relative(s.expires_at) : "—")));
    }
    empty.hidden = page.items.length > 0;
  }, (failure) => { error.textContent = `Cannot load your sessions: ${failure.message}`; });

  return () => { disposed = true; };
}
