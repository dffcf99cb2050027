// Building elements from data without innerHTML: text always stays text (no markup injection).

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "muted", "autoplay", "playsInline", "required", "open"]);

/** h("button", {class: "primary", onclick: fn}, "Save") → <button class="primary">Save</button>. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, ...children);
}

let toastTimer = null;

/** A short message in the page's polite live region. */
export function toast(message, ms = 4000) {
  const region = document.getElementById("toast");
  if (!region) return;
  region.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { region.textContent = ""; }, ms);
}

/** Focus the page's heading after navigation, so screen readers announce the new page. */
export function focusHeading(root) {
  const heading = root.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

/** A list row's button doing ``work`` (a request), then ``refresh`` (the list again): disabled
 * meanwhile, so it is not sent twice; a refusal is shown in ``errorEl`` and the button is usable again. */
export async function act(button, work, { errorEl, refresh }) {
  button.disabled = true;
  errorEl.textContent = "";
  try {
    await work();
    await refresh();
  } catch (failure) {
    errorEl.textContent = failure.message;
    button.disabled = false;
  }
}
