// The PhoneFleet REST API (docs/api.md) as the dashboard calls it: the pf_session cookie (the login) authenticates,
// and every unsafe method echoes the pf_csrf cookie in X-CSRF-Token (signed double submit).
// URLs are relative to the page (served at the API's root), so a path prefix in front of it works too.

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, code, message, { details = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

/** An absolute URL for an API path ("/api/v1/…" or "api/v1/…"), resolved against the page. */
export function apiUrl(path) {
  return new URL(String(path).replace(/^\/+/, ""), document.baseURI).toString();
}

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * One API call; resolves with the JSON answer (null for 204), rejects with ApiError.
 * A 401 also fires `pf:unauthenticated` on window (the app shows the login page), unless `quiet`.
 */
export async function request(method, path, { body, query, headers = {}, signal, quiet = false } = {}) {
  const url = new URL(apiUrl(path));
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const init = { method, credentials: "same-origin", signal, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (UNSAFE.has(method)) init.headers["X-CSRF-Token"] = cookie("pf_csrf");
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network_error", `cannot reach the PhoneFleet API (${error.message})`);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(
      response.status,
      data?.error ?? `http_${response.status}`,
      data?.message ?? response.statusText,
      { details: data?.details ?? null, retryAfter: response.headers.get("Retry-After") },
    );
    if (response.status === 401 && !quiet) window.dispatchEvent(new CustomEvent("pf:unauthenticated", { detail: error }));
    throw error;
  }
  return data;
}

const get = (path, query, options) => request("GET", path, { query, ...options });
const post = (path, body, options) => request("POST", path, { body, ...options });

export const auth = {
  me: () => get("api/v1/auth/me", undefined, { quiet: true }),
  login: (apiKey) => post("api/v1/auth/login", { api_key: apiKey }, { quiet: true }),
  logout: () => post("api/v1/auth/logout"),
};

export const tasks = {
  list: (query) => get("api/v1/tasks", query),
  get: (id) => get(`api/v1/tasks/${encodeURIComponent(id)}`),
  submit: (fields) => post("api/v1/tasks", fields, { headers: { "Idempotency-Key": idempotencyKey() } }),
  cancel: (id) => post(`api/v1/tasks/${encodeURIComponent(id)}/cancel`),
  takeover: (id, note) => post(`api/v1/tasks/${encodeURIComponent(id)}/takeover`, note ? { note } : undefined),
  handback: (id, note) => post(`api/v1/tasks/${encodeURIComponent(id)}/handback`, { note: note ?? "" }),
  confirm: (id, approved) => post(`api/v1/tasks/${encodeURIComponent(id)}/confirm`, { approved }),
  reply: (id, answer) => post(`api/v1/tasks/${encodeURIComponent(id)}/reply`, { answer }),
  steps: (id, query) => get(`api/v1/tasks/${encodeURIComponent(id)}/steps`, query),
  trajectoryUrl: (id) => apiUrl(`api/v1/tasks/${encodeURIComponent(id)}/trajectory`),
  recordingUrl: (id) => apiUrl(`api/v1/tasks/${encodeURIComponent(id)}/recording`),
};

export const devices = {
  list: (query) => get("api/v1/devices", query),
  get: (id) => get(`api/v1/devices/${encodeURIComponent(id)}`),
};

export const sessions = {
  create: (fields) => post("api/v1/sessions", fields),
  list: (query) => get("api/v1/sessions", query),
  get: (id) => get(`api/v1/sessions/${encodeURIComponent(id)}`),
  keepalive: (id) => post(`api/v1/sessions/${encodeURIComponent(id)}/keepalive`),
  close: (id) => request("DELETE", `api/v1/sessions/${encodeURIComponent(id)}`),
};

export const schedules = {
  create: (fields) => post("api/v1/schedules", fields),
  list: (query) => get("api/v1/schedules", query),
  get: (id) => get(`api/v1/schedules/${encodeURIComponent(id)}`),
  update: (id, fields) => request("PATCH", `api/v1/schedules/${encodeURIComponent(id)}`, { body: fields }),
  remove: (id) => request("DELETE", `api/v1/schedules/${encodeURIComponent(id)}`),
  runs: (id, query) => get(`api/v1/schedules/${encodeURIComponent(id)}/runs`, query),
};

// A tenant's webhook subscriptions (admins only): the secret is in the answers of create and rotate only.
export const webhooks = {
  create: (fields) => post("api/v1/webhooks", fields),
  list: () => get("api/v1/webhooks"),
  rotate: (id) => post(`api/v1/webhooks/${encodeURIComponent(id)}/rotate-secret`),
  remove: (id) => request("DELETE", `api/v1/webhooks/${encodeURIComponent(id)}`),
};

export const evals = {
  list: () => get("api/v1/evals"),
  get: (id) => get(`api/v1/evals/${encodeURIComponent(id)}`),
};

export const personalPhones = {
  create: (fields) => post("api/v1/personal-phones", fields),
  list: (query) => get("api/v1/personal-phones", query),
  get: (id) => get(`api/v1/personal-phones/${encodeURIComponent(id)}`),
  rename: (id, name) => request("PATCH", `api/v1/personal-phones/${encodeURIComponent(id)}`, { body: { name } }),
  remove: (id, confirm) => request("DELETE", `api/v1/personal-phones/${encodeURIComponent(id)}`, { query: { confirm } }),
};

export const usage = {
  get: (query) => get("api/v1/usage", query),
};

/** Share links (docs/api.md "Share links"): a phone's live view for someone without a key. */
export const shareLinks = {
  create: (fields) => post("api/v1/share-links", fields),
  list: (query = {}) => get("api/v1/share-links", query),
  revoke: (id) => request("DELETE", `api/v1/share-links/${encodeURIComponent(id)}`),
};

/** WebRTC signalling: kind is "tasks", "sessions" or "devices". */
export const webrtc = {
  config: () => get("api/v1/webrtc/config"),
  offer: (kind, id, sdp) => post(`api/v1/${kind}/${encodeURIComponent(id)}/webrtc`, { type: "offer", sdp }),
};

/** Every page of a list route, oldest pages first (for steps: at most `max` items). */
export async function all(list, query = {}, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await list({ ...query, limit: 100, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}
