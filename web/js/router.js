// A hash router: "#/tasks/ID?x=1" → the page whose pattern matches. A page is a module with
// `mount(outlet, {params, query, ctx}) → cleanup`; the cleanup runs when the page is left.

import { h, focusHeading } from "./dom.js";

export class Router {
  /**
   * @param {HTMLElement} outlet
   * @param {{pattern: RegExp, page: {mount: Function}, title: string, section?: string, open?: boolean}[]} routes
   * @param {object} ctx  shared with every page (who is logged in, …)
   */
  constructor(outlet, routes, ctx) {
    this.outlet = outlet;
    this.routes = routes;
    this.ctx = ctx;
    this.cleanup = null;
  }

  start() {
    window.addEventListener("hashchange", () => this.render());
    this.render();
  }

  go(hash) {
    if (location.hash === hash) this.render();
    else location.hash = hash;
  }

  render() {
    const hash = location.hash || "#/tasks";
    if (!hash.startsWith("#/")) return; // an in-page anchor, not a page
    const [path, search = ""] = hash.slice(1).split("?");
    let route = null;
    let params = [];
    for (const candidate of this.routes) {
      const match = candidate.pattern.exec(path);
      if (match) {
        route = candidate;
        params = match.slice(1).map(decodeURIComponent);
        break;
      }
    }
    if (route && !route.open && !this.ctx.me) {
      this.go(`#/login?next=${encodeURIComponent(hash)}`);
      return;
    }
    if (this.cleanup) {
      try {
        this.cleanup();
      } catch (error) {
        console.error("leaving the page failed", error);
      }
    }
    this.cleanup = null;
    this.outlet.replaceChildren();
    for (const link of document.querySelectorAll("#nav a")) {
      if (route && link.dataset.section === route.section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (!route) {
      document.title = "Not found · PhoneFleet";
      this.outlet.append(h("h1", {}, "Not found"), h("p", {}, "There is no such page. ", h("a", { href: "#/tasks" }, "Go to the tasks")));
      focusHeading(this.outlet);
      return;
    }
    document.title = `${route.title} · PhoneFleet`;
    this.cleanup = route.page.mount(this.outlet, { params, query: new URLSearchParams(search), ctx: this.ctx, router: this }) ?? null;
    if (!this.outlet.contains(document.activeElement)) focusHeading(this.outlet); // a page may focus a field itself
  }
}
