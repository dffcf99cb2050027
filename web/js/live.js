// One live view of a phone over WebRTC (docs/live-view.md): a receive-only H.264 video and the
// `control` data channel for input. Signalling is one request: the complete offer (ICE gathered,
// no trickle) to POST /api/v1/{tasks|sessions|devices}/{id}/webrtc, the complete answer back.
//
// Every open view is in `window.pf.viewers` (a Set), so a test or a curious person can read its
// stats: `[...pf.viewers][0].snapshot()`.

import { webrtc } from "./api.js";

const GATHER_TIMEOUT_MS = 3000; // host candidates come at once; an unreachable STUN server must not stall us
const ACK_TIMEOUT_MS = 10000;
const PING_MS = 30000; // the server closes a view idle (no control message) for idle_timeout_s (600 s)
const STATS_MS = 500;

export const viewers = new Set();
window.pf = Object.assign(window.pf ?? {}, { viewers });
// A closed tab frees its views at once (otherwise the server notices by ICE consent, ~30 s later).
window.addEventListener("pagehide", () => {
  for (const view of [...viewers]) view.close();
});

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export class LiveView {
  /**
   * @param {"tasks"|"sessions"|"devices"} kind
   * @param {string} id
   * @param {HTMLVideoElement} video
   * @param {object} handlers  onMessage(m) for hello/control/bye; onState(connectionState);
   *   config() and offer(sdp) replace the API's signalling (the share page signals with its token)
   */
  constructor(kind, id, video, { onMessage = () => {}, onState = () => {}, config = null, offer = null } = {}) {
    this.kind = kind;
    this.id = id;
    this.config = config ?? (() => webrtc.config());
    this.offer = offer ?? ((sdp) => webrtc.offer(kind, id, sdp));
    this.video = video;
    this.onMessage = onMessage;
    this.onState = onState;
    this.pc = null;
    this.channel = null;
    this.answer = null;
    this.hello = null;
    this.closed = false;
    this.seq = 0;
    this.pending = new Map();
    this.pingTimer = null;
    this.statsTimer = null;
    this.inbound = { framesDecoded: 0, framesPerSecond: 0, bytesReceived: 0 };
  }

  /** Negotiate; rejects with the API's error (404 not yours, 409 no phone now, …). */
  async connect() {
    const config = await this.config().catch(() => ({ ice_servers: [] }));
    const pc = new RTCPeerConnection({ iceServers: config.ice_servers ?? [] });
    this.pc = pc;
    viewers.add(this);
    pc.addTransceiver("video", { direction: "recvonly" });
    const channel = pc.createDataChannel(config.control_label ?? "control", { ordered: true });
    this.channel = channel;
    channel.onmessage = (event) => this.received(event.data);
    channel.onopen = () => {
      this.pingTimer = setInterval(() => this.send({ type: "ping" }).catch(() => {}), PING_MS);
    };
    channel.onclose = () => this.failPending("the control channel closed");
    pc.ontrack = (event) => {
      this.video.srcObject = event.streams[0] ?? new MediaStream([event.track]);
      this.video.play().catch(() => {}); // muted autoplay is allowed; a refusal only delays the picture
    };
    pc.onconnectionstatechange = () => this.onState(pc.connectionState);
    this.statsTimer = setInterval(() => this.sample().catch(() => {}), STATS_MS);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (this.closed) throw new Error("closed");
      this.answer = await this.offer(pc.localDescription.sdp);
      if (this.closed) throw new Error("closed");
      await pc.setRemoteDescription({ type: "answer", sdp: this.answer.sdp });
    } catch (error) {
      this.close();
      throw error;
    }
    return this.answer;
  }

  received(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (message.type === "ack") {
      const waiter = this.pending.get(message.id);
      if (waiter) {
        this.pending.delete(message.id);
        clearTimeout(waiter.timer);
        waiter.resolve(message);
      }
      return;
    }
    if (message.type === "hello") this.hello = message;
    this.onMessage(message);
  }

  /** Send one control message; resolves with its ack ({ok, error, message}). */
  send(message) {
    if (!this.channel || this.channel.readyState !== "open") {
      return Promise.reject(new Error("the phone is not connected"));
    }
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error("the phone did not answer in time"));
      }, ACK_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.channel.send(JSON.stringify({ ...message, id }));
    });
  }

  failPending(reason) {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(reason));
    }
    this.pending.clear();
  }

  /** Read the receiver's WebRTC stats now (the view also does so every STATS_MS into `inbound`). */
  async sample() {
    if (!this.pc || this.closed) return this.inbound;
    (await this.pc.getStats()).forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video") {
        this.inbound = {
          framesDecoded: report.framesDecoded ?? 0,
          framesPerSecond: report.framesPerSecond ?? 0,
          bytesReceived: report.bytesReceived ?? 0,
        };
      }
    });
    return this.inbound;
  }

  /** What the browser received and decoded (as of the last sample) and shows now; synchronous. */
  snapshot() {
    return {
      ...this.inbound,
      width: this.video.videoWidth, height: this.video.videoHeight, currentTime: this.video.currentTime,
      connectionState: this.pc?.connectionState ?? "closed",
    };
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pingTimer);
    clearInterval(this.statsTimer);
    this.failPending("closed");
    viewers.delete(this);
    try {
      this.channel?.close();
      this.pc?.close();
    } catch {
      // already closed
    }
    if (this.video.srcObject) this.video.srcObject = null;
  }
}
