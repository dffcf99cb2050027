// The share page (/share/{token}; docs/live-view.md, "Share links"): one phone's live view for
// whoever holds the link, with no API key and no dashboard around it. It opens the link (which
// counts a use), then watches through the link's own signalling. A view link never sends input (the
// server refuses it too); a control link sends taps, swipes, keys and text while the server says
// this viewer is in control. When the view ends (the task's phone went back, the task is not on a
// phone yet) the page asks the link's state again: an ended task shows its final screen and its
// recording, if any; a revoked or expired link says so.

import { bindGestures } from "./gestures.js";
import { LiveView } from "./live.js";

const RETRY_MS = 3000; // between a closed view and the next look at the link's state
const token = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
const base = encodeURIComponent(token); // relative to /share/: "<token>/open" → /share/<token>/open
const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

function refused(error) {
  status(error.status === 410 ? `This link has expired: ${error.message}` : "This link does not exist or was revoked.");
  $("video").hidden = true;
  $("keys").hidden = true;
}

function showEnded(state) {
  $("video").hidden = true;
  $("keys").hidden = true;
  if (state.recording) {
    const recording = $("recording");
    recording.src = new URL(`${base}/recording`, location.href).toString();
    recording.hidden = false;
  }
  if (state.screenshot) {
    const shot = $("final");
    shot.src = new URL(`${base}/screenshot`, location.href).toString();
    shot.hidden = Boolean(state.recording);
  }
  status(`This ${state.kind} has ended (${state.status}).`);
}

const page = { view: null, inControl: false };
window.pf = Object.assign(window.pf ?? {}, { share: page });

/** One live view until it ends (bye, a failed connection, or no phone to watch). */
function watchOnce(state) {
  return new Promise((resolve) => {
    const surface = $("screen");
    const view = new LiveView(state.kind, token, $("video"), {
      config: async () => ({ ice_servers: state.ice_servers, control_label: "control" }),
      offer: (sdp) => call("POST", `${base}/webrtc`, { type: "offer", sdp, open_id: state.open_id }),
      onMessage: (message) => {
        if (message.type === "hello" || message.type === "control") {
          page.inControl = state.mode === "control" && Boolean(message.control);
          surface.classList.toggle("view-only", !page.inControl);
          $("keys").hidden = !page.inControl;
          status(page.inControl ? "You control this phone." : (message.reason ?? "View only."));
        } else if (message.type === "bye") {
          status(`The live view ended: ${message.reason}.`);
          view.close();
          resolve();
        }
      },
      onState: (connection) => {
        if (connection === "failed" || connection === "closed") {
          view.close();
          resolve();
        }
      },
    });
    page.view = view;
    $("video").hidden = false;
    status("Connecting…");
    view.connect().catch((error) => {
      status(error.code === "no_live_device"
        ? `The ${state.kind} holds no phone right now; waiting for it…`
        : `Cannot watch this phone: ${error.message}`);
      if (error.status === 404 || error.status === 410) refused(error);
      resolve(error);
    });
  });
}

async function main() {
  let state;
  try {
    state = await call("POST", `${base}/open`);
  } catch (error) {
    return refused(error);
  }
  page.opened = state;
  if (state.mode === "control") {
    const send = (message) => (page.inControl && page.view ? page.view.send(message).catch(() => {}) : Promise.resolve());
    bindGestures($("screen"), $("video"), send);
    for (const button of $("keys").querySelectorAll("button")) {
      button.addEventListener("click", () => send({ type: "key", key: button.dataset.key }));
    }
  }
  for (;;) {
    if (state.ended) return showEnded(state);
    const failure = await watchOnce(state);
    if (failure?.status === 404 || failure?.status === 410) return;
    page.inControl = false;
    await pause(RETRY_MS);
    try {
      state = { ...state, ...(await call("GET", `${base}/state?open_id=${encodeURIComponent(state.open_id)}`)) };
    } catch (error) {
      return refused(error);
    }
  }
}

main();
