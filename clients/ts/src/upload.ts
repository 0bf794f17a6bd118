// Uploads (docs/wire.md#uploads): rows to columns, the signed header, AES-256-GCM chunks, the
// record stream with its digest, and the receipt check.
import { readFileSync } from "node:fs";
import { concat, equal, u32be, u64be, utf8 } from "./bytes.js";
import { Table, encodeBatch, rowsPerBatch } from "./batch.js";
import { converters } from "./columns.js";
import { aesGcmSeal, hpkeSeal, random, sha256, sign, uploadKeyInfo, UPLOAD_DIGEST_DOMAIN } from "./crypto.js";
import { parseCsv } from "./csv.js";
import { CleanroomError } from "./errors.js";
import { canonicalEncode, ValueMap } from "./msgpack.js";
import { identifierDigest, normalise } from "./normalise.js";
import { Dataset, Policy, schemaOf } from "./policy.js";

export interface Converted { table: Table; skipped: Record<string, number> }

/** Read a CSV into upload columns; a refused cell stops, naming line and column, unless `skipInvalid`. */
export function readCsvTable(file: string, d: Dataset, skipInvalid: boolean, delimiter = ","): Converted {
  const csv = parseCsv(readFileSync(file, "utf8"), file, delimiter);
  const schema = schemaOf(d);
  const wanted = [d.idColumn, ...schema.slice(1).map(([name]) => name)];
  const index = wanted.map((name) => {
    const i = csv.header.indexOf(name);
    if (i < 0) throw new CleanroomError("invalid_input", `${file}: no column ${JSON.stringify(name)} in the header (dataset ${d.name} needs ${wanted.join(", ")})`);
    return i;
  });
  const convert = converters(d);
  const ids: Uint8Array[] = [];
  const values: (number | bigint)[][] = convert.map(() => []);
  const skipped: Record<string, number> = {};
  for (const rec of csv.records) {
    const cells: (number | bigint)[] = [];
    let refused: [string, string, string] | null = null; // schema name, file column, reason
    const id = normalise(d.idNormalization, rec.cells[index[0]]);
    if (!id.ok) refused = ["id", d.idColumn, id.reason];
    for (let c = 0; !refused && c < convert.length; c++) {
      const cell = convert[c][1](rec.cells[index[c + 1]]);
      if (cell.ok) cells.push(cell.value);
      else refused = [convert[c][0], convert[c][0], cell.reason];
    }
    if (refused) {
      if (!skipInvalid) {
        const raw = rec.cells[csv.header.indexOf(refused[1])];
        throw new CleanroomError("invalid_input", `${file}: line ${rec.line}, column ${refused[1]}: ${refused[2]} (value ${JSON.stringify(raw.slice(0, 80))})`);
      }
      skipped[refused[0]] = (skipped[refused[0]] ?? 0) + 1; // each row once, at its first refused cell
      continue;
    }
    ids.push(identifierDigest((id as { ok: true; value: string }).value));
    cells.forEach((v, c) => values[c].push(v));
  }
  if (ids.length === 0) throw new CleanroomError("invalid_input", `${file}: no row to upload`);
  if (ids.length > d.maxRows) throw new CleanroomError("invalid_input", `${file}: ${ids.length} rows is over the dataset's max_rows ${d.maxRows}`);
  return { table: { kinds: schema.map(([, k]) => k), rows: ids.length, ids: concat(...ids), values }, skipped };
}

export interface PreparedUpload {
  header: ValueMap; headerBytes: Uint8Array; signature: Uint8Array; uploadId: Uint8Array;
  idempotencyKey: Uint8Array; records: () => AsyncGenerator<Uint8Array>; digest: () => Uint8Array;
}

export interface UploadOptions {
  policy: Policy; dataset: Dataset; party: string; seed: Uint8Array; encPub: Uint8Array;
  converted: Converted; mode?: "create" | "append" | "replace"; chunkSize?: number;
  idempotencyKey: Uint8Array; now: number;
}

export const CHUNK_MIN = 4096;
export const CHUNK_MAX = 8 * 1024 * 1024;

export function chunkNonce(i: number): Uint8Array {
  return concat(new Uint8Array(4), u64be(i));
}

export function chunkAad(headerBytes: Uint8Array, i: number, last: boolean): Uint8Array {
  return concat(sha256(headerBytes), u64be(i), new Uint8Array([last ? 1 : 0]));
}

