// What the client needs from the collaboration policy (docs/wire.md#keys-names-and-the-policy).
// The enclave validates the whole policy; this reads it and refuses what it cannot use.
import { parse as parseToml } from "smol-toml";
import { fromHex } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { CleanroomError } from "./errors.js";
import { Value } from "./msgpack.js";
import { IdNormalization } from "./normalise.js";

export interface Party { id: string; signingKey: Uint8Array; resultKey: Uint8Array }
export interface Dimension { name: string; values: string[]; edges?: string[] }
export interface Metric { name: string; scale: number }
export interface Timestamp { name: string; resolution: number }
export interface Dataset {
  name: string; owner: string; idColumn: string; idNormalization: IdNormalization;
  maxRows: number; dimensions: Dimension[]; metrics: Metric[]; timestamps: Timestamp[];
}
export type TemplateParam =
  | { kind: "where"; column: string }
  | { kind: "group_by"; columns: string[]; max: number };
export interface Template {
  id: string; requesters: string[]; recipients: string[]; sql: string; plan: Value;
  params: Record<string, TemplateParam>;
}
export interface Analysis { id: string; kind: string; requesters: string[]; recipients: string[] }

export interface Policy {
  bytes: Uint8Array; hash: Uint8Array; collaborationId: string;
  parties: Map<string, Party>; datasets: Map<string, Dataset>;
  templates: Map<string, Template>; analyses: Map<string, Analysis>;
}

export type SchemaKind = "id" | "dimension" | "metric" | "timestamp";

const RESOLUTIONS: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400 };

type Table = Record<string, unknown>;

function fail(where: string, what: string): never {
  throw new CleanroomError("policy_invalid", `policy ${where}: ${what}`);
}

function str(t: Table, key: string, where: string): string {
  const v = t[key];
  if (typeof v !== "string") fail(where, `${key} must be a string`);
  return v;
}

function strList(t: Table, key: string, where: string): string[] {
  const v = t[key] ?? [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) fail(where, `${key} must be a list of strings`);
  return v as string[];
}

function tables(t: Table, key: string, where: string): Table[] {
  const v = t[key] ?? [];
  if (!Array.isArray(v)) fail(where, `${key} must be an array of tables`);
  return v as Table[];
}

/** JSON plans in the policy become msgpack values (ints stay ints; no floats allowed). */
export function jsonToValue(v: unknown, where: string): Value {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) fail(where, "a number in a plan must be an integer");
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => jsonToValue(x, where));
  if (typeof v === "object") {
    const out: Record<string, Value> = {};
    for (const [k, x] of Object.entries(v as Table)) out[k] = jsonToValue(x, where);
    return out;
  }
  fail(where, "unexpected JSON value");
}

/** A bucketed dimension's declared values: "a-b" per pair of edges, then "last+". */
function bucketLabels(edges: string[]): string[] {
  return edges.map((e, i) => (i + 1 < edges.length ? `${e}-${edges[i + 1]}` : `${e}+`));
}

function parseDataset(t: Table, i: number): Dataset {
  const where = `[[datasets]] #${i + 1}`;
  const norm = str(t, "id_normalization", where);
  if (!["email", "phone", "exact"].includes(norm)) fail(where, `unknown id_normalization ${norm}`);
  const dimensions = tables(t, "dimensions", where).map((d) => {
    const edges = d.edges === undefined ? undefined : strList(d, "edges", where);
    return { name: str(d, "name", where), edges, values: edges ? bucketLabels(edges) : strList(d, "values", where) };
  });
  const metrics = tables(t, "metrics", where).map((m) => {
    const scale = m.scale;
    if (typeof scale !== "number" || !Number.isInteger(scale) || scale < 0 || scale > 9) fail(where, "metric scale must be 0..9");
    return { name: str(m, "name", where), scale };
  });
  const timestamps = tables(t, "timestamps", where).map((s) => {
    const res = (s.resolution as string | undefined) ?? "second";
    if (!(res in RESOLUTIONS)) fail(where, `unknown timestamp resolution ${res}`);
    return { name: str(s, "name", where), resolution: RESOLUTIONS[res] };
  });
  const maxRows = t.max_rows;
  if (typeof maxRows !== "number") fail(where, "max_rows must be an integer");
  return {
    name: str(t, "name", where), owner: str(t, "owner", where), idColumn: str(t, "id_column", where),
    idNormalization: norm as IdNormalization, maxRows, dimensions, metrics, timestamps,
  };
}

