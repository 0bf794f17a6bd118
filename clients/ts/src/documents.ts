// Every document type of docs/wire.md#documents, field by field, and the receiver's step 4:
// exactly these fields, each of its type and within its limit.
import { CleanroomError } from "./errors.js";
import { decodeCanonical, isMap, Value, ValueMap } from "./msgpack.js";

type FieldType =
  | { t: "str"; max: number }
  | { t: "bin"; len: number }
  | { t: "binmax"; max: number }
  | { t: "int" }
  | { t: "bool" }
  | { t: "array"; max: number }
  | { t: "map"; max: number }
  | { t: "head" };

interface Field { type: FieldType; optional?: boolean }

const str = (max: number): Field => ({ type: { t: "str", max } });
const bin = (len: number): Field => ({ type: { t: "bin", len } });
const binmax = (max: number): Field => ({ type: { t: "binmax", max } });
const int: Field = { type: { t: "int" } };
const bool: Field = { type: { t: "bool" } };
const array = (max: number): Field => ({ type: { t: "array", max } });
const map = (max: number): Field => ({ type: { t: "map", max } });
const head: Field = { type: { t: "head" } };
const opt = (f: Field): Field => ({ ...f, optional: true });

const COMMON = { collaboration_id: str(256), policy_hash: bin(32) };

export const DOCUMENTS = {
  upload_header: {
    ...COMMON, party: str(256), dataset: str(256), upload_id: bin(16), created_at: int,
    hpke_enc: binmax(1024), chunk_size: int, schema: array(256), rows_hint: opt(int),
    mode: opt(str(16)), idempotency_key: opt(bin(16)), skipped: opt(map(256)),
  },
  query_request: {
    ...COMMON, party: str(256), analysis: str(256), params: map(32), nonce: bin(16),
    issued_at: int, plan: opt(map(8)), sql: opt(str(16384)),
  },
  delete_request: { ...COMMON, party: str(256), dataset: str(256), nonce: bin(16), issued_at: int },
  upload_receipt: {
    ...COMMON, upload_id: bin(16), party: str(256), dataset: str(256), rows: int, digest: bin(32),
    accepted_at: int, simulated: bool, audit_head: head, idempotency_key: opt(bin(16)),
    replaced: opt(array(10000)), skipped: opt(map(256)),
  },
  result: {
    ...COMMON, query_id: bin(32), analysis: str(256), kind: str(256), requested_by: str(256),
    recipients: array(64), params: map(32), simulated: bool, created_at: int, columns: array(64),
    rows: array(1000000), privacy: map(64), audit_head: head,
  },
  deletion_receipt: {
    ...COMMON, request_id: bin(32), party: str(256), dataset: str(256), upload_ids: array(100000),
    rows_deleted: int, deleted_at: int, simulated: bool, audit_head: head,
  },
  audit_entry: {
    collaboration_id: str(256), seq: int, prev: bin(32), kind: str(256), at: int, details: map(32),
  },
  charge_proposal: {
    ...COMMON, query_id: bin(32), request: binmax(65536), request_signature: bin(64),
    requested_by: str(256), datasets: array(64), unit: str(256), amount: str(256), delta: str(256),
    prev_head: head, approvers: map(64),
  },
  budget_status: {
    ...COMMON, unit: str(256), created_at: int, simulated: bool, datasets: map(64), audit_head: head,
  },
  signed: { body: binmax(67108864), signature: bin(64) },
} satisfies Record<string, Record<string, Field>>;

export type DocumentKind = keyof typeof DOCUMENTS;

/** A party's request or header travels in a 64 KiB message field; anything else up to 64 MiB,
 * the `signed` envelope included (so its body is a little under 64 MiB). */
export const LIMITS: Record<DocumentKind, number> = {
  upload_header: 65536, query_request: 65536, delete_request: 65536,
  upload_receipt: 67108864, result: 67108864, deletion_receipt: 67108864, audit_entry: 67108864,
  charge_proposal: 67108864, budget_status: 67108864, signed: 67108864,
};

export interface Head { seq: number; hash: Uint8Array }

function typeError(kind: string, name: string, want: string): CleanroomError {
  return new CleanroomError("bad_message", `${kind}.${name}: expected ${want}`);
}

function isInt(v: Value): boolean {
  return (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";
}

function checkField(kind: string, name: string, f: FieldType, v: Value): void {
  switch (f.t) {
    case "str":
      if (typeof v !== "string") throw typeError(kind, name, "str");
      // Limits count code points, not UTF-16 units or bytes.
      if ([...v].length > f.max) throw typeError(kind, name, `at most ${f.max} code points`);
      return;
    case "bin":
      if (!(v instanceof Uint8Array) || v.length !== f.len) throw typeError(kind, name, `bin of ${f.len} bytes`);
      return;
    case "binmax":
      if (!(v instanceof Uint8Array) || v.length > f.max) throw typeError(kind, name, `bin of at most ${f.max} bytes`);
      return;
    case "int":
      if (!isInt(v)) throw typeError(kind, name, "int");
      return;
    case "bool":
      if (typeof v !== "boolean") throw typeError(kind, name, "bool");
      return;
    case "array":
      if (!Array.isArray(v) || v.length > f.max) throw typeError(kind, name, `array of at most ${f.max}`);
      return;
    case "map":
      if (!isMap(v) || Object.keys(v).length > f.max) throw typeError(kind, name, `map of at most ${f.max} entries`);
      return;
    case "head": {
      const keys = isMap(v) ? Object.keys(v).sort() : [];
      if (!isMap(v) || keys.join() !== "hash,seq" || !(v.hash instanceof Uint8Array) || v.hash.length !== 32 || typeof v.seq !== "number" || !Number.isInteger(v.seq)) {
        throw typeError(kind, name, "{hash: bin(32), seq: int}");
      }
    }
  }
}

/** Check a decoded value as a document of `kind` (exact field set, types, limits). */
export function checkDocument(kind: DocumentKind, v: Value): ValueMap {
  if (!isMap(v)) throw new CleanroomError("bad_message", `${kind}: not a map`);
  const fields: Record<string, Field> = DOCUMENTS[kind];
  for (const k of Object.keys(v)) {
    if (!(k in fields)) throw new CleanroomError("bad_message", `${kind}: unknown field ${JSON.stringify(k)}`);
  }
  for (const [name, f] of Object.entries(fields)) {
    if (!(name in v)) {
      if (f.optional) continue;
      throw new CleanroomError("bad_message", `${kind}: missing field ${name}`);
    }
    checkField(kind, name, f.type, v[name]);
  }
  return v;
}

/** Parse bytes as a canonical document of `kind`: every rule of the receiver, in order. */
export function parseDocument(kind: DocumentKind, bytes: Uint8Array): ValueMap {
  return checkDocument(kind, decodeCanonical(bytes, kind, LIMITS[kind]));
}

export function asHead(v: Value): Head {
  const m = v as ValueMap;
  return { seq: m.seq as number, hash: m.hash as Uint8Array };
}
