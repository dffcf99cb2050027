// The phone panel: the live video, the input surface around it, Back / Home / Recents, a text field,
// and what the server says about control ("You control this phone" / "View only: …").

import { ApiError } from "./api.js";
import { h } from "./dom.js";
import { bindGestures } from "./gestures.js";
import { LiveView } from "./live.js";

const KEYS = [["back", "Back"], ["home", "Home"], ["recents", "Recents"]];
// How often the panel asks whether the screen is protected (a secure window shows black video).
const SCREEN_CHECK_MS = 2000;
let panels = 0;

export class PhonePanel {
  /**
   * @param {"tasks"|"sessions"|"devices"} kind  whose phone: a task's, a session's, or a device
   * @param {string} id
   * @param {object} options  label; onEnded(reason) when the server ends the view
   */
  constructor(kind, id, { label = "Live phone", onEnded = () => {} } = {}) {
    this.kind = kind;
    this.id = id;
    this.onEnded = onEnded;
    this.view = null;
    this.starting = null;
    this.control = false;
    const help = `phone-help-${++panels}`;
    this.video = h("video", { muted: true, autoplay: true, playsInline: true, "aria-hidden": "true" });
    this.overlay = h("div", { class: "overlay" }, "Not connected");
    // A secure window (a login) records black: say why, and outline its elements from the view tree
    // so a person can still use it through the phone controls. Pointer events pass through to the
    // surface, so a click on an outline taps that element.
    this.protectedNote = h("p", { class: "protected-note", role: "status" });
    this.protectedBoxes = h("div", { class: "protected-boxes" });
    this.protectedLayer = h("div", { class: "protected", hidden: true, id: `${help}-protected` },
      this.protectedNote, this.protectedBoxes);
    this.surface = h("div", {
      class: "screen view-only", tabindex: "0", role: "application", "aria-roledescription": "phone screen",
      "aria-label": label, "aria-describedby": help,
    }, this.video, this.protectedLayer, this.overlay);
    this.keys = KEYS.map(([key, text]) => h("button", {
      type: "button", disabled: true, dataset: { key }, onclick: () => this.input({ type: "key", key }),
    }, text));
    this.text = h("input", { type: "text", id: `${help}-text`, autocomplete: "off", disabled: true, enterkeyhint: "send" });
    this.sendButton = h("button", { type: "submit", disabled: true }, "Send");
    const form = h("form", { class: "type-form", onsubmit: (event) => this.submitText(event) },
      h("label", { class: "visually-hidden", for: `${help}-text` }, "Type on the phone"), this.text, this.sendButton);
    this.status = h("p", { class: "phone-status", role: "status" });
    this.stats = h("p", { class: "phone-stats", "aria-hidden": "true" });
    this.el = h("section", { class: "phone", "aria-label": label },
      this.surface,
      h("div", { class: "phone-keys", role: "group", "aria-label": "Phone buttons" }, this.keys),
      form, this.status, this.stats,
      h("p", { class: "visually-hidden", id: help },
        "Click to tap, double-click to double tap, press and hold for a long press, drag to swipe. " +
        "While this has focus, typing goes to the phone; Enter and Backspace too; Page Up and Page Down scroll."));
    this.unbind = bindGestures(this.surface, this.video, (message) => this.input(message));
    this.video.addEventListener("playing", () => { this.overlay.hidden = true; });
    this.statsTimer = setInterval(() => this.showStats(), 1000);
    this.screenTimer = setInterval(() => this.checkScreen(), SCREEN_CHECK_MS);
  }

  get live() {
    return Boolean(this.view && !this.view.closed);
  }

  /** Connect (once; a second call while connected does nothing). Resolves true when connected. */
  start() {
    if (this.live) return Promise.resolve(true);
    if (this.starting) return this.starting;
    this.say("Connecting to the phone…");
    const view = new LiveView(this.kind, this.id, this.video, {
      onMessage: (message) => this.message(view, message),
      onState: (state) => this.connection(view, state),
    });
    this.view = view;
    this.starting = view.connect().then(() => true, (error) => {
      if (this.view === view) this.view = null;
      if (error instanceof ApiError && error.status === 409) this.say(`No phone to show right now. ${error.message}`);
      else if (error instanceof ApiError && error.status === 404) this.say("Not found: there is no such phone for you to watch.");
      else this.say(`Cannot show the phone: ${error.message}`);
      return false;
    }).finally(() => { this.starting = null; });
    return this.starting;
  }

  /** Close the view and show `text` over the last picture. */
  stop(text = "Not connected") {
    this.view?.close();
    this.view = null;
    this.setControl(false, null);
    this.showProtected(null);
    this.say(text);
  }

