/**
 * PhoneFleet REST API v1 for TypeScript (docs/sdk-typescript.md).
 *
 * Two layers. `PhoneFleet.api` is openapi-fetch's client over the types generated from the API's
 * OpenAPI document (`schema.ts`, from `openapi.json`): every route, its parameters, bodies and answers
 * typed, nothing hand-written. The methods of `PhoneFleet` are a thin layer over it for the common
 * calls: they return the answer's data, throw `PhoneFleetError` for an error answer, page lists and
 * move binary bodies (screenshots, files). Runs wherever `fetch` does (Node 20+, Deno, browsers).
 */
import createClient, { type Client } from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };

export type Schemas = components["schemas"];
export type Task = Schemas["TaskOut"];
export type TaskCreate = Schemas["TaskCreate"];
export type TaskStatus = Schemas["TaskStatus"];
export type Step = Schemas["StepOut"];
export type Session = Schemas["SessionOut"];
export type SessionCreate = Schemas["SessionCreate"];
export type DeviceInput =
  | Schemas["TapInput"]
  | Schemas["DoubleTapInput"]
  | Schemas["LongPressInput"]
  | Schemas["SwipeInput"]
  | Schemas["TextInput"]
  | Schemas["KeyInput"];
export type ErrorBody = Schemas["ErrorOut"];
export type TaskListQuery = NonNullable<operations["list_tasks_api_v1_tasks_get"]["parameters"]["query"]>;
export type ScreenshotQuery = NonNullable<
  operations["screenshot_api_v1_sessions__session_id__screenshot_get"]["parameters"]["query"]
>;

/** A task in one of these never changes again. */
export const FINAL_STATUSES: readonly TaskStatus[] = ["succeeded", "failed", "cancelled", "timed_out"];

/** An error answer: `status` is the HTTP status, `code` the API's stable error code (`task_not_found`…). */
export class PhoneFleetError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorBody["details"];

  constructor(status: number, body: Partial<ErrorBody> | undefined) {
    super(body?.message ?? `HTTP ${status}`);
    this.name = "PhoneFleetError";
    this.status = status;
    this.code = body?.error ?? "http_error";
    this.details = body?.details ?? null;
  }
}

/** `wait()` gave up: the task was still not in a final status. */
export class TaskWaitTimeout extends Error {
  readonly task: Task;

  constructor(task: Task, timeoutMs: number) {
    super(`task ${task.id} is still ${task.status} after ${timeoutMs} ms`);
    this.name = "TaskWaitTimeout";
    this.task = task;
  }
}

export interface PhoneFleetOptions {
  /** Where the API is, e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** `pf_<prefix>_<secret>`, sent as `Authorization: Bearer …`. */
  apiKey?: string;
  /** A `fetch` of your own (a proxy's, a test's). */
  fetch?: typeof fetch;
  /** Sent with every request. */
  headers?: Record<string, string>;
}

/** One openapi-fetch answer: the data, or the error body and the response that carried it. */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

function unwrap<T>({ data, error, response }: Answer<T>): T {
  if (error !== undefined || !response.ok) {
    throw new PhoneFleetError(response.status, error as Partial<ErrorBody> | undefined);
  }
  return data as T;
}

/** A binary answer (parsed as a stream by openapi-fetch): its body, or the error it carried. */
async function body(answer: Answer<unknown>): Promise<Response> {
  const { response } = answer;
  if (!response.ok) {
    const text = await response.text();
    let parsed: Partial<ErrorBody> | undefined;
    try {
      parsed = JSON.parse(text) as Partial<ErrorBody>;
    } catch {
      parsed = { message: text || `HTTP ${response.status}` };
    }
    throw new PhoneFleetError(response.status, parsed);
  }
  return response;
}

/** Raw bytes as a request body, as they are (the generated type of a binary body is `string`). */
const asIs = (data: unknown) => data as BodyInit;

export class PhoneFleet {
  /** The generated, fully typed client: every route of the API (openapi-fetch). */
  readonly api: Client<paths>;

