// How a verified result is shown: a table for people, JSON for tools.
import { toHex } from "./bytes.js";
import { Value, ValueMap } from "./msgpack.js";
import { toJson } from "./result.js";

export function resultJson(doc: ValueMap): Record<string, unknown> {
  return {
    query_id: toHex(doc.query_id as Uint8Array), analysis: doc.analysis, kind: doc.kind,
    requested_by: doc.requested_by, recipients: doc.recipients, simulated: doc.simulated,
    created_at: doc.created_at, columns: doc.columns, rows: toJson(doc.rows), params: toJson(doc.params),
    privacy: toJson(doc.privacy), audit_head: toJson(doc.audit_head),
  };
}

function cell(v: Value): string {
  if (v === null) return "(none)";
  if (v instanceof Uint8Array) return toHex(v);
  return String(v);
}

export function resultTable(doc: ValueMap): string {
  const columns = (doc.columns as string[]).map(String);
  const rows = (doc.rows as Value[][]).map((r) => r.map(cell));
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  const privacy = doc.privacy as ValueMap;
  const charged = privacy.epsilon_charged ?? privacy.rho_charged;
  return [
    `${String(doc.analysis || "plan")} (${String(doc.kind)}), query ${toHex(doc.query_id as Uint8Array)}`,
    doc.simulated ? "WARNING: SIMULATED enclave: this result proves nothing about confidentiality" : "",
    line(columns), line(widths.map((w) => "-".repeat(w))), ...rows.map(line),
    `verified: enclave signature, sealed to you, bound to the query and policy; charged ${String(charged ?? "?")}, audit head ${String((doc.audit_head as ValueMap).seq)}`,
  ].filter((l) => l !== "").join("\n");
}
