// A CSV cell to the integer the wire carries (docs/wire.md#column-values). Reading cells is the
// client's own business; these are the forms this client accepts.
import { Dataset, Dimension, Metric, Timestamp } from "./policy.js";
import { trimSpace } from "./unicode.js";

export type Cell = { ok: true; value: number | bigint } | { ok: false; reason: string };

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** An exact decimal as an integer and its number of decimal places, or null. */
export function parseDecimal(s: string): { units: bigint; places: number } | null {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return null;
  const frac = m[3] ?? "";
  const units = BigInt((m[2] || "0") + frac);
  return { units: m[1] === "-" ? -units : units, places: frac.length };
}

function atScale(d: { units: bigint; places: number }, scale: number): bigint {
  return d.units * 10n ** BigInt(scale - d.places);
}

export function dimensionCode(dim: Dimension, raw: string): Cell {
  const v = trimSpace(raw);
  if (dim.edges) {
    const x = parseDecimal(v);
    if (!x) return { ok: false, reason: `not a number for the bucketed dimension ${dim.name}` };
    const edges = dim.edges.map((e) => parseDecimal(e)!);
    const scale = Math.max(x.places, ...edges.map((e) => e.places));
    const xv = atScale(x, scale);
    let code = -1;
    edges.forEach((e, i) => { if (atScale(e, scale) <= xv) code = i; });
    if (code < 0) return { ok: false, reason: `below the first edge ${dim.edges[0]} of ${dim.name}` };
    return { ok: true, value: code };
  }
  const code = dim.values.indexOf(v);
  if (code < 0) return { ok: false, reason: `${JSON.stringify(v.slice(0, 80))} is not a declared value of ${dim.name}` };
  return { ok: true, value: code };
}

export function metricUnits(m: Metric, raw: string): Cell {
  const x = parseDecimal(trimSpace(raw));
  if (!x) return { ok: false, reason: `not a decimal number for the metric ${m.name}` };
  if (x.places > m.scale) return { ok: false, reason: `more than ${m.scale} decimal places for the metric ${m.name}` };
  const v = atScale(x, m.scale);
  if (v < I64_MIN || v > I64_MAX) return { ok: false, reason: `out of the 64-bit range for the metric ${m.name}` };
  return { ok: true, value: v };
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?)?$/;

/** Unix seconds, or an ISO 8601 date or date-time (no zone is UTC), floored to the resolution. */
export function timestampSeconds(t: Timestamp, raw: string): Cell {
  const s = trimSpace(raw);
  let secs: bigint;
  if (/^[+-]?\d+$/.test(s)) secs = BigInt(s);
  else {
    const m = ISO.exec(s);
    if (!m) return { ok: false, reason: `not Unix seconds or an ISO 8601 date-time for ${t.name}` };
    const [y, mo, d, h, mi, se] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
    const ms = Date.UTC(y, mo - 1, d, h, mi, se);
    const check = new Date(ms);
    if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
      return { ok: false, reason: `not a valid date or time for ${t.name}` };
    }
    let offset = 0;
    if (m[7] && m[7] !== "Z") offset = (m[7][0] === "-" ? -1 : 1) * (Number(m[7].slice(1, 3)) * 3600 + Number(m[7].slice(4, 6)) * 60);
    secs = BigInt(ms / 1000 - offset);
  }
  const r = BigInt(t.resolution);
  const floored = secs >= 0n ? (secs / r) * r : -((-secs + r - 1n) / r) * r;
  if (floored < I64_MIN || floored > I64_MAX) return { ok: false, reason: `out of the 64-bit range for ${t.name}` };
  return { ok: true, value: floored };
}

/** The converter of each non-id schema column, in schema order. */
export function converters(d: Dataset): [string, (raw: string) => Cell][] {
  return [
    ...d.dimensions.map((x): [string, (raw: string) => Cell] => [x.name, (raw) => dimensionCode(x, raw)]),
    ...d.metrics.map((x): [string, (raw: string) => Cell] => [x.name, (raw) => metricUnits(x, raw)]),
    ...d.timestamps.map((x): [string, (raw: string) => Cell] => [x.name, (raw) => timestampSeconds(x, raw)]),
  ];
}