function parseTemplate(t: Table): Template {
  const id = str(t, "id", "[[templates]]");
  const where = `template ${id}`;
  let plan: unknown;
  try {
    plan = JSON.parse(str(t, "plan", where));
  } catch {
    fail(where, "plan is not JSON");
  }
  const params: Record<string, TemplateParam> = {};
  for (const [name, p] of Object.entries((t.params ?? {}) as Table)) {
    if (typeof p === "string") params[name] = { kind: "where", column: p };
    else if (p && typeof p === "object") {
      const max = (p as Table).max;
      if (typeof max !== "number") fail(where, `param ${name}: max must be an integer`);
      params[name] = { kind: "group_by", columns: strList(p as Table, "group_by", where), max };
    } else fail(where, `param ${name} must be a column or a table`);
  }
  return {
    id, requesters: strList(t, "requesters", where), recipients: strList(t, "recipients", where),
    sql: str(t, "sql", where), plan: jsonToValue(plan, where), params,
  };
}

export function parsePolicy(bytes: Uint8Array): Policy {
  let doc: Table;
  try {
    doc = parseToml(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Table;
  } catch (e) {
    throw new CleanroomError("policy_invalid", `policy: not TOML (${(e as Error).message.split("\n")[0]})`);
  }
  const parties = new Map<string, Party>();
  for (const p of tables(doc, "parties", "top level")) {
    const id = str(p, "id", "[[parties]]");
    parties.set(id, {
      id,
      signingKey: fromHex(str(p, "signing_key", `party ${id}`), `party ${id} signing_key`, 32),
      resultKey: fromHex(str(p, "result_key", `party ${id}`), `party ${id} result_key`, 32),
    });
  }
  const datasets = new Map(tables(doc, "datasets", "top level").map((d, i) => parseDataset(d, i)).map((d) => [d.name, d]));
  const templates = new Map(tables(doc, "templates", "top level").map(parseTemplate).map((t) => [t.id, t]));
  const analyses = new Map(tables(doc, "analyses", "top level").map((a) => {
    const id = str(a, "id", "[[analyses]]");
    return [id, { id, kind: str(a, "kind", `analysis ${id}`), requesters: strList(a, "requesters", id), recipients: strList(a, "recipients", id) }];
  }));
  return {
    bytes, hash: sha256(bytes), collaborationId: str(doc, "collaboration_id", "top level"),
    parties, datasets, templates, analyses,
  };
}

/** [["id","id"], dimensions, metrics, timestamps], each group in policy order. */
export function schemaOf(d: Dataset): [string, SchemaKind][] {
  return [
    ["id", "id"],
    ...d.dimensions.map((x): [string, SchemaKind] => [x.name, "dimension"]),
    ...d.metrics.map((x): [string, SchemaKind] => [x.name, "metric"]),
    ...d.timestamps.map((x): [string, SchemaKind] => [x.name, "timestamp"]),
  ];
}

export function dataset(policy: Policy, name: string): Dataset {
  const d = policy.datasets.get(name);
  if (!d) throw new CleanroomError("usage", `the policy has no dataset ${JSON.stringify(name)} (it has ${[...policy.datasets.keys()].join(", ")})`);
  return d;
}

export function party(policy: Policy, id: string): Party {
  const p = policy.parties.get(id);
  if (!p) throw new CleanroomError("usage", `the policy has no party ${JSON.stringify(id)}`);
  return p;
}
