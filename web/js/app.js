// The dashboard's entry point: who is logged in, the header, and the pages (docs/dashboard.md).

import { auth } from "./api.js";
import { toast } from "./dom.js";
import * as devicesPage from "./pages/devices.js";
import * as evalsPage from "./pages/evals.js";
import * as loginPage from "./pages/login.js";
import * as phonesPage from "./pages/phones.js";
import * as schedulesPage from "./pages/schedules.js";
import * as sessionPage from "./pages/session.js";
import * as sessionsPage from "./pages/sessions.js";
import * as taskPage from "./pages/task.js";
import * as tasksPage from "./pages/tasks.js";
import * as webhooksPage from "./pages/webhooks.js";
import * as usagePage from "./pages/usage.js";
import { Router } from "./router.js";

const ROUTES = [
  { pattern: /^\/login$/, page: loginPage, title: "Log in", open: true },
  { pattern: /^\/tasks$/, page: tasksPage, title: "Tasks", section: "tasks" },
  { pattern: /^\/tasks\/([^/]+)$/, page: taskPage, title: "Task", section: "tasks" },
  { pattern: /^\/schedules$/, page: schedulesPage, title: "Schedules", section: "schedules" },
  { pattern: /^\/evals$/, page: evalsPage, title: "Evals", section: "evals" },
  { pattern: /^\/evals\/([^/]+)$/, page: evalsPage, title: "Eval", section: "evals" },
  { pattern: /^\/phones$/, page: phonesPage, title: "My phones", section: "phones" },
  { pattern: /^\/devices$/, page: devicesPage, title: "Devices", section: "devices" },
  { pattern: /^\/sessions$/, page: sessionsPage, title: "Sessions", section: "sessions" },
  { pattern: /^\/sessions\/([^/]+)$/, page: sessionPage, title: "Session", section: "sessions" },
  { pattern: /^\/webhooks$/, page: webhooksPage, title: "Webhooks", section: "webhooks" },
  { pattern: /^\/usage$/, page: usagePage, title: "Usage", section: "usage" },
];

const ctx = {
  me: null,
  setMe(me) {
    ctx.me = me;
    showAccount();
  },
};

function showAccount() {
  const me = ctx.me;
  document.getElementById("nav").hidden = !me;
  document.getElementById("account").hidden = !me;
  document.getElementById("nav-webhooks").hidden = !["admin", "operator"].includes(me?.role); // admins manage them
  document.getElementById("who").textContent = me ? `${me.user} · ${me.tenant}${me.role === "member" ? "" : ` (${me.role})`}` : "";
}

async function boot() {
  const main = document.getElementById("main");
  const router = new Router(main, ROUTES, ctx);
  try {
    ctx.setMe(await auth.me());
  } catch (error) {
    ctx.setMe(null);
    if (error.status !== 401) toast(`Cannot reach the API: ${error.message}`);
  }
  // Any 401 (an expired login, a revoked key) lands on the login page, then back here.
  window.addEventListener("pf:unauthenticated", () => {
    if (!ctx.me) return;
    ctx.setMe(null);
    toast("Your login ended; log in again.");
    router.go(`#/login?next=${encodeURIComponent(location.hash)}`);
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await auth.logout().catch(() => {});
    ctx.setMe(null);
    router.go("#/login");
  });
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  router.start();
}

boot();
