// The columnar batch (docs/wire.md#columnar-batch): "CRB1", u32le rows, ncols, 0, then each
// column's values little-endian, zero-padded to a multiple of 8.
import { SchemaKind } from "./policy.js";

export interface Table {
  kinds: SchemaKind[];
  rows: number;
  ids: Uint8Array; // rows x 32 bytes
  values: (number | bigint)[][]; // per non-id column, in schema order
}

const WIDTH: Record<SchemaKind, number> = { id: 32, dimension: 2, metric: 8, timestamp: 8 };
const pad8 = (n: number): number => (n + 7) & ~7;

export function batchLength(kinds: SchemaKind[], rows: number): number {
  return 16 + kinds.reduce((n, k) => n + pad8(rows * WIDTH[k]), 0);
}

/** The most rows whose batch fits in `chunkSize` bytes (at least one). */
export function rowsPerBatch(kinds: SchemaKind[], chunkSize: number): number {
  const width = kinds.reduce((n, k) => n + WIDTH[k], 0);
  let rows = Math.max(1, Math.floor((chunkSize - 16) / width));
  while (rows > 1 && batchLength(kinds, rows) > chunkSize) rows--;
  return rows;
}

export function encodeBatch(t: Table, start: number, end: number): Uint8Array {
  const rows = end - start;
  const out = new Uint8Array(batchLength(t.kinds, rows));
  const view = new DataView(out.buffer);
  out.set([0x43, 0x52, 0x42, 0x31]);
  view.setUint32(4, rows, true);
  view.setUint32(8, t.kinds.length, true);
  let at = 16;
  t.kinds.forEach((kind, c) => {
    if (kind === "id") out.set(t.ids.subarray(start * 32, end * 32), at);
    else {
      const col = t.values[c - 1];
      for (let r = 0; r < rows; r++) {
        const v = col[start + r];
        if (kind === "dimension") view.setUint16(at + 2 * r, Number(v), true);
        else view.setBigInt64(at + 8 * r, BigInt(v), true);
      }
    }
    at += pad8(rows * WIDTH[kind]);
  });
  return out;
}
