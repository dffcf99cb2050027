// Modal dialogs with a form (<dialog> + showModal: focus moves in, Escape closes, focus returns).

import { h, fill } from "./dom.js";

let dialogs = 0;

export class FormDialog {
  /**
   * @param {object} options
   * @param {string} options.title
   * @param {Node[]} options.body  fields and text
   * @param {{value: string, label: string, kind?: "primary"|"danger"}[]} options.actions  submit buttons
   * @param {(value: string, data: FormData) => Promise<void>} options.onSubmit  throws → message shown
   * @param {string} [options.cancelLabel]  the button that closes without answering
   * @param {boolean} [options.safeFocus]  focus starts on that button (dialogs whose actions cannot be undone)
   */
  constructor({ title, body = [], actions, onSubmit, cancelLabel = "Cancel", name = "", safeFocus = false }) {
    const titleId = `dialog-title-${++dialogs}`;
    this.onSubmit = onSubmit;
    this.title = h("h2", { id: titleId }, title);
    this.body = h("div", { class: "dialog-body" }, body);
    this.error = h("p", { class: "error", role: "alert" });
    this.buttons = [
      ...actions.map((a) => h("button", { type: "submit", value: a.value, class: a.kind ?? "" }, a.label)),
      h("button", { type: "submit", value: "cancel", formnovalidate: true, autofocus: safeFocus }, cancelLabel),
    ];
    this.form = h("form", { method: "dialog", onsubmit: (event) => this.submitted(event) },
      this.title, this.body, this.error, h("div", { class: "actions" }, this.buttons));
    this.el = h("dialog", { "aria-labelledby": titleId, dataset: { dialog: name } }, this.form);
  }

  get isOpen() {
    return this.el.open;
  }

  open() {
    if (!this.el.isConnected) document.body.append(this.el);
    this.error.textContent = "";
    if (!this.el.open) this.el.showModal();
  }

  close() {
    if (this.el.open) this.el.close();
  }

  remove() {
    this.close();
    this.el.remove();
  }

  setBody(...nodes) {
    fill(this.body, ...nodes);
  }

  async submitted(event) {
    const value = event.submitter?.value ?? "";
    if (value === "cancel") return; // method=dialog closes it
    event.preventDefault();
    for (const button of this.buttons) button.disabled = true;
    this.error.textContent = "";
    try {
      await this.onSubmit(value, new FormData(this.form));
      this.close();
      this.form.reset();
    } catch (error) {
      this.error.textContent = error.message;
    } finally {
      for (const button of this.buttons) button.disabled = false;
    }
  }
}
