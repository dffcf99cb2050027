// The Share… button of the task and session pages: a dialog that makes a share link (docs/api.md
// "Share links") and the field that shows it, once, and lists the links already made to this task
// or session, each revocable. (web/js/share.js is the link's own page.)

import { shareLinks } from "./api.js";
import { FormDialog } from "./dialogs.js";
import { act, fill, h, toast } from "./dom.js";
import { timeEl } from "./format.js";

/** A link's state as a person reads it: revoked, expired, used up, or live. */
function linkState(link, now = Date.now()) {
  if (link.revoked_at) return "revoked";
  if (Date.parse(link.expires_at) <= now) return "expired";
  if (link.max_uses !== null && link.uses >= link.max_uses) return "used up";
  return "live";
}

/**
 * @param {"task"|"session"} kind
 * @param {string} id
 * @param {string} controlText  when a control link may touch the phone, as a person reads it
 * @returns {{button: HTMLElement, url: HTMLInputElement, destroy: () => void}}
 */
export function shareControls(kind, id, controlText) {
  const url = h("input", { id: "share-url", type: "text", readonly: true, hidden: true, "aria-label": "Share link" });
  // The links already made to this target: who opened them how often, and a way to end each now.
  const listError = h("p", { class: "error", role: "alert" });
  const rows = h("tbody");
  const made = h("section", { class: "share-links", "aria-label": "Links made", hidden: true },
    h("h3", {}, "Links made"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Access", "Made", "Expires", "Opened", "State", ""].map((t) => h("th", { scope: "col" }, t)))), rows),
    listError);
  async function refresh() {
    const links = await shareLinks.list({ target_id: id });
    made.hidden = links.length === 0;
    fill(rows, ...links.map((link) => {
      const state = linkState(link);
      const revoke = h("button", { type: "button", class: "quiet" }, "Revoke");
      revoke.addEventListener("click", () => act(revoke, () => shareLinks.revoke(link.id), { errorEl: listError, refresh }));
      return h("tr", { dataset: { shareLinkId: link.id } },
        h("td", {}, link.mode === "control" ? "watch and control" : "watch only"),
        h("td", {}, timeEl(link.created_at)), h("td", {}, timeEl(link.expires_at)),
        h("td", { class: "uses" }, `${link.uses}×`),
        h("td", { class: "state" }, state),
        h("td", {}, state === "live" ? revoke : ""));
    }));
  }
  const dialog = new FormDialog({
    name: "share", title: `Share this ${kind}'s phone`,
    body: [
      h("p", { class: "hint" }, "Anyone with the link watches the phone until the link expires or you revoke it."),
      h("label", { for: `share-mode-${id}` }, "Access"),
      h("select", { id: `share-mode-${id}`, name: "mode" },
        h("option", { value: "view" }, "Watch only"),
        h("option", { value: "control" }, `Watch, and control ${controlText}`)),
      h("label", { for: `share-expiry-${id}` }, "Expires after"),
      h("select", { id: `share-expiry-${id}`, name: "expires_in_s" },
        h("option", { value: "3600" }, "1 hour"), h("option", { value: "86400" }, "1 day"),
        h("option", { value: "604800" }, "7 days")),
      made,
    ],
    actions: [{ value: "share", label: "Make link", kind: "primary" }],
    onSubmit: async (_value, data) => {
      const link = await shareLinks.create({
        [`${kind}_id`]: id, mode: String(data.get("mode")), expires_in_s: Number(data.get("expires_in_s")),
      });
      url.value = link.url;
      url.hidden = false;
      url.focus();
      url.select();
      toast("Share link made: it is shown this once.");
      refresh().catch((failure) => { listError.textContent = failure.message; });
    },
  });
  const button = h("button", { type: "button", onclick: () => {
    dialog.open();
    refresh().catch((failure) => { listError.textContent = failure.message; });
  } }, "Share…");
  return { button, url, destroy: () => dialog.el.remove() };
}