  constructor(options: PhoneFleetOptions) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.apiKey) headers.Authorization = `Bearer ${options.apiKey}`;
    this.api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      headers,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  // --- tasks -----------------------------------------------------------------------------------

  /** Queue a task (202); an `idempotencyKey` makes a resend answer the same task. */
  async submit(task: TaskCreate, options: { idempotencyKey?: string } = {}): Promise<Task> {
    const params = options.idempotencyKey ? { header: { "Idempotency-Key": options.idempotencyKey } } : {};
    return unwrap(await this.api.POST("/api/v1/tasks", { body: task, params }));
  }

  async task(taskId: string): Promise<Task> {
    return unwrap(await this.api.GET("/api/v1/tasks/{task_id}", { params: { path: { task_id: taskId } } }));
  }

  /** Your tenant's tasks, newest first, every page (`limit` is the page size). */
  async *tasks(query: Omit<TaskListQuery, "cursor"> = {}): AsyncGenerator<Task> {
    let cursor: string | undefined;
    do {
      const page = unwrap(await this.api.GET("/api/v1/tasks", { params: { query: { ...query, cursor } } }));
      yield* page.items;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** A task's steps, oldest first, every page. */
  async *steps(taskId: string): AsyncGenerator<Step> {
    let cursor: string | undefined;
    do {
      const page = unwrap(
        await this.api.GET("/api/v1/tasks/{task_id}/steps", {
          params: { path: { task_id: taskId }, query: { cursor } },
        }),
      );
      yield* page.items;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  async cancel(taskId: string): Promise<Task> {
    return unwrap(
      await this.api.POST("/api/v1/tasks/{task_id}/cancel", { params: { path: { task_id: taskId } } }),
    );
  }

  /** Poll until the task is final (or in `until`); throws `TaskWaitTimeout` after `timeoutMs`. */
  async wait(
    taskId: string,
    options: { timeoutMs: number; pollMs?: number; until?: readonly TaskStatus[] },
  ): Promise<Task> {
    const until = options.until ?? FINAL_STATUSES;
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      const task = await this.task(taskId);
      if (until.includes(task.status)) return task;
      const left = deadline - Date.now();
      if (left <= 0) throw new TaskWaitTimeout(task, options.timeoutMs);
      await new Promise((resolve) => setTimeout(resolve, Math.min(options.pollMs ?? 1000, left)));
    }
  }

  // --- sessions and the device API of their phone ----------------------------------------------

  /** Lease a phone; 503 `no_device_available` when none came free within `wait_s`. */
  async startSession(session: SessionCreate = {}): Promise<Session> {
    return unwrap(await this.api.POST("/api/v1/sessions", { body: session }));
  }

  async session(sessionId: string): Promise<Session> {
    const params = { path: { session_id: sessionId } };
    return unwrap(await this.api.GET("/api/v1/sessions/{session_id}", { params }));
  }

  async keepalive(sessionId: string): Promise<Session> {
    const params = { path: { session_id: sessionId } };
    return unwrap(await this.api.POST("/api/v1/sessions/{session_id}/keepalive", { params }));
  }

  /** Give the phone back (safe to resend: an ended session is answered as it is). */
  async closeSession(sessionId: string): Promise<Session> {
    const params = { path: { session_id: sessionId } };
    return unwrap(await this.api.DELETE("/api/v1/sessions/{session_id}", { params }));
  }

  /** The screen now: the image's bytes, its type, and the phone's size in pixels (input's units). */
  async screenshot(
    sessionId: string,
    query: ScreenshotQuery = {},
  ): Promise<{ bytes: Uint8Array; mediaType: string; screen: { width: number; height: number } }> {
    const response = await body(
      await this.api.GET("/api/v1/sessions/{session_id}/screenshot", {
        params: { path: { session_id: sessionId }, query },
        parseAs: "stream",
      }),
    );
    return {
      bytes: new Uint8Array(await response.arrayBuffer()),
      mediaType: response.headers.get("Content-Type") ?? "",
      screen: {
        width: Number(response.headers.get("X-Screen-Width")),
        height: Number(response.headers.get("X-Screen-Height")),
      },
    };
  }

  /** The UI tree as JSON: `{screen, package, elements: [{id, kind, text, bounds, …}]}`. */
  async uiTree(sessionId: string): Promise<Record<string, unknown>> {
    const params = { path: { session_id: sessionId }, query: { format: "json" as const } };
    return unwrap(await this.api.GET("/api/v1/sessions/{session_id}/ui", { params })) as Record<string, unknown>;
  }

  /** Tap, swipe, type or press a key; answers what was done. */
  async input(sessionId: string, action: DeviceInput): Promise<Record<string, unknown>> {
    const params = { path: { session_id: sessionId } };
    return unwrap(await this.api.POST("/api/v1/sessions/{session_id}/input", { params, body: action }));
  }

  /** Start an app by name, package or `package/activity`. */
  async launch(sessionId: string, app: string): Promise<Record<string, unknown>> {
    const params = { path: { session_id: sessionId } };
    return unwrap(await this.api.POST("/api/v1/sessions/{session_id}/launch", { params, body: { app } }));
  }

  /** Write bytes to `path` on the phone (inside `/sdcard/` unless the operator allows more). */
  async pushFile(sessionId: string, path: string, data: Uint8Array | Blob): Promise<Record<string, unknown>> {
    return unwrap(
      await this.api.PUT("/api/v1/sessions/{session_id}/files", {
        params: { path: { session_id: sessionId }, query: { path } },
        body: data as unknown as string,
        bodySerializer: asIs,
        headers: { "Content-Type": "application/octet-stream" },
      }),
    );
  }

  /**
   * A file on the phone as a stream, as the API streams it from the phone: `size` is its length
   * (`Content-Length`); a stream that ends before `size` bytes is a failed pull.
   */
  async pullFileStream(sessionId: string, path: string): Promise<{ size: number; stream: ReadableStream<Uint8Array> }> {
    const response = await body(
      await this.api.GET("/api/v1/sessions/{session_id}/files", {
        params: { path: { session_id: sessionId }, query: { path } },
        parseAs: "stream",
      }),
    );
    if (response.body === null) throw new PhoneFleetError(response.status, { message: "the answer has no body" });
    return { size: Number(response.headers.get("Content-Length") ?? NaN), stream: response.body };
  }

  /** A file on the phone, whole. */
  async pullFile(sessionId: string, path: string): Promise<Uint8Array> {
    const { size, stream } = await this.pullFileStream(sessionId, path);
    const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    if (Number.isFinite(size) && bytes.length !== size) {
      throw new PhoneFleetError(502, { error: "pull_cut_short", message: `${path}: ${bytes.length} of ${size} bytes` });
    }
    return bytes;
  }
}

/** The same as `new PhoneFleet(options)`. */
export function createPhoneFleet(options: PhoneFleetOptions): PhoneFleet {
  return new PhoneFleet(options);
}
