// Opening and verifying a result (docs/wire.md#results), and the saved-result file checked
// offline (docs/wire.md#attestation, "saved_result").
import { equal, fromB64, toB64 } from "./bytes.js";
import { hpkeOpen, requireSignature, resultInfo } from "./crypto.js";
import { parseDocument } from "./documents.js";
import { CleanroomError } from "./errors.js";
import { canonicalEncode, Value, ValueMap } from "./msgpack.js";
import { Policy } from "./policy.js";

export interface OpenedResult { doc: ValueMap; signed: Uint8Array }

export interface Expectation {
  queryId?: Uint8Array; requestedBy?: string; params?: Value; simulated?: boolean;
}

/** Steps 3 to 5: the `signed` envelope, verified with the pinned sig_pub, then its result. */
export function verifySignedResult(signed: Uint8Array, sigPub: Uint8Array, policy: Policy, party: string, want: Expectation): ValueMap {
  const env = parseDocument("signed", signed);
  const body = env.body as Uint8Array;
  requireSignature(sigPub, "result", body, env.signature as Uint8Array, "result");
  const doc = parseDocument("result", body);
  const fail = (what: string): never => { throw new CleanroomError("bad_message", `result: ${what}`); };
  if (doc.collaboration_id !== policy.collaborationId) fail("another collaboration");
  if (!equal(doc.policy_hash as Uint8Array, policy.hash)) fail("another policy");
  if (want.queryId && !equal(doc.query_id as Uint8Array, want.queryId)) fail("its query_id is not the SHA-256 of the request sent");
  if (want.requestedBy !== undefined && doc.requested_by !== want.requestedBy) fail(`requested by ${String(doc.requested_by)}`);
  if (!(doc.recipients as Value[]).includes(party)) fail(`${party} is not among its recipients`);
  if (want.params !== undefined && !equal(canonicalEncode(doc.params), canonicalEncode(want.params))) {
    fail("its params are not what was asked (the plan or the template's values differ)");
  }
  if (want.simulated !== undefined && doc.simulated !== want.simulated) fail("simulated does not agree with the attestation");
  return doc;
}

/** Steps 1 and 2: this party's sealed entry of a query answer, opened with its result key. */
export async function openResult(
  answer: unknown, queryId: Uint8Array, party: string, resultPrivate: Uint8Array, policy: Policy,
): Promise<Uint8Array> {
  const results = (answer as { results?: Record<string, unknown> } | null)?.results;
  if (!results || typeof results !== "object") throw new CleanroomError("bad_message", "query answer: no results");
  const mine = results[party];
  if (mine === undefined) throw new CleanroomError("not_found", `query answer: no result sealed to ${party}`);
  return hpkeOpen(resultPrivate, resultInfo(policy.collaborationId, queryId, party), fromB64(mine, `results.${party}`), "result");
}

export interface SavedResult { format: 1; signed: string; attestation: unknown }

export function savedResult(signed: Uint8Array, bundleJson: unknown): SavedResult {
  return { format: 1, signed: toB64(signed), attestation: bundleJson };
}

export function parseSaved(json: unknown, file: string): { signed: Uint8Array; attestation: unknown } {
  const j = json as Record<string, unknown> | null;
  if (!j || typeof j !== "object" || Object.keys(j).sort().join() !== "attestation,format,signed" || j.format !== 1) {
    throw new CleanroomError("bad_message", `${file}: not a saved result (format 1: signed, attestation)`);
  }
  return { signed: fromB64(j.signed, `${file} signed`), attestation: j.attestation };
}

/** A result's rows for people and tools: bytes as hex, bigints as strings. */
export function toJson(v: Value): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}
