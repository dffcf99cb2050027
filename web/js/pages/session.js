// One session: its phone live, in your hands; kept alive while this page is open; closed on request.

import { ApiError, sessions } from "../api.js";
import { fill, focusHeading, h, toast } from "../dom.js";
import { badge, deviceName, relative, shortId, timeEl } from "../format.js";
import { PhonePanel } from "../phone.js";
import { shareControls } from "../sharing.js";

export function mount(outlet, { params }) {
  const id = params[0];
  let session = null;
  let disposed = false;
  let keepalive = null;
  let clock = null;
  const phone = new PhonePanel("sessions", id, { label: "Your session's phone", onEnded: () => reload() });
  const statusEl = h("span", { id: "session-status" });
  const meta = h("dl", { class: "meta" });
  const expires = h("dd", { id: "session-expires" });
  const note = h("p", { class: "hint", role: "status" });
  const close = h("button", { type: "button", class: "danger", onclick: () => closeSession() }, "Close session");
  const sharing = shareControls("session", id, "while the session is active");
  outlet.append(h("p", { class: "muted" }, "Loading the session…"));

  function layout() {
    fill(outlet,
      h("p", {}, h("a", { href: "#/sessions" }, "← Sessions")),
      h("div", { class: "page-head" }, h("h1", {}, `Session ${shortId(id)}`), statusEl),
      h("div", { class: "actions" }, close, sharing.button),
      sharing.url,
      note,
      h("div", { class: "task-layout" },
        h("div", {}, phone.el),
        h("section", { class: "panel", "aria-label": "Details" }, meta)));
    // The heading arrives with the data: announce it, unless the person already moved on.
    if (!outlet.contains(document.activeElement) || document.activeElement === outlet) focusHeading(outlet);
  }

  function show(next) {
    const first = session === null;
    session = next;
    if (first) layout();
    fill(statusEl, badge(session.state));
    fill(meta,
      h("dt", {}, "Session"), h("dd", {}, h("code", {}, session.id)),
      h("dt", {}, "Phone"), h("dd", {}, session.device ? h("code", { title: session.device.id }, deviceName(session.device)) : "—"),
      h("dt", {}, "Created"), h("dd", {}, timeEl(session.created_at)),
      h("dt", {}, "Expires"), expires,
      session.adb ? [h("dt", {}, "adb"), h("dd", {}, h("code", { title: "Opens the ADB tunnel on this computer, then: adb connect 127.0.0.1:PORT" }, session.adb.command))] : null);
    tick();
    const active = session.state === "active";
    close.hidden = !active;
    sharing.button.hidden = !active;
    if (active) {
      phone.start();
      if (!keepalive) keepalive = setInterval(keepAlive, Math.max(10, session.ttl_s / 3) * 1000);
    } else {
      stopTimers();
      phone.stop(`This session is ${session.state}; its phone went back to the pool.`);
    }
  }

  function tick() {
    if (session) expires.textContent = session.state === "active" ? `${relative(session.expires_at)} (kept alive while this page is open)` : "—";
  }

  async function keepAlive() {
    try {
      show(await sessions.keepalive(id));
    } catch (error) {
      note.textContent = `Keepalive failed: ${error.message}`;
      reload();
    }
  }

  async function reload() {
    try {
      show(await sessions.get(id));
    } catch (error) {
      note.textContent = error.message;
    }
  }

  async function closeSession() {
    close.disabled = true;
    try {
      show(await sessions.close(id));
      toast("Session closed; the phone goes back to the pool.");
    } catch (error) {
      note.textContent = `Cannot close: ${error.message}`;
    } finally {
      close.disabled = false;
    }
  }

  function stopTimers() {
    clearInterval(keepalive);
    keepalive = null;
  }

  sessions.get(id).then((s) => { if (!disposed) show(s); }, (error) => {
    if (disposed) return;
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
      fill(outlet, h("h1", {}, "Session not found"),
        h("p", {}, `There is no session ${id} for you.`), h("p", {}, h("a", { href: "#/sessions" }, "Back to the sessions")));
    } else {
      fill(outlet, h("h1", {}, "Session"), h("p", { class: "error" }, error.message));
    }
  });
  clock = setInterval(tick, 1000);

  return () => {
    disposed = true;
    stopTimers();
    clearInterval(clock);
    phone.destroy();
    sharing.destroy();
  };
}
