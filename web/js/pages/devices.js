// The fleet as a grid: every phone's state (devices are shared infrastructure, docs/api.md), and a live
// thumbnail for the phones you may watch — those leased to your tenant, and, for admins, idle ones.
// Another tenant's phone shows its state only, never its screen (whatever the API would allow).
//
// Thumbnails are view-only WebRTC streams (one capture per phone on the server, however many
// viewers; a still screen sends nothing). At most MAX_LIVE stream at once, only tiles on screen.

import { devices } from "../api.js";
import { fill, h } from "../dom.js";
import { EventStream, coalesced } from "../events.js";
import { badge, deviceName, shortId } from "../format.js";
import { LiveView } from "../live.js";

const MAX_LIVE = 4;
const REFRESH_MS = 5000;
const KEEP_HIDDEN_MS = 10000;

function watchable(device, me) {
  if (device.lease) return true; // `lease` is filled only for your own tenant's leases
  return me.role === "admin" && device.state === "idle";
}

export function mount(outlet, { ctx }) {
  const tiles = new Map(); // device id → {el, thumb, note, video, view, device, visible}
  const grid = h("ul", { class: "grid", id: "device-grid" });
  const summary = h("p", { class: "hint", role: "status" });
  let disposed = false;

  outlet.append(
    h("div", { class: "page-head" }, h("h1", {}, "Devices"), summary),
    h("p", { class: "muted" }, ctx.me.role === "admin"
      ? "Live thumbnails: your tenant's leased phones and idle phones. Other tenants' phones show their state only."
      : "Live thumbnails: phones leased to your tenant. Other phones show their state only."),
    grid);

  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const seen = tiles.get(entry.target.dataset.deviceId);
      if (seen) seen.visible = entry.isIntersecting;
    }
    streams();
  });

  function tile(device) {
    const video = h("video", { muted: true, autoplay: true, playsInline: true, "aria-hidden": "true" });
    const note = h("span", {});
    const thumb = h("div", { class: "thumb" }, note);
    const info = h("div", { class: "info" });
    const el = h("li", { class: "device", dataset: { deviceId: device.id } }, thumb, info);
    const entry = { el, thumb, note, info, video, view: null, device, visible: false, seenAt: 0 };
    video.addEventListener("playing", () => { note.textContent = ""; });
    observer.observe(el);
    return entry;
  }

  function render(entry) {
    const d = entry.device;
    const profile = d.profile ?? {};
    const lease = d.lease;
    const holder = lease?.task_id
      ? h("a", { href: `#/tasks/${lease.task_id}` }, `your task ${shortId(lease.task_id)}`)
      : lease?.session_id ? h("a", { href: `#/sessions/${lease.session_id}` }, `your session ${shortId(lease.session_id)}`) : null;
    fill(entry.info,
      h("div", { class: "device-head" }, h("strong", {}, h("code", { title: d.id }, deviceName(d))), badge(d.state)),
      h("p", { class: "muted" }, [d.provider, profile.width && `${profile.width}×${profile.height}`, profile.android && `Android ${profile.android}`].filter(Boolean).join(" · ")),
      holder ? h("p", {}, "Leased to ", holder) : d.state === "leased" ? h("p", { class: "muted" }, "Leased (not your tenant)") : null,
      d.labels?.drain ? h("p", { class: "muted" }, "Draining: no new leases") : null,
      d.quarantined_at ? h("p", { class: "error" }, "Quarantined: stopped answering, never leased") : null,
      d.last_error ? h("p", { class: "error" }, d.last_error) : null);
    entry.el.setAttribute("aria-label", `Phone ${deviceName(d)}, ${d.state}`);
  }

  // Stream the watchable tiles on screen (up to MAX_LIVE); one scrolled away keeps its stream for
  // KEEP_HIDDEN_MS (checked at each refresh), so scrolling back and forth does not renegotiate.
  function streams() {
    const now = Date.now();
    let live = 0;
    for (const entry of tiles.values()) {
      const may = !disposed && watchable(entry.device, ctx.me);
      if (entry.visible) entry.seenAt = now;
      const recent = entry.visible || (entry.view && now - entry.seenAt < KEEP_HIDDEN_MS);
      if (may && recent && live < MAX_LIVE) {
        live += 1;
        if (!entry.view) startView(entry);
      } else {
        stopView(entry, may ? "Scroll to see it live" : "State only: not leased to you");
      }
    }
  }

  function startView(entry) {
    if (!entry.video.isConnected) entry.thumb.prepend(entry.video);
    entry.note.textContent = "Connecting…";
    const view = new LiveView("devices", entry.device.id, entry.video, {
      onMessage: (m) => { if (m.type === "bye" && entry.view === view) stopView(entry, `Live view ended: ${m.reason}`); },
      onState: (state) => { if ((state === "failed" || state === "closed") && entry.view === view) stopView(entry, "Disconnected"); },
    });
    entry.view = view;
    view.connect().catch((error) => {
      if (entry.view === view) stopView(entry, `No live view: ${error.message}`);
    });
  }

  function stopView(entry, text) {
    if (entry.view) {
      entry.view.close();
      entry.view = null;
    }
    entry.video.remove();
    entry.note.textContent = text;
  }

  const refresh = coalesced(async () => {
    let items = [];
    let cursor = null;
    do {
      const page = await devices.list({ limit: 100, cursor });
      items = items.concat(page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < 500);
    if (disposed) return;
    const seen = new Set();
    for (const device of items) {
      seen.add(device.id);
      let entry = tiles.get(device.id);
      if (!entry) {
        entry = tile(device);
        tiles.set(device.id, entry);
        grid.append(entry.el);
      }
      const leaseChanged = JSON.stringify(entry.device.lease) !== JSON.stringify(device.lease);
      entry.device = device;
      if (leaseChanged && entry.view) stopView(entry, "The lease changed");
      render(entry);
    }
    for (const [id, entry] of tiles) {
      if (seen.has(id)) continue;
      stopView(entry, "");
      observer.unobserve(entry.el);
      entry.el.remove();
      tiles.delete(id);
    }
    const counts = {};
    for (const d of items) counts[d.state] = (counts[d.state] ?? 0) + 1;
    summary.textContent = items.length
      ? `${items.length} phones: ${Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(", ")}`
      : "No phones in the pool.";
    streams();
  });

  const timer = setInterval(refresh, REFRESH_MS);
  const stream = new EventStream({
    onEvent: (event) => { if (event.type.startsWith("device.")) refresh(); },
  }).start();
  refresh();

  return () => {
    disposed = true;
    clearInterval(timer);
    stream.stop();
    observer.disconnect();
    for (const entry of tiles.values()) stopView(entry, "");
  };
}
