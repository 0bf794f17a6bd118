// The host's HTTP API (docs/wire.md#http-api): JSON in and out, errors by stable code.
import { CleanroomError } from "./errors.js";

const STATUS_CODES: Record<number, string> = {
  400: "bad_message", 403: "policy_denied", 404: "not_found", 405: "method_not_allowed",
  408: "request_timeout", 409: "conflict", 413: "message_too_large", 415: "unsupported_media_type",
  422: "invalid_input", 500: "internal", 502: "attestation_failed", 503: "enclave_unavailable",
  504: "approval_timeout",
};

export class Host {
  constructor(readonly base: string, readonly timeoutMs = 120_000) {
    if (!/^https?:\/\//.test(base)) throw new CleanroomError("usage", `--host must be an http(s) URL, not ${JSON.stringify(base)}`);
    this.base = base.replace(/\/+$/, "");
  }

  async request(method: string, path: string, body?: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method, body, headers, signal: AbortSignal.timeout(this.timeoutMs),
        ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (e) {
      throw new CleanroomError("enclave_unavailable", `${method} ${path}: the host did not answer (${(e as Error).message})`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? null : JSON.parse(text);
    } catch {
      throw new CleanroomError("bad_message", `${method} ${path}: HTTP ${res.status} with a body that is not JSON`);
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      // An unknown code is treated by its status (wire.md#errors).
      const code = typeof err?.code === "string" ? err.code : STATUS_CODES[res.status] ?? "internal";
      const message = typeof err?.message === "string" ? err.message : `HTTP ${res.status}`;
      throw new CleanroomError(code, `host refused ${method} ${path}: ${message}`, res.status);
    }
    return json;
  }

  get(path: string): Promise<unknown> {
    return this.request("GET", path);
  }

  postJson(path: string, body: unknown): Promise<unknown> {
    return this.request("POST", path, JSON.stringify(body), { "content-type": "application/json" });
  }
}

/** A JSON object's field of an expected type, or `bad_message` naming it. */
export function field<T>(obj: unknown, name: string, kind: "string" | "number" | "boolean" | "object", what: string): T {
  const v = (obj as Record<string, unknown> | null)?.[name];
  if (typeof v !== kind || v === null) throw new CleanroomError("bad_message", `${what}: field ${name} missing or not a ${kind}`);
  return v as T;
}
