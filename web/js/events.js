// The events WebSocket (docs/api.md, "Events"): your tenant's events, live, resumed without loss.
// The pf_session cookie (the login) authenticates the handshake (the server checks that Origin is this host).
// On a drop it reconnects with `after=` the last id it saw, so nothing is skipped or repeated.

const FATAL = new Map([
  [4401, "not logged in"],
  [4403, "refused"],
  [4404, "not found"],
  [4422, "bad request"],
]);

export class EventStream {
  /**
   * @param {object} options
   * @param {string|null} options.taskId  only this task's events
   * @param {number|null} options.after   replay the stored events after this id first (0: all)
   * @param {(event) => void} options.onEvent       each event (id not null), in id order
   * @param {(state, detail) => void} options.onState  "live", "reconnecting", "closed"
   */
  constructor({ taskId = null, after = null, onEvent, onState = () => {} }) {
    this.taskId = taskId;
    this.after = after;
    this.onEvent = onEvent;
    this.onState = onState;
    this.socket = null;
    this.stopped = false;
    this.retries = 0;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  connect() {
    const url = new URL("api/v1/events", document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.taskId) url.searchParams.set("task_id", this.taskId);
    if (this.after !== null) url.searchParams.set("after", String(this.after));
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onmessage = (message) => this.received(JSON.parse(message.data));
    socket.onclose = (event) => this.closed(socket, event);
  }

  received(message) {
    if (message.id === null) {
      if (message.type === "subscribed") {
        this.retries = 0;
        if (this.after === null) this.after = message.payload.after;
        this.onState("live");
      }
      return; // keepalive and control messages we do not know
    }
    if (this.after !== null && message.id <= this.after) return;
    this.after = message.id;
    this.onEvent(message);
  }

  closed(socket, event) {
    if (socket !== this.socket || this.stopped) return;
    if (event.code === 4401) {
      window.dispatchEvent(new CustomEvent("pf:unauthenticated"));
    }
    if (FATAL.has(event.code)) {
      this.onState("closed", event.reason || FATAL.get(event.code));
      return;
    }
    // 1001/1012 (server restarting), 1013 (too slow), network loss: back off and resume.
    const delay = Math.min(15000, 500 * 2 ** this.retries++);
    this.onState("reconnecting", `reconnecting in ${Math.round(delay / 1000)} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000);
    this.socket = null;
  }
}

/**
 * `fn` wrapped so that calls while it runs collapse into one more run afterwards: a burst of events
 * (a replay, several steps at once) costs at most two reloads, and the last one sees everything.
 */
export function coalesced(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await fn();
        } catch (error) {
          console.error(error);
        }
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  };
  return run;
}
