// Webhook subscriptions (admins): the tenant's standing orders for its tasks' events, each POSTed to
// a URL and signed with the subscription's own secret (docs/api.md "Webhook subscriptions"). List,
// create, rotate the secret, delete; a secret is shown once, in the answer that made it.

import { webhooks } from "../api.js";
import { act as actOn, h } from "../dom.js";
import { shortId, timeEl } from "../format.js";

// The event types a subscription may name: the server's SUBSCRIBABLE_EVENTS
// (orchestrator/services/webhook_subscriptions.py; tests/web/test_webhooks_page.py keeps them equal).
export const EVENT_TYPES = [
  "task.created", "task.status", "task.step", "task.cancel_requested", "task.confirmation_requested",
  "task.takeover_requested", "task.question", "task.waiting", "task.retrying", "task.try_started",
  "task.subgoal",
];

export function mount(outlet, { ctx }) {
  let disposed = false;
  outlet.append(h("h1", {}, "Webhook subscriptions"));
  if (ctx.me?.role !== "admin") {
    outlet.append(h("p", { class: "muted", id: "webhooks-admins-only" },
      "Only your tenant's admins manage webhook subscriptions. A task's own webhook_url needs no subscription."));
    return () => {};
  }

  const url = h("input", { id: "webhook-url", type: "url", required: true, maxlength: "2048", autocomplete: "off",
    placeholder: "https://example.com/hooks/phonefleet" });
  const boxes = EVENT_TYPES.map((type) => h("input", { type: "checkbox", name: "events", value: type, id: `event-${type}`,
    checked: type === "task.status" }));
  const events = h("fieldset", { class: "events", id: "webhook-events" },
    h("legend", {}, "Events"),
    boxes.map((box) => h("label", { for: box.id, class: "check" }, box, " ", h("code", {}, box.value))));
  const error = h("p", { class: "error", role: "alert" });
  const create = h("button", { type: "submit", class: "primary" }, "Create subscription");
  // A new or rotated secret: shown here once (the API never shows it again).
  const secret = h("section", { class: "panel secret", id: "webhook-secret-panel", "aria-live": "polite", hidden: true });

  const form = h("form", { class: "panel", "aria-labelledby": "new-webhook-title", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    const chosen = boxes.filter((box) => box.checked).map((box) => box.value);
    if (!chosen.length) {
      error.textContent = "Choose at least one event type.";
      return;
    }
    create.disabled = true;
    try {
      const made = await webhooks.create({ url: url.value.trim(), events: chosen });
      url.value = "";
      showSecret(made, "New subscription");
      await refresh();
    } catch (failure) {
      error.textContent = failure.message;
    } finally {
      create.disabled = false;
    }
  } },
  h("h2", { id: "new-webhook-title" }, "New subscription"),
  h("p", { class: "hint" }, "Every event of these types, of every task of your tenant, is POSTed to the URL, signed with the subscription's secret."),
  h("div", { class: "field" }, h("label", { for: "webhook-url" }, "URL"), url),
  events,
  error,
  h("div", { class: "actions" }, create));

  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, "No subscriptions yet: create one above.");
  const listError = h("p", { class: "error", role: "alert" });
  outlet.append(form, secret,
    h("section", { class: "panel", "aria-labelledby": "webhooks-title" },
      h("h2", { id: "webhooks-title" }, "Your tenant's subscriptions"),
      listError,
      h("table", {},
        h("thead", {}, h("tr", {}, ["URL", "Events", "Created", "Secret rotated", ""].map((t) => h("th", { scope: "col" }, t)))),
        body),
      empty));

  function showSecret(sub, what) {
    secret.replaceChildren(
      h("h2", {}, `${what}: its secret`),
      h("p", {}, "Copy it now: it is not shown again. It signs every POST to ", h("code", {}, sub.url), "."),
      h("pre", {}, h("code", { id: "webhook-secret" }, sub.secret)));
    secret.hidden = false;
  }

  const act = (button, work) => actOn(button, work, { errorEl: listError, refresh });

  function row(sub) {
    const rotate = h("button", { type: "button", class: "quiet", dataset: { action: "rotate" } }, "Rotate secret");
    rotate.addEventListener("click", () => {
      if (window.confirm(`Replace the secret of ${sub.url}? The old one signs nothing more, at once.`)) {
        act(rotate, async () => showSecret(await webhooks.rotate(sub.id), "Rotated"));
      }
    });
    const remove = h("button", { type: "button", class: "danger", dataset: { action: "delete" } }, "Delete");
    remove.addEventListener("click", () => {
      if (window.confirm(`Delete the subscription of ${sub.url}? Nothing more is sent to it, retries included.`)) {
        act(remove, () => webhooks.remove(sub.id));
      }
    });
    return h("tr", { dataset: { subscriptionId: sub.id } },
      h("td", { class: "url", "data-label": "URL" }, h("code", {}, sub.url), h("div", { class: "hint" }, shortId(sub.id))),
      h("td", { class: "events", "data-label": "Events" }, sub.events.join(", ")),
      h("td", { "data-label": "Created" }, timeEl(sub.created_at)),
      h("td", { "data-label": "Secret rotated", class: "rotated" }, sub.secret_rotated_at ? timeEl(sub.secret_rotated_at) : h("span", { class: "muted" }, "never")),
      h("td", { class: "actions" }, rotate, remove));
  }

  async function refresh() {
    try {
      const subs = await webhooks.list();
      if (disposed) return;
      body.replaceChildren(...subs.map(row));
      empty.hidden = subs.length > 0;
    } catch (failure) {
      if (!disposed) listError.textContent = `Cannot load the subscriptions: ${failure.message}`;
    }
  }

  refresh();
  return () => {
    disposed = true;
  };
}
