// The share page (/share/{token}; docs/live-view.md, "Share links"): one phone's live view for
// whoever holds the link, with no API key and no dashboard around it. It opens the link (which
// counts a use), then watches through the link's own signalling. A view link never sends input (the
// server refuses it too); a control link sends taps, swipes, keys and text while the server says
// this viewer is in control. An ended task shows its final screen and its recording, if any.

import { bindGestures } from "./gestures.js";
import { LiveView } from "./live.js";

const token = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
const base = `${encodeURIComponent(token)}`; // relative to /share/: "<token>/open" → /share/<token>/open
const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };

async function call(method, path, body) {
  const init = { method, credentials: "omit", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(new URL(path, location.href), init);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.message ?? response.statusText);
    error.status = response.status;
    error.code = data?.error;
    throw error;
  }
  return data;
}

function showEnded(opened) {
  $("video").hidden = true;
  if (opened.recording) {
    const recording = $("recording");
    recording.src = new URL(`${base}/recording`, location.href).toString();
    recording.hidden = false;
  }
  if (opened.screenshot) {
    const shot = $("final");
    shot.src = new URL(`${base}/screenshot`, location.href).toString();
    shot.hidden = Boolean(opened.recording);
  }
  status(`This ${opened.kind} has ended (${opened.status}).`);
}

async function main() {
  let opened;
  try {
    opened = await call("POST", `${base}/open`);
  } catch (error) {
    status(error.status === 410 ? `This link has expired: ${error.message}` : "This link does not exist or was revoked.");
    return;
  }
  if (opened.ended) return showEnded(opened);
  const surface = $("screen");
  let inControl = false;
  const view = new LiveView(opened.kind, token, $("video"), {
    config: async () => ({ ice_servers: opened.ice_servers, control_label: "control" }),
    offer: (sdp) => call("POST", `${base}/webrtc`, { type: "offer", sdp, open_id: opened.open_id }),
    onMessage: (message) => {
      if (message.type === "hello" || message.type === "control") {
        inControl = opened.mode === "control" && Boolean(message.control);
        surface.classList.toggle("view-only", !inControl);
        $("keys").hidden = !inControl;
        status(inControl ? "You control this phone." : (message.reason ?? "View only."));
      } else if (message.type === "bye") {
        status(`The live view ended: ${message.reason}.`);
      }
    },
    onState: (state) => {
      if (state === "failed") status("The connection to the phone failed; reload to retry.");
    },
  });
  window.pf.share = { view, opened };
  const send = (message) => (inControl ? view.send(message).catch(() => {}) : Promise.resolve());
  if (opened.mode === "control") {
    bindGestures(surface, $("video"), send);
    for (const button of $("keys").querySelectorAll("button")) {
      button.addEventListener("click", () => send({ type: "key", key: button.dataset.key }));
    }
  }
  status("Connecting…");
  try {
    await view.connect();
    $("video").addEventListener("playing", () => { if (!inControl) status(view.hello?.reason ?? "View only."); });
  } catch (error) {
    if (error.code === "no_live_device") {
      // The task ended (or has no phone yet) between the open and the offer: show what is left.
      status(`The ${opened.kind} holds no phone right now: ${error.message}`);
    } else {
      status(`Cannot watch this phone: ${error.message}`);
    }
  }
}

main();
