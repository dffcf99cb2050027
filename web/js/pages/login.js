// Log in with an API key: POST /api/v1/auth/login sets the HttpOnly pf_session cookie (the key itself
// is never stored by the page) and the pf_csrf cookie the page echoes on writes.

import { auth } from "../api.js";
import { h } from "../dom.js";

export function mount(outlet, { query, ctx, router }) {
  const next = query.get("next");
  const target = next && next.startsWith("#/") && !next.startsWith("#/login") ? next : "#/tasks";
  if (ctx.me) {
    router.go(target);
    return null;
  }
  const key = h("input", {
    id: "api-key", name: "api_key", type: "password", required: true, autocomplete: "off",
    spellcheck: "false", placeholder: "pf_…", "aria-describedby": "api-key-hint",
  });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h("form", { class: "panel login", onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      ctx.setMe(await auth.login(key.value.trim()));
      router.go(target);
    } catch (failure) {
      error.textContent = failure.status === 401 ? `Not logged in: ${failure.message}` : failure.message;
      key.focus();
    } finally {
      submit.disabled = false;
    }
  } },
  h("h1", {}, "Log in to PhoneFleet"),
  h("div", { class: "field" },
    h("label", { for: "api-key" }, "API key"),
    key,
    h("p", { class: "hint", id: "api-key-hint" },
      "Your key (pf_…) from an admin, or the one phonefleet up printed. The page keeps a login cookie, not the key.")),
  error,
  h("div", { class: "actions" }, submit));
  outlet.append(form);
  key.focus();
  return null;
}
