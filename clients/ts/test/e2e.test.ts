// Two clients, one collaboration, a real host on loopback: the publisher uses the Python
// client, the advertiser this one; each checks what the other's actions produced.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { needs, PACKAGE_DIR, pythonInterpreter, REPO } from "./helpers.js";
import { PythonHost, runPython } from "./support/host.js";

const PY = pythonInterpreter();
const skip = needs(existsSync(PY), `the Python interpreter ${PY} (CLEANROOM_PYTHON)`);
const CLI = join(PACKAGE_DIR, "dist", "src", "cli.js");
const started = Date.now();

let work = "";
let host: PythonHost;
let env: NodeJS.ProcessEnv;

function ts(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: work, env, encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok<T = any>(r: { status: number; stdout: string; stderr: string }, json = true): T { // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal(r.status, 0, `exit ${r.status}\n${r.stderr}\n${r.stdout}`);
  return json ? JSON.parse(r.stdout) : (r.stdout as T);
}

function py(args: string[]) {
  return runPython(PY, args, env);
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), "cleanroom-ts-e2e-"));
  env = { ...process.env, CLEANROOM_HOME: join(work, "py-home"), CLEANROOM_TS_HOME: join(work, "ts-home") };
  // Keys on each party's side, bound into a copy of the events example policy.
  ok(py(["keygen", "--party", "publisher", "--out", join(work, "py-keys")]), false);
  ok(ts(["keygen", "--party", "advertiser", "--out", join(work, "ts-keys"), "--json"]));
  mkdirSync(join(work, "pub"));
  cpSync(join(work, "py-keys", "publisher.pub.json"), join(work, "pub", "publisher.pub.json"));
  cpSync(join(work, "ts-keys", "advertiser.pub.json"), join(work, "pub", "advertiser.pub.json"));
  ok(py(["policy", "bind-keys", "--keys", join(work, "pub"), "-o", join(work, "policy.toml"), join(REPO, "policies", "advertiser-publisher-events.toml")]), false);
  const rows = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join("\n") + "\n";
  writeFileSync(join(work, "impressions.csv"), "email,campaign,age_band,region,arm,ts\n"
    + rows(800, (i) => `p${i}@x.com,${["spring_sale", "summer_run"][i % 2]},25-34,${["north", "south"][i % 3 ? 0 : 1]},test,2026-10-${String(1 + (i % 28)).padStart(2, "0")}T10:00:00Z`));
  // The advertiser's file: other spellings of the same people (case, whitespace, full width), p800+
  // without impressions, and two rows this client refuses and leaves out with --skip-invalid.
  writeFileSync(join(work, "conversions.csv"), "email,value,ts\n"
    + rows(1100, (i) => `${i % 5 === 0 ? `" P${i}@X.COM "` : i === 7 ? "\uff50\uff17@x.com" : `p${i}@x.com`},${(20 + (i % 7)).toFixed(2)},${1790000000 + i * 60}`)
    + "nobody,10.00,1790000000\n\"a\u200bb@x.com\",1.00,1790000000\n");
  host = new PythonHost(PY, join(work, "policy.toml"), join(work, "host-state"), join(work, "host.log"));
  await host.start();
});