  destroy() {
    clearInterval(this.statsTimer);
    clearInterval(this.screenTimer);
    this.unbind();
    this.stop();
  }

  say(text) {
    this.overlay.textContent = text;
    this.overlay.hidden = !text;
  }

  message(view, message) {
    if (view !== this.view) return;
    if (message.type === "hello" || message.type === "control") {
      this.setControl(message.control, message.reason);
    } else if (message.type === "bye") {
      this.stop(`The live view ended: ${message.reason}`);
      this.onEnded(message.reason);
    }
  }

  connection(view, state) {
    if (view !== this.view) return;
    if (state === "failed" || state === "closed") {
      this.stop(`The connection to the phone ${state}.`);
      this.onEnded(`connection ${state}`);
    }
  }

  setControl(control, reason) {
    this.control = Boolean(control);
    this.surface.classList.toggle("view-only", !this.control);
    for (const button of [...this.keys, this.text, this.sendButton]) button.disabled = !this.control;
    this.status.classList.toggle("in-control", this.control);
    if (!this.live) this.status.textContent = "";
    else this.status.textContent = this.control ? "You control this phone." : (reason ?? "View only.").replace(/^view only/i, "View only");
  }

  async input(message) {
    if (!this.live) return;
    if (!this.control) {
      this.status.textContent = "View only: you cannot use this phone now.";
      return;
    }
    try {
      const ack = await this.view.send(message);
      if (!ack.ok) this.status.textContent = `The phone refused ${message.type}: ${ack.message}`;
      else if (this.control) this.status.textContent = "You control this phone.";
      return ack.ok;
    } catch (error) {
      this.status.textContent = `${message.type}: ${error.message}`;
      return false;
    }
  }

  async submitText(event) {
    event.preventDefault();
    const text = this.text.value;
    if (text && await this.input({ type: "text", text })) this.text.value = "";
  }

  /** Ask the server whether the screen is protected, and show it (the overlay and outlines). */
  async checkScreen() {
    // A hidden tab does not ask: its questions would keep an unwatched view from closing as idle.
    if (!this.live || this.checking || document.hidden) return;
    this.checking = true;
    try {
      const ack = await this.view.send({ type: "screen" });
      this.showProtected(ack.ok ? ack.screen : null);
    } catch {
      // A slow or closing view: the next check tries again.
    } finally {
      this.checking = false;
    }
  }

  showProtected(screen) {
    const on = Boolean(this.live && screen?.protected);
    this.protectedLayer.hidden = !on;
    this.surface.classList.toggle("is-protected", on);
    if (!on) return;
    this.protectedNote.textContent = "This screen is protected (a secure window, such as a login), so the phone " +
      "does not share its picture. The outlines below come from the phone's view tree: tap them and type to use it.";
    // The video keeps the phone's aspect ratio inside the surface (object-fit: contain): place the
    // outlines over the picture's own box.
    const box = this.pictureBox();
    this.protectedBoxes.replaceChildren(...screen.elements.map((e) => {
      const [l, t, r, b] = e.bounds;
      const kind = e.password ? "password field" : e.editable ? "text field" : e.clickable ? "button" : "text";
      const outline = h("div", {
        class: `protected-box${e.focused ? " focused" : ""}${e.clickable || e.editable ? " actionable" : ""}`,
        title: `${e.label} (${kind})`,
      }, h("span", {}, e.label));
      // Through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
      Object.assign(outline.style, {
        left: `${box.left + l * box.width}px`, top: `${box.top + t * box.height}px`,
        width: `${(r - l) * box.width}px`, height: `${(b - t) * box.height}px`,
      });
      return outline;
    }));
  }

  pictureBox() {
    const width = this.surface.clientWidth;
    const height = this.surface.clientHeight;
    const hello = this.view?.hello ?? {};
    const vw = this.video.videoWidth || hello.video?.width || 9;
    const vh = this.video.videoHeight || hello.video?.height || 16;
    const scale = Math.min(width / vw, height / vh);
    // The phone's screen is the video's content area (the video may be padded to even sizes).
    const c = hello.content ?? { x: 0, y: 0, width: vw, height: vh };
    return {
      left: (width - vw * scale) / 2 + c.x * scale, top: (height - vh * scale) / 2 + c.y * scale,
      width: c.width * scale, height: c.height * scale,
    };
  }

  showStats() {
    if (!this.live) {
      this.stats.textContent = "";
      return;
    }
    const s = this.view.snapshot();
    this.stats.textContent = s.width ? `${s.width}×${s.height} · ${Math.round(s.framesPerSecond)} fps · ${s.framesDecoded} frames` : "";
  }
}
