// The Share… button of the task and session pages: a dialog that makes a share link (docs/api.md
// "Share links") and the field that shows it, once. (web/js/share.js is the link's own page.)

import { shareLinks } from "./api.js";
import { FormDialog } from "./dialogs.js";
import { h, toast } from "./dom.js";

/**
 * @param {"task"|"session"} kind
 * @param {string} id
 * @param {string} controlText  when a control link may touch the phone, as a person reads it
 * @returns {{button: HTMLElement, url: HTMLInputElement, destroy: () => void}}
 */
export function shareControls(kind, id, controlText) {
  const url = h("input", { id: "share-url", type: "text", readonly: true, hidden: true, "aria-label": "Share link" });
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
    },
  });
  const button = h("button", { type: "button", onclick: () => dialog.open() }, "Share…");
  return { button, url, destroy: () => dialog.el.remove() };
}