after(async () => {
  if (skip) return;
  await host.stop();
  assert.deepEqual(host.enclavePids(), [], "no enclave left running");
  if (process.env.KEEP_E2E === undefined) rmSync(work, { recursive: true, force: true });
  console.log(`# e2e runtime ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test("e2e: a Python party and a TypeScript party in one collaboration on a real host", { skip, timeout: 120_000 }, async () => {
  const common = ["--host", host.url, "--policy", join(work, "policy.toml")];
  const tsParty = [...common, "--keys", join(work, "ts-keys", "advertiser.key.json"), "--insecure-allow-simulation"];
  const pyParty = [...common, "--keys", join(work, "py-keys", "publisher.key.json"), "--insecure-allow-simulation"];

  // Refused without the opt-in: nothing is sent before the checks pass.
  const refused = ts(["attest", ...common]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /error \[simulation_not_allowed\]/);
  const att = ok(ts(["attest", ...common, "--insecure-allow-simulation", "--json"]));
  assert.equal(att.simulated, true);
  assert.equal(att.mr_enclave, "278321addadfd87f3560c35c4e06cce167f7c8cc089ede2891a4fe7af700676b");

  // The publisher uploads with the Python client; the advertiser with this one.
  const pyUpload = ok<string>(py(["upload", ...pyParty, "--dataset", "impressions", join(work, "impressions.csv")]), false);
  const pyUploadId = /upload accepted: ([0-9a-f]{32})/.exec(pyUpload)![1];
  const pyDigest = /digest:\s+([0-9a-f]{64})/.exec(pyUpload)![1];
  const notFromE164 = ts(["upload", ...tsParty, "--dataset", "conversions", join(work, "conversions.csv")]);
  assert.equal(notFromE164.status, 1, "a refused identifier stops the upload");
  assert.match(notFromE164.stderr, /line 1102, column email: an email address needs exactly one '@'/);
  const up = ok(ts(["upload", ...tsParty, "--dataset", "conversions", "--skip-invalid", "--chunk-kib", "16", join(work, "conversions.csv"), "--json"]));
  assert.equal(up.rows, 1100);
  assert.deepEqual(up.skipped, { id: 2 });

  // The TypeScript party checks the Python party's upload against the signed audit log, and the
  // digest the Python client printed from its own receipt.
  const uploads = ok<Record<string, unknown>[]>(ts(["uploads", ...common, "--insecure-allow-simulation", "--json"]));
  const pyListed = uploads.find((u) => u.upload_id === pyUploadId)!;
  assert.ok(pyListed && pyListed.verified, JSON.stringify(uploads));
  assert.deepEqual([pyListed.party, pyListed.dataset, pyListed.rows, pyListed.digest], ["publisher", "impressions", 800, pyDigest]);
  assert.ok(uploads.find((u) => u.upload_id === up.upload_id)?.verified);

  // A plan (values given unsorted, with a duplicate: signed in normal form) and a template.
  writeFileSync(join(work, "plan.json"), JSON.stringify({
    v: 1, datasets: ["impressions", "conversions"],
    where: [{ column: "impressions.region", op: "in", values: ["south", "north", "south"] }],
    group_by: ["impressions.campaign"],
    select: [{ fn: "count_distinct", arg: "person", as: "buyers" }, { fn: "sum", arg: "conversions.value", as: "revenue" }],
  }));
  const sql = "SELECT i.campaign, COUNT(DISTINCT person) AS buyers, SUM(c.value) AS revenue FROM impressions i JOIN conversions c WHERE i.region IN ('north', 'south') GROUP BY i.campaign";
  const plan = ok(ts(["query", ...tsParty, "--plan", join(work, "plan.json"), "--sql", sql, "--save", join(work, "plan-result.json"), "--json"]));
  assert.deepEqual(plan.columns, ["campaign", "buyers", "revenue"]);
  assert.deepEqual(plan.params.plan.where[0].values, ["north", "south"]);
  assert.equal(plan.params.sql, sql);
  // The two campaigns the data has (hundreds of buyers each) are always released; an empty
  // campaign's noise alone passes the 50-person gate a few percent of the time, so others may show.
  const released = plan.rows.map((r: unknown[]) => r[0]);
  assert.ok(released.includes("spring_sale") && released.includes("summer_run"), JSON.stringify(released));
  for (const row of plan.rows) if (row[0] !== "spring_sale" && row[0] !== "summer_run") assert.ok(row[1] < 150, JSON.stringify(row));
  const template = ok(ts(["query", ...tsParty, "campaign_attribution", "--param", "by=impressions.campaign", "--json"]));
  assert.deepEqual(template.columns, ["campaign", "converters", "conversions", "value_sum"]);
  assert.equal(template.rows[template.rows.length - 1][0], null, "the LEFT JOIN's unexposed converters come last");
  assert.deepEqual(template.params.template_params, { by: ["impressions.campaign"] });
  const badParam = ts(["query", ...tsParty, "campaign_attribution", "--param", "by=impressions.region"]);
  assert.equal(badParam.status, 1);
  assert.match(badParam.stderr, /policy_denied.*impressions.region is not one of by's columns/);

  // Offline checks of the saved result, by this client and by the Python one.
  ok(ts(["check", join(work, "plan-result.json"), "--policy", join(work, "policy.toml"), "--party", "advertiser", "--insecure-allow-simulation", "--json"]));
  const pyCheck = ok(py(["check", join(work, "plan-result.json"), "--policy", join(work, "policy.toml"), "--insecure-allow-simulation", "--json"]));
  assert.equal(pyCheck.verified, true);

  // The Python party fetches, opens and verifies the results the TypeScript party's queries made.
  for (const r of [plan, template]) {
    const got = ok(py(["results", "get", r.query_id, ...pyParty, "--json"]));
    assert.deepEqual(got.rows, r.rows);
    assert.equal(got.query_id, r.query_id);
  }
  // The TypeScript party fetches one again, and the Python party's audit check covers every upload.
  const again = ok(ts(["results", "get", plan.query_id, ...tsParty, "--json"]));
  assert.deepEqual(again.rows, plan.rows);
  ok(py(["audit", "download", "--host", host.url, "-o", join(work, "audit.json")]), false);
  const audited = ok<string>(py(["audit", "verify", join(work, "audit.json"), "--policy", join(work, "policy.toml"), "--insecure-allow-simulation"]), false);
  assert.match(audited, new RegExp(`party=advertiser, rows=1100, upload_id=${up.upload_id.slice(0, 16)}`));
  const tsAudit = ok(ts(["audit", ...common, "--insecure-allow-simulation", "--json"]));
  assert.deepEqual(tsAudit.entries.map((e: { kind: string }) => e.kind).slice(0, 2), ["upload_accepted", "upload_accepted"]);
  assert.ok(readFileSync(join(work, "ts-home", "trust.json"), "utf8").includes(att.sig_pub));
});
