// Query plans and templates on the party's side (docs/wire.md#query-plan, #templates): the
// normal form a client signs, and a template's instantiation, so that the result's `params`
// can be compared with exactly what was asked.
import { CleanroomError } from "./errors.js";
import { compareKeys, isMap, Value, ValueMap } from "./msgpack.js";
import { Policy, Template } from "./policy.js";

const PLAN_FIELDS = ["v", "datasets", "join", "where", "group_by", "window", "select"];

function bad(what: string): never {
  throw new CleanroomError("bad_message", `plan: ${what}`);
}

/** The plan as the enclave re-encodes it (Plan.to_wire): the form to sign and to compare. */
export function normalisePlan(plan: Value): ValueMap {
  if (!isMap(plan)) bad("not a map");
  for (const k of Object.keys(plan)) if (!PLAN_FIELDS.includes(k)) bad(`unknown field ${JSON.stringify(k)}`);
  for (const k of ["v", "datasets", "select"]) if (!(k in plan)) bad(`missing field ${k}`);
  if (plan.join !== undefined && plan.join !== "left") bad(`join must be "left" or absent, not ${JSON.stringify(plan.join)}`);
  const where = plan.where ?? [];
  if (!Array.isArray(where)) bad("where must be an array");
  const groupBy = plan.group_by ?? [];
  if (!Array.isArray(groupBy)) bad("group_by must be an array");
  const out: ValueMap = {
    v: plan.v, datasets: plan.datasets,
    where: where.map((p, i) => {
      if (!isMap(p)) bad(`where[${i}] must be a map`);
      if ((p.op === "in" || p.op === "not_in") && Array.isArray(p.values)) {
        const values = [...new Set(p.values.map((x) => {
          if (typeof x !== "string") bad(`where[${i}].values must be strings`);
          return x;
        }))].sort(compareKeys);
        return { ...p, values };
      }
      return p;
    }),
    group_by: groupBy, select: plan.select,
  };
  if (plan.join !== undefined) out.join = plan.join;
  if (plan.window !== undefined) out.window = plan.window;
  return out;
}

export type TemplateArgs = Record<string, string[]>;

/** Check a template's arguments against the policy, before anything is sent. */
export function checkTemplateArgs(policy: Policy, t: Template, args: TemplateArgs): void {
  const want = Object.keys(t.params).sort();
  const got = Object.keys(args).sort();
  if (want.join() !== got.join()) {
    throw new CleanroomError("bad_message", `template ${t.id}: params must be exactly [${want.join(", ")}], got [${got.join(", ")}]`);
  }
  for (const [name, p] of Object.entries(t.params)) {
    const values = args[name];
    if (p.kind === "where") {
      const [ds, col] = p.column.split(".");
      const dim = policy.datasets.get(ds)?.dimensions.find((d) => d.name === col);
      if (!dim) throw new CleanroomError("policy_invalid", `template ${t.id}: ${p.column} is not a dimension`);
      if (values.length < 1 || values.length > 1024) throw new CleanroomError("bad_message", `template ${t.id}: ${name} takes 1 to 1024 values`);
      for (const v of values) {
        if (!dim.values.includes(v)) throw new CleanroomError("policy_denied", `template ${t.id}: ${JSON.stringify(v)} is not a declared value of ${p.column}`);
      }
    } else {
      if (values.length > p.max) throw new CleanroomError("policy_denied", `template ${t.id}: ${name} takes at most ${p.max} columns`);
      if (new Set(values).size !== values.length) throw new CleanroomError("policy_denied", `template ${t.id}: ${name} lists a column twice`);
      for (const v of values) {
        if (!p.columns.includes(v)) throw new CleanroomError("policy_denied", `template ${t.id}: ${v} is not one of ${name}'s columns (${p.columns.join(", ")})`);
      }
    }
  }
}

function isParam(v: Value): v is ValueMap {
  return isMap(v) && Object.keys(v).length === 1 && typeof v.param === "string";
}

/** The instantiated plan: each {"param"} slot replaced by the request's values, in order. */
export function instantiate(t: Template, args: TemplateArgs): ValueMap {
  if (!isMap(t.plan)) throw new CleanroomError("policy_invalid", `template ${t.id}: plan is not a map`);
  const plan: ValueMap = { ...t.plan };
  if (Array.isArray(plan.where)) {
    plan.where = plan.where.map((p) => (isMap(p) && p.values !== undefined && isParam(p.values) ? { ...p, values: args[p.values.param as string] } : p));
  }
  if (Array.isArray(plan.group_by)) {
    plan.group_by = plan.group_by.flatMap((g) => (isParam(g) ? args[g.param as string] : [g]));
  }
  return normalisePlan(plan);
}