export function headRecord(headerBytes: Uint8Array, signature: Uint8Array): Uint8Array {
  const payload = canonicalEncode({ header: headerBytes, signature });
  return concat(u32be(payload.length), payload);
}

/** Steps 3 and 4 of docs/wire.md#uploads; the records are made as they are sent. */
export async function prepareUpload(o: UploadOptions): Promise<PreparedUpload> {
  const chunkSize = o.chunkSize ?? 4 * 1024 * 1024;
  if (chunkSize < CHUNK_MIN || chunkSize > CHUNK_MAX) throw new CleanroomError("usage", `chunk size ${chunkSize} is outside ${CHUNK_MIN}..${CHUNK_MAX}`);
  const dataKey = random(32);
  const uploadId = random(16);
  const { table, skipped } = o.converted;
  const header: ValueMap = {
    collaboration_id: o.policy.collaborationId, policy_hash: o.policy.hash, party: o.party,
    dataset: o.dataset.name, upload_id: uploadId, created_at: o.now,
    hpke_enc: await hpkeSeal(o.encPub, uploadKeyInfo(o.policy.collaborationId, o.policy.hash, o.party, o.dataset.name), dataKey),
    chunk_size: chunkSize, schema: schemaOf(o.dataset), rows_hint: table.rows,
    mode: o.mode ?? "create", idempotency_key: o.idempotencyKey,
  };
  if (Object.keys(skipped).length) header.skipped = skipped;
  const headerBytes = canonicalEncode(header);
  const signature = sign(o.seed, "upload_header", headerBytes);
  const perBatch = rowsPerBatch(table.kinds, chunkSize);
  const chunkHashes: Uint8Array[] = [];
  async function* records(): AsyncGenerator<Uint8Array> {
    yield headRecord(headerBytes, signature);
    const n = Math.ceil(table.rows / perBatch);
    for (let i = 0; i < n; i++) {
      const last = i === n - 1;
      const batch = encodeBatch(table, i * perBatch, Math.min(table.rows, (i + 1) * perBatch));
      const payload = concat(new Uint8Array([last ? 1 : 0]), aesGcmSeal(dataKey, chunkNonce(i), batch, chunkAad(headerBytes, i, last)));
      chunkHashes.push(sha256(payload));
      yield concat(u32be(payload.length), payload);
    }
    dataKey.fill(0);
  }
  const digest = (): Uint8Array => uploadDigest(headerBytes, signature, chunkHashes);
  return { header, headerBytes, signature, uploadId, idempotencyKey: o.idempotencyKey, records, digest };
}

export function uploadDigest(headerBytes: Uint8Array, signature: Uint8Array, chunkHashes: Uint8Array[]): Uint8Array {
  return sha256(concat(UPLOAD_DIGEST_DOMAIN, u32be(headerBytes.length), headerBytes, signature, ...chunkHashes));
}

/** A client-chosen key that makes re-running the same upload of the same file idempotent. */
export function idempotencyKeyFor(party: string, dataset: string, mode: string, fileBytes: Uint8Array): Uint8Array {
  return sha256(concat(utf8.encode(`cleanroom-ts/idempotency\x00${party}\x00${dataset}\x00${mode}\x00`), sha256(fileBytes))).slice(0, 16);
}

/** Steps 2 and 3 of docs/wire.md#checking-an-upload-receipt on a verified receipt document. */
export function checkReceipt(r: ValueMap, policy: Policy, p: PreparedUpload, rows: number): { retry: boolean } {
  const fail = (what: string): never => { throw new CleanroomError("bad_message", `upload receipt: ${what}`); };
  if (r.collaboration_id !== policy.collaborationId || !equal(r.policy_hash as Uint8Array, policy.hash)) fail("another collaboration or policy");
  if (r.party !== p.header.party || r.dataset !== p.header.dataset) fail("another party or dataset");
  if (!equal(r.upload_id as Uint8Array, p.uploadId)) {
    if (r.idempotency_key instanceof Uint8Array && equal(r.idempotency_key, p.idempotencyKey)) return { retry: true };
    fail("another upload_id");
  }
  if (r.rows !== rows) fail(`rows ${String(r.rows)}, sent ${rows}`);
  if (!equal(r.digest as Uint8Array, p.digest())) fail("the digest is not the one of the bytes sent");
  const want = p.header.skipped === undefined ? null : canonicalEncode(p.header.skipped);
  const got = r.skipped === undefined ? null : canonicalEncode(r.skipped);
  if ((want === null) !== (got === null) || (want && got && !equal(want, got))) fail("skipped is not the header's");
  return { retry: false };
}

