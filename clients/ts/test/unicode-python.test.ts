// Our Unicode 14 rules against the reference the spec names: Python 3.11's unicodedata and
// str.casefold, for every code point. Needs the project's Python (skipped without, not under CI).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { casefold, isRefusedCategory } from "../src/unicode.js";
import { needs, pythonInterpreter } from "./helpers.js";

const PY = pythonInterpreter();
const skip = needs(existsSync(PY), `the Python interpreter ${PY} (CLEANROOM_PYTHON)`);

// One line per code point: "refused" or NFKC(casefold(NFKC(c))) as code points, then a digest.
const SCRIPT = `
import hashlib, sys, unicodedata
assert unicodedata.unidata_version == "14.0.0", unicodedata.unidata_version
h = hashlib.sha256()
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    c = chr(cp)
    if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Cn"):
        line = "%x r" % cp
    else:
        f = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", c).casefold())
        line = "%x %s" % (cp, ",".join("%x" % ord(x) for x in f))
    h.update(line.encode() + b"\\n")
    if len(sys.argv) > 1 and int(sys.argv[1], 16) == cp:
        print(line)
print(h.hexdigest())
`;

function ours(cp: number): string {
  if (isRefusedCategory(cp)) return `${cp.toString(16)} r`;
  const f = casefold(String.fromCodePoint(cp).normalize("NFKC")).normalize("NFKC");
  return `${cp.toString(16)} ${[...f].map((x) => x.codePointAt(0)!.toString(16)).join(",")}`;
}

test("unicode: refused categories and NFKC + casefold agree with Python for every code point", { skip }, async () => {
  const { createHash } = await import("node:crypto");
  const h = createHash("sha256");
  const lines: string[] = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const line = ours(cp);
    lines.push(line);
    h.update(line + "\n");
  }
  const py = spawnSync(PY, ["-c", SCRIPT], { encoding: "utf8", maxBuffer: 1 << 20 });
  assert.equal(py.status, 0, py.stderr);
  const theirs = py.stdout.trim();
  if (theirs !== h.digest("hex")) {
    // Find the first difference, for the message.
    const check = spawnSync(PY, ["-c", `
import unicodedata
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF: continue
    c = chr(cp)
    if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Cn"): print("%x r" % cp)
    else: print("%x %s" % (cp, ",".join("%x" % ord(x) for x in unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", c).casefold()))))
`], { encoding: "utf8", maxBuffer: 64 << 20 });
    const ref = check.stdout.split("\n");
    const diff = lines.map((l, i) => [l, ref[i]]).filter(([a, b]) => a !== b).slice(0, 10);
    assert.fail(`differences (ours, Python's): ${JSON.stringify(diff)}`);
  }
});
