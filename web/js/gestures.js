// Pointer and keyboard on the phone's video → `control` messages (docs/dashboard.md, "Input").
//
// Points are normalised (0–1) against the picture the video element actually shows: with
// `object-fit: contain` the picture is letterboxed inside the element's content box, so the bars
// are subtracted first. A point on a bar is not on the phone and is ignored. The server maps the
// video frame to the screen (its own letterbox included).

export const TAP_DELAY_MS = 250; // a second click within this is a double tap, so a tap waits this long
export const HOLD_MS = 500; // pressed this long without moving: a long press
export const DRAG_PX = 8; // moved further than this (CSS px): a swipe

/** The displayed picture's rectangle in client coordinates, or null before the video has a size. */
export function pictureRect(video) {
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  if (!vw || !vh) return null;
  const box = video.getBoundingClientRect();
  const style = getComputedStyle(video);
  const px = (name) => parseFloat(style[name]) || 0;
  const left = box.left + px("borderLeftWidth") + px("paddingLeft");
  const top = box.top + px("borderTopWidth") + px("paddingTop");
  const width = box.width - px("borderLeftWidth") - px("paddingLeft") - px("paddingRight") - px("borderRightWidth");
  const height = box.height - px("borderTopWidth") - px("paddingTop") - px("paddingBottom") - px("borderBottomWidth");
  const scale = Math.min(width / vw, height / vh);
  const shownW = vw * scale;
  const shownH = vh * scale;
  return { left: left + (width - shownW) / 2, top: top + (height - shownH) / 2, width: shownW, height: shownH };
}

/** A client point → {x, y} in 0–1 of the video frame; null when off the picture (unless clamp). */
export function normalise(video, clientX, clientY, clamp = false) {
  const rect = pictureRect(video);
  if (!rect) return null;
  let x = (clientX - rect.left) / rect.width;
  let y = (clientY - rect.top) / rect.height;
  if (clamp) {
    x = Math.min(1, Math.max(0, x));
    y = Math.min(1, Math.max(0, y));
  } else if (x < 0 || x > 1 || y < 0 || y > 1) {
    return null;
  }
  return { x: round(x), y: round(y) };
}

const round = (v) => Math.round(v * 10000) / 10000;
const clampMs = (ms, lo, hi) => Math.round(Math.min(hi, Math.max(lo, ms)));

/**
 * Wire `surface` (the focusable element around `video`) to `send(message)`.
 * Returns a function that unbinds everything.
 */
export function bindGestures(surface, video, send) {
  let press = null; // {id, start: {x, y}, clientX, clientY, t, dragging}
  let pendingTap = null; // {point, clientX, clientY, timer}
  let typed = "";
  let flushTimer = null;

  const down = (event) => {
    if (event.button !== 0 || press) return;
    const point = normalise(video, event.clientX, event.clientY);
    if (!point) return;
    event.preventDefault();
    surface.focus({ preventScroll: true });
    surface.setPointerCapture?.(event.pointerId);
    press = { id: event.pointerId, start: point, clientX: event.clientX, clientY: event.clientY, t: performance.now(), dragging: false };
  };

  const move = (event) => {
    if (!press || event.pointerId !== press.id) return;
    if (Math.hypot(event.clientX - press.clientX, event.clientY - press.clientY) > DRAG_PX) press.dragging = true;
  };

  const up = (event) => {
    if (!press || event.pointerId !== press.id) return;
    const { start, dragging, t } = press;
    press = null;
    const held = performance.now() - t;
    if (dragging) {
      const end = normalise(video, event.clientX, event.clientY, true);
      if (end) send({ type: "swipe", x1: start.x, y1: start.y, x2: end.x, y2: end.y, duration_ms: clampMs(held, 50, 3000) });
    } else if (held >= HOLD_MS) {
      send({ type: "long_press", x: start.x, y: start.y, duration_ms: clampMs(held, 100, 10000) });
    } else if (pendingTap && Math.hypot(event.clientX - pendingTap.clientX, event.clientY - pendingTap.clientY) <= DRAG_PX * 3) {
      clearTimeout(pendingTap.timer);
      send({ type: "double_tap", x: pendingTap.point.x, y: pendingTap.point.y });
      pendingTap = null;
    } else {
      if (pendingTap) {
        clearTimeout(pendingTap.timer);
        send({ type: "tap", ...pendingTap.point });
      }
      const tap = { point: start, clientX: event.clientX, clientY: event.clientY };
      tap.timer = setTimeout(() => {
        if (pendingTap === tap) pendingTap = null;
        send({ type: "tap", ...tap.point });
      }, TAP_DELAY_MS);
      pendingTap = tap;
    }
  };

  const cancel = () => { press = null; };

  // Typed characters are gathered for a moment so a fast typist sends words, not letters.
  const flush = () => {
    flushTimer = null;
    if (typed) send({ type: "text", text: typed });
    typed = "";
  };
  const type = (text) => {
    typed += text;
    if (!flushTimer) flushTimer = setTimeout(flush, 60);
  };
  const key = (name) => {
    if (flushTimer) {
      clearTimeout(flushTimer);
      flush();
    }
    send({ type: "key", key: name });
  };

  const keydown = (event) => {
    if (event.target !== surface || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const keys = { Enter: "enter", Backspace: "delete" };
    if (keys[event.key]) {
      key(keys[event.key]);
    } else if (event.key === "PageDown" || event.key === "PageUp") {
      const next = event.key === "PageDown"; // the content moves up: a swipe from low to high
      send({ type: "swipe", x1: 0.5, y1: next ? 0.75 : 0.3, x2: 0.5, y2: next ? 0.3 : 0.75, duration_ms: 300 });
    } else if ([...event.key].length === 1) { // one character (emoji included), not a named key
      type(event.key);
    } else {
      return; // Tab, arrows, Escape…: the browser's
    }
    event.preventDefault();
  };

  const paste = (event) => {
    const text = event.clipboardData?.getData("text/plain");
    if (text) {
      event.preventDefault();
      type(text);
    }
  };

  const listeners = [
    ["pointerdown", down], ["pointermove", move], ["pointerup", up], ["pointercancel", cancel],
    ["contextmenu", (event) => event.preventDefault()], ["keydown", keydown], ["paste", paste],
  ];
  for (const [name, fn] of listeners) surface.addEventListener(name, fn);
  return () => {
    for (const [name, fn] of listeners) surface.removeEventListener(name, fn);
    clearTimeout(pendingTap?.timer);
    clearTimeout(flushTimer);
  };
}
